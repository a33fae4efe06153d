"""Behind the SMTP answer: each stored message, in turn, handed to the stage it is for."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import Message

from service.errors import Unreadable
from service.intake import commands, conversation
from service.intake.claims import CLAIMS
from service.intake.disposition import Disposition
from service.intake.receiving import headers_of, message_id_of, referenced_ids, verdict
from service.model import Channel, InboundState
from service.reading.addresses import Mailbox
from service.reading.bodies import header_text
from service.reading.limits import limits_of, message_excess
from service.reading.relay_replies import without_addresses
from service.reading.request import RequestDraft, parse_message, parse_request
from service.reading.robots import automatic_reason
from service.reading.routing import Route, route
from service.referral import quota, withheld
from service.referral.gate import care_gate
from service.referral.workflow import prepare_referral, record_referral, refuse_request
from service.writing import letters
from service.writing.context import Context
from store import queries, suppressions
from store.db import is_unavailable, transaction
from store.records import InboundRecord

log = logging.getLogger(__name__)


# Messages taken per claim: their results are written in one commit, so one fsync serves
# them all, while the write lock is held short enough (a millisecond or so per message)
# that an SMTP insert waiting behind it is not felt. A lease long enough for any batch; a
# run that fails or a process that dies frees its claim sooner (claims.py).
BATCH = 20
LEASE = timedelta(minutes=5)

# What a message becomes, worked out outside any transaction: called inside the short one
# that records it, it writes what it decided and says what became of the message.
Outcome = Callable[[], Disposition]


class _LostClaim(Exception):
    """The claim ran out and another took the message: this run's work on it must not stand."""


def process_pending(ctx: Context, now: datetime, limit: int = 200) -> int:
    """Work through stored, unprocessed messages, a batch per claim.

    Reading, parsing, deciding and rendering happen outside any transaction; the store's
    write lock is taken only to write what was decided: one commit per batch, each
    message's effects in a savepoint of their own.
    """
    done = 0
    while done < limit:
        asked = min(BATCH, limit - done)
        with CLAIMS.new() as claim:
            stale = CLAIMS.stale(queries.inbound_claims(now))
            batch = queries.claim_inbound(now, now + LEASE, asked, claim, stale)
            if not batch:
                break
            outcomes = [(record, _decide_safely(ctx, record, now)) for record in batch]
            finished = _record(ctx, outcomes, claim, now)
        for record, disposition in finished:
            _log_outcome(record, disposition)
        done += len(batch)
        if len(batch) < asked:
            # Nothing else was free when this batch was taken: asking again would cost a
            # write transaction to learn so. What arrived since kicks intake again.
            break
    return done


def _record(
    ctx: Context, outcomes: list[tuple[InboundRecord, Outcome]], claim: str, now: datetime
) -> list[tuple[InboundRecord, Disposition]]:
    """Write each message's outcome and its new state, all in one commit.

    Not synced (`transaction`): no mail goes out on it before the outbox claims what it
    queued, and that commit is synced, this one with it. A power cut before then leaves
    the messages as they were stored, to be worked out again."""
    finished = []
    with transaction(durable=False):
        for record, outcome in outcomes:
            disposition = _write_safely(ctx, record, outcome, claim, now)
            if disposition is not None:
                finished.append((record, disposition))
    return finished


def _write_safely(
    ctx: Context, record: InboundRecord, outcome: Outcome, claim: str, now: datetime
) -> Disposition | None:
    """One message's writes and its new state, or none of them: None if the claim was lost."""
    try:
        with transaction():  # a savepoint: a failure undoes this message's work only
            disposition = outcome()
            _finish(record, claim, disposition, now)
            return disposition
    except _LostClaim:
        return None
    except Exception as exc:
        if is_unavailable(exc):
            raise  # the store's trouble, not the message's: it stays new for the next run
        disposition = _failed(record, exc)
    try:
        with transaction():
            _tell_referrer_safely(ctx, record, now)
            _finish(record, claim, disposition, now)
            return disposition
    except _LostClaim:
        return None


def _finish(record: InboundRecord, claim: str, disposition: Disposition, now: datetime) -> None:
    if not queries.finish_claimed(record.id, claim, disposition.state, disposition.note, now):
        raise _LostClaim(record.id)


def _failed(record: InboundRecord, exc: Exception) -> Disposition:
    log.error("inbound %s %s could not be processed", record.id, record.message_id, exc_info=exc)
    note = f"internal error: {type(exc).__name__}: {exc}"
    return Disposition(InboundState.QUARANTINED, note[:500])


def _decide_safely(ctx: Context, record: InboundRecord, now: datetime) -> Outcome:
    try:
        return decide(ctx, record, now)
    except Exception as exc:
        if is_unavailable(exc):
            raise
        disposition = _failed(record, exc)

        def quarantined() -> Disposition:
            _tell_referrer_safely(ctx, record, now)
            return disposition

        return quarantined


def _log_outcome(record: InboundRecord, disposition: Disposition) -> None:
    """Once committed: the message's id and what became of it. A note may name the sender or
    a bounced recipient; only DEBUG, for an operator tracing one message, keeps them."""
    log.info("inbound %s %s: %s", record.id, disposition.state, without_addresses(disposition.note))
    log.debug("inbound %s from <%s>: %s", record.id, record.envelope_from, disposition.note)


def _done(disposition: Disposition) -> Outcome:
    return lambda: disposition


