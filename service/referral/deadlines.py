"""Reminders and expiry: what a tick does to referrals whose questions wait too long.

An expiry is a move of the workflow (`workflow.move`, the only way a referral changes
state). Each referral is claimed, locked and re-checked in its own transaction, so a
reminder never reaches a party who answered meanwhile and never goes twice, and an expiry
never ends a referral that an answer has just decided. With several instances on one
PostgreSQL, each claim skips the referrals another instance holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from datetime import datetime

from service.model import Answer, Channel, State
from service.referral import workflow
from service.writing import letters
from service.writing.context import Context
from store import queries
from store.db import is_unavailable, transaction
from store.records import OutgoingMail, PartyRecord, ReferralRecord

log = logging.getLogger(__name__)

# Due items handled in one write transaction: one commit (one fsync on SQLite) for them all,
# while the write lock, which SMTP sessions wait on, is held for milliseconds at a time.
BATCH = 50

# How many items of one kind a tick handles at most; the rest are due again on the next
# tick, a minute later in `serve`. A bound on one tick's time, far above a day's work.
PER_TICK = 10_000


class Drafts:
    """Letters written before the write transaction from an unlocked view of their records.

    Rendering is most of an item's cost; done under the lock, it would hold every other
    writer for it. Under the lock the locked records ask again: the letters written from an
    equal view are the ones these records write, and only a view that changed meanwhile
    (an answer came in) is written again.
    """

    def __init__(self, write: Callable[..., list[OutgoingMail]]) -> None:
        self._write = write
        self._written: dict[tuple[Hashable, ...], list[OutgoingMail]] = {}

    def prepare(self, *records: Hashable) -> None:
        try:
            self._written[records] = self._write(*records)
        except Exception:  # written again under the lock, where a failure is reported
            return

    def letters(self, *records: Hashable) -> list[OutgoingMail]:
        written = self._written.pop(records, None)
        return written if written is not None else self._write(*records)


def send_reminders(ctx: Context, now: datetime, limit: int = PER_TICK) -> int:
    """Remind each party who has not answered, once; how many reminders were queued.

    At most `limit` referrals per call; what is left is due again on the next tick.
    """
    drafts = Drafts(lambda referral: _reminders(ctx, referral, now))
    return _each_due("reminders", _remind, drafts, now, limit)


def expire_due(ctx: Context, now: datetime, limit: int = PER_TICK) -> int:
    """End each referral still asking when its question expired; how many were ended."""
    drafts = Drafts(lambda referral: _expiry_letters(ctx, referral, now))
    return _each_due("expiries", _expire, drafts, now, limit)


Step = Callable[[ReferralRecord, datetime, Drafts], int]


def _each_due(kind: str, step: Step, drafts: Drafts, now: datetime, limit: int) -> int:
    """Handle due referrals in batches; the sum of what `step` did."""

    def prepare(referral_ids: list[int]) -> None:
        for referral in queries.referrals_by_id(referral_ids):
            drafts.prepare(referral)

    def handle(referral_id: int) -> int:
        return _contained(step, queries.lock_referral(referral_id), now, drafts)

    return claim_each(kind, handle, now, limit, prepare)


def claim_each(
    kind: str,
    handle: Callable[[int], int],
    now: datetime,
    limit: int,
    prepare: Callable[[list[int]], None] | None = None,
) -> int:
    """Handle what is due of `kind` (a key of `queries.DUE`), at most `limit` items, the rest
    on the next run; the sum of what `handle` returned.

    A batch at a time: `prepare` gets the ids due, unlocked, to do what needs no lock (read,
    render); then one transaction claims up to a batch, locked, and handles each item in a
    savepoint of its own, so a bug in one item does not hold up the rest. What is claimed
    may differ from what was prepared: another instance took some, or more came due.
    """
    done = 0
    tried: set[int] = set()
    while len(tried) < limit:
        size = min(BATCH, limit - len(tried))
        # Looking costs no write lock: an idle tick takes none.
        due = [i for i in queries.due_now(kind, now, size) if i not in tried]
        if not due:
            break
        if prepare is not None:
            prepare(due)
        with transaction():
            # An item that failed stays due; it is tried again on the next run, not now.
            claimed = [i for i in queries.claim_due(kind, now, size) if i not in tried]
            queries.hold_referrals_of(kind, claimed)
            for item in claimed:
                tried.add(item)
                done += _alone(kind, handle, item)
        if not claimed:
            break
    return done


def _alone(kind: str, handle: Callable[[int], int], item: int) -> int:
    try:
        with transaction():
            return handle(item)
    except Exception as exc:
        if is_unavailable(exc):
            raise  # the store's trouble, not the item's: the whole batch waits for next time
        log.exception("%s item %s failed; moving on", kind, item)
        return 0


def _contained(step: Step, referral: ReferralRecord, now: datetime, drafts: Drafts) -> int:
    """One referral's step in a savepoint: a bug in it must not hold up every referral behind.

    On failure the referral still leaves the queue of what is due (its reminder is skipped,
    or it expires without its letters); the log has the traceback and the reference.
    """
    try:
        with transaction():
            return step(referral, now, drafts)
    except Exception:
        log.exception("%s of %s failed; moving on", step.__name__.strip("_"), referral.ref)
    if step is _remind:
        queries.reminders_done(referral.id)
    elif referral.state == State.ASKING and now >= referral.expires_at:
        workflow.move(referral, State.EXPIRED, now, Channel.TICK, detail="letters failed")
    return 0


def _waiting(referral: ReferralRecord) -> list[PartyRecord]:
    return [p for p in referral.parties if p.answer is None and p.reminded_at is None]


def _reminders(ctx: Context, referral: ReferralRecord, now: datetime) -> list[OutgoingMail]:
    """Pure: the reminders a referral due for them writes, one per party still silent."""
    if referral.state != State.ASKING or now >= referral.expires_at:
        return []
    return [letters.consent_reminder(ctx, referral, p, now) for p in _waiting(referral)]


def _expiry_letters(ctx: Context, referral: ReferralRecord, now: datetime) -> list[OutgoingMail]:
    """Pure: the referrer learns who did not answer; whoever said yes only that it will not
    go ahead; whoever never answered hears nothing more."""
    if referral.state != State.ASKING or now < referral.expires_at:
        return []
    agreed = [p for p in referral.parties if p.answer == Answer.YES]
    mails = [letters.referrer_expired(ctx, referral, now)]
    return mails + [letters.expired_to_party(ctx, referral, p, now) for p in agreed]


def _remind(referral: ReferralRecord, now: datetime, drafts: Drafts) -> int:
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
    mails = [m for m in drafts.letters(referral) if m.party_id in waiting]
    queries.enqueue(mails, now)
    roles = ", ".join(p.role for p in referral.parties if p.id in waiting)
    queries.add_event(referral.id, now, "reminded", "service", Channel.TICK, roles)
    return len(waiting)


def _expire(referral: ReferralRecord, now: datetime, drafts: Drafts) -> int:
    if referral.state != State.ASKING or now < referral.expires_at:
        return 0  # an answer decided it first
    silent = [p for p in referral.parties if p.answer is None]
    detail = "no answer from " + ", ".join(p.role for p in silent) if silent else ""
    # Written before the move: its letters tell of the question that was still open.
    mails = drafts.letters(referral)
    workflow.move(referral, State.EXPIRED, now, Channel.TICK, detail=detail)
    queries.enqueue(mails, now)
    return 1
