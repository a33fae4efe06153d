"""The only place that reads the time: timezone-aware UTC, injectable for tick --at and tests."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that says what it is told; tests move it forward by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = as_utc(at)

    def now(self) -> datetime:
        return self.at


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The time zone an IANA name ("Europe/Berlin") names, or None when it names none."""
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a moment in time needs a time zone (e.g. +00:00)")
    return moment.astimezone(UTC)


def stored_utc(moment: datetime) -> datetime:
    """A moment from a record as aware UTC; a naive one can only have come from a UTC store
    column (records are aware UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_moment(text: str) -> datetime:
    """An ISO-8601 moment with an offset, as `tick --at` takes it."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 moment: {text!r}") from None
    return as_utc(moment)


def parse_day_or_moment(text: str, timezone: str) -> datetime:
    """An ISO-8601 moment with its offset, or a day (2026-01-01), which starts at midnight in
    `timezone`: `report --since` takes either."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        try:
            return parse_moment(text)
        except ValueError:
            # Name both accepted forms: a word like "yesterday" must not look half-understood.
            raise ValueError(
                f"{text!r} is neither a day (2026-01-01) nor an ISO-8601 moment with its "
                "offset (2026-01-01T09:00+01:00)"
            ) from None
    return as_utc(datetime(day.year, day.month, day.day, tzinfo=zone(timezone) or UTC))
