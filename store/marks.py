"""How a stored mail's retention mark may move: only forward, from unseen (NULL) to waiting
with its referral, to going once sent, to gone, which is final.

Retention and erasure decide a mark from rows read earlier in their transaction. With two
instances on one PostgreSQL, another may have moved such a row on since: an update that
writes a mark only where it may move there keeps what that instance decided, because an
update waiting on a row locked by another checks its condition again on the row as the other
committed it. Without it, a mail let go of, or marked to go once sent, could be put back to
wait for a referral that no longer comes for it, and keep its body for good.
"""

from __future__ import annotations

import peewee

from store.models import Retention


def may_become(column: peewee.Field, mark: Retention) -> peewee.Node:
    """Rows whose mark in `column` may move to `mark`."""
    if mark == Retention.WITH_REFERRAL:
        return column.is_null()
    if mark == Retention.ONCE_SENT:
        return column.is_null() | (column == Retention.WITH_REFERRAL)
    return column.is_null() | (column != Retention.GONE)
