"""Reads whose SQL is built once per bound database, then run again with new values.

peewee builds a query's SQL from its expression tree at every call. For the few reads a
referral makes many times over (a referral, its parties, the question an ask key names)
building the SQL cost several times what the database did. A compiled read keeps the SQL
and where its values go, and runs it again with the next values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import peewee

from store.models import database


class CompiledRead:
    """One select, built by `build` from stand-in values, each of which must appear exactly
    once among the query's parameters; `rows` runs it with real values in their place.

    Only values the database takes as they are (ints, strings) may be stand-ins: a value
    a field converts (a datetime) would be stored converted and not be found again.
    """

    def __init__(self, build: Callable[..., peewee.ModelSelect], *stand_ins: int | str) -> None:
        self._build = build
        self._stand_ins = stand_ins
        self._built: _Built | None = None

    def rows(self, *values: int | str) -> Iterator[peewee.Model]:
        query, sql, params = self._compiled(values)
        # ModelRaw itself: a model may have a field named "raw" (the outbox's has).
        return iter(peewee.ModelRaw(query.model, sql, params))

    def first(self, *values: int | str) -> peewee.Model | None:
        return next(self.rows(*values), None)

    def _compiled(self, values: tuple[int | str, ...]) -> tuple[peewee.ModelSelect, str, list[Any]]:
        built = self._built
        # Per bound database: SQLite and PostgreSQL differ in placeholders and locking.
        if built is None or built.database is not database.obj:
            query = self._build(*self._stand_ins)
            sql, params = query.sql()
            slots = []
            for stand_in in self._stand_ins:
                found = [i for i, p in enumerate(params) if p == stand_in]
                assert len(found) == 1, f"stand-in {stand_in!r} must appear once in {sql}"
                slots.append(found[0])
            built = _Built(database.obj, query, sql, tuple(params), tuple(slots))
            self._built = built
        params = list(built.params)
        for slot, value in zip(built.slots, values, strict=True):
            params[slot] = value
        return built.query, built.sql, params


@dataclass(frozen=True)
class _Built:
    database: peewee.Database
    query: peewee.ModelSelect
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]
