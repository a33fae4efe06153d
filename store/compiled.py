"""Reads whose SQL is built once per bound database, then run again with new values.

peewee builds a query's SQL from its expression tree at every call. For the few reads a
referral makes many times over (a referral, its parties, the question an ask key names)
building the SQL cost several times what the database did. A compiled read keeps the SQL
and where its values go, and runs it again with the next values.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import peewee

from store.models import UTCDateTimeField, database

# What a compiled read's values may be: see CompiledRead.
Value = int | str | datetime
_MOMENT = UTCDateTimeField()


class CompiledRead:
    """One select, built by `build` from stand-in values, each of which must appear exactly
    once among the query's parameters; `rows` runs it with real values in their place.

    Stand-ins are values the database takes as they are (ints, strings), or moments (aware
    datetimes), which are found and passed as the store's UTC columns hold them. Any other
    value a field converts would be converted in the built query and not be found again.
    """

    def __init__(self, build: Callable[..., peewee.ModelSelect], *stand_ins: Value) -> None:
        self._build = build
        self._stand_ins = stand_ins
        self._built: _Built | None = None
        self._shape: tuple[_Built, _Shape] | None = None

    def rows(self, *values: Value) -> Iterator[peewee.Model]:
        built, params = self._compiled(values)
        # ModelRaw itself: a model may have a field named "raw" (the outbox's has).
        return iter(peewee.ModelRaw(built.query.model, built.sql, params))

    def first(self, *values: Value) -> peewee.Model | None:
        return next(self.rows(*values), None)

    def records(self, *values: Value) -> list[Any]:
        """The rows as named tuples, by column name ("referral_id" for a foreign key), each
        value converted as its field converts it: what `rows` reads, without a model
        instance per row, whose making cost several times the database's own work."""
        built, params = self._compiled(values)
        cursor = database.execute_sql(built.sql, params)
        shape = self._shape
        if shape is None or shape[0] is not built:
            shape = self._shape = (built, _Shape.of(built.query.model, cursor.description))
        return shape[1].made(cursor.fetchall())

    def first_record(self, *values: Value) -> Any | None:
        found = self.records(*values)
        return found[0] if found else None

    def _compiled(self, values: tuple[Value, ...]) -> tuple[_Built, list[Any]]:
        built = self._built
        # Per bound database: SQLite and PostgreSQL differ in placeholders and locking.
        if built is None or built.database is not database.obj:
            query = self._build(*self._stand_ins)
            sql, params = query.sql()
            slots = []
            for stand_in in self._stand_ins:
                found = [i for i, p in enumerate(params) if p == _param(stand_in)]
                assert len(found) == 1, f"stand-in {stand_in!r} must appear once in {sql}"
                slots.append(found[0])
            built = _Built(database.obj, query, sql, tuple(params), tuple(slots))
            self._built = built
        params = list(built.params)
        for slot, value in zip(built.slots, values, strict=True):
            params[slot] = _param(value)
        return built, params


def _param(value: Value) -> Any:
    return _MOMENT.db_value(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class _Built:
    database: peewee.Database
    query: peewee.ModelSelect
    sql: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]


# Fields whose values the drivers already return as a record holds them. Exactly these
# classes: a subclass may convert (as the store's UTC datetimes do).
_AS_THEY_COME = frozenset(
    {
        peewee.AutoField,
        peewee.CharField,
        peewee.TextField,
        peewee.IntegerField,
        peewee.FloatField,
        peewee.ForeignKeyField,
    }
)


def _converter(field: peewee.Field) -> Callable[[Any], Any] | None:
    """How a value read from `field`'s column becomes the record's; None: as it comes."""
    return None if type(field) in _AS_THEY_COME else field.python_value


