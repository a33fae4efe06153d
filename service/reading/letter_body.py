"""Pure: what a person wrote in a letter, without the courtesies around it, in paragraphs.

A forwarded mail opens with a greeting to the referrer ("Hi Ada,", "Hallo Klaus,", "مرحبا
ليلى،") and closes with a sign-off ("Thanks,\\nBob", "Viele Grüße\\nZoë", "Cu stimă,"), often
with a name, a company and a phone number below it. Neither says anything about the need,
and the sign-off names the prospect: once redacted for the provider it reads "[name]
[email]". Mail clients also hard-wrap long lines at 72-78 columns, which mail shown in a
narrower or wider window must not keep.
"""

from __future__ import annotations

import re
from itertools import pairwise

from service.reading.quotes import is_sent_from
from service.reading.text import fold_written, phrases

# Folded (see text.fold_written): case, accents, Arabic hamza and tanween do not matter.
GREETINGS = phrases(
    "hi, hello, hey, dear, good morning, good afternoon, good evening, greetings, morning",
    "hallo, liebe, lieber, liebes, sehr geehrte, sehr geehrter, sehr geehrtes, guten tag,"
    " guten morgen, guten abend, moin, servus, grüß gott, grüezi",
    "bonjour, bonsoir, salut, cher, chère, chers, chères, madame, monsieur, coucou",
    "bună, bună ziua, bună dimineața, bună seara, salut, dragă, dragi, stimate, stimată,"
    " stimați, neața",
    "halo, hai, selamat pagi, selamat siang, selamat sore, selamat malam, yth, yang terhormat,"
    " kepada yth, pak, bu, assalamualaikum",
    "مرحبا, أهلا, اهلا, السلام عليكم, عزيزي, عزيزتي, صباح الخير, مساء الخير, الأستاذ, السيد,"
    " السيدة",
)
SIGN_OFFS = phrases(
    "thanks, thank you, thanks a lot, many thanks, thanks in advance, thank you in advance,"
    " best, best regards, kind regards, regards, warm regards, best wishes, all the best,"
    " cheers, sincerely, yours sincerely, sincerely yours, yours, cordially, take care",
    "viele grüße, liebe grüße, beste grüße, herzliche grüße, schöne grüße, freundliche grüße,"
    " mit freundlichen grüßen, mit besten grüßen, gruß, grüße, vg, lg, mfg, danke,"
    " vielen dank, danke und grüße, danke im voraus, bis bald",
    "cordialement, bien cordialement, bien à toi, bien à vous, merci, merci d'avance,"
    " merci beaucoup, merci par avance, bonne journée, belle journée, à bientôt, amitiés,"
    " bises, salutations, sincères salutations, meilleures salutations",
    "cu stimă, cu respect, cu drag, mulțumesc, mulțumesc frumos, mulțumesc anticipat, mersi,"
    " o zi bună, toate cele bune, numai bine, salutări, pe curând",
    "salam, salam hangat, terima kasih, terima kasih banyak, makasih, hormat saya,"
    " hormat kami, wassalam, salam sukses",
    "مع تحياتي, تحياتي, شكرا, شكرا جزيلا, شكرا لك, مع الشكر, وشكرا, مع خالص التحيات,"
    " مع التحية, والسلام, ودمتم",
)
_GREETING_WORDS = {" ".join(fold_written(p).split()) for p in GREETINGS}
_SIGN_OFF_WORDS = {" ".join(fold_written(p).split()) for p in SIGN_OFFS}
_PUNCT = ",.!:;،؛…"
# A greeting or sign-off is short: a phrase and a name, or the name of a group.
_COURTESY_CHARS = 60
_NAME_WORDS = 4
# Below a sign-off: the name, a title, a company, an address, a phone; not another paragraph.
_TAIL_LINES = 8
_TAIL_CHARS = 80
_SENTENCE_WORDS = 5
# Clients wrap at 72-78 columns; a shorter line ended where its writer pressed return.
_WRAPPED_CHARS = 60
_LIST_ITEM = re.compile(r"^(?:[-*•·–]\s|\d{1,2}[.)]\s|[a-z][.)]\s|\(\w{1,2}\)\s)")
# What redaction leaves of a name, an address, a phone or a link.
_PLACEHOLDERS = re.compile(r"^(?:\[(?:name|email|phone|link)\][\s,.;:<>()/|-]*)+$")


def letter_body(text: str, writer: str = "") -> str:
    """The words of a letter: no greeting, no sign-off block, no "Sent from my iPhone", no
    leftover placeholders at the end; its paragraphs kept, and hard-wrapped lines joined.

    `writer` is the name in the From line: a letter that ends in it alone ("Bob") is signed.
    """
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if not is_sent_from(line)]
    lines = _without_placeholders_at_end(lines)
    lines = _without_sign_off(lines)
    lines = _without_name_at_end(lines, writer)
    lines = _without_placeholders_at_end(lines)
    lines = _without_greeting(lines)
    return "\n\n".join(_reflow(p) for p in _paragraphs(lines))


