"""PostgreSQL connections that come back by themselves after a restart or a terminated backend.

Peewee keeps one connection per thread for as long as the thread lives; once the server has
dropped it, every later statement on that thread failed with "connection already closed"
until the process was restarted. Here a dead connection is replaced where that is safe: at
the start of a transaction, or before a statement outside one. Never inside a transaction:
what it did is gone with the connection, and only its caller can decide to run it again.
"""

from __future__ import annotations

import contextlib
import logging
import select
from typing import Any

import peewee

log = logging.getLogger(__name__)

# The SQLSTATEs of a lock that was not granted in time, or a deadlock PostgreSQL broke.
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"


class DatabaseUnavailable(Exception):
    """The database cannot be reached now (or its schema not updated); later may work.

    Not a peewee error on purpose: peewee would wrap it again as its OperationalError.
    """


def first_line(exc: BaseException) -> str:
    """The driver's text spans lines ("Is the server running…"); its first says it all."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ReconnectingPostgresqlDatabase(peewee.PostgresqlDatabase):
    def _connect(self) -> Any:
        try:
            return super()._connect()
        except Exception as exc:
            # Still the driver's own error here (peewee translates it on the way out, and
            # matches it by name as we do): the server refused, timed out or is unknown.
            if type(exc).__name__ != "OperationalError":
                raise
            raise DatabaseUnavailable(f"cannot reach the database: {first_line(exc)}") from exc

    def begin(self, isolation_level: Any = None) -> None:
        self._replace_if_lost()
        try:
            super().begin(isolation_level)
        except (peewee.OperationalError, peewee.InterfaceError):
            # Nothing of the transaction has run yet, so BEGIN may go again on a new
            # connection: a connection the server dropped without a word is found only here.
            if not self.connection_lost():
                raise
            self._reopen()
            super().begin(isolation_level)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if not self.in_transaction():
            self._replace_if_lost()
        return super().execute_sql(sql, params)

    def connection_lost(self) -> bool:
        """Whether this thread holds a connection the server has dropped."""
        if self._state.closed:
            return False  # nothing open: the next statement connects
        conn = self._state.conn
        if conn.closed:
            return True
        # Between statements the server has nothing to say to us, except when it hangs up:
        # a terminated backend or a shutdown sends its FATAL and closes the socket.
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))

    def _replace_if_lost(self) -> None:
        if self.connection_lost():
            self._reopen()

    def _reopen(self) -> None:
        log.warning("the database connection was lost; opening a new one")
        with contextlib.suppress(Exception):
            self._state.conn.close()
        self._state.reset()
        self.connect()


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (peewee keeps the driver's error as `orig`)."""
    code = getattr(getattr(exc, "orig", exc), "pgcode", None)
    return str(code) if code else None
