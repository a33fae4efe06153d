"""What a relay said when it refused a mail: the reply about one address, and the same text
with every address taken out for the log.

The outbox keeps a failure as the text the transport wrote: "relay said 554 5.7.1 …" for a
refusal of the whole mail, "every recipient refused: a@x: 550 …; b@y: 550 …" for refusals
at RCPT, one reply per recipient.
"""

from __future__ import annotations

import re

# Loose on purpose: a relay's text may wrap an address in <>, quotes or brackets, and we
# would rather mask a word too many in a log than leave an address in it.
ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_PER_RECIPIENT = re.compile(
    r"(?P<rcpt>[^\s:;<>]+@[^\s:;<>]+): (?P<reply>[45]\d\d\b.*?)"
    r"(?=; [^\s:;<>]+@[^\s:;<>]+: [45]\d\d\b|$)",
    re.S,
)
_WHOLE_MAIL = re.compile(r"\bsaid (?P<reply>[45]\d\d\b.*)", re.S)
LONGEST = 300


def without_addresses(text: str) -> str:
    """The text with every address replaced, for log lines anyone may read."""
    return ADDRESS.sub("[address]", text)


def reply_about(error: str, address: str) -> str:
    """The relay's reply (code and text) that refused mail to `address`, naming no other
    address; "" when the failure was no reply at all (a relay that could not be reached)."""
    replies = {m["rcpt"].lower(): m["reply"] for m in _PER_RECIPIENT.finditer(error)}
    if replies:
        reply = replies.get(address.lower(), "")
    else:
        whole = _WHOLE_MAIL.search(error)
        reply = whole["reply"] if whole else ""
    kept = ADDRESS.sub(lambda m: m[0] if m[0].lower() == address.lower() else "[address]", reply)
    return " ".join(kept.split())[:LONGEST]
