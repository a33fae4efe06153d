"""Messages that arrive together are stored in one commit: each session still hears 250 only
once its own message is durable, a repeat is kept once even inside a group, and a group that
fails tells every one of its senders so."""

from __future__ import annotations

import contextlib
import smtplib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from service.edge.group_commit import GroupCommit
from service.intake import receiving
from service.model import Channel
from store import db, queries
from store.models import InboundMessage
from store.records import NewInbound
from tests.conftest import REFERRER, InProcess, eventually, make_settings, wire_fixture
from tests.helpers import RCPT, inbound_counts

THUNDERBIRD_ID = b"<8f3c2a1e-7b4d-4c1a-9e2f-1a2b3c4d5e6f@referrer.example>"


def request(tag: str) -> bytes:
    """A whole request as Thunderbird writes it, with its own Message-ID and two people."""
    return (
        wire_fixture("request_thunderbird_labelled_lines.eml")
        .replace(THUNDERBIRD_ID, f"<{tag}@referrer.example>".encode())
        .replace(b"jane@acme.example", f"jane-{tag}@acme.example".encode())
        .replace(b"bob@bakery.example", f"bob-{tag}@bakery.example".encode())
    )


def stored_message_ids() -> list[str]:
    return sorted(m for (m,) in InboundMessage.select(InboundMessage.message_id).tuples())


