"""Exit and Evaluate: the follow-up surveys after an introduction, and the referrer's summary.

The referral moves from introduced to evaluating to evaluated through `workflow.move`, the
only way a referral changes state. A survey is a row with a due date; the tick sends what
is due and closes what was not answered in time. Every survey is locked before its
referral, on every path, so two instances (or a tick and an answer) never wait on each
other in a circle.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from service import ids
from service.errors import NotFound
from service.evaluation import letters
from service.model import OPEN_SURVEY_STATES, Business, Channel, State, SurveyState
from service.reading.survey_replies import SurveyAnswers
from service.referral import deadlines, workflow
from service.writing.context import Context
from store import queries, suppressions
from store.db import transaction
from store.records import OutgoingMail, ReferralRecord, SurveyRecord

log = logging.getLogger(__name__)


class SurveyOutcome(enum.StrEnum):
    RECORDED = "recorded"
    ALREADY_ANSWERED = "already_answered"
    CLOSED = "closed"


@dataclass(frozen=True)
class SurveyResult:
    outcome: SurveyOutcome
    survey: SurveyRecord


def asks_again(business: str | None, round_: int, again_times: int) -> bool:
    """Pure: a "not yet" is asked again later, at most `again_times` more times."""
    return business == Business.NOT_YET and round_ <= again_times


def settled(surveys: list[SurveyRecord]) -> bool:
    """Pure: the evaluation is over when no survey waits to be sent or answered."""
    return bool(surveys) and not any(s.state in OPEN_SURVEY_STATES for s in surveys)


def send_due(ctx: Context, now: datetime, limit: int = deadlines.PER_TICK) -> int:
    """Send each survey that is due, once; how many were queued."""

    def write(survey: SurveyRecord, referral: ReferralRecord) -> list[OutgoingMail]:
        sent = replace(survey, state=SurveyState.SENT, sent_at=now, expires_at=_closes_at(ctx, now))
        return [letters.survey(ctx, referral, referral.party_by_id(survey.party_id), sent, now)]

    return _each_due("surveys", _send, deadlines.Drafts(write), ctx, now, limit)


def close_due(ctx: Context, now: datetime, limit: int = deadlines.PER_TICK) -> int:
    """Close each sent survey nobody answered in time; how many were closed."""
    return _each_due("survey expiries", _close, None, ctx, now, limit)


Step = Callable[[Context, SurveyRecord, ReferralRecord, datetime, deadlines.Drafts | None], int]


def _each_due(
    kind: str,
    step: Step,
    drafts: deadlines.Drafts | None,
    ctx: Context,
    now: datetime,
    limit: int,
) -> int:
    def prepare(survey_ids: list[int]) -> None:
        assert drafts is not None
        due = queries.surveys_by_id(survey_ids)
        referrals = {r.id: r for r in queries.referrals_by_id({s.referral_id for s in due})}
        for survey in due:
            if survey.referral_id in referrals:
                drafts.prepare(survey, referrals[survey.referral_id])

    def handle(survey_id: int) -> int:
        survey = queries.lock_survey(survey_id)
        assert survey is not None, "a claimed survey is locked, so it is there"
        referral = queries.lock_referral(survey.referral_id)
        try:
            with transaction():  # a savepoint: one bad survey must not stop the rest
                return step(ctx, survey, referral, now, drafts)
        except Exception:
            log.exception("survey %s of %s failed; closing it", survey.id, referral.ref)
            queries.move_survey(survey.id, survey.state, SurveyState.SKIPPED)
            return 0

    return deadlines.claim_each(kind, handle, now, limit, prepare if drafts else None)


def _closes_at(ctx: Context, now: datetime) -> datetime:
    return now + timedelta(days=ctx.settings.timing.survey_open_days)


def _send(
    ctx: Context,
    survey: SurveyRecord,
    referral: ReferralRecord,
    now: datetime,
    drafts: deadlines.Drafts | None,
) -> int:
    assert drafts is not None
    if survey.state != SurveyState.SCHEDULED or survey.due_at > now:
        return 0  # claimed under a stale view
    party = referral.party_by_id(survey.party_id)
    introduced = referral.introduced_at is not None and referral.introduced_at <= now
    if not introduced or referral.state not in (State.INTRODUCED, State.EVALUATING):
        why = "not introduced"
    elif suppressions.suppressed([party.email]):
        why = "address said stop"
    elif _not_reached(referral.id, party.role):
        why = "the introduction did not reach them"
    else:
        why = ""
    if why:
        queries.move_survey(survey.id, SurveyState.SCHEDULED, SurveyState.SKIPPED)
        queries.add_event(referral.id, now, "survey skipped", party.role, Channel.TICK, why)
        _settle(ctx, referral, now)
        return 0
    # Written from the survey as it is once sent (see send_due), before it is marked so.
    mails = drafts.letters(survey, referral)
    # The conditional move is the "never twice" guard: only one transaction gets to send.
    if not queries.move_survey(
        survey.id,
        SurveyState.SCHEDULED,
        SurveyState.SENT,
        sent_at=now,
        expires_at=_closes_at(ctx, now),
    ):
        return 0
    queries.enqueue(mails, now)
    if referral.state == State.INTRODUCED:
        workflow.move(referral, State.EVALUATING, now, Channel.TICK)
    queries.add_event(
        referral.id, now, "surveyed", party.role, Channel.TICK, f"round {survey.round}"
    )
    return 1


def _not_reached(referral_id: int, role: str) -> bool:
    """A party the introduction never reached has nothing to tell us about it."""
    return any(
        e.kind == "not introduced" and e.actor == role for e in queries.events_for(referral_id)
    )


def _close(
    ctx: Context,
    survey: SurveyRecord,
    referral: ReferralRecord,
    now: datetime,
    drafts: deadlines.Drafts | None,
) -> int:
    if survey.state != SurveyState.SENT or survey.expires_at is None or survey.expires_at > now:
        return 0
    if not queries.move_survey(survey.id, SurveyState.SENT, SurveyState.EXPIRED):
        return 0
    role = referral.party_by_id(survey.party_id).role
    queries.add_event(referral.id, now, "survey expired", role, Channel.TICK)
    _settle(ctx, referral, now)
    return 1


def record(
    ctx: Context, survey_key: str, answers: SurveyAnswers, channel: Channel, now: datetime
) -> SurveyResult:
    """Record one party's answers to their survey; a "not yet" schedules the next round."""
    found = queries.survey_by_key(survey_key)
    if found is None:
        raise NotFound("no such survey")
    with transaction():
        survey = queries.lock_survey(found.id)
        assert survey is not None
        referral = queries.lock_referral(survey.referral_id)
        if survey.state == SurveyState.ANSWERED:
            return SurveyResult(SurveyOutcome.ALREADY_ANSWERED, survey)
        if survey.state != SurveyState.SENT or (
            survey.expires_at is not None and now >= survey.expires_at
        ):
            return SurveyResult(SurveyOutcome.CLOSED, survey)
        queries.move_survey(
            survey.id,
            SurveyState.SENT,
            SurveyState.ANSWERED,
            answered_at=now,
            channel=channel,
            rating=answers.rating,
            business=answers.business.value if answers.business else None,
            amount=answers.amount,
            currency=answers.currency,
            more=answers.more,
            comment=answers.comment[:1000],
        )
        role = referral.party_by_id(survey.party_id).role
        # The amount stays out of the history: it is for the referrer's summary and report.
        detail = ", ".join(
            part
            for part in (
                f"rating {answers.rating}" if answers.rating else "",
                f"business {answers.business}" if answers.business else "",
            )
            if part
        )
        queries.add_event(referral.id, now, "survey answered", role, channel, detail)
        timing = ctx.settings.timing
        if asks_again(answers.business, survey.round, timing.follow_up_again_times):
            again = now + timedelta(days=timing.follow_up_again_days)
            queries.create_survey(
                referral.id,
                survey.party_id,
                survey.round + 1,
                again,
                ids.ask_key(),
                ids.address_key(),
            )
            queries.add_event(
                referral.id, now, "follow-up scheduled", role, channel, f"round {survey.round + 1}"
            )
        _settle(ctx, referral, now)
        answered = queries.survey_by_id(survey.id)
    assert answered is not None
    return SurveyResult(SurveyOutcome.RECORDED, answered)


