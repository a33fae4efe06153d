"""Who may refer, as kept in the store beside the configuration's list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import peewee

from store.db import database
from store.models import AllowedReferrer


@dataclass(frozen=True)
class Listed:
    email: str
    name: str
    added_at: datetime


def add(email: str, name: str, now: datetime) -> bool:
    """Allow `email` (normalized by the caller); False if it already was. A name given again
    replaces the one kept, so a second add can correct a typo in it."""
    try:
        with database.atomic():
            AllowedReferrer.insert(email=email, name=name, added_at=now).execute()
    except peewee.IntegrityError:
        if name:
            AllowedReferrer.update(name=name).where(AllowedReferrer.email == email).execute()
        return False
    return True


def remove(email: str) -> bool:
    """No longer allow `email`; False if the store did not hold it."""
    return AllowedReferrer.delete().where(AllowedReferrer.email == email).execute() > 0


def listed() -> list[Listed]:
    rows = AllowedReferrer.select().order_by(AllowedReferrer.email)
    return [Listed(r.email, r.name, r.added_at) for r in rows]


def allowed_among(emails: Iterable[str]) -> set[str]:
    """Those of `emails` (normalized) the store allows: one indexed look-up, asked per message."""
    wanted = sorted({e for e in emails if e})
    if not wanted:
        return set()
    found = AllowedReferrer.select(AllowedReferrer.email).where(AllowedReferrer.email.in_(wanted))
    return {row.email for row in found}
