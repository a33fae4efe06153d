"""Pure: the words a person wrote in a reply, without what they quoted or signed.

Clients quote our mail below ("Reply yes or no …"), above (Thunderbird, bottom-posting), or
unmarked under a header block (Outlook), and each writes its attribution and signature lines
in the language of its interface. Every reader of an answer (to a consent question, to a
survey, a mail command) starts from `new_text`.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

from service.reading.bodies import body_text
from service.reading.forwards import SEPARATORS, split_text
from service.reading.labels import fold_label
from service.reading.text import fold_written

# "> text", ">> text", "> > text": a quoted line, whoever quoted it.
QUOTED = re.compile(r"^\s*>")
# The line a client writes above the text it quotes, once wrapped lines are joined.
_ATTRIBUTION = re.compile(
    r"^(?:"
    r"On\s.+\swrote"  # Gmail, Apple Mail, Thunderbird, Outlook for Mac
    r"|Am\s.+\sschrieb(?:\s.*)?"
    r"|Le\s.+\sa\s[ée]crit"
    r"|(?:[ÎI]n|Pe|La)\s.+\sa\sscris"
    r"|Pada\s.+\smenulis"
    r"|في\s.+\s(?:كتب|تمت كتابة ما يلي بواسطة)(?:\s.*)?"
    r")\s*[:：]\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_LINES = 3
_ATTRIBUTION_CHARS = 400
# "-- " (RFC 3676), "--", and the dashes some clients put there instead.
_SIGNATURE = re.compile(r"^(?:--|—|–|__)$")
# What phones and apps append, in the six languages, folded (see `text.fold_written`): "Sent from my
# iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Trimis de pe iPhone",
# "Dikirim dari iPhone saya", "أُرسلت من الـ iPhone", "Get Outlook for iOS" and kin.
_SENT_FROM = re.compile(
    r"^(?:"
    r"sent (?:from|with|via) .{1,60}"
    r"|get outlook for (?:ios|android).*"
    r"|von meinem .{1,40} gesendet.*"
    r"|gesendet (?:von|mit|vom) .{1,60}"
    r"|outlook fur (?:ios|android) (?:beziehen|herunterladen).*"
    r"|envoye (?:de|depuis|a partir de) .{1,60}"
    r"|obtenir outlook pour (?:ios|android).*"
    r"|trimis (?:de pe|din|de la|cu) .{1,60}"
    r"|(?:obtine|obtineti|descarca|descarcati) outlook (?:pentru|pe) (?:ios|android).*"
    r"|dikirim (?:dari|dengan|melalui|lewat) .{1,60}"
    r"|(?:dapatkan|unduh) outlook (?:untuk|for|di) (?:ios|android).*"
    r"|(?:تم )?(?:ارسلت|ارسل|الارسال|ارسالها|ارساله|مرسل|مرسله) من .{1,60}"
    r"|(?:احصل|الحصول) على outlook .*"
    r")$"
)
# Separators of a quoted or forwarded original that forwards.py does not list.
_MORE_SEPARATORS = (
    "original message",
    "reply message",
    "ursprungliche nachricht",
    "originalnachricht",
    "message original",
    "mesaj original",
    "pesan asli",
    "pesan awal",
    "الرسالة المعاد توجيهها",
    "الرسالة الاصلية",
    "رسالة اصلية",
)
_SEPARATOR_WORDS = {fold_label(s) for s in (*SEPARATORS, *_MORE_SEPARATORS)}
_RULE = re.compile(r"^[_\-–—=*]{20,}$")


def new_text(message: EmailMessage) -> str:
    """The words the person wrote in this reply: no quoted original, no attribution line
    ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "În … a scris:", "Pada … menulis:",
    "في … كتب:"), no Outlook "-----Original Message-----"/underscore-rule + From/Sent/To/Subject
    block (in all six languages), no Gmail/Apple forward blocks, no signature ("-- ", "Sent
    from my iPhone" and its translations, "Von meinem iPhone gesendet", "Envoyé de mon
    iPhone", "Trimis de pe iPhone", "Dikirim dari iPhone saya", "أُرسلت من الـ iPhone", "Get
    Outlook for Android/iOS" …)."""
    return own_words(body_text(message) or "")


def own_words(text: str) -> str:
    """`new_text` for a body already read as text."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if QUOTED.match(line):
            index += 1
            continue
        span = _attribution_span(lines, index)
        if span:
            following = _next_written(lines, index + span)
            if following is not None and QUOTED.match(lines[following]):
                index += span  # the quote it introduces is skipped line by line
                continue
            break  # an unmarked original (HTML made text): everything below is theirs
        if _ends_own_words(line):
            break
        kept.append(line)
        index += 1
    # Outlook's header block ("From: … Sent: … To: … Subject: …" in the client's language),
    # with the rule or "-----Original Message-----" line above it.
    own = split_text("\n".join(kept)).own
    return _tidy(own)


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines the attribution starting here takes (Gmail wraps it), else 0."""
    parts: list[str] = []
    for offset in range(_ATTRIBUTION_LINES):
        if index + offset >= len(lines):
            break
        line = lines[index + offset].strip()
        if not line or (offset and QUOTED.match(line)):
            break
        parts.append(line)
        joined = " ".join(parts)
        if len(joined) > _ATTRIBUTION_CHARS:
            break
        if _ATTRIBUTION.match(joined):
            return offset + 1
    return 0


def _next_written(lines: list[str], start: int) -> int | None:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return index
    return None


def _ends_own_words(line: str) -> bool:
    """A signature, a phone's "Sent from …", or the separator above a forward or original."""
    stripped = line.strip()
    if not stripped:
        return False
    if _SIGNATURE.match(stripped) or _RULE.match(stripped) or is_sent_from(stripped):
        return True
    words = fold_label(re.sub(r"[-_=–—*:]+", " ", stripped))
    return words in _SEPARATOR_WORDS


def is_sent_from(line: str) -> bool:
    """A phone's or an app's "Sent from my iPhone" line, in any of our languages."""
    folded = " ".join(fold_written(line).split())
    return len(folded) <= 100 and bool(_SENT_FROM.match(folded))


def _tidy(text: str) -> str:
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
