"""Retention on both stores, as `[privacy]` promises it: mail bodies go `keep_mail_days` after
their referral ended (or after they were handled, for mail that opened none), people go
`keep_people_days` after, and nothing still needed goes at all: not a mail waiting to be
sent, not a message intake has yet to read, not a referral's figures."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.clock import FixedClock
from service.intake import pipeline
from service.model import Channel, InboundState, OutboxState, State
from service.referral import deadlines, erasure
from service.writing.context import Context, make_context
from store import db, queries, retention, schema
from store import erasure as erasure_store
from store.models import ALL_MODELS, InboundMessage, OutboxMail, Party, Referral, Retention
from store.records import NewInbound, NewParty, NewReferral, OutgoingMail
from tests.conftest import make_settings
from tests.helpers import NOW, PROSPECT, PROVIDER, arrive

DAY = timedelta(days=1)
KEEP_MAIL = timedelta(days=30)
KEEP_PEOPLE = timedelta(days=730)
REQUEST = "request_thunderbird_labelled_lines.eml"
STRANGER = "request_from_stranger.eml"


def context(tmp_path: Path, url: str, **timing: float) -> Context:
    settings = make_settings(tmp_path, url)
    if timing:
        settings = settings.replace("timing", **timing)
    return make_context(settings, FixedClock(NOW))


def deliver(now: datetime) -> int:
    """Record everything due as handed to the relay, as the outbox does once it has."""
    items = queries.claim_outbox(now, now + timedelta(minutes=5), 1000)
    queries.mark_sent_many([(item.id, "") for item in items], now)
    return len(items)


def let_go_all(ctx: Context, now: datetime, batch: int = erasure.BATCH) -> tuple[int, int]:
    """Ticks at `now` until retention has nothing left: (what it let go of, ticks it took)."""
    total = 0
    for ticks in range(1, 1000):
        swept = erasure.let_go(ctx, now, batch)
        total += swept.let_go
        if not swept:
            return total, ticks
    raise AssertionError("retention never finished")


def held(model: type[InboundMessage] | type[OutboxMail]) -> set[int]:
    """Ids of rows of `model` that still hold a body."""
    return {r.id for r in model.select(model.id, model.raw) if r.raw}


def outbox_of(referral_id: int) -> dict[int, tuple[str, bool]]:
    rows = OutboxMail.select().where(OutboxMail.referral == referral_id)
    return {r.id: (r.state, bool(r.raw)) for r in rows}


def the_referral() -> Referral:
    [referral] = Referral.select()
    return referral


def named(referral_id: int) -> list[str]:
    return [p.email for p in Party.select().where(Party.referral == referral_id) if p.name]


# ------------------------------------------------------------------ a referral's mail


@pytest.fixture
def long_asking(tmp_path: Path, store_url: str) -> Context:
    """The service on a store whose questions stay open 60 days, so retention meets a
    referral's mail long before the referral ends."""
    return context(tmp_path, store_url, consent_expiry_days=60, reminder_after_days=50)


def test_a_referrals_mail_goes_keep_mail_days_after_it_ended_and_not_before(long_asking):
    ctx = long_asking
    request = arrive(REQUEST)
    pipeline.process_pending(ctx, NOW)
    assert deliver(NOW) == 3  # the receipt and the two questions
    referral = the_referral()

    # Older than the retention period, but the referral still asks: everything stays, set
    # aside to wait for it (a tick, then one that finds nothing).
    assert let_go_all(ctx, NOW + 40 * DAY) == (0, 2)
    assert held(InboundMessage) == {request}
    assert all(has_body for _, has_body in outbox_of(referral.id).values())

    ended = NOW + 61 * DAY
    assert deadlines.expire_due(ctx, ended) == 1
    deliver(ended)  # each is told it will not go ahead
    mails = outbox_of(referral.id)
    assert len(mails) > 3 and all(state == OutboxState.SENT for state, _ in mails.values())

    assert let_go_all(ctx, ended + KEEP_MAIL - timedelta(minutes=1)) == (0, 1)
    assert held(InboundMessage) == {request}
    assert len(held(OutboxMail)) == len(mails)

    assert let_go_all(ctx, ended + KEEP_MAIL + timedelta(minutes=1)) == (1 + len(mails), 2)
    assert held(InboundMessage) == set() and held(OutboxMail) == set()
    # Who it was about stays until keep_people_days: only the mail went.
    assert sorted(named(referral.id)) == sorted([PROVIDER, PROSPECT])


