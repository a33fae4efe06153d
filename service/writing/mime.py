"""Pure: the bytes of a mail we write, headers folded and encoded, bodies 7-bit.

The stdlib's EmailMessage with `email.policy.default` parses every header it is given into
a tree and refolds it on output: a third of all CPU under load. Every header we write has a
shape we know, so it is written here directly: words joined by single spaces and folded at
them, RFC 2047 encoded words where text is not plain ASCII, and the stdlib's C encoders
(base64, quoted-printable) for the rest.
"""

from __future__ import annotations

import hashlib
import re
from binascii import b2a_base64, b2a_qp
from collections.abc import Iterable, Sequence

LINE = 78
# UTF-8 bytes in one encoded word: "=?utf-8?b?" + 52 base64 characters + "?=" is 64 columns,
# which fits after the longest header name that carries one ("Reply-To: "), so every line
# holds exactly one and never needs measuring twice.
_WORD_BYTES = 39
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_ESCAPE = re.compile(r'([\\"])')
# A body goes as it is only when it holds nothing but these (printable ASCII, tab, LF) and
# no line longer than a header's (RFC 5322 allows 998, but readers and relays that wrap at
# 78 columns break what they wrap; quoted-printable lines stay within 76). Deleting them
# is one pass in C; a pattern looking for anything else took a third of building a part.
_SEVEN_BIT = b"\t\n" + bytes(range(0x20, 0x7F))
_MOST_OCTETS = LINE


def header(name: str, words: Iterable[str]) -> str:
    """`Name: words…`, folded before a word that would pass column 78.

    A word longer than a line (a Message-ID, a URL) stays whole: it cannot be folded, and
    on the first line, because a fold before the first word reaches readers as a leading
    space.
    """
    lines: list[str] = []
    line = name + ":"
    first = True
    for word in words:
        if not first and len(line) + 1 + len(word) > LINE:
            lines.append(line)
            line = ""
        line += " " + word
        first = False
    lines.append(line)
    return "\n".join(lines) + "\n"


def text_words(value: str) -> list[str]:
    """An unstructured value (a subject) as words that read back exactly as `value`.

    Plain when it is ASCII with no word too long for a line and nothing a reader would take
    for an encoded word; else encoded words, which readers join without the space between
    them, so the value's own spaces travel inside.
    """
    words = value.split(" ")
    if value.isascii() and "=?" not in value and max(map(len, words)) <= LINE - 12:
        return words
    return encoded_words(value)


def encoded_words(value: str) -> list[str]:
    """RFC 2047 `=?utf-8?b?…?=` words, each cut at a character boundary, never inside a
    multibyte character, so each word decodes alone.

    Cut after a space where one is near: a reader that wrongly keeps the whitespace between
    encoded words in a display name (Python 3.11's address parser does) then shows a doubled
    space, not a name broken in two.
    """
    data = value.encode("utf-8")
    size = len(data)
    words = []
    start = 0
    while start < size:
        end = start + _WORD_BYTES
        if end >= size:
            end = size
        else:
            space = data.rfind(b" ", start + 1, end)
            if space > start:
                end = space + 1
            else:
                while data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte
                    end -= 1
        chunk = b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"=?utf-8?b?{chunk}?=")
        start = end
    return words


def mailbox_words(name: str, address: str) -> list[str]:
    """`Name <address>` as words; `name` and `address` already free of control characters.

    A name that is plain ASCII goes as it is, quoted when it holds a character that means
    something in an address (a comma, a dot, a quote); any other name as encoded words.
    """
    address = ascii_address(address)
    if not name:
        return [address]
    angle = f"<{address}>"
    if name.isascii() and "=?" not in name:
        if _SPECIALS.search(name):
            name = '"' + _ESCAPE.sub(r"\\\1", name) + '"'
        words = name.split(" ")
        if max(map(len, words)) <= LINE - 12:
            return [*words, angle]
    return [*encoded_words(name), angle]


def address_list(mailboxes: Iterable[tuple[str, str]]) -> list[str]:
    """Several mailboxes' words, separated by commas."""
    words: list[str] = []
    for name, address in mailboxes:
        if words:
            words[-1] += ","
        words.extend(mailbox_words(name, address))
    return words


def ascii_address(address: str) -> str:
    """The address as a header without SMTPUTF8 must carry it: an internationalised domain
    as its A-label (xn--…). A local part that is not ASCII has no such form: ValueError."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(f"{address!r} has a local part that is not ASCII")
    return local + at + domain.encode("idna").decode("ascii")


def text_part(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, body) of one text part, LF line ends, ending in one LF.

    7bit when the text is printable ASCII in lines of at most 78 octets; quoted-printable
    otherwise (not 8bit: 8BITMIME is not a given on every relay). Any CR becomes a line
    end, as the stdlib's own builder does.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    data = text.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    if not data.translate(None, _SEVEN_BIT) and (
        len(data) <= _MOST_OCTETS or max(map(len, data.split(b"\n"))) <= _MOST_OCTETS
    ):
        return "7bit", data
    return "quoted-printable", b2a_qp(data, istext=True)


def boundary(seed: str, bodies: Sequence[bytes]) -> str:
    """A multipart boundary no body holds, the same for the same mail.

    "=_" never occurs in quoted-printable, and a 7bit body holds a given boundary only by
    quoting it: each try is a new one, and a body of n bytes holds fewer than n of them.
    """
    limit = sum(len(body) for body in bodies) + 1
    for attempt in range(limit):
        digest = hashlib.blake2b(f"{attempt}:{seed}".encode(), digest_size=15).hexdigest()
        mark = "=_" + digest
        encoded = mark.encode("ascii")
        if not any(encoded in body for body in bodies):
            return mark
    raise AssertionError("unreachable: more boundaries tried than the bodies could hold")
