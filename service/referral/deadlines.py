"""Reminders and expiry: what a tick does to referrals whose questions wait too long.

An expiry is a move of the workflow (`workflow.move`, the only way a referral changes
state). Due referrals are claimed a batch to a transaction, and each is locked and checked
again in a savepoint of its own, so a reminder never reaches a party who answered
meanwhile and never goes twice, and an expiry never ends a referral that an answer has
just decided. With several instances on one PostgreSQL, each claim skips the referrals
another instance holds. `claim_each` runs every kind of due work a tick does this way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.model import Channel, State
from service.referral import expiry, workflow
from service.writing import letters
from service.writing.context import Context
from service.writing.writer import Job
from store import queries
from store.db import change_mark, is_unavailable, transaction
from store.records import OutgoingMail, PartyRecord, ReferralRecord

log = logging.getLogger(__name__)

# Due items handled in one write transaction, where their letters are written before it: the
# lock is held only for their writes, about 20 ms for 200 here, which SMTP sessions' commits
# wait out; per item, a tick costs a tenth less than with 50: fewer looks, claims and
# inserts, and the letters written one after another rather than between them.
BATCH = 200
# Where the letters are written under the lock (withheld noes, failed mail, surveys closing),
# 200 would hold it for a quarter of a second and more: these take 50.
BATCH_UNDER_LOCK = 50

# How many items of one kind a tick handles at most; the rest are due again on the next
# tick, a minute later in `serve`. A bound on one tick's time, far above a day's work.
PER_TICK = 10_000


@dataclass(frozen=True)
class Write:
    """How a kind writes its letters: `letters(ctx, *records, now)`, a function of its
    module, so that the letter writer (`service.writing.writer`) can call it too."""

    ctx: Context
    letters: Callable[..., list[OutgoingMail]]
    now: datetime

    def __call__(self, *records: Hashable) -> list[OutgoingMail]:
        return self.letters(self.ctx, *records, self.now)


class Drafts:
    """Letters written before the write transaction from an unlocked view of their records.

    Rendering is most of an item's cost; done under the lock, it would hold every other
    writer for it. Under the lock the locked records ask again: the letters written from an
    equal view are the ones these records write, and only a view that changed meanwhile
    (an answer came in) is written again. Without `write`, there are none.
    """

    def __init__(
        self,
        write: Write | None,
        view: Callable[..., Hashable] = lambda *records: records,
    ) -> None:
        self._write = write
        # What of the records the letters say: a change elsewhere leaves them as written.
        self._view = view
        self._written: dict[Hashable, list[OutgoingMail]] = {}

    def prepare(self, *records: Hashable) -> list[OutgoingMail]:
        """Write the letters of these records now; what was written."""
        try:
            written = self._fresh(*records)
        except Exception:  # written again under the lock, where a failure is reported
            return []
        self._written[self._view(*records)] = written
        return written

    def prepare_all(self, many: Sequence[tuple[Hashable, ...]]) -> None:
        """`prepare` each of `many`; where the context has a letter writer, it writes a
        share of them meanwhile, on another core."""
        writer = self._write.ctx.writer if self._write is not None else None
        share = writer.share(len(many)) if writer is not None else 0
        if not share:
            for records in many:
                self.prepare(*records)
            return
        assert self._write is not None and writer is not None
        sent, rest = many[:share], many[share:]
        job = Job(self._write.letters, self._write.now, self._write.ctx.tokens.clock, sent)
        received = writer.write(job, lambda: [self.prepare(*records) for records in rest])
        for records, written in zip(sent, received or [None] * share, strict=True):
            if written is None:  # it could not: written here, as the rest were
                self.prepare(*records)
            else:
                self._written[self._view(*records)] = written

    def letters(self, *records: Hashable) -> list[OutgoingMail]:
        written = self._written.pop(self._view(*records), None)
        return written if written is not None else self._fresh(*records)

    def _fresh(self, *records: Hashable) -> list[OutgoingMail]:
        return self._write(*records) if self._write is not None else []


class Batch:
    """What `claim_each` does with the due items of one kind, a batch at a time."""

    # Items to a transaction: only a batch whose letters `prepare` writes takes more.
    size = BATCH_UNDER_LOCK

    # True while `claim_each` tries the batch's items together, in one savepoint and none of
    # their own: then an item's failure is not contained but raised, and the batch goes again.
    together = False

    def prepare(self, ids: list[int]) -> None:
        """Before the transaction, unlocked: what needs no lock (reading, rendering)."""

    def load(self, ids: list[int], unchanged: bool) -> None:
        """In the transaction, once the batch is claimed: read what its items need at once.
        `unchanged`: nothing was written since `prepare` read, so what it read still stands
        (and the batch claimed is the one prepared)."""

    def handle(self, item: int) -> int:
        """One item, its writes in a savepoint of its own unless `together`; how much it did."""
        raise NotImplementedError

    def finish(self) -> None:
        """In the transaction, after the batch's items: write what they gave, together."""

    def again(self) -> None:
        """The batch's attempt together was rolled back: forget what its items gave."""


