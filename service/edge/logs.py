"""Log lines an operator may forward anywhere: from WARNING up, no person's address.

Warnings and errors travel (to a chat channel, a ticket, a monitoring service); the people
a referral names never agreed to that. Each call site logs ids and purposes, but an
exception's text or a relay's reply may still carry an address, so the last word is here,
over the whole formatted line, traceback included. Addresses at the service's own domain
(its Message-IDs, its mailboxes) name nobody and stay, so a line can still be traced.
"""

from __future__ import annotations

import logging
import re

from service.reading.relay_replies import ADDRESS

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class MaskingFormatter(logging.Formatter):
    def __init__(self, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.own_domains: set[str] = set()

    def keep_domain(self, domain: str) -> None:
        """Leave addresses at this domain (and its subdomains) readable."""
        if domain:
            self.own_domains.add(domain.lower())

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno < logging.WARNING:
            return line
        return ADDRESS.sub(self._mask, line)

    def _mask(self, match: re.Match[str]) -> str:
        domain = match[0].rpartition("@")[2].lower()
        if any(domain == d or domain.endswith("." + d) for d in self.own_domains):
            return match[0]
        return "[address]"


def install(level: int) -> MaskingFormatter:
    """Log to stderr at `level` through the masking formatter; the formatter, to be told the
    service's domain once the settings are read."""
    formatter = MaskingFormatter()
    root = logging.getLogger()
    # As logging.basicConfig: a program that embeds us (or a test run) keeps its own handlers.
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        root.addHandler(handler)
        root.setLevel(level)
    return formatter
