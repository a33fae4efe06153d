"""Opt-outs stay private: a request naming someone who said "never contact me again" gets
the answers a no without reason gets, so a referrer cannot test who opted out.

The referral is recorded and its receipt sent like any other; the person who said stop is
asked nothing. Later, at a moment drawn within the time people usually take to answer,
the tick ends it exactly as their own no would have: the referrer and the other party get
the same notices, and the report counts a no without reason.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from service.model import Answer, Channel, State
from service.referral import deadlines, erasure, workflow
from service.writing.context import Context
from store import queries
from store.records import ReferralRecord

log = logging.getLogger(__name__)

# Most people who decline do so within hours to a couple of days of the question.
EARLIEST = timedelta(hours=3)
LATEST = timedelta(hours=48)


def decline_due(now: datetime, expires_at: datetime, fraction: float) -> datetime:
    """Pure: when a withheld party's no is due, `fraction` (0 to 1, drawn at random by the
    caller) of the way from EARLIEST to LATEST; always well before the question expires,
    since an expiry would tell the referrer something a no does not."""
    due = now + EARLIEST + (LATEST - EARLIEST) * min(max(fraction, 0.0), 1.0)
    return min(due, now + (expires_at - now) * 0.9)


def decline_due_withheld(ctx: Context, now: datetime, limit: int = deadlines.PER_TICK) -> int:
    """End each referral whose withheld party's no is due; how many were declined."""

    settled: list[str] = []

    def handle(party_id: int) -> int:
        referral = queries.lock_referral(queries.referral_id_of_party(party_id))
        settled.extend(p.email for p in referral.parties if p.id == party_id)
        return _decline(ctx, referral, now)

    declined = deadlines.claim_each("withheld", deadlines.Each(handle), now, limit)
    # They had said "never contact me again": the request that named them needed their
    # address only until this no, so it goes again as their opt-out promised.
    for address in dict.fromkeys(settled):
        erasure.forget_when_done(ctx, address, now)
    return declined


def _decline(ctx: Context, referral: ReferralRecord, now: datetime) -> int:
    due = [p for p in referral.parties if p.withheld_until and p.withheld_until <= now]
    # withheld_done is the "never twice" guard: only the transaction that clears it acts.
    due = [p for p in due if queries.withheld_done(p.id)]
    if not due or referral.state != State.ASKING or due[0].answer is not None:
        return 0  # the other party's no (or an expiry) decided it first
    # The same path as their own no without a reason: the same records, the same mails.
    workflow.answer_locked(ctx, referral, due[0], Answer.NO, Channel.TICK, now)
    log.info("withheld party of %s declined on schedule", referral.ref)
    return 1
