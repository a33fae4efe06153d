"""Tables, columns and indexes a release needs, created where missing, beside running instances.

An instance that starts while others work on the same PostgreSQL must not stall or deadlock
them. Asking `CREATE INDEX IF NOT EXISTS` takes a table lock even when the index is there,
and one transaction collecting such locks table by table deadlocked against intake's
updates. So the catalog is read first and a store that is up to date takes no table lock
at all; what is missing is created one step per transaction, each waiting a short while
for its one lock and trying again later rather than queueing every writer behind it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator

import peewee
from playhouse import migrate

from service.model import OutboxState
from store import retention
from store.models import ALL_MODELS, InboundMessage, OutboxMail, Referral, database
from store.postgresql import DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, sqlstate

# Serializes schema changes between instances that start together on one PostgreSQL.
_SCHEMA_LOCK_KEY = 0x0CA2E1
# How long one step waits for its table lock, and how often it asks again: together about
# a minute, far longer than intake or the outbox hold a lock, short enough to report.
LOCK_TIMEOUT = "2s"
ATTEMPTS = 20
PAUSE_SECONDS = 1.0

Step = Callable[[], None]


class SchemaBusy(Exception):
    """A schema step could not get its table lock in time; starting later will do."""


def ensure() -> None:
    """Create what is missing: tables, columns a newer release added, then indexes; drop
    the indexes this release retired."""
    if not _missing_steps():
        return
    with _schema_lock():
        # Again under the lock: an instance that started beside us may have done it all.
        for step in _missing_steps():
            for piece in step.steps() if isinstance(step, _Pieces) else (step,):
                _run(piece)


def _missing_steps() -> list[Step | _Pieces]:
    models = peewee.sort_models(ALL_MODELS)
    columns, indexes = _catalog()
    steps: list[Step | _Pieces] = []
    for model in models:
        if model._meta.table_name not in columns:
            steps.append(_creating_table(model))
    # Columns before indexes: an index of a newer release may be on a new column.
    for model in models:
        present = columns.get(model._meta.table_name)
        if present is not None:
            missing = [f for f in model._meta.sorted_fields if f.column_name not in present]
            if missing:
                steps.append(_adding_columns(model._meta.table_name, missing))
    for model in models:
        for index in model._meta.fields_to_index():
            if index._name not in indexes:
                if index._name in _BEFORE_INDEXING:
                    steps.append(_Pieces(*_BEFORE_INDEXING[index._name]))
                steps.append(_creating_index(model, index))
    # After the indexes that replace them, so no lookup goes without one in between.
    steps.extend(_dropping_index(name) for name in sorted(RETIRED_INDEXES) if name in indexes)
    return steps


def _catalog() -> tuple[dict[str, set[str]], set[str]]:
    """The columns of every table there is, and the names of every index."""
    if not _is_postgresql():
        tables = database.get_tables()
        columns = {t: {c.name for c in database.get_columns(t)} for t in tables}
        return columns, {i.name for t in tables for i in database.get_indexes(t)}
    # pg_catalog only: information_schema.columns and pg_get_indexdef, which peewee's
    # get_columns and get_indexes use, take a lock on the table and wait behind any DDL.
    columns = {}
    rows = database.execute_sql(
        "SELECT c.relname, a.attname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_catalog.pg_attribute a"
        "   ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    )
    for table, column in rows.fetchall():
        columns.setdefault(table, set()).add(column)
    rows = database.execute_sql(
        "SELECT c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('i', 'I')"
    )
    return columns, {name for (name,) in rows.fetchall()}


def _creating_table(model: type[peewee.Model]) -> Step:
    return lambda: model._schema.create_table(safe=True)


def _adding_columns(table: str, fields: list[peewee.Field]) -> Step:
    """Upgrade a store written by an earlier release in place; nothing stored is touched.

    Every column we add has a default or allows NULL, so adding one is always safe; anything
    else (a rename, a new constraint) would need a migration of its own.
    """

    def step() -> None:
        migrator = (
            migrate.PostgresqlMigrator(database.obj)
            if _is_postgresql()
            else migrate.SqliteMigrator(database.obj)
        )
        migrate.migrate(*[migrator.add_column(table, f.column_name, f) for f in fields])
        for field in fields:
            then = _AFTER_ADDING.get((table, field.column_name))
            if then is not None:
                then()

    return step


def _settle_earlier_failures() -> None:
    """Mail that failed before a release settled failures stays as it was: settling it now
    would tell referrers, out of the blue, about mail that failed long ago."""
    OutboxMail.update(settled_at=OutboxMail.due_at).where(
        OutboxMail.state == OutboxState.FAILED
    ).execute()


# What a new column needs done to the rows it finds, in the step that adds it.
_AFTER_ADDING: dict[tuple[str, str], Step] = {
    ("outbox_mail", "settled_at"): _settle_earlier_failures,
}


# What the rows found need before an index that trusts a new column is made, with the
# table it runs over. It runs in pieces, a range of ids each, each piece its own short
# transaction beside running instances, and only then is the index made: a start cut off
# midway finds the index missing and goes over the rows again (each piece may run twice).
_BEFORE_INDEXING: dict[str, tuple[type[peewee.Model], Callable[[int, int], None]]] = {
    # Retention's marks: what an earlier release already let go of needs no more looking at.
    "inbound_message_body_unseen": (InboundMessage, retention.mark_earlier_inbound),
    "outbox_mail_body_unseen": (OutboxMail, retention.mark_earlier_outbox),
    "referral_mail_kept": (Referral, retention.mark_earlier_referrals_mail),
    "referral_people_kept": (Referral, retention.mark_earlier_referrals_people),
}
# Rows per piece: each piece a few tens of milliseconds.
PIECE_ROWS = 5_000


class _Pieces:
    """A step over every row of a table, one range of ids per transaction."""

    def __init__(self, model: type[peewee.Model], piece: Callable[[int, int], None]) -> None:
        self.model, self.piece = model, piece

    def steps(self) -> Iterator[Step]:
        last = self.model.select(peewee.fn.MAX(self.model.id)).scalar() or 0
        for after in range(0, last, PIECE_ROWS):
            yield functools.partial(self.piece, after, after + PIECE_ROWS)


def _creating_index(model: type[peewee.Model], index: peewee.Index) -> Step:
    return lambda: database.execute(model._schema._create_index(index, safe=True))


# Indexes an earlier release made that this one must not have, with why. Only a name no
# current index uses can be retired: the catalog knows names, not what an index covers.
RETIRED_INDEXES: dict[str, str] = {
    # Unique: one Message-ID, one row. An introduction is one mail with an envelope per
    # party, each its own row; (message_id, recipients) is unique instead.
    "outbox_mail_message_id": "one mail, several envelopes",
}


def _dropping_index(name: str) -> Step:
    return lambda: database.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def _run(step: Step) -> None:
    for attempt in range(ATTEMPTS):
        try:
            with database.atomic():
                if _is_postgresql():
                    database.execute_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                step()
            return
        except peewee.OperationalError as exc:
            if sqlstate(exc) not in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
                raise
            if attempt + 1 == ATTEMPTS:
                raise SchemaBusy(
                    "the database schema could not be updated: its tables stayed busy"
                ) from exc
            time.sleep(PAUSE_SECONDS)


@contextlib.contextmanager
def _schema_lock() -> Iterator[None]:
    # A session lock, not a transaction's: each step commits on its own and lets go of its
    # table before the next, yet no other instance changes the schema in between.
    if not _is_postgresql():
        yield
        return
    database.execute_sql("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK_KEY,))
    try:
        yield
    finally:
        # A connection lost on the way took its session's lock with it.
        with contextlib.suppress(peewee.OperationalError, peewee.InterfaceError):
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))


def _is_postgresql() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)
