"""The outbox against a real SMTP sink and a real maildir: retries, failures, crashes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller

from service.clock import FixedClock
from service.delivery import holder
from service.delivery.holder import Holder, this_process
from service.delivery.outbox import (
    FEWEST_ATTEMPTS,
    LEASE,
    LONGEST_WAIT,
    RETRY_FOR,
    SEND_LIMIT_SECONDS,
    Outbox,
    Report,
    backoff,
    deliver_due,
)
from service.delivery.transports import Maildir, SmtpRelay
from store import db, queries
from store.models import OutboxMail
from store.records import OutgoingMail
from tests.conftest import InProcess, Sink, eventually, free_port, make_settings, relay_sink
from tests.load import PacedHandler

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def enqueue(n: int = 1, recipients=("jane@acme.example",)) -> list[str]:
    mails = [
        OutgoingMail(
            f"<m{i}@intro.example.org>",
            "consent_request",
            "refer@intro.example.org",
            recipients,
            f"Message-ID: <m{i}@intro.example.org>\nSubject: {i}\n\nHi\n".encode(),
        )
        for i in range(n)
    ]
    with db.transaction():
        queries.enqueue(mails, NOW)
    return [m.message_id for m in mails]


def deliver(transport, at=NOW) -> Report:
    return asyncio.run(deliver_due(transport, at))


def relay(sink) -> SmtpRelay:
    return SmtpRelay("127.0.0.1", sink.port, timeout=5)


def test_due_mail_reaches_the_relay_with_the_service_as_envelope_sender(store_url, sink):
    enqueue(3)
    assert deliver(relay(sink)) == Report(sent=3)
    assert [(d.mail_from, d.rcpt_tos) for d in sink.deliveries] == [
        ("refer@intro.example.org", ("jane@acme.example",))
    ] * 3
    assert b"Message-ID: <m0@intro.example.org>" in sink.deliveries[0].data
    assert deliver(relay(sink)) == Report()  # nothing is sent twice
    assert queries.outbox_counts() == {"sent": 3}


def test_a_temporary_refusal_is_retried_later_with_the_same_bytes(store_url, sink):
    enqueue(1)
    sink.answer_next("451 4.3.0 Try again later")
    assert deliver(relay(sink)) == Report(retrying=1)
    assert deliver(relay(sink), NOW + backoff(1) - timedelta(seconds=1)) == Report()
    assert deliver(relay(sink), NOW + backoff(1)) == Report(sent=1)
    assert len(sink.deliveries) == 1


def test_backoff_doubles_and_stops_at_an_hour():
    assert [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4, 7, 8, 20, 1000)] == [
        1,
        2,
        4,
        8,
        60,
        60,
        60,
        60,
    ]


def test_a_permanent_refusal_fails_at_once(store_url, sink):
    enqueue(1)
    sink.answer_next("554 5.7.1 Rejected for policy reasons")
    assert deliver(relay(sink)) == Report(failed=1)
    assert queries.outbox_counts() == {"failed": 1}
    assert deliver(relay(sink), NOW + timedelta(days=1)) == Report()


def test_an_unreachable_relay_keeps_the_mail_however_long_it_is_down(store_url, sink, caplog):
    enqueue(1)
    gone = SmtpRelay("127.0.0.1", free_port(), timeout=2)
    assert deliver(gone) == Report(retrying=1)
    assert deliver(gone, NOW + 3 * RETRY_FOR) == Report(retrying=1)
    # Our outage, the operator's to fix: an error in the log, never a failure of the mail.
    assert [r.levelname for r in caplog.records if "relay unreachable" in r.getMessage()] == [
        "ERROR",
        "ERROR",
    ]
    assert deliver(relay(sink), NOW + 3 * RETRY_FOR + LONGEST_WAIT) == Report(sent=1)
    assert len(sink.deliveries) == 1


def test_a_service_stopped_for_a_weekend_retries_for_the_whole_window(store_url, sink):
    enqueue(1)
    sink.answer_next(*["451 4.3.0 Try again later"] * 1000)
    restarted = NOW + timedelta(days=3)  # queued on Friday, first tried on Monday
    assert deliver(relay(sink), restarted) == Report(retrying=1)
    at, attempts = restarted, 1
    while (report := deliver(relay(sink), at := at + LONGEST_WAIT)).failed == 0:
        attempts += report.retrying
    assert restarted + RETRY_FOR <= at < restarted + RETRY_FOR + 2 * LONGEST_WAIT
    assert attempts >= FEWEST_ATTEMPTS


def test_a_crash_after_handing_on_resends_the_identical_mail_at_most(store_url, sink):
    enqueue(1)
    # A worker claims the mail and hands it to the relay, then dies before recording it.
    [item] = queries.claim_outbox(NOW, NOW + LEASE, 10)
    asyncio.run(relay(sink).send(item))
    assert deliver(relay(sink), NOW + LEASE - timedelta(seconds=1)) == Report()
    # When its lease runs out the mail is due again, and goes again: same bytes, same ID.
    assert deliver(relay(sink), NOW + LEASE) == Report(sent=1)
    first, second = sink.deliveries
    assert first.data == second.data
    assert deliver(relay(sink), NOW + 2 * LEASE) == Report()


def test_maildir_writes_one_file_per_mail_and_a_retry_replaces_it(store_url, tmp_path):
    enqueue(2, recipients=("jane@acme.example", "bob@bakery.example"))
    maildir = Maildir(tmp_path / "outbox")
    [item, _] = queries.claim_outbox(NOW, NOW + LEASE, 10)
    maildir.write(item)  # the crash case: written, never recorded
    assert deliver(maildir, NOW + LEASE) == Report(sent=2)
    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 2
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["Return-Path"] == "<refer@intro.example.org>"
    assert message.get_all("Delivered-To") == ["jane@acme.example", "bob@bakery.example"]
    assert message["Message-ID"] in ("<m0@intro.example.org>", "<m1@intro.example.org>")


def test_maildir_keeps_each_envelope_of_one_mail_and_a_retry_replaces_only_its_own(
    store_url, tmp_path
):
    raw = b"Message-ID: <intro@intro.example.org>\nSubject: Introduction\n\nHi\n"
    envelopes = [
        OutgoingMail("<intro@intro.example.org>", "introduction", f"b-{n}@x", (to,), raw)
        for n, to in enumerate(("jane@acme.example", "bob@bakery.example"))
    ]
    with db.transaction():
        queries.enqueue(envelopes, NOW)
    maildir = Maildir(tmp_path / "outbox")
    [to_jane, _] = queries.claim_outbox(NOW, NOW + LEASE, 10)
    maildir.write(to_jane)  # written, never recorded: Jane's envelope goes again
    assert deliver(maildir, NOW + LEASE) == Report(sent=2)
    files = sorted((tmp_path / "outbox" / "new").iterdir())
    delivered = [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
    ]
    assert sorted(m["Delivered-To"] for m in delivered) == [
        "bob@bakery.example",
        "jane@acme.example",
    ]
    assert {m["Message-ID"] for m in delivered} == {"<intro@intro.example.org>"}


# ------------------------------------------------------------------ kept connections, in parallel


@pytest.fixture
def counting_sink() -> Iterator[Sink]:
    with relay_sink(PacedHandler(pause=0.05)) as running:
        yield running


def test_mails_share_kept_connections_and_go_several_at_once(store_url, counting_sink):
    enqueue(24)
    counting_sink.answer_next("550 5.1.1 No such user")  # a refusal keeps its connection
    transport = SmtpRelay("127.0.0.1", counting_sink.port, timeout=10, connections=3)
    outbox = Outbox(transport, clock=FixedClock(NOW), connections=3)

    async def run() -> Report:
        try:
            return await outbox.deliver_due()
        finally:
            await transport.close()

    assert asyncio.run(run()) == Report(sent=23, failed=1)
    handler = counting_sink.handler
    assert len(counting_sink.deliveries) == 23
    assert len(set(handler.peers)) <= 3  # 24 mails, at most one connection each at a time
    assert handler.most_at_once >= 2
    assert queries.outbox_counts() == {"sent": 23, "failed": 1}


def test_mail_claimed_ahead_goes_once_and_nothing_is_left_behind(store_url, sink):
    """The next claim is made while mails of the one before still go: across claims,
    every mail reaches the relay once and is recorded sent."""
    message_ids = enqueue(130)  # three claims of 50 with two connections
    transport = SmtpRelay("127.0.0.1", sink.port, timeout=10, connections=2)
    outbox = Outbox(transport, clock=FixedClock(NOW), connections=2)

    async def run() -> Report:
        try:
            return await outbox.deliver_due()
        finally:
            await transport.close()

    assert asyncio.run(run()) == Report(sent=130)
    got = [email.message_from_bytes(d.data)["Message-ID"] for d in sink.deliveries]
    assert sorted(got) == sorted(message_ids)
    assert queries.outbox_counts() == {"sent": 130}
    assert queries.claim_outbox(NOW + 2 * LEASE, NOW + 3 * LEASE, 10) == []


def test_a_run_that_ends_at_its_limit_says_more_is_due(store_url, sink):
    enqueue(120)  # claims of 50 with one connection
    transport = relay(sink)
    outbox = Outbox(transport, clock=FixedClock(NOW))

    async def two_runs() -> tuple[Report, Report]:
        try:
            return await outbox.deliver_due(batches=2), await outbox.deliver_due(batches=2)
        finally:
            await transport.close()

    assert asyncio.run(two_runs()) == (Report(sent=100, more=True), Report(sent=20))


def test_serve_sends_a_backlog_longer_than_one_run_without_waiting_for_a_kick(
    tmp_path, store_url, sink
):
    """As after the relay was away for hours: a run is bounded (a stop waits for one run,
    not the backlog), and the rest goes at once, not at the next scheduled kick."""
    # One connection: claims of 50, twenty to a run, so 1,050 mails take two runs.
    settings = make_settings(tmp_path, store_url, sink.port).replace("outbound", connections=1)
    service = InProcess(settings)
    try:
        service.deliver()  # the run its start kicked is over: it cannot take the backlog
        enqueue(1050)
        service.deliver()  # one kick, and whatever runs that one leads to
    finally:
        service.stop()
    assert len(sink.deliveries) == 1050
    assert queries.outbox_counts() == {"sent": 1050}


def test_sending_goes_on_while_another_writer_holds_the_store(store_url, counting_sink):
    """A connection takes the next mail once the relay took one: recording waits for the
    store, sending does not, and every mail is recorded sent once the store is free."""
    if db.is_postgresql():
        pytest.skip("recording on PostgreSQL waits for no other writer")
    message_ids = enqueue(20)
    transport = SmtpRelay("127.0.0.1", counting_sink.port, timeout=10, connections=2)
    outbox = Outbox(transport, clock=FixedClock(NOW), connections=2)
    result: list[Report] = []
    worker = threading.Thread(target=lambda: result.append(deliver_with(outbox)))
    worker.start()
    writer = sqlite3.connect(store_url.removeprefix("sqlite:///"), timeout=30)
    try:
        eventually(lambda: counting_sink.deliveries, "a first mail at the relay")
        writer.execute("BEGIN IMMEDIATE")  # as intake holds it, here for as long as we like
        got = len(counting_sink.deliveries)
        # More than the two connections can carry, so more than one mail each went on.
        eventually(lambda: len(counting_sink.deliveries) >= got + 4, "mail sent meanwhile")
    finally:
        writer.rollback()
        writer.close()
        worker.join(60)
    assert result == [Report(sent=20)]
    got = [email.message_from_bytes(d.data)["Message-ID"] for d in counting_sink.deliveries]
    assert sorted(got) == sorted(message_ids)
    assert queries.outbox_counts() == {"sent": 20}


def test_a_hanging_relay_is_given_up_on_while_the_mail_is_still_claimed(store_url):
    enqueue(1)
    with relay_sink(PacedHandler(pause=30)) as hanging:
        assert deliver(SmtpRelay("127.0.0.1", hanging.port, timeout=1)) == Report(retrying=1)
    [row] = OutboxMail.select()
    assert row.claimed_by == ""
    assert "relay unreachable" in row.last_error
    assert LEASE.total_seconds() > SEND_LIMIT_SECONDS  # the default holds the same promise


class MovingClock:
    """A clock the test moves, shared by the worker's thread and the test's."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.lock = threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            return self.at

    def advance(self, by: timedelta) -> None:
        with self.lock:
            self.at += by


