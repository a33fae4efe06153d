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
from service.reading.limits import header_block
from service.reading.routing import Route, route
from service.settings import Settings
from store import queries, referrers
from store.db import DatabaseUnavailable, is_full, is_unavailable
from store.records import NewInbound

_HEADERS = BytesHeaderParser(policy=compat32)
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


@dataclass(frozen=True)
class Received:
    inbound_id: int | None
    duplicate: bool
    message_id: str | None


def headers_of(raw: bytes) -> Message:
    """Only the header block, with the fast compat32 parser: all the SMTP answer needs.

    The parser is given the header block alone: given the whole message it reads the body
    too, line by line, to keep it as the payload nobody here reads (on the event loop, for
    the SMTP edge: milliseconds for a message with a large attachment).
    """
    block = header_block(raw, len(raw))
    return _HEADERS.parsebytes(raw if block is None else block)


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


def _sender_refusal(
    envelope_from: str, headers: Message, settings: Settings, stored: set[str] | None = None
) -> str | None:
    """The sender and headers' part of admission: the same for every recipient. `stored`:
    the store's allowed referrers among this message's candidates, when already asked."""
    refusal = verdict(envelope_from, headers, settings, stored).refusal
    if refusal and envelope_from and queries.answers_our_mail(referenced_ids(headers)):
        return None
    return refusal


def verdict(
    envelope_from: str, headers: Message, settings: Settings, stored: set[str] | None = None
) -> Verdict:
    """Who may refer, by the configuration and the store together: the one judgement that
    SMTP, `submit` and intake all make, so a referrer added in the store counts everywhere
    at once. Asks the store only about addresses the configuration does not allow, and not
    at all when given what it holds of them (`stored`)."""
    asked = candidates(envelope_from, headers, settings.security)
    if stored is None:
        stored = referrers.allowed_among(asked) if asked else set()
    return judge(envelope_from, headers, settings.security, stored.intersection(asked))


def may_refer(envelope_from: str, settings: Settings) -> bool:
    """Before any header is known (at RCPT): may this envelope sender send requests?"""
    if may_send(envelope_from, settings.security.allowed_referrers):
        return True
    return bool(referrers.allowed_among([normalize(envelope_from)]))


@dataclass(frozen=True)
class Offered:
    """A message the SMTP or LMTP dialogue waits to answer, its header block already read."""

    raw: bytes
    envelope_from: str
    recipients: tuple[str, ...]
    headers: Message
    # LMTP: each recipient has its own fate. SMTP: one for the message, refused only when
    # every recipient is one that must come from a referrer.
    each: bool = False


@dataclass(frozen=True)
class Fate:
    """What the dialogue answers: a refusal per recipient (None: accepted), and the stored
    message when any recipient was accepted."""

    refusals: tuple[str | None, ...]
    received: Received | None


def admit_and_receive_together(
    offered: Sequence[Offered], settings: Settings, now: datetime
) -> list[Fate | Exception]:
    """The SMTP edge's one trip to the store for several messages: refuse, or store durably.

    The store is asked once for the whole group which of its senders may refer, and every
    accepted message is written in one transaction: one commit (one fsync) makes all their
    250s true. The same message twice, in the group or already stored, is kept once. When
    the group fails for something one message brought (not a full or absent store), each is
    written alone, so one bad message fails only itself; each fate is then its own, an
    exception where its write failed.
    """
    refusals = _refusals(offered, settings)
    fates: list[Fate | Exception] = [Fate(r, None) for r in refusals]
    wanted = [
        (i, _new_inbound(o, r, now))
        for i, (o, r) in enumerate(zip(offered, refusals, strict=True))
        if None in r
    ]
    if not wanted:
        return fates
    try:
        stored: list[int | Exception | None] = list(
            queries.store_inbound_together([m for _, m in wanted])
        )
    except Exception as exc:
        absent = is_unavailable(exc) or isinstance(exc, DatabaseUnavailable)
        if len(wanted) == 1 or is_full(exc) or absent:
            raise
        stored = [_alone(m) for _, m in wanted]
    for (i, message), inbound_id in zip(wanted, stored, strict=True):
        if isinstance(inbound_id, Exception):
            fates[i] = inbound_id
        else:
            received = Received(inbound_id, inbound_id is None, message.message_id)
            fates[i] = Fate(refusals[i], received)
    return fates


def _refusals(offered: Sequence[Offered], settings: Settings) -> list[tuple[str | None, ...]]:
    """Each message's refusal per recipient, asking the store once which senders may refer:
    in the same moment each message would have asked it alone, so a referrer added with
    `referrers add` counts for every message that arrives after the command returned."""
    judged = [[_judged(r, settings) for r in o.recipients] for o in offered]
    asked = {
        address
        for o, j in zip(offered, judged, strict=True)
        if any(j)
        for address in candidates(o.envelope_from, o.headers, settings.security)
    }
    stored = referrers.allowed_among(asked) if asked else set()
    refusals = []
    for o, j in zip(offered, judged, strict=True):
        needed = any(j) if o.each else all(j)
        refusal = _sender_refusal(o.envelope_from, o.headers, settings, stored) if needed else None
        if o.each:
            refusals.append(tuple(refusal if each else None for each in j))
        else:
            refusals.append((refusal,) * len(o.recipients))
    return refusals


def _new_inbound(offer: Offered, refusals: tuple[str | None, ...], now: datetime) -> NewInbound:
    # The accepted recipients share one stored row: intake reads the message once.
    pairs = zip(offer.recipients, refusals, strict=True)
    accepted = tuple(r for r, refusal in pairs if not refusal)
    return new_inbound(offer.raw, offer.envelope_from, accepted, Channel.SMTP, now, offer.headers)


def new_inbound(
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    via: Channel,
    now: datetime,
    headers: Message,
) -> NewInbound:
    """The row a message is stored as, keyed so that the same message is kept once."""
    message_id = message_id_of(headers)
    return NewInbound(
        dedupe_key=dedupe_key(message_id, raw),
        message_id=message_id,
        envelope_from=envelope_from,
        recipients=tuple(recipients),
        via=via,
        raw=raw,
        received_at=now,
    )


def _alone(message: NewInbound) -> int | Exception | None:
    try:
        return queries.store_inbound(message)
    except Exception as exc:
        return exc


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
    message = new_inbound(raw, envelope_from, recipients, via, now, headers)
    inbound_id = queries.store_inbound(message)
    return Received(inbound_id, inbound_id is None, message.message_id)
