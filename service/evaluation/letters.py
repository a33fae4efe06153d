"""The letters of Exit and Evaluate: the survey, the referrer's summary, report and digest.

Written with `writing.letters.post`, like every letter; each context is spelled out key by
key here too. The value closed appears only in what goes to the referrer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.evaluation import answers
from service.evaluation.figures import Figures
from service.model import Role, SurveyState
from service.reading.addresses import Mailbox
from service.reading.routing import reply_address
from service.reading.survey_form import CHOICES
from service.tokens import Purpose
from service.writing import letters
from service.writing.context import Context
from store.records import (
    EventRecord,
    OutgoingMail,
    PartyRecord,
    ReferralRecord,
    ReferrerRecord,
    SurveyRecord,
)


def survey(
    ctx: Context,
    referral: ReferralRecord,
    party: PartyRecord,
    survey: SurveyRecord,
    now: datetime,
) -> OutgoingMail:
    """How did it go? One-click answers open the survey page with that choice made; a plain
    reply answers too (its Reply-To is the survey's own address)."""
    url = survey_url(ctx, survey.survey_key)
    other = referral.other(party.role)
    reply_to = [
        Mailbox(ctx.settings.service.sender_name, reply_address(ctx.settings, survey.reply_key))
    ]
    return letters.post(
        ctx,
        "survey",
        [letters.mailbox_of(party)],
        party.language,
        {
            "name": party.name,
            "other": other.display,
            "referrer": referral.referrer_display,
            "need": referral.need,
            "introduced_at": referral.introduced_at,
            "round": survey.round,
            "expires_at": survey.expires_at,
            "url": url,
            "rating_urls": {int(n): f"{url}?rating={n}" for n in CHOICES["rating"]},
            "business_urls": {b: f"{url}?business={b}" for b in CHOICES["business"]},
        },
        now,
        referral.id,
        reply_to=reply_to,
        survey_id=survey.id,
        timezone=party.timezone,
    )


def survey_url(ctx: Context, survey_key: str) -> str:
    return ctx.link("/s/" + ctx.tokens.make(Purpose.SURVEY, survey_key))


def survey_outcomes(
    referral: ReferralRecord, surveys: Sequence[SurveyRecord]
) -> list[dict[str, Any]]:
    """Each party's rounds, oldest first, for the referrer: what they said each time they
    were asked (or that they did not answer), the final answer marked."""
    outcomes = []
    for party in referral.parties:
        mine = [s for s in surveys if s.party_id == party.id]
        last = answers.final(mine)
        outcomes.append(
            {
                "person": letters.card(party),
                "role": party.role,
                "answered": last is not None,
                "rounds": [_round(s, s is last) for s in answers.asked_rounds(mine)],
            }
        )
    return outcomes


def _round(survey: SurveyRecord, final: bool) -> dict[str, Any]:
    answered = survey.state == SurveyState.ANSWERED
    return {
        "round": survey.round,
        "asked_at": survey.sent_at or survey.due_at,
        "answered_at": survey.answered_at if answered else None,
        "answered": answered,
        "final": final,
        "rating": survey.rating if answered else None,
        "business": survey.business if answered else None,
        "amount": survey.amount if answered else None,
        "currency": survey.currency if answered else "",
        "more": survey.more if answered else None,
        "comment": survey.comment if answered else "",
    }


def referrer_evaluated(
    ctx: Context, referral: ReferralRecord, surveys: Sequence[SurveyRecord], now: datetime
) -> OutgoingMail:
    """How the introduction went, in both parties' words; the value closed is credited to the
    referrer, and only the referrer (and whoever reported it) ever sees it."""
    outcomes = survey_outcomes(referral, surveys)
    return letters.to_referrer(
        ctx,
        "referrer_evaluated",
        referral,
        now,
        introduced_at=referral.introduced_at,
        outcomes=outcomes,
        several_rounds=any(len(o["rounds"]) > 1 for o in outcomes),
    )


def report_url(ctx: Context, referrer: ReferrerRecord) -> str:
    return ctx.link("/r/" + ctx.tokens.make(Purpose.REPORT, referrer.key))


def digest_off_url(ctx: Context, referrer: ReferrerRecord) -> str:
    return ctx.link("/d/" + ctx.tokens.make(Purpose.DIGEST, referrer.key))


def report(
    ctx: Context,
    referrer: ReferrerRecord,
    name: str,
    language: str,
    figures: Figures,
    in_reply_to: str | None,
    now: datetime,
) -> OutgoingMail:
    """The answer to a referrer's "report" mail: their figures, and the page with the chart."""
    return letters.post(
        ctx,
        "report",
        [Mailbox(name, referrer.email)],
        language,
        {"referrer_name": name, "figures": figures, "report_url": report_url(ctx, referrer)},
        now,
        None,
        in_reply_to=in_reply_to,
    )


def digest(
    ctx: Context,
    referrer: ReferrerRecord,
    name: str,
    language: str,
    week: Sequence[tuple[ReferralRecord, Sequence[EventRecord]]],
    since: datetime,
    until: datetime,
    now: datetime,
) -> OutgoingMail:
    """What happened to a referrer's referrals in one week, greeting them by `name` (the one on
    their latest request); one click turns the digest off."""
    off = digest_off_url(ctx, referrer)
    referrals = [
        {
            "ref": referral.ref,
            "state": referral.state,
            "provider": letters.card(referral.party(Role.PROVIDER)),
            "prospect": letters.card(referral.party(Role.PROSPECT)),
            "events": [
                {"at": e.at, "kind": e.kind, "actor": e.actor, "detail": e.detail} for e in events
            ],
        }
        for referral, events in week
    ]
    return letters.post(
        ctx,
        "digest",
        [Mailbox(name, referrer.email)],
        language,
        {
            "referrer_name": name,
            "referrals": referrals,
            "since": since,
            "until": until,
            "report_url": report_url(ctx, referrer),
            "digest_off_url": off,
        },
        now,
        None,
        unsubscribe_url=off,
    )
