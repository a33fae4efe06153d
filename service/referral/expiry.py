"""When a question is past its deadline, and what its expiry writes: one rule for the tick
and for an answer that comes too late, so that both end a referral the same way."""

from __future__ import annotations

from datetime import datetime

from service.model import Answer, State
from service.writing import letters
from service.writing.context import Context
from store.records import OutgoingMail, ReferralRecord


def overdue(referral: ReferralRecord, now: datetime) -> bool:
    """Pure: whether the referral is still asking at or after its deadline; from that moment
    no answer counts, whether or not a tick has expired it yet."""
    return referral.state == State.ASKING and now >= referral.expires_at


def letters_of(ctx: Context, referral: ReferralRecord, now: datetime) -> list[OutgoingMail]:
    """Pure: the referrer learns who did not answer; whoever said yes only that it will not
    go ahead; whoever never answered hears nothing more."""
    if not overdue(referral, now):
        return []
    agreed = [p for p in referral.parties if p.answer == Answer.YES]
    mails = [letters.referrer_expired(ctx, referral, now)]
    return mails + [letters.expired_to_party(ctx, referral, p, now) for p in agreed]


def detail(referral: ReferralRecord) -> str:
    """The expiry event's detail: who kept the referral waiting."""
    silent = [p for p in referral.parties if p.answer is None]
    return "no answer from " + ", ".join(p.role for p in silent) if silent else ""
