"""GET /healthz: whether the service does its work, for a load balancer or a monitor."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from service.clock import Clock
from service.settings import HealthSettings
from store import queries
from store.db import RunDb

log = logging.getLogger(__name__)

# A check that waits longer than a monitor's own timeout tells nothing; an unreachable
# database answers "unreachable" well within it.
QUERY_SECONDS = 5.0
# The workers whose runs make a tick: the deadlines and the outbox.
TICKING = ("deadlines", "outbox")


@dataclass
class Runs:
    """When each worker last finished without an error; the service records, the check reads."""

    last: dict[str, datetime] = field(default_factory=dict)

    def succeeded(self, worker: str, at: datetime) -> None:
        self.last[worker] = at

    def last_tick(self) -> datetime | None:
        """The moment by which every ticking worker had run once more: the older of their
        last runs, so one that stalls shows even while the other keeps running."""
        if not all(w in self.last for w in TICKING):
            return None
        return min(self.last[w] for w in TICKING)


def report(
    now: datetime,
    oldest_pending: datetime | None,
    backlog: int | None,
    last_tick: datetime | None,
    limit: HealthSettings,
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of a health check; `backlog` None: no database."""
    reachable = backlog is not None
    waited = None if oldest_pending is None else max((now - oldest_pending).total_seconds(), 0)
    late = waited is not None and waited > limit.max_outbox_wait_minutes * 60
    if not reachable:
        status = "database unreachable"
    elif late:
        status = "outbox late"
    else:
        status = "ok"
    body = {
        "status": status,
        "database": reachable,
        "oldest_pending_outbox_seconds": None if waited is None else round(waited, 3),
        "intake_backlog": backlog,
        "last_tick": None if last_tick is None else last_tick.isoformat(),
    }
    return (200 if status == "ok" else 503), body


def _store_figures() -> tuple[datetime | None, int]:
    return queries.oldest_pending_mail(), queries.intake_backlog()


class Health:
    def __init__(self, clock: Clock, run_db: RunDb, runs: Runs, limit: HealthSettings) -> None:
        self.clock = clock
        self.run_db = run_db
        self.runs = runs
        self.limit = limit

    async def handle(self, request: web.Request) -> web.StreamResponse:
        oldest: datetime | None = None
        backlog: int | None = None
        try:
            async with asyncio.timeout(QUERY_SECONDS):
                oldest, backlog = await self.run_db(_store_figures)
        except Exception as exc:
            # The monitor learns "unreachable"; the operator's log says why, once per check.
            log.warning("health check: the database did not answer: %s", type(exc).__name__)
        status, body = report(self.clock.now(), oldest, backlog, self.runs.last_tick(), self.limit)
        return web.json_response(body, status=status)
