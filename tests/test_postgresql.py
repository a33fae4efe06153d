"""The store on PostgreSQL when the server drops connections, and schema steps beside writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import peewee
import psycopg2
import pytest

from store import db, queries
from store.records import NewInbound
from tests.conftest import eventually
from tests.postgres import fresh_database, needs_postgresql, terminate_others

pytestmark = needs_postgresql

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_database()


@pytest.fixture
def other(pg_url: str) -> Iterator[psycopg2.extensions.connection]:
    """A second client of the same database, as another instance or an operator is."""
    conn = psycopg2.connect(pg_url)
    yield conn
    conn.rollback()
    conn.close()


def inbound(key: str) -> NewInbound:
    return NewInbound(
        key,
        f"<{key}@x.example>",
        "ada@referrer.example",
        ("refer@intro.example.org",),
        "smtp",
        b"Subject: x\n\nbody\n",
        NOW,
    )


def test_after_the_backend_is_terminated_the_next_transaction_succeeds(pg_url, other):
    before = queries.store_inbound(inbound("before"))
    assert terminate_others(other) >= 1
    with db.transaction():
        after = queries.store_inbound(inbound("after"))
    kept = [queries.inbound_by_id(i).message_id for i in (before, after)]
    assert kept == ["<before@x.example>", "<after@x.example>"]


def test_after_the_backend_is_terminated_a_read_outside_a_transaction_succeeds(pg_url, other):
    kept = queries.store_inbound(inbound("kept"))
    assert terminate_others(other) >= 1
    assert queries.inbound_by_id(kept).message_id == "<kept@x.example>"


def test_a_transaction_cut_off_midway_fails_and_the_next_one_succeeds(pg_url, other):
    """The work of the cut-off transaction is gone; it is never silently redone."""
    with pytest.raises((peewee.OperationalError, peewee.InterfaceError)), db.transaction():
        queries.store_inbound(inbound("cut"))
        terminate_others(other)
        queries.store_inbound(inbound("never"))
    with db.transaction():
        queries.store_inbound(inbound("next"))
    kept = [r.message_id for r in map(queries.inbound_by_id, range(1, 10)) if r is not None]
    assert kept == ["<next@x.example>"]


def binding(url: str, errors: list[BaseException]) -> threading.Thread:
    """Another instance starting: `bind` in a thread of its own, its errors kept."""

    def start() -> None:
        try:
            db.bind(url)
        except BaseException as exc:  # pragma: no cover - reported by the test
            errors.append(exc)
        finally:
            db.close()

    thread = threading.Thread(target=start)
    thread.start()
    return thread


def test_an_up_to_date_store_starts_while_its_tables_are_locked(pg_url, other):
    """A second instance reads the catalog only: it takes no lock on a busy table."""
    with other.cursor() as cur:
        cur.execute("LOCK TABLE inbound_message, outbox_mail, referral IN ACCESS EXCLUSIVE MODE")
    errors: list[BaseException] = []
    thread = binding(pg_url, errors)
    thread.join(30)
    alive = thread.is_alive()
    other.rollback()
    thread.join(30)
    assert not alive, "bind waited on a table lock"
    assert errors == []


def test_a_missing_index_is_made_beside_a_writer_without_a_deadlock(pg_url, other):
    """The writer holds one hot table and then wants the other; the old single-transaction
    schema step held that other one's lock while waiting, and PostgreSQL killed one side."""
    db.database.execute_sql("DROP INDEX inbound_message_received_at")
    db.database.execute_sql("DROP INDEX outbox_mail_due_at")
    with other.cursor() as cur:
        cur.execute("UPDATE outbox_mail SET attempts = attempts WHERE false")
    errors: list[BaseException] = []
    thread = binding(pg_url, errors)

    def waiting_for_outbox() -> bool:
        with other.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE c.relname = 'outbox_mail' AND NOT l.granted"
            )
            return cur.fetchone()[0] > 0

    eventually(waiting_for_outbox, "the schema step to wait for the outbox table", 20)
    with other.cursor() as cur:
        cur.execute("UPDATE inbound_message SET note = note WHERE false")
    other.commit()
    thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    present = {
        i.name for t in ("inbound_message", "outbox_mail") for i in db.database.get_indexes(t)
    }
    assert {"inbound_message_received_at", "outbox_mail_due_at"} <= present


def test_schema_steps_give_up_with_a_clear_error_when_a_table_stays_busy(
    pg_url, other, monkeypatch
):
    from store import schema

    monkeypatch.setattr(schema, "ATTEMPTS", 2)
    monkeypatch.setattr(schema, "PAUSE_SECONDS", 0.1)
    db.database.execute_sql("DROP INDEX inbound_message_received_at")
    with other.cursor() as cur:
        cur.execute("UPDATE inbound_message SET note = note WHERE false")
    with pytest.raises(db.DatabaseUnavailable, match="tables stayed busy"):
        db.bind(pg_url)
