"""Group commit at the SMTP edge: messages that arrive together are stored in one commit.

A commit is what storing a message costs (an fsync on SQLite and on PostgreSQL), and on
SQLite every commit also waits its turn for the one write lock. A writer takes every
message waiting, stores them in one transaction and only then lets each session answer, so
each 250 still follows its own message's durable write, and sixteen sessions pay for one
commit instead of sixteen. While a group is being written, the next one gathers.

Each writer is a loop in a store thread that stays while mail keeps coming: it takes the
next group the moment its commit returns, and hands a whole group's answers to the event
loop in one call. A writer started per group would wait for the event loop twice between
two commits, to hear that its group is done and to be started again, and a loop busy
answering sixteen sessions made each of those waits longer than the commit itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence

from service.clock import Clock
from service.intake import receiving
from service.settings import Settings
from store.db import RunDb

# Bounds on one group, so it holds the write lock briefly and its rows fit in memory twice
# over; a single message larger than the byte bound still goes, alone.
MAX_GROUP_MESSAGES = 64
MAX_GROUP_BYTES = 8 * 1024 * 1024
# How long an idle writer keeps its thread for the next message: across the gaps in a
# stream of mail, not beyond, since the pool's threads also answer the policy service.
LINGER_SECONDS = 0.5

Waiting = tuple[receiving.Offered, asyncio.Future[receiving.Fate]]


class GroupCommit:
    """Hands the messages of concurrent sessions to one writer, a group at a time."""

    def __init__(self, settings: Settings, clock: Clock, run_db: RunDb, writers: int = 1) -> None:
        """`writers`: groups written at once. SQLite has one writer however many ask; on
        PostgreSQL a second group commits while the first waits for its WAL flush."""
        self.settings = settings
        self.clock = clock
        self.run_db = run_db
        self.writers = writers
        # Shared by the event loop (which adds) and the writers' threads (which take).
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiting: deque[Waiting] = deque()
        self._writing = 0  # groups being written now
        self._started = 0  # writer loops alive, idle or writing
        self._idle = 0  # writer loops waiting for mail
        self._closing = False
        self._running: set[asyncio.Future[None]] = set()

    async def admit(self, offered: receiving.Offered) -> receiving.Fate:
        """The message's fate once its group is committed; raises what failed its write."""
        loop = asyncio.get_running_loop()
        fate: asyncio.Future[receiving.Fate] = loop.create_future()
        with self._lock:
            self._waiting.append((offered, fate))
            if self._idle:
                self._arrived.notify()
                start = False
            else:
                start = self._started < self.writers
                self._started += start
        if start:
            writer = asyncio.ensure_future(self.run_db(self._work, loop))
            self._running.add(writer)
            writer.add_done_callback(self._running.discard)
        return await fate

    @property
    def waiting(self) -> int:
        """Messages gathered for the next group."""
        return len(self._waiting)

    @property
    def writing(self) -> int:
        """Groups being written now."""
        return self._writing

    async def close(self) -> None:
        """Let the groups under way, and those waiting, finish; idle writers leave at once."""
        with self._lock:
            self._closing = True
            self._arrived.notify_all()
        if self._running:
            await asyncio.gather(*self._running)

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """A writer: in a store thread, one group after another until none comes for a while."""
        leaving = False
        try:
            while (group := self._take()) is not None:
                try:
                    fates = self._write([offered for offered, _ in group])
                finally:
                    with self._lock:
                        self._writing -= 1
                loop.call_soon_threadsafe(_settle, group, fates)
            leaving = True
        finally:
            if not leaving:  # broken off: the next message starts another writer
                with self._lock:
                    self._started -= 1

    def _take(self) -> list[Waiting] | None:
        """The next group, once there is one; None when none came while the writer lingered
        (it is then no longer counted, in the same moment, so the next message starts one)."""
        with self._lock:
            if not self._waiting and not self._closing:
                self._idle += 1
                self._arrived.wait(LINGER_SECONDS)
                self._idle -= 1
            if not self._waiting:
                self._started -= 1
                return None
            self._writing += 1
            return self._next_group()

    def _write(self, offered: list[receiving.Offered]) -> Sequence[receiving.Fate | Exception]:
        try:
            return receiving.admit_and_receive_together(offered, self.settings, self.clock.now())
        except Exception as exc:  # the whole group failed alike: each session says so
            return [exc] * len(offered)

    def _next_group(self) -> list[Waiting]:
        group = [self._waiting.popleft()]
        size = len(group[0][0].raw)
        while self._waiting and len(group) < MAX_GROUP_MESSAGES:
            size += len(self._waiting[0][0].raw)
            if size > MAX_GROUP_BYTES:
                break
            group.append(self._waiting.popleft())
        return group


def _settle(group: list[Waiting], fates: Sequence[receiving.Fate | Exception]) -> None:
    """On the event loop: each session of a written group hears its message's fate."""
    for (_, waiting), fate in zip(group, fates, strict=True):
        if waiting.done():  # its session is gone; the message is stored all the same
            continue
        if isinstance(fate, Exception):
            waiting.set_exception(fate)
        else:
            waiting.set_result(fate)