def bounced(ctx: Context, survey_id: int, status: str, now: datetime) -> bool:
    """A survey that cannot be delivered is closed, so the evaluation does not wait for it."""
    with transaction():
        survey = queries.lock_survey(survey_id)
        if survey is None:
            return False
        referral = queries.lock_referral(survey.referral_id)
        role = referral.party_by_id(survey.party_id).role
        queries.add_event(referral.id, now, "survey bounced", role, Channel.SMTP, status)
        if not queries.move_survey(survey.id, SurveyState.SENT, SurveyState.EXPIRED):
            return False
        _settle(ctx, referral, now)
    return True


def find_survey(survey_key: str) -> tuple[ReferralRecord, SurveyRecord] | None:
    """The referral and survey a survey link is about, or None if there is no such survey."""
    survey = queries.survey_by_key(survey_key)
    referral = queries.referral_by_id(survey.referral_id) if survey is not None else None
    if survey is None or referral is None:
        return None
    return referral, survey


def _settle(ctx: Context, referral: ReferralRecord, now: datetime) -> None:
    """When nothing is left to ask, the referral is evaluated and the referrer hears how it went."""
    if not workflow.may_move(State(referral.state), State.EVALUATED):
        return
    surveys = queries.surveys_of(referral.id)
    if not settled(surveys):
        return
    workflow.move(referral, State.EVALUATED, now, Channel.TICK)
    queries.enqueue([letters.referrer_evaluated(ctx, referral, surveys, now)], now)
