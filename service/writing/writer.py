"""A process beside `serve` that writes a share of a busy tick's letters on another core.

A letter is almost all CPU (rendering, quoted-printable, tokens, DKIM), and one process
runs its Python on one core at a time: a tick with hundreds due took its letters one after
another while the machine's other core sat idle, and held the GIL that SMTP sessions wait
on. The writer takes part of a batch's records, writes their letters as the service would,
and sends them back while the service writes the rest.

It only writes: it reads no store, decides nothing and keeps nothing between batches. What
it wrote is used only where the service, under the write lock, finds the records as they
were sent (`deadlines.Drafts`), as with letters the service wrote itself before the lock.
Whenever it is not there to help (starting, killed, stuck, a record it could not write),
the service writes those letters itself: the writer can make a tick faster, never lose or
change a letter.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from service.clock import Clock
from service.settings import Settings
from service.writing.compose import Templates

log = logging.getLogger(__name__)

# Below this many records a batch is written by the service alone: the round trip (pickling
# the records there and the mail back) would cost more than the writer's share saves.
FEWEST = 40
# Of a batch, what the writer takes. It writes as fast as the service, but the service
# also pickles what it sends and unpickles what comes back; a little under half keeps
# either from waiting on the other.
SHARE = 0.45
# How long the service waits for a share at most, and per record: a writer that has not
# answered by then is stuck, and is stopped and started again.
WAIT_SECONDS = 30.0
WAIT_PER_RECORD_SECONDS = 0.1

# One record's letters, or None where the writer could not write them.
Written = list[Any] | None
# The service's `make_context(settings, clock, templates)`.
MakeContext = Callable[[Settings, Clock, Templates], Any]


@dataclass(frozen=True)
class Job:
    """What the writer writes, one letter function of a module (it goes by name) applied
    to each record as `letters(ctx, *record, now)`, on the service's clock."""

    letters: Callable[..., list[Any]]
    now: datetime
    clock: Clock
    records: Sequence[tuple[Any, ...]]


class Writer:
    """The service's end of one writer process, started when asked for and again after
    it died."""

    def __init__(self, settings: Settings, templates_root: Path, make: MakeContext) -> None:
        """`make` is `service.writing.context.make_context`, which the writer calls to make
        its own: passed in, as the context holds the writer and cannot be imported here."""
        self._settings = settings
        self._root = templates_root
        self._make = make
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = False
        # One batch at a time: a second caller meanwhile writes its letters itself.
        self._lock = threading.Lock()
        self.written = 0  # records whose letters it wrote, since it was made

    def start(self) -> None:
        """Start the process now, so that it is ready when the first busy tick comes: it
        takes about a second to import and to load its keys and templates."""
        if self._process is not None and self._process.is_alive():
            return
        self._stop()
        spawn = multiprocessing.get_context("spawn")
        # Spawned, not forked: a fork would copy the service's threads' locks and its
        # open database connections, which the writer has no business with.
        ours, theirs = spawn.Pipe()
        process = spawn.Process(
            target=_serve,
            args=(theirs, self._settings, self._root, self._make),
            name="care-intro letters",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn, self._ready = process, ours, False

    def ready(self, timeout: float) -> bool:
        """Start it if it is not running, and wait up to `timeout` seconds for it to listen."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self.start()
            elif self._ready:
                return True
            assert self._conn is not None
            # A writer that died meanwhile ends the wait too; `_listening` says so.
            with contextlib.suppress(OSError):
                self._conn.poll(timeout)
            return self._listening()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def share(self, count: int) -> int:
        """How many of `count` records to send now: none while it is starting or busy with
        another batch, or when there are too few to be worth the round trip. Starts it
        again if it died."""
        if count < FEWEST or not self._lock.acquire(blocking=False):
            return 0
        try:
            return int(count * SHARE) if self._listening() else 0
        finally:
            self._lock.release()

    def write(self, job: Job, meanwhile: Callable[[], object]) -> list[Written] | None:
        """Hand it `job`, run `meanwhile` here, then take its letters, record by record.
        None where it could not write them (busy, dead, stuck): then it is stopped, to be
        started again at the next batch. `meanwhile` runs once whatever happens."""
        if not self._lock.acquire(blocking=False):
            meanwhile()
            return None
        try:
            sent = self._send(job)
            meanwhile()
            return self._receive(len(job.records)) if sent else None
        finally:
            self._lock.release()

    def _listening(self) -> bool:
        if self._process is None or not self._process.is_alive():
            if self._process is not None:
                log.warning(
                    "the letter writer stopped (exit %s); starting it again",
                    self._process.exitcode,
                )
            self.start()
            return False
        if not self._ready:
            assert self._conn is not None
            try:
                if not self._conn.poll(0):
                    return False
                self._conn.recv()  # its word that it is ready
            except (EOFError, OSError):
                self._stop()
                return False
            self._ready = True
        return True

    def _send(self, job: Job) -> bool:
        if not self._listening():
            return False
        assert self._conn is not None
        try:
            self._conn.send(job)
        except (OSError, ValueError):
            self._stop()
            return False
        return True

    def _receive(self, count: int) -> list[Written] | None:
        assert self._conn is not None
        try:
            if not self._conn.poll(WAIT_SECONDS + WAIT_PER_RECORD_SECONDS * count):
                raise TimeoutError(f"no answer for {count} records")
            written = self._conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            log.warning("the letter writer failed (%s); the service writes its letters", exc)
            self._stop()
            return None
        if not isinstance(written, list) or len(written) != count:
            self._stop()
            return None
        self.written += sum(1 for w in written if w is not None)
        return written

    def close(self) -> None:
        self._stop()

    def _stop(self) -> None:
        conn, process = self._conn, self._process
        self._conn, self._process, self._ready = None, None, False
        if conn is not None:
            conn.close()  # its next read ends, and so does it
        if process is not None:
            process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join()


class _Clock:
    """The service's clock of the job at hand: tokens read the time when they are made."""

    def __init__(self) -> None:
        self.clock: Clock | None = None

    def now(self) -> datetime:
        assert self.clock is not None
        return self.clock.now()


def _serve(conn: Connection, settings: Settings, root: Path, make: MakeContext) -> None:
    """The writer's life: a job in, its letters out, until the service closes its end."""
    # Ctrl-C reaches the whole process group; the service decides when this one ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    clock = _Clock()
    ctx = make(settings, clock, Templates(root))
    conn.send("ready")
    while True:
        try:
            job: Job = conn.recv()
        except (EOFError, OSError):
            return
        clock.clock = job.clock
        written = [_letters(job, ctx, record) for record in job.records]
        try:
            conn.send(written)
        except OSError:  # the service stopped waiting, and closed its end
            return


def _letters(job: Job, ctx: Any, record: tuple[Any, ...]) -> Written:
    try:
        return job.letters(ctx, *record, job.now)
    except Exception:  # written again by the service under the lock, where it is reported
        return None