def test_a_heartbeat_keeps_the_claim_while_a_slow_send_outlasts_the_lease(store_url):
    [message_id] = enqueue(1)
    handler = PacedHandler(pause=1.5)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    clock = MovingClock(NOW)
    transport = SmtpRelay("127.0.0.1", port, timeout=10)
    outbox = Outbox(transport, clock=clock, holder="here/1/1", heartbeat_seconds=0.05)
    result: list[Report] = []
    worker = threading.Thread(target=lambda: result.append(deliver_with(outbox)))
    try:
        worker.start()
        assert handler.data_started.wait(10)
        clock.advance(3 * LEASE)  # the first lease is long over
        eventually(lambda: due_at(message_id) > clock.now(), "the claim to be renewed")
        # Another instance asking now finds nothing to take.
        assert queries.claim_outbox(clock.now(), clock.now() + LEASE, 10, "there/2/2") == []
        worker.join(20)
    finally:
        controller.stop()
    assert result == [Report(sent=1)]
    assert len(handler.deliveries) == 1


def deliver_with(outbox: Outbox) -> Report:
    async def run() -> Report:
        try:
            return await outbox.deliver_due()
        finally:
            await outbox.transport.close()

    try:
        return asyncio.run(run())
    finally:
        db.close()  # this thread's connection