@dataclass(frozen=True)
class _Shape:
    """How a compiled read's columns become a record: its tuple type and, for each column,
    the converter of the field it holds (None: taken as it comes)."""

    record: type
    converters: tuple[Callable[[Any], Any] | None, ...]

    @staticmethod
    def of(model: type[peewee.Model], description: Sequence[Sequence[Any]]) -> _Shape:
        columns = [str(d[0]) for d in description]
        fields = [model._meta.combined.get(c) for c in columns]
        return _Shape(
            namedtuple(f"{model.__name__}Record", columns),  # type: ignore[misc]
            tuple(_converter(f) if f is not None else None for f in fields),
        )

    def made(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        pairs = tuple(enumerate(self.converters))
        return [
            self.record(*[row[i] if c is None else c(row[i]) for i, c in pairs]) for row in rows
        ]


class _PerCount:
    """SQL written once per bound database (SQLite and PostgreSQL differ in placeholders
    and quoting) and per count: of ids in an IN list, of rows in a VALUES list."""

    def __init__(self, write: Callable[[int], str]) -> None:
        self._write = write
        self._sql: dict[int, str] = {}
        self._database: peewee.Database | None = None

    def __call__(self, count: int) -> str:
        if self._database is not database.obj:
            self._sql, self._database = {}, database.obj
        sql = self._sql.get(count)
        if sql is None:
            sql = self._sql[count] = self._write(count)
        return sql


class CompiledUpdate:
    """One UPDATE whose SQL is written once per bound database: "UPDATE t SET a = ?, b = ?
    WHERE c = ? AND d = ?"; `run` converts each value the way its field does (a datetime to
    what the column holds) and executes it. `run_among` also limits it to rows by id."""

    def __init__(
        self,
        model: type[peewee.Model],
        fields: tuple[peewee.Field, ...],
        where: tuple[peewee.Field, ...] = (),
        where_null: tuple[peewee.Field, ...] = (),
    ) -> None:
        self._model = model
        self._fields = fields + where
        self._set = fields
        self._where = where
        self._statement = _PerCount(self._write)
        # Conditions without a value: "AND e IS NULL" (a guard that only the first sets e).
        self._where_null = where_null

    def run(self, *values: Any) -> int:
        """Execute with `values` for the fields, then the conditions; the rows it changed."""
        assert self._where, "an UPDATE of every row is not what a compiled one is for"
        params = [f.db_value(v) for f, v in zip(self._fields, values, strict=True)]
        return database.execute_sql(self._statement(0), params).rowcount

    def run_among(self, ids: Sequence[int], *values: Any) -> int:
        """`run` on the rows whose id is among `ids` (a statement per count of ids)."""
        if not ids:
            return 0
        params = [f.db_value(v) for f, v in zip(self._fields, values, strict=True)]
        return database.execute_sql(self._statement(len(ids)), params + list(ids)).rowcount

    def _write(self, among: int) -> str:
        mark = database.obj.param
        sets = ", ".join(f"{_quoted(f.column_name)} = {mark}" for f in self._set)
        conditions = [f"{_quoted(f.column_name)} = {mark}" for f in self._where] + [
            f"{_quoted(f.column_name)} IS NULL" for f in self._where_null
        ]
        if among:
            key = _quoted(self._model._meta.primary_key.column_name)
            conditions.append(f"{key} IN ({', '.join([mark] * among)})")
        table = _quoted(self._model._meta.table_name)
        return f"UPDATE {table} SET {sets} WHERE {' AND '.join(conditions)}"


class CompiledIn:
    """Chosen columns of the rows whose `key` is one of many values (ids, or keys the
    database takes as they are), in id order, as tuples of Python values: the SQL written
    once per bound database and count of values, each value converted only where its field
    converts it (a datetime, a boolean). A batch's reads through peewee's rows cost more
    than the queries; the tick reads a batch at a time."""

    CHUNK = 500  # ids per statement: well within SQLite's limit on parameters

    def __init__(self, fields: tuple[peewee.Field, ...], key: peewee.Field) -> None:
        self._fields = fields
        self._key = key
        self._convert = tuple(
            (n, convert) for n, f in enumerate(fields) if (convert := _converter(f)) is not None
        )
        self._statement = _PerCount(self._write)

    def rows(self, ids: Iterable[int | str]) -> list[tuple[Any, ...]]:
        ids = list(ids)
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), self.CHUNK):
            chunk = ids[start : start + self.CHUNK]
            cursor = database.execute_sql(self._statement(len(chunk)), chunk)
            if not self._convert:
                found += cursor.fetchall()
                continue
            for row in cursor.fetchall():
                values = list(row)
                for n, convert in self._convert:
                    values[n] = convert(values[n])
                found.append(tuple(values))
        return found

    def _write(self, count: int) -> str:
        model = self._key.model
        mark = database.obj.param
        columns = ", ".join(_quoted(f.column_name) for f in self._fields)
        key = _quoted(self._key.column_name)
        order = _quoted(model._meta.primary_key.column_name)
        return (
            f"SELECT {columns} FROM {_quoted(model._meta.table_name)} "
            f"WHERE {key} IN ({', '.join([mark] * count)}) ORDER BY {order}"
        )


