"""The referrer's report: figures from hand-built records (evaluation.figures), and the
JSON, CSV and text evaluation.report writes of them."""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.evaluation import figures, report
from service.evaluation.figures import FUNNEL_STEPS, Figures, Money, compute, refer_again
from service.model import DeclineReason
from service.writing.compose import Templates
from service.writing.formats import format_money
from store.records import PartyRecord, ReferralRecord, SurveyRecord

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NOV = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
ADA = "ada@referrer.example"
JANE = "jane@acme.example"
BOB = "bob@bakery.example"
TEMPLATES = Templates()

_ids = itertools.count(1)


def party(
    role: str,
    email: str,
    answer: str | None = None,
    reason: str | None = None,
    name: str = "",
) -> PartyRecord:
    return PartyRecord(
        id=next(_ids),
        role=role,
        name=name,
        email=email,
        phone="",
        prefers="",
        best_time="",
        booking="",
        language="en",
        ask_key=f"ask-{next(_ids)}",
        answer=answer,
        answered_at=None if answer is None else OCT,
        answer_channel=None if answer is None else "link",
        decline_reason=reason,
    )


def referral(
    state: str = "asking",
    provider: PartyRecord | None = None,
    prospect: PartyRecord | None = None,
    created: datetime = OCT,
    introduced: datetime | None = None,
    referrer: str = ADA,
) -> ReferralRecord:
    rid = next(_ids)
    return ReferralRecord(
        id=rid,
        ref=f"R{rid}",
        state=state,
        referrer_email=referrer,
        referrer_name="Ada",
        need="bread",
        budget="",
        follow_up_days=None,
        language="en",
        subject="Intro",
        request_message_id=None,
        created_at=created,
        updated_at=created,
        expires_at=created + timedelta(days=14),
        introduced_at=introduced,
        parties=(provider or party("provider", JANE), prospect or party("prospect", BOB)),
    )


def introduced(
    provider: str = JANE,
    prospect: str = BOB,
    at: datetime = OCT,
    created: datetime | None = None,
    provider_name: str = "",
) -> ReferralRecord:
    """A referral both said yes to, introduced at `at`."""
    return referral(
        "introduced",
        party("provider", provider, "yes", name=provider_name),
        party("prospect", prospect, "yes"),
        created=created or at,
        introduced=at,
    )


def declined(reason: str | None, who: str = "prospect", created: datetime = OCT) -> ReferralRecord:
    if who == "prospect":
        return referral(
            "declined",
            party("provider", JANE, "yes"),
            party("prospect", BOB, "no", reason),
            created=created,
        )
    return referral(
        "declined", party("provider", JANE, "no", reason), party("prospect", BOB), created=created
    )


def survey(
    of: ReferralRecord,
    role: str,
    *,
    round: int = 1,
    state: str = "answered",
    rating: int | None = None,
    business: str | None = None,
    amount: str | None = None,
    currency: str = "",
    more: bool | None = None,
    answered: datetime | None = None,
) -> SurveyRecord:
    sid = next(_ids)
    due = (of.introduced_at or of.created_at) + timedelta(days=30 * round)
    return SurveyRecord(
        id=sid,
        referral_id=of.id,
        party_id=of.party(role).id,
        round=round,
        state=state,
        survey_key=f"s-{sid}",
        reply_key=f"r-{sid}",
        due_at=due,
        sent_at=due,
        answered_at=(answered or due + timedelta(days=1)) if state == "answered" else None,
        rating=rating,
        business=business,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        more=more,
    )


def run(
    referrals: list[ReferralRecord],
    surveys: list[SurveyRecord] = (),
    referrer: str | None = ADA,
    since: datetime | None = None,
) -> Figures:
    by_referral: dict[int, list[SurveyRecord]] = {}
    for s in surveys:
        by_referral.setdefault(s.referral_id, []).append(s)
    return compute(referrals, by_referral, referrer=referrer, since=since, now=NOW)


def funnel(result: Figures) -> dict[str, int]:
    return {c.name: c.count for c in result.funnel}


def person(result: Figures, email: str) -> figures.Person:
    return next(p for p in result.people if p.email == email)


# --- funnel -----------------------------------------------------------------------------


