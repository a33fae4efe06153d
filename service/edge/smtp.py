"""The SMTP or LMTP edge: route each recipient, refuse what we must, store, answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from service.edge.group_commit import GroupCommit
from service.edge.lmtp import PerRecipientLMTP
from service.intake import receiving
from service.reading.limits import header_excess, limits_of
from service.reading.relay_replies import without_addresses
from service.reading.routing import route
from service.settings import Settings
from store.db import DatabaseUnavailable, is_full

log = logging.getLogger(__name__)

# RFC 3463's 4.3.1: the sender's MTA keeps the message and retries, as for any 4xx.
STORE_FULL = "452 4.3.1 Insufficient system storage, please try again later"
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, please try again later"
# RFC 5321 4.5.3.1.8: at least 100 must be taken; the rest are told to come again later.
MAX_RECIPIENTS = 100
# Commands one session may send (aiosmtpd answers 421 and hangs up past them): room for an
# MTA that reuses its connection for many messages, none for a client that idles forever.
COMMAND_LIMITS = {"MAIL": 1000, "RCPT": 20000, "DATA": 1000, "RSET": 1000, "*": 100}
# The path of nearly every MAIL and RCPT: <local@domain>, both dot-atoms of ASCII atext
# (RFC 5322 3.2.3), then the parameters after any spaces. Anything else (quoted local
# parts, address literals, source routes, comments, missing brackets, UTF-8) is read by
# aiosmtpd itself.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_USUAL_PATH = re.compile(rf"<({_DOT_ATOM}@{_DOT_ATOM})>(?:[ \t]*([^ \t(].*))?")


class InboundHandler:
    """An aiosmtpd handler; it never parses bodies or renders anything (that runs later)."""

    def __init__(
        self, settings: Settings, group: GroupCommit, on_stored: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.group = group
        self.on_stored = on_stored
        self.limits = limits_of(settings)
        self.per_recipient = settings.inbound.protocol == "lmtp"
        # Told each DATA reply, for the metrics; serve sets it.
        self.on_answer: Callable[[str], None] = lambda reply: None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if route(address, self.settings) is None:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        # Who may send is decided at DATA, in the dialogue still (a reply mail would be
        # backscatter): a party answering with a client that dropped our tag writes to the
        # referral address, and only the headers show that it answers our question.
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await self._answer_data(session, envelope)
        for line in reply.split("\r\n"):  # LMTP: one line per recipient, each counted
            self.on_answer(line)
        return reply

    async def _answer_data(self, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # Before any parser: what is plain from the header block is refused in the dialogue.
        excess = header_excess(raw, self.limits)
        if excess is not None:
            log.info("refused a message from %s: %s", session.peer, excess.text)
            return excess.reply
        message_id = None
        try:
            headers = receiving.headers_of(raw)
            message_id = receiving.message_id_of(headers)
            offered = receiving.Offered(
                raw,
                envelope_sender(envelope),
                tuple(envelope.rcpt_tos),
                headers,
                each=self.per_recipient,
            )
            fate = await self.group.admit(offered)
        except DatabaseUnavailable as exc:
            # The MTA keeps the message and tries again; the log says why, without who.
            log.warning("could not store a message, answered 451: %s", exc)
            return TEMPORARY_FAILURE
        except Exception as exc:
            if is_full(exc):
                log.warning("the store is full; answered 452 until there is room")
                return STORE_FULL
            log.exception("could not store message %s from %s", message_id, session.peer)
            return TEMPORARY_FAILURE
        for refusal in dict.fromkeys(filter(None, fate.refusals)):  # one sender, one refusal
            _log_refusal(message_id, offered.envelope_from, refusal)
        received = fate.received
        if self.per_recipient:  # one reply line per recipient, in the order of their RCPTs
            accepted = "" if received is None else self._accepted(received, message_id)
            return "\r\n".join(accepted if r is None else refusal_reply(r) for r in fate.refusals)
        if fate.refusals[0]:
            return refusal_reply(fate.refusals[0])
        assert received is not None
        return self._accepted(received, message_id)

    def _accepted(self, received: receiving.Received, message_id: str | None) -> str:
        if received.duplicate:
            log.info("message %s was already stored; accepted again, kept once", message_id)
            return "250 2.0.0 OK: already received"
        self.on_stored()
        return f"250 2.0.0 OK: queued as {received.inbound_id}"

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default would put the exception's text in the reply.
        log.error("SMTP session error: %r", error, exc_info=error)
        return TEMPORARY_FAILURE


def envelope_sender(envelope: Envelope) -> str:
    """The envelope sender, with the null sender (bounces: MAIL FROM:<>) as ""."""
    sender = (envelope.mail_from or "").strip()
    return "" if sender == "<>" else sender


def _log_refusal(message_id: str | None, sender: str, refusal: str) -> None:
    # The refusal names the sender it refuses, and a peer's Message-ID often carries its
    # domain or address: INFO says why, DEBUG which message and who.
    log.info("refused a message in the dialogue: %s", without_addresses(refusal))
    log.debug("refused message %s from <%s>: %s", message_id, sender, refusal)


def refusal_reply(refusal: str) -> str:
    return f"550 5.7.1 {refusal[0].upper()}{refusal[1:]}"


def usual_path(arg: str) -> tuple[str, str] | None:
    """(address, parameters) of a MAIL or RCPT argument of the usual shape, as aiosmtpd's
    own reading gives them; None for any other shape."""
    match = _USUAL_PATH.fullmatch(arg)
    return None if match is None else (match[1], match[2] or "")


class _UsualPaths(SMTP):
    """Reads the usual MAIL and RCPT path with one regular expression.

    aiosmtpd reads every path with the stdlib's header parser and defines a class on each
    call: 35 to 50 us an address, two per message, more than a quarter of the event loop's
    time per message under load. The result is the same (a test compares them).
    """

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return (not self.local_part_limit and usual_path(arg)) or super()._getaddr(arg)


class EdgeSMTP(_UsualPaths):
    """aiosmtpd's SMTP, reading paths as `_UsualPaths` does."""


class EdgeLMTP(_UsualPaths, PerRecipientLMTP):
    """The LMTP dialogue, reading paths as `_UsualPaths` does."""


def smtp_factory(handler: InboundHandler, settings: Settings) -> Callable[[], Any]:
    """The protocol the MTA speaks to us: SMTP, or LMTP with a reply per recipient."""
    protocol = EdgeLMTP if settings.inbound.protocol == "lmtp" else EdgeSMTP

    def make() -> SMTP:
        return protocol(
            handler,
            data_size_limit=settings.inbound.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.service.domain,
            ident="care-intro",
            command_call_limit=COMMAND_LIMITS,
        )

    return make