def test_mail_waiting_in_the_outbox_keeps_its_body_until_it_went(ctx):
    arrive(REQUEST)
    pipeline.process_pending(ctx, NOW)
    deliver(NOW)
    ended = NOW + 15 * DAY
    deadlines.expire_due(ctx, ended)  # its notices wait: the relay is away
    waiting = {i for i, (state, _) in outbox_of(the_referral().id).items() if state == "pending"}
    assert waiting

    let_go_all(ctx, ended + KEEP_MAIL + DAY)
    assert held(OutboxMail) == waiting
    let_go_all(ctx, ended + 10 * KEEP_MAIL)
    assert held(OutboxMail) == waiting

    deliver(ended + 10 * KEEP_MAIL)
    let_go_all(ctx, ended + 10 * KEEP_MAIL)
    assert held(OutboxMail) == set()


def beside_another_instance(ctx: Context, now: datetime, step: Callable[[], object]) -> None:
    """Run `step` in a transaction of this instance while another runs retention at `now`:
    the other reads what this one is changing before it commits, and writes after."""
    other: dict[str, object] = {}
    started = threading.Event()

    def other_instance() -> None:
        try:
            [(other["pid"],)] = db.database.execute_sql("SELECT pg_backend_pid()").fetchall()
            started.set()
            erasure.let_go(ctx, now)
        except BaseException as exc:  # handed to the test's own thread below
            other["error"] = exc
        finally:
            started.set()
            db.database.close()

    thread = threading.Thread(target=other_instance)
    blocked = False
    with db.transaction():
        step()
        thread.start()
        assert started.wait(10)
        # The other waits on rows this one wrote: it read them as they were before.
        for _ in range(500):
            [(blockers,)] = db.database.execute_sql(
                "SELECT cardinality(pg_blocking_pids(%s))", (other.get("pid", 0),)
            ).fetchall()
            if blockers or not thread.is_alive():
                blocked = bool(blockers)
                break
            time.sleep(0.02)
    thread.join(10)
    assert not thread.is_alive() and "error" not in other, other.get("error")
    assert blocked, "the other instance never waited on this one's rows"


def marks_of(ids: set[int]) -> set[str | None]:
    return {r.retention for r in OutboxMail.select().where(OutboxMail.id.in_(list(ids)))}


def test_two_instances_letting_go_at_once_never_keep_a_mail_after_it_went(long_asking):
    """Two `serve` on one PostgreSQL both run retention. One lets an ended referral's mail
    go, marking a notice still waiting to go once sent; the other read that notice as unseen
    before the first committed and marks it to wait for the referral, after. The notice must
    still lose its body once it went: the second leaves the first's mark as it found it."""
    if not db.is_postgresql():
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no interleaving")
    ctx = long_asking
    arrive(REQUEST)
    pipeline.process_pending(ctx, NOW)
    deliver(NOW)
    # Retention has seen the request and the first mails, set aside to wait for their
    # referral (a tick), then found nothing more (a second): only the notices are unseen below.
    assert let_go_all(ctx, NOW + 40 * DAY) == (0, 2)
    ended = NOW + 61 * DAY
    assert deadlines.expire_due(ctx, ended) == 1  # its notices wait: the relay is away
    waiting = {i for i, (state, _) in outbox_of(the_referral().id).items() if state == "pending"}
    assert waiting
    now = ended + KEEP_MAIL + DAY

    beside_another_instance(
        ctx, now, lambda: retention.let_mail_go(now - KEEP_MAIL, now, erasure.BATCH)
    )
    assert marks_of(waiting) == {Retention.ONCE_SENT}
    deliver(now + DAY)
    let_go_all(ctx, now + DAY)
    assert held(OutboxMail) == set() and held(InboundMessage) == set()


