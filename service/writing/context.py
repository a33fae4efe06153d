"""What every stage needs and nothing more: settings, tokens, templates — built once at start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from service.clock import Clock
from service.keys import secret_keys
from service.reading.addresses import Mailbox
from service.settings import Settings
from service.tokens import Purpose, Tokens
from service.writing.compose import Templates
from service.writing.signing import Signer, load_signer
from service.writing.writer import Writer

OPTOUT_VALID_FOR = timedelta(days=3 * 365)
# A report link shows a referrer's figures: long enough to use from last month's digest.
REPORT_VALID_FOR = timedelta(days=45)


@dataclass(frozen=True)
class Context:
    settings: Settings
    tokens: Tokens
    templates: Templates
    signer: Signer | None = None
    # `serve`'s letter writer, which takes a share of a busy tick's letters; None: all here.
    writer: Writer | None = None

    def seal(self, raw: bytes) -> bytes:
        """A finished mail as it is stored and sent: DKIM-signed when the settings ask."""
        return self.signer.sign(raw) if self.signer else raw

    @property
    def sender(self) -> Mailbox:
        return Mailbox(self.settings.service.sender_name, self.settings.referral_mailbox)

    def link(self, path: str) -> str:
        return self.settings.service.public_url.rstrip("/") + path


def make_context(settings: Settings, clock: Clock, templates: Templates | None = None) -> Context:
    # A link lives as long as the question it asks.
    open_for = timedelta(days=settings.timing.consent_expiry_days)
    tokens = Tokens(
        secret_keys(settings),
        clock,
        # "Never contact me again" must work from any mail anyone kept, for a long time.
        {
            Purpose.CONSENT: open_for,
            # A survey link lives as long as the survey may be answered.
            Purpose.SURVEY: timedelta(days=settings.timing.survey_open_days),
            Purpose.OPTOUT: OPTOUT_VALID_FOR,
            Purpose.REPORT: REPORT_VALID_FOR,
            Purpose.DIGEST: OPTOUT_VALID_FOR,
        },
    )
    return Context(
        settings=settings,
        tokens=tokens,
        templates=templates or Templates(),
        # Read once at start: a missing or broken key stops the service before it listens.
        signer=load_signer(settings.outbound),
    )
