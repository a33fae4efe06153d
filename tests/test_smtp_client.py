"""The outbox's SMTP client against real relays: aiosmtpd (with and without PIPELINING
announced), Postfix's smtp-sink where Postfix is installed, and, for replies no sane relay
gives, a server on a real socket that says what the test scripts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from hypothesis import assume, given
from hypothesis import strategies as st

from service.delivery import transports
from service.delivery.smtp_client import wire_form
from service.delivery.transports import SmtpRelay, from_settings, helo_name
from service.errors import DeliveryError
from store.records import OutboxItem
from tests.conftest import SinkHandler, eventually, free_port, listening, make_settings

SENDER = "refer+b-k1@intro.example.org"
SMTP_SINK = Path("/usr/sbin/smtp-sink")


def item(*recipients: str, raw: bytes = b"Subject: hello\n\nA line.\n", n: int = 1) -> OutboxItem:
    return OutboxItem(
        id=n,
        message_id=f"<m{n}@intro.example.org>",
        purpose="consent_request",
        envelope_from=SENDER,
        recipients=recipients or ("jane@acme.example",),
        raw=raw,
        attempts=1,
        created_at=datetime(2027, 1, 1, tzinfo=UTC),
    )


class Relay(SinkHandler):
    """aiosmtpd, refusing at MAIL, RCPT or after DATA as told; it announces PIPELINING when
    asked (it reads a pipelined group a command at a time, as RFC 2920 lets a server)."""

    def __init__(self, pipelining: bool) -> None:
        super().__init__()
        self.pipelining = pipelining
        self.greetings = 0
        self.at_mail: list[str] = []
        self.at_rcpt: dict[str, str] = {}
        self.after_data: dict[str, str] = {}
        self.mail_options: list[list[str]] = []

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list
    ) -> list[str]:
        self.greetings += 1
        session.host_name = hostname  # type: ignore[attr-defined]
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: object, session: object, envelope: object, address: str, options: list
    ) -> str:
        if self.at_mail:
            return self.at_mail.pop(0)
        envelope.mail_from = address  # type: ignore[attr-defined]
        envelope.mail_options.extend(options)  # type: ignore[attr-defined]
        self.mail_options.append(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list
    ) -> str:
        if address in self.at_rcpt:
            return self.at_rcpt[address]
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        for rcpt in envelope.rcpt_tos:  # type: ignore[attr-defined]
            if rcpt in self.after_data:
                return self.after_data[rcpt]
        return await super().handle_DATA(server, session, envelope)


class SlowOnce(Relay):
    """Takes a mail and answers its dot only after the client has given up, once."""

    def __init__(self) -> None:
        super().__init__(pipelining=True)
        self.slow = 1

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.slow:
            self.slow -= 1
            await asyncio.sleep(2)
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def running(handler: SinkHandler, **options: object) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(params=[True, False], ids=["pipelining", "one-at-a-time"])
def relay(request: pytest.FixtureRequest) -> Iterator[tuple[Relay, int]]:
    handler = Relay(pipelining=request.param)
    with running(handler) as port:
        yield handler, port


def send_all(transport: SmtpRelay, *items: OutboxItem) -> list[str | DeliveryError]:
    """Each item's note, or the DeliveryError it met, sent one after another."""

    async def run() -> list[str | DeliveryError]:
        outcomes: list[str | DeliveryError] = []
        try:
            for one in items:
                try:
                    outcomes.append(await transport.send(one))
                except DeliveryError as exc:
                    outcomes.append(exc)
        finally:
            await transport.close()
        return outcomes

    return asyncio.run(run())


def test_a_mail_arrives_whole_with_the_service_as_envelope_sender(relay):
    handler, port = relay
    raw = b"Subject: dots\n\n.a line that starts with a dot\n..two\n.\nlone\rCR, no end"
    assert send_all(SmtpRelay("127.0.0.1", port, timeout=5), item(raw=raw)) == [""]
    (got,) = handler.deliveries
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ("jane@acme.example",)
    # What the relay keeps is the stored mail with CRLF line ends: no dot lost or added.
    assert got.data == raw.replace(b"\r", b"\n").replace(b"\n", b"\r\n") + b"\r\n"


