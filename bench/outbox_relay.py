"""The outbox of a running `serve` handing mail to a relay, idle and while intake runs,
against the relay's own rate straight from a client."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import Relay, Row, Serve, bound, database_url, rate, scratch, settings_for
from outbox_throughput import mail, straight_to_sink
from smtp_load import requests, send_load

from store import db, queries
from store.models import OutboxMail

CONNECTIONS = 8  # serve's default outbound.connections
TARGET = 1000.0
PREFIX = "<bench-"


def _preload(url: str, count: int, tag: str) -> None:
    """`count` mails due now in the store, before serve starts."""
    due = datetime.now(UTC) - timedelta(minutes=1)
    with bound(url), db.transaction():
        queries.enqueue([mail(n, tag) for n in range(count)], due)


def _sent() -> int:
    return (
        OutboxMail.select()
        .where((OutboxMail.state == "sent") & OutboxMail.message_id.startswith(PREFIX))
        .count()
    )


def through_serve(folder: Path, relay: Relay, count: int, window: float, busy: bool) -> float:
    """Preloaded mails sent per second by a fresh serve's outbox, counted from the moment it
    listens until they are all sent or `window` seconds passed; with `busy`, a stream of
    requests arrives over SMTP the whole time, so intake runs beside it."""
    url = database_url(folder)
    _preload(url, count, "pre")
    stop = threading.Event()
    # More requests than the stream can send in the window, even at the bare sink's rate.
    stream = requests(int(window * 3000), "stream") if busy else []
    with Serve(folder, settings_for(folder, url, relay.port)) as serve:
        sender = threading.Thread(
            target=send_load, args=(serve.port, stream, 16, window + 30, stop)
        )
        started = time.perf_counter()
        if busy:
            sender.start()
        try:
            with bound(url):
                sent = 0
                while sent < count and time.perf_counter() - started < window:
                    time.sleep(0.05)
                    sent = _sent()
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            if busy:
                sender.join(120)
    return sent / elapsed


def outbox(count: int, rounds: int, window: float) -> list[Row]:
    kind = Relay.best()
    base, idle, busy = [], [], []
    with tempfile.TemporaryDirectory() as tmp, Relay(kind) as relay:
        for n in range(rounds):
            mails = [mail(i, f"base{n}") for i in range(count)]
            base.append(asyncio.run(straight_to_sink(relay.port, mails, CONNECTIONS)))
            idle.append(through_serve(scratch(Path(tmp), "idle"), relay, count, window, False))
            busy.append(through_serve(scratch(Path(tmp), "busy"), relay, count, window, True))
    baseline = statistics.median(base)
    relay_name = "Postfix smtp-sink" if kind == "smtp-sink" else "aiosmtpd Sink (no smtp-sink)"
    rows = []
    for label, rates in (("idle", idle), ("while intake runs", busy)):
        subject = statistics.median(rates)
        rows.append(
            Row(
                f"outbox to a relay ({relay_name}), {count:,} mails due, {label}; the relay "
                f"straight from a client ({CONNECTIONS} connections) as baseline",
                rate(baseline, "mails/s"),
                rate(subject, "mails/s"),
                f"{subject / baseline:.2f}×",
                "≥ 1,000 mails/s" if label == "idle" else "≥ 1,000 mails/s (keeps pace)",
                subject >= TARGET,
            )
        )
    return rows
