"""How fast the outbox hands mail to a relay, against what the relay itself can take.

Starts an SMTP relay sink in a separate process: Postfix's `smtp-sink` where it is
installed (`--relay postfix`), else aiosmtpd's Sink (`--relay aiosmtpd`). The baseline is
the sink's own rate: the same mails sent straight to it over `--connections` kept
connections, no store involved. Then the outbox sends the same number of mails from a
SQLite store (claim, send, record), once as it does now (kept connections, `--connections`
at once) and once one mail at a time on a new connection each (how it sent before); then
as it does now while another writer in the process holds the store's write lock for
`--busy-ms` at a time, 5 ms apart, as intake does under load.

Then the same for a maildir: the baseline writes the mails' files straight, each synced,
with one sync of the directory for them all; the outbox writes them with `--connections`
at once, each mail durable before it is recorded sent. Prints mails/s and the ratios.

    python bench/outbox_throughput.py [--mails 2000] [--connections 4] [--busy-ms 20]
                                      [--relay postfix]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.delivery.outbox import Outbox, Transport
from service.delivery.transports import Maildir, SmtpRelay
from store import db, queries
from store.models import StoreKey
from store.records import OutboxItem, OutgoingMail

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
SMTP_SINK = Path("/usr/sbin/smtp-sink")
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


def through_outbox(
    folder: Path,
    port: int,
    mails: list[OutgoingMail],
    connections: int,
    maildir: bool = False,
    busy_ms: float = 0,
) -> float:
    db.bind(f"sqlite:///{folder / f'outbox-{connections}-{maildir}-{busy_ms}.db'}")
    with db.transaction():
        queries.enqueue(mails, NOW)
    stop = threading.Event()
    writer = threading.Thread(target=hold_the_store, args=(busy_ms / 1000, stop), daemon=True)
    if busy_ms:
        writer.start()
    if maildir:
        transport: Transport = Maildir(folder / "maildir-outbox")
    elif connections:
        transport = SmtpRelay("127.0.0.1", port, connections=connections)
    else:
        transport = NewConnectionEachMail(port)
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
    try:
        sent = asyncio.run(run())
    finally:
        stop.set()
    elapsed = time.perf_counter() - started
    if busy_ms:
        writer.join(10)
    db.close()
    assert sent == len(mails), (sent, len(mails))
    return sent / elapsed


def hold_the_store(seconds: float, stop: threading.Event) -> None:
    """As intake does under load, in the same process: write transactions back to back,
    each holding the store's write lock for `seconds`, 5 ms apart."""
    while not stop.is_set():
        with db.transaction():
            StoreKey.update(value=StoreKey.value).where(StoreKey.name == "none").execute()
            time.sleep(seconds)
        time.sleep(0.005)
    db.close()  # this thread's connection


def straight_to_maildir(folder: Path, mails: list[OutgoingMail], connections: int) -> float:
    """The floor for a maildir: every file written and synced, `connections` at once, then
    the directory synced once."""
    new = folder / "maildir-straight" / "new"
    new.mkdir(parents=True)

    def write(n: int) -> None:
        with open(new / f"{n}.bench", "wb") as handle:
            handle.write(mails[n].raw)
            handle.flush()
            os.fsync(handle.fileno())

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(write, range(len(mails))))
    fd = os.open(new, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(mails) / (time.perf_counter() - started)


def start_sink(relay: str, port: int) -> tuple[object, str]:
    """The relay sink, running; and what it is, for the table."""
    if relay == "postfix":
        # -u: smtp-sink refuses to run as root without a user to become.
        args = [str(SMTP_SINK), "-u", "nobody", f"127.0.0.1:{port}", "256"]
        sink = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return sink, "Postfix smtp-sink"
            time.sleep(0.05)
        sink.kill()
        raise SystemExit("smtp-sink did not start")
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=run_sink, args=(port, ready), daemon=True)
    process.start()
    if not ready.wait(20):
        raise SystemExit("the relay sink did not start")
    return process, "aiosmtpd Sink"


def stop_sink(sink: object) -> None:
    if isinstance(sink, subprocess.Popen):
        sink.terminate()
        sink.wait(10)
    elif isinstance(sink, multiprocessing.Process):
        sink.terminate()
        sink.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--busy-ms", type=float, default=20, help="how long a writer beside holds the store"
    )
    parser.add_argument(
        "--relay",
        choices=("postfix", "aiosmtpd"),
        default="postfix" if SMTP_SINK.exists() else "aiosmtpd",
    )
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink, what = start_sink(args.relay, port)
    try:
        baseline = asyncio.run(
            straight_to_sink(port, [mail(n, "base") for n in range(args.mails)], args.connections)
        )
        with tempfile.TemporaryDirectory() as tmp:
            now_rate = through_outbox(
                Path(tmp), port, [mail(n, "now") for n in range(args.mails)], args.connections
            )
            before = through_outbox(Path(tmp), port, [mail(n, "old") for n in range(args.mails)], 0)
            busy = through_outbox(
                Path(tmp),
                port,
                [mail(n, "busy") for n in range(args.mails)],
                args.connections,
                busy_ms=args.busy_ms,
            )
    finally:
        stop_sink(sink)
    with tempfile.TemporaryDirectory() as tmp:
        floor = straight_to_maildir(
            Path(tmp), [mail(n, "dir") for n in range(args.mails)], args.connections
        )
        to_maildir = through_outbox(
            Path(tmp), port, [mail(n, "md") for n in range(args.mails)], args.connections, True
        )
    print(f"{what}, {args.connections} kept connections (baseline): {baseline:8.0f} mails/s")
    print(
        f"outbox, {args.connections} kept connections:  {now_rate:8.0f} mails/s"
        f"  ratio {now_rate / baseline:.2f}"
    )
    print(
        f"outbox, a new connection per mail: {before:8.0f} mails/s  ratio {before / baseline:.2f}"
    )
    print(
        f"outbox, {args.connections} kept connections, while a writer holds the store "
        f"{args.busy_ms:g} ms at a time: {busy:8.0f} mails/s  ratio {busy / baseline:.2f}"
    )
    print(
        f"maildir, files written straight, {args.connections} at once, one directory sync "
        f"(baseline): {floor:8.0f} mails/s"
    )
    print(
        f"outbox to the maildir, {args.connections} at once:  {to_maildir:8.0f} mails/s"
        f"  ratio {to_maildir / floor:.2f}"
    )


if __name__ == "__main__":
    main()
