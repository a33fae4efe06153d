"""The referral state machine: the only code that changes a referral's state."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from service import ids, letters
from service.addresses import Mailbox
from service.checks import Finding
from service.context import Context
from service.errors import NotFound
from service.labels import PROSPECT, PROVIDER, ROLES
from service.parsing import PartyDraft, RequestDraft
from service.settings import LANGUAGES
from store import queries
from store.db import transaction
from store.records import NewParty, NewReferral, PartyRecord, ReferralRecord


class State(enum.StrEnum):
    RECEIVED = "received"
    ASKING = "asking"
    INTRODUCED = "introduced"
    EVALUATING = "evaluating"
    EVALUATED = "evaluated"
    DECLINED = "declined"
    EXPIRED = "expired"
    UNDELIVERABLE = "undeliverable"


class Answer(enum.StrEnum):
    YES = "yes"
    NO = "no"


class Channel(enum.StrEnum):
    SMTP = "smtp"
    LINK = "link"
    REPLY = "reply"
    TICK = "tick"
    CLI = "cli"


class Outcome(enum.StrEnum):
    RECORDED = "recorded"
    ALREADY_ANSWERED = "already_answered"
    CLOSED = "closed"


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
    """Pure: what one party's answer does to a referral, given everyone's answers so far."""
    if answers.get(role) is not None:
        return Decision(Outcome.ALREADY_ANSWERED, state)
    if state is not State.ASKING:
        return Decision(Outcome.CLOSED, state)
    if answer is Answer.NO:
        return Decision(
            Outcome.RECORDED,
            State.DECLINED,
            (Notice.DECLINED_TO_OTHER, Notice.REFERRER_DECLINED),
        )
    others_said_yes = all(answers.get(r) == Answer.YES for r in ROLES if r != role)
    if others_said_yes:
        return Decision(
            Outcome.RECORDED,
            State.INTRODUCED,
            (Notice.INTRODUCTION, Notice.REFERRER_INTRODUCED),
        )
    return Decision(Outcome.RECORDED, State.ASKING)


def open_referral(
    ctx: Context,
    draft: RequestDraft,
    referrer: Mailbox,
    inbound_id: int | None,
    channel: Channel,
    now: datetime,
) -> ReferralRecord:
    """Record a request that passed the CARE gate and ask both parties, in one transaction."""
    language = _language(draft.language, ctx.settings.service.default_language)
    expires_at = now + timedelta(days=ctx.settings.timing.consent_expiry_days)
    with transaction():
        referral = queries.create_referral(
            NewReferral(
                state=State.ASKING,
                referrer_email=referrer.address,
                referrer_name=referrer.name,
                need=draft.need,
                budget=draft.budget,
                follow_up_days=draft.follow_up_days,
                language=language,
                subject=draft.subject,
                request_message_id=draft.message_id,
                inbound_id=inbound_id,
                created_at=now,
                expires_at=expires_at,
                parties=(
                    _new_party(draft.provider, language),
                    _new_party(draft.prospect, language),
                ),
            ),
            make_ref=ids.reference,
        )
        queries.add_event(referral.id, now, "received", "referrer", channel)
        mails = [letters.receipt(ctx, referral, now)]
        for role in (PROVIDER, PROSPECT):
            mails.append(letters.consent_request(ctx, referral, referral.party(role), now))
        queries.enqueue(mails, now)
        queries.add_event(referral.id, now, "asked", "service", channel, "provider, prospect")
    return referral


def refuse_request(
    ctx: Context,
    referrer: Mailbox,
    draft: RequestDraft,
    findings: list[Finding],
    now: datetime,
) -> None:
    """No referral is created; the referrer learns every reason at once."""
    language = _language(draft.language, ctx.settings.service.default_language)
    with transaction():
        refusal = letters.request_refused(ctx, referrer, draft, findings, language, now)
        queries.enqueue([refusal], now)


def answer(
    ctx: Context, ask_key: str, given: Answer, channel: Channel, now: datetime
) -> AnswerResult:
    """Record a party's yes or no; introduce or close the referral when that decides it."""
    with transaction():
        referral_id = queries.referral_id_for_ask(ask_key)
        if referral_id is None:
            raise NotFound("no such consent question")
        referral = queries.lock_referral(referral_id)
        party = next(p for p in referral.parties if p.ask_key == ask_key)
        answers = {p.role: p.answer for p in referral.parties}
        decision = decide_answer(State(referral.state), answers, party.role, given)
        if decision.outcome is not Outcome.RECORDED:
            return AnswerResult(decision.outcome, party.answer, decision.state, referral.id)
        queries.record_answer(party.id, given, channel, now)
        queries.add_event(referral.id, now, f"answered {given}", party.role, channel)
        if decision.state != referral.state:
            extra = {"introduced_at": now} if decision.state is State.INTRODUCED else {}
            queries.set_referral_state(referral.id, decision.state, now, **extra)
            queries.add_event(referral.id, now, decision.state, "service", channel)
            mails = [
                mail
                for notice in decision.notices
                for mail in letters.notice(ctx, notice, referral, party.role, now)
            ]
            queries.enqueue(mails, now)
    return AnswerResult(Outcome.RECORDED, given, decision.state, referral.id)


def find_question(ask_key: str) -> tuple[ReferralRecord, PartyRecord] | None:
    """The referral and party a consent link is about, or None if there is no such question."""
    referral_id = queries.referral_id_for_ask(ask_key)
    referral = queries.referral_by_id(referral_id) if referral_id is not None else None
    if referral is None:
        return None
    return referral, next(p for p in referral.parties if p.ask_key == ask_key)


def _new_party(draft: PartyDraft, language: str) -> NewParty:
    assert draft.mailbox is not None, "the CARE gate lets no party without an address through"
    return NewParty(
        role=draft.role,
        email=draft.mailbox.address,
        name=draft.mailbox.name,
        ask_key=ids.ask_key(),
        reply_key=ids.address_key(),
        language=_language(draft.language, language),
        phone=draft.phone,
        prefers=draft.prefers,
        best_time=draft.best_time,
        booking=draft.booking,
    )


def _language(requested: str, fallback: str) -> str:
    requested = requested.strip().lower()[:2]
    return requested if requested in LANGUAGES else fallback
