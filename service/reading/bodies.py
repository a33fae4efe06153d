"""Pure: the text a person wrote in a message, whatever its MIME shape, encoding or charset."""

from __future__ import annotations

import codecs
import re
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import EmailMessage, Message

import charset_normalizer
import inscriptis

# What senders mean by a label, as browsers read it (WHATWG Encoding): Outlook and others
# label windows-1252 text ISO-8859-1, and 8-bit text us-ascii.
_CHARSETS_AS_SENT = {
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "ks_c_5601-1987": "cp949",
}
# When the declared charset is missing or wrong, guess only among what the clients of our six
# languages write: on a short text an open guess picks cp775 for "Jürgen" or UTF-16 for junk.
_LIKELY_CHARSETS = ("utf_8", "cp1252", "cp1250", "iso8859_2", "cp1256", "iso8859_6", "iso8859_15")
_MULTI_BYTE = {"cp932", "cp936", "cp949", "cp950", "cp1361"}
_SINGLE_BYTE = re.compile(r"^(?:iso8859|cp\d|latin|koi8|mac|ascii|tis)")
# Marks that steer display but are no part of any word: an Arabic client puts U+200F before a
# label, a Windows editor a BOM before the first line.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def body_text(message: EmailMessage) -> str | None:
    """What the person wrote: the plain-text body, else the HTML one as text; None if neither.

    Attachments are never read here; a message with no text body at all is unreadable.
    """
    part = message.get_body(preferencelist=("plain", "html"))
    return None if part is None else part_text(part)


def part_text(part: Message) -> str:
    """The text of one text/plain or text/html part, the HTML as text."""
    text = decoded_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def decoded_text(part: Message) -> str:
    """A text part's characters, whatever its transfer encoding and however wrong its charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode(payload, part.get_content_charset())


def decode(data: bytes, declared: str | None) -> str:
    """Bytes as their sender meant them.

    Text that is valid UTF-8 is UTF-8, whatever single-byte charset it claims: clients label
    UTF-8 as ISO-8859-1, and real Latin text is almost never valid UTF-8 by accident.
    """
    codec = _codec((declared or "").strip().lower())
    if data.isascii():
        return data.decode(codec or "ascii", errors="replace")
    if codec is None or _is_single_byte(codec):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    guess = charset_normalizer.from_bytes(data, cp_isolation=list(_LIKELY_CHARSETS)).best()
    return str(guess) if guess is not None else data.decode("utf-8", errors="replace")


def header_text(message: Message, name: str) -> str:
    """A header's text as its sender meant it: encoded words decoded the way bodies are.

    The email package decodes an ISO-8859-1 encoded word as ISO-8859-1, which turns the
    dashes and quotes Outlook puts there (windows-1252) into invisible control characters.
    """
    raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return ""
    return raw_header_text(str(raw))


def raw_header_text(raw: str) -> str:
    """header_text for a value as it arrived (folded, encoded words and all)."""
    value = re.sub(r"\r?\n(?=[ \t])", "", raw).strip()
    if "=?" not in value:  # 8-bit bytes straight in the header arrive as surrogate escapes
        return decode(value.encode("utf-8", "surrogateescape"), None)
    try:
        chunks = decode_header(value)
    except (HeaderParseError, ValueError):
        return " ".join(value.split())
    text = "".join(
        decode(chunk, charset) if isinstance(chunk, bytes) and charset else _plain(chunk)
        for chunk, charset in chunks
    )
    return " ".join(text.split())


def _plain(chunk: bytes | str) -> str:
    if isinstance(chunk, str):
        return chunk
    # decode_header hands back the text between encoded words as raw-unicode-escape bytes.
    return chunk.decode("raw-unicode-escape", errors="replace")


def _codec(label: str) -> str | None:
    label = _CHARSETS_AS_SENT.get(label, label)
    if not label:
        return None
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _is_single_byte(codec: str) -> bool:
    return codec not in _MULTI_BYTE and bool(_SINGLE_BYTE.match(codec))


def html_to_text(html: str) -> str:
    """HTML as a person reads it, one block per line, so labelled lines stay lines."""
    if not html.strip():
        return ""
    try:
        return inscriptis.get_text(html)
    except Exception:  # lxml refuses some documents outright; keep what a tag strip gives
        return re.sub(r"<[^>]+>", " ", html)
