"""Mailboxes: parse `Name <addr>`, `addr (Name)` or a bare address; match allowed referrers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import formataddr, getaddresses
from functools import lru_cache

# Deliberately plain: a dot-atom or quoted local part, and a domain with at least one dot
# or "localhost". Mail we send to a typo is worse than a clear "that address looks wrong".
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uffff-]+"
_LOCAL = rf"(?:{_ATOM}(?:\.{_ATOM})*)"
_LABEL = r"(?:[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]{0,61}[A-Za-z0-9\u0080-\uffff])?)"
_ADDR = re.compile(rf"^{_LOCAL}@(?:{_LABEL}(?:\.{_LABEL})+|localhost)$")


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str

    def __str__(self) -> str:
        return formataddr((self.name, self.address)) if self.name else self.address

    @property
    def display(self) -> str:
        return self.name or self.address


def normalize(address: str) -> str:
    """Compare addresses without regard to case; mail systems we talk to do the same."""
    return address.strip().strip("<>").strip().lower()


def is_valid(address: str) -> bool:
    return len(address) <= 254 and bool(_ADDR.match(address))


def parse_mailbox(text: str) -> Mailbox | None:
    """One mailbox from free text, or None when there is not exactly one valid address."""
    text = text.strip()
    if not text:
        return None
    pairs = [(n, a) for n, a in getaddresses([text]) if a]
    if len(pairs) != 1:
        return None
    name, address = pairs[0]
    address = address.strip()
    if not is_valid(address):
        return None
    return Mailbox(name=" ".join(name.split()), address=normalize(address))


# Admission reads the one From of every message several times over (who to ask the store
# about, then the verdict, then the referrer), and a referrer sends many: parsed once each.
# Bounded in count, each value by the header caps; a Mailbox is immutable, safe to share.
@lru_cache(maxsize=256)
def single_mailbox(value: str) -> Mailbox | None:
    """The one mailbox an address header's raw value names, or None for anything else.

    Reads in time linear in the value (the stdlib's header registry is quadratic on long
    phrases and adjacent encoded words) and refuses every defect rather than repairing it:
    `ada@ref.test <mallory@evil.test>`, groups, lists, unbalanced quotes or brackets.
    """
    value = " ".join(value.split())  # unfolded
    skeleton = _skeleton(value)
    if skeleton is None or any(c in skeleton for c in ",;:"):
        return None
    if "<" in skeleton or ">" in skeleton:
        before, opened, rest = skeleton.partition("<")
        inside, closed, after = rest.partition(">")
        if not (opened and closed) or after.strip() or "@" in before or ">" in before:
            return None
        if "<" in inside or len(inside.split()) != 1:
            return None
    elif len(skeleton.split()) != 1:
        return None
    pairs = getaddresses([value])
    if len(pairs) != 1 or not is_valid(pairs[0][1]):
        return None
    return Mailbox(display_name(pairs[0][0]), normalize(pairs[0][1]))


def display_name(raw: str, most_encoded_words: int = 200) -> str:
    """A display name with its RFC 2047 encoded words decoded, as long as they are few."""
    name = raw
    if "=?" in raw and raw.count("=?") <= most_encoded_words:
        try:
            name = str(make_header(decode_header(raw)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            name = raw
    # Raw 8-bit bytes arrive as surrogates; they must not reach a mail we write.
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(name.split())


def _skeleton(value: str) -> str | None:
    """The value with each quoted string as `q` and comments dropped; None if unbalanced."""
    out: list[str] = []
    quoted, depth, escaped = False, 0, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return None
            depth -= 1
        elif depth:
            continue
        elif char == '"':
            quoted = True
            out.append("q")
        else:
            out.append(char)
    if quoted or depth or escaped:
        return None
    return "".join(out)


def is_allowed(address: str, patterns: Iterable[str]) -> bool:
    """Exact addresses, or `*@domain` for everyone at a domain."""
    address = normalize(address)
    if not is_valid(address):
        return False
    domain = address.rsplit("@", 1)[1]
    for pattern in patterns:
        pattern = normalize(pattern)
        if pattern.startswith("*@"):
            if domain == pattern[2:]:
                return True
        elif address == pattern:
            return True
    return False
