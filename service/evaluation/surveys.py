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
from collections.abc import Callable, Hashable
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
    write = deadlines.Write(ctx, _survey_letters, now)
    return deadlines.claim_each("surveys", _Surveys(ctx, _send, now, write), now, limit)


def _survey_letters(
    ctx: Context, survey: SurveyRecord, referral: ReferralRecord, now: datetime
) -> list[OutgoingMail]:
    # The survey as it is once sent: its letter says until when it is open.
    sent = replace(survey, state=SurveyState.SENT, sent_at=now, expires_at=_closes_at(ctx, now))
    return [letters.survey(ctx, referral, referral.party_by_id(survey.party_id), sent, now)]


def close_due(ctx: Context, now: datetime, limit: int = deadlines.PER_TICK) -> int:
    """Close each sent survey nobody answered in time; how many were closed."""
    return deadlines.claim_each("survey expiries", _Surveys(ctx, _close, now), now, limit)


class _Surveys(deadlines.Letters):
    """Due surveys, to send or to close; only sending writes letters before the lock."""

    def __init__(
        self,
        ctx: Context,
        step: Callable[[_Surveys, SurveyRecord, ReferralRecord], int],
        now: datetime,
        write: deadlines.Write | None = None,
    ) -> None:
        super().__init__(write, now, _what_a_survey_says)
        self.ctx, self.step, self.sending = ctx, step, write is not None
        self._surveys: dict[int, SurveyRecord] = {}
        self._referrals: dict[int, ReferralRecord] = {}
        # What `prepare` read, unlocked: surveys and their referrals, by id.
        self._read: tuple[dict[int, SurveyRecord], dict[int, ReferralRecord]] = ({}, {})
        self.stopped: set[str] = set()  # addresses of the batch that said stop
        self.missed: set[tuple[int, str]] = set()  # (referral, role) no introduction reached

    def prepare(self, ids: list[int]) -> None:
        if not self.sending:
            return
        due = queries.surveys_by_id(ids)
        referrals = {r.id: r for r in queries.referrals_by_id({s.referral_id for s in due})}
        self._read = ({s.id: s for s in due}, referrals)
        self.drafts.prepare_all(
            [(s, referrals[s.referral_id]) for s in due if s.referral_id in referrals]
        )

    def load(self, ids: list[int], unchanged: bool) -> None:
        # Claimed surveys are locked, and so are their referrals (`hold_referrals_of`; on
        # SQLite, by being the one writer): read now, they stay as read until the commit.
        if unchanged and self.sending:
            self._surveys, self._referrals = dict(self._read[0]), dict(self._read[1])
        else:
            self._surveys = {s.id: s for s in queries.surveys_by_id(ids)}
            referral_ids = {s.referral_id for s in self._surveys.values()}
            self._referrals = {r.id: r for r in queries.referrals_by_id(referral_ids)}
        if self.sending:
            parties = [p for r in self._referrals.values() for p in r.parties]
            self.stopped = suppressions.suppressed(sorted({p.email for p in parties}))
            self.missed = queries.not_introduced(self._referrals)

    def handle(self, item: int) -> int:
        survey = self._surveys.pop(item, None) or queries.lock_survey(item)
        assert survey is not None, "a claimed survey is locked, so it is there"
        referral = self._referrals.get(survey.referral_id)
        referral = referral or queries.lock_referral(survey.referral_id)

        def recover() -> None:
            # What the failed step did to its referral was rolled back: read it again.
            self._referrals.pop(referral.id, None)
            queries.move_survey(survey.id, survey.state, SurveyState.SKIPPED)

        what = f"survey {survey.id} of {referral.ref} (closing it)"
        return self.contained(lambda: self.step(self, survey, referral), recover, what)

    def moved(self, referral: ReferralRecord) -> None:
        """A step moved this referral: another survey of it in the batch reads it as moved."""
        self._referrals[referral.id] = referral


def _what_a_survey_says(survey: SurveyRecord, referral: ReferralRecord) -> Hashable:
    """A survey's letter names neither its referral's state nor when that last changed: the
    first of two surveys moving it to evaluating leaves the other's letter as written.

    The referral's fields but those two, read as they are: a copy made to blank them cost
    more than the comparison it was for.
    """
    unsaid = ("state", "updated_at")
    return survey, tuple(v for k, v in vars(referral).items() if k not in unsaid)


def _closes_at(ctx: Context, now: datetime) -> datetime:
    return now + timedelta(days=ctx.settings.timing.survey_open_days)


def _send(batch: _Surveys, survey: SurveyRecord, referral: ReferralRecord) -> int:
    ctx, now = batch.ctx, batch.now
    if survey.state != SurveyState.SCHEDULED or survey.due_at > now:
        return 0  # claimed under a stale view
    party = referral.party_by_id(survey.party_id)
    introduced = referral.introduced_at is not None and referral.introduced_at <= now
    if not introduced or referral.state not in (State.INTRODUCED, State.EVALUATING):
        why = "not introduced"
    elif party.email in batch.stopped:
        why = "address said stop"
    elif (referral.id, party.role) in batch.missed:
        # A party the introduction never reached has nothing to tell us about it.
        why = "the introduction did not reach them"
    else:
        why = ""
    if why:
        queries.move_survey(survey.id, SurveyState.SCHEDULED, SurveyState.SKIPPED)
        queries.add_event(referral.id, now, "survey skipped", party.role, Channel.TICK, why)
        batch.moved(_settle(ctx, referral, now))
        return 0
    mails = batch.drafts.letters(survey, referral)
    # The conditional move is the "never twice" guard: only one transaction gets to send.
    if not queries.move_survey(
        survey.id,
        SurveyState.SCHEDULED,
        SurveyState.SENT,
        sent_at=now,
        expires_at=_closes_at(ctx, now),
    ):
        return 0
    batch.queue(mails)
    if referral.state == State.INTRODUCED:
        batch.moved(workflow.move(referral, State.EVALUATING, now, Channel.TICK))
    queries.add_event(
        referral.id, now, "surveyed", party.role, Channel.TICK, f"round {survey.round}"
    )
    return 1


def _close(batch: _Surveys, survey: SurveyRecord, referral: ReferralRecord) -> int:
    ctx, now = batch.ctx, batch.now
    if survey.state != SurveyState.SENT or survey.expires_at is None or survey.expires_at > now:
        return 0
    if not queries.move_survey(survey.id, SurveyState.SENT, SurveyState.EXPIRED):
        return 0
    role = referral.party_by_id(survey.party_id).role
    queries.add_event(referral.id, now, "survey expired", role, Channel.TICK)
    batch.moved(_settle(ctx, referral, now))
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


def _settle(ctx: Context, referral: ReferralRecord, now: datetime) -> ReferralRecord:
    """When nothing is left to ask, the referral is evaluated and the referrer hears how it
    went; the referral as it is now."""
    if not workflow.may_move(State(referral.state), State.EVALUATED):
        return referral
    surveys = queries.surveys_of(referral.id)
    if not settled(surveys):
        return referral
    evaluated = workflow.move(referral, State.EVALUATED, now, Channel.TICK)
    queries.enqueue([letters.referrer_evaluated(ctx, referral, surveys, now)], now)
    return evaluated
