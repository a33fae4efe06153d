"""Pure: who may refer. Judged at SMTP time (envelope, then headers) and again at intake."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from email.message import Message
from functools import cache

import authres
from publicsuffixlist import PublicSuffixList

from service.reading.addresses import Mailbox, is_allowed, normalize, single_mailbox
from service.settings import SecuritySettings


@dataclass(frozen=True)
class Verdict:
    referrer: Mailbox | None
    refusal: str | None


def may_send(envelope_from: str, allowed: Sequence[str]) -> bool:
    """The envelope sender of a request; the null sender is a bounce and is judged later."""
    return envelope_from == "" or is_allowed(envelope_from, allowed)


def sender_refusal(
    envelope_from: str, security: SecuritySettings, also_allowed: Collection[str] = ()
) -> str | None:
    """Why the envelope sender alone may not send a request, or None: judge's first step,
    and all the Postfix policy service can ask at RCPT."""
    if may_send(envelope_from, (*security.allowed_referrers, *also_allowed)):
        return None
    return f"<{envelope_from}> is not allowed to send requests here"


def judge(
    envelope_from: str,
    headers: Message,
    security: SecuritySettings,
    also_allowed: Collection[str] = (),
) -> Verdict:
    """May this message be a request? The referrer it names, or why it must be refused.

    `also_allowed` are addresses allowed beside the configuration (the store's, which this
    pure reader cannot ask itself; see `candidates`). A bounce (null envelope sender) is
    never a request but is kept, so it has no refusal, and its headers are not read here.
    """
    allowed = (*security.allowed_referrers, *also_allowed)
    refusal = sender_refusal(envelope_from, security, also_allowed)
    if refusal:
        return Verdict(None, refusal)
    if envelope_from == "":
        return Verdict(None, None)
    authors = raw_values(headers, "From")
    if len(authors) != 1:
        return Verdict(None, f"a request needs exactly one From header, not {len(authors)}")
    author = single_mailbox(authors[0])
    if author is None:
        return Verdict(None, "the From header must name exactly one address, and nothing else")
    referrer = referrer_of(headers, allowed)
    if referrer is None:
        return Verdict(None, "the From address is not allowed to send requests here")
    trusted = security.trusted_authserv_id
    if trusted and not authenticated(headers, referrer.address, trusted):
        return Verdict(None, "the From domain did not pass DKIM or SPF")
    return Verdict(referrer, None)


def candidates(envelope_from: str, headers: Message, security: SecuritySettings) -> list[str]:
    """The addresses `judge` would need allowed that the configuration does not allow: the
    only ones worth asking the store about."""
    asked = [normalize(envelope_from)] if envelope_from else []
    author = author_of(headers)
    if author is not None:
        asked.append(author.address)
    return [a for a in dict.fromkeys(asked) if not is_allowed(a, security.allowed_referrers)]


def referrer_of(headers: Message, allowed: Sequence[str]) -> Mailbox | None:
    """The referrer, when From is exactly one allowed mailbox and no one else sent it for them.

    A group, several authors, several From or Sender headers, or a Sender who is not the
    author never counts: any of them lets a message name an allowed referrer it was not
    written by.
    """
    author = author_of(headers)
    if author is None or not is_allowed(author.address, allowed):
        return None
    senders = raw_values(headers, "Sender")
    if senders:
        agent = single_mailbox(senders[0]) if len(senders) == 1 else None
        if agent is None or agent.address != author.address:
            return None
    return author


def author_of(headers: Message) -> Mailbox | None:
    """The one mailbox of the one From header, read strictly; None for anything else."""
    authors = raw_values(headers, "From")
    return single_mailbox(authors[0]) if len(authors) == 1 else None


def raw_values(headers: Message, name: str) -> list[str]:
    """A header's values as they arrived, whatever the message's policy.

    With the default policy, reading a header runs the stdlib's header parser, whose cost
    grows quadratically on hostile values; raw_items() hands the text over unparsed.
    """
    wanted = name.lower()
    return [str(value) for key, value in headers.raw_items() if key.lower() == wanted]


def authenticated(headers: Message, author: str, trusted_id: str) -> bool:
    """Did our own MTA find DKIM or SPF passing, aligned with the author's domain?

    Only the topmost Authentication-Results with our authserv-id counts: the MTA writes it
    above everything it received, and must remove any that arrive carrying its id.
    """
    domain = author.rsplit("@", 1)[1]
    for value in raw_values(headers, "Authentication-Results"):
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
        except Exception:  # authres raises its own SyntaxError and others on malformed input
            continue
        if str(parsed.authserv_id).lower() != trusted_id.lower():
            continue
        return any(_aligned_pass(result, domain) for result in parsed.results)
    return False


def _aligned_pass(result: object, domain: str) -> bool:
    method = str(getattr(result, "method", "")).lower()
    if str(getattr(result, "result", "")).lower() != "pass":
        return False
    props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in getattr(result, "properties", [])}
    if method == "dkim":
        return aligned(props.get("header.d", ""), domain)
    if method == "spf":
        mailfrom = props.get("smtp.mailfrom", "")
        return aligned(mailfrom.rsplit("@", 1)[-1], domain)
    if method == "dmarc":
        return aligned(props.get("header.from", ""), domain)
    return False


def aligned(signer: str, author_domain: str) -> bool:
    """Relaxed alignment (RFC 7489): both domains share one organizational domain."""
    signer, author_domain = signer.strip().strip(".").lower(), author_domain.lower()
    if not signer:
        return False
    return _organization(signer) == _organization(author_domain)


@cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def _organization(domain: str) -> str:
    return _psl().privatesuffix(domain) or domain