def test_mail_waiting_when_a_person_is_forgotten_goes_once_sent_beside_retention(long_asking):
    """The same with erasure: while one instance forgets the prospect, the other marks the
    question still waiting for the provider, read as unseen before, to wait for the referral.
    It must still lose its body as soon as it went, not when the referral's mail goes."""
    if not db.is_postgresql():
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no interleaving")
    ctx = long_asking
    arrive(REQUEST)
    # Read five days after it came: retention sees the request before the questions.
    pipeline.process_pending(ctx, NOW + 5 * DAY)
    assert let_go_all(ctx, NOW + KEEP_MAIL + 2 * DAY) == (0, 2)  # set aside, then nothing
    referral = the_referral()
    questions = set(outbox_of(referral.id))
    assert questions and marks_of(questions) == {None}  # unsent: the relay is away
    now = NOW + KEEP_MAIL + 6 * DAY

    def forget_the_prospect() -> None:
        ids = [party_id for party_id, _ in erasure_store.parties_of(PROSPECT)]
        erasure_store.erase_parties(ids, now, PROSPECT)

    beside_another_instance(ctx, now, forget_the_prospect)
    waiting = {i for i, (state, _) in outbox_of(referral.id).items() if state == "pending"}
    assert waiting and marks_of(waiting) == {Retention.ONCE_SENT}
    deliver(now)
    let_go_all(ctx, now)
    assert held(OutboxMail) == set() and held(InboundMessage) == set()
    assert Referral.get_by_id(referral.id).mail_let_go_at is None  # it is still open


def test_a_message_put_back_in_line_while_retention_reads_it_keeps_its_body(ctx):
    """An old quarantined message, read by retention as one to let go, is put back in line
    for intake (`quarantine retry`) before retention's update runs: intake will read it,
    so its body must stay. The update asks again, as the row is when it runs."""
    if not db.is_postgresql():
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): no interleaving")
    message = arrive(STRANGER)
    InboundMessage.update(state=InboundState.QUARANTINED).where(
        InboundMessage.id == message
    ).execute()
    now = NOW + KEEP_MAIL + DAY

    beside_another_instance(ctx, now, lambda: queries.requeue_inbound(message))
    assert held(InboundMessage) == {message}
    assert InboundMessage.get_by_id(message).state == InboundState.NEW


def test_a_mail_for_no_referral_goes_once_it_went_and_is_old_enough(ctx):
    late = NOW + KEEP_MAIL + DAY
    queries.enqueue([note(1), note(2)], NOW)
    [first, second] = sorted(held(OutboxMail))
    deliver(NOW)
    queries.enqueue([note(3)], NOW)  # still waiting when it is old enough
    [waiting] = held(OutboxMail) - {first, second}

    assert let_go_all(ctx, late - 2 * DAY) == (0, 1)
    assert let_go_all(ctx, late) == (2, 2)
    assert held(OutboxMail) == {waiting}


def note(n: int) -> OutgoingMail:
    return OutgoingMail(
        f"<note{n}@intro.example.org>",
        "request_refused",
        "bounce@intro.example.org",
        ("ada@referrer.example",),
        b"Subject: not a referral\n\nBob Smith, bob@bakery.example\n",
    )


