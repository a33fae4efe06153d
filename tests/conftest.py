"""Shared fixtures: real stores, a real SMTP sink, the service in-process or as `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from service.clock import Clock, FixedClock
from service.settings import Settings, as_toml
from service.writing.context import Context, make_context
from store import db
from store.models import ALL_MODELS

FIXTURES = Path(__file__).parent / "fixtures"
PG_ENV = "CARE_INTRO_TEST_DATABASE_URL"
REFERRER = "ada@referrer.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something takes connections on this loopback port."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def on_the_wire(raw: bytes) -> bytes:
    """CRLF line ends, as every SMTP client sends them (smtplib leaves bytes as they are)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def wire_fixture(name: str) -> bytes:
    return on_the_wire(fixture_bytes(name))


def eventually(check: Callable[[], object], what: str, seconds: float = 10.0) -> object:
    """Poll `check` until it returns something truthy; bounded, then fail saying what."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------ stores


def _store_params() -> list[object]:
    pg = pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get(PG_ENV),
            reason=f"set {PG_ENV} to a PostgreSQL URL to run the store tests on PostgreSQL",
        ),
    )
    return ["sqlite", pg]


@pytest.fixture(params=_store_params())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind; PostgreSQL only where CI (or you) provides one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'care-intro.db'}"
    else:
        url = os.environ[PG_ENV]
        db.bind(url)
        db.database.drop_tables(ALL_MODELS, safe=True)
    db.bind(url)
    yield url
    db.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'care-intro.db'}"
    db.bind(url)
    yield url
    db.close()


# ------------------------------------------------------------------ outbound sink


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a private relay might have."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "relay.pem", folder / "relay.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=relay.test"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class SinkHandler:
    """A real SMTP server's handler that keeps everything, or answers as a test tells it."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.scripted: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        with self.lock:
            if self.scripted:
                return self.scripted.pop(0)
            self.deliveries.append(
                Delivery(
                    envelope.mail_from,  # type: ignore[attr-defined]
                    tuple(envelope.rcpt_tos),  # type: ignore[attr-defined]
                    bytes(envelope.original_content),  # type: ignore[attr-defined]
                )
            )
        return "250 2.0.0 OK"


@dataclass
class Sink:
    handler: SinkHandler
    port: int

    @property
    def deliveries(self) -> list[Delivery]:
        with self.handler.lock:
            return list(self.handler.deliveries)

    def answer_next(self, *replies: str) -> None:
        """The next DATA commands get these replies instead of being kept."""
        with self.handler.lock:
            self.handler.scripted.extend(replies)

    def to(self, address: str) -> list[Delivery]:
        return [d for d in self.deliveries if address in d.rcpt_tos]

    def wait_for(self, count: int, seconds: float = 10.0) -> list[Delivery]:
        eventually(
            lambda: len(self.deliveries) >= count, f"{count} deliveries at the sink", seconds
        )
        return self.deliveries


@contextlib.contextmanager
def relay_sink(handler: SinkHandler) -> Iterator[Sink]:
    """A real SMTP server on a free loopback port, answering as `handler` says."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Sink(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with relay_sink(SinkHandler()) as running:
        yield running


# ------------------------------------------------------------------ settings


def make_settings(tmp_path: Path, database_url: str, sink_port: int | None = None) -> Settings:
    """Settings for one test: its own ports, folder and store; mail to the sink if given."""
    web_port = free_port()
    settings = Settings()
    settings = settings.replace(
        "service",
        domain="intro.example.org",
        data_dir=str(tmp_path / "data"),
        public_url=f"http://127.0.0.1:{web_port}",
    )
    settings = settings.replace("inbound", port=free_port())
    settings = settings.replace("web", port=web_port)
    settings = settings.replace("database", url=database_url)
    settings = settings.replace("security", allowed_referrers=(REFERRER, "*@partners.example"))
    settings = settings.replace(
        "privacy", controller="Example Introductions Ltd", contact="privacy@intro.example.org"
    )
    if sink_port is None:
        return settings.replace("outbound", transport="maildir", maildir=str(tmp_path / "outbox"))
    return settings.replace("outbound", transport="smtp", host="127.0.0.1", port=sink_port)


def write_config(path: Path, settings: Settings) -> Path:
    """The same settings as a TOML file, for the `serve` and CLI subprocesses."""
    path.write_text(as_toml(settings))
    return path


# ------------------------------------------------------------------ the service


@pytest.fixture
def ctx(tmp_path: Path, store_url: str) -> Context:
    """The service's context on a fresh store of each kind, its clock stopped at helpers.NOW."""
    from tests.helpers import NOW

    return make_context(make_settings(tmp_path, store_url), FixedClock(NOW))


class InProcess:
    """`Service` on its own event loop in a thread: the real servers, inspectable from tests."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        from service.edge.app import Service

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.service = Service(settings, clock)
        asyncio.run_coroutine_threadsafe(self.service.start(), self.loop).result(15)

    def deliver(self) -> None:
        """Send what the outbox holds now, on the service's own loop, and wait for it: through
        the outbox's own runner, so no second run goes beside one a page or a mail kicked."""
        asyncio.run_coroutine_threadsafe(self.service.outbox.settle(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.service.stop(), self.loop).result(40)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running(tmp_path: Path, store_url: str, sink: Sink) -> Iterator[InProcess]:
    """The whole service in-process, on a fresh store, sending to the sink."""
    service = InProcess(make_settings(tmp_path, store_url, sink.port))
    try:
        yield service
    finally:
        service.stop()


class ServeProcess:
    """`care-intro serve` as a real child process, stopped with SIGTERM like an init system."""

    def __init__(self, config: Path, settings: Settings, log: Path) -> None:
        self.config, self.settings, self.log = config, settings, log
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_folder(cls, folder: Path, settings: Settings) -> ServeProcess:
        """`serve` with its configuration and its log in `folder`, not started yet."""
        config = write_config(folder / "care-intro.toml", settings)
        return cls(config, settings, folder / "serve.log")

    def start(self) -> ServeProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
            )
        for port in (self.settings.inbound.port, self.settings.web.port):
            eventually(lambda p=port: self._listening(p), f"serve listening on {port}", 20)
        return self

    def _listening(self, port: int) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{self.log.read_text()}")
        return listening(port)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def surveyed(tmp_path: Path, store_url: str, sink: Sink) -> Iterator[object]:
    """The service running on a stopped clock, with one referral introduced at helpers.NOW
    and both its surveys sent and delivered (see tests.test_survey_pages.Surveyed)."""
    from tests.helpers import NOW
    from tests.test_survey_pages import Surveyed

    clock = FixedClock(NOW)
    service = InProcess(make_settings(tmp_path, store_url, sink.port), clock)
    try:
        yield Surveyed(service, clock, sink)
    finally:
        service.stop()


@pytest.fixture
def clocked(tmp_path: Path, store_url: str, sink: Sink) -> Iterator[tuple[InProcess, FixedClock]]:
    """The whole service in-process on a clock stopped at helpers.NOW, and that clock, which
    a test moves by hand."""
    from tests.helpers import NOW

    clock = FixedClock(NOW)
    service = InProcess(make_settings(tmp_path, store_url, sink.port), clock)
    try:
        yield service, clock
    finally:
        service.stop()
