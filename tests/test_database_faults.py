"""`care-intro serve` on PostgreSQL while the database misbehaves: backends terminated under
SMTP load, the server out of reach for a while, instances starting together beside a busy
one, the server down at start.

Each fault ends with the same account: every message answered 250 is stored and handled,
its mails reach the relay, and none reaches it twice (counted by Message-ID).
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest

from service.model import InboundState
from store import db
from store.models import InboundMessage
from tests.conftest import (
    REFERRER,
    ServeProcess,
    Sink,
    eventually,
    free_port,
    make_settings,
    wire_fixture,
    write_config,
)
from tests.helpers import RCPT, parse
from tests.postgres import Outage, fresh_database, needs_postgresql, terminate_others

# Each request is answered by a receipt to the referrer and one question to each party.
MAILS_PER_REQUEST = 3
# The load is paced, not flooded: these tests are about faults, not throughput, and CI
# shares its cores.
PAUSE_BETWEEN_MESSAGES = 0.05
MOST_MESSAGES = 400


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_database()


def request(tag: str, n: int) -> tuple[str, bytes]:
    """A request of its own: its own Message-ID and its own two parties."""
    message_id = f"<{tag}-{n}@referrer.example>"
    raw = (
        wire_fixture("request_thunderbird_labelled_lines.eml")
        .replace(b"<8f3c2a1e-7b4d-4c1a-9e2f-1a2b3c4d5e6f@referrer.example>", message_id.encode())
        .replace(b"jane@acme.example", f"jane{n}@acme.example".encode())
        .replace(b"bob@bakery.example", f"bob{n}@bakery.example".encode())
    )
    return message_id, raw


def send(port: int, raw: bytes) -> int:
    """The SMTP reply code to DATA (or to whatever was refused first); 0 if the line broke."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.sendmail(REFERRER, [RCPT], raw)
        return 250
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    except smtplib.SMTPRecipientsRefused as exc:
        return next(iter(exc.recipients.values()))[0]
    except (OSError, smtplib.SMTPException):
        return 0


