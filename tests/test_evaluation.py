"""Exit and Evaluate: surveys after the introduction, asked again after a "not yet", closed
when unanswered, and one summary to the referrer that keeps the value between them."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from service.evaluation import surveys
from service.evaluation.surveys import SurveyOutcome
from service.model import Answer, Business, Channel, State
from service.reading.request import parse_message, parse_request
from service.reading.survey_replies import SurveyAnswers
from service.referral import workflow
from service.tokens import Purpose
from service.writing.formats import format_money
from store import db, queries, suppressions
from store.models import Referral
from tests.helpers import NOW, PROSPECT, PROVIDER, assert_due_from_index, at_once
from tests.test_deadlines import everything_in, open_one, purposes, queued_at, say

DAY = timedelta(days=1)


def introduce(ctx, at: datetime = NOW, need: str | None = None):
    referral = open_one(ctx, need)
    say(ctx, referral, "provider", Answer.YES, at)
    say(ctx, referral, "prospect", Answer.YES, at)
    return queries.referral_by_id(referral.id)


# The standard request says "Follow up: 45 days", which wins over the configured 30.
FOLLOW_UP = timedelta(days=45)


def due(ctx, introduced_at: datetime = NOW) -> datetime:
    return introduced_at + FOLLOW_UP


def surveys_of(referral) -> dict[str, list]:
    by_party = {p.id: p.role for p in referral.parties}
    found: dict[str, list] = {"provider": [], "prospect": []}
    for survey in queries.surveys_of(referral.id):
        found[by_party[survey.party_id]].append(survey)
    return found


def answer(ctx, referral, role: str, at: datetime, **given) -> SurveyOutcome:
    latest = surveys_of(referral)[role][-1]
    return surveys.record(ctx, latest.survey_key, SurveyAnswers(**given), Channel.LINK, at).outcome


# ------------------------------------------------------------------ scheduling


def test_the_introduction_schedules_one_survey_per_party_after_the_delay(ctx):
    referral = introduce(ctx)
    found = surveys_of(referral)
    assert [(s.round, s.state, s.due_at) for s in found["provider"]] == [(1, "scheduled", due(ctx))]
    assert [(s.round, s.state, s.due_at) for s in found["prospect"]] == [(1, "scheduled", due(ctx))]


def test_without_a_follow_up_line_the_configured_delay_applies(ctx):
    from tests.conftest import fixture_bytes
    from tests.test_deadlines import ADA, REQUEST

    raw = re.sub(rb"(?m)^Follow up: .*\n", b"", fixture_bytes(REQUEST))
    draft = parse_request(parse_message(raw))
    assert draft.follow_up_days is None
    referral = workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)
    say(ctx, referral, "provider", Answer.YES, NOW)
    say(ctx, referral, "prospect", Answer.YES, NOW)
    configured = timedelta(days=ctx.settings.timing.follow_up_days)
    assert {s.due_at for s in queries.surveys_of(referral.id)} == {NOW + configured}


@pytest.mark.parametrize("answers", [("yes", "no"), ("no", None), (None, None)])
def test_no_survey_without_an_introduction(ctx, answers):
    referral = open_one(ctx)
    for role, given in zip(("provider", "prospect"), answers, strict=True):
        if given:
            say(ctx, referral, role, Answer(given), NOW)
    assert queries.surveys_of(referral.id) == []
    assert surveys.send_due(ctx, NOW + 400 * DAY) == 0


# ------------------------------------------------------------------ sending


def test_nothing_is_sent_before_it_is_due(ctx):
    introduce(ctx)
    assert surveys.send_due(ctx, due(ctx) - timedelta(minutes=1)) == 0


def test_each_party_gets_one_survey_once(ctx):
    referral = introduce(ctx)
    assert surveys.send_due(ctx, due(ctx)) == 2
    assert surveys.send_due(ctx, due(ctx) + DAY) == 0
    sent = [(p, r) for p, r in purposes(referral.id) if p == "survey"]
    assert sorted(sent) == [("survey", (PROSPECT,)), ("survey", (PROVIDER,))]
    assert queries.referral_by_id(referral.id).state == State.EVALUATING


def test_the_survey_names_the_other_and_answers_in_one_click_or_by_reply(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    [jane] = [m for p, m in queued_at(due(ctx)) if p == "survey" and PROVIDER in m["To"]]
    text = jane.get_body(("plain",)).get_content()
    assert "Bob Smith" in text
    survey = surveys_of(referral)["provider"][0]
    tokens = set(re.findall(r"/s/([A-Za-z0-9_.\-]+)", text))
    assert {ctx.tokens.read(Purpose.SURVEY, t) for t in tokens} == {survey.survey_key}
    for n in range(1, 6):
        assert f"?rating={n}" in text
    for choice in ("yes", "not_yet", "no"):
        assert f"?business={choice}" in text
    assert f"refer+{survey.reply_key}@" in jane["Reply-To"]


def test_a_survey_is_never_sent_to_an_address_that_said_stop(ctx):
    referral = introduce(ctx)
    with db.transaction():
        suppressions.suppress(PROSPECT, NOW + DAY)
    assert surveys.send_due(ctx, due(ctx)) == 1
    assert [r for p, r in purposes(referral.id) if p == "survey"] == [(PROVIDER,)]
    assert surveys_of(referral)["prospect"][0].state == "skipped"


def test_two_instances_at_once_send_each_survey_once(ctx):
    referrals = [introduce(ctx) for _ in range(8)]

    def instance() -> int:
        return surveys.send_due(ctx, due(ctx), limit=3) + surveys.send_due(ctx, due(ctx))

    assert sum(at_once(instance)) == 16
    for referral in referrals:
        assert [p for p, _ in purposes(referral.id)].count("survey") == 2


# ------------------------------------------------------------------ answers


def test_an_answer_is_recorded_once(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    at = due(ctx) + DAY
    assert answer(ctx, referral, "provider", at, rating=4) is SurveyOutcome.RECORDED
    assert answer(ctx, referral, "provider", at, rating=1) is SurveyOutcome.ALREADY_ANSWERED
    assert surveys_of(referral)["provider"][0].rating == 4


def test_not_yet_asks_again_later_at_most_twice(ctx):
    referral = introduce(ctx)
    again = timedelta(days=ctx.settings.timing.follow_up_again_days)
    at = due(ctx)
    for _ in range(3):
        assert surveys.send_due(ctx, at) >= 1
        assert answer(ctx, referral, "provider", at, business=Business.NOT_YET) is (
            SurveyOutcome.RECORDED
        )
        at = at + again
    rounds = surveys_of(referral)["provider"]
    assert [s.round for s in rounds] == [1, 2, 3]
    assert [s.due_at - rounds[0].due_at for s in rounds] == [timedelta(0), again, 2 * again]
    assert surveys.send_due(ctx, at + 365 * DAY) == 0


def test_an_unanswered_survey_closes_and_the_evaluation_ends(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    answer(ctx, referral, "provider", due(ctx) + DAY, rating=5, business=Business.YES)
    closes = due(ctx) + timedelta(days=ctx.settings.timing.survey_open_days)
    assert surveys.close_due(ctx, closes - timedelta(minutes=1)) == 0
    assert surveys.close_due(ctx, closes) == 1
    assert queries.referral_by_id(referral.id).state == State.EVALUATED
    [(_, summary)] = [(p, m) for p, m in queued_at(closes) if p == "referrer_evaluated"]
    text = summary.get_body(("plain",)).get_content()
    assert "did not answer the survey" in text
    assert "useful: 5 of 5" in text


def test_an_answer_after_the_survey_closed_is_refused(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    closes = due(ctx) + timedelta(days=ctx.settings.timing.survey_open_days)
    assert answer(ctx, referral, "provider", closes, rating=3) is SurveyOutcome.CLOSED


# ------------------------------------------------------------------ the summary and privacy


@pytest.mark.parametrize(
    ("jane_says", "bob_says"),
    [
        ({"amount": Decimal("1200.00"), "currency": "EUR"}, {}),
        ({}, {"amount": Decimal("987654.32"), "currency": "USD"}),
        ({"amount": Decimal("15000000.00"), "currency": "IDR"}, {"amount": Decimal("77.70")}),
    ],
    ids=["provider-eur", "prospect-usd", "both"],
)
def test_the_value_reaches_the_referrer_and_never_the_other_party(ctx, jane_says, bob_says):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    at = due(ctx) + DAY
    answer(ctx, referral, "provider", at, rating=4, business=Business.YES, **jane_says)
    answer(ctx, referral, "prospect", at, rating=5, business=Business.YES, **bob_says)
    assert queries.referral_by_id(referral.id).state == State.EVALUATED
    everything = queries.claim_outbox(at + 400 * DAY, at + 400 * DAY, 1000)

    def shown(raw: bytes) -> str:
        return everything_in(email.message_from_bytes(raw, policy=email.policy.default))

    to_referrer = [shown(i.raw) for i in everything if i.purpose == "referrer_evaluated"]
    assert len(to_referrer) == 1
    for said, reader in ((jane_says, PROSPECT), (bob_says, PROVIDER)):
        if "amount" not in said:
            continue
        # Written as the referrer's language writes that currency (CLDR's decimals, from the
        # installed Babel): the same function the summary uses, not one release's output.
        figure = format_money(said["amount"], said.get("currency", ""), referral.language)
        assert figure and figure in to_referrer[0]
        for item in everything:
            if item.recipients == (reader,):
                text = shown(item.raw)
                assert figure not in text and str(said["amount"]) not in text, item.purpose


def test_the_summary_is_sent_once_when_both_answered(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    at = due(ctx) + DAY
    answer(ctx, referral, "provider", at, rating=3, business=Business.NO, more=False)
    assert queries.referral_by_id(referral.id).state == State.EVALUATING
    answer(ctx, referral, "prospect", at, rating=4, business=Business.NO, comment="nice chat")
    assert surveys.close_due(ctx, at + 400 * DAY) == 0
    kinds = [p for p, _ in purposes(referral.id)]
    assert kinds.count("referrer_evaluated") == 1
    [(_, summary)] = [(p, m) for p, m in queued_at(at) if p == "referrer_evaluated"]
    text = summary.get_body(("plain",)).get_content()
    assert 'in their words: "nice chat"' in text
    assert "would welcome more introductions like this: no" in text


def test_the_history_keeps_the_answers_but_not_the_value(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    answer(
        ctx,
        referral,
        "provider",
        due(ctx) + DAY,
        rating=4,
        business=Business.YES,
        amount=Decimal("4321.00"),
        currency="EUR",
    )
    details = " ".join(e.detail for e in queries.events_for(referral.id))
    assert "rating 4" in details and "4321" not in details


# ------------------------------------------------------------------ the store


@pytest.mark.parametrize(
    ("kind", "index"),
    [("surveys", "survey_due_at"), ("survey expiries", "survey_expires_at")],
)
def test_the_due_surveys_are_answered_from_an_index(ctx, kind, index):
    assert_due_from_index(kind, index, NOW)


def test_a_survey_is_never_sent_for_a_referral_that_is_not_introduced(ctx):
    referral = introduce(ctx)
    # As if an operator had closed it by hand in between: the tick checks, not assumes.
    Referral.update(state=State.DECLINED).where(Referral.id == referral.id).execute()
    assert surveys.send_due(ctx, due(ctx)) == 0
    assert all(s.state == "skipped" for s in queries.surveys_of(referral.id))
    assert workflow.find_question(referral.party("provider").ask_key) is not None