def _received():
    return [referral("received")], []


def _asking():
    return [referral("asking")], []


def _declined():
    return [declined("no_need_now")], []


def _both_yes_not_yet_introduced():
    r = referral("asking", party("provider", JANE, "yes"), party("prospect", BOB, "yes"))
    return [r], []


def _introduced():
    r = introduced()
    return [r], [survey(r, "prospect", state="sent")]


def _evaluated():
    r = introduced()
    return [r], [survey(r, "prospect", rating=4, business="not_yet")]


def _led_to_business():
    r = introduced()
    return [r], [survey(r, "provider", rating=5, business="yes", amount="100", currency="EUR")]


@pytest.mark.parametrize(
    ("build", "reached"),
    [
        pytest.param(_received, 1, id="requested"),
        pytest.param(_asking, 2, id="asked"),
        pytest.param(_declined, 2, id="asked-then-declined"),
        pytest.param(_both_yes_not_yet_introduced, 3, id="both_yes"),
        pytest.param(_introduced, 4, id="introduced-survey-unanswered"),
        pytest.param(_evaluated, 5, id="evaluated"),
        pytest.param(_led_to_business, 6, id="led_to_business"),
    ],
)
def test_funnel_counts_a_referral_up_to_the_step_it_reached(build, reached):
    referrals, surveys = build()
    expected = {step: int(i < reached) for i, step in enumerate(FUNNEL_STEPS)}
    assert funnel(run(referrals, surveys)) == expected


def test_funnel_step_needs_every_step_before_it():
    # Hand-patched: an answered survey on a referral that was never introduced.
    r = referral("asking")
    result = run([r], [survey(r, "provider", business="yes")])
    assert (funnel(result)["evaluated"], funnel(result)["led_to_business"]) == (0, 0)


def test_funnel_steps_come_in_order_with_their_names():
    assert tuple(c.name for c in run([]).funnel) == FUNNEL_STEPS


def test_funnel_adds_up_over_referrals():
    done = introduced()
    result = run(
        [referral("received"), referral("asking"), declined("other"), done],
        [survey(done, "provider", business="yes")],
    )
    assert funnel(result) == {
        "requested": 4,
        "asked": 3,
        "both_yes": 1,
        "introduced": 1,
        "evaluated": 1,
        "led_to_business": 1,
    }


# --- decline reasons --------------------------------------------------------------------


def test_decline_reasons_in_fixed_order_with_missing_reason_as_unspecified():
    result = run(
        [
            declined("not_relevant"),
            declined("not_relevant", who="provider"),
            declined("not_a_fit"),
            declined(None),
            introduced(),  # yes answers are not declines
        ]
    )
    assert [(c.name, c.count) for c in result.declines] == [
        ("not_relevant", 2),
        ("no_need_now", 0),
        ("not_a_fit", 1),
        ("other", 0),
        ("unspecified", 1),
    ]


# --- people -----------------------------------------------------------------------------


def test_people_are_one_row_per_lower_cased_email_most_referred_first():
    result = run(
        [
            introduced(provider="Jane@Acme.example", prospect="zed@z.example"),
            introduced(provider=JANE, prospect="amy@a.example"),
            declined("not_relevant"),
        ]
    )
    assert [(p.email, p.referred) for p in result.people] == [
        (JANE, 3),
        ("amy@a.example", 1),
        (BOB, 1),
        ("zed@z.example", 1),
    ]


def test_person_row_adds_up_their_referrals():
    first = introduced(prospect=BOB, at=OCT, provider_name="Jane Old")
    second = introduced(prospect=BOB, at=NOV, provider_name="Jane Doe")
    no = referral("declined", party("provider", JANE, "no", "not_relevant"), party("prospect", BOB))
    as_prospect = referral("asking", party("provider", "x@x.example"), party("prospect", JANE))
    surveys = [
        survey(first, "provider", rating=3, business="yes", amount="500", currency="EUR"),
        survey(second, "provider", rating=5, business="no", more=True),
        survey(second, "provider", round=2, state="scheduled"),
    ]
    jane = person(run([first, second, no, as_prospect], surveys), JANE)
    assert jane == figures.Person(
        email=JANE,
        name="Jane Doe",
        roles=("provider", "prospect"),
        referred=4,
        introduced=2,
        declined=1,
        declined_not_relevant=1,
        average_rating=4.0,
        business=1,
        value=(Money("EUR", Decimal("500.00")),),
        more=True,
        refer_again="yes",
    )


