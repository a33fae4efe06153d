"""Pure: find forwarded messages in a request, attached or inline, as every client writes them.

No RFC says how a forward looks. Each client writes a separator line ("Begin forwarded
message:", "-------- Weitergeleitete Nachricht --------", 32 underscores …) and a block of
header lines ("Von: …", "De : …", "Dari: …", "من: …") in its interface language. We look
for that header block — a From line with a Date, Sent, Subject or To line next to it — so
a client we have not met is still understood when its labels are in the tables below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from service.reading.addresses import Mailbox, is_valid, normalize, parse_mailbox
from service.reading.bodies import body_text, header_text
from service.reading.labels import fold_label

# Header labels inside a forwarded block, folded (see labels.fold_label): case, accents, hamza
# and spacing do not matter. Sources: the clients' own forwards in each language.
HEADER_LABELS: dict[str, tuple[str, ...]] = {
    "from": (
        "from",
        "von",
        "de",
        "de la",
        "expeditor",
        "expeditorul",
        "dari",
        "من",
        "المرسل",
    ),
    "date": (
        "date",
        "sent",
        "datum",
        "gesendet",
        "envoye",
        "envoye le",
        "data",
        "trimis",
        "tanggal",
        "terkirim",
        "dikirim",
        "التاريخ",
        "تاريخ الإرسال",
        "تم الإرسال",
    ),
    "to": (
        "to",
        "an",
        "a",
        "pour",
        "catre",
        "destinatar",
        "destinatarul",
        "kepada",
        "ke",
        "إلى",
        "الى",
    ),
    "cc": ("cc", "kopie", "kopie (cc)", "copie a", "tembusan", "نسخة", "نسخة إلى"),
    "subject": (
        "subject",
        "betreff",
        "objet",
        "sujet",
        "subiect",
        "subiectul",
        "subjek",
        "perihal",
        "hal",
        "الموضوع",
    ),
    "reply_to": ("reply to", "antwort an", "repondre a", "raspunde la", "balas ke", "الرد على"),
}

# Lines that open a forward. Only a hint for where the referrer's own text ends: the
# header block after it is what we read.
SEPARATORS: tuple[str, ...] = (
    "forwarded message",
    "begin forwarded message",
    "original message",
    "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht",
    "ursprungliche nachricht",
    "message transfere",
    "debut du message reexpedie",
    "debut du message transfere",
    "message d'origine",
    "mesaj redirectionat",
    "incepe mesajul redirectionat",
    "mesajul original",
    "mesaj original",
    "pesan yang diteruskan",
    "awal pesan yang diteruskan",
    "pesan asli",
    "رسالة ممررة",
    "رسالة معاد توجيهها",
    "بداية الرسالة المعاد توجيهها",
    "الرسالة الأصلية",
)

_LABEL_INDEX = {fold_label(word): key for key, words in HEADER_LABELS.items() for word in words}
_SEPARATOR_WORDS = {fold_label(s) for s in SEPARATORS}
# "From: x", "De : x", "*From:* x" (Gmail's bold in HTML converted to text), "Von: \tx".
_HEADER_LINE = re.compile(r"^[*_\s]*(?P<label>[^:：]{1,30}?)[*_\s]*[:：][*_\s]*(?P<value>.*?)\s*$")
_RULE = re.compile(r"^[\s_\-–—=*]*$")
_MAILTO = re.compile(r"\[mailto:([^\]\s]+)\]|<mailto:([^>\s]+)>", re.IGNORECASE)
_QUOTE = re.compile(r"^(?:\s*>)+\s?")
_SIGNATURE = re.compile(r"^(?:--|—|__)\s*$")
# Where quoted history starts inside a forwarded message: "On … wrote:" and its kin.
_ATTRIBUTION = re.compile(
    r"^(?:On .+ wrote|Am .+ schrieb .+|Le .+ a [ée]crit|[ÎI]n .+ a scris|Pada .+ menulis"
    r"|في .+ كتب)\s*:\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Forwarded:
    """One forwarded message: who wrote it, about what, and its own words."""

    sender: Mailbox | None
    sender_text: str
    subject: str
    text: str
    # Below the "-- " line: the writer's name, company, phone. Not part of what they wrote,
    # but where their phone number usually is.
    signature: str = ""


@dataclass(frozen=True)
class Split:
    """A request taken apart: the referrer's own lines, and the forwards, outermost first."""

    own: str
    forwards: tuple[Forwarded, ...] = field(default=())


