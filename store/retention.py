"""What retention lets go of, and when: the bodies of old mail, then who old referrals were about.

Every question here is a range read of a partial index that holds only what retention has
not finished with (see the indexes at the end of `store.models`), so a tick costs what is
due and what is still open, never what the store has held for years. A mail is stored with
`retention` NULL; the first time retention finds it old enough it lets its body go, or, when
the mail belongs to a referral, marks it to go with that referral's mail. A referral says
when its mail and its people were let go, and so leaves the index that asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import peewee

from service.model import InboundState, OutboxState, State
from store.erasure import PLACEHOLDER_PREFIX
from store.marks import may_become
from store.models import InboundMessage, OutboxMail, Party, Referral, Retention

ENDED = (State.DECLINED, State.EXPIRED, State.UNDELIVERABLE, State.EVALUATED)


@dataclass(frozen=True)
class Swept:
    """What one batch of retention did."""

    let_go: int = 0  # bodies emptied (and, counted by the caller, people anonymized)
    # Rows its questions found due. Each leaves the index it was found in, let go of or set
    # aside to wait for its referral, so a batch that found none had nothing left to do.
    found: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.let_go + other.let_go, self.found + other.found)

    def __bool__(self) -> bool:
        return self.found > 0


def let_mail_go(before: datetime, now: datetime, limit: int) -> Swept:
    """Empty the bodies of mail kept no longer, at most `limit` rows per question: how many
    of them still held a body, and how many it found due. In the caller's transaction.

    Mail that opened no referral goes once it is older than `before` and handled; mail of a
    referral goes once the referral ended before `before`; mail still waiting in the outbox
    then, or when one of its referral's people was forgotten, goes as soon as it went out.
    """
    return _by_age(before, limit) + _of_ended_referrals(before, now, limit) + _once_sent(limit)


def _held(model: type[InboundMessage] | type[OutboxMail]) -> peewee.Node:
    # The length of a blob is in its row header: counting what held a body reads no body.
    return (peewee.fn.LENGTH(model.raw) > 0).alias("held")


def _ended_keeping(before: datetime, let_go_at: peewee.Field) -> peewee.Node:
    """Referrals that ended before `before` and have not had `let_go_at` set: a range read
    of the partial index on that column (referral_mail_kept, referral_people_kept)."""
    return Referral.state.in_(list(ENDED)) & (Referral.updated_at < before) & let_go_at.is_null()


def _unfinished(column: peewee.Field) -> peewee.Node:
    return may_become(column, Retention.GONE)


def _by_age(before: datetime, limit: int) -> Swept:
    """Mail older than `before` that retention has not looked at yet, looked at once: mail
    of a referral that keeps its mail is marked to wait for it, the rest goes.

    One read of the unseen index per table, and every row it returns leaves that index (but
    one whose referral let its mail go meanwhile, which goes on the next batch). Reading the
    two kinds with a question each made each question step over the other's rows, every
    batch: after an upgrade or a shorter `keep_mail_days`, a backlog of millions cost a full
    read of it per batch of 500, inside the write transaction.
    """
    done = Swept()
    for model, at, settled, referral in (
        (
            InboundMessage,
            InboundMessage.received_at,
            InboundMessage.state != InboundState.NEW,
            Referral.inbound == InboundMessage.id,
        ),
        (
            OutboxMail,
            OutboxMail.created_at,
            OutboxMail.state != OutboxState.PENDING,
            OutboxMail.referral == Referral.id,
        ),
    ):
        kept = Referral.id.is_null(False) & Referral.mail_let_go_at.is_null()
        # Mail of no referral, or of one whose mail went before this was written (a reply to
        # a late answer), is kept from its own date; never while intake has yet to read it
        # or it waits in the outbox. Such mail is left unseen, and stepped over, until then.
        rows = list(
            model.select(model.id, _held(model), kept.alias("kept"))
            .join(Referral, peewee.JOIN.LEFT_OUTER, on=referral)
            .where(model.retention.is_null() & (at < before) & (kept | settled))
            .limit(limit)
            .tuples()
        )
        waits, goes = [], []
        for row_id, held, with_referral in rows:
            if with_referral:
                waits.append(row_id)
            else:
                goes.append((row_id, held))
        # Each update asks again what the read decided on, as the row is when the update
        # runs: on PostgreSQL another transaction may commit in between (another instance
        # letting the referral's mail go; an operator putting a quarantined message back
        # in line for intake, whose body must then stay).
        still_kept = peewee.fn.EXISTS(
            Referral.select(Referral.id).where(referral & Referral.mail_let_go_at.is_null())
        )
        _mark(model, waits, Retention.WITH_REFERRAL, still_kept)
        done += Swept(_empty(model, goes, settled & ~still_kept), len(rows))
    return done


def _of_ended_referrals(before: datetime, now: datetime, limit: int) -> Swept:
    """Referrals that ended before `before` whose mail is still kept: all of it goes, but
    what still waits in the outbox, which goes once sent."""
    due = list(
        Referral.select(Referral.id, Referral.inbound)
        .where(_ended_keeping(before, Referral.mail_let_go_at))
        .limit(limit)
        .tuples()
    )
    if not due:
        return Swept()
    referral_ids = [r for r, _ in due]
    requests = [i for _, i in due if i is not None]
    done = 0
    if requests:
        rows = (
            InboundMessage.select(InboundMessage.id, _held(InboundMessage))
            .where(InboundMessage.id.in_(requests) & _unfinished(InboundMessage.retention))
            .tuples()
        )
        done += _empty(InboundMessage, list(rows))
    rows = list(
        OutboxMail.select(OutboxMail.id, _held(OutboxMail), OutboxMail.state)
        .where(OutboxMail.referral.in_(referral_ids) & _unfinished(OutboxMail.retention))
        .tuples()
    )
    waiting = {i for i, _, state in rows if state == OutboxState.PENDING}
    _mark(OutboxMail, list(waiting), Retention.ONCE_SENT)
    done += _empty(OutboxMail, [(i, held) for i, held, state in rows if i not in waiting])
    # The first instance to let a referral's mail go says when it went.
    Referral.update(mail_let_go_at=now).where(
        Referral.id.in_(referral_ids) & Referral.mail_let_go_at.is_null()
    ).execute()
    return Swept(done, len(due))


def _once_sent(limit: int) -> Swept:
    """Mail that was still waiting to go when its referral's mail went, or when one of its
    people was forgotten, and has gone since."""
    rows = list(
        OutboxMail.select(OutboxMail.id, _held(OutboxMail))
        .where(
            (OutboxMail.retention == Retention.ONCE_SENT)
            & (OutboxMail.state != OutboxState.PENDING)
        )
        .limit(limit)
        .tuples()
    )
    return Swept(_empty(OutboxMail, rows), len(rows))


def _mark(
    model: type[InboundMessage] | type[OutboxMail],
    ids: list[int],
    mark: Retention,
    premise: peewee.Node | None = None,
) -> None:
    if ids:
        which = model.id.in_(ids) & may_become(model.retention, mark)
        if premise is not None:
            which &= premise
        model.update(retention=mark).where(which).execute()


def _empty(
    model: type[InboundMessage] | type[OutboxMail],
    rows: list[tuple[int, bool]],
    premise: peewee.Node | None = None,
) -> int:
    """Let go of these rows' bodies; how many had one."""
    if rows:
        ids = [i for i, _ in rows]
        which = model.id.in_(ids) & may_become(model.retention, Retention.GONE)
        if premise is not None:
            which &= premise
        model.update(raw=b"", retention=Retention.GONE).where(which).execute()
    return sum(1 for _, held in rows if held)


