"""Pure: the text of a mail we sent, as the person's client shows it.

Consent evidence reads the question a party answered from its stored bytes, once per
answer. With `email.policy.default` that parse cost more than all the rest of recording
the answer; even compat32 compiles a regular expression for each multipart boundary, and
every mail we write has a boundary of its own. The mails we write have one shape
(writing/compose.py): a multipart/alternative whose first part is the text. That shape is
read here directly; anything else is parsed, and the part `EmailMessage.get_body` picks
is found the way it searches.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser

from service.reading.bodies import body_text, part_text
from service.reading.limits import header_block

_HEADERS = BytesHeaderParser()  # compat32: no header objects


def sent_text(raw: bytes) -> str:
    """The plain-text body (else the HTML one, as text); "" when there is neither."""
    first = _first_part(raw)
    if first is not None:
        part = email.message_from_bytes(first)
        if part.get_content_type() == "text/plain" and not _attached(part):
            return part_text(part)
    message = email.message_from_bytes(raw)
    found = _body_part(message)
    if found is _UNSURE:
        full = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(full, EmailMessage)
        return body_text(full) or ""
    return part_text(found) if found is not None else ""


def _first_part(raw: bytes) -> bytes | None:
    """The first part of a multipart/alternative as we write it: no preamble, the first
    delimiter right after the header block, the second on a line of its own and the
    boundary nowhere in between. None for any other shape."""
    # The header block alone: parsed whole, every byte of every part would be decoded.
    headers = _HEADERS.parsebytes(header_block(raw, len(raw)) or raw)
    if headers.get_content_type() != "multipart/alternative" or _attached(headers):
        return None
    boundary = headers.get_boundary()
    if not boundary or not boundary.isascii():
        return None
    delimiter = b"--" + boundary.encode("ascii")
    for ending in (b"\r\n", b"\n"):
        opening = ending * 2 + delimiter + ending
        start = raw.find(opening)
        if start < 0 or raw.find(ending * 2, 0, start) >= 0:
            continue  # not right after the header block: a preamble, or other line ends
        start += len(opening)
        end = raw.find(ending + delimiter, start)
        if end < 0 or not raw.startswith(ending, end + len(ending) + len(delimiter)):
            return None
        return raw[start:end]
    return None


def _attached(part: Message) -> bool:
    return part.get_content_disposition() == "attachment"


# Stands for a multipart/related, which get_body searches its own way.
_UNSURE = Message()


def _body_part(message: Message) -> Message | None:
    """The first text/plain part that is no attachment, else the first such text/html, in
    the order `get_body(preferencelist=("plain", "html"))` searches; `_UNSURE` when that
    search meets a multipart/related."""
    html = None
    for part in _candidates(message):
        if part is _UNSURE:
            return _UNSURE
        if part.get_content_subtype() == "plain":
            return part
        html = html or part
    return html


def _candidates(part: Message) -> Iterator[Message]:
    if _attached(part):
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
