"""Pure: what a party answered across their survey rounds, round by round and in the end.

A "not yet" is asked again, so one party may answer several rounds. The summary shows every
round; the summary and the report count only the final answer, so a value is credited once;
and of a referral's two parties only one answer's value, as both report the same deal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from service.clock import stored_utc
from service.model import Role, SurveyState
from store.records import PartyRecord, SurveyRecord


def _order(survey: SurveyRecord) -> tuple[int, datetime, int]:
    return (survey.round, stored_utc(survey.answered_at or survey.due_at), survey.id)


def answered_rounds(surveys: Iterable[SurveyRecord]) -> list[SurveyRecord]:
    """The answered rounds, oldest first."""
    return sorted((s for s in surveys if s.state == SurveyState.ANSWERED), key=_order)


def asked_rounds(surveys: Iterable[SurveyRecord]) -> list[SurveyRecord]:
    """The rounds that reached the party (answered or not), oldest first; a round that was
    never sent (skipped, or not due yet) asked them nothing."""
    return sorted(
        (s for s in surveys if s.sent_at is not None or s.state == SurveyState.ANSWERED),
        key=_order,
    )


def final(surveys: Iterable[SurveyRecord]) -> SurveyRecord | None:
    """One party's final answer: the last round they answered, whole; None when they answered
    none. A later answer replaces an earlier one, so a value is credited once."""
    rounds = answered_rounds(surveys)
    return rounds[-1] if rounds else None


def finals(surveys: Iterable[SurveyRecord]) -> dict[int, SurveyRecord]:
    """Each answering party's final answer, by party id."""
    by_party: dict[int, list[SurveyRecord]] = {}
    for survey in surveys:
        by_party.setdefault(survey.party_id, []).append(survey)
    found = {party: final(rounds) for party, rounds in by_party.items()}
    return {party: answer for party, answer in found.items() if answer is not None}


def currency(survey: SurveyRecord) -> str:
    """The currency as the figures group it: "" when the party named none."""
    return (survey.currency or "").strip().upper()


# Whose value counts when both name one: the provider sold it and knows what was invoiced.
_CREDIT_ORDER = (Role.PROVIDER, Role.PROSPECT)


def credited(
    parties: Iterable[PartyRecord], outcomes: Mapping[int, SurveyRecord]
) -> SurveyRecord | None:
    """The final answer whose value the referral is credited with, or None if nobody named one.

    Both parties report the same deal, the provider what they earned and the prospect what
    they paid, so a referral closes one value, never their sum: the provider's when they
    named one, else the prospect's. One answer, not the larger of the two, because the two
    may be in different currencies and there is no rate to compare them by.
    """
    named = {
        party.role: outcomes[party.id]
        for party in parties
        if party.id in outcomes and outcomes[party.id].amount is not None
    }
    return next((named[role] for role in _CREDIT_ORDER if role in named), None)