def _quoted(name: str) -> str:
    """A table or column name as the bound database quotes it."""
    quotes = database.obj.quote
    return quotes[0] + name + quotes[1]


class CompiledInsert:
    """Whole rows into one table, the SQL written once per bound database and row count:
    every column but the id, each the row's value or the field's default, converted as the
    field converts it. peewee builds an INSERT from its expression tree at every call, which
    cost more than the database's own work for the outbox's and the parties' rows.

    `or_ignore`: a row that would break a unique key is skipped, as peewee's
    `on_conflict_ignore` means to (ON CONFLICT DO NOTHING on both stores)."""

    ROWS_PER_STATEMENT = 200  # well within SQLite's and PostgreSQL's limits on parameters

    def __init__(self, model: type[peewee.Model], *, or_ignore: bool = False) -> None:
        self._model = model
        self._or_ignore = or_ignore
        self._fields = tuple(
            f for f in model._meta.sorted_fields if not isinstance(f, peewee.AutoField)
        )
        self._names = frozenset(f.name for f in self._fields)
        self._record: type | None = None
        self._statement = _PerCount(self._write)

    def run(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self._check(row)
        for start in range(0, len(rows), self.ROWS_PER_STATEMENT):
            chunk = rows[start : start + self.ROWS_PER_STATEMENT]
            params = [f.db_value(_value(f, row)) for row in chunk for f in self._fields]
            database.execute_sql(self._statement(len(chunk)), params)

    def one(self, row: Mapping[str, Any]) -> int:
        """Insert one row; its new id."""
        assert not self._or_ignore, "a skipped row has no id"
        self._check(row)
        params = [f.db_value(_value(f, row)) for f in self._fields]
        if isinstance(database.obj, peewee.PostgresqlDatabase):
            key = _quoted(self._model._meta.primary_key.column_name)
            returning = f"{self._statement(1)} RETURNING {key}"
            return database.execute_sql(returning, params).fetchone()[0]
        return database.execute_sql(self._statement(1), params).lastrowid

    def one_as_read(self, row: Mapping[str, Any]) -> Any:
        """Insert one row and give it back as `CompiledRead.records` reads it (new id and
        defaults included) without reading it: each value converted by its field to the
        column and back. Not for a table with a blob, which a driver reads back as bytes."""
        assert not any(isinstance(f, peewee.BlobField) for f in self._fields)
        new_id = self.one(row)
        if self._record is None:
            key = self._model._meta.primary_key.column_name
            columns = [key] + [f.column_name for f in self._fields]
            self._record = namedtuple(f"{self._model.__name__}Record", columns)  # type: ignore[misc]
        values = [f.python_value(f.db_value(_value(f, row))) for f in self._fields]
        return self._record(new_id, *values)

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

    def _write(self, count: int) -> str:
        mark = database.obj.param
        columns = ", ".join(_quoted(f.column_name) for f in self._fields)
        row = "(" + ", ".join(mark for _ in self._fields) + ")"
        table = _quoted(self._model._meta.table_name)
        sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * count)}"
        if self._or_ignore:
            # Not SQLite's INSERT OR IGNORE, which would also skip a row that breaks a NOT
            # NULL or CHECK constraint without a word: only a taken key is skipped.
            sql += " ON CONFLICT DO NOTHING"
        return sql


def _value(field: peewee.Field, row: Mapping[str, Any]) -> Any:
    if field.name in row:
        return row[field.name]
    default = field.default
    return default() if callable(default) else default