def test_person_without_a_name_is_shown_by_email_and_without_rating():
    bob = person(run([referral("asking")]), BOB)
    assert (bob.name, bob.average_rating, bob.more) == (BOB, None, None)


def test_person_more_is_their_latest_answer():
    early, late = introduced(at=OCT), introduced(at=NOV)
    surveys = [
        survey(late, "prospect", more=False, answered=NOV + timedelta(days=40)),
        survey(early, "prospect", more=True, answered=OCT + timedelta(days=40)),
    ]
    assert person(run([early, late], surveys), BOB).more is False


@pytest.mark.parametrize(
    ("business", "not_relevant", "more", "rating", "verdict"),
    [
        pytest.param(1, 1, False, 5.0, "no", id="no-to-more-beats-business"),
        pytest.param(1, 1, None, None, "yes", id="business-beats-not-relevant"),
        pytest.param(0, 1, True, 5.0, "no", id="declined-not-relevant"),
        pytest.param(0, 0, True, 4.0, "yes", id="welcomes-more-rated-4"),
        pytest.param(0, 0, True, 3.5, "unknown", id="welcomes-more-rated-below-4"),
        pytest.param(0, 0, True, None, "unknown", id="welcomes-more-no-rating"),
        pytest.param(0, 0, None, 5.0, "unknown", id="rated-high-never-said-more"),
        pytest.param(0, 0, None, None, "unknown", id="nothing-known"),
    ],
)
def test_refer_again_rule(business, not_relevant, more, rating, verdict):
    assert (
        refer_again(
            business=business, declined_not_relevant=not_relevant, more=more, average_rating=rating
        )
        == verdict
    )


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        pytest.param({"business": "yes"}, "yes", id="business"),
        pytest.param({"more": True, "rating": 4}, "yes", id="more-and-rating"),
        pytest.param({"more": False, "rating": 5}, "no", id="no-more"),
        pytest.param({"business": "not_yet", "rating": 5}, "unknown", id="not-yet"),
    ],
)
def test_refer_again_from_survey_answers(answer, verdict):
    r = introduced()
    assert person(run([r], [survey(r, "prospect", **answer)]), BOB).refer_again == verdict


def test_refer_again_no_after_declining_as_not_relevant():
    assert person(run([declined("not_relevant")]), BOB).refer_again == "no"


# --- value closed -----------------------------------------------------------------------


def test_value_closed_per_currency_latest_answered_round_wins():
    a, b, c = introduced(), introduced(), introduced()
    surveys = [
        # "not yet" then "yes" with an amount: the yes counts, once.
        survey(a, "provider", round=1, business="not_yet", amount="100", currency="EUR"),
        survey(a, "provider", round=2, business="yes", amount="1200", currency="EUR"),
        survey(a, "provider", round=3, state="expired"),
        survey(b, "prospect", round=1, business="yes", amount="19.999", currency="usd"),
        survey(c, "provider", round=1, business="yes", amount="50"),
        survey(c, "prospect", round=1, business="no", amount=None, currency="EUR"),
    ]
    assert run([a, b, c], surveys).value_closed == (
        Money("EUR", Decimal("1200.00")),
        Money("USD", Decimal("20.00")),
        Money("", Decimal("50.00")),
    )