def reflowed(text: str) -> str:
    """The text in paragraphs, with the lines its client wrapped joined again; all kept."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n\n".join(_reflow(p) for p in _paragraphs(lines))


def is_greeting(line: str) -> bool:
    """'Hi Ada,', 'Hallo zusammen,', 'Bună ziua,', 'Halo Pak Budi,', 'مرحبا ليلى،'."""
    return _opens_with(line, _GREETING_WORDS)


def is_sign_off(line: str) -> bool:
    """'Thanks,', 'Best regards, Bob', 'Viele Grüße', 'Cu stimă,', 'مع تحياتي،'."""
    return _opens_with(line, _SIGN_OFF_WORDS, needs_comma=True)


def _opens_with(line: str, table: set[str], needs_comma: bool = False) -> bool:
    """The line is one of the phrases, alone or followed by a few words (a name).

    A sign-off followed by words needs the comma between ("Thanks, Bob") and no full stop
    after: "Thanks for the quick reply" is a sentence, not a sign-off.
    """
    if not line or len(line) > _COURTESY_CHARS:
        return False
    folded = " ".join(fold_written(line).split()).rstrip(_PUNCT + " ")
    if folded in table:
        return True
    for phrase in table:
        if not folded.startswith(phrase):
            continue
        rest = folded[len(phrase) :]
        if not rest[:1] or rest[0] not in " " + _PUNCT:
            continue  # "Hi" opens "Hi Ada", not "History"
        if needs_comma and rest.lstrip()[:1] not in (",", "،", "-", "–"):
            continue
        if needs_comma and line[-1] in ".?!؟":
            continue  # "Thanks, Ada, for the tip." is a sentence; a name ends in no full stop
        if len(rest.strip(_PUNCT + " -–").split()) <= _NAME_WORDS:
            return True
    return False


def _without_greeting(lines: list[str]) -> list[str]:
    first = next((i for i, line in enumerate(lines) if line), None)
    if first is None or not is_greeting(lines[first]):
        return lines
    line = lines[first]
    # A greeting has its line to itself: it ends in a mark, or a blank line follows. "Hi Ada"
    # running on into the next line may be the start of a sentence, which we keep.
    followed_by_blank = first + 1 >= len(lines) or not lines[first + 1]
    if not (line[-1] in _PUNCT or followed_by_blank):
        return lines
    rest = lines[first + 1 :]
    start = next((i for i, text in enumerate(rest) if text), None)
    if start is not None and line[-1] in ",،":
        # After "Hallo Klaus," German and Romanian go on in lower case; alone, it starts.
        rest[start] = rest[start][:1].upper() + rest[start][1:]
    return rest


def _without_sign_off(lines: list[str]) -> list[str]:
    """Everything from the sign-off on, when what follows it is only a short block."""
    written = [i for i, line in enumerate(lines) if line]
    tail = written[-(_TAIL_LINES + 1) :]
    for position, index in enumerate(tail):
        below = tail[position + 1 :]
        if is_sign_off(lines[index]) and all(_signs(lines[i]) for i in below):
            return lines[:index]
    return lines


def _signs(line: str) -> bool:
    """A line of a signature block (a name, a title, an address, a phone), not a sentence:
    "Thanks!" followed by "We also need it by Friday." is no sign-off."""
    sentence = line[-1] in ".?!؟" and len(line.split()) >= _SENTENCE_WORDS
    return len(line) <= _TAIL_CHARS and not sentence


def _without_name_at_end(lines: list[str], writer: str) -> list[str]:
    names = {fold_written(word) for word in re.findall(r"\w+", writer)}
    end = len(lines)
    while end and not lines[end - 1]:
        end -= 1
    last = lines[end - 1] if end else ""
    words = [fold_written(word) for word in re.findall(r"\w+", last)]
    if words and len(words) <= _NAME_WORDS and set(words) <= names:
        return lines[: end - 1]
    return lines


def _without_placeholders_at_end(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and (not lines[end - 1] or _PLACEHOLDERS.match(lines[end - 1])):
        end -= 1
    return lines[:end]


def _paragraphs(lines: list[str]) -> list[list[str]]:
    found: list[list[str]] = [[]]
    for line in lines:
        if line:
            found[-1].append(line)
        elif found[-1]:
            found.append([])
    return [p for p in found if p]


def _reflow(paragraph: list[str]) -> str:
    """One paragraph: wrapped lines joined, list items and short lines kept as lines."""
    out = [paragraph[0]]
    for previous, line in pairwise(paragraph):
        if len(previous) >= _WRAPPED_CHARS and not _LIST_ITEM.match(line):
            out[-1] += " " + line
        else:
            out.append(line)
    return "\n".join(out)
