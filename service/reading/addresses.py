"""Mailboxes: parse `Name <addr>`, `addr (Name)` or a bare address; match allowed referrers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formataddr, getaddresses

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
