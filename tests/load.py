"""SMTP load for the fault tests: distinct requests sent over several real sessions, each
answer noted, retried like an MTA retries; and a relay that takes its time."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import threading
import time
from collections import Counter

from tests.conftest import REFERRER, Delivery, SinkHandler
from tests.helpers import RCPT


def request(n: int, tag: str) -> tuple[str, bytes]:
    """Request number n: its own Message-ID and its own two people, so none is kept once as
    a repeat and no address reaches a daily limit."""
    message_id = f"<load-{tag}-{n}@referrer.example>"
    raw = (
        f"From: Ada Lovelace <{REFERRER}>\r\n"
        f"To: {RCPT}\r\n"
        f"Subject: Intro {n}: bookkeeping\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Mon, 16 Nov 2026 09:14:01 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "\r\n"
        f"Provider: Jane Roe <jane{n}@acme.example>\r\n"
        f"Prospect: Bob Smith <bob{n}@bakery.example>\r\n"
        "Need: bookkeeping for a 5-person bakery before the tax deadline in March\r\n"
    ).encode()
    return message_id, raw


class Load:
    """Sends every message until it is answered 250 or 5xx, over `sessions` connections at
    once; a connection refused or dropped (the service killed) is tried again after a pause,
    until `seconds` have passed."""

    def __init__(
        self, port: int, messages: list[tuple[str, bytes]], sessions: int, seconds: float
    ) -> None:
        self.port = port
        self.todo = list(reversed(messages))
        self.deadline = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.answers: dict[str, int] = {}  # Message-ID -> final reply code
        self.refused: Counter[int] = Counter()  # 4xx replies (tried again), by code
        self.threads = [threading.Thread(target=self._session) for _ in range(sessions)]

    def start(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self.threads:
            thread.join(max(self.deadline - time.monotonic(), 0) + 30)

    def accepted(self) -> set[str]:
        with self.lock:
            return {m for m, code in self.answers.items() if code == 250}

    def _next(self) -> tuple[str, bytes] | None:
        with self.lock:
            return self.todo.pop() if self.todo else None

    def _again(self, message: tuple[str, bytes]) -> None:
        with self.lock:
            self.todo.append(message)

    def _session(self) -> None:
        client: smtplib.SMTP | None = None
        while time.monotonic() < self.deadline:
            message = self._next()
            if message is None:
                break
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                code = _send(client, *message)
            except (OSError, smtplib.SMTPException):
                # Refused, reset or cut off mid-DATA: it may or may not have been stored,
                # so it goes again, as an MTA would send it again.
                client = None
                self._again(message)
                time.sleep(0.05)
                continue
            if 400 <= code < 500:
                with self.lock:
                    self.refused[code] += 1
                self._again(message)
                time.sleep(0.05)
                continue
            with self.lock:
                self.answers[message[0]] = code
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


def _send(client: smtplib.SMTP, message_id: str, raw: bytes) -> int:
    try:
        client.sendmail(REFERRER, [RCPT], raw)
    except smtplib.SMTPDataError as exc:
        client.rset()
        return exc.smtp_code
    return 250


class PacedHandler(SinkHandler):
    """A relay that keeps every mail and takes `pause` seconds over each DATA; it notes
    which connection each mail came on and how many were at DATA at once."""

    def __init__(self, pause: float = 0.0) -> None:
        super().__init__()
        self.pause = pause
        self.peers: list[tuple[str, int]] = []
        self.at_once = 0
        self.most_at_once = 0
        self.data_started = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.data_started.set()
        with self.lock:
            self.peers.append(session.peer)  # type: ignore[attr-defined]
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            await asyncio.sleep(self.pause)
            return await super().handle_DATA(server, session, envelope)
        finally:
            with self.lock:
                self.at_once -= 1


def copies_by_envelope(
    deliveries: list[Delivery],
) -> dict[tuple[str, tuple[str, ...]], list[bytes]]:
    """What the relay was handed, by the Message-ID and envelope recipients of each mail: the
    introduction is one Message-ID handed on once per party, which is no second copy."""
    found: dict[tuple[str, tuple[str, ...]], list[bytes]] = {}
    for d in deliveries:
        message = email.message_from_bytes(d.data, policy=email.policy.compat32)
        key = (str(message["Message-ID"]).strip(), tuple(d.rcpt_tos))
        found.setdefault(key, []).append(d.data)
    return found
