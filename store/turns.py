"""Write transactions on SQLite take turns in arrival order within one process.

SQLite has one writer at a time, and a writer that finds the lock taken sleeps and polls
(busy_timeout) with growing pauses. A thread that commits and begins again at once, like
intake working through stored messages, so takes the lock back before a sleeping one wakes:
the outbox starved, and an SMTP reply waited seconds for a lock that was free a thousand
times meanwhile. Queueing the writers of this process first come, first served means each
waits for at most the transactions ahead of it. Other processes (a `tick`) still meet
SQLite's own busy timeout.
"""

from __future__ import annotations

import threading
from collections import deque

import peewee


class Turns:
    """A lock handed to its waiters in the order they came."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held and not self._waiting:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True
        with self._guard:
            if turn.is_set():  # handed over just as the wait ran out
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()  # straight to the next: nobody can cut in
            else:
                self._held = False


class TurnTakingSqliteDatabase(peewee.SqliteDatabase):
    """SqliteDatabase whose transactions queue for their turn before BEGIN."""

    def __init__(self, *args: object, turn_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._turns = Turns()
        self._turn_timeout = turn_timeout
        self._mine = threading.local()

    def begin(self, lock_type: str | None = None) -> None:
        if not self._turns.acquire(self._turn_timeout):
            raise peewee.OperationalError("database is locked")
        self._mine.held = True
        try:
            super().begin(lock_type)
        except BaseException:
            self._let_go()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._let_go()

    def rollback(self) -> None:
        try:
            # SQLite ends a transaction by itself on some errors (a full disk among them);
            # a ROLLBACK then fails and would hide the error that mattered.
            if self.is_closed() or self.connection().in_transaction:
                super().rollback()
        finally:
            self._let_go()

    def _let_go(self) -> None:
        if getattr(self._mine, "held", False):
            self._mine.held = False
            self._turns.release()
