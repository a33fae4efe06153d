"""What a party was shown when they answered, kept so that consent can be demonstrated."""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message

from service.reading.bodies import body_text, part_text
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


def mail_text(raw: bytes) -> str:
    """The plain-text body of a mail we sent, as the person's client shows it.

    Read from a compat32 parse, which builds no header objects: with `email.policy.default`
    the parse cost more than all the rest of recording an answer. The part is the one
    `EmailMessage.get_body` picks; a shape that takes more than a walk through plain
    multiparts to judge (multipart/related) is parsed the full way instead.
    """
    message = email.message_from_bytes(raw)
    part = _body_part(message)
    if part is _UNSURE:
        full = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(full, EmailMessage)
        return body_text(full) or ""
    return part_text(part) if part is not None else ""


_UNSURE = Message()


def _body_part(message: Message) -> Message | None:
    """The first text/plain part that is no attachment, else the first such text/html, in
    the order `get_body(preferencelist=("plain", "html"))` searches; `_UNSURE` for a
    multipart/related, which it searches otherwise."""
    html = None
    for part in _candidates(message):
        if part is _UNSURE:
            return _UNSURE
        if part.get_content_subtype() == "plain":
            return part
        html = html or part
    return html


def _candidates(part: Message) -> Iterator[Message]:
    if part.get_content_disposition() == "attachment":
        return
    maintype = part.get_content_maintype()
    if maintype == "text":
        if part.get_content_subtype() in ("plain", "html"):
            yield part
        return
    if maintype != "multipart" or not part.is_multipart():
        return
    if part.get_content_subtype() == "related":
        yield _UNSURE
        return
    for subpart in part.get_payload():
        yield from _candidates(subpart)


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
        text = mail_text(asked.raw)
    digest = text_hash(text) if text is not None else None
    return Seen(asked.message_id if asked else None, text, digest)


def keep(party: PartyRecord, shown: Shown, seen: Seen, now: datetime) -> None:
    """Within the answer's transaction: the question, the text and its hash beside the answer."""
    if seen.text is not None and seen.digest is not None:
        consent.keep_text(seen.digest, seen.text, now)
    consent.record_evidence(
        party.id, seen.question_message_id, shown.answer_message_id, party.language, seen.digest
    )
