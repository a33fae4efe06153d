"""Receive raw mail durably, then, behind the SMTP answer, turn it into what it asks for."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from service import commands, conversation, letters, quota
from service.addresses import Mailbox
from service.authorization import judge
from service.bodies import header_text
from service.checks import care_gate
from service.context import Context
from service.disposition import Disposition
from service.errors import Unreadable
from service.model import Channel, InboundState
from service.parsing import parse_message, parse_request
from service.robots import automatic_reason
from service.routing import Route, route
from service.settings import Settings
from service.workflow import open_referral, refuse_request
from store import queries, suppressions
from store.db import transaction
from store.records import InboundRecord, NewInbound

log = logging.getLogger(__name__)

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
    destinations = [route(r, settings) for r in recipients]
    if any(d is not None and d.route is not Route.REQUEST for d in destinations):
        return None
    refusal = judge(envelope_from, headers, settings.security).refusal
    if refusal and envelope_from and queries.answers_our_mail(referenced_ids(headers)):
        return None
    return refusal


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


def process_pending(ctx: Context, now: datetime, limit: int = 200) -> int:
    """Work through stored, unprocessed messages; each one in its own transaction."""
    done = 0
    while done < limit:
        with transaction():
            record = queries.lock_next_inbound()
            if record is None:
                break
            disposition = _process_safely(ctx, record, now)
            queries.finish_inbound(record.id, disposition.state, disposition.note, now)
        done += 1
    return done


def _process_safely(ctx: Context, record: InboundRecord, now: datetime) -> Disposition:
    try:
        with transaction():  # a savepoint: a failure undoes this message's work, not the claim
            return process(ctx, record, now)
    except Exception as exc:
        log.exception("inbound %s %s could not be processed", record.id, record.message_id)
        _tell_referrer_safely(ctx, record, now)
        return Disposition(
            InboundState.QUARANTINED, f"internal error: {type(exc).__name__}: {exc}"[:500]
        )


def process(ctx: Context, record: InboundRecord, now: datetime) -> Disposition:
    """The stages, in order; the first that decides ends the run.

    What the message is comes from where it was sent: a VERP address or the null sender is
    a bounce, a question's address (or a reply naming our question) an answer, and the
    referral address a request.
    """
    destinations = [d for d in (route(r, ctx.settings) for r in record.recipients) if d]
    message = parse_message(record.raw)
    bounce = next((d for d in destinations if d.route is Route.BOUNCE), None)
    if bounce is not None or record.envelope_from == "":
        return conversation.process_bounce(ctx, record, message, bounce.key if bounce else "", now)
    reply = next((d for d in destinations if d.route is Route.REPLY), None)
    if reply is not None:
        ask_key = queries.ask_key_for_reply(reply.key)
        survey_key = None if ask_key else queries.survey_key_for_reply(reply.key)
        if ask_key is None and survey_key is None:
            return Disposition(InboundState.IGNORED, "answer to a question we do not have")
    else:
        named = referenced_ids(message)
        ask_key = queries.ask_key_for_message_ids(named)
        survey_key = None if ask_key else queries.survey_key_for_message_ids(named)
    if ask_key is not None:
        return conversation.process_reply(ctx, record, message, ask_key, now)
    if survey_key is not None:
        return conversation.process_survey_reply(ctx, record, message, survey_key, now)
    robot = automatic_reason(message, record.envelope_from)
    if robot:
        return Disposition(InboundState.IGNORED, f"automatic message: {robot}")
    verdict = judge(record.envelope_from, message, ctx.settings.security)
    if verdict.referrer is None:
        return Disposition(InboundState.IGNORED, verdict.refusal or "not a request")
    referrer = verdict.referrer
    language = commands.report_language(message)
    if language is not None:
        sent = commands.send_report(ctx, referrer, language, message_id_of(message), now)
        return Disposition(
            InboundState.PROCESSED, "report sent" if sent else "report not sent: daily limit"
        )
    try:
        draft = parse_request(message, referrer.address)
    except Unreadable as exc:
        tell_unreadable(ctx, record.id, referrer, message, now)
        return Disposition(InboundState.QUARANTINED, str(exc))
    named = [p.mailbox.address for p in (draft.provider, draft.prospect) if p.mailbox]
    findings = care_gate(draft, referrer.address, frozenset(suppressions.suppressed(named)))
    if findings:
        refuse_request(ctx, referrer, draft, findings, now)
        return Disposition(
            InboundState.REJECTED, ", ".join(sorted({f.problem.value for f in findings}))
        )
    channel = Channel.CLI if record.via == Channel.CLI else Channel.SMTP
    referral = open_referral(ctx, draft, referrer, record.id, channel, now)
    return Disposition(InboundState.PROCESSED, referral.ref)


def tell_unreadable(
    ctx: Context, inbound_id: int, referrer: Mailbox, message: Message, now: datetime
) -> None:
    """One short note to the referrer: we have their message, but could not read it.

    Once per message: an operator's retry that fails again does not write to them again.
    """
    subject = header_text(message, "Subject")
    with transaction():
        if not quota.may_write(ctx.settings, referrer.address, now):
            return
        if queries.mark_referrer_told(inbound_id):
            note = letters.request_unreadable(ctx, referrer, subject, message_id_of(message), now)
            queries.enqueue([note], now)


def _tell_referrer_safely(ctx: Context, record: InboundRecord, now: datetime) -> None:
    """After a failure, still tell an allowed referrer; if even that fails, the log has it."""
    try:
        headers = headers_of(record.raw)
        referrer = judge(record.envelope_from, headers, ctx.settings.security).referrer
        if referrer is not None and not automatic_reason(headers, record.envelope_from):
            tell_unreadable(ctx, record.id, referrer, headers, now)
    except Exception:
        log.exception("could not tell the referrer about inbound %s", record.id)
