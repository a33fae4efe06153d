"""Pure: who may refer. Checked at SMTP time (envelope, then From) and again at intake."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import getaddresses

from service.addresses import Mailbox, is_allowed, parse_mailbox


def may_send(envelope_from: str, allowed: Sequence[str]) -> bool:
    """The envelope sender of a request; the null sender is a bounce and is judged later."""
    return envelope_from == "" or is_allowed(envelope_from, allowed)


def referrer_of(from_header: str | None, allowed: Sequence[str]) -> Mailbox | None:
    """The referrer named by From, when it is exactly one allowed mailbox."""
    if not from_header:
        return None
    pairs = [pair for pair in getaddresses([from_header]) if pair[1]]
    if len(pairs) != 1:
        return None
    mailbox = parse_mailbox(str(from_header))
    if mailbox is None or not is_allowed(mailbox.address, allowed):
        return None
    return mailbox


def refusal(envelope_from: str, from_header: str | None, allowed: Sequence[str]) -> str | None:
    """Why a message must be refused at SMTP time, or None. A bounce (null sender) is kept."""
    if not may_send(envelope_from, allowed):
        return f"<{envelope_from}> is not allowed to send requests here"
    if envelope_from and referrer_of(from_header, allowed) is None:
        return "the From address is not allowed to send requests here"
    return None
