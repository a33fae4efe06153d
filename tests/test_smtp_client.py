"""The outbox's SMTP client against real relays: aiosmtpd (with and without PIPELINING
announced), Postfix's smtp-sink where Postfix is installed, and, for replies no sane relay
gives, a server on a real socket that says what the test scripts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
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

from service.delivery.smtp_client import wire_form
from service.delivery.transports import SmtpRelay
from service.errors import DeliveryError
from store.records import OutboxItem
from tests.conftest import SinkHandler, eventually, free_port

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
        eventually(lambda: _listening(port), "smtp-sink listening")
        chunks = envelope_groups(port, 20)
    finally:
        sink.terminate()
        sink.wait(10)
    # smtp-sink answers 250 after the dot only when the pipelined group was read right.
    assert len([c for c in chunks if c.startswith(b"MAIL FROM:") and b"\r\nDATA\r\n" in c]) == 20
    assert sum(c.startswith(b"EHLO") for c in chunks) == 1


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Accounts(SinkHandler):
    def __init__(self, login: bytes, password: bytes) -> None:
        super().__init__()
        self.login, self.password = login, password

    def authenticate(
        self, server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
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
        (refused,) = send_all(wrong, item(n=2))
    assert len(accounts.deliveries) == 1
    # A wrong password is the operator's to fix: the mail waits in the outbox meanwhile.
    assert isinstance(refused, DeliveryError) and not refused.permanent
    assert "login" in str(refused)


def test_an_address_beyond_ascii_goes_only_to_a_relay_that_carries_it():
    with running(handler := Relay(pipelining=True), enable_SMTPUTF8=True) as port:
        outcomes = send_all(SmtpRelay("127.0.0.1", port, timeout=5), item("zoë@acme.example"))
    assert outcomes == [""]
    assert handler.deliveries[0].rcpt_tos == ("zoë@acme.example",)
    with running(Relay(pipelining=True), enable_SMTPUTF8=False) as port:
        (refused,) = send_all(SmtpRelay("127.0.0.1", port, timeout=5), item("zoë@acme.example"))
    assert isinstance(refused, DeliveryError) and refused.permanent
    assert "SMTPUTF8" in str(refused)


@contextlib.asynccontextmanager
async def scripted(
    lines: dict[bytes, bytes], greeting: bytes
) -> AsyncIterator[tuple[list[bytes], int]]:
    """A server that greets with `greeting` and answers each command by its first word
    from `lines` (a missing word closes the connection); yields the commands it read."""
    heard: list[bytes] = []

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        while line := await reader.readline():
            heard.append(line)
            answer = lines.get(line.split(b" ")[0].split(b":")[0].strip().upper())
            if answer is None:
                break
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(talk, "127.0.0.1", 0)
    try:
        yield heard, server.sockets[0].getsockname()[1]
    finally:
        server.close()


EHLO = b"250-relay.example\r\n250 PIPELINING\r\n"


@pytest.mark.parametrize(
    ("greeting", "lines", "said"),
    [
        (b"this is no smtp\r\n", {}, "not an SMTP reply"),
        (b"554 5.7.1 go away\r\n", {}, "greeted with 554"),
        (b"220 hi\r\n", {b"EHLO": EHLO}, "closed the connection"),  # gone at MAIL
        (b"220 hi\r\n", {b"EHLO": b"250-x\r\n" * 500 + b"250 x\r\n"}, "too many lines"),
        (b"220 hi\r\n", {b"EHLO": b"250 " + b"x" * 10000 + b"\r\n"}, "past the limit"),
    ],
    ids=["garbled", "refused-at-greeting", "hangs-up", "endless-reply", "endless-line"],
)
def test_a_relay_that_does_not_speak_smtp_keeps_the_mail_for_later(greeting, lines, said):
    async def run() -> list[str | DeliveryError]:
        async with scripted(lines, greeting) as (_, port):
            return await asyncio.to_thread(
                send_all, SmtpRelay("127.0.0.1", port, timeout=4), item()
            )

    (outcome,) = asyncio.run(run())
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    assert said in str(outcome)


def test_a_relay_that_opens_data_with_nobody_to_deliver_to_is_left_mid_message():
    lines = {
        b"EHLO": EHLO,
        b"MAIL": b"250 ok\r\n",
        b"RCPT": b"550 no such user\r\n",
        b"DATA": b"354 go ahead\r\n",
    }

    async def run() -> tuple[list[str | DeliveryError], list[bytes]]:
        async with scripted(lines, b"220 hi\r\n") as (heard, port):
            outcome = await asyncio.to_thread(
                send_all, SmtpRelay("127.0.0.1", port, timeout=4), item()
            )
            await asyncio.sleep(0.1)
            return outcome, list(heard)

    (outcome,), heard = asyncio.run(run())
    assert isinstance(outcome, DeliveryError) and not outcome.permanent
    # Not a byte of the mail, and no dot that would ask it to deliver an empty one.
    assert not any(line.startswith((b"Subject", b".")) for line in heard)


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
