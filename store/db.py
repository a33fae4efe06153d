"""One deferred database, bound at start from a URL: SQLite by default, PostgreSQL to share work."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlparse

import peewee
from playhouse import db_url

from store import schema, suppressions
from store.models import database
from store.postgresql import (
    DatabaseUnavailable,
    ReconnectingPostgresqlDatabase,
    first_line,
    sqlstate,
)
from store.turns import TurnTakingSqliteDatabase

# How async code runs a blocking store call (a function and its arguments) off its event
# loop: asyncio.to_thread, or serve's small pool of store threads.
RunDb = Callable[..., Awaitable[Any]]

# Each pragma earns its place: WAL lets readers run beside the writer, FULL makes a commit
# survive power loss (we answer 250 on it), the busy timeout lets writers queue instead of
# failing, and foreign keys are off by default in SQLite. secure_delete zeroes what a write
# frees, so an erased person's bytes are not left in free pages of the file.
SQLITE_PRAGMAS = {
    "secure_delete": 1,
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "cache_size": -16_000,
}

# Without it a server that drops packets instead of refusing them holds a start forever.
CONNECT_TIMEOUT_SECONDS = 10

P = ParamSpec("P")
T = TypeVar("T")

PAGE_SIZE = 4096


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
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        return ReconnectingPostgresqlDatabase(**kwargs)
    raise ValueError(f"unsupported database URL scheme: {parsed.scheme!r}")


def bind(url: str, quota_mb: int = 0) -> peewee.Database:
    """Point the deferred database at URL and make sure every table exists.

    Raises DatabaseUnavailable, with one line saying why, when that cannot be done now.
    """
    close()
    real = connect(url, quota_mb)
    database.initialize(real)
    try:
        database.connect()
    except peewee.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot open the database: {first_line(exc)}") from exc
    try:
        schema.ensure()
    except schema.SchemaBusy as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    # A full or busy store: the key is read (or made) when first needed instead.
    with contextlib.suppress(peewee.OperationalError):
        suppressions.ensure_key()
    return real


def once_more_if_connection_lost(fn: Callable[P, T]) -> Callable[P, T]:
    """For a write that may safely run twice: when the connection was lost under it, run it
    again on a new one, rather than leave its work to a lease or a retry minutes later."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (peewee.OperationalError, peewee.InterfaceError):
            lost = isinstance(database.obj, ReconnectingPostgresqlDatabase) and (
                database.obj.connection_lost()
            )
            if not lost or database.in_transaction():
                raise
            return fn(*args, **kwargs)

    return run


# SQLite's SQLITE_FULL (a full disk, or the quota's max_page_count) and PostgreSQL's
# disk_full: the message is not lost, it waits in the sender's queue until there is room.
_FULL_TEXT = "database or disk is full"
_DISK_FULL = "53100"


