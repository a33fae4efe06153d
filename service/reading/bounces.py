"""Pure: which recipients a delivery status notification reports, and how badly.

RFC 3464 reports (multipart/report; report-type=delivery-status) are read here, one
per-recipient group at a time. Bounces written in prose instead (qmail, old Exim, Exchange's
odd ones) are left to flufl.bounce, Mailman's collection of bounce detectors, and only when
the message looks like a bounce at all: its heuristics are meant for mail to a bounce address.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import Any

from flufl.bounce import all_failures

from service.reading.addresses import normalize
from service.reading.bodies import decode, header_text

log = logging.getLogger(__name__)

_DIAGNOSTIC_CHARS = 300
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# "550-5.1.1 " opening a multi-line SMTP reply; Gmail repeats it on every line.
_MULTILINE_REPLY = re.compile(r"^(\d{3})-(?:([245]\.\d{1,3}\.\d{1,3})\s)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_FAILED = {"delivered", "relayed", "expanded"}
_STATUS_PART_TYPES = {"message/delivery-status", "message/global-delivery-status"}
_RETURNED_PART_TYPES = {
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
}
# Where a prose bounce stops talking and starts quoting what was sent.
_RETURNED_COPY = re.compile(
    r"^\s*-{2,}.*\b(?:copy|original|below|returned|message follows|headers)\b", re.IGNORECASE
)
_BOUNCE_SENDERS = {"mailerdaemon", "postmaster", "maildaemon", "mailerdeamon"}
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|fail|notification|problem|report|has failed)"
    r"|mail delivery|returned mail|failure notice|non-?delivery|could not be delivered"
    r"|not yet been delivered|delayed mail|warning: message",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}@[^<>\s]{1,250}>")
# A header line of a copy quoted in a text part: "Message-ID: <…>", perhaps indented.
_QUOTED_MESSAGE_ID = re.compile(
    r"^[ \t>]*Message-I[Dd]:[ \t]*(<[^<>\s]{1,250}@[^<>\s]{1,250}>)", re.MULTILINE | re.IGNORECASE
)
# A References header may list a long thread; the mail that failed is among the first few
# things a bounce quotes, and every one costs a lookup.
_MAX_RETURNED_IDS = 20


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports as not (yet) delivered."""

    recipient: str  # the address that failed, normalized lower-case
    permanent: bool  # 5.x.x / action=failed → True; 4.x.x / action=delayed → False
    status: str  # "5.1.1", "" if unknown
    # the remote server's words, one line, ≤ 300 chars (for the referrer/operator only)
    diagnostic: str


def read_bounce(message: EmailMessage) -> list[Failure]:
    """The recipients a bounce reports; [] when the message is not a bounce."""
    groups = _status_groups(message)
    if groups is not None:  # an RFC 3464 report says all there is, even "delivered"
        notice = _notice_text(message)
        return _unique(f for g in groups if (f := _failure(g, notice)) is not None)
    if not _looks_like_bounce(message):
        return []
    return _prose_bounce(message)


def returned_message_ids(message: Message) -> list[str]:
    """The Message-IDs a bounce quotes of the mail that failed, first found first.

    From the returned message or its headers, an RFC 3464 report's X-Original-Message-ID
    (Gmail), the bounce's own In-Reply-To and References (Gmail, Exchange), and the
    "Message-ID:" lines of a copy quoted in prose (qmail, old Exim). Any of them may be
    anything: only one that is the Message-ID of a mail we sent means something, and ours are
    random, so only an MTA that carried that mail, or its recipient, can quote it.
    """
    found: list[str] = []
    found += _ids_in(header_text(message, "In-Reply-To"))
    found += _ids_in(header_text(message, "References"))
    for part in _walk_report(message):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                found += _ids_in(header_text(inner, "Message-ID"))
        elif kind in _STATUS_PART_TYPES:
            for block in _blocks(part):
                found += _ids_in(block.get("x-original-message-id", ""))
        elif kind in _RETURNED_PART_TYPES or kind == "text/plain":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                text = decode(raw, part.get_content_charset() or "utf-8")
                found += [m.group(1) for m in _QUOTED_MESSAGE_ID.finditer(text)]
    return list(dict.fromkeys(found))[:_MAX_RETURNED_IDS]