def test_refusals_keep_the_connection_and_say_which_are_final(relay):
    handler, port = relay
    handler.at_rcpt = {
        "gone@acme.example": "550 5.1.1 User unknown",
        "full@acme.example": "452 4.2.2 Mailbox full",
    }
    handler.at_mail = ["451 4.3.0 Try again later"]
    handler.after_data = {"policy@acme.example": "554 5.7.1 Message refused by policy"}
    outcomes = send_all(
        SmtpRelay("127.0.0.1", port, timeout=5),
        item(n=1),  # refused at MAIL, for now
        item("gone@acme.example", n=2),  # every recipient refused for good
        item("gone@acme.example", "full@acme.example", n=3),  # refused, one only for now
        item("jane@acme.example", "gone@acme.example", n=4),  # one taken: the mail went
        item("policy@acme.example", n=5),  # refused after the dot, for good
        item(n=6),
    )
    mail, gone, mixed, partial, policy, fine = outcomes
    assert isinstance(mail, DeliveryError) and not mail.permanent and "451" in str(mail)
    assert isinstance(gone, DeliveryError) and gone.permanent and "550" in str(gone)
    assert isinstance(mixed, DeliveryError) and not mixed.permanent
    assert partial == "refused gone@acme.example: 550 5.1.1 User unknown"
    assert isinstance(policy, DeliveryError) and policy.permanent and "554" in str(policy)
    assert fine == ""
    assert [d.rcpt_tos for d in handler.deliveries] == [("jane@acme.example",)] * 2
    # Every refusal left the conversation where the next mail could go on it.
    assert handler.greetings == 1


@dataclass
class Tap:
    """What a client wrote on its way to the relay, a read at a time."""

    chunks: list[bytes] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tapped(port: int) -> AsyncIterator[tuple[int, Tap]]:
    """A TCP proxy to the relay that keeps each read of what the client sent."""
    tap = Tap()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if keep:
                    tap.chunks.append(data)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def proxy(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        relay_r, relay_w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pump(client_r, relay_w, True), pump(relay_r, client_w, False))

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], tap
    finally:
        server.close()


def envelope_groups(port: int, count: int) -> list[bytes]:
    """What the client wrote, a read at a time, sending `count` mails through a tap."""

    async def run() -> list[bytes]:
        async with tapped(port) as (proxy_port, tap):
            transport = SmtpRelay("127.0.0.1", proxy_port, timeout=5)
            try:
                for n in range(count):
                    assert (
                        await transport.send(item("jane@acme.example", "bob@b.example", n=n)) == ""
                    )
            finally:
                await transport.close()
            return tap.chunks

    return asyncio.run(run())


def test_a_relay_that_offers_pipelining_gets_the_envelope_in_one_write(relay):
    handler, port = relay
    chunks = envelope_groups(port, 3)
    together = [
        c for c in chunks if re.search(rb"^MAIL FROM:.*^RCPT TO:.*^DATA\r\n", c, re.M | re.S)
    ]
    apart = [c for c in chunks if c.startswith((b"MAIL", b"RCPT", b"DATA"))]
    if handler.pipelining:
        assert len(together) == 3
    else:
        # Without PIPELINING, each command waits for the reply to the one before.
        assert together == [] and len(apart) == 3 * 4
    assert len(handler.deliveries) == 3


@pytest.mark.skipif(not SMTP_SINK.exists(), reason="Postfix's smtp-sink is not installed")
def test_postfix_smtp_sink_takes_pipelined_mail_on_kept_connections():
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it drops root once it listens
    sink = subprocess.Popen([str(SMTP_SINK), *user, f"127.0.0.1:{port}", "100"])
    try:
        eventually(lambda: listening(port), "smtp-sink listening")
        chunks = envelope_groups(port, 20)
    finally:
        sink.terminate()
        sink.wait(10)
    # smtp-sink answers 250 after the dot only when the pipelined group was read right.
    assert len([c for c in chunks if c.startswith(b"MAIL FROM:") and b"\r\nDATA\r\n" in c]) == 20
    assert sum(c.startswith(b"EHLO") for c in chunks) == 1


