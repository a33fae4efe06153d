"""Reads whose SQL is built once per bound database, then run again with new values.

peewee builds a query's SQL from its expression tree at every call. For the few reads a
referral makes many times over (a referral, its parties, the question an ask key names)
building the SQL cost several times what the database did. A compiled read keeps the SQL
and where its values go, and runs it again with the next values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
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


class CompiledUpdate:
    """One UPDATE whose SQL is written once per bound database: "UPDATE t SET a = ?, b = ?
    WHERE c = ? AND d = ?"; `run` converts each value the way its field does (a datetime to
    what the column holds) and executes it."""

    def __init__(
        self,
        model: type[peewee.Model],
        fields: tuple[peewee.Field, ...],
        where: tuple[peewee.Field, ...],
    ) -> None:
        self._model = model
        self._fields = fields + where
        self._set = fields
        self._where = where
        self._sql: tuple[peewee.Database, str] | None = None

    def run(self, *values: Any) -> int:
        """Execute with `values` for the fields, then the conditions; the rows it changed."""
        params = [f.db_value(v) for f, v in zip(self._fields, values, strict=True)]
        return database.execute_sql(self._statement(), params).rowcount

    def _statement(self) -> str:
        built = self._sql
        if built is None or built[0] is not database.obj:
            mark = database.obj.param
            sets = ", ".join(f"{_quoted(f.column_name)} = {mark}" for f in self._set)
            cond = " AND ".join(f"{_quoted(f.column_name)} = {mark}" for f in self._where)
            sql = f"UPDATE {_quoted(self._model._meta.table_name)} SET {sets} WHERE {cond}"
            built = self._sql = (database.obj, sql)
        return built[1]


def _quoted(name: str) -> str:
    """A table or column name as the bound database quotes it."""
    quotes = database.obj.quote
    return quotes[0] + name + quotes[1]


class CompiledInsert:
    """Whole rows into one table, the SQL written once per bound database and row count:
    every column but the id, each the row's value or the field's default, converted as the
    field converts it. peewee builds an INSERT from its expression tree at every call, which
    cost more than the database's own work for the outbox's and the parties' rows."""

    ROWS_PER_STATEMENT = 200  # well within SQLite's and PostgreSQL's limits on parameters

    def __init__(self, model: type[peewee.Model]) -> None:
        self._model = model
        self._fields = tuple(
            f for f in model._meta.sorted_fields if not isinstance(f, peewee.AutoField)
        )
        self._names = frozenset(f.name for f in self._fields)
        self._sql: dict[int, str] = {}
        self._database: peewee.Database | None = None

    def run(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self._check(row)
        for start in range(0, len(rows), self.ROWS_PER_STATEMENT):
            chunk = rows[start : start + self.ROWS_PER_STATEMENT]
            params = [f.db_value(_value(f, row)) for row in chunk for f in self._fields]
            database.execute_sql(self._statement(len(chunk)), params)

    def one(self, row: Mapping[str, Any]) -> int:
        """Insert one row; its new id."""
        self._check(row)
        params = [f.db_value(_value(f, row)) for f in self._fields]
        if isinstance(database.obj, peewee.PostgresqlDatabase):
            key = _quoted(self._model._meta.primary_key.column_name)
            returning = f"{self._statement(1)} RETURNING {key}"
            return database.execute_sql(returning, params).fetchone()[0]
        return database.execute_sql(self._statement(1), params).lastrowid

    def new_ids(self, rows: Sequence[Mapping[str, Any]], key: peewee.Field) -> dict[Any, int]:
        """Insert each row whose `key`, a unique column, the table does not hold yet, and
        leave out the others (ON CONFLICT DO NOTHING); the new rows' ids by key. A statement
        per ROWS_PER_STATEMENT rows, where inserting one by one took a statement each, and
        a read before them to find the keys already there. RETURNING: SQLite 3.35 or later."""
        for row in rows:
            self._check(row)
        primary = _quoted(self._model._meta.primary_key.column_name)
        unique = _quoted(key.column_name)
        ids: dict[Any, int] = {}
        for start in range(0, len(rows), self.ROWS_PER_STATEMENT):
            chunk = rows[start : start + self.ROWS_PER_STATEMENT]
            params = [f.db_value(_value(f, row)) for row in chunk for f in self._fields]
            sql = (
                f"{self._statement(len(chunk))} ON CONFLICT ({unique}) DO NOTHING"
                f" RETURNING {unique}, {primary}"
            )
            ids.update(database.execute_sql(sql, params).fetchall())
        return ids

    def _check(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - self._names
        assert not unknown, f"{self._model.__name__} has no field {sorted(unknown)}"

    def _statement(self, count: int) -> str:
        if self._database is not database.obj:
            self._sql, self._database = {}, database.obj
        sql = self._sql.get(count)
        if sql is None:
            mark = database.obj.param
            columns = ", ".join(_quoted(f.column_name) for f in self._fields)
            row = "(" + ", ".join(mark for _ in self._fields) + ")"
            table = _quoted(self._model._meta.table_name)
            sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row] * count)
            self._sql[count] = sql
        return sql


def _value(field: peewee.Field, row: Mapping[str, Any]) -> Any:
    if field.name in row:
        return row[field.name]
    default = field.default
    return default() if callable(default) else default
