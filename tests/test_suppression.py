"""Never contact me again: from any mail or page, kept as a keyed hash, and it holds."""

from __future__ import annotations

import re

import pytest

from service.tokens import Purpose
from store import queries
from store.db import database
from tests.conftest import REFERRER, eventually, wire_fixture
from tests.helpers import PROSPECT, PROVIDER, parse, request_referral, send, text_of, web


@pytest.fixture
def links(running, sink):
    found = request_referral(running.service.smtp_port, sink)
    eventually(lambda: queries.outbox_counts() == {"sent": 3}, "the outbox to settle")
    return found


def optout_link(delivery) -> str:
    match = re.search(r"(http://\S+/u/[A-Za-z0-9_.\-]+)", text_of(delivery))
    assert match, "a mail without a way to opt out"
    return match.group(1)


def to(sink, address):
    return [d for d in sink.deliveries if d.rcpt_tos == (address,)]


def test_every_mail_offers_it_in_the_footer_and_as_one_click_headers(links, sink):
    for delivery in sink.deliveries:
        message = parse(delivery)
        link = optout_link(delivery)
        assert message["List-Unsubscribe"] == f"<{link}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",)).get_content()
        assert "Never contact me again" in html and link in html


def test_opening_the_link_only_asks(links, sink):
    [question] = to(sink, PROSPECT)
    page = web.get(optout_link(question))
    assert page.status_code == 200 and "Never hear from us again?" in page.text
    assert 'method="post"' in page.text
    assert web.head(optout_link(question)).status_code == 200
    assert queries.recent_referrals()[0].state == "asking"
    assert database.execute_sql("SELECT COUNT(*) FROM suppression").fetchone()[0] == 0


def test_confirming_closes_their_question_and_keeps_no_address(links, sink):
    [question] = to(sink, PROSPECT)
    done = web.post(optout_link(question))
    assert done.status_code == 200 and "we will not contact you again" in done.text
    referral = eventually(
        lambda: [r for r in queries.recent_referrals() if r.state == "declined"], "closed"
    )[0]
    assert referral.party("prospect").answer == "no"
    # The other party hears only that it will not go ahead; the referrer who said no.
    sink.wait_for(5)
    [_, told] = to(sink, PROVIDER)
    assert "will not go ahead" in text_of(told)
    stored = database.execute_sql("SELECT address_hash FROM suppression").fetchall()
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{64}", stored[0][0])
    dump = "\n".join(str(row) for row in database.execute_sql("SELECT * FROM suppression"))
    assert "bakery" not in dump and "bob" not in dump


def test_a_mail_clients_one_click_post_works_too(links, sink):
    [question] = to(sink, PROVIDER)
    one_click = web.post(
        optout_link(question),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    assert eventually(lambda: queries.recent_referrals()[0].state == "declined", "closed")


def test_the_consent_page_offers_it_too(links):
    page = web.get(links[PROVIDER])
    match = re.search(r'href="(http://\S+/u/[^"]+)">Never contact me again', page.text)
    assert match
    assert web.post(match.group(1)).status_code == 200
    assert queries.recent_referrals()[0].party("provider").answer == "no"


def test_a_later_request_naming_them_gets_a_receipt_and_asks_them_nothing(running, links, sink):
    [question] = to(sink, PROSPECT)
    web.post(optout_link(question))
    sink.wait_for(5)
    again = wire_fixture("request_thunderbird_labelled_lines.eml").replace(
        b"Message-ID: <", b"Message-ID: <again.", 1
    )
    send(running.service.smtp_port, again)
    # As for any request: a receipt to the referrer, the question to the provider; the
    # "declined" comes later (tests/test_withheld.py), so nothing tells that they opted out.
    later = sink.wait_for(7)[5:]
    assert sorted(d.rcpt_tos for d in later) == [(REFERRER,), (PROVIDER,)]
    receipt = next(d for d in later if d.rcpt_tos == (REFERRER,))
    assert parse(receipt)["Subject"].startswith("Received: ")
    assert [r.state for r in queries.recent_referrals()] == ["asking", "declined"]
    assert len(to(sink, PROSPECT)) == 1  # the first question, and nothing since


def test_a_tampered_or_foreign_token_is_404(running, links):
    base = links[PROVIDER].rsplit("/c/", 1)[0]
    assert web.get(f"{base}/u/nonsense").status_code == 404
    consent_token = links[PROVIDER].rsplit("/", 1)[1]
    assert web.post(f"{base}/u/{consent_token}").status_code == 404
    stranger = running.service.ctx.tokens.make(Purpose.OPTOUT, "q:no-such-question")
    assert web.post(f"{base}/u/{stranger}").status_code == 404