class Each(Batch):
    """Items handled one by one, with nothing for a batch to share."""

    def __init__(self, handle: Callable[[int], int]) -> None:
        self._handle = handle

    def handle(self, item: int) -> int:
        if self.together:
            return self._handle(item)
        with transaction():
            return self._handle(item)


class Letters(Batch):
    """A batch whose items write mail: written before the lock where the view allows
    (`Drafts`), and queued for the whole batch at its end, one suppression check and one
    insert for all. Without `write`, its steps write their letters under the lock."""

    def __init__(
        self,
        write: Write | None,
        now: datetime,
        view: Callable[..., Hashable] = lambda *records: records,
    ) -> None:
        self.drafts = Drafts(write, view)
        self.now = now
        self._queued: list[OutgoingMail] = []
        if write is not None:
            self.size = BATCH

    def contained(self, step: Callable[[], int], recover: Callable[[], None], what: str) -> int:
        """One item's `step` in a savepoint: a bug in it must not hold up the items behind.
        On failure its mails are not sent, `recover` runs (in a savepoint of its own), and
        the log says `what` failed."""
        if self.together:
            return step()
        mark = len(self._queued)
        try:
            with transaction():
                return step()
        except Exception as exc:
            if is_unavailable(exc):
                raise
            del self._queued[mark:]
            log.exception("%s failed; moving on", what)
        with transaction():
            recover()
        return 0

    def queue(self, mails: list[OutgoingMail]) -> None:
        self._queued += mails

    def again(self) -> None:
        self._queued = []

    def finish(self) -> None:
        queued, self._queued = self._queued, []
        try:
            with transaction():
                queries.enqueue(queued, self.now)
            return
        except Exception as exc:
            if is_unavailable(exc):
                raise
        # One mail the store refuses must not take the batch's others with it.
        for mail in queued:
            try:
                with transaction():
                    queries.enqueue([mail], self.now)
            except Exception as exc:
                if is_unavailable(exc):
                    raise
                log.exception("queueing mail %s (%s) failed", mail.message_id, mail.purpose)


def send_reminders(ctx: Context, now: datetime, limit: int = PER_TICK) -> int:
    """Remind each party who has not answered, once; how many reminders were queued.

    At most `limit` referrals per call; what is left is due again on the next tick.
    """
    batch = _Referrals(_remind, Write(ctx, _reminders, now), now)
    return claim_each("reminders", batch, now, limit)


def expire_due(ctx: Context, now: datetime, limit: int = PER_TICK) -> int:
    """End each referral still asking when its question expired; how many were ended."""
    batch = _Referrals(_expire, Write(ctx, expiry.letters_of, now), now)
    return claim_each("expiries", batch, now, limit)


class _Referrals(Letters):
    """Due referrals: their reminders or their expiries."""

    def __init__(
        self,
        step: Callable[[ReferralRecord, _Referrals], int],
        write: Write,
        now: datetime,
    ) -> None:
        super().__init__(write, now)
        self.step = step
        self._held: dict[int, ReferralRecord] = {}
        self._read: dict[int, ReferralRecord] = {}  # as `prepare` read them, unlocked

    def prepare(self, ids: list[int]) -> None:
        self._read = {r.id: r for r in queries.referrals_by_id(ids)}
        self.drafts.prepare_all([(referral,) for referral in self._read.values()])

    def load(self, ids: list[int], unchanged: bool) -> None:
        # The claim locked these referrals, and every change to one starts by locking it
        # (`queries.lock_referral`): read now, they stay as read until the batch commits.
        if unchanged:
            self._held = dict(self._read)
        else:
            self._held = {r.id: r for r in queries.referrals_by_id(ids)}

    def handle(self, item: int) -> int:
        referral = self._held.pop(item, None) or queries.lock_referral(item)
        what = f"{self.step.__name__.strip('_')} of {referral.ref}"
        return self.contained(
            lambda: self.step(referral, self), lambda: self.recover(referral), what
        )

    def recover(self, referral: ReferralRecord) -> None:
        """The referral still leaves the queue of what is due: its reminder is skipped, or
        it expires without its letters; the log has the traceback and the reference."""
        if self.step is _remind:
            queries.reminders_done(referral.id)
        elif expiry.overdue(referral, self.now):
            workflow.move(referral, State.EXPIRED, self.now, Channel.TICK, detail="letters failed")


