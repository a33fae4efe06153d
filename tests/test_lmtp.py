"""LMTP over a real socket: after DATA, one reply per accepted recipient (RFC 2033)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.models import InboundMessage
from tests.conftest import REFERRER, InProcess, make_settings, wire_fixture
from tests.helpers import RCPT, inbound_counts

# A reply address of ours (a well-formed key): routed, so taken at RCPT from anyone.
REPLY = "refer+abcdefghijklmnop@intro.example.org"
STRANGER = "mallory@elsewhere.example"


@pytest.fixture
def lmtp(tmp_path: Path, store_url: str) -> Iterator[InProcess]:
    settings = make_settings(tmp_path, store_url).replace(
        "inbound", protocol="lmtp", max_message_bytes=4096
    )
    service = InProcess(settings)
    try:
        yield service
    finally:
        service.stop()


def transaction(service: InProcess, sender: str, recipients: list[str], raw: bytes):
    """LHLO, MAIL, every RCPT, DATA; then the replies after the final dot, one per recipient."""
    client = smtplib.LMTP("127.0.0.1", service.service.smtp_port, timeout=10)
    try:
        client.ehlo()  # smtplib's LMTP class sends LHLO here
        assert client.mail(sender)[0] == 250
        for recipient in recipients:
            assert client.rcpt(recipient)[0] == 250
        # smtplib reads one reply after DATA; an LMTP server owes the others too.
        replies = [client.data(raw)]
        replies += [client.getreply() for _ in recipients[1:]]
        assert client.noop()[0] == 250, "the dialogue is still in step after the replies"
        return replies
    finally:
        client.close()


def stored_recipients() -> list[list[str]]:
    return [row.recipients.split("\n") for row in InboundMessage.select()]


def test_two_recipients_get_two_replies_and_one_stored_message(lmtp):
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    replies = transaction(lmtp, REFERRER, [RCPT, REPLY], raw)
    assert [code for code, _ in replies] == [250, 250]
    assert replies[0][1] == replies[1][1] and b"queued as" in replies[0][1]
    # One row for both: intake processes the message once, and it was stored before the 250s.
    assert stored_recipients() == [[RCPT, REPLY]]


def test_each_recipient_has_its_own_fate(lmtp):
    """A stranger may not send a request, but may answer: the request is refused, the
    answer kept, in one transaction, and only the answer's recipient is stored."""
    raw = wire_fixture("request_from_stranger.eml")
    replies = transaction(lmtp, STRANGER, [RCPT, REPLY], raw)
    assert replies[0] == (550, f"5.7.1 <{STRANGER}> is not allowed to send requests here".encode())
    assert replies[1][0] == 250
    assert stored_recipients() == [[REPLY]]


def test_all_recipients_refused_stores_nothing(lmtp):
    raw = wire_fixture("request_from_stranger.eml")
    replies = transaction(lmtp, STRANGER, [RCPT, RCPT], raw)
    assert [code for code, _ in replies] == [550, 550]
    assert inbound_counts() == {}


def test_a_reply_for_everyone_is_repeated_for_each_recipient(lmtp):
    """Too much data concerns the whole message: each recipient still gets its reply."""
    raw = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100
    replies = transaction(lmtp, REFERRER, [RCPT, REPLY], raw)
    assert [code for code, _ in replies] == [552, 552]
    assert inbound_counts() == {}


def test_the_same_message_again_is_accepted_for_each_and_kept_once(lmtp):
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    transaction(lmtp, REFERRER, [RCPT], raw)
    again = transaction(lmtp, REFERRER, [RCPT, REPLY], raw)
    assert again == [(250, b"2.0.0 OK: already received")] * 2
    assert len(stored_recipients()) == 1


def test_data_without_recipients_gets_one_reply(lmtp):
    client = smtplib.LMTP("127.0.0.1", lmtp.service.smtp_port, timeout=10)
    try:
        client.ehlo()
        client.mail(REFERRER)
        assert client.docmd("DATA")[0] == 503
        assert client.noop()[0] == 250
    finally:
        client.close()


def test_smtp_greetings_are_not_lmtp(lmtp):
    client = smtplib.SMTP("127.0.0.1", lmtp.service.smtp_port, timeout=10)
    try:
        assert client.docmd("EHLO", "client.example")[0] == 500
    finally:
        client.close()
