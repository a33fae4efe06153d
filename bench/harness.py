"""What the benchmarks share: `serve` and relay sinks as child processes, rounds of a
baseline and a subject taken in turn, and the rows of the table `run.py` prints."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.settings import Settings, as_toml
from store import db
from store.models import ALL_MODELS

DOMAIN = "intro.example.org"
REFERRER = "ada@referrer.example"
RCPT = f"refer@{DOMAIN}"
SMTP_SINK = Path("/usr/sbin/smtp-sink")
PG_ENV = "CARE_INTRO_TEST_DATABASE_URL"
# Every wait in a benchmark ends: a figure that cannot finish says so instead of hanging.
START_SECONDS = 30.0
STOP_SECONDS = 40.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], object], what: str, seconds: float, pause: float = 0.05) -> None:
    """Poll `check` until it is true; after `seconds`, fail saying what did not happen."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(pause)


# ------------------------------------------------------------------ rounds and rows


def interleaved(
    baseline: Callable[[], float], subject: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """Baseline, subject, baseline, subject…: the median of each, so a machine that slows
    down during the run slows both alike."""
    base, subj = [], []
    for _ in range(rounds):
        base.append(baseline())
        subj.append(subject())
    return statistics.median(base), statistics.median(subj)


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its baseline and its subject, and the target."""

    what: str
    baseline: str
    subject: str
    result: str  # a ratio ("0.21×") or a cost per item ("2.1 ms each")
    target: str
    met: bool | None  # None: nothing to judge (no target, or not measured)


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table, ready for the README."""
    lines = [
        "| what | baseline | subject | ratio or cost | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "–" if r.met is None else ("yes" if r.met else "no")
        lines.append(f"| {r.what} | {r.baseline} | {r.subject} | {r.result} | {r.target} | {met} |")
    return "\n".join(lines)


def rate(count: float, unit: str = "msg/s") -> str:
    return f"{count:,.0f} {unit}" if count >= 100 else f"{count:,.1f} {unit}"


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:.3f} ms" if value < 1 else f"{value:,.1f} ms"


def machine_pace(rounds: int = 3) -> float:
    """Seconds a fixed pure-Python workload takes now, the median of `rounds`: how fast this
    machine runs an interpreter at this moment. On a shared machine that moves by up to
    twice within a run, and a figure bound by one process's CPU moves with it."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        counts: dict[str, int] = {}
        for i in range(100_000):
            key = f"w{i % 997}"
            counts[key] = counts.get(key, 0) + i
        sorted(counts.items())
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ------------------------------------------------------------------ stores


def database_url(folder: Path, postgresql: str | None = None) -> str:
    """A fresh store: a SQLite file in `folder`, or the PostgreSQL database emptied."""
    if postgresql is None:
        return f"sqlite:///{folder / 'care-intro.db'}"
    db.bind(postgresql)
    try:
        db.database.drop_tables(ALL_MODELS, safe=True)
    finally:
        db.close()
    return postgresql


@contextlib.contextmanager
def bound(url: str) -> Iterator[None]:
    """This process's store connection, for a figure that prepares or inspects a store."""
    db.bind(url)
    try:
        yield
    finally:
        db.close()


# ------------------------------------------------------------------ serve


def settings_for(folder: Path, url: str, relay_port: int | None) -> Settings:
    """Settings for one `serve`: its own ports and folder, the bench referrer allowed, mail
    to the relay on `relay_port` (or into a maildir)."""
    web_port = free_port()
    settings = (
        Settings()
        .replace(
            "service",
            domain=DOMAIN,
            data_dir=str(folder / "data"),
            public_url=f"http://127.0.0.1:{web_port}",
        )
        .replace("inbound", host="127.0.0.1", port=free_port())
        .replace("web", host="127.0.0.1", port=web_port)
        .replace("database", url=url)
        .replace("security", allowed_referrers=(REFERRER,), secret_keys=("bench-key",))
    )
    if relay_port is None:
        return settings.replace("outbound", transport="maildir", maildir=str(folder / "outbox"))
    return settings.replace("outbound", transport="smtp", host="127.0.0.1", port=relay_port)


def write_config(path: Path, settings: Settings) -> Path:
    """Every section of the settings as TOML, as an operator's file would hold them."""
    path.write_text(as_toml(settings))
    return path


class Serve:
    """`care-intro serve` as a child process, stopped with SIGTERM as an init system does."""

    def __init__(self, folder: Path, settings: Settings) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.config = write_config(folder / "care-intro.toml", settings)
        self.log = folder / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.settings.inbound.port

    def start(self) -> Serve:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
            )
        try:
            for port in (self.settings.inbound.port, self.settings.web.port):
                wait_until(lambda p=port: self._up(p), f"serve listening on {port}", START_SECONDS)
        except BaseException:
            self.stop()  # a start that failed half-way leaves no process behind
            raise
        return self

    def _up(self, port: int) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"serve exited at start:\n{self.log.read_text()[-2000:]}")
        return listening(port)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def memory_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the process now, in kB: resident, and the most it ever was."""
        assert self.proc is not None
        return memory_kb(self.proc.pid)

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def memory_kb(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def machine_jiffies() -> tuple[int, int]:
    """(busy, all) clock ticks every core of this machine spent since boot, from
    /proc/stat; waiting for the disk counts as idle, since another process could run then."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])  # guest time is already in user time