def claim_each(kind: str, batch: Batch, now: datetime, limit: int) -> int:
    """Handle what is due of `kind` (a key of `queries.DUE`), at most `limit` items, the rest
    on the next run; the sum of what the batch's items did.

    A batch at a time: `prepare` gets the ids due, unlocked; then one transaction claims up
    to a batch, locked, and handles it (`_claimed`). What is claimed may differ from what
    was prepared: another instance took some, or more came due.
    """
    done = 0
    tried: set[int] = set()
    while len(tried) < limit:
        size = min(batch.size, limit - len(tried))
        # An item that failed stays due, first in line; it is tried again on the next run,
        # not now. Asking past those keeps a run of failures from hiding what is behind.
        ask = size + len(tried)
        mark = change_mark()
        # Looking costs no write lock: an idle tick takes none.
        due = [i for i in queries.due_now(kind, now, ask) if i not in tried][:size]
        if not due:
            break
        batch.prepare(due)
        # Unsynced: what a batch writes reaches anyone only as mail, which the outbox claims
        # in a commit that waits for the disk and so makes this one durable first. A power
        # cut before then takes the batch back with nothing sent, and the next tick does it
        # again. Each fsync here cost as much as a fifth of the batch's own work.
        with transaction(durable=False):
            # Nothing committed since the look: it stands, and claims what it saw (SQLite).
            unchanged = mark is not None and change_mark() == mark
            if unchanged:
                claimed = due
            else:
                claimed = [i for i in queries.claim_due(kind, now, ask) if i not in tried][:size]
                queries.hold_referrals_of(kind, claimed)
            tried.update(claimed)
            done += _claimed(kind, batch, claimed, unchanged)
        if not claimed:
            break
    return done


def _claimed(kind: str, batch: Batch, claimed: list[int], unchanged: bool) -> int:
    """Load the claimed items, handle each, and finish; the sum of what they did.

    First all together in one savepoint, their events inserted together at the end: a
    savepoint of an item's own costs as much as its writes (on PostgreSQL, two more round
    trips). Should one item fail, that savepoint rolls back, and the batch goes again with
    each item in a savepoint of its own, so that the failure stays with its item and the
    others go on.
    """
    batch.together = True
    try:
        with transaction(), queries.events_together():
            batch.load(claimed, unchanged)
            done = sum(batch.handle(item) for item in claimed)
            batch.finish()
        return done
    except Exception as exc:
        if is_unavailable(exc):
            raise  # the store's trouble, not an item's: the whole batch waits for next time
        # Not lost: going alone, the item that failed fails again and is logged with its
        # traceback then; this says why the batch went twice.
        log.debug("a %s batch goes again an item at a time: %s", kind, exc)
    finally:
        batch.together = False
    batch.again()
    # Rolled back to the claim: what was there to load then is there now.
    batch.load(claimed, unchanged)
    done = sum(_alone(kind, batch, item) for item in claimed)
    batch.finish()
    return done


def _alone(kind: str, batch: Batch, item: int) -> int:
    try:
        return batch.handle(item)
    except Exception as exc:
        if is_unavailable(exc):
            raise  # the store's trouble, not the item's: the whole batch waits for next time
        log.exception("%s item %s failed; moving on", kind, item)
        return 0


def _waiting(referral: ReferralRecord) -> list[PartyRecord]:
    return [p for p in referral.parties if p.answer is None and p.reminded_at is None]


def _reminders(ctx: Context, referral: ReferralRecord, now: datetime) -> list[OutgoingMail]:
    """Pure: the reminders a referral due for them writes, one per party still silent."""
    if referral.state != State.ASKING or now >= referral.expires_at:
        return []
    return [letters.consent_reminder(ctx, referral, p, now) for p in _waiting(referral)]


def _remind(referral: ReferralRecord, batch: Letters) -> int:
    now = batch.now
    if referral.remind_at is None or referral.remind_at > now:
        return 0  # claimed under a stale view; nothing is due
    # Whatever follows, this referral has had its reminder turn: it leaves the index.
    queries.reminders_done(referral.id)
    if referral.state != State.ASKING or now >= referral.expires_at:
        return 0
    # mark_reminded is the "never two" guard: only the transaction that sets it sends.
    waiting = {p.id for p in _waiting(referral) if queries.mark_reminded(p.id, now)}
    if not waiting:
        return 0
    batch.queue([m for m in batch.drafts.letters(referral) if m.party_id in waiting])
    roles = ", ".join(p.role for p in referral.parties if p.id in waiting)
    queries.add_event(referral.id, now, "reminded", "service", Channel.TICK, roles)
    return len(waiting)


def _expire(referral: ReferralRecord, batch: Letters) -> int:
    now = batch.now
    if not expiry.overdue(referral, now):
        return 0  # an answer decided it first, or a late one expired it already
    # Written from the referral as it was: its letters tell of the question still open.
    mails = batch.drafts.letters(referral)
    workflow.move(referral, State.EXPIRED, now, Channel.TICK, detail=expiry.detail(referral))
    batch.queue(mails)
    return 1