def due_at(message_id: str) -> datetime:
    return OutboxMail.get(OutboxMail.message_id == message_id).due_at


# ------------------------------------------------------------------ claims of ended processes


def ended_process() -> Holder:
    """A holder on this host whose process has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = holder.start_of(child.pid)
    child.wait(10)
    return Holder(this_process().host, child.pid, started or "1")


def test_claims_of_an_ended_process_on_this_host_go_back_at_once(store_url, sink):
    enqueue(3)
    gone, alive = ended_process(), this_process()
    elsewhere = Holder("another-host.example", os.getpid(), "1")
    for who in (gone, alive, elsewhere):
        assert len(queries.claim_outbox(NOW, NOW + LEASE, 1, str(who))) == 1
    outbox = Outbox(relay(sink), clock=FixedClock(NOW + timedelta(seconds=1)))
    assert asyncio.run(outbox.release_dead()) == 1
    # Only the ended process's mail is due now; the others wait for their holders or leases.
    assert deliver(relay(sink), NOW + timedelta(seconds=1)) == Report(sent=1)
    assert sorted(queries.claim_holders()) == sorted([str(alive), str(elsewhere)])


def test_a_reused_pid_is_not_taken_for_the_process_that_claimed():
    me = this_process()
    assert not holder.is_gone(me)
    assert holder.is_gone(Holder(me.host, me.pid, "started-at-another-time"))
    assert holder.parse(str(me)) == me
    assert holder.parse("nonsense") is None
