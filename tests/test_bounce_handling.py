"""Bounces of what we sent, over real SMTP: a question that cannot arrive ends the referral."""

from __future__ import annotations

import smtplib

from store import queries
from tests.conftest import REFERRER, eventually, wire_fixture
from tests.helpers import (
    PROSPECT,
    PROVIDER,
    RCPT,
    inbound_counts,
    parse,
    request_referral,
    text_of,
    web,
    words_of,
)
from tests.test_answers_by_mail import reply


def bounce(running, fixture: str, to: str) -> None:
    """A delivery status notification, sent as MTAs send them: from the null sender."""
    with smtplib.SMTP("127.0.0.1", running.service.smtp_port, timeout=10) as smtp:
        assert smtp.sendmail("<>", [to], wire_fixture(fixture)) == {}


def question_to(sink, address):
    [question] = [d for d in sink.deliveries if d.rcpt_tos == (address,)]
    return question


def state() -> str:
    return queries.recent_referrals()[0].state


def test_a_permanent_failure_of_a_question_ends_the_referral(running, sink):
    request_referral(running.service.smtp_port, sink)
    verp = question_to(sink, PROSPECT).mail_from
    bounce(running, "dsn_postfix_user_unknown.eml", verp)
    eventually(lambda: state() == "undeliverable", "the referral to end")
    told = {d.rcpt_tos[0]: d for d in sink.wait_for(5)[3:]}
    to_referrer = " ".join(text_of(told[REFERRER]).split())
    assert "We could not reach Bob Smith at <bob@bakery.example>" in to_referrer
    assert "(status 5.1.1)" in to_referrer
    assert "bounced" in parse(told[REFERRER])["Subject"]
    # The provider learns only that it will not happen: no who, no why, no bounce text.
    to_provider = words_of(told[PROVIDER])
    assert "will not go ahead" in to_provider
    for leak in ("Bob", "bakery.example", "unknown user", "5.1.1", "bounce", "deliver"):
        assert leak not in to_provider


def test_a_bounce_after_the_party_answered_yes_ends_nothing(running, sink):
    # Bob's yes reached us, so his question reached him; an alias of his that fails later
    # (Final-Recipient bob.old@, Original-Recipient bob@) says nothing about the referral.
    links = request_referral(running.service.smtp_port, sink)
    verp = question_to(sink, PROSPECT).mail_from
    reply(running, sink, PROSPECT, "reply_gmail_top_en_yes.eml")
    referral = queries.recent_referrals()[0]
    eventually(lambda: queries.recent_referrals()[0].party("prospect").answer == "yes", "Bob's yes")
    bounce(running, "dsn_postfix_alias_target_unknown.eml", verp)
    eventually(lambda: "bounced" in [e.kind for e in queries.events_for(referral.id)], "the bounce")
    eventually(lambda: inbound_counts().get("new", 0) == 0, "processing")
    assert state() == "asking"
    assert len(sink.deliveries) == 3  # the receipt and the two questions: nobody was told
    web.post(links[PROVIDER], data={"answer": "yes"})
    eventually(lambda: state() == "introduced", "the introduction")


def test_a_bounce_to_the_plain_address_quoting_our_question_ends_the_referral(running, sink):
    # An MTA that returns mail to the From address: Gmail's report, quoting the Message-ID
    # of the question it could not deliver (set here to the one we sent).
    request_referral(running.service.smtp_port, sink)
    asked = parse(question_to(sink, PROSPECT))["Message-ID"]
    raw = wire_fixture("dsn_gmail_no_such_user.eml")
    raw = raw.replace(b"<consent.3f9a1c7e2b@intro.example.org>", asked.encode())
    with smtplib.SMTP("127.0.0.1", running.service.smtp_port, timeout=10) as smtp:
        assert smtp.sendmail("<>", [RCPT], raw) == {}
    eventually(lambda: state() == "undeliverable", "the referral to end")


def test_a_forged_bounce_to_the_plain_address_ends_nothing(running, sink):
    # Anyone can send from the null sender to refer@ a report naming a party's address.
    request_referral(running.service.smtp_port, sink)
    referral = queries.recent_referrals()[0]
    bounce(running, "dsn_forged_postfix_naming_a_party_to_the_plain_address.eml", RCPT)
    eventually(lambda: inbound_counts().get("ignored", 0) == 1, "the bounce to be kept")
    assert state() == "asking"
    assert "bounced" not in [e.kind for e in queries.events_for(referral.id)]
    assert len(sink.deliveries) == 3
    # The genuine bounce, through the question's VERP address, still ends it.
    bounce(running, "dsn_postfix_user_unknown.eml", question_to(sink, PROVIDER).mail_from)
    eventually(lambda: state() == "undeliverable", "the referral to end")


def test_a_temporary_failure_is_noted_and_nothing_changes(running, sink):
    request_referral(running.service.smtp_port, sink)
    verp = question_to(sink, PROVIDER).mail_from
    bounce(running, "dsn_postfix_delayed.eml", verp)
    referral = queries.recent_referrals()[0]
    eventually(
        lambda: "delivery delayed" in [e.kind for e in queries.events_for(referral.id)],
        "the delay to be noted",
    )
    assert state() == "asking"
    assert len(sink.deliveries) == 3


def test_a_bounce_after_the_introduction_changes_nothing(running, sink):
    links = request_referral(running.service.smtp_port, sink)
    verp = question_to(sink, PROSPECT).mail_from
    web.post(links[PROVIDER], data={"answer": "yes"})
    web.post(links[PROSPECT], data={"answer": "yes"})
    sink.wait_for(6)
    bounce(running, "dsn_postfix_user_unknown.eml", verp)
    referral = queries.recent_referrals()[0]
    eventually(lambda: "bounced" in [e.kind for e in queries.events_for(referral.id)], "the bounce")
    assert state() == "introduced"


def test_a_bounced_introduction_tells_the_referrer_whom_it_missed(running, sink):
    links = request_referral(running.service.smtp_port, sink)
    web.post(links[PROVIDER], data={"answer": "yes"})
    web.post(links[PROSPECT], data={"answer": "yes"})
    sink.wait_for(6)
    introduction = sink.to(PROSPECT)[-1]
    bounce(running, "dsn_postfix_user_unknown.eml", introduction.mail_from)
    eventually(lambda: len(sink.to(REFERRER)) == 3, "the referrer to be told")
    told = " ".join(text_of(sink.to(REFERRER)[-1]).split())
    assert "could not be delivered to Bob Smith at <bob@bakery.example>" in told
    assert state() == "introduced"
