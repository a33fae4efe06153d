"""Pure: take one person out of a text, so a party can read the need before anyone agreed.

The need is written by the referrer or quoted from the prospect's own mail, so it often
names the other person ("Bob needs…", a signature with a phone number, a LinkedIn link).
Before both said yes, a party sees it with that person replaced by neutral words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from service.reading.text import fold
from service.writing.identifiers import hosts, phones

NAME, EMAIL, PHONE, LINK = "[name]", "[email]", "[phone]", "[link]"

# Links with a scheme or www., and scheme-less ones with a path ("calendly.com/bob-x").
_URL = re.compile(
    r"(?i)\b(?:https?://|www\.)[^\s<>\"')\]]+"
    r"|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s<>\"')\]]*"
)
_EMAIL = re.compile(r"(?i)(?:mailto:)?[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Any run of digits that holds the person's own number, however it is grouped; every other
# phone number goes by its shape (identifiers.phones).
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\(?\d[\d\s\-./()]{4,}\d")
# Letters and the marks that sit on them (Arabic harakat, combining accents) make a word.
_WORD = re.compile(r"[\w\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670]+")
_REPEATED_NAME = re.compile(r"\[name\](?:[\s.,'’-]*\[name\])+")
# What each pattern above cannot match without: a look for it is a scan in C, where the
# patterns try every position, and most needs hold no link, address or phone number.
_LINK_MARK = re.compile(r"(?i)/|www\.")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Person:
    name: str = ""
    email: str = ""
    phone: str = ""
    booking: str = ""


def name_words(person: Person) -> set[str]:
    """The words that name someone: parts of the name, and of the address's local part."""
    words = {fold(w) for w in _WORD.findall(person.name) if len(w) >= 2}
    local = person.email.split("@", 1)[0]
    words |= {fold(w) for w in re.split(r"[._+\-\d]+", local) if len(w) >= 3}
    if len(local) >= 3:
        words.add(fold(local))
    return words


def redact(text: str, person: Person) -> str:
    """The text with every trace of `person` (and every address and phone number) replaced."""
    return redactor(person)(text)


def redactor(person: Person) -> Callable[[str], str]:
    """`redact` for several texts about one person (a need, a budget, a time to call), the
    words that name them found once."""
    words = name_words(person)
    return lambda text: _redacted(text, person, words) if text else text


def _redacted(text: str, person: Person, words: set[str]) -> str:
    if _LINK_MARK.search(text):
        text = _URL.sub(_link, text)
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    domain = person.email.rsplit("@", 1)[-1] if "@" in person.email else ""
    if "." in domain and may_hold(text, domain):  # their site without a scheme: "bakery.example"
        text = re.sub(rf"(?i)(?<![\w.-]){re.escape(domain)}(?![\w-])", LINK, text)
    if "." in text:  # anyone's site without a scheme: "backstube-kreuzberg.de"
        text = hosts(text, LINK)
    if _DIGIT.search(text):
        text = _redact_phones(text, person)
    if any(may_hold(text, word) for word in words):
        text = _redact_words(text, words)
    if NAME in text:
        text = _REPEATED_NAME.sub(NAME, text)
    return text


def may_hold(text: str, word: str) -> bool:
    """False only where `text` cannot hold `word` in any case: an ASCII text that does not
    hold it lowered. For any other text, the patterns decide (case-blind matching knows
    letters, the long s or the Kelvin sign, that `lower` does not)."""
    if not (text.isascii() and word.isascii()):
        return True
    return word.lower() in text.lower()


def _link(found: re.Match[str]) -> str:
    # Every link goes, not only those that spell the person: a booking page, a LinkedIn
    # profile or a shop under a made-up slug identifies someone just as well. A sentence's
    # closing punctuation is not part of the link it ends with.
    url = found.group(0).rstrip(".,;:!?")
    return LINK + found.group(0)[len(url) :]


def _redact_phones(text: str, person: Person) -> str:
    own = re.sub(r"\D", "", person.phone)
    tail = own[-7:] if len(own) >= 7 else ""

    def theirs(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return PHONE if tail and tail in digits else match.group(0)

    return phones(_DIGIT_RUN.sub(theirs, text), PHONE)


def _redact_words(text: str, words: set[str]) -> str:
    if not words:
        return text
    return _WORD.sub(lambda m: NAME if fold(m.group(0)) in words else m.group(0), text)
