"""The referral state machine: the only code that changes a referral's state.

Every move goes through `move`, along `TRANSITIONS`, and writes its event row. The store's
update is conditional on the state the mover saw, so a stale writer fails instead of
moving a referral backwards. Deadlines and the evaluation call `move` too.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from service import ids
from service.clock import zone
from service.errors import NotFound, WrongState
from service.model import ROLES, Answer, Channel, DeclineReason, Finding, State
from service.reading import languages
from service.reading.addresses import Mailbox
from service.reading.durations import MAX_FOLLOW_UP_DAYS, MIN_FOLLOW_UP_DAYS
from service.reading.relay_replies import without_addresses
from service.reading.request import PartyDraft, RequestDraft
from service.referral import consent_evidence, expiry, gate, optouts, quota
from service.referral.consent_evidence import Shown
from service.referral.optouts import Addressee
from service.writing import letters
from service.writing.context import Context
from store import queries, suppressions
from store.db import transaction
from store.records import NewParty, NewReferral, OutgoingMail, PartyRecord, ReferralRecord

# Where a referral may go from each state. Received: stored, its questions not yet asked (it
# leaves in the transaction that created it). Declined is an end state like the others: the
# other party was told at once that it will not go ahead, and nothing may contradict that.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.ASKING}),
    State.ASKING: frozenset({State.INTRODUCED, State.DECLINED, State.EXPIRED, State.UNDELIVERABLE}),
    State.DECLINED: frozenset(),
    State.INTRODUCED: frozenset({State.EVALUATING, State.EVALUATED}),
    State.EVALUATING: frozenset({State.EVALUATED}),
    State.EVALUATED: frozenset(),
    State.EXPIRED: frozenset(),
    State.UNDELIVERABLE: frozenset(),
}


def may_move(current: State, to: State) -> bool:
    """Pure: whether the transition table lets a referral go from `current` to `to`."""
    return to in TRANSITIONS[current]


def move(
    referral: ReferralRecord,
    to: State,
    now: datetime,
    channel: Channel,
    *,
    event: str = "",
    detail: str = "",
    introduced_at: datetime | None = None,
) -> ReferralRecord:
    """Move a referral the caller has locked, and write the event; the moved record.

    Raises WrongState for a move the table does not allow, and for one whose referral is no
    longer in the state the caller read (the caller's transaction then rolls back).
    """
    current = State(referral.state)
    if not may_move(current, to):
        raise WrongState(f"{referral.ref}: a referral that is {current} cannot become {to}")
    introduced = introduced_at if introduced_at is not None else referral.introduced_at
    if not queries.move_referral(referral.id, current, to, now, introduced):
        raise WrongState(f"{referral.ref} is no longer {current}")
    queries.add_event(referral.id, now, event or to, "service", channel, detail)
    return replace(referral, state=to, updated_at=now, introduced_at=introduced)


class Outcome(enum.StrEnum):
    RECORDED = "recorded"
    ALREADY_ANSWERED = "already_answered"
    CLOSED = "closed"
    # A yes after one's own no: nothing changes, and the party is told why (see decide_answer).
    NO_STANDS = "no_stands"


class Notice(enum.StrEnum):
    INTRODUCTION = "introduction"
    REFERRER_INTRODUCED = "referrer_introduced"
    DECLINED_TO_OTHER = "declined_to_other"
    REFERRER_DECLINED = "referrer_declined"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    state: State
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class AnswerResult:
    outcome: Outcome
    answer: str | None
    state: State
    referral_id: int


def decide_answer(
    state: State, answers: dict[str, str | None], role: str, answer: Answer
) -> Decision:
    """Pure: what one party's answer does to a referral, given everyone's answers so far.

    Until the introduction is sent a party may take a yes back: that is a no like any other.
    A no is final: the other party was told at that moment that it will not go ahead, and a
    later yes would contradict what they were told. Such a yes changes nothing and has its
    own outcome, so whoever took it can say why (the referrer may send a new request).
    """
    mine = answers.get(role)
    if mine == answer:
        return Decision(Outcome.ALREADY_ANSWERED, state)
    if mine == Answer.NO:
        return Decision(Outcome.NO_STANDS, state)
    if state is State.ASKING:
        if answer is Answer.NO:
            return Decision(
                Outcome.RECORDED,
                State.DECLINED,
                (Notice.DECLINED_TO_OTHER, Notice.REFERRER_DECLINED),
            )
        others = [answers.get(r) for r in ROLES if r != role]
        if all(a == Answer.YES for a in others):
            return Decision(
                Outcome.RECORDED,
                State.INTRODUCED,
                (Notice.INTRODUCTION, Notice.REFERRER_INTRODUCED),
            )
        return Decision(Outcome.RECORDED, State.ASKING)
    if mine is not None:
        return Decision(Outcome.ALREADY_ANSWERED, state)
    return Decision(Outcome.CLOSED, state)


@dataclass(frozen=True)
class PreparedReferral:
    """A referral and its first mails, decided and rendered before any write.

    Its ids are placeholders until `record_referral` inserts it: nothing rendered depends
    on them (mails carry the reference, keys and tokens), only the outbox rows' links do.
    """

    draft: RequestDraft
    referrer: Mailbox
    inbound_id: int | None
    channel: Channel
    now: datetime
    withheld: Mapping[str, datetime]
    ref: str
    new: NewReferral
    mails: tuple[OutgoingMail, ...]


def open_referral(
    ctx: Context,
    draft: RequestDraft,
    referrer: Mailbox,
    inbound_id: int | None,
    channel: Channel,
    now: datetime,
    withheld: Mapping[str, datetime] | None = None,
) -> ReferralRecord:
    """Record a request that passed the CARE gate and ask both parties, in one transaction.

    `withheld` names, by address, parties who said "never contact me again", each with when
    their silent no is due: they are asked nothing, and everyone else sees what a no
    without reason looks like (see `referral.withheld`).
    """
    prepared = prepare_referral(ctx, draft, referrer, inbound_id, channel, now, withheld)
    return record_referral(ctx, prepared)


def prepare_referral(
    ctx: Context,
    draft: RequestDraft,
    referrer: Mailbox,
    inbound_id: int | None,
    channel: Channel,
    now: datetime,
    withheld: Mapping[str, datetime] | None = None,
) -> PreparedReferral:
    """Everything `open_referral` decides and renders, with no write: call it outside the
    transaction, so the store's write lock is not held while mail is built."""
    withheld = withheld or {}
    language = request_language(draft, ctx.settings.service.default_language)
    expires_at = now + timedelta(days=ctx.settings.timing.consent_expiry_days)
    remind_at = now + timedelta(days=ctx.settings.timing.reminder_after_days)
    new = NewReferral(
        state=State.RECEIVED,
        referrer_email=referrer.address,
        referrer_name=referrer.name,
        need=draft.need,
        budget=draft.budget,
        follow_up_days=draft.follow_up_days,
        language=language,
        subject=draft.subject,
        request_message_id=draft.message_id,
        copy_me=draft.copy_me,
        inbound_id=inbound_id,
        created_at=now,
        expires_at=expires_at,
        # A reminder due at or after expiry would never go: none is scheduled.
        remind_at=remind_at if remind_at < expires_at else None,
        parties=(
            _new_party(draft.provider, language, withheld),
            _new_party(draft.prospect, language, withheld),
        ),
    )
    ref = ids.reference()
    referral = _unsaved(new, ref)
    mails = [letters.receipt(ctx, referral, gate.suggestions(referral), now)]
    for party in referral.parties:
        if party.withheld_until is None:
            mails.append(letters.consent_request(ctx, referral, party, now))
    return PreparedReferral(
        draft, referrer, inbound_id, channel, now, withheld, ref, new, tuple(mails)
    )


def record_referral(ctx: Context, prepared: PreparedReferral) -> ReferralRecord:
    """Write a prepared referral, its event and its mails, and move it to asking: the short
    write after `prepare_referral`. Should its reference have been taken meanwhile (rare),
    a new one is drawn and the mails rendered again, here."""
    now, channel = prepared.now, prepared.channel
    with transaction():
        for attempt in range(5):
            referral = queries.insert_referral(prepared.new, prepared.ref)
            if referral is not None:
                break
            if attempt == 4:
                raise WrongState(f"no free reference for inbound {prepared.inbound_id}")
            prepared = prepare_referral(
                ctx,
                prepared.draft,
                prepared.referrer,
                prepared.inbound_id,
                channel,
                now,
                prepared.withheld,
            )
        assert referral is not None
        queries.add_event(referral.id, now, State.RECEIVED, "referrer", channel)
        queries.enqueue([_bound(mail, referral, prepared.new) for mail in prepared.mails], now)
        asking = move(referral, State.ASKING, now, channel, event="asked", detail=", ".join(ROLES))
    return asking


# Stand-in ids of a referral not yet stored: never a real row's (those start at 1).
_UNSAVED = 0


def _unsaved(new: NewReferral, ref: str) -> ReferralRecord:
    """The record a referral will have once stored, to render its first mails from."""
    parties = tuple(
        PartyRecord(
            id=_UNSAVED - n,
            role=p.role,
            name=p.name,
            email=p.email,
            phone=p.phone,
            prefers=p.prefers,
            best_time=p.best_time,
            booking=p.booking,
            language=p.language,
            ask_key=p.ask_key,
            answer=None,
            answered_at=None,
            answer_channel=None,
            reply_key=p.reply_key,
            timezone=p.timezone,
            withheld_until=p.withheld_until,
        )
        for n, p in enumerate(new.parties, start=1)
    )
    return ReferralRecord(
        id=_UNSAVED,
        ref=ref,
        state=new.state,
        referrer_email=new.referrer_email,
        referrer_name=new.referrer_name,
        need=new.need,
        budget=new.budget,
        follow_up_days=new.follow_up_days,
        language=new.language,
        subject=new.subject,
        request_message_id=new.request_message_id,
        created_at=new.created_at,
        updated_at=new.created_at,
        expires_at=new.expires_at,
        introduced_at=None,
        parties=parties,
        copy_me=new.copy_me,
        remind_at=new.remind_at,
    )


def _bound(mail: OutgoingMail, referral: ReferralRecord, new: NewReferral) -> OutgoingMail:
    """A mail rendered for the unsaved referral, linked to the stored one's rows."""
    party_id = mail.party_id
    if party_id is not None:
        role = {_UNSAVED - n: p.role for n, p in enumerate(new.parties, start=1)}[party_id]
        party_id = referral.party(role).id
    return replace(mail, referral_id=referral.id, party_id=party_id)


def refuse_request(
    ctx: Context,
    referrer: Mailbox,
    draft: RequestDraft,
    findings: list[Finding],
    now: datetime,
    about: str = "a request",
) -> None:
    """No referral is created; the referrer learns every reason at once."""
    language = request_language(draft, ctx.settings.service.default_language)
    with transaction():
        if not quota.may_write(ctx.settings, referrer.address, now, "request_refused", about):
            return
        refusal = letters.request_refused(ctx, referrer, draft, findings, language, now)
        queries.enqueue([refusal], now)


@dataclass(frozen=True)
class _Answering:
    """A recorded answer as worked out, its mails rendered, before the write that keeps it."""

    given: Answer
    decision: Decision
    reason: DeclineReason | None
    reason_text: str
    seen: consent_evidence.Seen
    mails: tuple[OutgoingMail, ...]


def answer(
    ctx: Context,
    ask_key: str,
    given: Answer,
    channel: Channel,
    now: datetime,
    reason: DeclineReason | None = None,
    reason_text: str = "",
    shown: Shown | None = None,
) -> AnswerResult:
    """Record a party's yes or no (a no with its reason, if they gave one) with what they
    were shown; introduce or close the referral when that decides it.

    Decided and rendered from the referral as read before the transaction; written under
    the referral's lock only if it is still exactly as read, else decided again there (an
    answer, reminder or expiry came in between: rare).
    """
    shown = shown or Shown()
    found = find_question(ask_key)
    if found is None:
        raise NotFound("no such consent question")
    read, party = found
    given_as = (given, channel, now, reason, reason_text, shown)
    planned = _work_out(ctx, read, party, *given_as)
    with transaction():
        # A question never moves to another referral: the id read is the one to lock.
        referral = queries.lock_referral(read.id)
        party = next((p for p in referral.parties if p.ask_key == ask_key), None)
        if party is None:  # erased since it was read
            raise NotFound("no such consent question")
        referral = _expire_if_late(ctx, referral, channel, now)
        if referral != read:
            planned = _work_out(ctx, referral, party, *given_as)
        return _write_answer(ctx, referral, party, channel, now, shown, planned)


def answer_locked(
    ctx: Context,
    referral: ReferralRecord,
    party: PartyRecord,
    given: Answer,
    channel: Channel,
    now: datetime,
    reason: DeclineReason | None = None,
    reason_text: str = "",
    shown: Shown | None = None,
) -> AnswerResult:
    """`answer`, for a caller that already holds the referral's lock in its transaction."""
    shown = shown or Shown()
    referral = _expire_if_late(ctx, referral, channel, now)
    planned = _work_out(ctx, referral, party, given, channel, now, reason, reason_text, shown)
    return _write_answer(ctx, referral, party, channel, now, shown, planned)


def _expire_if_late(
    ctx: Context, referral: ReferralRecord, channel: Channel, now: datetime
) -> ReferralRecord:
    """Under the referral's lock: an answer at or after the deadline finds the referral as
    the tick would have left it. A link from a reminder is still signed as valid then (its
    age counts from the reminder), and a reply has no age at all, so the deadline is kept
    here: the referral expires now, in the answer's transaction, with the tick's letters,
    and the tick finds nothing left to do (nothing goes twice). The answer itself is then
    decided against the expired referral, so it records nothing."""
    if not expiry.overdue(referral, now):
        return referral
    mails = expiry.letters_of(ctx, referral, now)
    expired = move(referral, State.EXPIRED, now, channel, detail=expiry.detail(referral))
    queries.enqueue(mails, now)
    return expired


def _work_out(
    ctx: Context,
    referral: ReferralRecord,
    party: PartyRecord,
    given: Answer,
    channel: Channel,
    now: datetime,
    reason: DeclineReason | None,
    reason_text: str,
    shown: Shown,
) -> Decision | _Answering:
    """Reads only: what an answer does to the referral as given, and the mails it sends."""
    answers = {p.role: p.answer for p in referral.parties}
    decision = decide_answer(State(referral.state), answers, party.role, given)
    if decision.outcome is not Outcome.RECORDED:
        return decision
    if given is Answer.NO:
        reason = reason or (DeclineReason.OTHER if reason_text.strip() else None)
        reason_text = reason_text.strip()[:500]
    else:
        reason, reason_text = None, ""
    # The referral as it will be once the answer is written: what the notices are about.
    answered = replace(
        party,
        answer=given,
        answered_at=now,
        answer_channel=channel,
        decline_reason=reason,
        decline_text=reason_text,
    )
    parties = tuple(answered if p.id == party.id else p for p in referral.parties)
    after = replace(referral, parties=parties)
    if decision.state != referral.state:
        introduced = now if decision.state is State.INTRODUCED else referral.introduced_at
        after = replace(after, state=decision.state, updated_at=now, introduced_at=introduced)
    mails = tuple(
        mail
        for notice in decision.notices
        for mail in letters.notice(ctx, notice, after, party.role, now)
    )
    seen = consent_evidence.gather(party, shown)
    return _Answering(given, decision, reason, reason_text, seen, mails)


def _write_answer(
    ctx: Context,
    referral: ReferralRecord,
    party: PartyRecord,
    channel: Channel,
    now: datetime,
    shown: Shown,
    planned: Decision | _Answering,
) -> AnswerResult:
    """Under the referral's lock: keep what `_work_out` decided from this very record."""
    if isinstance(planned, Decision):
        return AnswerResult(planned.outcome, party.answer, planned.state, referral.id)
    given, decision = planned.given, planned.decision
    queries.record_answer(party.id, given, channel, now, planned.reason, planned.reason_text)
    consent_evidence.keep(party, shown, planned.seen, now)
    changed = f"changed to {given}" if party.answer is not None else f"answered {given}"
    queries.add_event(referral.id, now, changed, party.role, channel, planned.reason or "")
    if decision.state != referral.state:
        introduced = decision.state is State.INTRODUCED
        move(referral, decision.state, now, channel, introduced_at=now if introduced else None)
        if introduced:
            _schedule_follow_up(ctx, referral, now)
    if planned.mails:
        queries.enqueue(planned.mails, now)
    return AnswerResult(Outcome.RECORDED, given, decision.state, referral.id)


def undeliverable(
    ctx: Context, referral_id: int, party_id: int, status: str, channel: Channel, now: datetime
) -> bool:
    """A party's question bounced for good: the introduction cannot happen.

    The referrer learns which address failed; the other party only that it will not go ahead.
    Not once the party answered: their yes or no reached us, so the question reached them,
    and what fails later (an alias that stopped forwarding, a full mailbox, a reminder
    refused after retries) says nothing about this referral. Its history keeps the bounce;
    nobody is told, since nothing changed. Decided under the referral's lock, so an answer
    recorded a moment before is seen.
    """
    with transaction():
        referral = queries.lock_referral(referral_id)
        party = next((p for p in referral.parties if p.id == party_id), None)
        if party is None:
            return False
        # The history keeps no address; the referrer's letter may name the one that failed.
        queries.add_event(
            referral.id, now, "bounced", party.role, channel, without_addresses(status)
        )
        if referral.state != State.ASKING or party.answer is not None:
            return False
        move(referral, State.UNDELIVERABLE, now, channel)
        mails = [
            letters.referrer_undeliverable(ctx, referral, party, status, now),
            letters.declined_to_other(ctx, referral, referral.other(party.role), now),
        ]
        queries.enqueue(mails, now)
    return True


def explain_unclear(ctx: Context, ask_key: str, now: datetime) -> bool:
    """Tell a party how to answer after a reply we could not read; once per question."""
    with transaction():
        referral, party = _lock_question(ask_key)
        queries.add_event(referral.id, now, "reply unclear", party.role, Channel.REPLY)
        # Past the deadline there is nothing left to answer, so nothing to explain.
        if referral.state != State.ASKING or party.answer is not None:
            return False
        if expiry.overdue(referral, now):
            return False
        if not quota.may_write(ctx.settings, party.email, now, "reply_unclear", referral.ref):
            return False
        if not queries.mark_unclear_told(party.id):
            return False
        queries.enqueue([letters.reply_unclear(ctx, referral, party, now)], now)
    return True


def tell_no_stands(ctx: Context, ask_key: str, now: datetime) -> bool:
    """After a party's no, their yes by mail changed nothing; tell them why and whom to ask.

    A reply deserves an answer, but one is enough: once per question, and counted in the
    day's limit of unprompted mail, so a sender who keeps writing yes cannot run up a pile
    of mail. The page says the same thing itself. Nobody else hears of it.
    """
    with transaction():
        referral, party = _lock_question(ask_key)
        if party.answer != Answer.NO or queries.wrote_to_party(party.id, "no_stands"):
            return False
        if not quota.may_write(ctx.settings, party.email, now, "no_stands", referral.ref):
            return False
        queries.enqueue([letters.no_stands(ctx, referral, party, now)], now)
    return True


def opt_out(ctx: Context, subject: str, channel: Channel, now: datetime) -> bool:
    """Never contact whom an opt-out link is for again (see `opt_out_of`). `subject` is what
    the link names ("m:<bounce key>", "q:<ask key>"; neither is personal data)."""
    return opt_out_of(ctx, optouts.addressee_of_optout(subject), channel, now)


def opt_out_of(ctx: Context, who: Addressee, channel: Channel, now: datetime) -> bool:
    """Keep their address as a keyed hash, and close every question still waiting for them as
    a no (the other party and the referrer are told as for any no; mail to them is dropped
    from then on). False if they had already said stop."""
    with transaction():
        first = suppressions.suppress_hash(who.address_hash, now)
    if who.address is not None:
        for _, _, ask_key in queries.open_questions_to(who.address):
            answer(ctx, ask_key, Answer.NO, channel, now)
    return first


def follow_up_at(
    referral: ReferralRecord, default_days: float, introduced_at: datetime
) -> datetime:
    """Pure: when the first survey is due; the request's own "Follow up: N days" wins.

    Only within the range a request may ask for: an older release stored whatever number it
    found ("Follow up: 20270315" as that many days, past any date), and such a value must
    not break the second yes that introduces them. The default applies, as it would had
    the request been read today. NaN fails both comparisons and gives way too.
    """
    days = referral.follow_up_days
    if days is None or not MIN_FOLLOW_UP_DAYS <= days <= MAX_FOLLOW_UP_DAYS:
        days = default_days
    return introduced_at + timedelta(days=days)


def _schedule_follow_up(ctx: Context, referral: ReferralRecord, now: datetime) -> None:
    """In the transaction that introduces them: one survey per party, due after the delay.

    The surveys themselves are sent, answered and closed by `evaluation.surveys`.
    """
    due = follow_up_at(referral, ctx.settings.timing.follow_up_days, now)
    queries.create_surveys(
        [(referral.id, p.id, 1, due, ids.ask_key(), ids.address_key()) for p in referral.parties]
    )


def language_of_optout(subject: str) -> str:
    """The language of whoever an opt-out link is for: that of the mail or question it names."""
    kind, _, key = subject.partition(":")
    if kind == "q":
        found = find_question(key)
        return found[1].language if found else ""
    if kind == "m":
        return queries.language_of_mail(key)
    return ""


def _lock_question(ask_key: str) -> tuple[ReferralRecord, PartyRecord]:
    """The referral a question belongs to, locked for a transition, and the party it asks."""
    referral_id = queries.referral_id_for_ask(ask_key)
    if referral_id is None:
        raise NotFound("no such consent question")
    referral = queries.lock_referral(referral_id)
    return referral, next(p for p in referral.parties if p.ask_key == ask_key)


def find_question(ask_key: str) -> tuple[ReferralRecord, PartyRecord] | None:
    """The referral and party a consent link is about, or None if there is no such question."""
    referral = queries.referral_asking(ask_key)
    if referral is None:
        return None
    return referral, next(p for p in referral.parties if p.ask_key == ask_key)


def _new_party(draft: PartyDraft, language: str, withheld: Mapping[str, datetime]) -> NewParty:
    assert draft.mailbox is not None, "the CARE gate lets no party without an address through"
    return NewParty(
        withheld_until=withheld.get(draft.mailbox.address),
        role=draft.role,
        email=draft.mailbox.address,
        name=draft.mailbox.name,
        ask_key=ids.ask_key(),
        reply_key=ids.address_key(),
        language=languages.language_code(draft.language) or language,
        phone=draft.phone,
        prefers=draft.prefers,
        best_time=draft.best_time,
        booking=draft.booking,
        timezone=known_zone(draft.timezone),
    )


def known_zone(name: str) -> str:
    """An IANA time zone name as the request gave it, or "" when it is not one."""
    name = name.strip()
    return name if name and zone(name) is not None else ""


def request_language(draft: RequestDraft, default: str) -> str:
    """The language the referrer is written to, and each party unless the request names
    theirs: a "Language:" line, else the language the request is written in, else `default`."""
    return languages.language_code(draft.language) or languages.request_language(
        draft.labels, draft.text, default
    )
