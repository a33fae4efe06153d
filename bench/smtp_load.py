"""An SMTP load: distinct requests over kept sessions, each answer's code counted.

One small asyncio client, the same against `serve` and against a bare sink, so the two
rates differ only by the server: per message RSET, MAIL, RCPT and DATA on a session that
stays open, `sessions` of them at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness import RCPT, REFERRER

# One reply may take this long before the session counts as broken; a whole load is capped
# by the caller's `seconds`.
REPLY_SECONDS = 60.0


def request(n: int, tag: str) -> bytes:
    """Request number n of a load named `tag`: its own Message-ID and its own two people,
    so the service keeps none of them once as a repeat and nobody reaches a daily limit."""
    return (
        f"From: Ada Lovelace <{REFERRER}>\r\n"
        f"To: {RCPT}\r\n"
        f"Subject: Intro {n}: bookkeeping\r\n"
        f"Message-ID: <load-{tag}-{n}@referrer.example>\r\n"
        "Date: Mon, 16 Nov 2026 09:14:01 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "\r\n"
        f"Provider: Jane Roe <jane{n}@acme.example>\r\n"
        f"Prospect: Bob Smith <bob{n}@bakery.example>\r\n"
        "Prospect prefers: phone, after 4pm\r\n"
        "Need: bookkeeping for a 5-person bakery before the tax deadline in March\r\n"
        "Budget: 400 EUR/month\r\n"
    ).encode()


def requests(count: int, tag: str) -> list[bytes]:
    return [request(n, tag) for n in range(count)]


@dataclass(frozen=True)
class LoadResult:
    answered: int  # DATA replies received
    seconds: float
    codes: Counter[int]  # DATA replies by code
    broken: int  # sessions that ended on a dropped connection or a timeout

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    @property
    def not_250(self) -> int:
        return self.answered - self.codes[250]


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> int:
        """The code of one reply, reading every line of a multi-line one."""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), REPLY_SECONDS)
            if len(line) < 4:
                raise ConnectionError(f"the server hung up or said {line!r}")
            if line[3:4] != b"-":
                return int(line[:3])

    async def command(self, line: bytes) -> int:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def send(self, raw: bytes) -> int:
        """One message on the open session; the DATA reply's code (or the refusal's)."""
        await self.command(b"RSET")
        for line in (f"MAIL FROM:<{REFERRER}>".encode(), f"RCPT TO:<{RCPT}>".encode()):
            code = await self.command(line)
            if code >= 400:
                return code
        code = await self.command(b"DATA")
        if code != 354:
            return code
        # Dot-stuffing: a line that starts with a dot gets one more.
        body = raw.replace(b"\r\n.", b"\r\n..")
        self.writer.write(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        return await self.reply()


async def _client(
    port: int, todo: list[bytes], codes: Counter[int], deadline: float, stop: threading.Event
) -> bool:
    """Send from the shared list until it is empty (or time is up, or `stop` is set); False
    if the session broke."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), REPLY_SECONDS
    )
    session = _Session(reader, writer)
    try:
        await session.reply()  # the greeting
        await session.command(b"EHLO load.example")
        while todo and time.monotonic() < deadline and not stop.is_set():
            codes[await session.send(todo.pop())] += 1
        await session.command(b"QUIT")
        return True
    except (OSError, ConnectionError, TimeoutError, ValueError):
        return False
    finally:
        writer.close()


async def _load(
    ports: Sequence[int],
    messages: list[bytes],
    sessions: int,
    seconds: float,
    stop: threading.Event,
) -> LoadResult:
    todo = list(reversed(messages))
    codes: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    done = await asyncio.gather(
        *(_client(ports[i % len(ports)], todo, codes, deadline, stop) for i in range(sessions)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    broken = sum(1 for d in done if d is not True)
    return LoadResult(sum(codes.values()), elapsed, codes, broken)


def send_load(
    ports: int | Sequence[int],
    messages: list[bytes],
    sessions: int = 16,
    seconds: float = 600,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Send every message over `sessions` kept sessions, shared out over `ports` in turn;
    stops after `seconds`, or once `stop` is set, with what was answered by then."""
    targets = [ports] if isinstance(ports, int) else list(ports)
    return asyncio.run(_load(targets, messages, sessions, seconds, stop or threading.Event()))
