"""The durable outbox worker: the only code that hands mail on, with retries and backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from service.clock import Clock, FixedClock, SystemClock
from service.delivery import holder
from service.delivery.holder import this_process
from service.delivery.recording import SentRecorder
from service.errors import DeliveryError
from service.reading.relay_replies import without_addresses
from store import queries
from store.db import RunDb
from store.records import OutboxItem

log = logging.getLogger(__name__)

# A claim is short and kept alive by a heartbeat while its mails are being sent, so a
# worker that died (or froze) gives its mails back within a minute, not the worst case of
# a send; a restarted instance on the same host takes them back at once (release_dead).
LEASE = timedelta(seconds=60)
HEARTBEAT_SECONDS = 15.0
# The most one send may take, everything included. Shorter than a lease, so a hanging
# relay times out while its mail is still ours: no second instance can send it meanwhile.
SEND_LIMIT_SECONDS = 40.0
# Like an MTA's queue lifetime: a mail the relay keeps refusing for now is given up once
# this long has passed since its first such refusal, and it was tried at least
# FEWEST_ATTEMPTS times. Counted from the first refusal, not from queueing: a service
# stopped over a weekend, or our relay down, must not use up the window with no answer from
# the relay about the mail. The attempts keep a service stopped mid-window from giving up on
# its first try after a restart: they are spread over about four hours by the backoff.
RETRY_FOR = timedelta(days=2)
FEWEST_ATTEMPTS = 10
FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)
BATCH = 50
# How many mails may be handed on and not yet recorded sent. A connection goes on to the
# next mail once the relay took one, so sending does not wait while intake holds the
# store's write lock; recording catches up in one commit. A kill sends each of these again.
UNRECORDED = 64

Record = Callable[[int, datetime, str], Awaitable[None]]
# Told of each attempt and how it went (the edge counts them); the outbox needs no answer.
Observe = Callable[[OutboxItem, "Report", datetime], None]


class Transport(Protocol):
    async def send(self, item: OutboxItem) -> str:
        """Hand one mail on; return a note for the log, or raise DeliveryError."""
        ...

    async def close(self) -> None:
        """Let go of whatever is kept open between mails."""
        ...


@dataclass(frozen=True)
class Report:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # The run ended at its limit of claims with mail still due: whoever runs it again now
    # sends the rest, rather than at the next kick.
    more: bool = False

    def __add__(self, other: Report) -> Report:
        return Report(
            self.sent + other.sent,
            self.retrying + other.retrying,
            self.failed + other.failed,
            self.more or other.more,
        )


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, … minutes after each failed attempt, never more than an hour."""
    # The exponent stops where the hour is reached: a mail tried hourly for days would
    # otherwise ask timedelta for more than it can hold (2**42 minutes).
    ceiling = (LONGEST_WAIT // FIRST_RETRY).bit_length()
    return min(FIRST_RETRY * (2 ** min(max(attempts - 1, 0), ceiling)), LONGEST_WAIT)


async def deliver_due(
    transport: Transport,
    now: datetime,
    run_db: RunDb = asyncio.to_thread,
    batches: int = 20,
) -> Report:
    """Send what is due at `now`, a batch at a time, until nothing is due (or `batches` ran);
    one run (a `tick`) keeps no connection open after it."""
    try:
        return await Outbox(transport, run_db, FixedClock(now)).deliver_due(batches)
    finally:
        await transport.close()


class Outbox:
    """Sends what is due: claims a batch, sends up to `connections` of it at once while a
    heartbeat keeps the claims, and records what went in groups."""

    def __init__(
        self,
        transport: Transport,
        run_db: RunDb = asyncio.to_thread,
        clock: Clock | None = None,
        *,
        connections: int = 1,
        holder: str | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        observe: Observe | None = None,
    ) -> None:
        self.transport = transport
        self.run_db = run_db
        self.clock = clock or SystemClock()
        self.connections = max(connections, 1)
        self.holder = holder if holder is not None else str(this_process())
        self.heartbeat_seconds = heartbeat_seconds
        self.recorder = SentRecorder(run_db)
        self.observe = observe

    async def deliver_due(self, batches: int = 20) -> Report:
        """Send what is due, up to `batches` claims of it, keeping every connection busy: a
        mail starts as soon as one is free, and the next claim is made while the last mails
        of the one before are still going (a claim may wait for the store's write lock; the
        connections should not wait with it). A connection is free once the relay took its
        mail; up to UNRECORDED mails may wait to be recorded meanwhile. A heartbeat keeps
        every claim until its mail is settled, claimed ahead or not."""
        held: set[int] = set()
        gate = asyncio.Semaphore(self.connections)
        unrecorded = asyncio.Semaphore(max(UNRECORDED, self.connections))
        going: list[asyncio.Task[Report]] = []
        heartbeat = asyncio.create_task(self._keep_claims(held), name="outbox heartbeat")
        claim: asyncio.Task[list[OutboxItem]] | None = None
        more = False
        try:
            claim = self._claim(held)
            for n in range(batches):
                items = await claim
                more = bool(items) and n + 1 == batches
                claim = self._claim(held) if items and n + 1 < batches else None
                for item in items:
                    await unrecorded.acquire()
                    await gate.acquire()
                    going.append(asyncio.create_task(self._one(item, gate, unrecorded, held)))
                if claim is None:
                    break
        except asyncio.CancelledError:
            for task in going:
                task.cancel()  # stopping: as before, a send under way is cut short
            raise
        finally:
            # A store error ended the loop: the mails under way still finish and are recorded.
            settled = await asyncio.gather(*going, return_exceptions=True)
            if claim is not None:
                claim.cancel()  # what it took waits out its lease, unsent: nothing twice
                with contextlib.suppress(BaseException):
                    await claim
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        reports = [r for r in settled if isinstance(r, Report)]
        for failure in settled:
            if isinstance(failure, BaseException):
                raise failure
        return sum(reports, Report(more=more))

    def _claim(self, held: set[int]) -> asyncio.Task[list[OutboxItem]]:
        # What is due when the claim is asked for, not whenever its task gets to run.
        now = self.clock.now()

        async def claim() -> list[OutboxItem]:
            # Enough for every connection to stay busy until the next claim is in.
            limit = max(BATCH, 25 * self.connections)
            items = await self.run_db(queries.claim_outbox, now, now + LEASE, limit, self.holder)
            held.update(item.id for item in items)
            return items

        return asyncio.create_task(claim(), name="outbox claim")

    async def _one(
        self,
        item: OutboxItem,
        gate: asyncio.Semaphore,
        unrecorded: asyncio.Semaphore,
        held: set[int],
    ) -> Report:
        connection_free = False

        def handed_on() -> None:
            nonlocal connection_free
            if not connection_free:
                connection_free = True
                gate.release()

        try:
            now = self.clock.now()
            report = await _deliver_one(
                self.transport, item, now, self.run_db, self.recorder.record, handed_on
            )
        finally:
            handed_on()
            unrecorded.release()
        if self.observe is not None:
            self.observe(item, report, now)
        held.discard(item.id)
        return report

    async def release_dead(self) -> int:
        """Make the mails dead processes on this host held due now; how many there were."""
        holders = await self.run_db(queries.claim_holders)
        gone = [h for h in holders if (p := holder.parse(h)) is not None and holder.is_gone(p)]
        released = await self.run_db(queries.release_claims, gone, self.clock.now())
        if released:
            log.warning(
                "took back %d mail(s) claimed by %d process(es) that ended", released, len(gone)
            )
        return released

    async def _keep_claims(self, unsettled: set[int]) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            asked = sorted(unsettled)
            try:
                held = await self.run_db(
                    queries.renew_claims, asked, self.holder, self.clock.now() + LEASE
                )
            except Exception as exc:
                # The lease is four heartbeats long: the next one may still make it.
                log.warning("could not renew the outbox's claims: %s", type(exc).__name__)
                continue
            lost = (set(asked) & unsettled) - held
            if lost:
                log.warning(
                    "lost the claim on outbox mail(s) %s; another instance may send them too",
                    ", ".join(map(str, sorted(lost))),
                )


async def _deliver_one(
    transport: Transport,
    item: OutboxItem,
    now: datetime,
    run_db: RunDb,
    record: Record,
    handed_on: Callable[[], None],
) -> Report:
    try:
        try:
            note = await transport.send(item)
        finally:
            handed_on()  # the connection is free for the next mail, recorded or not
    except DeliveryError as exc:
        if exc.ours:
            # Our relay down, our login or sender refused: nothing about the mail or its
            # recipient, so it waits however long that takes; failing it would tell a
            # referrer that someone's server refused what it never saw. The operator learns
            # from this error and from /healthz ("outbox late").
            give_up = False
        else:
            since = item.deferred_since or now
            give_up = exc.permanent or (
                now - since >= RETRY_FOR and item.attempts >= FEWEST_ATTEMPTS
            )
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
        # At our end (our relay down, or refusing our login or our sender): nothing changes
        # until the operator acts, so it is an error in the log, not a note.
        log.log(
            logging.ERROR if exc.ours else logging.INFO,
            "mail %s (%s) will be retried at %s: %s",
            item.message_id,
            item.purpose,
            due,
            without_addresses(str(exc)),
        )
        deferred_at = None if exc.ours else now
        await run_db(queries.reschedule, item.id, due, str(exc), deferred_at)
        return Report(retrying=1)
    # A crash right here (handed on, not yet recorded) makes the claim go back and the
    # same bytes, with the same Message-ID, go again: a duplicate a client can recognise,
    # never a second, different mail.
    await record(item.id, now, note)
    log.info(
        "mail %s (%s) handed on to %d recipient(s)",
        item.message_id,
        item.purpose,
        len(item.recipients),
    )
    return Report(sent=1)
