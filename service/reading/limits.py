"""Pure: how big and how deep a raw message is, measured before any mail parser sees it.

The standard library's parsers cost more than linear time and memory on some shapes: its
header parser on adjacent RFC 2047 encoded words, long phrases, comments or quoted strings;
its MIME parser recurses once per level of nesting. One small hostile message could take
gigabytes or end in RecursionError. These scans only split lines and count, so each costs
time linear in the message, and they stop at the first cap a message goes over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

from service.reading.mail_policy import intake_policy
from service.settings import Settings

# A field's lines unfolded; the stdlib header parser's worst shapes stay well under a second
# and a few megabytes up to this, while long legitimate fields (References, a big Cc) fit.
FIELD_BYTES = 16384
# Counted as "=?" occurrences: an upper bound on encoded words that needs no decoding.
ENCODED_WORDS = 200
# The stdlib parser recurses per level and gives up near 450; real mail nests a handful.
MIME_DEPTH = 50
# Intake reads each part's headers with the stdlib parser: bounded per part by the caps
# above, so the count of parts bounds the whole. Real mail has a few dozen at most.
MIME_PARTS = 1000

_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")  # the stdlib's headerRE


@dataclass(frozen=True)
class Limits:
    header_bytes: int = 65536
    field_bytes: int = FIELD_BYTES
    encoded_words: int = ENCODED_WORDS
    mime_depth: int = MIME_DEPTH
    mime_parts: int = MIME_PARTS


def limits_of(settings: Settings) -> Limits:
    return Limits(header_bytes=settings.inbound.max_header_bytes)


@dataclass(frozen=True)
class Excess:
    """What a message goes over: an SMTP reply code, and a text that says it to a person."""

    code: str
    text: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


def header_block(raw: bytes, limit: int) -> bytes | None:
    """The header block (up to the first empty line), or None when it is longer than limit."""
    for blank in (b"\n\n", b"\n\r\n", b"\r\r"):
        end = raw.find(blank, 0, limit + len(blank))
        if end >= 0:
            return raw[: end + 1]
    return raw if len(raw) <= limit else None


def header_excess(raw: bytes, limits: Limits) -> Excess | None:
    """The caps on a message's own header block: all that the SMTP answer needs to read."""
    block = header_block(raw, limits.header_bytes)
    if block is None:
        return _too_large(limits)
    # Each field is a part of the block: a block within both caps has no field over them,
    # which is every block of ordinary mail, told without splitting it into fields.
    if len(block) <= limits.field_bytes and block.count(b"=?") <= limits.encoded_words:
        return None
    return _fields_excess(block.splitlines(), limits)


def message_excess(raw: bytes, limits: Limits) -> Excess | None:
    """Every cap, in every header block the message nests, and the depth of its MIME tree.

    Reads the structure the way the stdlib parser (with intake's policy) does: a line that
    is any enclosing boundary ends a part, even among its headers; the body of a message/*
    part other than delivery-status is a message; a part of a digest is a message unless
    it says otherwise.
    """
    excess = header_excess(raw, limits)
    if excess is not None:
        return excess
    # Parts are typed with intake's own policy, so both read the same structure.
    parser = BytesHeaderParser(policy=intake_policy())
    frames: list[_Frame] = []  # the open multiparts and messages, outermost first
    block: list[bytes] = []
    size, in_headers, parts = 0, True, 0
    for line in _lines(raw):
        index, closing = _boundary(frames, line)
        if index is not None:
            parts += not closing
            if parts > limits.mime_parts:
                return Excess("554 5.6.0", f"The message has more than {limits.mime_parts} parts")
            if in_headers:
                excess = _fields_excess(block, limits) or _open(parser, frames, block, limits)
                if excess is not None:
                    return excess
                block, size = [], 0
            del frames[index + 1 :]
            if closing:
                frames.pop()
            in_headers = not closing
            continue
        # A line that ends a header block without being empty is read again: it may begin
        # a nested message's headers, and then end those too.
        while in_headers:
            if _HEADER_LINE.match(line):
                size += len(line)
                if size > limits.header_bytes:
                    return _too_large(limits)
                block.append(line)
                break
            excess = _fields_excess(block, limits) or _open(parser, frames, block, limits)
            if excess is not None:
                return excess
            block, size = [], 0
            top = frames[-1] if frames else None
            if top is not None and top.boundary is None and not top.read:
                top.read = True  # the nested message's own headers come next
            else:
                in_headers = False
            if not line.strip(b"\r\n"):
                break  # the empty line that ended the headers
    if in_headers and block:
        return _fields_excess(block, limits) or _open(parser, frames, block, limits)
    return None