class Accounts(SinkHandler):
    def __init__(self, login: bytes, password: bytes) -> None:
        super().__init__()
        self.login, self.password = login, password
        self.attempts = 0

    def authenticate(
        self, server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        self.attempts += 1
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.login,
            self.password,
        )
        return AuthResult(success=ok, handled=False)


# Logging in without TLS is this test's shortcut, never the advice (the README's is TLS).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mechanisms", [["PLAIN", "LOGIN"], ["LOGIN"]], ids=["plain", "login"])
def test_a_relay_that_wants_a_login_gets_it_and_a_wrong_password_keeps_the_mail(mechanisms):
    accounts = Accounts(b"care", b"s3cret \xc3\xa9")
    excluded = [m for m in ("PLAIN", "LOGIN") if m not in mechanisms]
    options = dict(
        auth_required=True,
        auth_require_tls=False,
        authenticator=accounts.authenticate,
        auth_exclude_mechanism=excluded,
    )
    with running(accounts, **options) as port:
        right = SmtpRelay("127.0.0.1", port, username="care", password="s3cret é", timeout=5)
        wrong = SmtpRelay("127.0.0.1", port, username="care", password="guess", timeout=5)
        assert send_all(right, item(n=1)) == [""]
        refused, waiting = send_all(wrong, item(n=2), item(n=3))
    assert len(accounts.deliveries) == 1
    # A wrong password is the operator's to fix: the mail waits in the outbox meanwhile,
    # and the next mails wait without asking the relay again at once.
    for outcome in (refused, waiting):
        assert isinstance(outcome, DeliveryError) and not outcome.permanent
        assert "refused our login" in str(outcome)
    assert accounts.attempts == 2


def test_an_address_beyond_ascii_goes_only_to_a_relay_that_carries_it():
    with running(handler := Relay(pipelining=True), enable_SMTPUTF8=True) as port:
        outcomes = send_all(SmtpRelay("127.0.0.1", port, timeout=5), item("zoë@acme.example"))
    assert outcomes == [""]
    assert handler.deliveries[0].rcpt_tos == ("zoë@acme.example",)
    assert handler.mail_options == [["SMTPUTF8"]]
    with running(Relay(pipelining=True), enable_SMTPUTF8=False) as port:
        (refused,) = send_all(SmtpRelay("127.0.0.1", port, timeout=5), item("zoë@acme.example"))
    assert isinstance(refused, DeliveryError) and refused.permanent
    assert "SMTPUTF8" in str(refused)


