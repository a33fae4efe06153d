"""Pure: the figures of a report, computed from referrals and their surveys.

How they are shown (JSON, CSV, text in the reader's language, a page) is `report`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from service.clock import stored_utc
from service.evaluation import answers
from service.model import ROLES, Answer, Business, DeclineReason, State, SurveyState
from store.records import PartyRecord, ReferralRecord, SurveyRecord

FUNNEL_STEPS: tuple[str, ...] = (
    "requested",
    "asked",
    "both_yes",
    "introduced",
    "evaluated",
    "led_to_business",
)
# "unspecified" is a no without a reason.
DECLINE_ORDER: tuple[str, ...] = (*DeclineReason, "unspecified")
_REASONS = frozenset(DeclineReason)

CENT = Decimal("0.01")
SHARE_PLACES = 4
RATING_PLACES = 2


@dataclass(frozen=True)
class Count:
    """One named count: a funnel step or a decline reason."""

    name: str
    count: int


@dataclass(frozen=True)
class Money:
    """An amount in one currency, to the cent; currency "" means the party named none."""

    currency: str
    amount: Decimal


@dataclass(frozen=True)
class Person:
    """One person referred, by lower-cased email, across every referral they were in."""

    email: str
    name: str  # the latest name they were given, else the email
    roles: tuple[str, ...]
    referred: int
    introduced: int
    declined: int
    declined_not_relevant: int
    average_rating: float | None
    business: int
    value: tuple[Money, ...]
    more: bool | None
    refer_again: str


@dataclass(frozen=True)
class RadarRow:
    """One calendar month (UTC, "YYYY-MM"), or "all" for the whole period."""

    month: str
    introduced: int
    business: int
    business_share: float | None
    requested: int
    not_relevant: int
    not_relevant_share: float | None


@dataclass(frozen=True)
class Figures:
    referrer: str | None
    since: datetime | None
    generated_at: datetime
    funnel: tuple[Count, ...]  # one per FUNNEL_STEPS, in that order
    declines: tuple[Count, ...]  # one per DECLINE_ORDER, in that order
    people: tuple[Person, ...]  # most referred first, then by email
    value_closed: tuple[Money, ...]  # by currency, "" (no currency) last
    radar: tuple[RadarRow, ...]  # months with data, oldest first
    radar_all: RadarRow  # month == "all"


# --- computation -----------------------------------------------------------------------


def _month(moment: datetime) -> str:
    return stored_utc(moment).strftime("%Y-%m")


def _share(part: int, base: int) -> float | None:
    return round(part / base, SHARE_PLACES) if base else None


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(totals: Mapping[str, Decimal]) -> tuple[Money, ...]:
    # "" last: an amount nobody put a currency on is the least telling line.
    order = sorted(totals, key=lambda currency: (currency == "", currency))
    return tuple(Money(currency, cents(totals[currency])) for currency in order)


def _decline_reason(party: PartyRecord) -> str:
    if party.decline_reason is None:
        return "unspecified"
    # A reason this report does not know yet is still a reason, not a missing one.
    known = party.decline_reason in _REASONS
    return party.decline_reason if known else DeclineReason.OTHER


def _not_relevant(party: PartyRecord) -> bool:
    return party.decline_reason == DeclineReason.NOT_RELEVANT


def refer_again(
    *, business: int, declined_not_relevant: int, more: bool | None, average_rating: float | None
) -> str:
    """Whether to refer this person again: "yes", "no" or "unknown", first rule that holds.

    1. "no"  if their latest answer to "would you welcome more like this?" was no
             (their own wish beats anything we infer);
    2. "yes" if at least one of their introductions led to business;
    3. "no"  if they ever declined an introduction as not relevant;
    4. "yes" if they said they would welcome more and their average rating is 4 or more;
    5. otherwise "unknown".
    """
    if more is False:
        return "no"
    if business > 0:
        return "yes"
    if declined_not_relevant > 0:
        return "no"
    if more is True and average_rating is not None and average_rating >= 4:
        return "yes"
    return "unknown"


@dataclass
class _Tally:
    """A person's figures while they are being added up."""

    email: str
    name: str = ""
    named_at: datetime | None = None
    roles: set[str] = field(default_factory=set)
    referred: int = 0
    introduced: int = 0
    declined: int = 0
    declined_not_relevant: int = 0
    ratings: list[int] = field(default_factory=list)
    business: int = 0
    value: dict[str, Decimal] = field(default_factory=dict)
    more: bool | None = None
    more_at: tuple[datetime, int, int] | None = None


def _tally_party(
    tally: _Tally, referral: ReferralRecord, party: PartyRecord, surveys: Sequence[SurveyRecord]
) -> None:
    created = stored_utc(referral.created_at)
    if party.name and (tally.named_at is None or created >= tally.named_at):
        tally.name, tally.named_at = party.name, created
    tally.roles.add(party.role)
    tally.referred += 1
    if referral.introduced_at is not None:
        tally.introduced += 1
    if party.answer == Answer.NO:
        tally.declined += 1
        if _not_relevant(party):
            tally.declined_not_relevant += 1
    mine = [s for s in surveys if s.party_id == party.id]
    outcome = answers.final(mine)
    if outcome is not None:
        if outcome.rating is not None:
            tally.ratings.append(outcome.rating)
        if outcome.business == Business.YES:
            tally.business += 1
        if outcome.amount is not None:
            currency = answers.currency(outcome)
            tally.value[currency] = tally.value.get(currency, Decimal(0)) + outcome.amount
    # "More like this?" is about the person, not the referral: their latest answer anywhere.
    for survey in mine:
        if survey.state != SurveyState.ANSWERED or survey.more is None:
            continue
        at = (stored_utc(survey.answered_at or survey.due_at), survey.round, survey.id)
        if tally.more_at is None or at > tally.more_at:
            tally.more, tally.more_at = survey.more, at


