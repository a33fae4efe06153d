"""Opt-outs stay private: a request naming someone who said stop is answered, to everyone,
exactly as if that person had declined without a reason, and they get nothing.

Each case runs the real intake on a real store twice with the same request: once the party
declines by their own link; then, after they opted out, the tick declines for them. What
the referrer and the other party received must be the same mails but for references,
tokens and ids.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.intake import pipeline, receiving
from service.model import Answer, Channel, InboundState
from service.referral import withheld, workflow
from store import queries, suppressions
from tests.conftest import REFERRER, fixture_bytes, make_settings, write_config
from tests.helpers import NOW, PROSPECT, PROVIDER, arrive, assert_due_from_index
from tests.test_cli import run as run_cli

REQUEST = "request_thunderbird_labelled_lines.eml"
ADDRESS = {"provider": PROVIDER, "prospect": PROSPECT}
# Past the latest moment a withheld no can be due.
LATER = NOW + withheld.LATEST + timedelta(hours=1)


def submit(ctx, message_id: str) -> str:
    """The standard request under its own Message-ID, through intake; its reference."""
    raw = fixture_bytes(REQUEST).replace(b"Message-ID: <", f"Message-ID: <{message_id}.".encode())
    inbound = receiving.receive(raw, REFERRER, ["refer@intro.example.org"], Channel.SMTP, NOW)
    pipeline.process_pending(ctx, NOW)
    record = queries.inbound_by_id(inbound.inbound_id)
    assert record is not None and record.state == InboundState.PROCESSED
    return record.note


def sent_by(at) -> list[EmailMessage]:
    """What the outbox would send by `at`, claimed for long enough not to come round again."""
    items = queries.claim_outbox(at, at + timedelta(days=365), 100)
    return [email.message_from_bytes(i.raw, policy=email.policy.default) for i in items]


def shape(message: EmailMessage, ref: str) -> tuple[str, str, str, str]:
    """What a reader sees, with what differs between any two referrals taken out."""

    def plain(text: str) -> str:
        text = text.replace(ref, "REF")
        return re.sub(r"(https?://\S+?/[a-z])/[A-Za-z0-9_.\-]+", r"\1/TOKEN", text)

    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return message["To"], plain(message["Subject"]), plain(text), plain(html)


def run(ctx, role: str, other_first: Answer | None, opted_out: bool) -> tuple[str, list]:
    """One request; the party in `role` says no (by link, or withheld); the mails, in order."""
    ref = submit(ctx, f"{role}-{other_first}-{opted_out}")
    referral = queries.referral_by_ref(ref)
    other = referral.other(role)
    mails = sent_by(NOW)
    if other_first is not None:
        workflow.answer(ctx, other.ask_key, other_first, Channel.LINK, NOW + timedelta(hours=1))
    if opted_out:
        assert withheld.decline_due_withheld(ctx, LATER) == 1
        assert withheld.decline_due_withheld(ctx, LATER) == 0  # never twice
    else:
        workflow.answer(ctx, referral.party(role).ask_key, Answer.NO, Channel.LINK, LATER)
    mails += sent_by(LATER)
    return ref, [shape(m, ref) for m in mails]


@pytest.mark.parametrize("other_first", [None, Answer.YES], ids=["other_silent", "other_yes"])
@pytest.mark.parametrize("role", ["provider", "prospect"])
def test_a_withheld_no_reads_like_a_real_one_and_the_opted_out_person_gets_nothing(
    ctx, role, other_first
):
    _, declined = run(ctx, role, other_first, opted_out=False)
    suppressions.suppress(ADDRESS[role], LATER)
    ref, withheld_ = run(ctx, role, other_first, opted_out=True)

    def without(mails: list) -> list:
        return [m for m in mails if ADDRESS[role] not in m[0]]

    # The referrer's receipt and "declined", the other party's question and "not going
    # ahead": the same mails in the same order.
    assert without(withheld_) == without(declined)
    assert sum(REFERRER in m[0] for m in withheld_) == 2
    assert len(without(declined)) == len(declined) - 1  # their own question, before
    assert without(withheld_) == withheld_  # and nothing at all once they said stop
    referral = queries.referral_by_ref(ref)
    assert referral.state == "declined"
    assert referral.party(role).decline_reason is None
    # Their opt-out promised to forget them: the request that named them again held their
    # address only until this no.
    assert referral.party(role).email.endswith("@invalid")
    assert not queries.open_questions_to(ADDRESS[role])


def test_the_other_partys_own_no_settles_it_and_the_withheld_one_stays_silent(ctx):
    suppressions.suppress(PROSPECT, NOW)
    ref = submit(ctx, "other-no")
    referral = queries.referral_by_ref(ref)
    sent_by(NOW)
    workflow.answer(ctx, referral.party("provider").ask_key, Answer.NO, Channel.LINK, NOW)
    told = sent_by(NOW)
    assert [m["To"].addresses[0].addr_spec for m in told] == [REFERRER]  # "declined" only
    assert withheld.decline_due_withheld(ctx, LATER) == 0
    assert sent_by(LATER) == []


@given(fraction=st.floats(0, 1), expiry_hours=st.floats(1, 24 * 60))
def test_a_withheld_no_is_due_within_two_days_and_before_the_question_expires(
    fraction, expiry_hours
):
    expires_at = NOW + timedelta(hours=expiry_hours)
    due = withheld.decline_due(NOW, expires_at, fraction)
    assert NOW < due < expires_at
    assert due <= NOW + withheld.LATEST
    if expiry_hours > 60:
        assert due >= NOW + withheld.EARLIEST


def test_the_tick_sends_the_no_when_it_is_due_and_not_before(tmp_path, store_url):
    settings = make_settings(tmp_path, store_url)
    config = write_config(tmp_path / "care-intro.toml", settings)
    suppressions.suppress(PROSPECT, NOW)
    arrive(REQUEST)

    def tick(at) -> str:
        result = run_cli("tick", "--at", at.isoformat(), "--config", str(config), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def delivered() -> list[EmailMessage]:
        files = sorted(Path(settings.outbound.maildir).rglob("*"), key=lambda p: p.stat().st_mtime)
        return [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            for f in files
            if f.is_file()
        ]

    assert "sent 2," in tick(NOW)  # the receipt, and the provider's question
    assert "sent 0," in tick(NOW + withheld.EARLIEST - timedelta(minutes=1))
    # "Declined" to Ada, "not going ahead" to Jane, and Monday's digest to Ada.
    assert "digests 1; sent 3," in tick(LATER)
    assert "sent 0," in tick(LATER + timedelta(hours=1))
    recipients = sorted(m["To"].addresses[0].addr_spec for m in delivered())
    assert recipients == sorted([REFERRER] * 3 + [PROVIDER] * 2)
    assert (
        sum(m["Subject"].startswith("Not introduced: Bob Smith said no") for m in delivered()) == 1
    )
    [referral] = queries.recent_referrals()
    assert referral.state == "declined"


def test_what_is_due_is_found_from_an_index(ctx):
    # Asked every few seconds: proportional to the few withheld parties, not to all parties.
    assert_due_from_index("withheld", "party_withheld_until", NOW)