def test_mail_that_opened_no_referral_goes_once_handled_and_old_enough(ctx):
    stranger = arrive(STRANGER, "mallory@elsewhere.example")
    pipeline.process_pending(ctx, NOW)
    assert queries.inbound_by_id(stranger).state != InboundState.NEW
    unread = queries.store_inbound(
        NewInbound(
            "unread",
            "<unread@x.example>",
            "ada@referrer.example",
            ("refer@intro.example.org",),
            "smtp",
            b"Subject: x\n\nBob\n",
            NOW,
        )
    )
    assert unread is not None

    assert let_go_all(ctx, NOW + KEEP_MAIL - DAY)[0] == 0
    assert held(InboundMessage) == {stranger, unread}
    let_go_all(ctx, NOW + KEEP_MAIL + DAY)
    # Intake has yet to read it: however old, it must not be lost.
    assert held(InboundMessage) == {unread}
    let_go_all(ctx, NOW + 100 * KEEP_MAIL)
    assert held(InboundMessage) == {unread}


# ------------------------------------------------------------------ forgetting


def test_after_forgetting_a_referrals_mail_loses_its_body_as_soon_as_it_went(ctx):
    arrive(REQUEST)
    pipeline.process_pending(ctx, NOW)
    deliver(NOW)
    referral = the_referral()

    later = NOW + timedelta(hours=1)
    erasure.forget(ctx, PROSPECT, Channel.CLI, later)
    mails = outbox_of(referral.id)
    # Sent mail lost its body at once; the letters the withdrawal queued are still to go.
    waiting = {i for i, (state, has_body) in mails.items() if has_body}
    assert waiting and all(mails[i][0] == OutboxState.PENDING for i in waiting)
    assert held(InboundMessage) == set()

    assert let_go_all(ctx, later)[0] == 0
    deliver(later)
    assert let_go_all(ctx, later + timedelta(minutes=1)) == (len(waiting), 2)
    assert held(OutboxMail) == set()


# ------------------------------------------------------------------ people


def test_people_go_keep_people_days_after_their_referral_ended_and_the_figures_stay(ctx):
    arrive(REQUEST)
    pipeline.process_pending(ctx, NOW)
    deliver(NOW)
    ended = NOW + 15 * DAY
    deadlines.expire_due(ctx, ended)
    deliver(ended)
    referral = the_referral()
    figures = (queries.referral_counts(), len(queries.events_for(referral.id)))

    let_go_all(ctx, ended + KEEP_PEOPLE - DAY)
    assert sorted(named(referral.id)) == sorted([PROVIDER, PROSPECT])

    assert let_go_all(ctx, ended + KEEP_PEOPLE + DAY) == (2, 2)
    parties = list(Party.select().where(Party.referral == referral.id))
    assert all(p.email.startswith("erased-") and p.email.endswith("@invalid") for p in parties)
    assert all(p.name == p.phone == p.best_time == p.booking == "" for p in parties)
    assert (queries.referral_counts(), len(queries.events_for(referral.id))) == figures
    assert queries.referral_by_id(referral.id).referrer_email == "ada@referrer.example"


# ------------------------------------------------------------------ a store written directly


@dataclass(frozen=True)
class Story:
    """One referral as the store will hold it: when it came, what was sent about it and
    when (None: never, it waits still), and when and how it ended (None: it is open)."""

    opened: float  # days after NOW
    sends: tuple[float | None, ...] = (0.0,)  # days after opened
    ended: float | None = None  # days after opened
    late: float | None = None  # a mail after it ended (a late answer's reply): days after


