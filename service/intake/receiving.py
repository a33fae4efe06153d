"""Receive raw mail durably: what the SMTP answer (and `submit`) needs, and nothing more."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from service.model import Channel
from service.reading.addresses import normalize
from service.reading.authorization import Verdict, candidates, judge, may_send
from service.reading.routing import Route, route
from service.settings import Settings
from store import queries, referrers
from store.records import NewInbound

_HEADERS = BytesHeaderParser(policy=compat32)
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


@dataclass(frozen=True)
class Received:
    inbound_id: int | None
    duplicate: bool
    message_id: str | None


def headers_of(raw: bytes) -> Message:
    """Only the header block, with the fast compat32 parser: all the SMTP answer needs."""
    return _HEADERS.parsebytes(raw)


def message_id_of(headers: Message) -> str | None:
    value = headers.get("Message-ID")
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value or None


def dedupe_key(message_id: str | None, raw: bytes) -> str:
    """The same Message-ID is the same message; without one, the same bytes are."""
    basis = b"mid:" + message_id.lower().encode() if message_id else b"raw:" + raw
    return hashlib.sha256(basis).hexdigest()


def admission(
    envelope_from: str, recipients: Sequence[str], headers: Message, settings: Settings
) -> str | None:
    """Why the SMTP dialogue must refuse this message, or None to store it.

    Answers and bounces reach a tagged address and may come from anyone. A request must come
    from an allowed referrer, unless it is an answer to one of our questions whose client
    dropped the tag (it still names our mail in In-Reply-To or References): that asks the
    store, so call it off the event loop.
    """
    if not all(_judged(r, settings) for r in recipients):
        return None
    return _sender_refusal(envelope_from, headers, settings)


def _judged(recipient: str, settings: Settings) -> bool:
    """Whether mail to this recipient must come from someone who may refer: anything but an
    answer, a bounce or another tagged address of ours."""
    destination = route(recipient, settings)
    return destination is None or destination.route is Route.REQUEST


def _sender_refusal(envelope_from: str, headers: Message, settings: Settings) -> str | None:
    """The sender and headers' part of admission: the same for every recipient."""
    refusal = verdict(envelope_from, headers, settings).refusal
    if refusal and envelope_from and queries.answers_our_mail(referenced_ids(headers)):
        return None
    return refusal


def verdict(envelope_from: str, headers: Message, settings: Settings) -> Verdict:
    """Who may refer, by the configuration and the store together: the one judgement that
    SMTP, `submit` and intake all make, so a referrer added in the store counts everywhere
    at once. Asks the store only about addresses the configuration does not allow."""
    asked = candidates(envelope_from, headers, settings.security)
    stored = referrers.allowed_among(asked) if asked else set()
    return judge(envelope_from, headers, settings.security, stored)


def may_refer(envelope_from: str, settings: Settings) -> bool:
    """Before any header is known (at RCPT): may this envelope sender send requests?"""
    if may_send(envelope_from, settings.security.allowed_referrers):
        return True
    return bool(referrers.allowed_among([normalize(envelope_from)]))


def admit_and_receive(
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    settings: Settings,
    now: datetime,
    headers: Message,
) -> tuple[str | None, Received | None]:
    """The SMTP edge's one trip to the store: refuse, or store durably."""
    refusal = admission(envelope_from, recipients, headers, settings)
    if refusal:
        return refusal, None
    return None, receive(raw, envelope_from, recipients, Channel.SMTP, now, headers)


def admit_and_receive_each(
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    settings: Settings,
    now: datetime,
    headers: Message,
) -> tuple[list[str | None], Received | None]:
    """LMTP's one trip to the store: each recipient's refusal, or None for those stored.

    The accepted recipients share one stored row, written before any of their replies: one
    commit makes every 250 true at once, and intake processes the message once, not once per
    recipient. None as the second value: no recipient was accepted, nothing was stored.
    """
    judged = [_judged(r, settings) for r in recipients]
    # Asked once for the message, not once per recipient: it depends on the sender alone.
    refusal = _sender_refusal(envelope_from, headers, settings) if any(judged) else None
    refusals = [refusal if j else None for j in judged]
    accepted = [r for r, refusal in zip(recipients, refusals, strict=True) if refusal is None]
    if not accepted:
        return refusals, None
    return refusals, receive(raw, envelope_from, accepted, Channel.SMTP, now, headers)


def referenced_ids(headers: Message) -> list[str]:
    """The Message-IDs a reply names, nearest first: In-Reply-To, then References backwards."""
    found: list[str] = []
    for name in ("In-Reply-To", "References"):
        ids = _MESSAGE_ID.findall(" ".join(str(v) for v in headers.get_all(name) or []))
        found.extend(ids if name == "In-Reply-To" else reversed(ids))
    return list(dict.fromkeys(found))[:20]


def receive(
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    via: Channel,
    now: datetime,
    headers: Message | None = None,
) -> Received:
    """Store the raw message (a committed write); only then may anyone say it was accepted."""
    headers = headers if headers is not None else headers_of(raw)
    message_id = message_id_of(headers)
    inbound_id = queries.store_inbound(
        NewInbound(
            dedupe_key=dedupe_key(message_id, raw),
            message_id=message_id,
            envelope_from=envelope_from,
            recipients=tuple(recipients),
            via=via,
            raw=raw,
            received_at=now,
        )
    )
    return Received(inbound_id, inbound_id is None, message_id)
