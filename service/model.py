"""The vocabulary every layer shares: states, answers, reasons, roles and channels.

Each value is what the store keeps. A StrEnum member equals its value, so a row read back
compares equal to the member it was written as, and no other module spells a state as a
bare string. This module imports nothing of ours, so the store may use it too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.StrEnum):
    """Where a referral stands; `workflow` alone moves it, along its transition table."""

    RECEIVED = "received"  # stored with its parties; its questions not yet asked
    ASKING = "asking"
    INTRODUCED = "introduced"
    EVALUATING = "evaluating"
    EVALUATED = "evaluated"
    DECLINED = "declined"
    EXPIRED = "expired"
    UNDELIVERABLE = "undeliverable"


class Role(enum.StrEnum):
    """Who a party is to the other: the one who helps, and the one who needs help."""

    PROVIDER = "provider"
    PROSPECT = "prospect"


ROLES: tuple[Role, ...] = tuple(Role)


class Answer(enum.StrEnum):
    YES = "yes"
    NO = "no"


class DeclineReason(enum.StrEnum):
    """Why a party said no; "not relevant" is what tells the referrer most (CARE's R)."""

    NOT_RELEVANT = "not_relevant"
    NO_NEED_NOW = "no_need_now"
    NOT_A_FIT = "not_a_fit"
    OTHER = "other"


class Channel(enum.StrEnum):
    """How something reached us, or what did it: an event row's `channel`."""

    SMTP = "smtp"
    LINK = "link"
    REPLY = "reply"
    TICK = "tick"
    CLI = "cli"


class Business(enum.StrEnum):
    """Whether an introduction led to business, as a party answers the survey."""

    YES = "yes"
    NOT_YET = "not_yet"
    NO = "no"


class SurveyState(enum.StrEnum):
    """scheduled -> sent -> answered | expired; skipped when it may not go at all."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    SKIPPED = "skipped"


OPEN_SURVEY_STATES = frozenset({SurveyState.SCHEDULED, SurveyState.SENT})


# The outbox purpose of the introduction: its envelopes name their party (so a failure says
# whom it missed), yet it asks nothing, unlike the other mails that name a party.
INTRODUCTION = "introduction"

# The outbox purposes that ask the consent question: the question itself and its one
# reminder. Only their failure, before the party answered, means the party cannot be reached.
QUESTION_PURPOSES = ("consent_request", "consent_reminder")


class InboundState(enum.StrEnum):
    """What became of a stored message: new until intake has handled it."""

    NEW = "new"
    PROCESSED = "processed"
    IGNORED = "ignored"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Problem(enum.StrEnum):
    """Why a request is not a referral (the CARE gate); the referrer learns each one."""

    NO_NEED = "no_need"
    NEED_TOO_SHORT = "need_too_short"
    MISSING_PARTY = "missing_party"
    INVALID_ADDRESS = "invalid_address"
    SAME_PERSON = "same_person"
    PARTY_IS_REFERRER = "party_is_referrer"
    # An address at the service's own domain: nobody there can answer a question.
    PARTY_IS_SERVICE = "party_is_service"
    # Not CARE's own, but a wish we cannot honour: "Follow up: 15.03.2027" is no delay.
    INVALID_FOLLOW_UP = "invalid_follow_up"


class Suggestion(enum.StrEnum):
    """Details a good referral carries; missing ones make it weaker, not invalid."""

    PREFERRED_CONTACT = "preferred_contact"
    BEST_TIME = "best_time"
    BOOKING = "booking"
    BUDGET = "budget"


@dataclass(frozen=True)
class Finding:
    """One problem of a request, with the party and the words it is about."""

    problem: Problem
    role: Role | None = None
    given: str = ""
