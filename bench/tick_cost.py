"""What a tick costs: per item when many are due (reminders, expiries, surveys), and idle,
on a small store and on a large one.

    python bench/tick_cost.py [--small 1000] [--large 10000] [--rounds 3]

runs the idle comparison alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from harness import Row, bound, database_url, interleaved, memory_kb, scratch
from survey_tick import NOW, fill

from service.clock import FixedClock
from service.edge import jobs
from service.edge.letter_writer import FEWEST, LetterWriter
from service.model import InboundState, OutboxState
from service.referral import erasure
from service.settings import Settings
from service.writing.context import Context, make_context
from store import db
from store.models import InboundMessage, OutboxMail, Party, Referral

T = TypeVar("T")
TARGET_SECONDS = 0.0005
# The letter writer imports the service and loads its templates in about a second here.
READY_SECONDS = 60.0
CHUNK = 500
# A tick handles at most 200 of each kind; more ticks than this means something is stuck.
MOST_TICKS = 100
# Retention catches up with a million referrals and their mail in about 4,000 batches.
MOST_BATCHES = 100_000


async def _here(fn: Callable[..., T], *args: Any) -> T:
    """Run the store calls in this thread, one after the other, as `tick` does."""
    return fn(*args)


def _settings(folder: Path, url: str) -> Settings:
    return (
        Settings()
        .replace("service", domain="intro.example.org", data_dir=str(folder))
        .replace("database", url=url)
        .replace("security", secret_keys=("bench-key",))
    )


def _context(folder: Path, url: str, writer: LetterWriter | None = None) -> Context:
    return replace(make_context(_settings(folder, url), FixedClock(NOW)), writer=writer)


def letter_writer(folder: Path) -> LetterWriter:
    """A letter writer as `serve` runs one, started and listening."""
    writer = LetterWriter(_context(folder, database_url(folder)))
    if not writer.ready(READY_SECONDS):
        raise RuntimeError(f"the letter writer was not ready in {READY_SECONDS} s")
    return writer


def fill_asking(count: int, reminders: bool, start: int) -> None:
    """`count` referrals still asking: with `reminders`, their reminder is due (nobody has
    answered); otherwise they expired, the provider having said yes."""
    hour = timedelta(hours=1)
    for first in range(start, start + count, CHUNK):
        batch = range(first, min(first + CHUNK, start + count))
        with db.transaction():
            refs = [f"A-{i:09d}" for i in batch]
            Referral.insert_many(
                {
                    "ref": ref,
                    "state": "asking",
                    "referrer_email": f"referrer{i % 97}@example.org",
                    "referrer_name": "Ada Lovelace",
                    "need": "bookkeeping for a small bakery before the tax deadline",
                    "language": "en",
                    "created_at": NOW - timedelta(days=20),
                    "updated_at": NOW - timedelta(days=20),
                    "expires_at": NOW + timedelta(days=10) if reminders else NOW - hour,
                    "remind_at": NOW - hour if reminders else None,
                }
                for i, ref in zip(batch, refs, strict=True)
            ).execute()
            ids = [r.id for r in Referral.select(Referral.id).where(Referral.ref.in_(refs))]
            Party.insert_many(
                {
                    "referral": rid,
                    "role": role,
                    "name": f"{role.title()} {rid}",
                    "email": f"{role}{rid}@example.net",
                    "language": "en",
                    "ask_key": f"ask-{role}-{rid}",
                    "reply_key": f"{role[2:4]}{rid:014d}",  # "ov", "os"
                    "answer": "yes" if role == "provider" and not reminders else None,
                }
                for rid in ids
                for role in ("provider", "prospect")
            ).execute()


def busy_tick(
    folder: Path, due: int, writer: LetterWriter | None = None
) -> tuple[float, int, float, float]:
    """A store with `due` items due (a third each reminders, expiries, surveys): (seconds to
    handle them all, ticks it took, CPU seconds of this process while handling them: on a
    machine others share, what the tick itself spent; and those of `writer`, which, as
    `serve` ticks, writes a share of the letters)."""
    url = database_url(folder)
    surveys = due // 3 // 2 * 2  # two per introduced referral
    reminders = (due - surveys) // 2
    expiries = due - surveys - reminders
    with bound(url):
        fill(0, surveys // 2)
        fill_asking(reminders, True, 0)
        fill_asking(expiries, False, reminders)
        ctx = _context(folder, url, writer)
        total = jobs.Deadlines()
        ticks = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        writer_started = _cpu_seconds(writer.pid) if writer and writer.pid else 0.0
        for _ in range(MOST_TICKS):
            done = asyncio.run(jobs.run_deadlines(ctx, NOW, _here))
            if not done:
                break
            ticks += 1
            total = _add(total, done)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        beside = _cpu_seconds(writer.pid) - writer_started if writer and writer.pid else 0.0
    assert (total.reminded, total.expired, total.surveyed) == (2 * reminders, expiries, surveys), (
        total
    )
    return elapsed, ticks, cpu, beside


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process `pid` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _add(a: jobs.Deadlines, b: jobs.Deadlines) -> jobs.Deadlines:
    return jobs.Deadlines(*(x + y for x, y in zip(vars(a).values(), vars(b).values(), strict=True)))


def _idle(ctx: Context, rounds: int) -> float:
    """Median seconds of a tick with nothing due, after one that warms the store's caches."""
    asyncio.run(jobs.run_deadlines(ctx, NOW, _here))
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert not asyncio.run(jobs.run_deadlines(ctx, NOW, _here))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass(frozen=True)
class Filled:
    url: str
    batch: float  # median seconds of a batch of retention's catch-up with the whole store