def write(n: int, story: Story) -> int:
    """Store one story as intake, the workflow and the outbox would; the referral's id."""
    opened = NOW + story.opened * DAY
    request = queries.store_inbound(
        NewInbound(
            f"k{n}",
            f"<r{n}@x.example>",
            "ada@referrer.example",
            ("refer@intro.example.org",),
            "smtp",
            b"Prospect: Bob Smith\n",
            opened,
        )
    )
    InboundMessage.update(state=InboundState.PROCESSED).where(
        InboundMessage.id == request
    ).execute()
    parties = tuple(
        NewParty(role, f"{role}{n}@example.net", f"ask-{role}-{n}", "en", name=f"{role} {n}")
        for role in ("provider", "prospect")
    )
    new = NewReferral(
        state=State.ASKING,
        referrer_email="ada@referrer.example",
        referrer_name="Ada",
        need="bookkeeping",
        budget="",
        follow_up_days=None,
        language="en",
        subject="Intro",
        request_message_id=None,
        inbound_id=request,
        created_at=opened,
        expires_at=opened + 14 * DAY,
        parties=parties,
    )
    referral = queries.insert_referral(new, f"R-{n:06d}")
    assert referral is not None
    mails = [
        (k, opened + (after or 0) * DAY, after is not None) for k, after in enumerate(story.sends)
    ]
    if story.ended is not None:
        ended = opened + story.ended * DAY
        assert queries.move_referral(referral.id, State.ASKING, State.EXPIRED, ended, None)
        if story.late is not None:
            mails.append((len(mails), ended + story.late * DAY, True))
    for k, at, sent in mails:
        mail = OutgoingMail(
            f"<m{n}-{k}@intro.example.org>",
            "consent_request",
            "bounce@intro.example.org",
            (f"prospect{n}@example.net",),
            b"Hello Bob Smith",
            referral_id=referral.id,
        )
        queries.enqueue([mail], at)
        if sent:
            [row] = OutboxMail.select().where(OutboxMail.message_id == mail.message_id)
            queries.mark_sent(row.id, at)
    return referral.id


def test_retention_catches_up_over_ticks_each_bounded_by_its_batch(ctx):
    stories = [Story(0, (0.0, 1.0), ended=2) for _ in range(7)]
    ids = [write(n, s) for n, s in enumerate(stories)]
    later = NOW + KEEP_PEOPLE + 10 * DAY

    first = erasure.let_go(ctx, later, batch=2).let_go
    # Two referrals' mail (a request and two mails each), and one referral's two people,
    # who take their referral's mail with them when it is a third one.
    assert first in (2 * 3 + 2, 3 * 3 + 2)
    assert len(held(InboundMessage)) == 7 - (first - 2) // 3

    total, ticks = let_go_all(ctx, later, batch=2)
    assert total + first == 7 * 3 + 7 * 2
    assert ticks >= 7  # one referral's people a tick, then the tick that finds nothing
    assert held(InboundMessage) == held(OutboxMail) == set()
    assert all(named(i) == [] for i in ids)


def sqlite_steps(run: Callable[[], object]) -> int:
    """Hundreds of SQLite's virtual machine steps `run` took: the work its statements did,
    the same on every run, whatever else the machine is doing."""
    connection = db.database.connection()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    connection.set_progress_handler(count, 100)
    try:
        run()
    finally:
        connection.set_progress_handler(None, 100)
    return steps


def test_a_batch_costs_the_same_however_long_the_backlog_behind_it(ctx):
    """After an upgrade, or a shorter `keep_mail_days`, all of a store's mail is old and
    unseen at once. Each batch must still read what it takes, not the backlog behind it:
    reading the mail to set aside and the mail to let go with a question each made each
    question step over the other's rows, and a batch of 500 read millions of rows."""
    if db.is_postgresql():
        pytest.skip("SQLite counts the steps its statements take; PostgreSQL has no such count")
    later = NOW + KEEP_MAIL + 30 * DAY
    costs = []
    for size in (30, 300):
        db.database.drop_tables(ALL_MODELS, safe=True)
        db.database.create_tables(ALL_MODELS)
        # Open referrals, whose mail waits for them; behind them mail of no referral.
        for n in range(size):
            write(n, Story(0, sends=(0.0,)))
        stranger = arrive(STRANGER)
        InboundMessage.update(state=InboundState.PROCESSED, received_at=NOW).where(
            InboundMessage.id == stranger
        ).execute()
        costs.append(sqlite_steps(lambda: erasure.let_go(ctx, later, batch=10)))
        let_go_all(ctx, later, batch=10)  # the stranger's goes; the requests wait
        assert held(InboundMessage) == {r.inbound_id for r in Referral.select()}
    small, large = costs
    assert large < 2 * small, costs


