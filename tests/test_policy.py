"""The Postfix policy service: its protocol as pure functions, then over a real socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.edge.policy import (
    DEFER,
    DUNNO,
    PolicyProtocolError,
    action_for,
    answer,
    is_rcpt,
    parse_line,
    parse_request,
)
from store import db, queries, referrers
from tests.conftest import REFERRER, InProcess, Sink, eventually, free_port, make_settings
from tests.helpers import NOW, PROSPECT, RCPT, request_referral

STRANGER = "mallory@elsewhere.example"


# ------------------------------------------------------------------ the protocol


def test_a_line_is_a_name_and_a_value_that_may_hold_equals():
    assert parse_line(b"sender=a=b@example.org\n") == ("sender", "a=b@example.org")
    assert parse_line(b"recipient=\n") == ("recipient", "")


@pytest.mark.parametrize("line", [b"no equals sign\n", b"=value\n"])
def test_a_line_without_a_name_is_not_the_protocol(line):
    with pytest.raises(PolicyProtocolError):
        parse_line(line)


def test_a_request_is_its_attributes():
    request = parse_request([b"request=smtpd_access_policy\n", b"protocol_state=RCPT\n"])
    assert request == {"request": "smtpd_access_policy", "protocol_state": "RCPT"}
    assert is_rcpt(request)
    assert not is_rcpt({**request, "protocol_state": "DATA"})
    assert not is_rcpt({"protocol_state": "RCPT"})


def test_an_answer_is_one_action_line_and_an_empty_line():
    assert answer(DUNNO) == b"action=DUNNO\n\n"
    assert action_for(None) == "DUNNO"
    assert action_for("5.1.1 <x@y>: no such mailbox here") == (
        "REJECT 5.1.1 <x@y>: no such mailbox here"
    )
    # A line break inside would end the answer early and put the connection out of step.
    assert answer("REJECT 5.7.1 two\nlines") == b"action=REJECT 5.7.1 two lines\n\n"


# ------------------------------------------------------------------ over a socket


def rcpt_request(sender: str, recipient: str, state: str = "RCPT") -> bytes:
    attributes = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.7",
        "helo_name": "mx.elsewhere.example",
        "sender": sender,
        "recipient": recipient,
        "recipient_count": "0",
        "instance": "123.456.7",
    }
    return b"".join(f"{k}={v}\n".encode() for k, v in attributes.items()) + b"\n"


class PolicyClient:
    """What Postfix's smtpd does: requests one after another on one kept connection."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def ask(self, request: bytes) -> str:
        self.sock.sendall(request)
        for _ in range(1000):  # bounded: an answer is a few dozen bytes
            if b"\n\n" in self.buffer:
                break
            chunk = self.sock.recv(4096)
            assert chunk, "the policy service closed the connection mid-request"
            self.buffer += chunk
        reply, _, self.buffer = self.buffer.partition(b"\n\n")
        assert reply.startswith(b"action="), reply
        return reply.decode().removeprefix("action=")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def policy(tmp_path: Path, store_url: str, sink: Sink) -> Iterator[InProcess]:
    settings = make_settings(tmp_path, store_url, sink.port).replace("policy", port=free_port())
    service = InProcess(settings)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def client(policy: InProcess) -> Iterator[PolicyClient]:
    assert policy.service.policy is not None
    connection = PolicyClient(policy.service.policy.port)
    try:
        yield connection
    finally:
        connection.close()


def test_several_requests_on_one_connection(client):
    assert client.ask(rcpt_request(REFERRER, RCPT)) == DUNNO
    assert client.ask(rcpt_request(STRANGER, RCPT)) == (
        f"REJECT 5.7.1 <{STRANGER}> is not allowed to send requests here"
    )
    assert client.ask(rcpt_request(STRANGER, "nobody@intro.example.org")) == (
        "REJECT 5.1.1 <nobody@intro.example.org>: no such mailbox here"
    )
    # Other domains, answers and bounces to our tagged addresses are not ours to refuse here.
    assert client.ask(rcpt_request(STRANGER, "someone@elsewhere.example")) == DUNNO
    assert client.ask(rcpt_request(STRANGER, "refer+abcdefghijklmnop@intro.example.org")) == DUNNO
    assert client.ask(rcpt_request("", "refer+b-abcdefghijklmnop@intro.example.org")) == DUNNO
    assert client.ask(rcpt_request("", RCPT)) == DUNNO
    assert client.ask(rcpt_request("ANY@Partners.Example", RCPT)) == DUNNO
    # Before RCPT there is no recipient to judge.
    assert client.ask(rcpt_request(STRANGER, RCPT, state="MAIL")) == DUNNO


def test_a_person_we_asked_may_write_to_the_referral_address(policy, sink, client):
    """A party whose mail client dropped the tag from our reply address still gets through."""
    assert client.ask(rcpt_request(PROSPECT, RCPT)).startswith("REJECT 5.7.1")
    request_referral(policy.settings.inbound.port, sink)
    eventually(lambda: queries.open_questions_to(PROSPECT), "the prospect asked")
    assert client.ask(rcpt_request(PROSPECT.upper(), RCPT)) == DUNNO


def test_a_referrer_added_to_the_store_is_let_through_at_once(policy, client):
    """The network's new member is allowed at RCPT as soon as `referrers add` ran."""
    assert client.ask(rcpt_request(STRANGER, RCPT)).startswith("REJECT 5.7.1")
    referrers.add(STRANGER, "", NOW)
    assert client.ask(rcpt_request(STRANGER, RCPT)) == DUNNO
    referrers.remove(STRANGER)
    assert client.ask(rcpt_request(STRANGER, RCPT)).startswith("REJECT 5.7.1")


def test_an_internal_error_defers_and_the_connection_goes_on(client):
    """The store breaks under the service (its table gone): a temporary answer, never a
    refusal or a pass, and the same connection serves the next request."""
    db.database.execute_sql("ALTER TABLE party RENAME TO party_away")
    try:
        assert client.ask(rcpt_request(STRANGER, RCPT)) == DEFER
        assert client.ask(rcpt_request(STRANGER, "someone@elsewhere.example")) == DUNNO
    finally:
        db.database.execute_sql("ALTER TABLE party_away RENAME TO party")
    assert client.ask(rcpt_request(STRANGER, RCPT)).startswith("REJECT 5.7.1")


def test_a_peer_that_does_not_speak_the_protocol_is_let_go(client):
    client.sock.sendall(b"x" * 10000 + b"\n")
    assert client.sock.recv(100) == b""


def test_a_malformed_line_in_a_request_defers_it(client):
    assert client.ask(b"request=smtpd_access_policy\nnot an attribute\n\n") == DEFER
    assert client.ask(rcpt_request(REFERRER, RCPT)) == DUNNO
