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

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.intake import pipeline, receiving
from service.model import Answer, Channel, InboundState
from service.referral import withheld, workflow
from store import queries, suppressions
from tests.conftest import REFERRER, fixture_bytes
from tests.helpers import NOW, PROSPECT, PROVIDER

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
