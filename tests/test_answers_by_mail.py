"""Answering a consent question by replying, over real SMTP, with replies as clients write them.

The fixtures are real clients' replies to a consent mail; only the addresses they answer
(From, To, In-Reply-To) are set to those of the question this test asked.
"""

from __future__ import annotations

import email
import smtplib
from email.policy import compat32

from store import queries
from tests.conftest import REFERRER, eventually, fixture_bytes, on_the_wire
from tests.helpers import (
    PROSPECT,
    PROVIDER,
    RCPT,
    inbound_counts,
    parse,
    request_referral,
    text_of,
    words_of,
)

NAMES = {PROVIDER: "Jane Roe", PROSPECT: "Bob Smith"}


def question(sink, who: str):
    [asked] = [d for d in sink.deliveries[:3] if d.rcpt_tos == (who,)]
    return parse(asked)


def reply(running, sink, who: str, fixture: str, *, to: str | None = None, author: str = ""):
    """`fixture` as `who`'s answer to their question; `to` and `author` override."""
    asked = question(sink, who)
    message = email.message_from_bytes(fixture_bytes(fixture), policy=compat32)
    address = to or asked["Reply-To"].addresses[0].addr_spec
    for name, value in {
        "From": f"{NAMES[who]} <{author or who}>",
        "To": f"Introductions <{address}>",
        "In-Reply-To": asked["Message-ID"],
        "References": asked["Message-ID"],
        "Delivered-To": address,
    }.items():
        del message[name]
        message[name] = value
    with smtplib.SMTP("127.0.0.1", running.service.smtp_port, timeout=10) as smtp:
        smtp.sendmail(author or who, [address], on_the_wire(message.as_bytes()))


def party(role: str):
    return queries.recent_referrals()[0].party(role)


def processed(count: int) -> None:
    eventually(lambda: sum(inbound_counts().values()) == count, "the reply")
    eventually(lambda: inbound_counts().get("new", 0) == 0, "processing")


def test_two_yeses_by_reply_introduce_them(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROVIDER, "reply_gmail_top_de_yes.eml")
    reply(running, sink, PROSPECT, "reply_outlook_ios_top_fr_yes.eml")
    eventually(lambda: queries.recent_referrals()[0].state == "introduced", "introduced")
    assert party("provider").answer_channel == party("prospect").answer_channel == "reply"


def test_a_no_by_reply_carries_its_reason_to_the_referrer(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROSPECT, "reply_outlook_top_en_no_not_relevant.eml")
    eventually(lambda: queries.recent_referrals()[0].state == "declined", "declined")
    assert party("prospect").decline_reason == "not_relevant"
    told = {d.rcpt_tos[0]: d for d in sink.wait_for(5)[3:]}
    assert "Their reason: it is not relevant to them." in text_of(told[REFERRER])
    assert "relevant" not in text_of(told[PROVIDER])


def test_a_yes_word_taken_back_declines_and_introduces_no_one(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROVIDER, "reply_gmail_top_en_yes.eml")
    eventually(lambda: party("provider").answer == "yes", "the provider's yes")
    reply(running, sink, PROSPECT, "reply_iphone_top_en_no_absolutely_not.eml")
    eventually(lambda: queries.recent_referrals()[0].state == "declined", "declined")
    told = {d.rcpt_tos[0]: d for d in sink.wait_for(5)[3:]}
    assert NAMES[PROSPECT] not in text_of(told[PROVIDER])
    assert all(NAMES[PROVIDER] not in text_of(d) for d in sink.deliveries if PROSPECT in d.rcpt_tos)


def test_an_unclear_reply_is_explained_once(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROVIDER, "reply_iphone_top_en_unclear.eml")
    [explained] = sink.wait_for(4)[3:]
    assert explained.rcpt_tos == (PROVIDER,)
    text = " ".join(text_of(explained).split())
    assert "We could not tell from it whether you would like the introduction" in text
    assert "/c/" in text and "bakery.example" not in text
    assert "Bob" not in words_of(explained)
    assert parse(explained)["Reply-To"] == question(sink, PROVIDER)["Reply-To"]
    reply(running, sink, PROVIDER, "reply_thunderbird_bottom_fr_unclear.eml")
    processed(3)
    assert len(sink.deliveries) == 4 and party("provider").answer is None


def test_a_yes_by_reply_after_ones_own_no_stands_and_is_explained_once(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROSPECT, "reply_outlook_top_en_no_not_relevant.eml")
    told = sink.wait_for(5)[3:]
    assert sorted(d.rcpt_tos[0] for d in told) == sorted([PROVIDER, REFERRER])
    reply(running, sink, PROSPECT, "reply_iphone_top_en_yes_after_own_no.eml")
    [note] = sink.wait_for(6)[5:]
    assert note.rcpt_tos == (PROSPECT,)
    text = " ".join(words_of(note).split())
    assert "the other person has already been told that it will not go ahead" in text
    assert "please ask Ada Lovelace (ada@referrer.example) to send a new request" in text
    assert "Jane" not in text and "acme.example" not in text
    # A second yes gets nothing more, and no one else ever heard of either.
    reply(running, sink, PROSPECT, "reply_gmail_top_en_yes.eml")
    processed(4)
    assert len(sink.deliveries) == 6
    assert queries.recent_referrals()[0].state == "declined" and party("prospect").answer == "no"


def test_a_client_that_drops_the_tag_still_answers(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROVIDER, "reply_gmail_top_en_yes.eml", to=RCPT)
    eventually(lambda: party("provider").answer == "yes", "the answer")


def test_a_reply_from_someone_else_is_not_an_answer(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROVIDER, "reply_gmail_top_en_yes.eml", author="assistant@acme.example")
    processed(2)
    assert party("provider").answer is None
    assert len(sink.deliveries) == 3


def test_an_out_of_office_to_the_question_is_never_answered(running, sink):
    request_referral(running.service.smtp_port, sink)
    reply(running, sink, PROVIDER, "auto_reply_exchange_out_of_office.eml")
    processed(2)
    assert inbound_counts() == {"processed": 1, "ignored": 1}
    assert party("provider").answer is None and len(sink.deliveries) == 3