# ------------------------------------------------------------------ what a tick reads

RETENTION_INDEXES = {
    "inbound_message_body_unseen",
    "outbox_mail_body_unseen",
    "outbox_mail_body_once_sent",
    "referral_mail_kept",
    "referral_people_kept",
}


def test_retentions_questions_read_ranges_of_their_indexes(ctx, caplog):
    """What keeps a tick's cost to what is due rather than to the store's history: each
    question starts from an index that holds only what retention has not finished with."""
    write(0, Story(0, ended=1))
    write(1, Story(0, sends=(0.0, None)))
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        erasure.let_go(ctx, NOW + KEEP_PEOPLE + 10 * DAY)
    selects = [r.msg for r in caplog.records if str(r.msg[0]).startswith("SELECT")]
    used: set[str] = set()
    with db.transaction():
        if db.is_postgresql():
            db.database.execute_sql("SET LOCAL enable_seqscan = off")
        for sql, params in selects:
            plan = plan_of(sql, params)
            # A table read whole (SQLite's SCAN without an index, PostgreSQL's Seq Scan) is
            # what grows with history; a partial index read whole holds only what is due.
            assert not any(re.match(r"SCAN \w+$|Seq Scan", step) for step in plan), plan
            used |= {name for name in RETENTION_INDEXES for step in plan if name in step}
    assert used == RETENTION_INDEXES


def plan_of(sql: str, params: object) -> list[str]:
    """The steps of the plan the store makes for this query."""
    if db.is_postgresql():
        return [r[0].strip(" ->") for r in db.database.execute_sql("EXPLAIN " + sql, params)]
    return [r[-1] for r in db.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params)]


# ------------------------------------------------------------------ an earlier release's store


def test_a_store_written_before_retentions_marks_is_let_go_as_promised(
    tmp_path, store_url, monkeypatch
):
    # The upgrade marks a range of ids at a time: here, ranges smaller than each table.
    monkeypatch.setattr(schema, "PIECE_ROWS", 2)
    ctx = context(tmp_path, store_url)
    due = write(0, Story(0, sends=(0.0, 1.0), ended=2))
    emptied = write(1, Story(0, ended=2))
    still_open = write(2, Story(0))
    forgotten = write(3, Story(0, sends=(0.0, None), ended=1))
    recent = write(4, Story(25, ended=1))
    handled, unread = loose_inbound(5, InboundState.REJECTED), loose_inbound(6, InboundState.NEW)
    # What the earlier release had done: emptied one referral's mail, forgotten a person
    # while a letter of their referral still waited to go.
    for model, where in (
        (InboundMessage, InboundMessage.id == Referral.get_by_id(emptied).inbound_id),
        (OutboxMail, OutboxMail.referral == emptied),
    ):
        model.update(raw=b"").where(where).execute()
    [prospect] = Party.select().where((Party.referral == forgotten) & (Party.role == "prospect"))
    with db.transaction():
        erasure_store.erase_parties([prospect.id], NOW + DAY)
    [letter] = held(OutboxMail) & set(outbox_of(forgotten))
    for name in RETENTION_INDEXES:
        db.database.execute_sql(f"DROP INDEX {name}")
    for table, column in (
        ("inbound_message", "retention"),
        ("outbox_mail", "retention"),
        ("referral", "mail_let_go_at"),
        ("referral", "people_let_go_at"),
    ):
        db.database.execute_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    kept = held(InboundMessage), held(OutboxMail)

    db.bind(store_url)
    assert {i.name for i in db.database.get_indexes("referral")} >= {"referral_mail_kept"}
    assert (held(InboundMessage), held(OutboxMail)) == kept
    # What the earlier release had let go of is known as such: retention need not look.
    assert Referral.get_by_id(emptied).mail_let_go_at is not None
    assert Referral.get_by_id(due).mail_let_go_at is None
    assert let_go_all(ctx, NOW + 20 * DAY) == (0, 1)

    later = NOW + 40 * DAY
    let_go_all(ctx, later)
    request = {r: Referral.get_by_id(r).inbound_id for r in (due, still_open, recent)}
    assert held(InboundMessage) == {request[still_open], request[recent], unread}
    assert handled not in held(InboundMessage)
    assert held(OutboxMail) == set(outbox_of(still_open)) | set(outbox_of(recent)) | {letter}
    deliver(later)
    let_go_all(ctx, later)
    assert letter not in held(OutboxMail)

    let_go_all(ctx, NOW + KEEP_PEOPLE + 5 * DAY)
    assert named(due) == named(emptied) == []
    assert sorted(named(still_open)) == ["prospect2@example.net", "provider2@example.net"]
    assert named(recent) != []


