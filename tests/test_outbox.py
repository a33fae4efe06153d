"""The outbox against a real SMTP sink and a real maildir: retries, failures, crashes."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta

from service.delivery.outbox import LEASE, RETRY_FOR, Report, backoff, deliver_due
from service.delivery.transports import Maildir, SmtpRelay
from store import db, queries
from store.records import OutgoingMail
from tests.conftest import free_port

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
    assert [backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4, 7, 8, 20)] == [
        1,
        2,
        4,
        8,
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


def test_an_unreachable_relay_is_a_temporary_failure_until_the_queue_lifetime(store_url):
    enqueue(1)
    gone = SmtpRelay("127.0.0.1", free_port(), timeout=2)
    assert deliver(gone) == Report(retrying=1)
    assert deliver(gone, NOW + RETRY_FOR) == Report(failed=1)


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
