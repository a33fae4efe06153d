"""`serve`'s letter writer: a process of its own that writes a share of a busy tick's letters.

One process runs its Python on one core: a tick with hundreds due wrote its letters one
after another while the machine's other core sat idle, and held the GIL that SMTP sessions
and pages wait on. The writer takes part of a batch (`service.writing.writer.Job`), writes
its letters with the service's own functions, keys, DKIM key, templates and clock, and
sends them back while the service writes the rest.

It only writes: it reads no store, decides nothing and keeps nothing between batches. What
it wrote is used only where the service, under the write lock, finds the records as they
were sent (`deadlines.Drafts`). Whenever it cannot help (starting, killed, stuck, failing),
the service writes those letters itself; after a few failures in a row it is left off until
`serve` restarts. It can make a tick faster, never lose or change a letter.

The writer is `python -m service.edge.letter_writer FD`: a fresh interpreter, not a fork,
which would copy the service's open database connections and its threads' locks. It gets
what the service loaded at start over the socket FD, not from disk: a key file, DKIM key or
template changed on disk since must not make its letters differ from the service's.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import store  # noqa: F401  (its folder is fingerprinted)
from service.clock import Clock
from service.settings import Settings
from service.writing.compose import Templates
from service.writing.context import Context, make_context
from service.writing.signing import Signer
from service.writing.writer import Job, Written

log = logging.getLogger(__name__)

# Below this many records a batch is written by the service alone: the round trip (pickling
# the records there and the mail back) would cost more than the writer's share saves.
FEWEST = 40
# Of a batch, what the writer takes. It writes as fast as the service, but the service also
# pickles what it sends and unpickles what comes back.
SHARE = 0.45
# A job not answered by then (30 s, and a tenth of a second per record) is stuck: the
# writer is killed, which also ends a send or a read that waits on it.
WAIT_SECONDS = 30.0
WAIT_PER_RECORD_SECONDS = 0.1
# A writer that has not said it is ready by then never will.
READY_SECONDS = 60.0
# The packages whose code the writer runs: the service's, and the records it sends back.
OURS = ("service", "store")
# Failures in a row after which the service writes everything itself until it restarts: a
# writer that cannot start (or keeps dying) would otherwise cost a second of CPU each time.
MOST_FAILURES = 3


@dataclass(frozen=True)
class Start:
    """What the writer needs, as the service loaded it."""

    settings: Settings  # its secret keys in it, read by the service, and no DKIM key file
    templates: Path
    signer: Signer | None
    modules: tuple[str, ...]  # the service's own, as loaded when it started
    fingerprint: str  # of the templates and the code, as the service started with them


class LetterWriter:
    """The service's end of the writer: started when a batch first needs it, and again
    after it died, a few times."""

    def __init__(self, ctx: Context) -> None:
        # The keys the service signs with, not the key file read again.
        settings = ctx.settings.replace("security", secret_keys=ctx.tokens.keys)
        self._start = Start(
            settings=settings.replace("outbound", dkim_key_file=""),
            templates=ctx.templates.root,
            signer=ctx.signer,
            modules=_our_modules(),
            fingerprint=fingerprint(ctx.templates.root),
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False
        self._started_at = 0.0
        self._failures = 0
        self._off = False
        # One batch at a time: a second caller meanwhile writes its letters itself.
        self._lock = threading.Lock()
        self.written = 0  # records whose letters it wrote and sent back

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def off(self) -> bool:
        """Left off: failed too often, or closed."""
        return self._off

    def share(self, count: int) -> int:
        if count < FEWEST or self._off or not self._lock.acquire(blocking=False):
            return 0
        try:
            return int(count * SHARE) if self._listening() else 0
        finally:
            self._lock.release()

    def write(self, job: Job, meanwhile: Callable[[], object]) -> list[Written] | None:
        if not self._lock.acquire(blocking=False):
            meanwhile()
            return None
        try:
            return self._write(job, meanwhile)
        finally:
            self._lock.release()

    def ready(self, timeout: float) -> bool:
        """Start it if it is not running, and wait up to `timeout` seconds for it to listen."""
        with self._lock:
            if self._off:
                return False
            if not self._listening() and self._conn is not None:
                self._conn.poll(timeout)
            return self._listening()

    def close(self) -> None:
        """Stop it for good: `serve` is stopping."""
        with self._lock:
            self._off = True
            self._stop()

    def _write(self, job: Job, meanwhile: Callable[[], object]) -> list[Written] | None:
        conn, process = self._conn, self._process
        if not self._ready or conn is None or process is None:
            meanwhile()
            return None
        count = len(job.records)
        # Handing the job over, and then its answer, each within a deadline: past it the
        # writer is killed, which ends a send into its full socket or a read that would
        # otherwise wait on it for ever. The service's own share is written in between.
        try:
            with _deadline(process, WAIT_SECONDS):
                conn.send(job)
        except Exception as exc:  # a job that does not pickle, or a writer gone
            meanwhile()
            return self._failed(f"could not hand it {count} records: {exc!r}")
        meanwhile()
        try:
            with _deadline(process, WAIT_SECONDS + WAIT_PER_RECORD_SECONDS * count):
                written = conn.recv()
        except Exception as exc:
            return self._failed(f"no letters for {count} records: {exc!r}")
        if isinstance(written, str):
            return self._failed(f"it could not read the job: {written}")
        if not isinstance(written, list) or len(written) != count:
            return self._failed(f"{count} records sent, an answer of another shape came back")
        self._failures = 0
        self.written += sum(1 for w in written if w is not None)
        return written

    def _listening(self) -> bool:
        """Ready for a job; starts it where none runs (a first time, or after it died)."""
        if self._off:
            return False
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                self._failed(f"it exited ({self._process.returncode})")
                if self._off:
                    return False
            self._spawn()
            return False
        if self._ready:
            return True
        assert self._conn is not None
        try:
            if not self._conn.poll(0):
                if time.monotonic() - self._started_at > READY_SECONDS:
                    self._failed(f"not ready {READY_SECONDS:.0f} s after it started")
                return False
            word = self._conn.recv()
        except Exception as exc:
            self._failed(f"it did not start: {exc!r}")
            return False
        if word != "ready":
            self._failed(f"it did not start: {word}")
            return False
        self._ready = True
        return True

    def _spawn(self) -> None:
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:  # out of file descriptors, say
            self._failed(f"it could not be started: {exc}")
            return
        # Where the service finds its modules, the writer finds the same (a checkout run
        # with PYTHONPATH, tests): a job names its letters function by module. -P: not the
        # working directory first, which is the service's writable state folder.
        path = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-m", "service.edge.letter_writer", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
            )
        except Exception as exc:
            ours.close()
            self._failed(f"it could not be started: {exc}")
            return
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._ready = False
        self._started_at = time.monotonic()
        try:
            self._conn.send(self._start)
        except Exception as exc:
            self._failed(f"it could not be started: {exc}")

    def _failed(self, why: str) -> None:
        """Stop it; after too many failures in a row, for good. None: the caller's answer."""
        self._stop()
        self._failures += 1
        if self._failures >= MOST_FAILURES:
            self._off = True
            log.error(
                "the letter writer failed %d times in a row (%s); serve writes every letter "
                "itself until it restarts",
                self._failures,
                why,
            )
        else:
            log.warning("the letter writer failed (%s); serve writes its letters", why)

    def _stop(self) -> None:
        conn, process = self._conn, self._process
        self._conn, self._process, self._ready = None, None, False
        if conn is not None:
            conn.close()  # its next read ends, and so does it
        if process is not None:
            try:
                process.wait(1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def usable_cores() -> float:
    """The cores this process may run on: those it is pinned to, and no more than its
    cgroup's CPU quota allows (a container given one CPU on a larger host)."""
    cores = float(len(os.sched_getaffinity(0)))
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, int(quota) / int(period))
    return cores