def is_full(exc: BaseException) -> bool:
    """Whether a store call failed because the store has no room left."""
    seen: BaseException | None = exc
    for _ in range(10):  # the chain a driver, peewee and a rollback make is a few links long
        if seen is None:
            return False
        if _FULL_TEXT in str(seen) or sqlstate(seen) == _DISK_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def close() -> None:
    if database.obj is not None and not database.is_closed():
        database.close()


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error is the store's state (full, locked, gone), not the data's: the same
    work can succeed later, so it must be tried again, not given up on."""
    return isinstance(exc, peewee.OperationalError | peewee.InterfaceError)


def is_postgresql() -> bool:
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def commits_at_risk() -> str | None:
    """What lets a commit this store reported be lost if its server crashes, or None.

    We answer 250 once a message's commit returns. SQLite runs with our pragmas
    (synchronous=full); PostgreSQL with `fsync` or `synchronous_commit` off returns from a
    commit before it is on disk, and without `full_page_writes` a crash can leave a page
    half written: settings an operator may have chosen for speed.
    """
    if not is_postgresql():
        return None
    rows = database.execute_sql(
        "SELECT name, setting FROM pg_settings"
        " WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
    ).fetchall()
    off = sorted(name for name, setting in rows if setting == "off")
    return f"PostgreSQL runs with {' and '.join(off)} off" if off else None


def change_mark() -> tuple[object, int] | None:
    """A mark that another connection's commit changes: SQLite's data_version, with the
    connection it was asked on (its own commits leave it as it is); equal marks mean that
    what this connection read in between still stands. None on PostgreSQL, which keeps
    no such count."""
    if is_postgresql():
        return None
    connection = database.connection()
    return connection, connection.execute("PRAGMA data_version").fetchone()[0]


# Rows a block holds back to insert together at its end (`queries.events_together`); None
# where each goes in at once. Per thread (and task): a batch of the tick holds its own.
_HELD_ROWS: ContextVar[list[dict[str, object]] | None] = ContextVar("held_rows", default=None)


def held_rows() -> list[dict[str, object]] | None:
    """Where a row to insert is held back now, or None: insert it at once."""
    return _HELD_ROWS.get()


@contextlib.contextmanager
def holding_rows() -> Iterator[list[dict[str, object]]]:
    """Rows added to `held_rows` inside are held in the list it gives, for the caller to
    insert when the block ends. A `transaction` inside that fails takes out what it added,
    as the store takes out what it wrote (a bare `database.atomic()` does not: none adds
    held rows)."""
    held: list[dict[str, object]] = []
    token = _HELD_ROWS.set(held)
    try:
        yield held
    finally:
        _HELD_ROWS.reset(token)


@contextlib.contextmanager
def transaction(durable: bool = True) -> Iterator[None]:
    """Every write goes through here; nested use becomes a savepoint.

    A block that fails is rolled back, held rows included: a savepoint whose failure a
    caller contains (settling one failed mail of a batch) must not leave its rows to be
    inserted with the batch's when the batch ends.

    `durable=False`: the commit returns before it is on disk, and a power cut or an OS
    crash (not a crash of this process) may take it back until the next durable commit,
    which makes every commit before it durable too: both stores write one log in commit
    order, and syncing it syncs all that came before. Only for writes that no mail and
    no answer to a sender goes out on before a later durable commit: intake's claims and
    results, and the tick's batches, whose mail goes out only after the outbox's claim.
    Lost, they are done again: from the stored message, or by the next tick. Only the
    outermost block decides; a savepoint commits with it.
    """
    held = _HELD_ROWS.get()
    mark = len(held) if held is not None else 0
    outermost_unsynced = not durable and not database.in_transaction()
    try:
        with _unsynced() if outermost_unsynced else database.atomic():
            yield
    except BaseException:
        if held is not None:
            del held[mark:]
        raise


@contextlib.contextmanager
def _unsynced() -> Iterator[None]:
    """A transaction whose commit does not wait for the disk. SQLite's level can only be
    changed between transactions, so it is lowered before BEGIN and raised after COMMIT;
    PostgreSQL's SET LOCAL ends with its transaction by itself."""
    if is_postgresql():
        with database.atomic():
            database.execute_sql("SET LOCAL synchronous_commit TO OFF")
            yield
        return
    database.execute_sql("PRAGMA synchronous = NORMAL")
    try:
        with database.atomic():
            yield
    finally:
        database.execute_sql(f"PRAGMA synchronous = {SQLITE_PRAGMAS['synchronous']}")


def probe(url: str) -> str | None:
    """Why the database at `url` cannot be used now, or None: one connection, opened and
    closed, apart from the bound one and without touching the schema."""
    try:
        candidate = connect(url)
        candidate.connect()
        try:
            candidate.execute_sql("SELECT 1")
        finally:
            candidate.close()
    except DatabaseUnavailable as exc:
        return str(exc)
    except (peewee.PeeweeException, ValueError, OSError) as exc:
        return f"cannot open the database: {first_line(exc)}"
    return None
