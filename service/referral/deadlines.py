"""Reminders and expiry: what a tick does to referrals whose questions wait too long.

An expiry is a move of the workflow (`workflow.move`, the only way a referral changes
state). Each referral is claimed, locked and re-checked in its own transaction, so a
reminder never reaches a party who answered meanwhile and never goes twice, and an expiry
never ends a referral that an answer has just decided. With several instances on one
PostgreSQL, each claim skips the referrals another instance holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from service.model import Answer, Channel, State
from service.referral import workflow
from service.writing import letters
from service.writing.context import Context
from store import queries
from store.db import transaction
from store.records import ReferralRecord

log = logging.getLogger(__name__)


def send_reminders(ctx: Context, now: datetime, limit: int = 200) -> int:
    """Remind each party who has not answered, once; how many reminders were queued.

    At most `limit` referrals per call; what is left is due again on the next tick.
    """
    return _each_due(queries.next_reminder_due, _remind, ctx, now, limit)


def expire_due(ctx: Context, now: datetime, limit: int = 200) -> int:
    """End each referral still asking when its question expired; how many were ended."""
    return _each_due(queries.next_expiry_due, _expire, ctx, now, limit)


Step = Callable[[Context, ReferralRecord, datetime], int]


def _each_due(
    next_due: Callable[[datetime], int | None], step: Step, ctx: Context, now: datetime, limit: int
) -> int:
    """Lock and handle due referrals one transaction each; the sum of what `step` did."""

    def handle(referral_id: int) -> int:
        return _contained(step, ctx, queries.lock_referral(referral_id), now)

    return claim_each(next_due, handle, now, limit)


def claim_each(
    next_due: Callable[[datetime], int | None],
    handle: Callable[[int], int],
    now: datetime,
    limit: int,
) -> int:
    """Claim what is due one row at a time, each claim and its handling in one transaction;
    at most `limit`, the rest on the next run. The sum of what `handle` returned."""
    done = 0
    for _ in range(limit):
        with transaction():
            claimed = next_due(now)
            if claimed is None:
                break
            done += handle(claimed)
    return done


def _contained(
    step: Step,
    ctx: Context,
    referral: ReferralRecord,
    now: datetime,
) -> int:
    """One referral's step in a savepoint: a bug in it must not hold up every referral behind.

    On failure the referral still leaves the queue of what is due (its reminder is skipped,
    or it expires without its letters); the log has the traceback and the reference.
    """
    try:
        with transaction():
            return step(ctx, referral, now)
    except Exception:
        log.exception("%s of %s failed; moving on", step.__name__.strip("_"), referral.ref)
    if step is _remind:
        queries.reminders_done(referral.id)
    elif referral.state == State.ASKING and now >= referral.expires_at:
        workflow.move(referral, State.EXPIRED, now, Channel.TICK, detail="letters failed")
    return 0


def _remind(ctx: Context, referral: ReferralRecord, now: datetime) -> int:
    if referral.remind_at is None or referral.remind_at > now:
        return 0  # claimed under a stale view; nothing is due
    # Whatever follows, this referral has had its reminder turn: it leaves the index.
    queries.reminders_done(referral.id)
    if referral.state != State.ASKING or now >= referral.expires_at:
        return 0
    waiting = [p for p in referral.parties if p.answer is None and p.reminded_at is None]
    # mark_reminded is the "never two" guard: only the transaction that sets it sends.
    waiting = [p for p in waiting if queries.mark_reminded(p.id, now)]
    if not waiting:
        return 0
    queries.enqueue([letters.consent_reminder(ctx, referral, p, now) for p in waiting], now)
    roles = ", ".join(p.role for p in waiting)
    queries.add_event(referral.id, now, "reminded", "service", Channel.TICK, roles)
    return len(waiting)


def _expire(ctx: Context, referral: ReferralRecord, now: datetime) -> int:
    if referral.state != State.ASKING or now < referral.expires_at:
        return 0  # an answer decided it first
    silent = [p for p in referral.parties if p.answer is None]
    agreed = [p for p in referral.parties if p.answer == Answer.YES]
    detail = "no answer from " + ", ".join(p.role for p in silent) if silent else ""
    workflow.move(referral, State.EXPIRED, now, Channel.TICK, detail=detail)
    # The referrer learns who did not answer; whoever said yes only that it will not go
    # ahead; whoever never answered hears nothing more.
    mails = [letters.referrer_expired(ctx, referral, now)]
    mails += [letters.expired_to_party(ctx, referral, p, now) for p in agreed]
    queries.enqueue(mails, now)
    return 1
