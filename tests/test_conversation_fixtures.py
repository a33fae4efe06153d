"""Every reply, robot and bounce fixture through intake: what the service did and sent.

Each fixture is delivered to the address it would reach in real life (the question's
reply address, or the VERP address of the consent mail that bounced); only its addressing
headers are set to the referral the test opened.
"""

from __future__ import annotations

import email
from email.policy import compat32
from pathlib import Path

import pytest

from service.intake import pipeline, receiving
from service.model import Channel
from service.reading.addresses import Mailbox
from service.reading.request import parse_message, parse_request
from service.reading.routing import reply_address
from service.referral import workflow
from store import queries
from tests.conftest import FIXTURES, REFERRER, fixture_bytes
from tests.helpers import NOW, PROSPECT, PROVIDER
from tests.test_bounces import OURS
from tests.test_replies import REPLIES, Verdict

ADA = Mailbox("Ada Lovelace", REFERRER)
ROBOTS = sorted(p.name for p in Path(FIXTURES).glob("auto_reply_*.eml") if "person" not in p.name)


def open_one(ctx):
    draft = parse_request(parse_message(fixture_bytes("request_thunderbird_labelled_lines.eml")))
    return workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)


def readdressed(fixture: str, author: str, to: str) -> bytes:
    message = email.message_from_bytes(fixture_bytes(fixture), policy=compat32)
    for name, value in {"From": f"Jane Roe <{author}>", "To": to, "Delivered-To": to}.items():
        del message[name]
        message[name] = value
    return message.as_bytes()


def deliver(ctx, raw: bytes, envelope_from: str, to: str) -> tuple[str, str]:
    received = receiving.receive(raw, envelope_from, [to], Channel.SMTP, NOW)
    pipeline.process_pending(ctx, NOW)
    record = queries.inbound_by_id(received.inbound_id)
    return record.state, record.note


def queued(referral_id: int) -> list[tuple[str, tuple[str, ...]]]:
    """(purpose, recipients) of what the referral queued after the three opening mails."""
    return [(p, tuple(r)) for p, _, r in queries.outbox_for_referral(referral_id)][3:]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: r.fixture.removesuffix(".eml"))
def test_each_reply_answers_the_question_it_reached(ctx, reply):
    referral = open_one(ctx)
    to = reply_address(ctx.settings, referral.party("provider").reply_key)
    state, note = deliver(ctx, readdressed(reply.fixture, PROVIDER, to), PROVIDER, to)
    assert state == "processed", note
    after = queries.referral_by_id(referral.id)
    provider = after.party("provider")
    if reply.verdict is Verdict.YES:
        assert (after.state, provider.answer, queued(referral.id)) == ("asking", "yes", [])
    elif reply.verdict is Verdict.NO:
        assert (after.state, provider.answer) == ("declined", "no")
        assert provider.decline_reason == (reply.reason.value if reply.reason else None)
        assert sorted(queued(referral.id)) == [
            ("declined_to_other", (PROSPECT,)),
            ("referrer_declined", (REFERRER,)),
        ]
    else:
        assert (after.state, provider.answer) == ("asking", None)
        assert queued(referral.id) == [("reply_unclear", (PROVIDER,))]


@pytest.mark.parametrize("fixture", ROBOTS)
def test_a_robot_at_the_question_is_kept_and_never_answered(ctx, fixture):
    referral = open_one(ctx)
    to = reply_address(ctx.settings, referral.party("provider").reply_key)
    state, note = deliver(ctx, readdressed(fixture, PROVIDER, to), PROVIDER, to)
    assert state == "ignored" and note.startswith("automatic message"), note
    assert queries.referral_by_id(referral.id).party("provider").answer is None
    assert queued(referral.id) == []


@pytest.mark.parametrize(
    ("fixture", "failures"), [p.values for p in OURS], ids=[p.id for p in OURS]
)
def test_each_bounce_of_a_question_does_what_its_failure_says(ctx, fixture, failures):
    referral = open_one(ctx)
    failed = failures[0].recipient
    [verp] = [
        item.envelope_from
        for item in queries.claim_outbox(NOW, NOW, 10)
        if item.purpose == "consent_request" and tuple(item.recipients) == (failed,)
    ]
    state, note = deliver(ctx, fixture_bytes(fixture), "", verp)
    after = queries.referral_by_id(referral.id)
    if failures[0].permanent:
        assert (state, after.state) == ("processed", "undeliverable"), note
        assert sorted(p for p, _ in queued(referral.id)) == [
            "declined_to_other",
            "referrer_undeliverable",
        ]
    else:
        assert (state, after.state, queued(referral.id)) == ("ignored", "asking", []), note
