"""What a party was shown when they answered, kept so that consent can be demonstrated."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from service.reading.sent_text import sent_text
from store import consent
from store.records import PartyRecord


@dataclass(frozen=True)
class Shown:
    """How an answer came: the Message-IDs a reply names and its own, or the page's text."""

    referenced: tuple[str, ...] = ()
    answer_message_id: str | None = None
    page_text: str | None = None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Seen:
    """What `gather` found a party was shown: the question mail, and the text with its hash."""

    question_message_id: str | None
    text: str | None
    digest: str | None


def gather(party: PartyRecord, shown: Shown) -> Seen:
    """Reads only, so it may run before the answer's transaction: the question a party
    answered and the text they consented to.

    An answer by link was given on the page, so the page's text is what they consented to;
    an answer by mail was given to the question mail, so its text is.
    """
    asked = consent.question_asked(party.id, shown.referenced)
    text = shown.page_text
    if text is None and asked is not None:
        text = sent_text(asked.raw)
    digest = text_hash(text) if text is not None else None
    return Seen(asked.message_id if asked else None, text, digest)


def keep(party: PartyRecord, shown: Shown, seen: Seen, now: datetime) -> None:
    """Within the answer's transaction: the question, the text and its hash beside the answer."""
    if seen.text is not None and seen.digest is not None:
        consent.keep_text(seen.digest, seen.text, now)
    consent.record_evidence(
        party.id, seen.question_message_id, shown.answer_message_id, party.language, seen.digest
    )