def split_request(message: EmailMessage, body: str | None) -> Split:
    """The referrer's own text and every forwarded message, inline or attached."""
    inline = split_text(body or "")
    attached = tuple(_attached(message))
    return Split(own=inline.own, forwards=inline.forwards + attached)


def split_text(text: str) -> Split:
    """Inline forwards in a body: every header block, and the text between them."""
    lines = [_unquote(line) for line in text.replace("\r\n", "\n").split("\n")]
    blocks = list(_header_blocks(lines))
    if not blocks:
        return Split(own=text)
    own_end = _own_end(lines, blocks[0][0])
    forwards = []
    for index, (_, end, headers) in enumerate(blocks):
        is_last = index + 1 == len(blocks)
        stop = len(lines) if is_last else _own_end(lines, blocks[index + 1][0])
        forwards.append(_forwarded(headers, lines[end:stop]))
    return Split(own="\n".join(lines[:own_end]).strip("\n"), forwards=tuple(forwards))


def _attached(message: Message) -> Iterator[Forwarded]:
    """Forwards as message/rfc822 attachments (Thunderbird's and Outlook's "as attachment")."""
    for part in message.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, EmailMessage):
            continue
        text = body_text(inner) or ""
        nested = split_text(text)
        sender_text = header_text(inner, "From")
        words, signature = _own_words(nested.own)
        yield Forwarded(
            sender=_sender(sender_text),
            sender_text=sender_text,
            subject=header_text(inner, "Subject"),
            text=words,
            signature=signature,
        )
        yield from nested.forwards


def _unquote(line: str) -> str:
    return _QUOTE.sub("", line)


def _header_blocks(lines: list[str]) -> Iterator[tuple[int, int, dict[str, str]]]:
    """(start, end, headers) of each run of forwarded-header lines that has a From."""
    index = 0
    while index < len(lines):
        headers: dict[str, str] = {}
        cursor = index
        last_key = ""
        while cursor < len(lines):
            match = _HEADER_LINE.match(lines[cursor])
            key = _LABEL_INDEX.get(fold_label(match.group("label"))) if match else None
            if key is None:
                # Outlook wraps a long To or Cc onto the next line; take it with the last.
                if last_key in ("to", "cc") and lines[cursor].startswith((" ", "\t")):
                    cursor += 1
                    continue
                break
            headers.setdefault(key, match.group("value"))
            last_key = key
            cursor += 1
        if "from" in headers and len(headers) >= 2:
            yield index, cursor, headers
            index = cursor
        else:
            index += 1


def _own_end(lines: list[str], block_start: int) -> int:
    """Where the text before a header block ends: above its separator line, if it has one."""
    end = block_start
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    if end > 0 and _is_separator(lines[end - 1]):
        end -= 1
    return end


def _is_separator(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if _RULE.match(stripped):
        return len(stripped) >= 8
    words = fold_label(re.sub(r"[-_=–—*:]+", " ", stripped))
    return words in _SEPARATOR_WORDS


def _forwarded(headers: dict[str, str], body: list[str]) -> Forwarded:
    words, signature = _own_words("\n".join(body))
    return Forwarded(
        sender=_sender(headers.get("from", "")),
        sender_text=headers.get("from", ""),
        subject=headers.get("subject", "").strip(),
        text=words,
        signature=signature,
    )


def _sender(text: str) -> Mailbox | None:
    """The From of a forward, however the client wrote it."""
    text = text.strip()
    mailto = _MAILTO.search(text)
    if mailto:  # Outlook: 'Bob Smith [mailto:bob@x]'
        address = mailto.group(1) or mailto.group(2)
        name = _MAILTO.sub("", text).strip().strip('"').strip()
        return Mailbox(" ".join(name.split()), normalize(address)) if is_valid(address) else None
    # HTML converted to text leaves 'Bob Smith < bob@x >'.
    text = re.sub(r"<\s*([^<>\s]+@[^<>\s]+)\s*>", r"<\1>", text)
    return parse_mailbox(text)


def _own_words(text: str) -> tuple[str, str]:
    """A forwarded message's own words and its signature, each trimmed; no quoted history."""
    kept: list[str] = []
    signature: list[str] | None = None
    for line in text.split("\n"):
        if _ATTRIBUTION.match(line.strip()):
            break
        if signature is None and _SIGNATURE.match(line.strip()):
            signature = []
            continue
        (kept if signature is None else signature).append(line.rstrip())
    return "\n".join(kept).strip(), "\n".join(signature or []).strip()