# ---------------------------------------------------------------- people


@dataclass(frozen=True)
class DuePeople:
    """Referrals whose people are kept no longer, and their parties not yet erased."""

    referrals: list[int] = field(default_factory=list)
    parties: list[tuple[int, str]] = field(default_factory=list)  # (party id, email)


def people_to_let_go(before: datetime, limit: int) -> DuePeople:
    """At most `limit` referrals that ended before `before` and still name their people."""
    referrals = [
        r
        for (r,) in Referral.select(Referral.id)
        .where(_ended_keeping(before, Referral.people_let_go_at))
        .limit(limit)
        .tuples()
    ]
    if not referrals:
        return DuePeople()
    # Someone forgotten already is not erased again: their placeholder keeps them one person.
    parties = (
        Party.select(Party.id, Party.email)
        .where(Party.referral.in_(referrals) & ~Party.email.startswith(PLACEHOLDER_PREFIX))
        .order_by(Party.id)
        .tuples()
    )
    return DuePeople(referrals, list(parties))


def people_let_go(referral_ids: Sequence[int], now: datetime) -> None:
    """These referrals' people are erased: retention need not ask about them again."""
    if referral_ids:
        Referral.update(people_let_go_at=now).where(
            Referral.id.in_(list(referral_ids)) & Referral.people_let_go_at.is_null()
        ).execute()


