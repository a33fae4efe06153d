"""The store on SQLite and PostgreSQL: idempotent intake, outbox leases, aware timestamps."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import peewee
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from store import db, queries
from store.records import NewInbound, OutgoingMail
from tests.helpers import inbound_counts, syncs

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def inbound(key: str, at: datetime = NOW) -> NewInbound:
    return NewInbound(
        key,
        f"<{key}@x.example>",
        "ada@referrer.example",
        ("refer@intro.example.org",),
        "smtp",
        b"Subject: x\n\nbody\n",
        at,
    )


def mail(n: int) -> OutgoingMail:
    return OutgoingMail(
        f"<m{n}@intro.example.org>",
        "receipt",
        "refer@intro.example.org",
        ("ada@referrer.example",),
        b"Subject: m\n\nbody\n",
    )


def test_the_same_message_is_stored_once(store_url):
    first = queries.store_inbound(inbound("a"))
    assert first is not None
    assert queries.store_inbound(inbound("a")) is None
    assert inbound_counts() == {"new": 1}
    assert queries.inbound_by_id(first).raw == b"Subject: x\n\nbody\n"


def test_a_row_written_with_sql_built_once_reads_back_as_peewee_would_write_it(store_url):
    """The compiled insert fills every default and converts each value as its field does."""
    from store.compiled import CompiledInsert
    from store.models import Referrer

    at = datetime(2026, 11, 22, 13, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    made = CompiledInsert(Referrer).one({"email": "ada@x.example", "key": "k1", "created_at": at})
    row = Referrer.get_by_id(made)
    assert (row.email, row.key, row.digest, row.digest_slot) == ("ada@x.example", "k1", True, None)
    assert row.created_at == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    CompiledInsert(Referrer).run(
        [{"email": f"{n}@x.example", "key": f"m{n}", "created_at": at} for n in range(3)]
    )
    assert Referrer.select().count() == 4
    with pytest.raises(AssertionError):
        CompiledInsert(Referrer).one({"emial": "typo@x.example"})


def test_a_compiled_reads_records_hold_what_peewees_rows_hold(store_url):
    """Records skip peewee's model instances: every value must still come back converted
    as its field converts it (aware datetimes, booleans, bytes, foreign keys as ids)."""
    from store.compiled import CompiledRead
    from store.models import InboundMessage, Party, Referral

    stored = queries.store_inbound(inbound("rec", NOW))
    later = NOW + timedelta(days=3)
    referral = Referral.create(
        ref="R-REC",
        state="asking",
        referrer_email="ada@x.example",
        need="books",
        follow_up_days=2.5,
        language="de",
        inbound=stored,
        created_at=NOW,
        updated_at=NOW,
        expires_at=later,
        copy_me=True,
    )
    Party.create(
        referral=referral,
        role="provider",
        email="jane@x.example",
        language="de",
        ask_key="ask-rec",
        answer="yes",
        answered_at=later,
        withheld_until=None,
    )
    for model, key in ((Referral, referral.id), (Party, referral.id), (InboundMessage, stored)):
        column = Party.referral if model is Party else model.id
        read = CompiledRead(lambda k, m=model, c=column: m.select().where(c == k), -7_000_002)
        [record] = read.records(key)
        [row] = model.select().where(column == key)
        for field in model._meta.sorted_fields:
            assert getattr(record, field.column_name) == getattr(row, field.column_name)
        assert read.first_record(-1) is None


def test_a_new_referral_is_given_back_exactly_as_a_read_of_it_gives_it(store_url):
    """insert_referral no longer reads back what it wrote: what it returns must still be
    what every later read of the referral sees, defaults and conversions included."""
    from store.records import NewParty, NewReferral

    berlin = ZoneInfo("Europe/Berlin")
    new = NewReferral(
        state="received",
        referrer_email="ada@referrer.example",
        referrer_name="Ada",
        need="bookkeeping",
        budget="400 EUR",
        follow_up_days=2.5,
        language="de",
        subject="Intro",
        request_message_id="<r@x.example>",
        inbound_id=queries.store_inbound(inbound("opened")),
        created_at=NOW.astimezone(berlin),
        expires_at=NOW + timedelta(days=14, microseconds=7),
        remind_at=None,
        copy_me=True,
        parties=(
            NewParty("provider", "jane@acme.example", "ask-p", "de", name="Jane", reply_key="rp"),
            NewParty(
                "prospect",
                "bob@bakery.example",
                "ask-q",
                "fr",
                phone="+49 30 1",
                timezone="Europe/Paris",
                withheld_until=NOW + timedelta(days=3),
            ),
        ),
    )
    with db.transaction():
        given = queries.insert_referral(new, "R-GIVEN")
    assert given == queries.referral_by_id(given.id)
    assert [p.role for p in given.parties] == ["provider", "prospect"]
    with db.transaction():  # the reference is taken: nothing is written
        assert queries.insert_referral(replace(new, inbound_id=None), "R-GIVEN") is None
    assert queries.referral_counts() == {"received": 1}


def test_a_claim_marks_exactly_the_messages_it_took(store_url):
    ids = [queries.store_inbound(inbound(f"c{n}", NOW + timedelta(seconds=n))) for n in range(5)]
    lease = NOW + timedelta(minutes=5)
    first = queries.claim_inbound(NOW, lease, 2, "run-a")
    second = queries.claim_inbound(NOW, lease, 10, "run-b")
    assert [m.id for m in first] == ids[:2]
    assert [m.id for m in second] == ids[2:]
    assert set(queries.inbound_claims(NOW)) == {"run-a", "run-b"}
    assert queries.claim_inbound(NOW, lease, 10, "run-c") == []
    assert not queries.finish_claimed(ids[0], "run-b", "processed", "", NOW)
    assert queries.finish_claimed(ids[0], "run-a", "processed", "", NOW)


def test_surveys_made_together_keep_a_round_that_is_already_there(store_url):
    from store.models import Party, Referral, Survey

    referral = Referral.create(
        ref="R-SURV",
        state="introduced",
        referrer_email="ada@x.example",
        need="books",
        language="en",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW,
    )
    parties = [
        Party.create(referral=referral, role=r, email=f"{r}@x.example", language="en", ask_key=r)
        for r in ("provider", "prospect")
    ]
    due = NOW + timedelta(days=30)
    assert queries.create_survey(referral.id, parties[0].id, 1, due, "s-first", "r-first")
    with db.transaction():
        queries.create_surveys(
            [(referral.id, p.id, 1, due, f"s-{p.role}", f"r-{p.role}") for p in parties]
        )
    kept = {(s.party_id, s.round): s.survey_key for s in Survey.select()}
    assert kept == {(parties[0].id, 1): "s-first", (parties[1].id, 1): "s-prospect"}
    assert {s.due_at for s in Survey.select()} == {due}


def test_a_compiled_insert_told_to_ignore_skips_a_row_whose_key_is_taken(store_url):
    from store.compiled import CompiledInsert
    from store.models import Referrer

    first = {"email": "ada@x.example", "key": "k1", "created_at": NOW}
    CompiledInsert(Referrer).run([first])
    again = {"email": "ada@x.example", "key": "k2", "created_at": NOW}
    other = {"email": "bob@x.example", "key": "k3", "created_at": NOW}
    with db.transaction():
        CompiledInsert(Referrer, or_ignore=True).run([again, other])
    kept = {r.email: r.key for r in Referrer.select()}
    assert kept == {"ada@x.example": "k1", "bob@x.example": "k3"}


def test_a_compiled_insert_told_to_ignore_still_refuses_a_row_missing_what_it_needs(store_url):
    """Only a taken key is skipped: a row without a value its column requires is an error
    to hear about, not a row to lose without a word (SQLite's INSERT OR IGNORE would)."""
    from store.compiled import CompiledInsert
    from store.models import Referrer

    broken = {"email": "ada@x.example", "key": "k1", "created_at": None}
    with pytest.raises(peewee.IntegrityError), db.transaction():
        CompiledInsert(Referrer, or_ignore=True).run([broken])
    assert Referrer.select().count() == 0


def test_who_said_stop_is_seen_by_the_same_transaction_and_by_any_count_asked(store_url):
    """The suppression check reads with SQL built once per count of addresses: it must see
    a stop written earlier in the same transaction, and ask about many addresses at once."""
    from store import suppressions

    many = [f"p{n}@x.example" for n in range(12)]
    with db.transaction():
        suppressions.suppress("p3@x.example", NOW)
        assert suppressions.suppressed(["p3@x.example"]) == {"p3@x.example"}
        assert suppressions.suppressed(["Bob@x.example", "P3@x.example"]) == {"P3@x.example"}
        assert suppressions.suppressed(many) == {"p3@x.example"}
        assert suppressions.suppressed(many[4:]) == set()
    suppressions.suppress("p11@x.example", NOW)
    assert suppressions.suppressed(many) == {"p3@x.example", "p11@x.example"}


def _hmac_under_the_stored_key(address: str) -> str:
    """How every stored hash was made: HMAC-SHA256 of the address, trimmed and lowered,
    under the key the store holds."""
    import hashlib
    import hmac

    from store.models import StoreKey

    key = bytes.fromhex(StoreKey.get(StoreKey.name == "suppression").value)
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def test_an_address_hash_is_hmac_sha256_under_the_stores_key(store_url):
    """Hashes already stored were made so: every way of hashing since must give the same."""
    from store import suppressions

    for address in (" Bob@X.example ", "ada@referrer.example", "ünï@bücher.example"):
        assert suppressions.address_hash(address) == _hmac_under_the_stored_key(address)


def test_a_key_made_in_a_transaction_that_rolls_back_is_not_used_after_it(store_url):
    """The suppression key is kept in memory once read; not one made by a transaction that
    then rolled back, which would hash every address after it under a key the store lost."""
    from store import suppressions
    from store.models import StoreKey

    StoreKey.delete().where(StoreKey.name == "suppression").execute()
    suppressions._known = None  # as a process that has not read the key yet
    with pytest.raises(RuntimeError), db.transaction():
        suppressions.address_hash("ada@x.example")
        raise RuntimeError("rolled back")
    hashed = suppressions.address_hash("ada@x.example")
    assert hashed == _hmac_under_the_stored_key("ada@x.example")


def test_timestamps_come_back_aware_and_utc(store_url):
    berlin = datetime(2026, 11, 22, 13, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    stored = queries.store_inbound(inbound("tz", berlin))
    record = queries.inbound_by_id(stored)
    assert record.received_at == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    assert record.received_at.tzinfo is UTC


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, *map(ZoneInfo, ["Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"])]
        ),
        allow_imaginary=False,
    )
)
@example(moment=datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")))
def test_a_moment_goes_to_its_column_as_naive_utc_and_comes_back_the_same_instant(moment):
    """The column holds the UTC wall time, for any zone, either side of a clock change, to
    the microsecond; read back, it is the same instant, in UTC."""
    from store.models import UTCDateTimeField

    field = UTCDateTimeField()
    column = field.db_value(moment)
    assert column.tzinfo is None
    assert column == moment.astimezone(UTC).replace(tzinfo=None)
    back = field.python_value(column)
    # Not ==, which holds a moment in a repeated hour equal to no moment in another zone.
    assert back - moment == timedelta(0)
    assert back.tzinfo is UTC


def test_a_moment_a_driver_gives_with_a_zone_is_read_as_that_instant():
    from store.models import UTCDateTimeField

    two_hours_east = timezone(timedelta(hours=2))
    back = UTCDateTimeField().python_value(datetime(2026, 11, 22, 14, 0, tzinfo=two_hours_east))
    assert back == datetime(2026, 11, 22, 12, 0, tzinfo=UTC) and back.tzinfo is UTC


def test_a_moment_whose_zone_knows_no_offset_is_refused_as_naive():
    from store.models import UTCDateTimeField

    class Unknown(tzinfo):
        def utcoffset(self, moment: datetime | None) -> None:
            return None

    with pytest.raises(ValueError, match="naive"):
        UTCDateTimeField().db_value(datetime(2026, 11, 22, 12, 0, tzinfo=Unknown()))


def test_a_naive_timestamp_is_refused(store_url):
    with pytest.raises(ValueError, match="naive"):
        queries.store_inbound(inbound("naive", datetime(2026, 1, 1)))


def test_a_claimed_mail_is_not_due_again_until_its_lease_ends(store_url):
    with db.transaction():
        queries.enqueue([mail(1), mail(2), mail(3)], NOW)
    lease = NOW + timedelta(minutes=10)
    first = queries.claim_outbox(NOW, lease, limit=2)
    assert [m.message_id for m in first] == ["<m1@intro.example.org>", "<m2@intro.example.org>"]
    assert [m.attempts for m in first] == [1, 1]
    rest = queries.claim_outbox(NOW, lease, 10)
    assert [m.message_id for m in rest] == ["<m3@intro.example.org>"]
    assert queries.claim_outbox(NOW + timedelta(minutes=9), lease, 10) == []
    queries.mark_sent(first[0].id, NOW)
    again = queries.claim_outbox(lease, lease + timedelta(minutes=10), 10)
    # The worker that took m2 and m3 never came back: both are due again, m1 is done.
    assert sorted(m.message_id for m in again) == [
        "<m2@intro.example.org>",
        "<m3@intro.example.org>",
    ]
    assert {m.attempts for m in again} == {2}
    assert queries.outbox_counts() == {"pending": 2, "sent": 1}


def test_concurrent_workers_claim_every_mail_exactly_once(store_url):
    with db.transaction():
        queries.enqueue([mail(n) for n in range(300)], NOW)
    claimed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(300):  # bounded: at most one claim per mail
                batch = queries.claim_outbox(NOW, NOW + timedelta(minutes=10), 7)
                if not batch:
                    return
                with lock:
                    claimed.extend(m.id for m in batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(claimed) == 300
    assert len(set(claimed)) == 300


def test_only_new_messages_are_handed_to_intake_oldest_first(store_url):
    first = queries.store_inbound(inbound("old", NOW - timedelta(minutes=5)))
    second = queries.store_inbound(inbound("young", NOW))
    [record] = queries.claim_inbound(NOW, NOW + timedelta(minutes=5), 1, "one")
    assert record.id == first
    assert queries.finish_claimed(record.id, "one", "processed", "R-TEST", NOW)
    [record] = queries.claim_inbound(NOW, NOW + timedelta(minutes=5), 1, "two")
    assert record.id == second


def test_a_claimed_message_is_skipped_by_another_instance(store_url):
    first = queries.store_inbound(inbound("one", NOW - timedelta(minutes=1)))
    second = queries.store_inbound(inbound("two", NOW))
    lease = NOW + timedelta(minutes=5)
    seen = [r.id for claim in ("one", "two") for r in queries.claim_inbound(NOW, lease, 1, claim)]
    assert seen == [first, second]
    assert queries.claim_inbound(NOW, lease, 5, "three") == []


def test_sqlite_runs_in_wal_with_foreign_keys_full_sync_and_a_busy_timeout(sqlite_url):
    pragma = lambda name: db.database.execute_sql(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("foreign_keys") == 1
    assert pragma("synchronous") == 2  # FULL
    assert pragma("busy_timeout") == 10_000


def test_a_commit_left_unsynced_leaves_every_other_synced(store_url):
    """Intake's claims and results wait for the next synced commit; a 250, an answer or the
    outbox's claim after them must still reach the disk before it returns."""
    with db.transaction(durable=False):
        queries.store_inbound(inbound("quiet"))
        assert not syncs()
        with db.transaction():  # a savepoint commits with the block around it
            assert not syncs()
    assert syncs()
    with db.transaction(), db.transaction(durable=False):
        assert syncs()  # the outermost block decides
    with pytest.raises(RuntimeError, match="half-way"), db.transaction(durable=False):
        queries.store_inbound(inbound("undone"))
        raise RuntimeError("half-way")
    assert syncs()
    assert [r.message_id for r in queries.claim_inbound(NOW, NOW + timedelta(minutes=5), 5, "c")]
    assert syncs()
    assert inbound_counts() == {"new": 1}


def test_sqlite_write_transactions_take_the_write_lock_at_begin(sqlite_url, tmp_path):
    path = sqlite_url.removeprefix("sqlite:///")
    with db.transaction():
        queries.referral_counts()  # only a read so far
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_a_store_from_an_earlier_release_gains_new_columns_and_keeps_its_rows(store_url):
    """An upgrade must not lose what an earlier release stored, nor fail on its tables."""
    from store.models import InboundMessage

    kept = queries.store_inbound(inbound("k1"))
    table = InboundMessage._meta.table_name
    db.database.execute_sql(f"ALTER TABLE {table} DROP COLUMN referrer_told")
    # A column with a unique index, as a release before reply addresses had it.
    db.database.execute_sql("DROP INDEX party_reply_key")
    db.database.execute_sql("ALTER TABLE party DROP COLUMN reply_key")
    db.bind(store_url)
    record = queries.inbound_by_id(kept)
    assert record is not None and record.raw == inbound("k1").raw
    assert queries.mark_referrer_told(kept) is True
    indexes = {i.name for i in db.database.get_indexes("party")}
    assert "party_reply_key" in indexes


def test_an_earlier_stores_one_row_per_message_id_gives_way_to_one_per_envelope(store_url):
    """Before one introduction went to both parties as one mail, a Message-ID was unique in
    the outbox; the upgrade drops that index, and the same mail may then go as two envelopes
    while one envelope is still stored once."""
    from store.models import OutboxMail

    table = OutboxMail._meta.table_name
    db.database.execute_sql("DROP INDEX outbox_mail_message_id_recipients")
    db.database.execute_sql(f"CREATE UNIQUE INDEX outbox_mail_message_id ON {table} (message_id)")
    # Nor did a referral know whether its referrer asked for a copy.
    db.database.execute_sql("ALTER TABLE referral DROP COLUMN copy_me")
    with db.transaction():
        queries.enqueue([mail(1)], NOW)
    db.bind(store_url)
    assert "copy_me" in {c.name for c in db.database.get_columns("referral")}
    indexes = {i.name for i in db.database.get_indexes(table)}
    assert "outbox_mail_message_id" not in indexes
    assert "outbox_mail_message_id_recipients" in indexes
    to_bob = replace(mail(1), recipients=("bob@bakery.example",))
    with db.transaction():
        queries.enqueue([to_bob], NOW)
    claimed = queries.claim_outbox(NOW, NOW + timedelta(minutes=5), 10)
    assert sorted(m.recipients for m in claimed) == [
        ("ada@referrer.example",),
        ("bob@bakery.example",),
    ]
    assert {m.message_id for m in claimed} == {mail(1).message_id}
    with pytest.raises(peewee.IntegrityError), db.transaction():
        queries.enqueue([to_bob], NOW)
