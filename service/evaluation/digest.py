"""The weekly digest: to each referrer with news, what happened while they were away.

The scheduler may run this every minute: before any work it asks whether this week's slot
is already done, which is one row read. A slot's digests go out once per referrer, also
with several instances (the claim is a conditional update of the referrer's row).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from service import ids
from service.evaluation import letters
from service.reading.addresses import is_allowed
from service.settings import WEEKDAYS, Settings
from service.writing.context import Context
from store import queries, referrers
from store.db import transaction

WEEK = timedelta(days=7)
_DONE = "digest_slot"


def latest_slot(now: datetime, weekday: str, hour: int, timezone: str) -> datetime:
    """Pure: the last moment at or before `now` that is `weekday` at `hour` o'clock in
    `timezone`, in UTC. Wall-clock time, so a digest keeps its hour across daylight saving."""
    zone = zoneinfo.ZoneInfo(timezone)
    local = now.astimezone(zone)
    days_back = (local.weekday() - WEEKDAYS.index(weekday.lower())) % 7
    day = (local - timedelta(days=days_back)).date()
    slot = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    if slot > local:
        day = day - WEEK
        slot = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    return slot.astimezone(UTC)


def send_due(ctx: Context, now: datetime, limit: int = 500) -> int:
    """Send this week's digests not yet sent; how many were queued."""
    settings = ctx.settings
    if not settings.digest.enabled:
        return 0
    slot = _slot(settings, now)
    if queries.mark(_DONE) == slot.isoformat():
        return 0
    since = slot - WEEK
    sent = 0
    finished = True
    active = queries.active_referrers(since, slot)
    stored = referrers.allowed_among(active)
    for email in active:
        if sent >= limit:
            finished = False  # the rest on the next run; those done are skipped by the claim
            break
        if email not in stored and not is_allowed(email, settings.security.allowed_referrers):
            continue  # no longer one of ours: no news either
        with transaction():
            referrer = queries.referrer(email, ids.ask_key, now)
            if not queries.claim_digest(referrer.id, slot):
                continue
            week = queries.events_of_referrer(email, since, slot)
            language = week[-1][0].language if week else settings.service.default_language
            name = queries.referrer_name(email)
            mail = letters.digest(ctx, referrer, name, language, week, since, slot, now)
            queries.enqueue([mail], now)
            sent += 1
    if finished:
        queries.set_mark(_DONE, slot.isoformat())
    return sent


def _slot(settings: Settings, now: datetime) -> datetime:
    digest = settings.digest
    return latest_slot(now, digest.weekday, digest.hour, settings.service.timezone)