@dataclass
class CoresBusy:
    """How many of this machine's cores were busy, on average, between start and stop."""

    cores: int = os.cpu_count() or 1
    busy: float = 0.0
    _from: tuple[int, int] = (0, 0)

    def start(self) -> CoresBusy:
        self._from = machine_jiffies()
        return self

    def stop(self) -> float:
        busy, total = machine_jiffies()
        spent = total - self._from[1]
        self.busy = self.cores * (busy - self._from[0]) / spent if spent else 0.0
        return self.busy


# ------------------------------------------------------------------ relay sinks


def _serve_until_terminated(
    handler: object, port: int, ready: multiprocessing.synchronize.Event
) -> None:
    """A sink process's life: serve `handler` until SIGTERM, then stop cleanly."""
    from aiosmtpd.controller import Controller

    # Blocked before the controller's thread starts, so that thread inherits the mask and
    # the signal waits for sigwait below instead of killing the process mid-reply.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        signal.sigwait({signal.SIGTERM})
    finally:
        controller.stop()


def _bare_sink(port: int, ready: multiprocessing.synchronize.Event) -> None:
    from aiosmtpd.handlers import Sink

    _serve_until_terminated(Sink(), port, ready)


class RecordingHandler:
    """Keeps (Message-ID, recipient) of every mail, one line each, to find copies sent twice."""

    def __init__(self, path: str) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content: bytes = envelope.original_content or b""  # type: ignore[attr-defined]
        head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        message_id = next(
            (
                line.split(b":", 1)[1].strip().decode("ascii", "replace")
                for line in head.splitlines()
                if line.lower().startswith(b"message-id:")
            ),
            "",
        )
        for rcpt in envelope.rcpt_tos:  # type: ignore[attr-defined]
            self.out.write(f"{message_id}\t{rcpt}\n")
        return "250 2.0.0 OK"


DUMP_MARK = "\f care-intro relay dump"


def _recorded_from_dump(dump: Path, record: Path) -> None:
    """(Message-ID, recipient) lines from smtp-sink's dump: its X-Rcpt-Args records, then
    the mail's own header block, each mail after DUMP_MARK."""
    text = dump.read_text("utf-8", "replace") if dump.exists() else ""
    lines = []
    for mail in text.split("\n" + DUMP_MARK + "\n")[1:]:
        head = mail.split("\n\n", 1)[0].splitlines()
        rcpts = [
            h.split(":", 1)[1].split()[0].strip("<>") for h in head if h.startswith("X-Rcpt-Args:")
        ]
        message_id = next(
            (h.split(":", 1)[1].strip() for h in head if h.lower().startswith("message-id:")), ""
        )
        lines += [f"{message_id}\t{rcpt}\n" for rcpt in rcpts]
    with open(record, "a") as out:
        out.writelines(lines)


def _recording_sink(port: int, ready: multiprocessing.synchronize.Event, path: str) -> None:
    _serve_until_terminated(RecordingHandler(path), port, ready)


class Relay:
    """An SMTP sink in a process of its own: Postfix's smtp-sink, or aiosmtpd's Sink
    (`kind="aiosmtpd"`). With `record=PATH` it keeps (Message-ID, recipient) of every mail
    it got, a line each in PATH once it has stopped: smtp-sink dumps what it got where
    Postfix is installed, else an aiosmtpd sink writes the lines itself."""

    def __init__(self, kind: str = "smtp-sink", record: Path | None = None) -> None:
        if record is not None:
            kind = "smtp-sink, recording" if SMTP_SINK.exists() else "recording"
        self.kind = kind
        self.record = record
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._child: multiprocessing.Process | None = None
        self._dump_dir: Path | None = None

    @staticmethod
    def best() -> str:
        """smtp-sink where Postfix is installed, else aiosmtpd's Sink."""
        return "smtp-sink" if SMTP_SINK.exists() else "aiosmtpd"

    def start(self) -> Relay:
        if self.kind.startswith("smtp-sink"):
            # smtp-sink insists on dropping root once it listens.
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            self._proc = subprocess.Popen(
                [str(SMTP_SINK), *user, *self._dump(), f"127.0.0.1:{self.port}", "1000"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            ready = multiprocessing.Event()
            target, args = (
                (_recording_sink, (self.port, ready, str(self.record)))
                if self.record
                else (_bare_sink, (self.port, ready))
            )
            self._child = multiprocessing.Process(target=target, args=args, daemon=True)
            self._child.start()
            if not ready.wait(START_SECONDS):
                self.stop()
                raise TimeoutError("the relay sink did not start")
        wait_until(lambda: listening(self.port), f"{self.kind} listening", START_SECONDS)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._child is not None and self._child.is_alive():
            self._child.terminate()
            self._child.join(10)
            if self._child.is_alive():
                self._child.kill()
                self._child.join(10)
        if self.record is not None and self._dump_dir is not None:
            _recorded_from_dump(self._dump_dir / "dump", self.record)
            shutil.rmtree(self._dump_dir, ignore_errors=True)
            self._dump_dir = None

    def _dump(self) -> list[str]:
        """smtp-sink's options to dump every mail, each after a line of its own: written in
        C, it keeps up where a Python sink would take a core from the service measured."""
        if self.record is None:
            return []
        # smtp-sink writes as nobody, who may not enter the caller's private folders.
        self._dump_dir = Path(tempfile.mkdtemp(prefix="care-intro-relay-"))
        self._dump_dir.chmod(0o777)
        return ["-D", str(self._dump_dir / "dump"), "-S", "\\n" + DUMP_MARK + "\\n"]

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def scratch(parent: Path, name: str) -> Path:
    """A fresh folder for one round, emptied of what an earlier round left."""
    folder = parent / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
