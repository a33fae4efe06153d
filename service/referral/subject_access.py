"""Access (Art. 15): everything held about one person, and the consent evidence of a referral.

A person sees their own data only: of a referral they were asked about, their own party row,
answer and surveys; never the other party's answers or what the other said was closed. Until
the introduction a party does not learn who the other is, so their export shows what the
referrer wrote as their consent question did, the other taken out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from service.reading.sent_text import sent_text
from service.writing.letters import before_consent
from store import consent, personal, queries, suppressions
from store.records import PartyRecord, ReferralRecord, SurveyRecord

SCHEMA = "care-intro/export/1"

# Mails to a referrer that report what the parties answered, closed business included: that
# is the parties' data, so an export lists these mails but withholds their text.
OTHERS_ANSWERS = frozenset({"referrer_evaluated", "report", "digest"})


def export(address: str, now: datetime) -> dict[str, Any]:
    """The JSON-ready record of what is held about `address`."""
    address = address.strip().lower()
    referrals = []
    for referral_id in personal.referral_ids_naming(address):
        referral = queries.referral_by_id(referral_id)
        if referral is not None:
            referrals.extend(_roles_of(referral, address))
    return {
        "schema": SCHEMA,
        "address": address,
        "exported_at": _when(now),
        "suppressed": bool(suppressions.suppressed([address])),
        "referrals": referrals,
        "mails": [
            {
                "message_id": mail.message_id,
                "purpose": mail.purpose,
                "created_at": _when(mail.created_at),
                "sent_at": _when(mail.sent_at),
                "state": mail.state,
                "text": None if mail.purpose in OTHERS_ANSWERS else sent_text(mail.raw),
            }
            for mail in personal.mails_to(address)
        ],
    }


def _roles_of(referral: ReferralRecord, address: str) -> list[dict[str, Any]]:
    """One entry per role the person had in the referral (referring someone to themselves
    would make two)."""
    common = {
        "reference": referral.ref,
        "state": referral.state,
        "referred_by": {"name": referral.referrer_name, "address": referral.referrer_email},
        "created_at": _when(referral.created_at),
        "updated_at": _when(referral.updated_at),
        "introduced_at": _when(referral.introduced_at),
    }
    entries = []
    if referral.referrer_email.strip().lower() == address:
        # The referrer wrote the need: they see it whole.
        entries.append({**common, "role": "referrer", "need": referral.need})
    evidence = {e.role: e for e in consent.evidence_of(referral.id)}
    surveys = queries.surveys_of(referral.id)
    for party in referral.parties:
        if party.email.strip().lower() != address:
            continue
        shown = _as_shown(referral, party)
        entries.append(
            {
                **common,
                "role": party.role,
                "need": shown(referral.need),
                "budget": shown(referral.budget),
                "you": _person(party),
                "answer": _answer(party, evidence.get(party.role)),
                "surveys": [_survey(s) for s in surveys if s.party_id == party.id],
            }
        )
    return entries


def _as_shown(referral: ReferralRecord, party: PartyRecord) -> Callable[[str], str]:
    """What the referrer wrote, as `party` may read it: whole once they were introduced (the
    introduction named the other), else as their consent question showed it."""
    if referral.introduced_at is not None:
        return lambda text: text
    return before_consent(referral, party)


def _person(party: PartyRecord) -> dict[str, Any]:
    return {
        "name": party.name,
        "address": party.email,
        "phone": party.phone,
        "prefers": party.prefers,
        "best_time": party.best_time,
        "booking": party.booking,
        "language": party.language,
        "timezone": party.timezone,
    }


def _answer(party: PartyRecord, evidence: consent.Evidence | None) -> dict[str, Any] | None:
    if party.answer is None:
        return None
    return {
        "answer": party.answer,
        "answered_at": _when(party.answered_at),
        "channel": party.answer_channel,
        "decline_reason": party.decline_reason,
        "decline_text": party.decline_text,
        "evidence": None if evidence is None else evidence_entry(evidence),
    }


def evidence_entry(evidence: consent.Evidence) -> dict[str, Any]:
    return {
        "question_message_id": evidence.question_message_id,
        "answer_message_id": evidence.answer_message_id,
        "language": evidence.language,
        "consent_sha256": evidence.consent_hash,
        "consent_text": evidence.text,
    }


def _survey(survey: SurveyRecord) -> dict[str, Any]:
    return {
        "round": survey.round,
        "state": survey.state,
        "sent_at": _when(survey.sent_at),
        "answered_at": _when(survey.answered_at),
        "channel": survey.channel,
        "rating": survey.rating,
        "business": survey.business,
        "amount": None if survey.amount is None else str(survey.amount),
        "currency": survey.currency,
        "more": survey.more,
        "comment": survey.comment,
    }


def evidence(ref: str) -> list[consent.Evidence] | None:
    """Each party's answer and what they were shown, or None for no such referral."""
    referral = queries.referral_by_ref(ref)
    return None if referral is None else consent.evidence_of(referral.id)


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