def loose_inbound(n: int, state: InboundState) -> int:
    """A message that opened no referral, handled (or not) as it arrived."""
    stored = queries.store_inbound(
        NewInbound(
            f"loose{n}",
            f"<loose{n}@x.example>",
            "bob@bakery.example",
            ("refer@intro.example.org",),
            "smtp",
            b"Subject: hi\n\nBob Smith\n",
            NOW,
        )
    )
    assert stored is not None
    InboundMessage.update(state=state).where(InboundMessage.id == stored).execute()
    return stored


# ------------------------------------------------------------------ any store


stories = st.builds(
    Story,
    opened=st.floats(0, 200),
    sends=st.lists(st.one_of(st.none(), st.floats(0, 20)), max_size=3).map(tuple),
    ended=st.one_of(st.none(), st.floats(0, 100)),
    late=st.one_of(st.none(), st.floats(0, 60)),
)
loose = st.tuples(st.floats(0, 300), st.booleans())  # when, and whether it was handled/sent


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    referrals=st.lists(stories, max_size=6),
    inbound=st.lists(loose, max_size=3),
    outbox=st.lists(loose, max_size=3),
    ticks=st.lists(st.floats(0, 1000), min_size=1, max_size=4).map(sorted),
    batch=st.integers(1, 4),
)
def test_after_retention_nothing_due_keeps_a_body_or_a_name_and_nothing_else_lost_one(
    tmp_path, store_url, referrals, inbound, outbox, ticks, batch
):
    db.database.drop_tables(ALL_MODELS, safe=True)
    db.bind(store_url)
    ctx = context(tmp_path, store_url)
    world = World(referrals, inbound, outbox)
    for tick in ticks:
        at = NOW + tick * DAY
        world.happen_until(at)
        let_go_all(ctx, at, batch)
        world.swept(at)
        expected = world.held_at(at)
        assert (held(InboundMessage), held(OutboxMail), named_parties()) == expected


def named_parties() -> set[int]:
    return {p.id for p in Party.select(Party.id, Party.name) if p.name}


