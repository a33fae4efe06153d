"""Survey answers by reply: every survey reply fixture through intake, as the party asked."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from service.evaluation import surveys
from service.intake import pipeline, receiving
from service.model import Channel
from service.reading.quotes import new_text
from service.reading.request import parse_message
from service.reading.survey_replies import read_survey
from store import queries
from tests.conftest import FIXTURES, fixture_bytes
from tests.helpers import NOW, PROSPECT, PROVIDER
from tests.test_evaluation import FOLLOW_UP, introduce, surveys_of

REPLIES = sorted(p.name for p in FIXTURES.glob("survey_reply_*.eml"))
FIXTURE_KEY = b"refer+abcdefghijklmnop@"


def surveyed(ctx):
    referral = introduce(ctx)
    assert surveys.send_due(ctx, NOW + FOLLOW_UP) == 2
    return referral


def as_from(raw: bytes, address: str, reply_key: str | None) -> bytes:
    """The fixture as the party we asked sent it, to this survey's own reply address."""
    head, sep, body = raw.partition(b"\n\n")
    head = re.sub(rb"(?m)^From:.*(?:\n[ \t].*)*", b"From: <" + address.encode() + b">", head)
    if reply_key is not None:
        head = head.replace(FIXTURE_KEY, f"refer+{reply_key}@".encode())
    return head + sep + body


def deliver(ctx, raw: bytes, recipient: str, sender: str) -> tuple[str, str]:
    at = NOW + FOLLOW_UP + timedelta(days=1)
    received = receiving.receive(raw, sender, [recipient], Channel.SMTP, at)
    assert received.inbound_id is not None
    pipeline.process_pending(ctx, at)
    record = queries.inbound_by_id(received.inbound_id)
    return record.state, record.note


@pytest.mark.parametrize("name", REPLIES)
def test_each_survey_reply_is_recorded_as_the_parser_reads_it(ctx, name):
    referral = surveyed(ctx)
    survey = surveys_of(referral)["provider"][0]
    raw = as_from(fixture_bytes(name), PROVIDER, survey.reply_key)
    recipient = f"refer+{survey.reply_key}@intro.example.org"
    state, note = deliver(ctx, raw, recipient, PROVIDER)
    text = new_text(parse_message(raw))
    expected = read_survey(text)
    got = queries.survey_by_id(survey.id)
    if not text.strip():  # nothing but the quote: nothing to record, nothing lost
        assert (state, got.state) == ("ignored", "sent"), note
        return
    assert state == "processed", note
    assert got.state == "answered" and got.channel == "reply"
    assert (got.rating, got.business, got.amount, got.currency, got.more) == (
        expected.rating,
        expected.business.value if expected.business else None,
        expected.amount,
        expected.currency,
        expected.more,
    )


def test_a_reply_whose_client_dropped_the_tag_still_finds_its_survey(ctx):
    referral = surveyed(ctx)
    survey = surveys_of(referral)["prospect"][0]
    [mail] = [
        m
        for m in queries.claim_outbox(NOW + 400 * FOLLOW_UP, NOW + 400 * FOLLOW_UP, 100)
        if m.purpose == "survey" and m.recipients == (PROSPECT,)
    ]
    raw = (
        f"From: Bob Smith <{PROSPECT}>\nTo: refer@intro.example.org\n"
        f"Subject: Re: How did it go?\nMessage-ID: <bob-1@bakery.example>\n"
        f"In-Reply-To: {mail.message_id}\n\n5, yes, 800 EUR\n"
    ).encode()
    state, note = deliver(ctx, raw, "refer@intro.example.org", PROSPECT)
    assert state == "processed", note
    got = queries.survey_by_id(survey.id)
    assert (got.rating, got.business, str(got.amount), got.currency) == (5, "yes", "800.00", "EUR")


def test_a_reply_from_someone_else_does_not_count(ctx):
    referral = surveyed(ctx)
    survey = surveys_of(referral)["provider"][0]
    raw = as_from(fixture_bytes(REPLIES[0]), "mallory@elsewhere.example", survey.reply_key)
    state, note = deliver(
        ctx, raw, f"refer+{survey.reply_key}@intro.example.org", "mallory@elsewhere.example"
    )
    assert state == "ignored" and "not from the provider" in note
    assert queries.survey_by_id(survey.id).state == "sent"


def test_text_we_cannot_read_as_answers_reaches_the_referrer_as_a_comment(ctx):
    referral = surveyed(ctx)
    survey = surveys_of(referral)["provider"][0]
    raw = (
        f"From: <{PROVIDER}>\nTo: refer+{survey.reply_key}@intro.example.org\n"
        "Subject: Re: survey\nMessage-ID: <jane-7@acme.example>\n\n"
        "We met twice; talks continue after the holidays.\n"
    ).encode()
    state, _ = deliver(ctx, raw, f"refer+{survey.reply_key}@intro.example.org", PROVIDER)
    assert state == "processed"
    got = queries.survey_by_id(survey.id)
    assert got.state == "answered"
    assert "talks continue after the holidays" in got.comment


def test_an_out_of_office_reply_to_a_survey_is_not_an_answer(ctx):
    referral = surveyed(ctx)
    survey = surveys_of(referral)["provider"][0]
    raw = (
        f"From: <{PROVIDER}>\nTo: refer+{survey.reply_key}@intro.example.org\n"
        "Subject: Out of office\nAuto-Submitted: auto-replied\n"
        "Message-ID: <ooo-1@acme.example>\n\nI am away until Monday. 5, yes\n"
    ).encode()
    state, _ = deliver(ctx, raw, f"refer+{survey.reply_key}@intro.example.org", PROVIDER)
    assert state == "ignored"
    assert queries.survey_by_id(survey.id).state == "sent"
