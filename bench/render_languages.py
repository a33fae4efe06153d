"""What writing a mail costs in each language, and what building its bytes costs against
the builder it replaced, measured in the same run, interleaved.

Writes the consent question the way the workflow does (letters.consent_request: redaction,
link tokens, text and HTML templates, Babel dates, headers, the final bytes) for a party
of each of the six languages, many times over, and prints microseconds per mail and the
ratio to English. Then builds the same rendered mail into bytes with today's builder and
with the one before it (EmailMessage and email.policy.default, kept below as it was),
alternating in small batches so that both see the same machine, and prints both and their
ratio.

    python bench/render_languages.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import email.policy
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.model import Role, State
from service.reading.addresses import Mailbox
from service.settings import LANGUAGES, Settings
from service.writing import letters
from service.writing.compose import Rendered, build_message, header_safe
from service.writing.context import Context, make_context
from store.records import PartyRecord, ReferralRecord

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _party(id_: int, role: Role, name: str, email: str, language: str) -> PartyRecord:
    return PartyRecord(
        id=id_,
        role=role,
        name=name,
        email=email,
        phone="+49 30 1234567",
        prefers="phone",
        best_time="weekday mornings",
        booking="https://cal.example/jane",
        language=language,
        ask_key=f"ask-{id_}",
        answer=None,
        answered_at=None,
        answer_channel=None,
        reply_key=f"{id_:016d}",
        timezone="Europe/Berlin",
    )


REFERRAL = ReferralRecord(
    id=1,
    ref="R-BNCH-0001",
    state=State.ASKING,
    referrer_email="ada@referrer.example",
    referrer_name="Ada Lovelace",
    need="Bookkeeping for a 5-person bakery before the tax deadline in March; Bob Smith "
    "can be reached at bob@bakery.example or +49 30 7654321.",
    budget="400 EUR/month",
    follow_up_days=None,
    language="en",
    subject="Bookkeeping for Bob",
    request_message_id="<request@referrer.example>",
    created_at=NOW,
    updated_at=NOW,
    expires_at=NOW + timedelta(days=14),
    introduced_at=None,
    parties=(
        _party(1, Role.PROVIDER, "Jane Roe", "jane@acme.example", "en"),
        _party(2, Role.PROSPECT, "Bob Smith", "bob@bakery.example", "en"),
    ),
)


def context() -> Context:
    settings = (
        Settings()
        .replace("service", domain="intro.example.org", timezone="Europe/Berlin")
        .replace("security", secret_keys=("bench-key",))
    )
    return make_context(settings, FixedClock(NOW))


def referral_in(language: str) -> ReferralRecord:
    provider = replace(REFERRAL.party(Role.PROVIDER), language=language)
    return replace(REFERRAL, parties=(provider, REFERRAL.party(Role.PROSPECT)))


def per_mail(ctx: Context, language: str, rounds: int) -> float:
    referral = referral_in(language)
    provider = referral.party(Role.PROVIDER)
    letters.consent_request(ctx, referral, provider, NOW)  # warm the caches
    started = time.perf_counter()
    for _ in range(rounds):
        letters.consent_request(ctx, referral, provider, NOW)
    return (time.perf_counter() - started) / rounds * 1e6


def build_costs(ctx: Context, language: str, rounds: int) -> tuple[float, float]:
    """Microseconds per mail for (the old builder, today's), the same mail, interleaved."""
    referral = referral_in(language)
    provider = referral.party(Role.PROVIDER)
    url = "http://intro.example.org/c/ImFzay0xIg.awLZQA.n4NIgCOeug6XIZdLxhq2Zz0bCic"
    rendered = ctx.templates.render_mail(
        "consent_request",
        language,
        {
            **letters.consent_context(referral, provider),
            **letters.privacy_notice(ctx),
            "url": url,
            "yes_url": url + "?answer=yes",
            "no_url": url + "?answer=no",
            "sender_name": ctx.settings.service.sender_name,
            "optout_url": url,
            "timezone": "Europe/Berlin",
        },
    )
    arguments = {
        "sender": ctx.sender,
        "to": [letters.mailbox_of(provider)],
        "rendered": rendered,
        "message_id": "<bench@intro.example.org>",
        "date": NOW,
        "languages": [language],
        "reply_to": [Mailbox("Introductions", "refer+0000000000000001@intro.example.org")],
        "unsubscribe_url": url,
    }
    spent = {old_build_message: 0.0, build_message: 0.0}
    batch = 20
    for _ in range(max(1, rounds // batch)):
        for build in spent:
            started = time.perf_counter()
            for _ in range(batch):
                build(**arguments)
            spent[build] += time.perf_counter() - started
    done = max(1, rounds // batch) * batch
    return spent[old_build_message] / done * 1e6, spent[build_message] / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    ctx = context()
    baseline = per_mail(ctx, "en", args.rounds)
    print(f"consent question, {args.rounds} mails per language")
    for language in LANGUAGES:
        cost = baseline if language == "en" else per_mail(ctx, language, args.rounds)
        print(f"  {language}  {cost:8.1f} µs per mail   ratio to en {cost / baseline:.2f}")
    print("its bytes from the rendered templates: the builder before, today's, interleaved")
    for language in LANGUAGES:
        old, new = build_costs(ctx, language, args.rounds)
        print(
            f"  {language}  before {old:8.1f} µs   today {new:8.1f} µs   "
            f"ratio today/before {new / old:.2f}"
        )


# ---------------------------------------------------------------- the builder before

_POLICY = email.policy.default.clone(max_line_length=78, cte_type="7bit")


def old_build_message(
    *,
    sender: Mailbox,
    to: Sequence[Mailbox],
    rendered: Rendered,
    message_id: str,
    date: datetime,
    languages: Sequence[str],
    cc: Sequence[Mailbox] = (),
    reply_to: Sequence[Mailbox] = (),
    in_reply_to: str | None = None,
    unsubscribe_url: str | None = None,
) -> bytes:
    """service/writing/compose.py's build_message before it wrote the bytes itself."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = _old_mailbox(sender)
    message["To"] = ", ".join(_old_mailbox(m) for m in to)
    if cc:
        message["Cc"] = ", ".join(_old_mailbox(m) for m in cc)
    if reply_to:
        message["Reply-To"] = ", ".join(_old_mailbox(m) for m in reply_to)
    subject = header_safe(rendered.subject)
    if subject.isascii():
        message["Subject"] = subject
    else:
        message.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode("\n"))
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    in_reply_to = header_safe(in_reply_to or "")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    message["Content-Language"] = ", ".join(dict.fromkeys(languages))
    return message.as_bytes(policy=_POLICY)


def _old_mailbox(mailbox: Mailbox) -> str:
    return str(Mailbox(header_safe(mailbox.name), header_safe(mailbox.address)))


if __name__ == "__main__":
    main()
