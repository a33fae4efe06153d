"""Plain, frozen records that cross the store boundary, so the service never holds a Model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# An erased person's address, `erased-<party id>@invalid`: nothing can be delivered to
# .invalid (RFC 2606), so a placeholder never reaches anyone. Defined here, beside the
# record that tells by it whether its party was erased.
PLACEHOLDER_DOMAIN = "invalid"
PLACEHOLDER_PREFIX = "erased-"


def is_placeholder(address: str) -> bool:
    """Whether `address` is what erasure left where a person's address was."""
    return address.startswith(PLACEHOLDER_PREFIX) and address.endswith("@" + PLACEHOLDER_DOMAIN)


@dataclass(frozen=True)
class NewInbound:
    dedupe_key: str
    message_id: str | None
    envelope_from: str
    recipients: tuple[str, ...]
    via: str
    raw: bytes
    received_at: datetime


@dataclass(frozen=True)
class InboundRecord:
    id: int
    message_id: str | None
    envelope_from: str
    recipients: tuple[str, ...]
    via: str
    raw: bytes
    received_at: datetime
    state: str
    note: str


@dataclass(frozen=True)
class NewParty:
    role: str
    email: str
    ask_key: str
    language: str
    name: str = ""
    phone: str = ""
    prefers: str = ""
    best_time: str = ""
    booking: str = ""
    reply_key: str | None = None
    timezone: str = ""
    withheld_until: datetime | None = None


@dataclass(frozen=True)
class NewReferral:
    state: str
    referrer_email: str
    referrer_name: str
    need: str
    budget: str
    follow_up_days: float | None
    language: str
    subject: str
    request_message_id: str | None
    inbound_id: int | None
    created_at: datetime
    expires_at: datetime
    parties: tuple[NewParty, ...]
    remind_at: datetime | None = None
    copy_me: bool = False


@dataclass(frozen=True)
class PartyRecord:
    id: int
    role: str
    name: str
    email: str
    phone: str
    prefers: str
    best_time: str
    booking: str
    language: str
    ask_key: str
    answer: str | None
    answered_at: datetime | None
    answer_channel: str | None
    reply_key: str | None = None
    decline_reason: str | None = None
    decline_text: str = ""
    unclear_told: bool = False
    reminded_at: datetime | None = None
    timezone: str = ""
    withheld_until: datetime | None = None

    @property
    def display(self) -> str:
        return self.name or self.email

    @property
    def erased(self) -> bool:
        """Whether this person was forgotten (`forget`, or retention): only a placeholder
        address is left. An open question of theirs was closed as a no by the erasure,
        not by them."""
        return is_placeholder(self.email)


@dataclass(frozen=True)
class ReferralRecord:
    id: int
    ref: str
    state: str
    referrer_email: str
    referrer_name: str
    need: str
    budget: str
    follow_up_days: float | None
    language: str
    subject: str
    request_message_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    introduced_at: datetime | None
    parties: tuple[PartyRecord, ...] = field(default=())
    remind_at: datetime | None = None
    # The request asked for a copy of the introduction ("Copy me: yes").
    copy_me: bool = False

    def party(self, role: str) -> PartyRecord:
        for party in self.parties:
            if party.role == role:
                return party
        raise KeyError(role)

    def party_by_id(self, party_id: int) -> PartyRecord:
        for party in self.parties:
            if party.id == party_id:
                return party
        raise KeyError(party_id)

    def other(self, role: str) -> PartyRecord:
        for party in self.parties:
            if party.role != role:
                return party
        raise KeyError(role)

    @property
    def referrer_display(self) -> str:
        return self.referrer_name or self.referrer_email


@dataclass(frozen=True)
class EventRecord:
    at: datetime
    kind: str
    actor: str
    channel: str
    detail: str


@dataclass(frozen=True)
class OutgoingMail:
    """A finished mail for the outbox: the bytes are final, the envelope is explicit."""

    message_id: str
    purpose: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    referral_id: int | None = None
    party_id: int | None = None  # the party a consent question or reminder asks
    bounce_key: str | None = None  # names this mail in its VERP envelope sender
    survey_id: int | None = None  # the follow-up survey this mail carries


@dataclass(frozen=True)
class OutboxItem:
    id: int
    message_id: str
    purpose: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    attempts: int
    created_at: datetime
    # When the relay first refused this mail for now; None while it never has.
    deferred_since: datetime | None = None


@dataclass(frozen=True)
class SentMail:
    """What a bounce needs to know about the mail it is about."""

    id: int
    purpose: str
    referral_id: int | None
    party_id: int | None
    recipients: tuple[str, ...]
    survey_id: int | None = None


@dataclass(frozen=True)
class FailedMail:
    """A mail the outbox gave up on, with what the relay last said, for whoever waited on it."""

    id: int
    purpose: str
    referral_id: int | None
    party_id: int | None
    survey_id: int | None
    recipients: tuple[str, ...]
    error: str


@dataclass(frozen=True)
class SurveyRecord:
    """One follow-up to one party, and what they answered."""

    id: int
    referral_id: int
    party_id: int
    round: int
    state: str
    survey_key: str
    reply_key: str
    due_at: datetime
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    answered_at: datetime | None = None
    channel: str | None = None
    rating: int | None = None
    business: str | None = None  # "yes", "not_yet", "no"
    amount: Decimal | None = None
    currency: str = ""
    more: bool | None = None
    comment: str = ""


@dataclass(frozen=True)
class ReferrerRecord:
    id: int
    email: str
    key: str
    digest: bool
    digest_slot: datetime | None
