"""The durable outbox worker: the only code that hands mail on, with retries and backoff."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from service.errors import DeliveryError
from service.reading.relay_replies import without_addresses
from store import queries
from store.db import RunDb
from store.records import OutboxItem

log = logging.getLogger(__name__)

# Longer than any single send can take (the relay timeout is 60 s), so a lease only runs
# out when its worker is gone.
LEASE = timedelta(minutes=10)
# Like an MTA's queue lifetime: past this, a temporary failure is taken as final.
RETRY_FOR = timedelta(days=2)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)
BATCH = 50


class Transport(Protocol):
    async def send(self, item: OutboxItem) -> str:
        """Hand one mail on; return a note for the log, or raise DeliveryError."""
        ...


@dataclass(frozen=True)
class Report:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def __add__(self, other: Report) -> Report:
        return Report(
            self.sent + other.sent, self.retrying + other.retrying, self.failed + other.failed
        )


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, … minutes after each failed attempt, never more than an hour."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


async def deliver_due(
    transport: Transport,
    now: datetime,
    run_db: RunDb = asyncio.to_thread,
    batches: int = 20,
) -> Report:
    """Send what is due at `now`, a batch at a time, until nothing is due (or `batches` ran)."""
    total = Report()
    for _ in range(batches):
        items = await run_db(queries.claim_outbox, now, now + LEASE, BATCH)
        if not items:
            break
        for item in items:
            total += await _deliver_one(transport, item, now, run_db)
    return total


async def _deliver_one(
    transport: Transport, item: OutboxItem, now: datetime, run_db: RunDb
) -> Report:
    try:
        note = await transport.send(item)
    except DeliveryError as exc:
        give_up = exc.permanent or now - item.created_at >= RETRY_FOR
        if give_up:
            log.warning(
                "mail %s (%s) failed for good: %s",
                item.message_id,
                item.purpose,
                without_addresses(str(exc)),
            )
            await run_db(queries.mark_failed, item.id, now, str(exc))
            return Report(failed=1)
        due = now + backoff(item.attempts)
        log.info(
            "mail %s (%s) will be retried at %s: %s",
            item.message_id,
            item.purpose,
            due,
            without_addresses(str(exc)),
        )
        await run_db(queries.reschedule, item.id, due, str(exc))
        return Report(retrying=1)
    # A crash right here (handed on, not yet recorded) makes the lease run out and the
    # same bytes, with the same Message-ID, go again: a duplicate a client can recognise,
    # never a second, different mail.
    await run_db(queries.mark_sent, item.id, now, note)
    log.info(
        "mail %s (%s) handed on to %d recipient(s)",
        item.message_id,
        item.purpose,
        len(item.recipients),
    )
    return Report(sent=1)