# Both parties of a referral report the one deal; whoever reported it, it closes one value.
@pytest.mark.parametrize(
    ("provider", "prospect", "closed"),
    [
        (("1200", "EUR"), ("1200", "EUR"), ("EUR", "1200.00")),
        (("300", "EUR"), ("200.5", "EUR"), ("EUR", "300.00")),  # the provider's when both
        (("1100", "USD"), ("1000", "EUR"), ("USD", "1100.00")),  # no rate to add them by
        (("900", None), ("1000", "EUR"), ("", "900.00")),
        ((None, None), ("1200", "EUR"), ("EUR", "1200.00")),  # the prospect's when alone
        (("1200", "EUR"), (None, None), ("EUR", "1200.00")),
    ],
    ids=[
        "same",
        "differ",
        "two-currencies",
        "provider-no-currency",
        "prospect-only",
        "provider-only",
    ],
)
def test_a_referral_closes_one_value_however_many_parties_report_it(provider, prospect, closed):
    r = introduced()
    surveys = [
        survey(r, "provider", business="yes", amount=provider[0], currency=provider[1]),
        survey(r, "prospect", business="yes", amount=prospect[0], currency=prospect[1]),
    ]
    result = run([r], surveys)
    assert result.value_closed == (Money(closed[0], Decimal(closed[1])),)
    assert funnel(result)["led_to_business"] == 1
    # Each person's row still shows what they themselves reported.
    assert person(result, JANE).value == _reported(*provider)
    assert person(result, BOB).value == _reported(*prospect)


def _reported(amount: str | None, currency: str | None) -> tuple[Money, ...]:
    return () if amount is None else (Money(currency or "", figures.cents(Decimal(amount))),)


def test_values_of_different_referrals_add_up():
    one, two = introduced(), introduced()
    surveys = [
        survey(one, "provider", business="yes", amount="1200", currency="EUR"),
        survey(one, "prospect", business="yes", amount="1200", currency="EUR"),
        survey(two, "prospect", business="yes", amount="300", currency="EUR"),
    ]
    assert run([one, two], surveys).value_closed == (Money("EUR", Decimal("1500.00")),)


def test_later_not_yet_replaces_an_earlier_yes():
    r = introduced()
    surveys = [
        survey(r, "provider", round=1, business="yes", amount="100", currency="EUR"),
        survey(r, "provider", round=2, business="not_yet"),
    ]
    result = run([r], surveys)
    assert (result.value_closed, funnel(result)["led_to_business"]) == ((), 0)


# --- radar ------------------------------------------------------------------------------


def test_radar_months_in_order_with_shares():
    oct_won, oct_lost, nov_won = introduced(at=OCT), introduced(at=OCT), introduced(at=NOV)
    referrals = [
        nov_won,
        oct_won,
        oct_lost,
        declined("not_relevant", created=NOV),
        declined("no_need_now", created=NOV),
        referral("asking", created=NOV),
    ]
    surveys = [
        survey(oct_won, "provider", business="yes"),
        survey(oct_lost, "provider", business="no"),
        survey(nov_won, "prospect", business="yes"),
    ]
    result = run(referrals, surveys)
    rows = [
        (r.month, r.introduced, r.business, r.business_share, r.requested, r.not_relevant)
        for r in result.radar
    ]
    assert rows == [("2026-10", 2, 1, 0.5, 2, 0), ("2026-11", 1, 1, 1.0, 4, 1)]
    assert [r.not_relevant_share for r in result.radar] == [0.0, 0.25]
    everything = result.radar_all
    assert (everything.month, everything.business_share, everything.not_relevant_share) == (
        "all",
        0.6667,
        0.1667,
    )


def test_radar_introduction_counts_in_its_own_month_not_the_request_month():
    r = introduced(created=OCT, at=NOV)
    rows = {row.month: (row.requested, row.introduced) for row in run([r]).radar}
    assert rows == {"2026-10": (1, 0), "2026-11": (0, 1)}


def test_radar_shares_are_none_without_a_base():
    result = run([referral("asking", created=NOV)])
    (row,) = result.radar
    assert (row.business_share, row.not_relevant_share) == (None, 0.0)
    assert run([]).radar_all.business_share is None
    assert run([]).radar_all.not_relevant_share is None


def test_radar_months_are_utc():
    late = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # 01:30 UTC
    (row,) = run([referral("asking", created=late)]).radar
    assert row.month == "2026-12"


# --- header, since and referrer ---------------------------------------------------------


def test_since_is_only_recorded_the_caller_filters():
    since = datetime(2026, 11, 1, tzinfo=UTC)
    result = run([referral("asking", created=OCT)], since=since)
    assert (result.since, result.generated_at, funnel(result)["requested"]) == (since, NOW, 1)


