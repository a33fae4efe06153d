"""Mail the relay refused for good, or the outbox gave up on: settled as the bounce it is.

A relay's 5xx is the same answer a bounce gives, only sooner, so it takes the bounce's path:
a consent question or reminder that cannot arrive ends the referral (unless its party
answered already, so was reached), a survey that cannot
arrive closes, an introduction that did not reach someone is told to the referrer. Notices
to the referrer or the other party end with the outbox's record: a failed notice about a
failure must not send another notice. Each failure is claimed, marked settled and handled
in one transaction, so with several instances it is settled exactly once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from service.evaluation import surveys
from service.model import INTRODUCTION, QUESTION_PURPOSES, Channel
from service.reading.relay_replies import reply_about, without_addresses
from service.referral import deadlines, workflow
from service.writing import letters
from service.writing.context import Context
from store import queries
from store.db import transaction
from store.records import FailedMail

log = logging.getLogger(__name__)


def settle_failures(ctx: Context, now: datetime, limit: int = deadlines.PER_TICK) -> int:
    """Settle each failed mail not yet settled; how many changed a referral or a survey."""

    def handle(outbox_id: int) -> int:
        failed = queries.settle_failure(outbox_id, now)
        if failed is None:
            return 0  # settled meanwhile by another instance
        try:
            with transaction():  # a savepoint: one bad failure must not stop the rest
                return int(_settle(ctx, failed, now))
        except Exception:
            # Settled all the same: a failure that cannot be settled is not tried forever.
            log.exception("settling failed mail %s (%s) failed", failed.id, failed.purpose)
            return 0

    return deadlines.claim_each("failures", deadlines.Each(handle), now, limit)


def _settle(ctx: Context, failed: FailedMail, now: datetime) -> bool:
    if failed.referral_id is None:
        return False  # nothing waits on it
    address = failed.recipients[0] if failed.recipients else ""
    status = reply_about(failed.error, address)
    if failed.survey_id is not None:
        return surveys.bounced(ctx, failed.survey_id, without_addresses(status), now)
    # Before the question's case: an introduction's envelope names its party too.
    if failed.purpose == INTRODUCTION:
        return not_introduced(ctx, failed.referral_id, address, status, Channel.SMTP, now)
    # Only the question (or its reminder) tells whether a party can be reached; a note to
    # them ("how to answer", "your no stands") that fails ends with its record.
    if failed.party_id is not None and failed.purpose in QUESTION_PURPOSES:
        return workflow.undeliverable(
            ctx, failed.referral_id, failed.party_id, status, Channel.SMTP, now
        )
    return False


def not_introduced(
    ctx: Context, referral_id: int, address: str, status: str, channel: Channel, now: datetime
) -> bool:
    """An introduction did not reach one party: the referrer learns whom, and may tell them
    another way. The referral stays introduced: the other party may well have it."""
    with transaction():
        referral = queries.lock_referral(referral_id)
        party = next((p for p in referral.parties if p.email == address.lower()), None)
        if party is None:
            return False
        # The history keeps no address; the referrer's letter may name the one that failed.
        queries.add_event(
            referral.id, now, "not introduced", party.role, channel, without_addresses(status)
        )
        mail = letters.referrer_not_introduced(ctx, referral, party, status, now)
        queries.enqueue([mail], now)
    return True