class Load:
    """SMTP clients sending requests to one port until stopped, each answer kept."""

    def __init__(self, port: int, tag: str, clients: int = 2) -> None:
        self.port, self.tag = port, tag
        self.answers: dict[str, int] = {}
        self.raw: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _client(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._next >= MOST_MESSAGES:
                    return
                message_id, raw = request(self.tag, self._next)
                self._next += 1
                self.raw[message_id] = raw
            code = send(self.port, raw)
            with self._lock:
                self.answers[message_id] = code
            time.sleep(PAUSE_BETWEEN_MESSAGES)

    def answered(self) -> int:
        with self._lock:
            return len(self.answers)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for t in self._threads:
            t.join(60)
        assert not any(t.is_alive() for t in self._threads), "an SMTP client hung"
        return dict(self.answers)


def serve_on(tmp_path: Path, url: str, sink: Sink) -> ServeProcess:
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = make_settings(tmp_path, url, sink.port)
    return ServeProcess.in_folder(tmp_path, settings)


def stored_states(message_ids: set[str]) -> dict[str, str]:
    rows = InboundMessage.select(InboundMessage.message_id, InboundMessage.state).where(
        InboundMessage.message_id.in_(list(message_ids))
    )
    return dict(rows.tuples())


def account(accepted: set[str], sink: Sink) -> dict[str, int]:
    """Wait until every accepted request is handled and its mails are out; the figures."""
    eventually(
        lambda: set(stored_states(accepted).values()) == {InboundState.PROCESSED},
        "every accepted request to be processed",
        90,
    )
    deliveries = sink.wait_for(MAILS_PER_REQUEST * len(accepted), 90)
    copies = Counter(str(parse(d)["Message-ID"]) for d in deliveries)
    return {
        "stored": len(stored_states(accepted)),
        "sent": len(deliveries),
        "duplicates": sum(n - 1 for n in copies.values()),
    }


@needs_postgresql
def test_backends_terminated_while_mail_flows_lose_nothing_and_need_no_restart(
    tmp_path, pg_url, sink
):
    serve = serve_on(tmp_path, pg_url, sink).start()
    killer = psycopg2.connect(pg_url)
    try:
        load = Load(serve.settings.inbound.port, "cut")
        terminated = []
        for progress in (10, 25, 40):
            eventually(lambda p=progress: load.answered() >= p, f"{progress} answers", 60)
            terminated.append(terminate_others(killer))
        eventually(lambda: load.answered() >= 55, "answers after the last cut", 60)
        answers = load.stop()
        # What an MTA does with a 4xx: try again later. The same process takes it now.
        port = serve.settings.inbound.port
        retried = {m: send(port, load.raw[m]) for m, c in answers.items() if c != 250}
        # And the first message after a cut, on connections that all died, is taken at once.
        terminated.append(terminate_others(killer))
        after_id, after_raw = request("after", 0)
        first_after = send(port, after_raw)
    finally:
        killer.close()
    assert set(retried.values()) <= {250}, retried
    assert first_after == 250
    # Every cut found serve's connections: it had opened new ones after each.
    assert all(n >= 1 for n in terminated), terminated
    assert serve.proc.poll() is None, "serve exited"

    accepted = {m for m, c in answers.items() if c == 250}
    figures = account(set(answers) | {after_id}, sink)
    print(
        f"\nbackends terminated {len(terminated)} times ({terminated}): "
        f"answered 250 {len(accepted)} "
        f"of {len(answers)} (then {len(retried)} retried), stored {figures['stored']}, "
        f"sent {figures['sent']}, duplicates {figures['duplicates']}"
    )
    assert figures["stored"] == len(answers) + 1
    assert figures["duplicates"] == 0
    assert serve.stop() == 0, serve.log.read_text()


@needs_postgresql
def test_a_database_out_of_reach_for_a_while_gets_451_then_mail_flows_again(tmp_path, pg_url, sink):
    outage = Outage(pg_url)
    serve = serve_on(tmp_path, outage.url, sink).start()
    port = serve.settings.inbound.port
    before_id, before = request("outage", 0)
    assert send(port, before) == 250
    sink.wait_for(MAILS_PER_REQUEST)
    outage.down()
    during_id, during = request("outage", 1)
    answered_during = send(port, during)
    outage.up()
    # The MTA tries again; the same process, never restarted, takes it.
    answered_again = send(port, during)
    after_id, after = request("outage", 2)
    answered_after = send(port, after)
    assert (answered_during, answered_again, answered_after) == (451, 250, 250)
    assert serve.proc.poll() is None, "serve exited"

    figures = account({before_id, during_id, after_id}, sink)
    print(
        f"\ndatabase out of reach: answered 250 3 (one after a 451), stored "
        f"{figures['stored']}, sent {figures['sent']}, duplicates {figures['duplicates']}"
    )
    assert figures["stored"] == 3
    assert figures["duplicates"] == 0
    assert serve.stop() == 0, serve.log.read_text()
    outage.down()


@needs_postgresql
def test_instances_starting_together_beside_a_busy_one_all_come_up(tmp_path, pg_url, sink):
    busy = serve_on(tmp_path / "busy", pg_url, sink).start()
    newcomers = [serve_on(tmp_path / f"new{i}", pg_url, sink) for i in range(3)]
    load = Load(busy.settings.inbound.port, "busy")
    try:
        eventually(lambda: load.answered() >= 10, "the first instance taking mail", 60)
        # What a newer release brings: indexes on the hot tables, to be made while intake
        # and the outbox write to them.
        for index in ("inbound_message_received_at", "outbox_mail_due_at"):
            db.database.execute_sql(f"DROP INDEX {index}")
        with ThreadPoolExecutor(len(newcomers)) as pool:
            # start() fails the test if a process exits before it listens.
            list(pool.map(ServeProcess.start, newcomers))
    finally:
        answers = load.stop()
    more = {}
    for n, newcomer in enumerate(newcomers):
        message_id, raw = request("new", n)
        more[message_id] = send(newcomer.settings.inbound.port, raw)
    assert set(more.values()) == {250}, more
    assert set(answers.values()) == {250}, answers

    figures = account(set(answers) | set(more), sink)
    print(
        f"\n3 instances started beside a busy one: answered 250 {len(answers) + len(more)}, "
        f"stored {figures['stored']}, sent {figures['sent']}, "
        f"duplicates {figures['duplicates']}"
    )
    assert figures["stored"] == len(answers) + len(more)
    assert figures["duplicates"] == 0
    present = {
        i.name for t in ("inbound_message", "outbox_mail") for i in db.database.get_indexes(t)
    }
    assert {"inbound_message_received_at", "outbox_mail_due_at"} <= present
    for process in (busy, *newcomers):
        assert process.stop() == 0, process.log.read_text()
        assert "deadlock" not in process.log.read_text()


@pytest.mark.parametrize("command", ["serve", "tick", "status"])
def test_a_database_that_is_down_at_start_gives_one_line_and_exit_75(tmp_path, command):
    settings = make_settings(tmp_path, f"postgresql://care@127.0.0.1:{free_port()}/care")
    config = write_config(tmp_path / "care-intro.toml", settings)
    done = subprocess.run(
        [sys.executable, "-m", "service", command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 75, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("care-intro: cannot reach the database: connection to server at")
    assert "Connection refused" in line


@needs_postgresql
def test_serve_warns_when_postgresql_may_lose_what_it_committed(tmp_path, pg_url, sink):
    """A 250 means the message is on disk; PostgreSQL with synchronous_commit off (an
    operator's speed-up) answers a commit before that. serve still runs, and says so."""
    risky = pg_url + ("&" if "?" in pg_url else "?") + "options=-c%20synchronous_commit%3Doff"
    for database, warned in ((pg_url, False), (risky, True)):
        serve = serve_on(tmp_path / str(warned), database, sink).start()
        assert serve.stop() == 0
        log = serve.log.read_text()
        assert ("runs with synchronous_commit off:" in log) is warned, log