def test_referrer_keeps_only_their_referrals():
    mine, theirs = referral(referrer="Ada@Referrer.example"), referral(referrer="eve@x.example")
    assert funnel(run([mine, theirs], referrer=ADA))["requested"] == 1
    assert funnel(run([mine, theirs], referrer=None))["requested"] == 2
    assert run([mine], referrer=None).referrer is None


# --- formats ----------------------------------------------------------------------------


def _sample() -> Figures:
    won = introduced(provider_name="Müller, Jane & Co")
    lost = declined("not_relevant", created=NOV)
    surveys = [
        survey(won, "provider", rating=5, business="yes", amount="1200", currency="EUR", more=True),
        survey(won, "prospect", rating=4, business="yes", amount="80.5"),
    ]
    return run([won, lost, referral("received", created=NOV)], surveys, since=OCT)


def test_json_round_trips_with_the_expected_numbers():
    document = json.loads(report.as_json(_sample()))
    assert document["schema"] == "care-intro/figures/1"
    assert (document["referrer"], document["since"], document["generated_at"]) == (
        ADA,
        OCT.isoformat(),
        NOW.isoformat(),
    )
    assert document["funnel"] == {
        "requested": 3,
        "asked": 2,
        "both_yes": 1,
        "introduced": 1,
        "evaluated": 1,
        "led_to_business": 1,
    }
    assert document["declines"]["not_relevant"] == 1
    # Both reported the deal: the provider's value, once.
    assert document["value_closed"] == {"EUR": "1200.00"}
    jane = next(p for p in document["people"] if p["email"] == JANE)
    assert (jane["name"], jane["value"], jane["more"], jane["refer_again"]) == (
        "Müller, Jane & Co",
        {"EUR": "1200.00"},
        True,
        "yes",
    )
    assert document["radar"]["months"][0] == {
        "month": "2026-10",
        "introduced": 1,
        "business": 1,
        "business_share": 1.0,
        "requested": 1,
        "not_relevant": 0,
        "not_relevant_share": 0.0,
    }
    assert document["radar"]["all"]["not_relevant_share"] == 0.3333


def test_json_keeps_non_ascii_readable():
    assert "Müller" in report.as_json(_sample())


def test_csv_parses_and_holds_every_funnel_step():
    rows = list(csv.DictReader(io.StringIO(report.as_csv(_sample()))))
    assert set(rows[0]) == {"section", "subject", "measure", "value"}
    found = {(r["section"], r["subject"], r["measure"]): r["value"] for r in rows}
    for step in FUNNEL_STEPS:
        assert ("funnel", "", step) in found
    assert found[("funnel", "", "requested")] == "3"
    assert found[("declines", "", "not_relevant")] == "1"
    assert found[("person", JANE, "name")] == "Müller, Jane & Co"
    assert found[("person", JANE, "introduced")] == "1"
    assert found[("person", JANE, "refer_again")] == "yes"
    assert found[("person", JANE, "value:EUR")] == "1200.00"
    assert found[("value", "EUR", "total")] == "1200.00"
    # Bob's 80.50 was the same deal as Jane's 1200 EUR: his row has it, the total not.
    assert found[("person", BOB, "value:")] == "80.50"
    assert ("value", "", "total") not in found
    assert found[("radar", "2026-10", "business_share")] == "1"
    assert found[("radar", "all", "not_relevant_share")] == "0.3333"
    assert found[("report", "", "since")] == OCT.isoformat()


def test_csv_leaves_missing_values_empty():
    rows = list(csv.DictReader(io.StringIO(report.as_csv(run([referral("asking")])))))
    found = {(r["section"], r["subject"], r["measure"]): r["value"] for r in rows}
    assert found[("person", BOB, "average_rating")] == ""
    assert found[("radar", "all", "business_share")] == ""


def text(result: Figures, language: str = "en") -> str:
    return report.as_text(result, TEMPLATES, language, "Europe/Berlin")


def test_text_has_its_sections():
    long = "Bartholomew Maximilian Fitzgerald-Worthington the Third"
    r = introduced(provider="a-very-long-address-for-sure@a-very-long-domain.example")
    r2 = introduced(prospect="x" * 90 + "@example.com", provider_name=long)
    r3 = introduced(provider="wide@example.jp", provider_name="山田太郎株式会社" * 4)
    written = text(_sample_with(r, r2, r3))
    for heading in ("FUNNEL", "WHY PEOPLE SAID NO", "PEOPLE YOU REFERRED", "VALUE CLOSED"):
        assert f"\n{heading}\n" in written
    assert "\nYOUR REFERRAL RADAR\n" in written
    assert long in written and "山田太郎株式会社" in written


