"""Consent evidence: the question a party answered, the text they were shown, and its hash."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import peewee

from service.model import QUESTION_PURPOSES
from store.compiled import CompiledInsert, CompiledRead, CompiledUpdate
from store.models import ConsentText, OutboxMail, Party


@dataclass(frozen=True)
class AskedMail:
    message_id: str
    raw: bytes


@dataclass(frozen=True)
class Evidence:
    role: str
    answer: str | None
    answered_at: datetime | None
    channel: str | None
    decline_reason: str | None
    question_message_id: str | None
    answer_message_id: str | None
    language: str | None
    consent_hash: str | None
    text: str | None


def question_asked(party_id: int, named: Sequence[str] = ()) -> AskedMail | None:
    """The question mail a party answers: one of `named` (a reply's In-Reply-To and
    References) when it is theirs, else the latest one they were sent."""
    if named:
        row = (
            OutboxMail.select(OutboxMail.message_id, OutboxMail.raw)
            .where(
                (OutboxMail.party == party_id)
                & OutboxMail.purpose.in_(QUESTION_PURPOSES)
                & OutboxMail.message_id.in_(list(named))
            )
            .first()
        )
        if row is not None:
            return AskedMail(row.message_id, bytes(row.raw))
    row = _LATEST_QUESTION.first_record(party_id)
    return None if row is None else AskedMail(row.message_id, bytes(row.raw))


_LATEST_QUESTION = CompiledRead(
    lambda party_id: (
        OutboxMail.select(OutboxMail.message_id, OutboxMail.raw)
        .where((OutboxMail.party == party_id) & OutboxMail.purpose.in_(QUESTION_PURPOSES))
        .order_by(OutboxMail.id.desc())
        .limit(1)
    ),
    -7_000_001,
)


def keep_text(text_hash: str, text: str, now: datetime) -> None:
    """Keep a shown text under its hash; the same text shown to many is kept once."""
    _KEEP_TEXT.run([{"text_hash": text_hash, "text": text, "created_at": now}])


_KEEP_TEXT = CompiledInsert(ConsentText, or_ignore=True)
_EVIDENCE = CompiledUpdate(
    Party,
    (Party.question_message_id, Party.answer_message_id, Party.answer_language, Party.consent_hash),
    where=(Party.id,),
)


def record_evidence(
    party_id: int,
    question_message_id: str | None,
    answer_message_id: str | None,
    language: str,
    consent_hash: str | None,
) -> None:
    _EVIDENCE.run(question_message_id, answer_message_id, language, consent_hash, party_id)


def evidence_of(referral_id: int) -> list[Evidence]:
    """Each party's answer with what they were shown, provider first."""
    rows = (
        Party.select(Party, ConsentText.text)
        .join(
            ConsentText,
            on=ConsentText.text_hash == Party.consent_hash,
            join_type=peewee.JOIN.LEFT_OUTER,
        )
        .where(Party.referral == referral_id)
        .order_by(Party.role.desc())
        .objects()
    )
    return [
        Evidence(
            role=r.role,
            answer=r.answer,
            answered_at=r.answered_at,
            channel=r.answer_channel,
            decline_reason=r.decline_reason,
            question_message_id=r.question_message_id,
            answer_message_id=r.answer_message_id,
            language=r.answer_language,
            consent_hash=r.consent_hash,
            text=r.text,
        )
        for r in rows
    ]