def filled(folder: Path, finished: int) -> Filled:
    """A store of `finished` evaluated referrals with their mail, nothing due, retention
    caught up with it, as a store upgraded from before retention's marks is: all of it
    old and unseen at once."""
    url = database_url(folder)
    with bound(url):
        fill(finished, 0)
        with_mail()
        ctx = _context(folder, url)
        batches = []
        for _ in range(MOST_BATCHES):
            started = time.perf_counter()
            if not erasure.let_go(ctx, NOW):
                break
            batches.append(time.perf_counter() - started)
        return Filled(url, statistics.median(batches))


# Small: the bodies only have to be there for retention to let go of.
BODY = b"Subject: Introduction\r\n\r\n" + b"Jane Roe, meet Bob Smith.\r\n" * 8
SENT_PER_REFERRAL = 4  # the receipt, two questions, the introduction


def with_mail() -> None:
    """Each stored referral's request and the mail sent about it, bodies and all, as intake
    and the outbox leave them; their dates those of the referral."""
    rows = Referral.select(Referral.id, Referral.created_at).order_by(Referral.id).tuples()
    referrals = list(rows)
    for first in range(0, len(referrals), CHUNK):
        batch = referrals[first : first + CHUNK]
        with db.transaction():
            InboundMessage.insert_many(
                {
                    "dedupe_key": f"request-{rid}",
                    "envelope_from": "referrer@example.org",
                    "recipients": "refer@intro.example.org",
                    "via": "smtp",
                    "raw": BODY,
                    "received_at": at,
                    "state": InboundState.PROCESSED,
                }
                for rid, at in batch
            ).execute()
            keys = [f"request-{rid}" for rid, _ in batch]
            stored = InboundMessage.select(InboundMessage.dedupe_key, InboundMessage.id).where(
                InboundMessage.dedupe_key.in_(keys)
            )
            for key, inbound_id in stored.tuples():
                rid = int(key.removeprefix("request-"))
                Referral.update(inbound=inbound_id).where(Referral.id == rid).execute()
            OutboxMail.insert_many(
                {
                    "message_id": f"<m{rid}-{n}@intro.example.org>",
                    "purpose": "consent_request",
                    "referral": rid,
                    "envelope_from": "bounce@intro.example.org",
                    "recipients": f"party{rid}-{n}@example.net",
                    "raw": BODY,
                    "state": OutboxState.SENT,
                    "created_at": at,
                    "due_at": at,
                    "sent_at": at,
                }
                for rid, at in batch
                for n in range(SENT_PER_REFERRAL)
            ).execute()


def idle_tick(folder: Path, url: str) -> float:
    """Median seconds of an idle tick on the store at `url`, after one to warm it."""
    with bound(url):
        return _idle(_context(folder, url), 4)


@dataclass(frozen=True)
class Idle:
    small: float  # median seconds of the idle tick on the small store
    large: float
    small_batch: float  # median seconds of a batch of retention's catch-up, small store
    large_batch: float