def _sample_with(*extra: ReferralRecord) -> Figures:
    surveys = [survey(extra[0], "provider", business="yes", amount="12345678.9", currency="EUR")]
    return run([*extra, declined(None)], surveys, referrer=ADA)


def test_text_shows_percentages_of_requests_and_money_as_the_reader_writes_it():
    written = text(_sample())
    assert "Requested: 3 (100%)" in written
    (business,) = [line for line in written.splitlines() if "Led to business:" in line]
    assert business.strip() == "Led to business: 1 (33%)"
    for language in ("en", "de", "ar"):
        assert format_money(Decimal(1200), "EUR", language) in text(_sample(), language)


def test_text_says_per_person_what_the_verdict_rests_on():
    written = text(_sample())
    (won,) = [line for line in written.splitlines() if "Müller" in line]
    assert "led to business 1" in won and format_money(Decimal(1200), "EUR", "en") in won
    assert "welcomes more: yes" in won and won.endswith("refer again? yes")
    (lost,) = [line for line in written.splitlines() if line.strip().startswith(BOB)]
    assert "said no 1 (1 as not relevant)" in lost


def test_text_dates_read_in_the_zone_given():
    since = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)  # midnight in New York
    written = report.as_text(run([], since=since), TEMPLATES, "en", "America/New_York")
    assert "since 1 January 2026" in written


def test_text_of_nothing_still_reads():
    written = text(run([], referrer=None))
    assert "All referrers" in written
    assert "Nobody yet." in written and "Nobody said no." in written


def test_text_is_in_the_language_asked_for():
    german = text(_sample(), "de")
    assert "Was aus Ihren Empfehlungen geworden ist" in german
    assert "FUNNEL" not in german and "Requested" not in german


# --- property ---------------------------------------------------------------------------

_survey_answer = st.fixed_dictionaries(
    {
        "state": st.sampled_from(["scheduled", "sent", "answered", "expired", "skipped"]),
        "business": st.sampled_from([None, "yes", "not_yet", "no"]),
        "rating": st.one_of(st.none(), st.integers(1, 5)),
    }
)


@st.composite
def consistent_referral(draw) -> tuple[ReferralRecord, list[SurveyRecord]]:
    """A referral whose state, answers, introduction and surveys agree with each other."""
    stage = draw(st.sampled_from(["received", "asking", "declined", "expired", "introduced"]))
    created = OCT + timedelta(days=draw(st.integers(0, 90)))
    if stage == "received":
        return referral("received", created=created), []
    if stage == "introduced":
        r = introduced(at=created + timedelta(days=2), created=created)
        r = replace(r, state=draw(st.sampled_from(["introduced", "evaluating", "evaluated"])))
        surveys = []
        for role in ("provider", "prospect"):
            for round_ in range(1, draw(st.integers(0, 3)) + 1):
                surveys.append(survey(r, role, round=round_, **draw(_survey_answer)))
        return r, surveys
    answers = [draw(st.sampled_from([None, "yes", "no"])) for _ in range(2)]
    if stage == "declined" and "no" not in answers:
        answers[0] = "no"
    if stage != "declined":
        answers = [a if a != "no" else None for a in answers]
        if answers == ["yes", "yes"]:
            answers[1] = None
    reasons = [
        draw(st.sampled_from([None, *DeclineReason])) if a == "no" else None for a in answers
    ]
    return (
        referral(
            stage,
            party("provider", JANE, answers[0], reasons[0]),
            party("prospect", BOB, answers[1], reasons[1]),
            created=created,
        ),
        [],
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(consistent_referral(), max_size=12))
def test_funnel_never_widens(drawn):
    referrals = [r for r, _ in drawn]
    surveys = [s for _, rounds in drawn for s in rounds]
    counts = [c.count for c in run(referrals, surveys).funnel]
    assert counts[0] == len(referrals)
    assert all(later <= earlier for earlier, later in itertools.pairwise(counts))
