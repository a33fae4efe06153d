"""What is due at a moment: the work `tick` runs once and `serve` runs on its schedule."""

from __future__ import annotations

import asyncio
from dataclasses import astuple, dataclass
from datetime import datetime

from service.delivery.outbox import Report, Transport, deliver_due
from service.evaluation import digest, surveys
from service.intake import pipeline, refusals
from service.referral import deadlines, erasure, withheld
from service.writing.context import Context
from store.db import RunDb


@dataclass(frozen=True)
class Deadlines:
    """What the due dates in the store asked for at one moment, and got."""

    expired: int = 0  # referrals that expired
    reminded: int = 0  # reminders queued, one per party
    declined: int = 0  # referrals ended by a withheld party's scheduled no
    surveys_closed: int = 0  # surveys nobody answered in time
    surveyed: int = 0  # follow-up surveys queued, one per party and round
    digests: int = 0  # weekly digests queued
    let_go: int = 0  # mail bodies deleted and people anonymized, as [privacy] keeps them

    def __bool__(self) -> bool:
        return any(astuple(self))


async def run_deadlines(
    ctx: Context, now: datetime, run_db: RunDb = asyncio.to_thread
) -> Deadlines:
    """Every job with a due date, in the order that lets one run finish a chain of work; the
    one list `tick` and `serve` both run."""
    # Expiry before reminders: nobody is reminded of a question that has just closed.
    expired = await run_db(deadlines.expire_due, ctx, now)
    reminded = await run_db(deadlines.send_reminders, ctx, now)
    declined = await run_db(withheld.decline_due_withheld, ctx, now)
    # Closing before sending: a survey whose time is over settles the evaluation first.
    closed = await run_db(surveys.close_due, ctx, now)
    surveyed = await run_db(surveys.send_due, ctx, now)
    digests = await run_db(digest.send_due, ctx, now)
    # Last: what the steps before it ended is kept for the whole period from now on.
    swept = await run_db(erasure.let_go, ctx, now)
    return Deadlines(expired, reminded, declined, closed, surveyed, digests, swept.let_go)


async def settle_failures(ctx: Context, now: datetime, run_db: RunDb = asyncio.to_thread) -> int:
    """Tell whoever waited on a mail that failed for good (see `intake.refusals`); how many
    referrals and surveys that changed, each of which queued mail."""
    return await run_db(refusals.settle_failures, ctx, now)


@dataclass(frozen=True)
class TickReport:
    inbound: int
    outbox: Report
    due: Deadlines
    settled: int = 0  # failed mails that ended a referral, closed a survey or told the referrer

    def __str__(self) -> str:
        o, d = self.outbox, self.due
        # Only when there were any, so the line cron mails stays as it was on a quiet day.
        settled = f"; settled {self.settled} failure(s)" if self.settled else ""
        if d.let_go:
            settled += f"; let go of {d.let_go} stored mail(s) and person(s)"
        return (
            f"processed {self.inbound} inbound message(s); "
            f"reminded {d.reminded}, expired {d.expired}; "
            f"surveyed {d.surveyed}, surveys closed {d.surveys_closed}; "
            f"digests {d.digests}; "
            f"sent {o.sent}, retrying {o.retrying}, failed {o.failed}{settled}"
        )


async def run_due(
    ctx: Context, transport: Transport, now: datetime, run_db: RunDb = asyncio.to_thread
) -> TickReport:
    """Everything due at `now`, in the order that lets one tick finish a chain of work."""
    inbound = await run_db(pipeline.process_pending, ctx, now)
    due = await run_deadlines(ctx, now, run_db)
    # The outbox last, so one tick sends what the steps before it queued.
    outbox = await deliver_due(transport, now, run_db)
    settled = await settle_failures(ctx, now, run_db)
    if settled:
        # The notices settling queued go in this tick too; should they fail in turn, settling
        # them queues nothing more, so one more round ends it.
        outbox += await deliver_due(transport, now, run_db)
        await settle_failures(ctx, now, run_db)
    return TickReport(inbound, outbox, due, settled)
