"""Pure: the text a person wrote in a message, whatever its MIME shape, encoding or charset."""

from __future__ import annotations

import re
from email.message import EmailMessage, Message

import charset_normalizer
import inscriptis

# What senders mean by a label, as browsers read it (WHATWG Encoding): Outlook and others
# label windows-1252 text ISO-8859-1, and 8-bit text us-ascii.
_CHARSETS_AS_SENT = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "ks_c_5601-1987": "cp949",
}


def body_text(message: EmailMessage) -> str | None:
    """What the person wrote: the plain-text body, else the HTML one as text; None if neither.

    Attachments are never read here; a message with no text body at all is unreadable.
    """
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return None
    text = decoded_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decoded_text(part: Message) -> str:
    """A text part's characters, whatever its transfer encoding and however wrong its charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    declared = (part.get_content_charset() or "us-ascii").lower()
    try:
        return payload.decode(_CHARSETS_AS_SENT.get(declared, declared))
    except (LookupError, UnicodeDecodeError):
        guess = charset_normalizer.from_bytes(payload).best()
        return str(guess) if guess is not None else payload.decode("utf-8", errors="replace")


def html_to_text(html: str) -> str:
    """HTML as a person reads it, one block per line, so labelled lines stay lines."""
    if not html.strip():
        return ""
    try:
        return inscriptis.get_text(html)
    except Exception:  # lxml refuses some documents outright; keep what a tag strip gives
        return re.sub(r"<[^>]+>", " ", html)
