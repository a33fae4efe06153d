"""One SMTP client connection to a relay, that pipelines a mail's envelope (RFC 2920).

A mail costs two round trips where the relay offers PIPELINING, as Postfix does: MAIL,
every RCPT and DATA in one write and their replies read together, then the body. Sent one
command at a time it costs three and one per recipient, each a wait for the relay and a turn
of the event loop that intake shares; no Python client we could take pipelines (aiosmtplib,
the one we used, drops a reply it was not waiting for). Without PIPELINING, each command
waits for its reply, as RFC 5321 asks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

# An SMTP reply line is at most 512 octets (RFC 5321 4.5.3.1.5); a relay may say more in
# its EHLO. Past these, the peer is not speaking SMTP to us.
LONGEST_LINE = 8192
MOST_LINES = 200
_AFTER_CODE = (b" ", b"-", b"\r", b"\n")
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
# What may not stand in a MAIL or RCPT path: it would end the command or the path early.
_NOT_IN_A_PATH = re.compile(r"[\x00-\x1f\x7f<>]")


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    @property
    def taken(self) -> bool:
        """A 2xx: the command was accepted."""
        return self.code // 100 == 2

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class Refused(Exception):
    """The relay refused the mail; the connection goes on (the transaction was reset)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class SenderRefused(Refused):
    """The relay refused MAIL FROM: our envelope sender or our account, not the recipients;
    every mail we send meets the same until the operator fixes it."""


class RecipientsRefused(Exception):
    """The relay refused every recipient; the connection goes on."""

    def __init__(self, refused: dict[str, Reply]) -> None:
        super().__init__("; ".join(f"{r}: {reply}" for r, reply in refused.items()))
        self.refused = refused


class Broken(Exception):
    """The conversation cannot go on: the connection is closed, the mail may go later."""


class LoginRefused(Broken):
    """The relay refused our login: every connection would meet the same until fixed."""


class Unsendable(Exception):
    """No relay could take this mail as it is (an address this relay cannot carry)."""


def wire_form(raw: bytes) -> bytes:
    """A message as DATA carries it: CRLF line ends, leading dots doubled, the final dot."""
    data = _LINE_ENDS.sub(b"\r\n", raw) if b"\r" in raw else raw.replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


