"""Steps several test modules take: send a request over SMTP or hand it to intake, find the
links and mails it produced."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import smtplib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import peewee

from service.clock import FixedClock
from service.intake import pipeline, receiving
from service.model import Channel
from service.writing.compose import Templates, templates_root
from service.writing.context import Context, make_context
from store import db, queries
from store.models import InboundMessage
from tests.conftest import REFERRER, Delivery, Sink, fixture_bytes, wire_fixture

# One client for every test: a bare httpx.get() builds a new TLS context each time (~40 ms).
web = httpx.Client(timeout=10)

RCPT = "refer@intro.example.org"
PROVIDER = "jane@acme.example"
PROSPECT = "bob@bakery.example"


def send(port: int, raw: bytes, sender: str = REFERRER) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(sender, [RCPT], raw)


def request_referral(port: int, sink: Sink, fixture="request_thunderbird_labelled_lines.eml"):
    """Send the standard request; return the consent link each party received, by address.

    Which mails ask is read in their text, not their bytes: a DKIM signature's base64 spells
    "/c/" by chance, in about one receipt in 700."""
    before = len(sink.deliveries)
    send(port, wire_fixture(fixture))
    deliveries = sink.wait_for(before + 3)[before:]
    return {d.rcpt_tos[0]: consent_link(d) for d in deliveries if "/c/" in text_of(d)}


def parse(delivery: Delivery) -> EmailMessage:
    message = email.message_from_bytes(delivery.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(delivery: Delivery) -> str:
    return parse(delivery).get_body(("plain",)).get_content()


# Our own links, on the loopback address every test serves from; anyone else's link (a
# booking page, a company site) stays in, since it may be what identifies someone.
OUR_LINKS = re.compile(r"http://127\.0\.0\.1[^\s\"<>]*")
# Our Message-IDs and referral references: random, so they spell a short name now and then.
OUR_MESSAGE_ID = r"<[\w-]{24}@intro\.example\.org>"
REFERENCE = r"\bR-[0-9A-Z]{4}-[0-9A-Z]{4}\b"


def words_of(delivery: Delivery) -> str:
    """The plain text without our links: a link's random token may spell any short name."""
    return OUR_LINKS.sub("", text_of(delivery))


def consent_link(delivery: Delivery) -> str:
    match = re.search(r"(http://\S+/c/[A-Za-z0-9_.\-]+)\?answer=yes", text_of(delivery))
    assert match, "a consent mail without a Yes link"
    return match.group(1)


# ------------------------------------------------------------------ intake, without SMTP

# The moment every intake test lives at; the `ctx` fixture's clock says the same.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def arrive(name: str, envelope_from: str = REFERRER) -> int:
    """A fixture stored as if it had just been accepted over SMTP; its inbound id."""
    received = receiving.receive(
        fixture_bytes(name), envelope_from, ["refer@intro.example.org"], Channel.SMTP, NOW
    )
    assert received.inbound_id is not None
    return received.inbound_id


def outcome(ctx: Context, inbound_id: int) -> tuple[str, str]:
    """Process what is stored; (state, note) of that one message."""
    pipeline.process_pending(ctx, NOW)
    record = queries.inbound_by_id(inbound_id)
    assert record is not None
    return record.state, record.note


def outbox_mails() -> list[EmailMessage]:
    """Everything waiting in the outbox, parsed as its recipient's client will."""
    items = queries.claim_outbox(NOW, NOW, 100)
    return [email.message_from_bytes(i.raw, policy=email.policy.default) for i in items]


# ------------------------------------------------------------------ several instances


def at_once(job: Callable[[], int], instances: int = 2) -> list[int]:
    """Run `job` in several threads released together, as several instances would; what
    each returned. Each thread has its own connection, closed after."""
    barrier = threading.Barrier(instances)
    results: list[int] = []
    errors: list[BaseException] = []

    def instance() -> None:
        try:
            barrier.wait(10)
            results.append(job())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=instance) for _ in range(instances)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return results


def assert_due_from_index(kind: str, index: str, now: datetime) -> None:
    """The store answers a "what is due" question (a key of queries.DUE) from `index`."""
    sql, params = queries.DUE[kind](now).sql()
    with db.transaction():
        if db.is_postgresql():
            # An empty table is cheapest to scan; ask whether the index can answer at all.
            db.database.execute_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(r[0] for r in db.database.execute_sql("EXPLAIN " + sql, params))
            assert f"Index Scan using {index}" in plan
        else:
            rows = db.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            plan = " ".join(r[-1] for r in rows)
            # SEARCH: a range of the index; SCAN would read the table (or a whole index).
            assert f"SEARCH t1 USING INDEX {index}" in plan
            assert "SCAN" not in plan


def syncs() -> bool:
    """Whether a commit on this connection now waits for the disk."""
    if db.is_postgresql():
        return db.database.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"
    return db.database.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # FULL


Commit = tuple[frozenset[tuple[str, str]], bool]


def watch_commits(monkeypatch) -> list[Commit]:
    """Each commit on this thread's store connection from now on, as it happens: the writes
    it holds ("INSERT", table), and whether it waits for the disk."""
    real = db.database.obj
    pending: set[tuple[str, str]] = set()
    commits: list[Commit] = []
    execute_sql, commit, rollback = real.execute_sql, real.commit, real.rollback

    def traced(sql, params=None):
        cursor = execute_sql(sql, params)
        verb = sql.split(" ", 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and '"' in sql:
            write = (verb, sql.split('"')[1])
            if real.in_transaction():
                pending.add(write)
            else:  # a statement on its own commits by itself
                commits.append((frozenset({write}), syncs()))
        return cursor

    def committing():
        commits.append((frozenset(pending), syncs()))
        pending.clear()
        commit()

    def rolling_back():
        pending.clear()
        rollback()

    monkeypatch.setattr(real, "execute_sql", traced)
    monkeypatch.setattr(real, "commit", committing)
    monkeypatch.setattr(real, "rollback", rolling_back)
    return commits


def inbound_counts() -> dict[str, int]:
    """Stored inbound messages by state."""
    rows = InboundMessage.select(InboundMessage.state, peewee.fn.COUNT(InboundMessage.id)).group_by(
        InboundMessage.state
    )
    return {state: count for state, count in rows.tuples()}


def breaking_one_template(ctx: Context, folder: Path, path: str, now: datetime) -> Context:
    """`ctx` on a stopped clock at `now`, its templates a copy in `folder` where the one at
    `path` ("de/mail/survey.txt") asks for a value no letter gives: rendering it fails."""
    root = folder / "templates"
    shutil.copytree(templates_root(), root)
    (root / path).write_text("{{ no_such_value }}\n")
    return make_context(ctx.settings, FixedClock(now), Templates(root))
