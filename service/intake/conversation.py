"""Behind the SMTP answer: a party's answer by mail, and the bounces of what we sent."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from service.evaluation import surveys
from service.intake import refusals
from service.intake.disposition import Disposition
from service.intake.receiving import referenced_ids
from service.model import INTRODUCTION, QUESTION_PURPOSES, Answer, Channel, InboundState
from service.reading import bounces, quotes, replies
from service.reading.authorization import author_of
from service.reading.robots import automatic_reason
from service.reading.survey_replies import SurveyAnswers, read_survey
from service.referral import workflow
from service.referral.consent_evidence import Shown
from service.writing.context import Context
from store import queries
from store.records import InboundRecord, PartyRecord


def process_reply(
    ctx: Context, record: InboundRecord, message: EmailMessage, ask_key: str, now: datetime
) -> Disposition:
    """Stages: not a robot, from the party asked, then a yes, a no or one explanation."""
    robot = _robot(record, message)
    if robot:
        return robot
    found = workflow.find_question(ask_key)
    if found is None:
        return Disposition(InboundState.IGNORED, "answer to a question we do not have")
    referral, party = found
    stranger = _not_from(message, referral.ref, party, "reply")
    if stranger:
        return stranger
    reading = replies.read_answer(quotes.new_text(message))
    if reading.verdict is replies.Verdict.UNCLEAR:
        told = workflow.explain_unclear(ctx, ask_key, now)
        how = "explained how to answer" if told else "not explained again"
        return Disposition(
            InboundState.PROCESSED, f"{referral.ref}: unclear answer from the {party.role}; {how}"
        )
    result = workflow.answer(
        ctx,
        ask_key,
        Answer(reading.verdict.value),
        Channel.REPLY,
        now,
        reason=reading.reason,
        reason_text=reading.reason_text,
        shown=Shown(tuple(referenced_ids(message)), record.message_id),
    )
    done = f"{referral.ref}: {party.role} answered {reading.verdict} ({result.outcome})"
    if result.outcome is workflow.Outcome.NO_STANDS:
        told = workflow.tell_no_stands(ctx, ask_key, now)
        done += "; told their no stands" if told else "; not told again"
    return Disposition(InboundState.PROCESSED, done)


def process_survey_reply(
    ctx: Context, record: InboundRecord, message: EmailMessage, survey_key: str, now: datetime
) -> Disposition:
    """Stages: not a robot, from the party asked, then whatever answers the reply gives.

    Text we cannot read as answers still reaches the referrer, as the party's comment.
    """
    robot = _robot(record, message)
    if robot:
        return robot
    found = surveys.find_survey(survey_key)
    if found is None:
        return Disposition(InboundState.IGNORED, "answer to a survey we do not have")
    referral, survey = found
    party = referral.party_by_id(survey.party_id)
    stranger = _not_from(message, referral.ref, party, "survey reply")
    if stranger:
        return stranger
    text = quotes.new_text(message)
    answers = read_survey(text)
    if answers.empty:
        comment = " ".join(text.split())[:1000]
        if not comment:
            return Disposition(InboundState.IGNORED, f"{referral.ref}: empty survey reply")
        answers = SurveyAnswers(comment=comment)
    result = surveys.record(ctx, survey_key, answers, Channel.REPLY, now)
    return Disposition(
        InboundState.PROCESSED,
        f"{referral.ref}: {party.role} answered the survey ({result.outcome})",
    )


def _robot(record: InboundRecord, message: EmailMessage) -> Disposition | None:
    """Robots never answer for anyone (RFC 3834)."""
    robot = automatic_reason(message, record.envelope_from)
    return Disposition(InboundState.IGNORED, f"automatic message: {robot}") if robot else None


def _not_from(message: EmailMessage, ref: str, party: PartyRecord, what: str) -> Disposition | None:
    """Someone the mail was forwarded to is not the person we asked."""
    author = author_of(message)
    if author is not None and author.address == party.email:
        return None
    return Disposition(InboundState.IGNORED, f"{ref}: {what} not from the {party.role}")


def process_bounce(
    ctx: Context, record: InboundRecord, message: EmailMessage, bounce_key: str, now: datetime
) -> Disposition:
    """A permanent failure of a consent question ends the referral; anything else is noted.

    Only a bounce that names one mail we sent is acted on: by its VERP address, or, for an
    MTA that returned it elsewhere (to the From address, say), by quoting that mail's
    Message-ID. Both are random, so only the MTA that carried the mail, or its recipient,
    knows them. The failed party is then known without trusting the bounce's text. A bounce
    that names only addresses is stored and changes nothing: anyone can write one, from
    the null sender, to our plain address, naming whomever they want to drop out.
    """
    failures = bounces.read_bounce(message)
    if not failures:
        return Disposition(InboundState.IGNORED, "not a delivery status notification")
    if bounce_key:
        sent = queries.sent_mail_by_bounce_key(bounce_key)
    else:
        sent = queries.sent_mail_by_message_ids(bounces.returned_message_ids(message))
    permanent = [f for f in failures if f.permanent]
    if not permanent:
        statuses = ", ".join(f"{f.recipient} {f.status or '4.x.x'}" for f in failures)
        if sent is not None and sent.referral_id is not None:
            queries.add_event(
                sent.referral_id, now, "delivery delayed", "mta", Channel.SMTP, statuses
            )
        return Disposition(InboundState.IGNORED, f"temporary failure: {statuses}")
    if sent is not None and sent.survey_id is not None:
        closed = surveys.bounced(ctx, sent.survey_id, permanent[0].status, now)
        return Disposition(
            InboundState.PROCESSED,
            f"permanent failure of a survey: {permanent[0].status}; closed {closed}",
        )
    if sent is not None and sent.referral_id is not None and sent.purpose == INTRODUCTION:
        told = refusals.not_introduced(
            ctx, sent.referral_id, sent.recipients[0], permanent[0].status, Channel.SMTP, now
        )
        return Disposition(
            InboundState.PROCESSED,
            f"permanent failure of an introduction: {permanent[0].status}; referrer told {told}",
        )
    addresses = ", ".join(f"{f.recipient} {f.status}" for f in permanent)
    if sent is None:
        return Disposition(
            InboundState.IGNORED, f"permanent failure of no mail we know: {addresses}"
        )
    # The mail is known: whatever address it reports, this question failed.
    ended = False
    asked = sent.referral_id is not None and sent.party_id is not None
    if asked and sent.purpose in QUESTION_PURPOSES:
        status = permanent[0].status
        ended = workflow.undeliverable(
            ctx, sent.referral_id, sent.party_id, status, Channel.SMTP, now
        )
    return Disposition(
        InboundState.PROCESSED, f"permanent failure: {addresses}; {int(ended)} referral(s) ended"
    )