# ---------------------------------------------------------------- a store from before the marks
#
# An earlier release kept no marks: every row arrives unmarked. Before the index that trusts
# the marks is made, what that release already let go of is marked so, one range of ids at a
# time; everything else retention looks at in its own time, as it does with new mail.


def _emptied(model: type[InboundMessage] | type[OutboxMail]) -> peewee.Node:
    return peewee.fn.LENGTH(model.raw) == 0


def mark_earlier_inbound(after: int, upto: int) -> None:
    InboundMessage.update(retention=Retention.GONE).where(
        InboundMessage.id.between(after + 1, upto)
        & InboundMessage.retention.is_null()
        & _emptied(InboundMessage)
    ).execute()


def mark_earlier_outbox(after: int, upto: int) -> None:
    ids = OutboxMail.id.between(after + 1, upto) & OutboxMail.retention.is_null()
    OutboxMail.update(retention=Retention.GONE).where(ids & _emptied(OutboxMail)).execute()
    # Sent mail of a referral whose person was forgotten went as soon as it was sent: it
    # still does, and what is still waiting goes once it went.
    forgotten = Party.select(Party.id).where(
        (Party.referral == OutboxMail.referral) & Party.email.startswith(PLACEHOLDER_PREFIX)
    )
    OutboxMail.update(retention=Retention.ONCE_SENT).where(
        ids & peewee.fn.EXISTS(forgotten)
    ).execute()


def mark_earlier_referrals_mail(after: int, upto: int) -> None:
    """Ended referrals whose request and mail are all empty already. When they went is not
    on record; the moment the referral last changed stands for it."""
    held_mail = OutboxMail.select(OutboxMail.id).where(
        (OutboxMail.referral == Referral.id) & ~_emptied(OutboxMail)
    )
    held_request = InboundMessage.select(InboundMessage.id).where(
        (InboundMessage.id == Referral.inbound) & ~_emptied(InboundMessage)
    )
    Referral.update(mail_let_go_at=Referral.updated_at).where(
        Referral.id.between(after + 1, upto)
        & Referral.state.in_(list(ENDED))
        & Referral.mail_let_go_at.is_null()
        & ~peewee.fn.EXISTS(held_mail)
        & ~peewee.fn.EXISTS(held_request)
    ).execute()


def mark_earlier_referrals_people(after: int, upto: int) -> None:
    """Ended referrals none of whose parties is named any more."""
    named = Party.select(Party.id).where(
        (Party.referral == Referral.id) & ~Party.email.startswith(PLACEHOLDER_PREFIX)
    )
    Referral.update(people_let_go_at=Referral.updated_at).where(
        Referral.id.between(after + 1, upto)
        & Referral.state.in_(list(ENDED))
        & Referral.people_let_go_at.is_null()
        & ~peewee.fn.EXISTS(named)
    ).execute()