class World:
    """The stories, written into the store as their moments come, and what retention must
    have let go of by a moment: the promise, written out once more, plainly."""

    def __init__(self, referrals: list[Story], inbound: list, outbox: list) -> None:
        events = []
        for n, story in enumerate(referrals):
            opened = story.opened
            events.append((opened, "open", n))
            for k, after in enumerate(story.sends):
                events.append((opened + (after or 0), "send", (n, k, after is not None)))
            if story.ended is not None:
                ended = opened + story.ended
                events.append((ended, "end", n))
                if story.late is not None:
                    events.append((ended + story.late, "send", (n, len(story.sends), True)))
        events += [(at, "inbound", (n, handled)) for n, (at, handled) in enumerate(inbound)]
        events += [(at, "note", (n, sent)) for n, (at, sent) in enumerate(outbox)]
        self.events = sorted(
            events, key=lambda e: (e[0], ["open", "send", "end", "inbound", "note"].index(e[1]))
        )
        self.referral: dict[int, int] = {}  # story -> referral id
        self.request: dict[int, int] = {}  # story -> inbound id
        self.ended: dict[int, datetime] = {}
        self.swept_at: dict[int, datetime] = {}  # story -> when its mail went
        self.mail: dict[int, tuple[int | None, datetime, bool]] = {}  # id -> story, at, sent
        self.inbound: dict[int, tuple[datetime, bool]] = {}

    def happen_until(self, at: datetime) -> None:
        while self.events and NOW + self.events[0][0] * DAY <= at:
            day, kind, what = self.events.pop(0)
            when = NOW + day * DAY
            if kind == "open":
                self.open(what, when)
            elif kind == "end":
                assert queries.move_referral(
                    self.referral[what], State.ASKING, State.EXPIRED, when, None
                )
                self.ended[what] = when
            elif kind == "inbound":
                n, handled = what
                state = InboundState.PROCESSED if handled else InboundState.NEW
                self.inbound[loose_inbound(100 + n, state)] = (when, handled)
                InboundMessage.update(received_at=when).where(
                    InboundMessage.dedupe_key == f"loose{100 + n}"
                ).execute()
            elif kind == "send":
                n, k, sent = what
                self.send(f"<m{n}-{k}@intro.example.org>", self.referral[n], when, sent, n)
            else:
                n, sent = what
                self.send(f"<note{n}@intro.example.org>", None, when, sent, None)

    def open(self, n: int, when: datetime) -> None:
        referral_id = write(n, Story(0, sends=()))
        Referral.update(created_at=when, updated_at=when).where(
            Referral.id == referral_id
        ).execute()
        request = Referral.get_by_id(referral_id).inbound_id
        InboundMessage.update(received_at=when).where(InboundMessage.id == request).execute()
        self.referral[n], self.request[n] = referral_id, request

    def send(
        self,
        message_id: str,
        referral_id: int | None,
        when: datetime,
        sent: bool,
        story: int | None,
    ) -> None:
        mail = OutgoingMail(
            message_id,
            "consent_request",
            "bounce@intro.example.org",
            ("someone@example.net",),
            b"Bob Smith",
            referral_id=referral_id,
        )
        queries.enqueue([mail], when)
        [row] = OutboxMail.select().where(OutboxMail.message_id == message_id)
        if sent:
            queries.mark_sent(row.id, when)
        self.mail[row.id] = (story, when, sent)

    def swept(self, at: datetime) -> None:
        """A referral's mail goes at the first tick that finds it ended long enough ago."""
        for n, ended in self.ended.items():
            if n not in self.swept_at and ended < at - KEEP_MAIL:
                self.swept_at[n] = at

    def held_at(self, at: datetime) -> tuple[set[int], set[int], set[int]]:
        before = at - KEEP_MAIL
        inbound = {
            i for i, (when, handled) in self.inbound.items() if not (handled and when < before)
        }
        inbound |= {i for n, i in self.request.items() if n not in self.swept_at}
        outbox = set()
        for i, (story, when, sent) in self.mail.items():
            if story is None:
                gone = sent and when < before
            else:
                # Sent after its referral's mail went (a late reply): as old as mail for
                # no referral must be.
                swept = self.swept_at.get(story)
                gone = sent and swept is not None and (when <= swept or when < before)
            if not gone:
                outbox.add(i)
        people = at - KEEP_PEOPLE
        ended_long_ago = {self.referral[n] for n, ended in self.ended.items() if ended < people}
        parties = {
            p.id
            for p in Party.select(Party.id, Party.referral)
            if p.referral_id not in ended_long_ago
        }
        return inbound, outbox, parties