def idle_ticks(small: int, large: int, rounds: int) -> Idle:
    """Median seconds of the idle tick on a store of `small` and one of `large` referrals,
    taken in turn; and what a batch of retention cost while it caught up with each."""
    with tempfile.TemporaryDirectory() as tmp:
        stores = [scratch(Path(tmp), "small"), scratch(Path(tmp), "large")]
        made = [filled(stores[0], small), filled(stores[1], large)]
        idle = interleaved(
            lambda: idle_tick(stores[0], made[0].url),
            lambda: idle_tick(stores[1], made[1].url),
            rounds,
        )
    return Idle(*idle, made[0].batch, made[1].batch)


def ticks(due: int, rounds: int, small: int, large: int) -> list[Row]:
    alone: list[tuple[float, int, float, float]] = []
    served: list[tuple[float, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        writer = letter_writer(scratch(Path(tmp), "writer"))
        try:
            # Once, unmeasured, as `serve` does it once after it starts: compiling the
            # templates and loading the languages' data cost more than half as much as 1,000
            # items. Enough of each kind that the writer compiles its templates too.
            busy_tick(scratch(Path(tmp), "warm"), 3 * FEWEST, writer)
            for n in range(rounds):
                alone.append(busy_tick(scratch(Path(tmp), f"alone{n}"), due))
                served.append(busy_tick(scratch(Path(tmp), f"served{n}"), due, writer))
            # A second process is memory `serve` now holds too; it is not in `memory`'s
            # figure, whose load never makes a batch big enough to start it.
            writer_kb = memory_kb(writer.pid)[1] if writer.pid else 0
        finally:
            writer.close()
    idle = idle_ticks(small, large, 3 * rounds)
    one, each = (statistics.median(e for e, *_ in runs) / due for runs in (alone, served))
    ratio = idle.large / idle.small
    catch_up = idle.large_batch / idle.small_batch
    return [
        Row(
            f"ticks with {due:,} items due (reminders, expiries, surveys, a third each) on "
            "SQLite, as `serve` runs them, its letter writer beside it; baseline: in one "
            "process, as `care-intro tick`",
            _tick_cell(alone, one),
            _tick_cell(served, each) + f"; the writer's VmHWM {writer_kb / 1024:.0f} MB",
            f"{each * 1000:.2f} ms per item ({each / one:.2f}× one process's)",
            "≤ 0.5 ms per item",
            each <= TARGET_SECONDS,
        ),
        Row(
            f"idle tick, store of {small:,} vs {large:,} evaluated referrals and their mail",
            f"{idle.small * 1000:.1f} ms",
            f"{idle.large * 1000:.1f} ms",
            f"{ratio:.2f}× the small store's",
            "keep (4.5 ms, 1.1× from 10k to 1M)",
            ratio <= 1.2,
        ),
        Row(
            f"retention catching up with the same stores, all their mail old and unseen "
            f"at once (as after an upgrade), per batch of {erasure.BATCH}",
            f"{idle.small_batch * 1000:.1f} ms",
            f"{idle.large_batch * 1000:.1f} ms",
            f"{catch_up:.2f}× the small store's",
            "a batch costs what it takes, not the backlog (≤ 2×)",
            catch_up <= 2,
        ),
    ]


def _tick_cell(runs: list[tuple[float, int, float, float]], each: float) -> str:
    ticks = max(count for _, count, _, _ in runs)
    cpu = statistics.median(spent for _, _, spent, _ in runs)
    beside = statistics.median(spent for *_, spent in runs)
    writer = f" + {beside:.2f} s in the writer" if beside else ""
    return f"{each * 1000:.2f} ms per item, {ticks} tick(s), {cpu:.2f} s CPU{writer}"


def main() -> None:
    parser = argparse.ArgumentParser(description="the idle tick on a small and a large store")
    parser.add_argument("--small", type=int, default=1_000, help="evaluated referrals")
    parser.add_argument("--large", type=int, default=10_000, help="evaluated referrals")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    idle = idle_ticks(args.small, args.large, args.rounds)
    print(
        f"idle tick: {args.small:,} referrals {idle.small * 1000:.2f} ms, {args.large:,} "
        f"referrals {idle.large * 1000:.2f} ms, ratio {idle.large / idle.small:.2f}"
    )
    print(
        f"retention catching up, per batch of {erasure.BATCH}: {idle.small_batch * 1000:.1f} vs "
        f"{idle.large_batch * 1000:.1f} ms, ratio {idle.large_batch / idle.small_batch:.2f}"
    )


if __name__ == "__main__":
    main()