def _role_rank(role: str) -> tuple[int, str]:
    return (ROLES.index(role) if role in ROLES else len(ROLES), role)


def _person(tally: _Tally) -> Person:
    ratings = tally.ratings
    average = round(sum(ratings) / len(ratings), RATING_PLACES) if ratings else None
    return Person(
        email=tally.email,
        name=tally.name or tally.email,
        roles=tuple(sorted(tally.roles, key=_role_rank)),
        referred=tally.referred,
        introduced=tally.introduced,
        declined=tally.declined,
        declined_not_relevant=tally.declined_not_relevant,
        average_rating=average,
        business=tally.business,
        value=_money(tally.value),
        more=tally.more,
        refer_again=refer_again(
            business=tally.business,
            declined_not_relevant=tally.declined_not_relevant,
            more=tally.more,
            average_rating=average,
        ),
    )


def _reached(referral: ReferralRecord, outcomes: Mapping[int, SurveyRecord]) -> int:
    """How many funnel steps this referral reached (1 = requested only).

    A referral counts at a step only if it also reached every step before it, so the funnel
    never widens, even on records an operator has patched by hand.
    """
    parties = referral.parties
    mine = [outcomes[p.id] for p in parties if p.id in outcomes]
    checks = (
        True,
        referral.state != State.RECEIVED,
        len(parties) >= 2 and all(p.answer == Answer.YES for p in parties),
        referral.introduced_at is not None,
        bool(mine),
        any(outcome.business == Business.YES for outcome in mine),
    )
    reached = 0
    for passed in checks:
        if not passed:
            break
        reached += 1
    return reached


def _radar_row(month: str, counts: Mapping[str, int]) -> RadarRow:
    return RadarRow(
        month=month,
        introduced=counts["introduced"],
        business=counts["business"],
        business_share=_share(counts["business"], counts["introduced"]),
        requested=counts["requested"],
        not_relevant=counts["not_relevant"],
        not_relevant_share=_share(counts["not_relevant"], counts["requested"]),
    )


def compute(
    referrals: Sequence[ReferralRecord],
    surveys: Mapping[int, Sequence[SurveyRecord]],
    *,
    referrer: str | None,
    since: datetime | None,
    now: datetime,
) -> Figures:
    """The figures over `referrals`, with `surveys` by referral id.

    The caller selects the period: `since` is only recorded in the header. `referrer`, when
    given, also drops any referral of another referrer (compared case-blind), so a mistake
    upstream cannot put other referrers' people in someone's report.
    """
    if referrer is not None:
        wanted = referrer.strip().lower()
        referrals = [r for r in referrals if r.referrer_email.strip().lower() == wanted]

    funnel = [0] * len(FUNNEL_STEPS)
    declines: dict[str, int] = dict.fromkeys(DECLINE_ORDER, 0)
    tallies: dict[str, _Tally] = {}
    value: dict[str, Decimal] = defaultdict(Decimal)
    empty = {"introduced": 0, "business": 0, "requested": 0, "not_relevant": 0}
    months: dict[str, dict[str, int]] = defaultdict(lambda: dict(empty))
    overall = dict(empty)

    for referral in referrals:
        rounds = tuple(surveys.get(referral.id, ()))
        outcomes = answers.finals(rounds)
        reached = _reached(referral, outcomes)
        for step in range(reached):
            funnel[step] += 1
        led_to_business = reached == len(FUNNEL_STEPS)

        for party in referral.parties:
            if party.answer == Answer.NO:
                declines[_decline_reason(party)] += 1
            key = party.email.strip().lower()
            tally = tallies.setdefault(key, _Tally(key))
            _tally_party(tally, referral, party, rounds)
        # One deal per referral, however many of its parties reported it.
        closed = answers.credited(referral.parties, outcomes)
        if closed is not None and closed.amount is not None:
            value[answers.currency(closed)] += closed.amount

        created = months[_month(referral.created_at)]
        created["requested"] += 1
        overall["requested"] += 1
        if any(_not_relevant(p) for p in referral.parties):
            created["not_relevant"] += 1
            overall["not_relevant"] += 1
        if referral.introduced_at is not None:
            introduced = months[_month(referral.introduced_at)]
            introduced["introduced"] += 1
            overall["introduced"] += 1
            if led_to_business:
                introduced["business"] += 1
                overall["business"] += 1

    people = sorted((_person(t) for t in tallies.values()), key=lambda p: (-p.referred, p.email))
    return Figures(
        referrer=referrer,
        since=since,
        generated_at=now,
        funnel=tuple(Count(step, n) for step, n in zip(FUNNEL_STEPS, funnel, strict=True)),
        declines=tuple(Count(reason, declines[reason]) for reason in DECLINE_ORDER),
        people=tuple(people),
        value_closed=_money(value),
        radar=tuple(_radar_row(month, months[month]) for month in sorted(months)),
        radar_all=_radar_row("all", overall),
    )
