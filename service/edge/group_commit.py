"""Group commit at the SMTP edge: messages that arrive together are stored in one commit.

A commit is what storing a message costs (an fsync on SQLite and on PostgreSQL), and on
SQLite every commit also waits its turn for the one write lock. A writer takes every
message waiting, stores them in one transaction and only then lets each session answer, so
each 250 still follows its own message's durable write, and sixteen sessions pay for one
commit instead of sixteen. While a group is being written, the next one gathers.
"""

from __future__ import annotations

import asyncio
from collections import deque

from service.clock import Clock
from service.intake import receiving
from service.settings import Settings
from store.db import RunDb

# Bounds on one group, so it holds the write lock briefly and its rows fit in memory twice
# over; a single message larger than the byte bound still goes, alone.
MAX_GROUP_MESSAGES = 64
MAX_GROUP_BYTES = 8 * 1024 * 1024


class GroupCommit:
    """Hands the messages of concurrent sessions to one writer, a group at a time."""

    def __init__(self, settings: Settings, clock: Clock, run_db: RunDb, writers: int = 1) -> None:
        """`writers`: groups written at once. SQLite has one writer however many ask; on
        PostgreSQL a second group commits while the first waits for its WAL flush."""
        self.settings = settings
        self.clock = clock
        self.run_db = run_db
        self.writers = writers
        self._waiting: deque[tuple[receiving.Offered, asyncio.Future[receiving.Fate]]] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def admit(self, offered: receiving.Offered) -> receiving.Fate:
        """The message's fate once its group is committed; raises what failed its write."""
        loop = asyncio.get_running_loop()
        fate: asyncio.Future[receiving.Fate] = loop.create_future()
        self._waiting.append((offered, fate))
        if self.writing < self.writers:
            writer = loop.create_task(self._write(), name="smtp-group-commit")
            self._running.add(writer)
            writer.add_done_callback(self._running.discard)
        return await fate

    @property
    def waiting(self) -> int:
        """Messages gathered for the next group."""
        return len(self._waiting)

    @property
    def writing(self) -> int:
        """Groups being written now. A writer that found nothing left is done before its
        callback takes it out of the set."""
        return sum(not w.done() for w in self._running)

    async def close(self) -> None:
        """Let the groups under way, and those waiting, finish."""
        if self._running:
            await asyncio.gather(*self._running)

    async def _write(self) -> None:
        while self._waiting:
            group = self._next_group()
            try:
                fates = await self.run_db(
                    receiving.admit_and_receive_together,
                    [offered for offered, _ in group],
                    self.settings,
                    self.clock.now(),
                )
            except Exception as exc:  # the whole group failed alike: each session says so
                fates = [exc] * len(group)
            for (_, waiting), fate in zip(group, fates, strict=True):
                if waiting.done():  # its session is gone; the message is stored all the same
                    continue
                if isinstance(fate, Exception):
                    waiting.set_exception(fate)
                else:
                    waiting.set_result(fate)

    def _next_group(self) -> list[tuple[receiving.Offered, asyncio.Future[receiving.Fate]]]:
        group = [self._waiting.popleft()]
        size = len(group[0][0].raw)
        while self._waiting and len(group) < MAX_GROUP_MESSAGES:
            size += len(self._waiting[0][0].raw)
            if size > MAX_GROUP_BYTES:
                break
            group.append(self._waiting.popleft())
        return group