def _ids_in(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value)


# ------------------------------------------------------------------ RFC 3464


def _status_groups(message: Message) -> list[dict[str, str]] | None:
    """The per-recipient field groups of every delivery-status part; None if there is none."""
    parts = [p for p in _walk_report(message) if p.get_content_type() in _STATUS_PART_TYPES]
    if not parts:
        return None
    groups: list[dict[str, str]] = []
    for part in parts:
        blocks = _blocks(part)
        # The first block is about the message (Reporting-MTA, Arrival-Date …); the rest are
        # one per recipient. A report that leaves out the first block still names recipients.
        groups.extend(b for b in blocks if "final-recipient" in b or "original-recipient" in b)
    return groups


def _walk_report(message: Message) -> list[Message]:
    """Every part, without looking inside a returned message (it may itself be a bounce)."""
    found: list[Message] = []

    def visit(part: Message) -> None:
        found.append(part)
        if part.get_content_type() in _RETURNED_PART_TYPES | _STATUS_PART_TYPES:
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for child in payload:
                    if isinstance(child, Message):
                        visit(child)

    visit(message)
    return found


def _blocks(part: Message) -> list[dict[str, str]]:
    """A delivery-status body as header blocks, lower-case names, values unfolded."""
    payload = part.get_payload()
    if not isinstance(payload, list):  # encoded, or a type the email package leaves as text
        raw = part.get_payload(decode=True)
        text = decode(raw, part.get_content_charset() or "utf-8") if isinstance(raw, bytes) else ""
        return _text_blocks(text)
    # message/delivery-status arrives split into blocks; other message/* types (RFC 6533's
    # message/global-delivery-status) as one block whose body holds the rest.
    blocks = []
    for block in payload:
        if not isinstance(block, Message):
            continue
        blocks.append(_fields(block.raw_items()))
        if block.is_multipart():
            continue
        rest = block.get_payload(decode=True)  # bytes: 8-bit text as it came
        if isinstance(rest, bytes) and rest.strip():
            blocks.extend(_text_blocks(decode(rest, "utf-8")))
    return blocks


def _text_blocks(text: str) -> list[dict[str, str]]:
    parser = HeaderParser()
    return [
        _fields(parser.parsestr(chunk.strip("\n") + "\n\n").items())
        for chunk in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))
        if chunk.strip()
    ]


def _fields(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in items:
        key = str(name).strip().lower()
        if key not in fields:
            unfolded = re.sub(r"\r?\n(?=[ \t])", " ", _unescaped(str(value)))
            fields[key] = " ".join(unfolded.split())
    return fields


def _unescaped(text: str) -> str:
    """8-bit bytes the email package kept as surrogate escapes, read as UTF-8 (RFC 6533)."""
    if text.isascii() or not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _failure(group: dict[str, str], notice: str) -> Failure | None:
    recipient = _recipient(group.get("original-recipient", "")) or _recipient(
        group.get("final-recipient", "")
    )
    if not recipient:
        return None
    action = (group.get("action", "").split() or [""])[0].lower()
    diagnostic = _after_type(group.get("diagnostic-code", ""))
    status = _status(group.get("status", "")) or _status(diagnostic)
    if action in _NOT_FAILED:
        return None
    if action.startswith(("fail", "error")):  # opensmtpd writes "error"
        permanent = True  # given up, whatever the last temporary status was (Postfix: 4.4.1)
    elif action == "delayed":
        permanent = False
    elif status[:1] in ("4", "5"):
        permanent = status[0] == "5"
    else:
        return None
    if not diagnostic:
        diagnostic = _said_about(recipient, notice)
    return Failure(recipient, permanent, status, _one_line(diagnostic))


def _recipient(value: str) -> str:
    """ "rfc822; Bob@Bakery.example" -> "bob@bakery.example"; "" if there is no address."""
    kind, _, address = value.partition(";")
    if not address:  # some MTAs leave out the address type
        address, kind = kind, "rfc822"
    if kind.strip().lower() == "utf-8":  # RFC 6533: \x{HEX} escapes
        address = re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: chr(int(m.group(1), 16)), address)
    address = normalize(address)
    return address if "@" in address and " " not in address else ""


