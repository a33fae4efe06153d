"""What is due at a moment: the work `tick` runs once and `serve` runs on its schedule."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from service import intake
from service.context import Context
from service.outbox import Report, RunDb, Transport, deliver_due


@dataclass(frozen=True)
class TickReport:
    inbound: int
    outbox: Report

    def __str__(self) -> str:
        o = self.outbox
        return (
            f"processed {self.inbound} inbound message(s); "
            f"sent {o.sent}, retrying {o.retrying}, failed {o.failed}"
        )


async def run_due(
    ctx: Context, transport: Transport, now: datetime, run_db: RunDb = asyncio.to_thread
) -> TickReport:
    """Everything due at `now`, in the order that lets one tick finish a chain of work."""
    inbound = await run_db(intake.process_pending, ctx, now)
    outbox = await deliver_due(transport, now, run_db)
    return TickReport(inbound, outbox)