class SmtpConnection:
    """A connection that has greeted the relay, and secured and logged in as asked."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply_seconds: float
    ) -> None:
        self.reader, self.writer = reader, writer
        # How long the relay may take to answer one command or group of commands.
        self.reply_seconds = reply_seconds
        self.extensions: dict[str, str] = {}
        self._broken = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        helo_name: str,
        tls: str = "none",
        tls_context: ssl.SSLContext | None = None,
        username: str = "",
        password: str = "",
        reply_seconds: float = 30.0,
    ) -> SmtpConnection:
        """Connect, greet, and (as `tls` and `username` ask) secure and log in.

        `tls` is "none", "implicit" (TLS from the first byte) or "starttls" (required: a
        relay that does not offer it is not sent to in the clear).
        """
        context = tls_context
        if context is None and tls != "none":
            context = ssl.create_default_context()
        async with asyncio.timeout(reply_seconds):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=context if tls == "implicit" else None,
                server_hostname=host if tls == "implicit" else None,
                limit=LONGEST_LINE,
            )
        connection = cls(reader, writer, reply_seconds)
        with connection._closed_if_cut_short():
            await connection._start(host, helo_name, tls, context, username, password)
        return connection

    async def _start(
        self,
        host: str,
        helo_name: str,
        tls: str,
        context: ssl.SSLContext | None,
        username: str,
        password: str,
    ) -> None:
        greeting = await self._replies(1)
        if greeting[0].code != 220:
            raise Broken(f"the relay greeted with {greeting[0]}")
        await self._hello(helo_name)
        if tls == "starttls":
            if "STARTTLS" not in self.extensions:
                raise Broken("the relay does not offer STARTTLS, and TLS is required")
            reply = await self.command(b"STARTTLS")
            if reply.code != 220:
                raise Broken(f"the relay refused STARTTLS: {reply}")
            # Bytes after the 220 came in the clear, maybe from a man in the middle; read
            # as the first replies under TLS, they would answer our commands (RFC 3207 5).
            if getattr(self.reader, "_buffer", b""):
                raise Broken("the relay said more than its 220 to STARTTLS")
            assert context is not None
            async with asyncio.timeout(self.reply_seconds):
                await self.writer.start_tls(context, server_hostname=host)
            await self._hello(helo_name)  # what it offers may change once secured
        if username:
            await self._log_in(username, password)

    async def _hello(self, name: str) -> None:
        self.extensions = {}
        reply = await self.command(b"EHLO " + name.encode("ascii"))
        if 500 <= reply.code < 600:  # an old relay: HELO, and no extensions
            reply = await self.command(b"HELO " + name.encode("ascii"))
        elif reply.code == 250:
            for line in reply.text.split("\n")[1:]:
                keyword, _, params = line.partition(" ")
                name = keyword.upper()
                if name.startswith("AUTH="):
                    # The form before RFC 4954 ("AUTH=LOGIN PLAIN"), which some relays
                    # still send beside the usual line, and a few old ones instead of it.
                    name, params = "AUTH", f"{keyword[5:]} {params}"
                if name == "AUTH":
                    params = f"{self.extensions.get('AUTH', '')} {params}".strip()
                self.extensions[name] = params
        if reply.code != 250:
            raise Broken(f"the relay refused our greeting: {reply}")

    async def _log_in(self, username: str, password: str) -> None:
        offered = self.extensions.get("AUTH", "").upper().split()
        user, secret = username.encode(), password.encode()
        if "PLAIN" in offered:
            token = base64.b64encode(b"\0" + user + b"\0" + secret)
            reply = await self.command(b"AUTH PLAIN " + token)
        elif "LOGIN" in offered:
            reply = await self.command(b"AUTH LOGIN")
            for answer in (user, secret):
                if reply.code != 334:
                    break
                reply = await self.command(base64.b64encode(answer))
        else:
            raise Broken(f"the relay offers no login we know (AUTH {' '.join(offered)})")
        if reply.code != 235:
            # The operator's to fix (a password, an account): the mail waits for it.
            raise LoginRefused(f"the relay refused our login: {reply}")

    @property
    def is_open(self) -> bool:
        return not (self._broken or self.writer.is_closing() or self.reader.at_eof())

    async def send(self, sender: str, recipients: list[str], raw: bytes) -> dict[str, Reply]:
        """Hand one mail on; the recipients the relay refused while it took the others.

        Raises SenderRefused, Refused or RecipientsRefused when the relay took none of it
        (the connection goes on, unless the relay is closing it), Unsendable when no relay
        could take it, Broken when the conversation failed (it is closed).
        """
        addresses = [sender, *recipients]
        if any(_NOT_IN_A_PATH.search(a) for a in addresses):
            raise Unsendable("an address holds a control character or an angle bracket")
        options = b""
        if not all(a.isascii() for a in addresses):
            if "SMTPUTF8" not in self.extensions:
                raise Unsendable("the relay cannot carry addresses beyond ASCII (no SMTPUTF8)")
            options += b" SMTPUTF8"
        if not raw.isascii() and "8BITMIME" in self.extensions:
            options += b" BODY=8BITMIME"
        try:
            envelope = [b"MAIL FROM:<" + sender.encode() + b">" + options]
            envelope += [b"RCPT TO:<" + r.encode() + b">" for r in recipients]
        except UnicodeEncodeError:
            raise Unsendable("an address is not text UTF-8 can carry") from None
        envelope.append(b"DATA")
        # A refusal resets the transaction: the connection can go on.
        with self._closed_if_cut_short(keep=(Refused, RecipientsRefused)):
            replies = await self._envelope(envelope)
            mail, accepted, data = replies[0], replies[1:-1], replies[-1]
            answers = list(zip(recipients, accepted, strict=True))
            refused = {r: a for r, a in answers if not a.taken}
            nobody = not mail.taken or all(not a.taken for _, a in answers)
            if data.code == 354 and nobody:
                # DATA opened with nobody to deliver to: a lone dot ends it (RFC 2920 3.1).
                self.writer.write(b".\r\n")
                await self._replies(1)
            elif data.code != 354:
                await self._reset()
            if nobody and not mail.taken:
                raise SenderRefused(mail)
            if nobody:
                raise RecipientsRefused(refused)
            if data.code != 354:
                raise Refused(data)
            self.writer.write(wire_form(raw))
            await self.writer.drain()
            (done,) = await self._replies(1)
        if done.code != 250:
            raise Refused(done)
        return refused

    async def _envelope(self, commands: list[bytes]) -> list[Reply]:
        if "PIPELINING" in self.extensions:
            self.writer.write(b"\r\n".join(commands) + b"\r\n")
            await self.writer.drain()
            return await self._replies(len(commands))
        replies = [await self.command(commands[0])]
        if not replies[0].taken:
            return [*replies, *([Reply(503, "not sent")] * (len(commands) - 1))]
        for rcpt in commands[1:-1]:
            replies.append(await self.command(rcpt))
        if not any(r.taken for r in replies[1:]):
            return [*replies, Reply(503, "not sent")]
        replies.append(await self.command(commands[-1]))
        return replies

    async def _reset(self) -> None:
        """End a refused transaction; a connection that cannot is closed, not reused."""
        if self._broken:
            return  # a 421 ended the conversation: nothing is left to reset
        if (await self.command(b"RSET")).code != 250:
            self.close()

    async def command(self, line: bytes) -> Reply:
        """Send one command and return its reply."""
        self.writer.write(line + b"\r\n")
        return (await self._replies(1))[0]

    async def noop(self) -> None:
        """Ask whether the relay is still there; raise Broken if not."""
        with self._closed_if_cut_short():
            reply = await self.command(b"NOOP")
        if reply.code != 250:
            self.close()
            raise Broken(f"the relay answered NOOP with {reply}")

    async def quit(self) -> None:
        """Say goodbye and close; a relay gone already is gone."""
        try:
            await self.command(b"QUIT")
        except (OSError, TimeoutError, Broken):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._broken = True
        self.writer.close()

    @contextlib.contextmanager
    def _closed_if_cut_short(self, keep: tuple[type[Exception], ...] = ()) -> Iterator[None]:
        """Close the connection when a conversation breaks off anywhere (a timeout around the
        whole send among others): it is somewhere in the middle, never to be picked up."""
        try:
            yield
        except keep:
            raise
        except (OSError, TimeoutError) as exc:
            self.close()
            raise Broken(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self.close()
            raise

    async def _replies(self, count: int) -> list[Reply]:
        """The next `count` replies, each maybe of several lines, within one timeout."""
        replies = []
        async with asyncio.timeout(self.reply_seconds):
            for _ in range(count):
                lines: list[str] = []
                while True:
                    try:
                        line = await self.reader.readline()
                    except ValueError:  # what readline says of a line past its limit
                        raise Broken(
                            f"a reply line past the limit of {LONGEST_LINE} bytes"
                        ) from None
                    if not line.endswith(b"\n"):
                        raise Broken("the relay closed the connection")
                    code, more = line[:3], line[3:4]
                    if not (code.isdigit() and b"2" <= code[:1] <= b"5") or more not in _AFTER_CODE:
                        raise Broken(f"not an SMTP reply: {line[:80]!r}")
                    lines.append(line[4:].rstrip(b"\r\n").decode("utf-8", "replace"))
                    if more != b"-":
                        break
                    if len(lines) >= MOST_LINES:
                        raise Broken("a reply of too many lines")
                reply = Reply(int(code), "\n".join(lines))
                replies.append(reply)
                if reply.code == 421:
                    # The relay is closing the connection: whatever else was asked gets
                    # no answer but this one, and the connection carries no other mail.
                    self._broken = True
                    replies += [reply] * (count - len(replies))
                    break
        return replies