def decide(ctx: Context, record: InboundRecord, now: datetime) -> Outcome:
    """The stages, in order; the first that decides ends the run. Only reads: what is to be
    written comes back to be called inside the transaction that finishes the message.

    What the message is comes from where it was sent: a VERP address or the null sender is
    a bounce, a question's address (or a reply naming our question) an answer, and the
    referral address a request. A request, the common case, is rendered here; the rarer
    answers, bounces, commands and refusals do their work when called.
    """
    excess = message_excess(record.raw, limits_of(ctx.settings))
    if excess is not None:
        # Known only now, past the SMTP answer (or stored before the cap): keep it, say why.
        def quarantined() -> Disposition:
            _tell_referrer_safely(ctx, record, now)
            return Disposition(InboundState.QUARANTINED, excess.text)

        return quarantined
    destinations = [d for d in (route(r, ctx.settings) for r in record.recipients) if d]
    message = parse_message(record.raw)
    bounce = next((d for d in destinations if d.route is Route.BOUNCE), None)
    if bounce is not None or record.envelope_from == "":
        key = bounce.key if bounce else ""
        return lambda: conversation.process_bounce(ctx, record, message, key, now)
    reply = next((d for d in destinations if d.route is Route.REPLY), None)
    if reply is not None:
        ask_key = queries.ask_key_for_reply(reply.key)
        survey_key = None if ask_key else queries.survey_key_for_reply(reply.key)
        if ask_key is None and survey_key is None:
            return _done(Disposition(InboundState.IGNORED, "answer to a question we do not have"))
    else:
        named = referenced_ids(message)
        ask_key = queries.ask_key_for_message_ids(named)
        survey_key = None if ask_key else queries.survey_key_for_message_ids(named)
    if ask_key is not None:
        asked = ask_key
        return lambda: conversation.process_reply(ctx, record, message, asked, now)
    if survey_key is not None:
        surveyed = survey_key
        return lambda: conversation.process_survey_reply(ctx, record, message, surveyed, now)
    robot = automatic_reason(message, record.envelope_from)
    if robot:
        return _done(Disposition(InboundState.IGNORED, f"automatic message: {robot}"))
    judged = verdict(record.envelope_from, message, ctx.settings)
    if judged.referrer is None:
        return _done(Disposition(InboundState.IGNORED, judged.refusal or "not a request"))
    referrer = judged.referrer
    language = commands.report_language(message)
    if language is not None:
        return lambda: _report(ctx, record, referrer, language, message, now)
    try:
        draft = parse_request(message, referrer.address)
    except Unreadable as exc:
        why = str(exc)

        def unreadable() -> Disposition:
            tell_unreadable(ctx, record.id, referrer, message, now)
            return Disposition(InboundState.QUARANTINED, why)

        return unreadable
    findings = care_gate(draft, referrer.address, ctx.settings.service.domain)
    if findings:

        def refused() -> Disposition:
            refuse_request(ctx, referrer, draft, findings, now, f"inbound {record.id}")
            problems = ", ".join(sorted({f.problem.value for f in findings}))
            return Disposition(InboundState.REJECTED, problems)

        return refused
    channel = Channel.CLI if record.via == Channel.CLI else Channel.SMTP
    prepared = prepare_referral(
        ctx, draft, referrer, record.id, channel, now, _withheld(ctx, draft, now)
    )

    def opened() -> Disposition:
        referral = record_referral(ctx, prepared)
        return Disposition(InboundState.PROCESSED, referral.ref)

    return opened


def _report(
    ctx: Context,
    record: InboundRecord,
    referrer: Mailbox,
    language: str,
    message: Message,
    now: datetime,
) -> Disposition:
    sent = commands.send_report(
        ctx, referrer, language, message_id_of(message), now, f"inbound {record.id}"
    )
    return Disposition(
        InboundState.PROCESSED, "report sent" if sent else "report not sent: daily limit"
    )


def _withheld(ctx: Context, draft: RequestDraft, now: datetime) -> dict[str, datetime]:
    """Those named who said stop, each with when their silent no is due: drawn from the
    system's randomness, so no referrer can learn the delay and time it."""
    named = [p.mailbox.address for p in (draft.provider, draft.prospect) if p.mailbox]
    expires_at = now + timedelta(days=ctx.settings.timing.consent_expiry_days)
    draw = secrets.SystemRandom()
    return {
        address: withheld.decline_due(now, expires_at, draw.random())
        for address in suppressions.suppressed(named)
    }


def tell_unreadable(
    ctx: Context, inbound_id: int, referrer: Mailbox, message: Message, now: datetime
) -> None:
    """One short note to the referrer: we have their message, but could not read it.

    Once per message: an operator's retry that fails again does not write to them again.
    """
    subject = header_text(message, "Subject")
    with transaction():
        if not quota.may_write(
            ctx.settings, referrer.address, now, "request_unreadable", f"inbound {inbound_id}"
        ):
            return
        if queries.mark_referrer_told(inbound_id):
            note = letters.request_unreadable(ctx, referrer, subject, message_id_of(message), now)
            queries.enqueue([note], now)


def _tell_referrer_safely(ctx: Context, record: InboundRecord, now: datetime) -> None:
    """After a failure, still tell an allowed referrer; if even that fails, the log has it."""
    try:
        headers = headers_of(record.raw)
        referrer = verdict(record.envelope_from, headers, ctx.settings).referrer
        if referrer is not None and not automatic_reason(headers, record.envelope_from):
            tell_unreadable(ctx, record.id, referrer, headers, now)
    except Exception:
        log.exception("could not tell the referrer about inbound %s", record.id)