def _after_type(diagnostic: str) -> str:
    """ "smtp; 550 5.1.1 …" -> "550 5.1.1 …" (the type says which protocol's words follow)."""
    kind, sep, rest = diagnostic.partition(";")
    if sep and re.fullmatch(r"\s*[A-Za-z][A-Za-z0-9-]*\s*", kind):
        return rest.strip()
    return diagnostic.strip()


def _status(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


# ------------------------------------------------------------------ prose bounces


def _looks_like_bounce(message: Message) -> bool:
    if any(name.lower() == "x-failed-recipients" for name, _ in message.raw_items()):
        return True
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type", "") or "").lower()
        if report_type in ("delivery-status", "global-delivery-status"):
            return True
    for name in ("From", "Sender"):
        for _n, address in getaddresses([header_text(message, name)]):
            local = address.rpartition("@")[0] or address
            if re.sub(r"[._-]", "", local).lower() in _BOUNCE_SENDERS:
                return True
    return bool(_BOUNCE_SUBJECT.search(header_text(message, "Subject")))


def _prose_bounce(message: EmailMessage) -> list[Failure]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over odd mail must not stop intake
        log.exception("flufl.bounce could not read a bounce")
        return []
    notice = _notice_text(message)
    failures = []
    for found, is_permanent in ((permanent, True), (temporary, False)):
        for raw in sorted(found):
            recipient = _recipient(raw.decode("ascii", errors="replace"))
            if not recipient:
                continue
            diagnostic = _said_about(recipient, notice)
            failures.append(Failure(recipient, is_permanent, _status(diagnostic), diagnostic))
    return _unique(failures)


# ------------------------------------------------------------------ the words around it


def _notice_text(message: Message) -> str:
    """The human-readable notice: the first text/plain part outside the returned message."""
    for part in _walk_report(message):
        if part.get_content_type() in _RETURNED_PART_TYPES:
            continue
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return decode(raw, part.get_content_charset()).replace("\r\n", "\n")
    return ""


def _said_about(recipient: str, notice: str) -> str:
    """What a prose notice says right after naming the recipient, up to the next blank line.

    Exim indents its reason under the address, qmail writes it under "<address>:".
    """
    lines = notice.split("\n")
    for index, line in enumerate(lines):
        if _RETURNED_COPY.match(line):
            break
        position = line.lower().find(recipient)
        if position < 0:
            continue
        words = [line[position + len(recipient) :].strip().lstrip(">:").strip()]
        for following in lines[index + 1 :]:
            if not following.strip() or _RETURNED_COPY.match(following):
                break
            words.append(following.strip())
        return _one_line(" ".join(w for w in words if w))
    return ""


def _one_line(text: str) -> str:
    """One line, at most 300 characters; a multi-line SMTP reply's repeated codes dropped."""
    text = _CONTROL.sub(" ", text).strip()
    first = _MULTILINE_REPLY.match(text)
    if first:
        code, enhanced = first.group(1), first.group(2)
        repeated = rf"\s{code}[ -]" + (rf"{re.escape(enhanced)}\s" if enhanced else "")
        text = text[: first.end()] + re.sub(repeated, " ", text[first.end() :])
    text = " ".join(text.split())
    if len(text) <= _DIAGNOSTIC_CHARS:
        return text
    return text[: _DIAGNOSTIC_CHARS - 1].rstrip() + "…"


def _unique(failures: Iterable[Failure]) -> list[Failure]:
    """The first report of each recipient, in order."""
    seen: set[str] = set()
    result = []
    for failure in failures:
        if failure.recipient not in seen:
            seen.add(failure.recipient)
            result.append(failure)
    return result