@dataclass
class Script:
    """What a scripted server says, and what it heard."""

    lines: dict[bytes, bytes | list[bytes]]  # first word -> reply, or replies in turn
    greeting: bytes = b"220 relay.example ESMTP\r\n"
    heard: list[bytes] = field(default_factory=list)
    connections: int = 0
    hang_ups: int = 0  # how many times to close the connection once a mail is answered

    def answer(self, word: bytes) -> bytes | None:
        said = self.lines.get(word)
        if isinstance(said, list):
            return said.pop(0) if len(said) > 1 else said[0]
        return said


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    """A server on a real socket that greets as scripted and answers each command by its
    first word (a word it has no answer for closes the connection); after a 354 it reads
    the message up to its dot, which it answers as the word "." says (250 if it says
    nothing). Yields its port."""

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        writer.write(script.greeting)
        while line := await reader.readline():
            script.heard.append(line)
            answer = script.answer(line.split(b" ")[0].split(b":")[0].strip().upper())
            if answer is None:
                break
            writer.write(answer)
            await writer.drain()
            if answer.startswith(b"421"):
                break
            if answer.startswith(b"354"):
                while (body := await reader.readline()) not in (b".\r\n", b""):
                    script.heard.append(body)
                script.heard.append(body)
                writer.write(script.answer(b".") or b"250 2.0.0 queued\r\n")
                if script.hang_ups:
                    script.hang_ups -= 1
                    await writer.drain()
                    break
        writer.close()

    server = await asyncio.start_server(talk, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def talk_to(script: Script, *items: OutboxItem, **relay: object) -> list[str | DeliveryError]:
    """Each item sent, in turn, through one SmtpRelay to the scripted server."""

    async def run() -> list[str | DeliveryError]:
        async with scripted(script) as port:
            transport = SmtpRelay("127.0.0.1", port, **{"timeout": 4, **relay})  # type: ignore[arg-type]
            return await asyncio.to_thread(send_all, transport, *items)

    return asyncio.run(run())


EHLO = b"250-relay.example\r\n250 PIPELINING\r\n"
OK = b"250 2.0.0 OK\r\n"
RELAY = {b"EHLO": EHLO, b"MAIL": OK, b"RCPT": OK, b"DATA": b"354 go ahead\r\n", b"QUIT": OK}


@pytest.mark.parametrize(
    ("greeting", "lines", "said"),
    [
        (b"this is no smtp\r\n", {}, "not an SMTP reply"),
        (b"554 5.7.1 go away\r\n", {}, "greeted with 554"),
        (b"220 hi\r\n", {b"EHLO": EHLO}, "closed the connection"),  # gone at MAIL
        (b"220 hi\r\n", {b"EHLO": b"250-x\r\n" * 500 + b"250 x\r\n"}, "too many lines"),
        (b"220 hi\r\n", {b"EHLO": b"250 " + b"x" * 10000 + b"\r\n"}, "past the limit"),
        (b"220 hi\r\n", {**RELAY, b"MAIL": b"999 what\r\n"}, "not an SMTP reply"),
        (b"220 hi\r\n", {**RELAY, b"MAIL": b"250\x00OK\r\n"}, "not an SMTP reply"),
    ],
    ids=[
        "garbled",
        "refused-at-greeting",
        "hangs-up",
        "endless-reply",
        "endless-line",
        "no-such-code",
        "no-separator",
    ],
)
def test_a_relay_that_does_not_speak_smtp_keeps_the_mail_for_later(greeting, lines, said):
    (outcome,) = talk_to(Script(lines, greeting), item())
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    assert said in str(outcome)


def test_a_relay_that_opens_data_with_nobody_to_deliver_to_gets_a_lone_dot():
    script = Script(
        {**RELAY, b"RCPT": b"550 5.1.1 no such user\r\n", b".": b"554 5.5.1 no recipients\r\n"}
    )
    first, second = talk_to(script, item(n=1), item(n=2))
    # As RFC 2920 3.1 asks: a dot alone, and the refusals the recipients got, for good.
    assert isinstance(first, DeliveryError) and first.permanent and "550" in str(first)
    assert isinstance(second, DeliveryError) and second.permanent
    assert b".\r\n" in script.heard
    assert not any(line.startswith(b"Subject") for line in script.heard)
    assert script.connections == 1  # the conversation could go on after it


@pytest.mark.parametrize(
    "reply",
    [b"553 5.7.1 Sender address rejected: not owned by user", b"530 authentication required"],
    ids=["not-owned", "login-required"],
)
def test_a_sender_refused_for_good_keeps_the_mail_and_the_relay_is_asked_again_later(
    reply, monkeypatch
):
    script = Script({**RELAY, b"MAIL": reply + b"\r\n", b"RSET": OK})
    refused, waiting = talk_to(script, item(n=1), item(n=2))
    # Our sender or our account, not the recipient: the operator's to fix, the mail waits.
    for outcome in (refused, waiting):
        assert isinstance(outcome, DeliveryError) and not outcome.permanent and outcome.ours
        assert reply.decode() in str(outcome)
    # The second mail did not ask the relay again: one refusal, not one per waiting mail.
    assert [line for line in script.heard if line.startswith(b"MAIL")] == [
        b"MAIL FROM:<" + SENDER.encode() + b">\r\n"
    ]
    # A minute later it is asked again, and what it takes goes.
    monkeypatch.setattr(transports, "LOGIN_PAUSE_SECONDS", 0.0)
    script = Script({**RELAY, b"MAIL": [reply + b"\r\n", OK], b"RSET": OK})
    first, second = talk_to(script, item(n=1), item(n=2))
    assert isinstance(first, DeliveryError) and first.ours
    assert second == ""


@pytest.mark.parametrize(
    ("reply", "permanent"), [(b"451 4.3.0 not now", False), (b"554 5.3.0 no", True)]
)
def test_a_refused_data_command_is_the_relays_word_on_the_mail(reply, permanent):
    script = Script({**RELAY, b"DATA": reply + b"\r\n", b"RSET": OK})
    (outcome,) = talk_to(script, item())
    assert isinstance(outcome, DeliveryError) and outcome.permanent is permanent
    assert reply.decode() in str(outcome)


def test_a_421_ends_that_mail_and_the_next_opens_a_new_connection():
    script = Script({**RELAY, b".": [b"421 4.3.2 shutting down\r\n", OK]})
    first, second = talk_to(script, item(n=1), item(n=2))
    assert isinstance(first, DeliveryError) and not first.permanent and "421" in str(first)
    assert second == ""
    assert script.connections == 2


@pytest.mark.parametrize(
    ("lines", "said", "permanent"),
    [
        ({b"MAIL": b"421 4.3.2 shutting down\r\n"}, "421", False),
        (
            {
                b"RCPT": b"550 5.1.1 no such user\r\n",
                b"DATA": b"554 5.5.1 no valid recipients\r\n",
                b"RSET": b"500 what\r\n",
            },
            "550",
            True,
        ),
    ],
    ids=["421-at-mail", "rset-refused"],
)
def test_a_conversation_that_cannot_go_on_keeps_the_relays_word_and_ends(lines, said, permanent):
    script = Script({**RELAY, b"RSET": OK, **lines})
    first, _ = talk_to(script, item(n=1), item(n=2))
    assert isinstance(first, DeliveryError) and first.permanent is permanent
    assert said in str(first)
    assert script.connections == 2  # the next mail did not go on that connection


def test_a_kept_connection_the_relay_no_longer_answers_is_left_for_a_new_one(monkeypatch):
    monkeypatch.setattr(transports, "FRESH_SECONDS", 0.0)  # every kept connection is asked
    script = Script({**RELAY, b"NOOP": b"421 4.4.2 idle too long\r\n"})
    assert talk_to(script, item(n=1), item(n=2)) == ["", ""]
    assert script.connections == 2


def test_a_kept_connection_the_relay_closed_is_not_taken_for_the_next_mail():
    """A relay closes an idle connection when it likes (Postfix after its timeout)."""
    script = Script(RELAY, hang_ups=1)

    async def run() -> list[str]:
        async with scripted(script) as port:
            transport = SmtpRelay("127.0.0.1", port, timeout=4)
            try:
                first = await transport.send(item(n=1))
                await asyncio.sleep(0.3)  # the relay's close has arrived, unread
                return [first, await transport.send(item(n=2))]
            finally:
                await transport.close()

    assert asyncio.run(run()) == ["", ""]
    assert script.connections == 2


def test_starttls_required_and_not_offered_sends_nothing_in_the_clear():
    script = Script(RELAY)
    (outcome,) = talk_to(script, item(), tls="starttls")
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    assert "does not offer STARTTLS" in str(outcome)
    assert [line[:4] for line in script.heard] == [b"EHLO"]


def test_a_relay_that_knows_no_ehlo_is_greeted_with_helo_and_offered_nothing_it_lacks():
    script = Script({**RELAY, b"EHLO": b"502 5.5.2 what\r\n", b"HELO": OK})
    assert talk_to(script, item("jane@acme.example", "bob@b.example")) == [""]
    commands = [line.split(b" ")[0].split(b":")[0].strip() for line in script.heard[:6]]
    assert commands == [b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RCPT", b"DATA"]


@pytest.mark.parametrize(
    ("fqdn", "domain", "named"),
    [
        ("mail.example.net", "intro.example.org", "mail.example.net"),
        ("localhost", "intro.example.org", "intro.example.org"),
        ("localhost.localdomain", "intro.example.org", "intro.example.org"),
        ("3f2a9c1be0d4", "intro.example.org", "intro.example.org"),  # a container's id
        ("3f2a9c1be0d4", "bücher.example", "xn--bcher-kva.example"),
        ("3f2a9c1be0d4", "", "3f2a9c1be0d4"),
        ("", "", "localhost"),
    ],
)
def test_ehlo_names_this_host_if_it_has_a_full_name_else_the_services_domain(fqdn, domain, named):
    assert helo_name(fqdn, domain) == named


def test_the_relay_hears_the_name_the_configuration_gives(tmp_path):
    settings = make_settings(tmp_path, "sqlite://", 2525)
    script = Script(RELAY)
    relay = from_settings(settings)
    assert isinstance(relay, SmtpRelay)
    assert talk_to(script, item(), domain=relay.domain) == [""]
    expected = helo_name(socket.getfqdn(), "intro.example.org")
    assert script.heard[0] == b"EHLO " + expected.encode() + b"\r\n"


def test_duplicate_recipients_refused_for_now_are_refused_for_now():
    script = Script(
        {**RELAY, b"RCPT": b"452 4.2.2 mailbox full\r\n", b"DATA": b"503 no rcpt\r\n", b"RSET": OK}
    )
    (outcome,) = talk_to(script, item("full@acme.example", "full@acme.example"))
    assert isinstance(outcome, DeliveryError) and not outcome.permanent


@pytest.mark.parametrize(
    "address",
    ["bob@b.example>\r\nRCPT TO:<mallory@m.example", "bob@b.example\x00", "zo\udcebe@acme.example"],
    ids=["a-command-inside", "nul", "lone-surrogate"],
)
def test_an_address_no_relay_could_take_fails_for_good_and_sends_nothing(address):
    script = Script({**RELAY, b"EHLO": b"250-relay.example\r\n250 SMTPUTF8\r\n"})
    (outcome,) = talk_to(script, item(address))
    assert isinstance(outcome, DeliveryError) and outcome.permanent
    assert not any(line.startswith((b"MAIL", b"RCPT")) for line in script.heard)


def test_a_relay_that_offers_only_a_login_we_do_not_know_keeps_the_mail():
    script = Script({**RELAY, b"EHLO": b"250-relay.example\r\n250 AUTH CRAM-MD5\r\n"})
    (outcome,) = talk_to(script, item(), username="care", password="secret")
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    assert "AUTH CRAM-MD5" in str(outcome)
    assert not any(line.startswith(b"MAIL") for line in script.heard)


@pytest.mark.parametrize(
    "offered",
    [b"250 AUTH=PLAIN LOGIN\r\n", b"250-AUTH PLAIN LOGIN\r\n250 AUTH=PLAIN LOGIN\r\n"],
    ids=["old-form-alone", "old-form-beside"],
)
def test_a_relay_that_offers_its_logins_in_the_old_form_gets_one(offered):
    script = Script({**RELAY, b"EHLO": b"250-relay.example\r\n" + offered, b"AUTH": b"235 OK\r\n"})
    (outcome,) = talk_to(script, item(), username="care", password="secret")
    assert outcome == ""
    login = base64.b64encode(b"\0care\0secret")
    assert b"AUTH PLAIN " + login + b"\r\n" in script.heard
    assert any(line.startswith(b"MAIL") for line in script.heard)


def over_starttls(
    certificate: tuple[Path, Path],
    offered: bytes,
    secured_ehlo: bytes,
    heard: list[bytes],
    after_220: bytes = b"",
    **relay: object,
) -> object:
    """One mail sent with STARTTLS required, to a relay that answers the first EHLO with
    `offered`, adds `after_220` to its 220 for STARTTLS (as a man in the middle would), and
    once secured answers EHLO with `secured_ehlo` and all else with 250; the outcome. What
    it hears under TLS goes to `heard`."""
    cert, key = certificate
    secured = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    secured.load_cert_chain(cert, key)

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.example ESMTP\r\n")
        await reader.readline()
        writer.write(offered)
        await reader.readline()
        writer.write(b"220 go ahead\r\n" + after_220)
        await writer.drain()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.start_tls(secured)
            while line := await reader.readline():
                heard.append(line)
                writer.write(secured_ehlo if line.startswith(b"EHLO") else OK)
        writer.close()

    async def run() -> list[str | DeliveryError]:
        server = await asyncio.start_server(talk, "127.0.0.1", 0)
        transport = SmtpRelay(
            "127.0.0.1",
            server.sockets[0].getsockname()[1],
            tls="starttls",
            tls_context=ssl.create_default_context(cafile=str(cert)),
            timeout=4,
            **relay,
        )
        try:
            return await asyncio.to_thread(send_all, transport, item())
        finally:
            server.close()

    (outcome,) = asyncio.run(run())
    return outcome


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the certificate")
def test_what_came_in_the_clear_after_starttls_is_never_read_as_a_reply_under_tls(certificate):
    """RFC 3207 5: a man in the middle who appends replies to the relay's 220 must not
    have them answer the EHLO we send once secured."""
    heard: list[bytes] = []
    offered = b"250-relay.example\r\n250 STARTTLS\r\n"
    injected = b"250-injected\r\n250 PIPELINING\r\n"
    outcome = over_starttls(certificate, offered, EHLO, heard, after_220=injected)
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    assert "more than its 220" in str(outcome)
    assert heard == []  # not even an EHLO went under TLS on that connection


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the certificate")
def test_what_the_relay_offered_in_the_clear_is_forgotten_once_secured(certificate):
    """RFC 3207 4.2: what the relay offered before TLS, which a man in the middle may have
    added to (here a login the secured relay does not offer), is forgotten once secured."""
    heard: list[bytes] = []
    offered = b"250-relay.example\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n"
    outcome = over_starttls(
        certificate, offered, b"250 relay.example\r\n", heard, username="care", password="pw"
    )
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    assert "offers no login we know" in str(outcome)
    assert heard and heard[0].startswith(b"EHLO")
    assert not any(line.startswith((b"AUTH", b"MAIL")) for line in heard)


def test_a_late_answer_never_answers_the_next_mail():
    """A reply that outlasts its wait closes the connection: read on it, the late 250 would
    be taken for the next mail's."""
    with running(handler := SlowOnce()) as port:
        # Half the send's limit for one reply: 1.5 s; the relay answers the dot after 2.
        late, fine = send_all(SmtpRelay("127.0.0.1", port, timeout=3), item(n=1), item(n=2))
    assert isinstance(late, DeliveryError) and not late.permanent
    assert fine == ""
    assert handler.greetings == 2


def _unstuffed(wire: bytes) -> bytes:
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[: -len(b".\r\n")].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@given(st.binary(max_size=300) | st.text(alphabet=".\r\n ab", max_size=60).map(str.encode))
def test_the_wire_form_ends_only_at_its_dot_and_gives_back_the_mail(raw):
    assume(raw)  # no mail is empty
    wire = wire_form(raw)
    body = wire[: -len(b".\r\n")]
    assert all(line != b"." for line in body.split(b"\r\n"))
    assert b"\r" not in body.replace(b"\r\n", b"") and b"\n" not in body.replace(b"\r\n", b"")
    lines = re.split(rb"\r\n|\r|\n", raw)
    if lines[-1] == b"":
        lines.pop()
    assert _unstuffed(wire) == b"".join(line + b"\r\n" for line in lines)


def test_a_send_cut_short_leaves_its_connection_and_the_next_mail_opens_a_new_one():
    """As when `serve` stops while a mail is under way: its task is cancelled mid-reply."""

    async def run(port: int) -> str:
        transport = SmtpRelay("127.0.0.1", port, timeout=10)
        try:
            cut = asyncio.create_task(transport.send(item(n=1)))
            await asyncio.sleep(0.5)  # the relay has the mail and keeps its answer
            cut.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cut
            return await transport.send(item(n=2))
        finally:
            await transport.close()

    with running(handler := SlowOnce()) as port:
        # Reused, the old connection would read the late answer as the new mail's.
        assert asyncio.run(run(port)) == ""
    assert handler.greetings == 2
