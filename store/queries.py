"""Named queries the service calls; the only module outside store/ callers need for data."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import peewee

from service.model import INTRODUCTION, InboundState, OutboxState, State, SurveyState
from store import suppressions
from store.compiled import CompiledIn, CompiledInsert, CompiledRead, CompiledUpdate
from store.db import (
    database,
    held_rows,
    holding_rows,
    is_postgresql,
    once_more_if_connection_lost,
    transaction,
)
from store.models import (
    Event,
    InboundMessage,
    OutboxMail,
    Party,
    Referral,
    Referrer,
    StoreKey,
    Survey,
)
from store.records import (
    EventRecord,
    FailedMail,
    InboundRecord,
    NewInbound,
    NewReferral,
    OutboxItem,
    OutgoingMail,
    PartyRecord,
    ReferralRecord,
    ReferrerRecord,
    SentMail,
    SurveyRecord,
)

CENT = Decimal("0.01")

# ---------------------------------------------------------------- inbound


def store_inbound(message: NewInbound) -> int | None:
    """Insert a raw message; None when one with the same key is already stored."""
    try:
        with database.atomic():
            return _INBOUND_INSERT.one(_inbound_row(message))
    except peewee.IntegrityError:
        return None


_INBOUND_INSERT = CompiledInsert(InboundMessage)


def store_inbound_together(messages: Sequence[NewInbound]) -> list[int | None]:
    """Insert raw messages in one transaction, each as `store_inbound` would: a commit per
    group, not per message, where that commit (an fsync) is what a message costs. None for a
    message stored before, or earlier in the same group: it is kept once."""
    firsts: dict[str, int] = {}  # each key's first message in the group
    for n, message in enumerate(messages):
        firsts.setdefault(message.dedupe_key, n)
    if is_postgresql():
        ids = _insert_new_on_postgresql([messages[n] for n in firsts.values()])
    elif SQLITE_RETURNING:
        with database.atomic():
            # BEGIN IMMEDIATE holds the only write lock: a key that is there is committed.
            rows = [_inbound_row(messages[n]) for n in firsts.values()]
            ids = _INBOUND_INSERT.new_ids(rows, InboundMessage.dedupe_key)
    else:
        with database.atomic():
            # BEGIN IMMEDIATE holds the only write lock: no key can appear between the two.
            held = InboundMessage.select(InboundMessage.dedupe_key).where(
                InboundMessage.dedupe_key.in_(list(firsts))
            )
            stored = {key for (key,) in held.tuples()}
            ids = {
                key: _INBOUND_INSERT.one(_inbound_row(messages[n]))
                for key, n in firsts.items()
                if key not in stored
            }
    return [
        ids.get(m.dedupe_key) if firsts[m.dedupe_key] == n else None for n, m in enumerate(messages)
    ]


# INSERT … RETURNING came with SQLite 3.35 (2021); an older library reads, then inserts.
SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35)


def _insert_new_on_postgresql(messages: Sequence[NewInbound]) -> dict[str, int]:
    """The ids of those inserted, by key. One statement, run on its own: atomic by itself and
    committed (flushed, with PostgreSQL's default synchronous_commit) when it returns, in one
    round trip where BEGIN and COMMIT would add two. A key another writer is inserting right
    now waits for that commit and is then skipped, so "already stored" is said only of a
    durable row. Keys go in sorted order: two groups sharing keys then wait one behind the
    other, never for each other (a deadlock)."""
    rows = [_inbound_row(m) for m in sorted(messages, key=lambda m: m.dedupe_key)]
    return _INBOUND_INSERT.new_ids(rows, InboundMessage.dedupe_key)


def _inbound_row(message: NewInbound) -> dict[str, object]:
    return {
        "dedupe_key": message.dedupe_key,
        "message_id": message.message_id,
        "envelope_from": message.envelope_from,
        "recipients": "\n".join(message.recipients),
        "via": message.via,
        "raw": message.raw,
        "received_at": message.received_at,
    }


def claim_inbound(
    now: datetime, lease_until: datetime, limit: int, claim: str, stale: Sequence[str] = ()
) -> list[InboundRecord]:
    """Take up to `limit` unprocessed messages, oldest first, for one claim until the lease
    ends: free ones, those whose lease ran out, and those held by the `stale` claims (of a
    process that is gone). The claim is the whole lock: the work is done outside any
    transaction, and `finish_claimed` writes its result only while the claim still holds.

    Not synced (`transaction`): a power cut (or a crash of PostgreSQL's server) that takes
    the claim back leaves the messages free, as the end of its lease would; a result is
    written only while its claim still holds (`finish_claimed`), so none is written twice."""
    with transaction(durable=False):
        rows = list(_claimable(now, limit, stale)) if stale else _FREE_INBOUND.records(now, limit)
        _CLAIM.run_among([r.id for r in rows], claim, lease_until)
    return [_inbound(r) for r in rows]


def _claimable(now: datetime, limit: int, stale: Sequence[str] = ()) -> peewee.ModelSelect:
    """Unprocessed messages nobody holds (or a `stale` claim does), oldest first; locked
    on PostgreSQL, skipping those another instance is taking right now."""
    free = InboundMessage.claimed_until.is_null() | (InboundMessage.claimed_until <= now)
    if stale:
        free |= InboundMessage.claimed_by.in_(list(stale))
    query = (
        InboundMessage.select()
        .where((InboundMessage.state == InboundState.NEW) & free)
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(limit)
    )
    return query.for_update(skip_locked=True) if is_postgresql() else query


def inbound_claims(now: datetime) -> list[str]:
    """The claims that hold unprocessed messages now."""
    return [r.claimed_by for r in _CLAIMS_HELD.records(now)]


_CLAIM = CompiledUpdate(InboundMessage, (InboundMessage.claimed_by, InboundMessage.claimed_until))
# Stand-ins for the values of a compiled read (store/compiled.py): never a real moment.
_WHEN = datetime(1900, 1, 1, 0, 0, 0, 7, tzinfo=UTC)
_FREE_INBOUND = CompiledRead(_claimable, _WHEN, -7_000_003)
_CLAIMS_HELD = CompiledRead(
    lambda now: (
        InboundMessage.select(InboundMessage.claimed_by)
        .where((InboundMessage.state == InboundState.NEW) & (InboundMessage.claimed_until > now))
        .distinct()
    ),
    _WHEN,
)


def inbound_by_id(inbound_id: int) -> InboundRecord | None:
    row = _INBOUND.first_record(inbound_id)
    return _inbound(row) if row else None


_FINISH_CLAIMED = CompiledUpdate(
    InboundMessage,
    (
        InboundMessage.state,
        InboundMessage.note,
        InboundMessage.processed_at,
        InboundMessage.claimed_by,
        InboundMessage.claimed_until,
    ),
    where=(InboundMessage.id, InboundMessage.state, InboundMessage.claimed_by),
)


def finish_claimed(inbound_id: int, claim: str, state: str, note: str, now: datetime) -> bool:
    """Record what became of a message, if it is still unprocessed and held by `claim`;
    False if not (its lease ran out and another took it): the caller's work must not stand."""
    changed = _FINISH_CLAIMED.run(state, note, now, "", None, inbound_id, InboundState.NEW, claim)
    return bool(changed)


def mark_referrer_told(inbound_id: int) -> bool:
    """Note that the referrer heard about this message; False if they already had."""
    changed = (
        InboundMessage.update(referrer_told=True)
        .where((InboundMessage.id == inbound_id) & (InboundMessage.referrer_told == False))  # noqa: E712
        .execute()
    )
    return bool(changed)


def quarantined(limit: int = 100) -> list[InboundRecord]:
    rows = (
        InboundMessage.select()
        .where(InboundMessage.state == InboundState.QUARANTINED)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    )
    return [_inbound(r) for r in rows]


def requeue_inbound(inbound_id: int) -> bool:
    """Put a quarantined message back in line for intake; False if it is not quarantined."""
    with database.atomic():
        changed = (
            InboundMessage.update(state=InboundState.NEW, note="", processed_at=None)
            .where(
                (InboundMessage.id == inbound_id)
                & (InboundMessage.state == InboundState.QUARANTINED)
            )
            .execute()
        )
    return bool(changed)


def _inbound(row: InboundMessage) -> InboundRecord:
    return InboundRecord(
        id=row.id,
        message_id=row.message_id,
        envelope_from=row.envelope_from,
        recipients=tuple(r for r in row.recipients.split("\n") if r),
        via=row.via,
        raw=bytes(row.raw),
        received_at=row.received_at,
        state=row.state,
        note=row.note,
    )


# ---------------------------------------------------------------- referrals


_REFERRAL_INSERT = CompiledInsert(Referral)
_PARTIES_INSERT = CompiledInsert(Party)
_OUTBOX_INSERT = CompiledInsert(OutboxMail)


def insert_referral(new: NewReferral, ref: str) -> ReferralRecord | None:
    """Insert a referral and its parties under a reference drawn beforehand; None when that
    reference is taken (nothing is written then). The record is what was written, as a
    read would give it back: reading it again inside the write lock cost two queries."""
    try:
        with database.atomic():
            return _insert_referral(new, ref)
    except peewee.IntegrityError:
        if Referral.select().where(Referral.ref == ref).exists():
            return None
        raise  # not the reference: the inbound message already opened a referral


def _insert_referral(new: NewReferral, ref: str) -> ReferralRecord:
    referral = _REFERRAL_INSERT.one_as_read(
        {
            "ref": ref,
            "state": new.state,
            "referrer_email": new.referrer_email,
            "referrer_name": new.referrer_name,
            "need": new.need,
            "budget": new.budget,
            "follow_up_days": new.follow_up_days,
            "language": new.language,
            "subject": new.subject,
            "request_message_id": new.request_message_id,
            "inbound": new.inbound_id,
            "created_at": new.created_at,
            "updated_at": new.created_at,
            "expires_at": new.expires_at,
            "remind_at": new.remind_at,
            "copy_me": new.copy_me,
        }
    )
    parties = [
        _PARTIES_INSERT.one_as_read(
            {
                "referral": referral.id,
                "role": p.role,
                "name": p.name,
                "email": p.email,
                "phone": p.phone,
                "prefers": p.prefers,
                "best_time": p.best_time,
                "booking": p.booking,
                "language": p.language,
                "ask_key": p.ask_key,
                "reply_key": p.reply_key,
                "timezone": p.timezone,
                "withheld_until": p.withheld_until,
            }
        )
        for p in new.parties
    ]
    # In id order, as a read of the parties gives them.
    return _referral(referral, tuple(_party(p) for p in parties))


# Stand-ins for the values of a compiled read (store/compiled.py): never a real id or key.
_ID = -7_000_001
_KEY = "\x00key"

_REFERRAL = CompiledRead(lambda i: Referral.select().where(Referral.id == i), _ID)
_REFERRAL_LOCKED = CompiledRead(
    lambda i: (
        Referral.select().where(Referral.id == i).for_update()
        if is_postgresql()
        else Referral.select().where(Referral.id == i)
    ),
    _ID,
)
_PARTIES = CompiledRead(lambda i: Party.select().where(Party.referral == i).order_by(Party.id), _ID)
_REFERRAL_OF_ASK = CompiledRead(
    lambda k: Party.select(Party.referral).where(Party.ask_key == k).limit(1), _KEY
)
_REFERRAL_BY_REF = CompiledRead(lambda r: Referral.select().where(Referral.ref == r), _KEY)
_REFERRAL_ASKING = CompiledRead(
    lambda k: (
        Referral.select()
        .join(Party, on=(Party.referral == Referral.id))
        .where(Party.ask_key == k)
        .limit(1)
    ),
    _KEY,
)
_INBOUND = CompiledRead(lambda i: InboundMessage.select().where(InboundMessage.id == i), _ID)


def referral_by_id(referral_id: int) -> ReferralRecord | None:
    row = _REFERRAL.first_record(referral_id)
    return _referral(row) if row else None


def referrals_by_id(referral_ids: Iterable[int]) -> list[ReferralRecord]:
    """The referrals with these ids, in id order, each with its parties; two queries a chunk."""
    rows = _REFERRALS_IN.rows(referral_ids)
    parties: dict[int, list[PartyRecord]] = {}
    for referral_id, *values in _PARTIES_IN.rows(row[0] for row in rows):
        parties.setdefault(referral_id, []).append(PartyRecord(*values))
    return [
        ReferralRecord(
            *head, parties=tuple(parties.get(head[0], ())), remind_at=remind_at, copy_me=copy_me
        )
        for *head, remind_at, copy_me in rows
    ]


# A batch's referrals and parties, read as tuples in the order of the records' fields: the
# tick reads a batch at a time, where peewee's rows cost more than the queries.
_REFERRALS_IN = CompiledIn(
    (
        Referral.id,
        Referral.ref,
        Referral.state,
        Referral.referrer_email,
        Referral.referrer_name,
        Referral.need,
        Referral.budget,
        Referral.follow_up_days,
        Referral.language,
        Referral.subject,
        Referral.request_message_id,
        Referral.created_at,
        Referral.updated_at,
        Referral.expires_at,
        Referral.introduced_at,
        Referral.remind_at,
        Referral.copy_me,
    ),
    key=Referral.id,
)
_PARTIES_IN = CompiledIn(
    (
        Party.referral,
        Party.id,
        Party.role,
        Party.name,
        Party.email,
        Party.phone,
        Party.prefers,
        Party.best_time,
        Party.booking,
        Party.language,
        Party.ask_key,
        Party.answer,
        Party.answered_at,
        Party.answer_channel,
        Party.reply_key,
        Party.decline_reason,
        Party.decline_text,
        Party.unclear_told,
        Party.reminded_at,
        Party.timezone,
        Party.withheld_until,
    ),
    key=Party.referral,
)


def referral_by_ref(ref: str) -> ReferralRecord | None:
    row = _REFERRAL_BY_REF.first_record(ref.strip().upper())
    return _referral(row) if row else None


def lock_referral(referral_id: int) -> ReferralRecord:
    """Read a referral and hold its row until the transaction ends: every transition starts here.

    Two answers arriving together both lock the referral, so the second sees the first.
    SQLite needs no row lock: IMMEDIATE transactions already run one writer at a time.
    """
    row = _REFERRAL_LOCKED.first_record(referral_id)
    if row is None:
        raise Referral.DoesNotExist(f"no referral {referral_id}")
    return _referral(row)


def referral_id_for_ask(ask_key: str) -> int | None:
    row = _REFERRAL_OF_ASK.first_record(ask_key)
    return row.referral_id if row else None


def referral_asking(ask_key: str) -> ReferralRecord | None:
    """The referral whose party a consent question asks, with its parties."""
    row = _REFERRAL_ASKING.first_record(ask_key)
    return _referral(row) if row else None


_MOVE = CompiledUpdate(
    Referral,
    (Referral.state, Referral.updated_at, Referral.introduced_at),
    where=(Referral.id, Referral.state),
)


def move_referral(
    referral_id: int,
    from_state: State,
    to_state: State,
    now: datetime,
    introduced_at: datetime | None,
) -> bool:
    """Change a referral's state only if it is still `from_state`; False if it was not."""
    return bool(_MOVE.run(to_state, now, introduced_at, referral_id, from_state))


_RECORD_ANSWER = CompiledUpdate(
    Party,
    (
        Party.answer,
        Party.answered_at,
        Party.answer_channel,
        Party.decline_reason,
        Party.decline_text,
    ),
    where=(Party.id,),
)


def record_answer(
    party_id: int,
    answer: str,
    channel: str,
    now: datetime,
    reason: str | None = None,
    reason_text: str = "",
) -> None:
    _RECORD_ANSWER.run(answer, now, channel, reason, reason_text, party_id)


def mark_unclear_told(party_id: int) -> bool:
    """Note that a party was told how to answer; False if they already had been."""
    changed = (
        Party.update(unclear_told=True)
        .where((Party.id == party_id) & (Party.unclear_told == False))  # noqa: E712
        .execute()
    )
    return bool(changed)


_ADD_EVENT = CompiledInsert(Event)


def add_event(
    referral_id: int, now: datetime, kind: str, actor: str, channel: str, detail: str = ""
) -> None:
    row = dict(referral=referral_id, at=now, kind=kind, actor=actor, channel=channel, detail=detail)
    held = held_rows()
    if held is not None:
        held.append(row)
        return
    _ADD_EVENT.run([row])


@contextlib.contextmanager
def events_together() -> Iterator[None]:
    """The events added inside go in when it ends, in the order added, a few hundred to a
    statement; none if it ends in an exception, nor those of a `transaction` inside that
    failed (`holding_rows`). For a transaction of many small writes (a batch of the tick)
    that reads none of its events back: on PostgreSQL each insert of its own was a round
    trip."""
    with holding_rows() as held:
        yield
    _ADD_EVENT.run(held)


def events_for(referral_id: int) -> list[EventRecord]:
    rows = Event.select().where(Event.referral == referral_id).order_by(Event.at, Event.id)
    return [EventRecord(r.at, r.kind, r.actor, r.channel, r.detail) for r in rows]


def not_introduced(referral_ids: Iterable[int]) -> set[tuple[int, str]]:
    """(referral, role) of each party of these referrals an introduction did not reach."""
    found: set[tuple[int, str]] = set()
    for ids in _chunks(referral_ids):
        query = Event.select(Event.referral, Event.actor).where(
            Event.referral.in_(ids) & (Event.kind == "not introduced")
        )
        found |= {(referral, actor) for referral, actor in query.tuples()}
    return found


def referral_counts(referrer_email: str | None = None) -> dict[str, int]:
    query = Referral.select(Referral.state, peewee.fn.COUNT(Referral.id))
    if referrer_email:
        query = query.where(Referral.referrer_email == referrer_email.lower())
    return {state: count for state, count in query.group_by(Referral.state).tuples()}


def recent_referrals(referrer_email: str | None = None, limit: int = 50) -> list[ReferralRecord]:
    query = Referral.select().order_by(Referral.created_at.desc(), Referral.id.desc()).limit(limit)
    if referrer_email:
        query = query.where(Referral.referrer_email == referrer_email.lower())
    rows = list(query)
    parties = _parties_of([r.id for r in rows])
    return [_referral(r, parties.get(r.id, ())) for r in rows]


def _parties_of(referral_ids: Iterable[int]) -> dict[int, tuple[PartyRecord, ...]]:
    found: dict[int, list[PartyRecord]] = {}
    for ids in _chunks(referral_ids):
        for row in Party.select().where(Party.referral.in_(ids)).order_by(Party.id):
            found.setdefault(row.referral_id, []).append(_party(row))
    return {k: tuple(v) for k, v in found.items()}


def _chunks(ids: Iterable[int], size: int = 500) -> Iterable[list[int]]:
    """Ids in bounded lists: SQLite limits the parameters of one statement."""
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# A row of a table: its model instance, or a compiled read's record of it (the same names).
def _referral(row: Referral, parties: tuple[PartyRecord, ...] | None = None) -> ReferralRecord:
    if parties is None:
        parties = tuple(_party(p) for p in _PARTIES.records(row.id))
    return ReferralRecord(
        id=row.id,
        ref=row.ref,
        state=row.state,
        referrer_email=row.referrer_email,
        referrer_name=row.referrer_name,
        need=row.need,
        budget=row.budget,
        follow_up_days=row.follow_up_days,
        language=row.language,
        subject=row.subject,
        request_message_id=row.request_message_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        introduced_at=row.introduced_at,
        parties=parties,
        copy_me=bool(row.copy_me),
        remind_at=row.remind_at,
    )


def _party(row: Party) -> PartyRecord:
    return PartyRecord(
        id=row.id,
        role=row.role,
        name=row.name,
        email=row.email,
        phone=row.phone,
        prefers=row.prefers,
        best_time=row.best_time,
        booking=row.booking,
        language=row.language,
        ask_key=row.ask_key,
        answer=row.answer,
        answered_at=row.answered_at,
        answer_channel=row.answer_channel,
        reply_key=row.reply_key,
        decline_reason=row.decline_reason,
        decline_text=row.decline_text,
        unclear_told=row.unclear_told,
        reminded_at=row.reminded_at,
        timezone=row.timezone,
        withheld_until=row.withheld_until,
    )


def ask_key_for_reply(reply_key: str) -> str | None:
    """The consent question a reply address belongs to."""
    row = Party.get_or_none(Party.reply_key == reply_key.lower())
    return row.ask_key if row else None


def ask_key_for_message_ids(message_ids: Sequence[str]) -> str | None:
    """The consent question one of these Message-IDs asked (for replies that lost the tag)."""
    if not message_ids:
        return None
    row = (
        Party.select(Party.ask_key)
        .join(OutboxMail, on=OutboxMail.party == Party.id)
        .where(OutboxMail.message_id.in_(list(message_ids)) & (OutboxMail.purpose != INTRODUCTION))
        .first()
    )
    return row.ask_key if row else None


def answers_our_mail(message_ids: Sequence[str]) -> bool:
    """Whether one of these Message-IDs is a question or survey we sent: the SMTP edge's one
    question about a reply that lost its tag, asked in a single query."""
    if not message_ids:
        return False
    return (
        OutboxMail.select(OutboxMail.id)
        .where(
            OutboxMail.message_id.in_(list(message_ids))
            & (
                (OutboxMail.party.is_null(False) & (OutboxMail.purpose != INTRODUCTION))
                | OutboxMail.survey.is_null(False)
            )
        )
        .exists()
    )


def open_questions_to(address: str) -> list[tuple[int, int, str]]:
    """(referral id, party id, ask key) of every question to this address in a referral still
    asking, answered or not: a yes may still be taken back (erasure, "never again")."""
    rows = (
        Party.select(Party.referral, Party.id, Party.ask_key)
        .join(Referral)
        .where((Party.email == address.lower()) & (Referral.state == State.ASKING))
        .tuples()
    )
    return list(rows)


def email_of_ask(ask_key: str) -> str | None:
    row = Party.get_or_none(Party.ask_key == ask_key)
    return row.email if row else None


def sent_mail_by_bounce_key(bounce_key: str) -> SentMail | None:
    """The mail a VERP bounce address names: to whom it went, and which question it asked."""
    row = OutboxMail.get_or_none(OutboxMail.bounce_key == bounce_key.lower())
    return None if row is None else _sent_mail(row)


def sent_mail_by_message_ids(message_ids: Sequence[str]) -> SentMail | None:
    """The one mail a bounce without VERP quotes by Message-ID, or None.

    None also when the Message-IDs name several envelopes (the introduction's one Message-ID
    goes to each person): the quote then cannot say which of them failed.
    """
    if not message_ids:
        return None
    rows = list(OutboxMail.select().where(OutboxMail.message_id.in_(list(message_ids))).limit(2))
    return _sent_mail(rows[0]) if len(rows) == 1 else None


def _sent_mail(row: OutboxMail) -> SentMail:
    return SentMail(
        id=row.id,
        purpose=row.purpose,
        referral_id=row.referral_id,
        party_id=row.party_id,
        recipients=tuple(row.recipients.split("\n")),
        survey_id=row.survey_id,
    )


# ---------------------------------------------------------------- outbox


def enqueue(mails: Iterable[OutgoingMail], now: datetime) -> None:
    """Queue mails to send; a mail whose every recipient said "never again" is dropped here,
    the one place all mail passes, so no code path can forget to ask."""
    mails = list(mails)
    stopped = suppressions.suppressed(sorted({r for m in mails for r in m.recipients}))
    mails = [m for m in mails if not set(m.recipients) <= stopped]
    rows = [
        {
            "message_id": m.message_id,
            "purpose": m.purpose,
            "referral": m.referral_id,
            "party": m.party_id,
            "bounce_key": m.bounce_key,
            "survey": m.survey_id,
            "envelope_from": m.envelope_from,
            "recipients": "\n".join(m.recipients),
            "raw": m.raw,
            "created_at": now,
            "due_at": now,
        }
        for m in mails
    ]
    if rows:
        _OUTBOX_INSERT.run(rows)


def wrote_to_party(party_id: int, purpose: str) -> bool:
    """Whether a mail of this purpose was ever queued for this party of a referral."""
    return (
        OutboxMail.select()
        .where((OutboxMail.party == party_id) & (OutboxMail.purpose == purpose))
        .exists()
    )


def count_mails_to(address: str, purposes: Sequence[str], since: datetime) -> int:
    """How many mails of these purposes went (or wait to go) to one address since then."""
    return (
        OutboxMail.select()
        .where(
            (OutboxMail.recipients == address)
            & (OutboxMail.created_at >= since)
            & OutboxMail.purpose.in_(list(purposes))
        )
        .count()
    )


def claim_outbox(
    now: datetime, lease_until: datetime, limit: int, holder: str = ""
) -> list[OutboxItem]:
    """Take up to `limit` due mails by pushing their due time to the end of a lease.

    The lease is the whole claim: a worker that dies mid-send leaves the mail due again
    when the lease runs out (or when its successor on the same host releases it, which is
    what `holder` is for), and the retry sends the same stored bytes.
    """
    with database.atomic():
        rows = _DUE_OUTBOX.records(now, limit)
        if not rows:
            return []
        OutboxMail.update(
            due_at=lease_until, attempts=OutboxMail.attempts + 1, claimed_by=holder
        ).where(OutboxMail.id.in_([r.id for r in rows])).execute()
    return [
        OutboxItem(
            id=r.id,
            message_id=r.message_id,
            purpose=r.purpose,
            envelope_from=r.envelope_from,
            recipients=tuple(x for x in r.recipients.split("\n") if x),
            raw=bytes(r.raw),
            attempts=r.attempts + 1,
            created_at=r.created_at,
            deferred_since=r.deferred_since,
        )
        for r in rows
    ]


def _due_outbox(now: datetime, limit: int) -> peewee.ModelSelect:
    query = (
        OutboxMail.select(
            OutboxMail.id,
            OutboxMail.message_id,
            OutboxMail.purpose,
            OutboxMail.envelope_from,
            OutboxMail.recipients,
            OutboxMail.raw,
            OutboxMail.attempts,
            OutboxMail.created_at,
            OutboxMail.deferred_since,
        )
        .where((OutboxMail.state == OutboxState.PENDING) & (OutboxMail.due_at <= now))
        .order_by(OutboxMail.due_at, OutboxMail.id)
        .limit(limit)
    )
    return query.for_update(skip_locked=True) if is_postgresql() else query


# Read as records, not model instances: making one per mail cost the outbox more than the
# database's own work, under load as much as its SMTP client.
_DUE_OUTBOX = CompiledRead(_due_outbox, _WHEN, -7_000_004)


def renew_claims(outbox_ids: Sequence[int], holder: str, lease_until: datetime) -> set[int]:
    """Extend `holder`'s lease on these mails; the ids it still holds (a claim that was
    released or taken over meanwhile is not renewed)."""
    if not outbox_ids:
        return set()
    held = (OutboxMail.state == OutboxState.PENDING) & (OutboxMail.claimed_by == holder)
    with database.atomic():
        OutboxMail.update(due_at=lease_until).where(
            OutboxMail.id.in_(list(outbox_ids)) & held
        ).execute()
        rows = OutboxMail.select(OutboxMail.id).where(OutboxMail.id.in_(list(outbox_ids)) & held)
        return {r.id for r in rows}


def claim_holders() -> list[str]:
    """Every process that holds a claim on a mail waiting to be sent."""
    rows = (
        OutboxMail.select(OutboxMail.claimed_by)
        .where((OutboxMail.state == OutboxState.PENDING) & (OutboxMail.claimed_by != ""))
        .distinct()
    )
    return [r.claimed_by for r in rows]


def release_claims(holders: Sequence[str], now: datetime) -> int:
    """Make the mails these (dead) processes held due at once; how many there were."""
    if not holders:
        return 0
    with database.atomic():
        return (
            OutboxMail.update(due_at=now, claimed_by="")
            .where(
                (OutboxMail.state == OutboxState.PENDING) & OutboxMail.claimed_by.in_(list(holders))
            )
            .execute()
        )


def mark_sent(outbox_id: int, now: datetime, note: str = "") -> None:
    mark_sent_many([(outbox_id, note)], now)


# The mails are with the relay already: recording that must not wait for a lease to run out.
@once_more_if_connection_lost
def mark_sent_many(sent: Sequence[tuple[int, str]], now: datetime) -> None:
    """Record several handed-on mails in one transaction (one commit, one fsync)."""
    with database.atomic():
        plain = [i for i, note in sent if not note]
        for ids in _chunks(plain):
            _MARK_SENT.run_among(ids, OutboxState.SENT, now, "", "")
        for outbox_id, note in sent:
            if note:
                _MARK_SENT.run_among([outbox_id], OutboxState.SENT, now, note, "")


# Once per group of sent mails, under load many a second: built once, not per group.
_MARK_SENT = CompiledUpdate(
    OutboxMail,
    (OutboxMail.state, OutboxMail.sent_at, OutboxMail.last_error, OutboxMail.claimed_by),
)


def reschedule(
    outbox_id: int, due_at: datetime, error: str, deferred_at: datetime | None = None
) -> None:
    """Make a mail due again at `due_at`; `deferred_at`: the relay refused it for now then,
    which starts its retry window unless an earlier refusal did."""
    pending = (OutboxMail.id == outbox_id) & (OutboxMail.state == OutboxState.PENDING)
    with database.atomic():
        OutboxMail.update(due_at=due_at, last_error=error, claimed_by="").where(pending).execute()
        if deferred_at is not None:
            OutboxMail.update(deferred_since=deferred_at).where(
                pending & OutboxMail.deferred_since.is_null()
            ).execute()


def mark_failed(outbox_id: int, now: datetime, error: str) -> None:
    with database.atomic():
        OutboxMail.update(
            state=OutboxState.FAILED, sent_at=None, last_error=error, due_at=now
        ).where(OutboxMail.id == outbox_id).execute()


def settle_failure(outbox_id: int, now: datetime) -> FailedMail | None:
    """Take one failure to settle; None if it is not failed or another instance settled it."""
    changed = (
        OutboxMail.update(settled_at=now)
        .where(
            (OutboxMail.id == outbox_id)
            & (OutboxMail.state == OutboxState.FAILED)
            & OutboxMail.settled_at.is_null()
        )
        .execute()
    )
    if not changed:
        return None
    row = OutboxMail.get_by_id(outbox_id)
    return FailedMail(
        id=row.id,
        purpose=row.purpose,
        referral_id=row.referral_id,
        party_id=row.party_id,
        survey_id=row.survey_id,
        recipients=tuple(x for x in row.recipients.split("\n") if x),
        error=row.last_error,
    )


def outbox_counts() -> dict[str, int]:
    rows = OutboxMail.select(OutboxMail.state, peewee.fn.COUNT(OutboxMail.id)).group_by(
        OutboxMail.state
    )
    return {state: count for state, count in rows.tuples()}


@once_more_if_connection_lost  # a read: safe to run again on a new connection
def oldest_pending_mail() -> datetime | None:
    """When the longest-waiting mail still to go was queued; None when none waits. Asked by
    every health check: only the pending rows are read, through their partial index."""
    row = (
        OutboxMail.select(OutboxMail.created_at)
        .where(OutboxMail.state == OutboxState.PENDING)
        .order_by(OutboxMail.created_at)
        .limit(1)
        .first()
    )
    return None if row is None else row.created_at


@once_more_if_connection_lost
def intake_backlog() -> int:
    """Stored messages intake has not handled yet, counted in their partial index."""
    return InboundMessage.select().where(InboundMessage.state == InboundState.NEW).count()


def consent_answer_counts() -> dict[tuple[str, str], int]:
    """Consent answers given, by (channel, answer)."""
    rows = (
        Party.select(Party.answer_channel, Party.answer, peewee.fn.COUNT(Party.id))
        .where(Party.answer.is_null(False))
        .group_by(Party.answer_channel, Party.answer)
    )
    return {(channel or "", answer): count for channel, answer, count in rows.tuples()}


def survey_answer_counts() -> dict[str, int]:
    """Surveys answered, by channel."""
    rows = (
        Survey.select(Survey.channel, peewee.fn.COUNT(Survey.id))
        .where(Survey.state == SurveyState.ANSWERED)
        .group_by(Survey.channel)
    )
    return {channel or "": count for channel, count in rows.tuples()}


def requests_received_at(outbox_ids: Iterable[int]) -> dict[int, datetime]:
    """When the request each mail is about was accepted, by mail; mails no request began
    are left out."""
    found: dict[int, datetime] = {}
    for ids in _chunks(outbox_ids):
        rows = (
            OutboxMail.select(OutboxMail.id, InboundMessage.received_at)
            .join(Referral, on=OutboxMail.referral == Referral.id)
            .join(InboundMessage, on=Referral.inbound == InboundMessage.id)
            .where(OutboxMail.id.in_(ids))
            .tuples()
        )
        found.update(rows)
    return found


def outbox_for_referral(referral_id: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(purpose, state, recipients) of every mail about one referral, oldest first."""
    rows = (
        OutboxMail.select(OutboxMail.purpose, OutboxMail.state, OutboxMail.recipients)
        .where(OutboxMail.referral == referral_id)
        .order_by(OutboxMail.id)
    )
    return [(p, s, tuple(x for x in r.split("\n") if x)) for p, s, r in rows.tuples()]


# ---------------------------------------------------------------- deadlines
# Reminders and expiry ask "what is due?" every tick; each question is answered from a
# partial index of the referrals still asking, so its cost follows what is due, not the
# table. Each claim locks one referral and skips those another instance holds.


def _reminders_due(now: datetime) -> peewee.ModelSelect:
    return (
        Referral.select(Referral.id)
        .where((Referral.state == State.ASKING) & (Referral.remind_at <= now))
        .order_by(Referral.remind_at)
        .limit(1)
    )


def _expiries_due(now: datetime) -> peewee.ModelSelect:
    return (
        Referral.select(Referral.id)
        .where((Referral.state == State.ASKING) & (Referral.expires_at <= now))
        .order_by(Referral.expires_at)
        .limit(1)
    )


def _surveys_due(now: datetime) -> peewee.ModelSelect:
    return (
        Survey.select(Survey.id)
        .where((Survey.state == SurveyState.SCHEDULED) & (Survey.due_at <= now))
        .order_by(Survey.due_at)
        .limit(1)
    )


def _surveys_closing(now: datetime) -> peewee.ModelSelect:
    return (
        Survey.select(Survey.id)
        .where((Survey.state == SurveyState.SENT) & (Survey.expires_at <= now))
        .order_by(Survey.expires_at)
        .limit(1)
    )


def _failures_unsettled(now: datetime) -> peewee.ModelSelect:
    # A failure is due the moment it happens, so `now` does not narrow it.
    return (
        OutboxMail.select(OutboxMail.id)
        .where((OutboxMail.state == OutboxState.FAILED) & OutboxMail.settled_at.is_null())
        .order_by(OutboxMail.id)
        .limit(1)
    )


def _withheld_due(now: datetime) -> peewee.ModelSelect:
    return (
        Party.select(Party.id, Party.referral)
        .where(Party.withheld_until.is_null(False) & (Party.withheld_until <= now))
        .order_by(Party.withheld_until)
        .limit(1)
    )


# The "what is due" questions by kind; tests ask the database for their plans.
DUE = {
    "reminders": _reminders_due,
    "expiries": _expiries_due,
    "surveys": _surveys_due,
    "survey expiries": _surveys_closing,
    "failures": _failures_unsettled,
    "withheld": _withheld_due,
}


def claim_due(kind: str, now: datetime, n: int) -> list[int]:
    """Ids of up to `n` due items of a kind (a key of DUE), the longest due first, locked
    until the caller's transaction ends. On PostgreSQL rows another instance holds are
    skipped, so instances share what is due; on SQLite the caller is the one writer."""
    query = DUE[kind](now).limit(n)
    if is_postgresql():
        query = query.for_update(skip_locked=True)
    return [row[0] for row in query.tuples()]


def due_now(kind: str, now: datetime, n: int) -> list[int]:
    """What `claim_due` would claim, read without a lock or a transaction: what to prepare
    before taking one."""
    return [row[0] for row in DUE[kind](now).limit(n).tuples()]


# Of each kind's claimed rows, the referral each belongs to.
_REFERRAL_OF = {
    "surveys": Survey.referral,
    "survey expiries": Survey.referral,
    "failures": OutboxMail.referral,
    "withheld": Party.referral,
}


def hold_referrals_of(kind: str, ids: Sequence[int]) -> None:
    """Lock, in id order, the referrals of claimed rows that are not referrals themselves.

    Handling a batch locks each item's referral in turn; two instances taking them in their
    own orders could each wait for the other. Locked here first, in one order for all, none
    waits in a circle. SQLite has one writer, so nothing to do there.
    """
    column = _REFERRAL_OF.get(kind)
    if column is None or not ids or not is_postgresql():
        return
    owners = column.model.select(column).where(column.model.id.in_(list(ids)))
    referral_ids = sorted({row for (row,) in owners.tuples() if row is not None})
    if referral_ids:
        query = Referral.select(Referral.id).where(Referral.id.in_(referral_ids))
        list(query.order_by(Referral.id).for_update().tuples())


def referral_id_of_party(party_id: int) -> int:
    return Party.get_by_id(party_id).referral_id


def withheld_done(party_id: int) -> bool:
    """The party's silent no is settled; False if another transaction settled it first."""
    changed = (
        Party.update(withheld_until=None)
        .where((Party.id == party_id) & Party.withheld_until.is_null(False))
        .execute()
    )
    return bool(changed)


def reminders_done(referral_id: int) -> None:
    """Nothing more to remind anyone of: the referral leaves the reminder index."""
    _REMINDERS_DONE.run(None, referral_id)


def mark_reminded(party_id: int, now: datetime) -> bool:
    """Note that a party's reminder is queued; False if one already was."""
    return bool(_MARK_REMINDED.run(now, party_id))


_REMINDERS_DONE = CompiledUpdate(Referral, (Referral.remind_at,), where=(Referral.id,))
_MARK_REMINDED = CompiledUpdate(
    Party, (Party.reminded_at,), where=(Party.id,), where_null=(Party.reminded_at,)
)


# ---------------------------------------------------------------- surveys


def create_survey(
    referral_id: int, party_id: int, round_: int, due_at: datetime, survey_key: str, reply_key: str
) -> bool:
    """Schedule one round of a party's follow-up; False if that round already exists."""
    row = {
        "referral": referral_id,
        "party": party_id,
        "round": round_,
        "due_at": due_at,
        "survey_key": survey_key,
        "reply_key": reply_key,
    }
    try:
        with database.atomic():
            _SURVEY_INSERT.one(row)
    except peewee.IntegrityError:
        return False
    return True


_SURVEY_INSERT = CompiledInsert(Survey)
_SURVEYS_NOT_YET_THERE = CompiledInsert(Survey, or_ignore=True)


def create_surveys(rows: Sequence[tuple[int, int, int, datetime, str, str]]) -> None:
    """`create_survey` for several at once, as (referral, party, round, due, survey key,
    reply key): one statement, no savepoint each; a round that already exists is kept."""
    fields = ("referral", "party", "round", "due_at", "survey_key", "reply_key")
    _SURVEYS_NOT_YET_THERE.run([dict(zip(fields, row, strict=True)) for row in rows])


def survey_by_id(survey_id: int) -> SurveyRecord | None:
    row = Survey.get_or_none(Survey.id == survey_id)
    return _survey(row) if row else None


def surveys_by_id(survey_ids: Iterable[int]) -> list[SurveyRecord]:
    """The surveys with these ids, in id order."""
    found = []
    for *head, amount, currency, more, comment in _SURVEYS_IN.rows(survey_ids):
        # SQLite keeps a NUMERIC as a number: 1200.50 comes back as 1200.5.
        amount = amount.quantize(CENT) if amount is not None else None
        found.append(SurveyRecord(*head, amount, currency, more, comment))
    return found


# In the order of SurveyRecord's fields.
_SURVEYS_IN = CompiledIn(
    (
        Survey.id,
        Survey.referral,
        Survey.party,
        Survey.round,
        Survey.state,
        Survey.survey_key,
        Survey.reply_key,
        Survey.due_at,
        Survey.sent_at,
        Survey.expires_at,
        Survey.answered_at,
        Survey.channel,
        Survey.rating,
        Survey.business,
        Survey.amount,
        Survey.currency,
        Survey.more,
        Survey.comment,
    ),
    key=Survey.id,
)


def survey_by_key(survey_key: str) -> SurveyRecord | None:
    row = Survey.get_or_none(Survey.survey_key == survey_key)
    return _survey(row) if row else None


def survey_key_for_reply(reply_key: str) -> str | None:
    row = Survey.get_or_none(Survey.reply_key == reply_key.lower())
    return row.survey_key if row else None


def survey_key_for_message_ids(message_ids: Sequence[str]) -> str | None:
    """The survey one of these Message-IDs carried (for replies that lost the tag)."""
    if not message_ids:
        return None
    row = (
        Survey.select(Survey.survey_key)
        .join(OutboxMail, on=OutboxMail.survey == Survey.id)
        .where(OutboxMail.message_id.in_(list(message_ids)))
        .first()
    )
    return row.survey_key if row else None


def surveys_of(referral_id: int) -> list[SurveyRecord]:
    rows = Survey.select().where(Survey.referral == referral_id).order_by(Survey.id)
    return [_survey(r) for r in rows]


def surveys_for(referral_ids: Iterable[int]) -> dict[int, tuple[SurveyRecord, ...]]:
    found: dict[int, list[SurveyRecord]] = {}
    for ids in _chunks(referral_ids):
        for row in Survey.select().where(Survey.referral.in_(ids)).order_by(Survey.id):
            found.setdefault(row.referral_id, []).append(_survey(row))
    return {k: tuple(v) for k, v in found.items()}


def move_survey(survey_id: int, from_state: str, to_state: str, **fields: object) -> bool:
    """Change a survey's state only if it is still in `from_state`: the never-twice guard."""
    names = tuple(fields)
    move = _SURVEY_MOVES.get(names)
    if move is None:
        changing = (Survey.state, *(getattr(Survey, name) for name in names))
        move = _SURVEY_MOVES[names] = CompiledUpdate(Survey, changing, (Survey.id, Survey.state))
    return bool(move.run(to_state, *fields.values(), survey_id, from_state))


# One compiled update for each set of fields a move also changes: a tick moves many.
_SURVEY_MOVES: dict[tuple[str, ...], CompiledUpdate] = {}


def _survey(row: Survey) -> SurveyRecord:
    return SurveyRecord(
        id=row.id,
        referral_id=row.referral_id,
        party_id=row.party_id,
        round=row.round,
        state=row.state,
        survey_key=row.survey_key,
        reply_key=row.reply_key,
        due_at=row.due_at,
        sent_at=row.sent_at,
        expires_at=row.expires_at,
        answered_at=row.answered_at,
        channel=row.channel,
        rating=row.rating,
        business=row.business,
        # SQLite keeps a NUMERIC as a number: 1200.50 comes back as 1200.5.
        amount=row.amount.quantize(CENT) if row.amount is not None else None,
        currency=row.currency,
        more=row.more,
        comment=row.comment,
    )


# ---------------------------------------------------------------- referrers and reports


def referrer(email: str, make_key: Callable[[], str], now: datetime) -> ReferrerRecord:
    """A referrer's own row, made on first use."""
    email = email.lower()
    row = Referrer.get_or_none(Referrer.email == email)
    if row is None:
        try:
            with database.atomic():
                Referrer.insert(email=email, key=make_key(), created_at=now).execute()
        except peewee.IntegrityError:
            pass  # made by another instance meanwhile
        row = Referrer.get(Referrer.email == email)
    return _referrer_record(row)


def referrer_by_key(key: str) -> ReferrerRecord | None:
    row = Referrer.get_or_none(Referrer.key == key)
    return _referrer_record(row) if row else None


def set_digest(referrer_id: int, enabled: bool) -> bool:
    """Turn a referrer's weekly digest on or off; False if it already was."""
    changed = (
        Referrer.update(digest=enabled)
        .where((Referrer.id == referrer_id) & (Referrer.digest != enabled))
        .execute()
    )
    return bool(changed)


def claim_digest(referrer_id: int, slot: datetime) -> bool:
    """Take this week's digest for one referrer; False if it went already or they said stop."""
    changed = (
        Referrer.update(digest_slot=slot)
        .where(
            (Referrer.id == referrer_id)
            & (Referrer.digest == True)  # noqa: E712
            & (Referrer.digest_slot.is_null() | (Referrer.digest_slot < slot))
        )
        .execute()
    )
    return bool(changed)


def active_referrers(since: datetime, until: datetime) -> list[str]:
    """Referrers with something new on any of their referrals in [since, until)."""
    rows = (
        Referral.select(Referral.referrer_email)
        .join(Event)
        .where((Event.at >= since) & (Event.at < until))
        .distinct()
        .tuples()
    )
    return sorted(email for (email,) in rows)


def referrer_name(referrer_email: str) -> str:
    """The name a referrer signed their latest named request with; "" if they never gave one."""
    row = (
        Referral.select(Referral.referrer_name)
        .where((Referral.referrer_email == referrer_email.lower()) & (Referral.referrer_name != ""))
        .order_by(Referral.created_at.desc(), Referral.id.desc())
        .first()
    )
    return row.referrer_name if row else ""


def events_of_referrer(
    referrer_email: str, since: datetime, until: datetime
) -> list[tuple[ReferralRecord, list[EventRecord]]]:
    """Each referral of theirs with events in [since, until), and those events in order."""
    rows = (
        Event.select(Event, Referral.id)
        .join(Referral)
        .where(
            (Referral.referrer_email == referrer_email.lower())
            & (Event.at >= since)
            & (Event.at < until)
        )
        .order_by(Event.at, Event.id)
    )
    by_referral: dict[int, list[EventRecord]] = {}
    for r in rows:
        by_referral.setdefault(r.referral_id, []).append(
            EventRecord(r.at, r.kind, r.actor, r.channel, r.detail)
        )
    referrals = Referral.select().where(Referral.id.in_(list(by_referral)))
    parties = _parties_of(by_referral)
    found = {r.id: _referral(r, parties.get(r.id, ())) for r in referrals}
    return [(found[i], events) for i, events in by_referral.items() if i in found]


def referrals_for_report(
    referrer_email: str | None, since: datetime | None
) -> list[ReferralRecord]:
    """Every referral a report counts (of one referrer, created since a moment), oldest first."""
    query = Referral.select().order_by(Referral.created_at, Referral.id)
    if referrer_email:
        query = query.where(Referral.referrer_email == referrer_email.lower())
    if since is not None:
        query = query.where(Referral.created_at >= since)
    rows = list(query)
    parties = _parties_of(r.id for r in rows)
    return [_referral(r, parties.get(r.id, ())) for r in rows]


def _referrer_record(row: Referrer) -> ReferrerRecord:
    return ReferrerRecord(
        id=row.id, email=row.email, key=row.key, digest=row.digest, digest_slot=row.digest_slot
    )


def lock_survey(survey_id: int) -> SurveyRecord | None:
    """Read a survey and hold its row; a survey is always locked before its referral."""
    query = Survey.select().where(Survey.id == survey_id)
    if is_postgresql():
        query = query.for_update()
    row = query.first()
    return _survey(row) if row else None


def mark(name: str) -> str | None:
    """A small named value the service keeps for itself (the last digest slot done)."""
    row = StoreKey.get_or_none(StoreKey.name == name)
    return row.value if row else None


def set_mark(name: str, value: str) -> None:
    changed = StoreKey.update(value=value).where(StoreKey.name == name).execute()
    if not changed:
        try:
            with database.atomic():
                StoreKey.insert(name=name, value=value).execute()
        except peewee.IntegrityError:
            StoreKey.update(value=value).where(StoreKey.name == name).execute()


def language_of_referrer(email: str) -> str:
    """The language of a referrer's latest request, or "" if they have made none."""
    row = (
        Referral.select(Referral.language)
        .where(Referral.referrer_email == email.lower())
        .order_by(Referral.created_at.desc(), Referral.id.desc())
        .first()
    )
    return row.language if row else ""


def language_of_mail(bounce_key: str) -> str:
    """The language of whom a sent mail went to: their party's, else the first its
    Content-Language names (a mail to two people may name both)."""
    row = OutboxMail.get_or_none(OutboxMail.bounce_key == bounce_key.lower())
    if row is None:
        return ""
    if row.party_id is not None:
        party = Party.get_or_none(Party.id == row.party_id)
        if party is not None:
            return str(party.language)
    head = bytes(row.raw).split(b"\n\n", 1)[0]
    found = re.search(rb"(?mi)^Content-Language:\s*([A-Za-z-]+)", head)
    return found.group(1).decode().lower() if found else ""
