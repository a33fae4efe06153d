"""A whole referral in one process on SQLite: the request stored and processed by intake,
both consent questions queued, both parties' yes, the introduction queued. Against storing
the request alone, which is all the SMTP answer waits for."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import RCPT, REFERRER, Row, bound, database_url, interleaved, rate, scratch
from smtp_load import request

from service.clock import FixedClock
from service.intake import pipeline, receiving
from service.model import Answer, Channel, InboundState, State
from service.referral import workflow
from service.settings import Settings
from service.writing.context import Context, make_context
from store import queries

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TARGET = 100.0


def _context(folder: Path, url: str) -> Context:
    settings = (
        Settings()
        .replace("service", domain="intro.example.org", data_dir=str(folder))
        .replace("database", url=url)
        .replace("security", allowed_referrers=(REFERRER,), secret_keys=("bench-key",))
    )
    return make_context(settings, FixedClock(NOW))


def store_requests(raws: list[bytes]) -> None:
    """What SMTP does before it answers 250: each request stored, committed."""
    for raw in raws:
        receiving.receive(raw, REFERRER, [RCPT], Channel.SMTP, NOW)


def whole_lifecycles(ctx: Context, raws: list[bytes]) -> None:
    """Each request stored, processed, both parties asked and both saying yes."""
    for raw in raws:
        stored = receiving.receive(raw, REFERRER, [RCPT], Channel.SMTP, NOW)
        assert stored.inbound_id is not None
        pipeline.process_pending(ctx, NOW)
        inbound = queries.inbound_by_id(stored.inbound_id)
        assert inbound is not None and inbound.state == InboundState.PROCESSED, inbound
        referral = queries.referral_by_ref(inbound.note)
        assert referral is not None
        for party in referral.parties:
            workflow.answer(ctx, party.ask_key, Answer.YES, Channel.LINK, NOW)
        done = queries.referral_by_id(referral.id)
        assert done is not None and done.state == State.INTRODUCED, done


def timed(job: object, *args: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    job(*args)  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def lifecycle(count: int, rounds: int) -> list[Row]:
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        turn = iter(range(1000))

        def baseline() -> float:
            folder = scratch(Path(tmp), "base")
            with bound(database_url(folder)):
                wall, _ = timed(store_requests, [request(n, "b") for n in range(count)])
            return count / wall

        def subject() -> float:
            folder = scratch(Path(tmp), f"life{next(turn)}")
            url = database_url(folder)
            with bound(url):
                ctx = _context(folder, url)
                wall, used = timed(whole_lifecycles, ctx, [request(n, "l") for n in range(count)])
            cpu.append(used / count)
            return count / wall

        base, subj = interleaved(baseline, subject, rounds)
    cpu_each = sorted(cpu)[len(cpu) // 2]
    return [
        Row(
            f"whole lifecycle on SQLite, {count:,} referrals (request → intake → two consent "
            "mails → both say yes → introduction), in one process; storing the request "
            "alone as baseline",
            rate(base, "requests stored/s"),
            f"{rate(subj, 'referrals/s')}, {cpu_each * 1000:.1f} ms CPU each",
            f"{subj / base:.3f}×",
            "≥ 100 referrals/s",
            subj >= TARGET,
        )
    ]
