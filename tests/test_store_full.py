"""A full disk, made with SQLite's page limit (database.quota_mb): SMTP answers 4xx while
the store is full, nothing answered 250 is lost, and the service goes on once there is room."""

from __future__ import annotations

import smtplib

from service.delivery.outbox import UNRECORDED
from service.model import InboundState
from store.models import InboundMessage, OutboxMail
from tests.conftest import REFERRER, ServeProcess, eventually, make_settings, write_config
from tests.helpers import RCPT
from tests.load import copies_by_envelope, request
from tests.test_cli import run


def offer(port: int, raw: bytes) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        try:
            client.sendmail(REFERRER, [RCPT], raw)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code
    return 250


def test_a_full_store_answers_4xx_keeps_what_it_took_and_resumes_with_room(
    tmp_path, sqlite_url, sink
):
    settings = make_settings(tmp_path, sqlite_url, sink.port).replace("database", quota_mb=1)
    config = tmp_path / "care-intro.toml"
    serve = ServeProcess(write_config(config, settings), settings, tmp_path / "serve.log")
    serve.start()
    port = settings.inbound.port
    accepted: list[str] = []
    refused: dict[str, int] = {}
    try:
        for n in range(2000):  # bounded: a megabyte holds far fewer requests and their mail
            message_id, raw = request(n, "full")
            code = offer(port, raw)
            if code != 250:
                refused[message_id] = code
                break
            accepted.append(message_id)
        assert refused, "the store never filled"
        assert set(refused.values()) == {452}  # 4.3.1: no room; the sender's MTA retries
        # Still full: the next message is turned away too, and nothing half-stored stays.
        message_id, raw = request(len(accepted) + 1, "full")
        assert offer(port, raw) == 452
        refused[message_id] = 0
        assert serve.stop() == 0
    finally:
        if serve.proc.poll() is None:
            serve.kill()

    # Room again: the operator raises the quota (or frees the disk) and starts the service.
    write_config(config, settings.replace("database", quota_mb=0))
    serve.start()
    try:
        for message_id, raw in (request(len(accepted), "full"), request(len(accepted) + 1, "full")):
            assert offer(port, raw) == 250
            accepted.append(message_id)
        eventually(lambda: all_handled(len(accepted)), "every accepted request handled", 60)
    finally:
        assert serve.stop() == 0

    stored = InboundMessage.select(InboundMessage.message_id, InboundMessage.state).tuples()
    assert sorted(m for m, _ in stored) == sorted(accepted)
    assert {s for _, s in stored} == {InboundState.PROCESSED}
    copies = copies_by_envelope(sink.deliveries)
    outbox = {
        (m, tuple(r.split("\n")))
        for m, r in OutboxMail.select(OutboxMail.message_id, OutboxMail.recipients).tuples()
    }
    assert set(copies) == outbox
    # A mail handed on while the full store could not record it, when the service was
    # stopped, may go once more after the restart: the same bytes, never a third time.
    # At most the outbox's bound on mails handed on and not yet recorded (README, Outbound).
    assert all(len(c) <= 2 and len(set(c)) == 1 for c in copies.values())
    twice = sum(len(c) == 2 for c in copies.values())
    assert twice <= max(UNRECORDED, settings.outbound.connections)
    print(
        f"answered 250: {len(accepted)}, refused while full: {len(refused)}, "
        f"mails: {len(outbox)}, deliveries: {len(sink.deliveries)}, duplicates: {twice}"
    )


def all_handled(requests: int) -> bool:
    new = InboundMessage.select().where(InboundMessage.state == InboundState.NEW).count()
    sent = OutboxMail.select().where(OutboxMail.state == "sent").count()
    return new == 0 and sent == 3 * requests


def test_submit_into_a_full_store_never_says_a_stored_message_failed(tmp_path, sqlite_url):
    """An MTA's pipe transport bounces on 70 and retries on 75: a message `submit` stored
    must end in 0, whatever its handling afterwards met, and one it could not store in 75."""
    settings = make_settings(tmp_path, sqlite_url).replace("database", quota_mb=1)
    config = str(write_config(tmp_path / "care-intro.toml", settings))
    padding = ("Notes: " + "quarterly figures and payroll, " * 3 + "\r\n") * 1200  # ~120 KB
    stored: list[str] = []
    codes: list[int] = []
    for n in range(30):  # bounded: a megabyte holds about eight of these
        message_id, raw = request(n, "submit-full")
        done = run("submit", "--config", config, cwd=tmp_path, stdin=raw + padding.encode())
        codes.append(done.returncode)
        assert done.returncode in (0, 75), done.stderr
        assert len(done.stderr.strip().splitlines()) <= 1, done.stderr
        if done.returncode == 75:
            break
        stored.append(message_id)
    assert codes[-1] == 75, codes  # the store filled
    kept = {m for (m,) in InboundMessage.select(InboundMessage.message_id).tuples()}
    assert set(stored) <= kept