class Sender(threading.Thread):
    """One SMTP session on a kept connection, sending its messages in order; every answer
    to DATA is kept, a refusal as much as a 250."""

    def __init__(self, port: int, messages: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.port, self.messages = port, messages
        self.answers: list[tuple[int, bytes]] = []

    def run(self) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as smtp:
            smtp.ehlo()
            for raw in self.messages:
                smtp.mail(REFERRER)
                smtp.rcpt(RCPT)
                try:
                    self.answers.append(smtp.data(raw))
                except smtplib.SMTPDataError as exc:
                    self.answers.append((exc.smtp_code, exc.smtp_error))

    def answered(self) -> list[tuple[int, bytes]]:
        self.join(60)
        assert not self.is_alive(), "a session got no answer"
        return self.answers


def group_of(service: InProcess) -> GroupCommit:
    group = service.service.group
    assert group is not None
    return group


@contextlib.contextmanager
def writes_held() -> Iterator[None]:
    """Hold back every write to the inbound table until the block ends, as a long
    transaction of another writer would: the service's groups wait, and new mail gathers."""
    with db.transaction():
        if db.is_postgresql():
            db.database.execute_sql("LOCK TABLE inbound_message IN EXCLUSIVE MODE")
        # On SQLite the transaction's BEGIN IMMEDIATE already holds the only write lock.
        yield


def gathered(service: InProcess, port: int, messages: list[bytes]) -> list[Sender]:
    """Sessions, one per message, whose messages all wait in one group behind held writes.

    Every writer the service has is first made to wait with a message of its own, so those
    sent next can only go out together, in the group the first free writer takes."""
    group = group_of(service)
    senders = []
    for n in range(group.writers):
        senders.append(Sender(port, [request(f"ahead-{n}")]))
        senders[-1].start()
        eventually(lambda n=n: group.writing == n + 1 and not group.waiting, "a writer held back")
    for raw in messages:
        senders.append(Sender(port, [raw]))
        senders[-1].start()
    eventually(lambda: group.waiting == len(messages), "every message gathered")
    return senders


def test_sixteen_concurrent_sessions_all_hear_250_and_every_message_is_stored_once(running):
    port = running.service.smtp_port
    sessions = [Sender(port, [request(f"s{s}-m{m}") for m in range(6)]) for s in range(16)]
    for session in sessions:
        session.start()
    answers = [a for session in sessions for a in session.answered()]

    assert {code for code, _ in answers} == {250}
    queued = [text for _, text in answers]
    assert all(t.startswith(b"2.0.0 OK: queued as ") for t in queued)
    assert len(set(queued)) == 16 * 6, "each message has its own inbound id"
    sent = sorted(f"<s{s}-m{m}@referrer.example>" for s in range(16) for m in range(6))
    assert stored_message_ids() == sent


def test_the_same_message_twice_in_one_group_is_accepted_twice_and_kept_once(running):
    port = running.service.smtp_port
    twice = request("twice")
    with writes_held():
        senders = gathered(running, port, [twice, twice, request("other")])
    answers = [s.answered()[0] for s in senders]

    ahead, (first, second, other) = answers[:-3], answers[-3:]
    assert all(a[1].startswith(b"2.0.0 OK: queued as ") for a in ahead)
    assert sorted([first, second])[0] == (250, b"2.0.0 OK: already received")
    assert sorted([first, second])[1][1].startswith(b"2.0.0 OK: queued as ")
    assert other[1].startswith(b"2.0.0 OK: queued as ")
    assert stored_message_ids().count("<twice@referrer.example>") == 1
    assert sum(inbound_counts().values()) == len(answers) - 1


def test_a_group_whose_store_fails_answers_451_to_each_and_keeps_what_came_before(running):
    port = running.service.smtp_port
    before = Sender(port, [request("before")])
    before.start()
    assert before.answered() == [(250, before.answers[0][1])]
    with writes_held():
        senders = gathered(running, port, [request(f"lost-{n}") for n in range(4)])
        # The group meets a store that lost its table, as an operator's mistake would do.
        db.database.execute_sql("ALTER TABLE inbound_message RENAME TO inbound_gone")
    answers = [s.answered()[0] for s in senders]
    with db.transaction():
        db.database.execute_sql("ALTER TABLE inbound_gone RENAME TO inbound_message")

    generic = (451, b"4.3.0 Temporary local problem, please try again later")
    assert answers == [generic] * len(answers)
    assert stored_message_ids() == ["<before@referrer.example>"]


def test_a_group_too_large_for_a_full_store_answers_452_to_each_and_small_mail_still_fits(
    tmp_path, sqlite_url, sink
):
    # database.quota_mb works as a full disk would: SQLite's page limit, one megabyte here.
    settings = make_settings(tmp_path, sqlite_url, sink.port).replace("database", quota_mb=1)
    service = InProcess(settings)
    try:
        port = service.service.smtp_port
        # Each with a long need, as when someone pastes a whole brief: four do not fit.
        padding = b"We also keep the books for two sister shops, in detail.\r\n" * 5000
        large = [request(f"large-{n}") + padding for n in range(4)]
        with writes_held():
            senders = gathered(service, port, large)
        answers = [s.answered()[0] for s in senders]
        small = Sender(port, [request("small")])
        small.start()
        after = small.answered()
    finally:
        service.stop()

    full = (452, b"4.3.1 Insufficient system storage, please try again later")
    assert answers[-4:] == [full] * 4
    assert after[0][1].startswith(b"2.0.0 OK: queued as ")
    assert not any(m.startswith("<large-") for m in stored_message_ids())


def test_a_message_the_store_cannot_take_fails_alone_in_its_group(running):
    if not db.is_postgresql():
        pytest.skip("SQLite keeps a NUL in text; PostgreSQL cannot")
    port = running.service.smtp_port
    # A Message-ID with a NUL byte: PostgreSQL text cannot hold it, so its insert fails.
    broken = request("broken").replace(b"<broken@", b"<bro\x00ken@")
    with writes_held():
        senders = gathered(running, port, [request("good-1"), broken, request("good-2")])
    answers = [s.answered()[0] for s in senders]

    *good, (broken_code, _), last = answers
    assert broken_code == 451
    assert all(text.startswith(b"2.0.0 OK: queued as ") for _, text in [*good, last])
    assert "<good-1@referrer.example>" in stored_message_ids()
    assert "<good-2@referrer.example>" in stored_message_ids()
    assert len(stored_message_ids()) == len(answers) - 1


@pytest.mark.parametrize("returning", [True, False], ids=["insert-returning", "read-then-insert"])
def test_a_group_keeps_each_message_once_with_either_way_of_inserting(
    store_url, monkeypatch, returning
):
    """SQLite before 3.35 has no INSERT … RETURNING: it reads the keys, then inserts."""
    if db.is_postgresql() and not returning:
        pytest.skip("PostgreSQL always inserts with RETURNING")
    monkeypatch.setattr(queries, "SQLITE_RETURNING", returning)
    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def row(tag: str) -> NewInbound:
        raw = request(tag)
        headers = receiving.headers_of(raw)
        return receiving.new_inbound(raw, REFERRER, (RCPT,), Channel.SMTP, at, headers)

    (before,) = queries.store_inbound_together([row("before")])
    ids = queries.store_inbound_together([row("a"), row("before"), row("b"), row("a")])

    assert before is not None
    first, again, second, twice = ids
    assert first is not None and second is not None and len({before, first, second}) == 3
    assert again is None and twice is None, "stored before, or earlier in the group: kept once"
    stored = {
        m: i
        for i, m in InboundMessage.select(InboundMessage.id, InboundMessage.message_id).tuples()
    }
    assert stored == {
        "<before@referrer.example>": before,
        "<a@referrer.example>": first,
        "<b@referrer.example>": second,
    }
