"""GET /healthz over real HTTP: what a monitor reads, and 503 when the service cannot work."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from service.clock import FixedClock
from tests.conftest import InProcess, Sink, eventually, make_settings, wire_fixture
from tests.helpers import NOW, request_referral, send
from tests.postgres import Outage, fresh_database, needs_postgresql


def get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    """Status and JSON body, whatever the status (urllib raises for 503)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_a_working_service_is_healthy(running: InProcess, sink: Sink):
    request_referral(running.service.smtp_port, sink)
    port = running.service.web_port

    def settled() -> tuple[int, dict[str, object]] | None:
        # The sink has the mails a moment before the outbox's grouped record says so.
        status, body = get_json(port, "/healthz")
        done = body["last_tick"] and body["oldest_pending_outbox_seconds"] is None
        return (status, body) if done else None

    status, body = eventually(settled, "a tick and every mail recorded as sent")
    assert status == 200
    assert body["status"] == "ok" and body["database"] is True
    assert body["intake_backlog"] == 0
    assert datetime.fromisoformat(str(body["last_tick"])).tzinfo is not None


def test_mail_waiting_past_the_limit_makes_it_unhealthy(tmp_path, store_url, sink: Sink):
    # The relay says "later" to everything: the consent questions stay in the outbox.
    sink.answer_next(*["451 4.3.0 try again later"] * 30)
    clock = FixedClock(NOW)
    settings = make_settings(tmp_path, store_url, sink.port).replace(
        "health", max_outbox_wait_minutes=30
    )
    service = InProcess(settings, clock)
    try:
        port = service.service.web_port
        send(service.service.smtp_port, wire_fixture("request_thunderbird_labelled_lines.eml"))
        status, body = eventually(
            lambda: (
                (r := get_json(port, "/healthz"))[1]["oldest_pending_outbox_seconds"] is not None
                and r[1]["intake_backlog"] == 0
                and r
            ),
            "mail waiting in the outbox",
        )
        assert status == 200 and body["status"] == "ok"

        clock.at = NOW + timedelta(minutes=31)
        status, body = get_json(port, "/healthz")
        assert status == 503
        assert body["status"] == "outbox late" and body["database"] is True
        assert body["oldest_pending_outbox_seconds"] == 31 * 60
    finally:
        service.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_database()


@needs_postgresql
def test_an_unreachable_database_makes_it_unhealthy(tmp_path, pg_url: str, sink: Sink):
    # Through a relay that can be unplugged: the shared server itself is never touched.
    outage = Outage(pg_url)
    service = InProcess(make_settings(tmp_path, outage.url, sink.port))
    try:
        port = service.service.web_port
        assert get_json(port, "/healthz")[1]["database"] is True
        outage.down()
        status, body = get_json(port, "/healthz")
        assert status == 503
        assert body["status"] == "database unreachable" and body["database"] is False
        assert body["intake_backlog"] is None
        outage.up()
        # Back without a restart: a later check finds it again.
        eventually(lambda: get_json(port, "/healthz")[0] == 200, "healthy again", 20)
    finally:
        service.stop()
