"""How fast the outbox hands mail to a relay, against what the relay itself can take.

Starts an SMTP relay sink in a separate process. The baseline is the sink's own rate: the
same mails sent straight to it over `--connections` kept connections, no store involved.
Then the outbox sends the same number of mails from a SQLite store (claim, send, record),
once as it does now (kept connections, `--connections` at once) and once one mail at a time
on a new connection each (how it sent before). Prints mails/s and the ratios to the baseline.

    python bench/outbox_throughput.py [--mails 2000] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.delivery.outbox import Outbox
from service.delivery.transports import SmtpRelay
from store import db, queries
from store.records import OutboxItem, OutgoingMail

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
BODY = ("A line of a consent question, as long as the lines of mails here are.\n" * 40).encode()


def mail(n: int, tag: str) -> OutgoingMail:
    message_id = f"<bench-{tag}-{n}@intro.example.org>"
    raw = f"Message-ID: {message_id}\nSubject: Question {n}\n\n".encode() + BODY
    return OutgoingMail(
        message_id, "consent_request", "refer@intro.example.org", (f"p{n}@acme.example",), raw
    )


def run_sink(port: int, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        time.sleep(3600)
    finally:
        controller.stop()


async def straight_to_sink(port: int, mails: list[OutgoingMail], connections: int) -> float:
    queue = list(mails)

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        while queue:
            m = queue.pop()
            await smtp.sendmail(m.envelope_from, list(m.recipients), m.raw)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return len(mails) / (time.perf_counter() - started)


class NewConnectionEachMail:
    """How the outbox sent before: one connection per mail."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def send(self, item: OutboxItem) -> str:
        await aiosmtplib.send(
            item.raw,
            sender=item.envelope_from,
            recipients=list(item.recipients),
            hostname="127.0.0.1",
            port=self.port,
        )
        return ""

    async def close(self) -> None:
        return None


def through_outbox(folder: Path, port: int, mails: list[OutgoingMail], connections: int) -> float:
    db.bind(f"sqlite:///{folder / f'outbox-{connections}.db'}")
    with db.transaction():
        queries.enqueue(mails, NOW)
    transport = (
        SmtpRelay("127.0.0.1", port, connections=connections)
        if connections
        else NewConnectionEachMail(port)
    )
    outbox = Outbox(transport, clock=FixedClock(NOW), connections=max(connections, 1))

    async def run() -> int:
        sent = 0
        while True:
            report = await outbox.deliver_due()
            if not report.sent:
                await transport.close()
                return sent
            sent += report.sent

    started = time.perf_counter()
    sent = asyncio.run(run())
    elapsed = time.perf_counter() - started
    db.close()
    assert sent == len(mails), (sent, len(mails))
    return sent / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, ready), daemon=True)
    sink.start()
    try:
        if not ready.wait(20):
            raise SystemExit("the relay sink did not start")
        baseline = asyncio.run(
            straight_to_sink(port, [mail(n, "base") for n in range(args.mails)], args.connections)
        )
        with tempfile.TemporaryDirectory() as tmp:
            now_rate = through_outbox(
                Path(tmp), port, [mail(n, "now") for n in range(args.mails)], args.connections
            )
            before = through_outbox(Path(tmp), port, [mail(n, "old") for n in range(args.mails)], 0)
    finally:
        sink.terminate()
        sink.join(10)
    print(f"relay sink, {args.connections} kept connections (baseline): {baseline:8.0f} mails/s")
    print(
        f"outbox, {args.connections} kept connections:  {now_rate:8.0f} mails/s"
        f"  ratio {now_rate / baseline:.2f}"
    )
    print(
        f"outbox, a new connection per mail: {before:8.0f} mails/s  ratio {before / baseline:.2f}"
    )


if __name__ == "__main__":
    main()