def _our_modules() -> tuple[str, ...]:
    """The service's modules loaded now; never a `__main__`, which runs a command."""
    ours = (m for m in sys.modules if m.partition(".")[0] in OURS)
    return tuple(sorted(m for m in ours if not m.endswith("__main__")))


@contextlib.contextmanager
def _deadline(process: subprocess.Popen[bytes], seconds: float) -> Iterator[None]:
    """Kill `process` if what runs inside takes longer than `seconds`."""
    watchdog = threading.Timer(seconds, process.kill)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()


def fingerprint(templates: Path) -> str:
    """Of the templates and the service's code on disk: the writer, started later, must
    write with what the service started with."""
    digest = hashlib.blake2b(digest_size=16)
    folders = [(templates, (".txt", ".html"))]
    folders += [(Path(sys.modules[name].__file__ or "").parent, (".py",)) for name in OURS]
    for folder, suffixes in folders:
        found = (p for p in folder.rglob("*") if p.suffix in suffixes and p.is_file())
        for path in sorted(found):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


class _JobClock:
    """The clock of the job at hand."""

    def __init__(self) -> None:
        self.clock: Clock | None = None

    def now(self) -> datetime:
        assert self.clock is not None
        return self.clock.now()


def serve(conn: Connection) -> None:
    """The writer's life: what to write with, then a job in and its letters out, until the
    service closes its end."""
    start: Start = conn.recv()
    clock = _JobClock()
    try:
        # Everything the service runs, loaded now and compared after: a module imported or a
        # template read at a later job would be whatever is on disk then.
        for name in start.modules:
            importlib.import_module(name)
        templates = Templates(start.templates)
        templates.load_all()
        if fingerprint(start.templates) != start.fingerprint:
            raise RuntimeError("its templates or code changed on disk since serve started")
        ctx = replace(make_context(start.settings, clock, templates), signer=start.signer)
    except Exception as exc:
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    conn.send("ready")
    while True:
        try:
            job: Job = conn.recv()
        except (EOFError, OSError):
            raise
        except Exception as exc:  # a job it cannot read: the service counts a failure
            conn.send(f"{type(exc).__name__}: {exc}")
            continue
        clock.clock = job.clock
        conn.send([_letters(ctx, job, record) for record in job.records])


def _letters(ctx: Context, job: Job, record: tuple[Any, ...]) -> Written:
    try:
        return job.letters(ctx, *record, job.now)
    except Exception:  # written again by the service, under the lock, where it is reported
        return None


def main() -> None:
    # Ctrl-C and an init system's SIGTERM reach the whole group; the service decides when
    # the writer ends, by closing its end of the socket (or by dying).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # It ends when the service closes its end, or is gone.
    with contextlib.suppress(EOFError, OSError):
        serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