@dataclass
class _Frame:
    boundary: bytes | None  # None: a message/* part, whose body is one nested message
    digest: bool = False
    read: bool = False


def _lines(raw: bytes) -> Iterator[bytes]:
    """Lines with their ends, split where the stdlib splits them (CRLF, LF or CR)."""
    start = 0
    for match in re.finditer(rb"\r\n|\r|\n", raw):
        yield raw[start : match.end()]
        start = match.end()
    if start < len(raw):
        yield raw[start:]


def _fields_excess(lines: list[bytes], limits: Limits) -> Excess | None:
    for name, field in _fields(lines):
        if len(field) > limits.field_bytes:
            return Excess(
                "552 5.3.4",
                f"Header field {name} is too long: more than {limits.field_bytes} bytes",
            )
        if field.count(b"=?") > limits.encoded_words:
            return Excess(
                "554 5.6.0",
                f"Header field {name} has too many encoded words: more than {limits.encoded_words}",
            )
    return None


def _fields(lines: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """Each field's name and its lines joined, continuation lines with the field they fold."""
    name, parts = "", []
    for line in lines:
        if line[:1] in b" \t" and parts:
            parts.append(line)
            continue
        if parts:
            yield name, b"".join(parts)
        name = _name(line)
        parts = [line]
    if parts:
        yield name, b"".join(parts)


def _name(line: bytes) -> str:
    """A field's name, safe to put in a reply: printable ASCII, short."""
    head = line.split(b":", 1)[0].strip()
    return head[:40].decode("ascii", "replace") if head.isascii() else "(unnamed)"


def _open(
    parser: BytesHeaderParser, frames: list[_Frame], block: list[bytes], limits: Limits
) -> Excess | None:
    """Push the frame a part's header block opens, if it opens one; refuse past the depth."""
    part: Message = parser.parsebytes(b"".join(block) + b"\n")
    if frames and frames[-1].digest and part.get("Content-Type") is None:
        part.set_default_type("message/rfc822")
    kind = part.get_content_type()
    if kind.startswith("multipart/"):
        boundary = part.get_boundary()
        # Without a boundary the stdlib reads the body as text; counting it costs nothing.
        frame = _Frame(boundary.encode("utf-8", "surrogateescape") if boundary else b"")
        frame.digest = kind == "multipart/digest"
    elif kind.startswith("message/") and kind != "message/delivery-status":
        frame = _Frame(None)
    else:
        return None
    frames.append(frame)
    if len(frames) > limits.mime_depth:
        return Excess("554 5.6.0", f"The message nests more than {limits.mime_depth} levels")
    return None


def _boundary(frames: list[_Frame], line: bytes) -> tuple[int | None, bool]:
    """The innermost open multipart whose boundary this line is, and whether it closes it."""
    if not line.startswith(b"--"):
        return None, False
    text = line.rstrip(b"\r\n").rstrip(b" \t")
    for index in range(len(frames) - 1, -1, -1):
        boundary = frames[index].boundary
        if not boundary:
            continue
        if text == b"--" + boundary:
            return index, False
        if text == b"--" + boundary + b"--":
            return index, True
    return None, False


def _too_large(limits: Limits) -> Excess:
    return Excess(
        "552 5.3.4", f"Message header is too large: more than {limits.header_bytes} bytes"
    )
