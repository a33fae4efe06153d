"""One deferred database, bound at start from a URL: SQLite by default, PostgreSQL to share work."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import peewee
from playhouse import db_url, migrate

from store.models import ALL_MODELS, database
from store.turns import TurnTakingSqliteDatabase

# How async code runs a blocking store call (a function and its arguments) off its event
# loop: asyncio.to_thread, or serve's small pool of store threads.
RunDb = Callable[..., Awaitable[Any]]

# Each pragma earns its place: WAL lets readers run beside the writer, FULL makes a commit
# survive power loss (we answer 250 on it), the busy timeout lets writers queue instead of
# failing, and foreign keys are off by default in SQLite.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "cache_size": -16_000,
}

PAGE_SIZE = 4096

# Serializes schema creation between instances that start together on one PostgreSQL.
_SCHEMA_LOCK_KEY = 0x0CA2E1


def connect(url: str, quota_mb: int = 0) -> peewee.Database:
    """A database object for the URL; nothing is opened until first use.

    `quota_mb` caps a SQLite store's size, like a disk quota: SQLite's max_page_count, which
    holds for one connection only, so it is set on every connection this process opens.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else parsed.path
        if not path:
            raise ValueError("a sqlite URL needs a file: sqlite:///data/care-intro.db")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # IMMEDIATE: take the write lock at BEGIN, so two writers queue on busy_timeout
        # instead of one failing half-way when it upgrades a read lock.
        pragmas = dict(SQLITE_PRAGMAS)
        if quota_mb:
            # page_size only takes effect on a new store; it is SQLite's default anyway, and
            # naming it here makes the page count below mean megabytes.
            pragmas = {"page_size": PAGE_SIZE, **pragmas}
            pragmas["max_page_count"] = quota_mb * 1024 * 1024 // PAGE_SIZE
        return TurnTakingSqliteDatabase(
            path,
            pragmas=pragmas,
            lock_type="IMMEDIATE",
            turn_timeout=SQLITE_PRAGMAS["busy_timeout"] / 1000,
        )
    if parsed.scheme in ("postgresql", "postgres"):
        kwargs = db_url.parse(url, unquote_password=True, unquote_user=True)
        return peewee.PostgresqlDatabase(**kwargs)
    raise ValueError(f"unsupported database URL scheme: {parsed.scheme!r}")


def bind(url: str, quota_mb: int = 0) -> peewee.Database:
    """Point the deferred database at URL and make sure every table exists."""
    close()
    real = connect(url, quota_mb)
    database.initialize(real)
    ensure_schema()
    return real


def ensure_schema() -> None:
    """Create what is missing: tables, and columns a newer release added to a table."""
    with database.atomic():
        if is_postgresql():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        models = peewee.sort_models(ALL_MODELS)
        for model in models:
            model._schema.create_table(safe=True)
        # Columns before indexes: an index of a newer release may be on a new column.
        _add_missing_columns(models)
        for model in models:
            model._schema.create_indexes(safe=True)


def _add_missing_columns(models: list[type[peewee.Model]]) -> None:
    """Upgrade a store written by an earlier release in place; nothing stored is touched.

    Every column we add has a default or allows NULL, so adding one is always safe; anything
    else (a rename, a new constraint) would need a migration of its own.
    """
    migrator = (
        migrate.PostgresqlMigrator(database.obj)
        if is_postgresql()
        else migrate.SqliteMigrator(database.obj)
    )
    for model in models:
        table = model._meta.table_name
        present = {c.name for c in database.get_columns(table)}
        missing = [f for f in model._meta.sorted_fields if f.column_name not in present]
        if missing:
            migrate.migrate(*[migrator.add_column(table, f.column_name, f) for f in missing])


def close() -> None:
    if database.obj is not None and not database.is_closed():
        database.close()


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error is the store's state (full, locked, gone), not the data's: the same
    work can succeed later, so it must be tried again, not given up on."""
    return isinstance(exc, peewee.OperationalError | peewee.InterfaceError)


def is_postgresql() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


@contextlib.contextmanager
def transaction() -> Iterator[None]:
    """Every write goes through here; nested use becomes a savepoint."""
    with database.atomic():
        yield
