"""Log lines an operator may forward anywhere: above DEBUG, no person's address.

Logs travel (to a collector, a chat channel, a ticket) and are kept longer than the store
keeps a person; the people a referral names never agreed to that. Each call site logs ids,
references and purposes, but an exception's text or a relay's reply may still carry an
address, so the last word is here, over the whole formatted line, traceback included.
DEBUG, turned on to trace one problem, keeps them. Addresses at the service's own domain
(its Message-IDs, its mailboxes) name nobody and stay, so a line can still be traced.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from service.reading.relay_replies import ADDRESS
from service.settings import LoggingSettings

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
        return self.masked(record, super().format(record))

    def masked(self, record: logging.LogRecord, text: str) -> str:
        if record.levelno <= logging.DEBUG:
            return text
        return ADDRESS.sub(self._mask, text)

    def _mask(self, match: re.Match[str]) -> str:
        domain = match[0].rpartition("@")[2].lower()
        if any(domain == d or domain.endswith("." + d) for d in self.own_domains):
            return match[0]
        return "[address]"


class JsonFormatter(MaskingFormatter):
    """One JSON object per line, for a log collector; masked as the text lines are, field by
    field, so the masking never breaks the JSON's quoting."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.masked(record, record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = self.masked(record, self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


@dataclass
class Installed:
    """What `install` set up, to be adjusted once the settings are read."""

    formatter: MaskingFormatter
    handler: logging.Handler | None  # None: the program that embeds us keeps its own

    def apply(self, settings: LoggingSettings, domain: str, floor: int = logging.NOTSET) -> None:
        """Take the configured level (never below `floor`) and format; keep `domain` readable."""
        self.formatter.keep_domain(domain)
        if self.handler is None:
            return
        if settings.format == "json" and not isinstance(self.formatter, JsonFormatter):
            formatter = JsonFormatter()
            formatter.own_domains = self.formatter.own_domains
            self.formatter = formatter
            self.handler.setFormatter(formatter)
        level = logging.getLevelNamesMapping()[settings.level.upper()]
        logging.getLogger().setLevel(max(level, floor))


def install(level: int) -> Installed:
    """Log to stderr at `level` through the masking formatter, until the settings say more."""
    formatter = MaskingFormatter()
    root = logging.getLogger()
    # As logging.basicConfig: a program that embeds us (or a test run) keeps its own handlers.
    if root.handlers:
        return Installed(formatter, None)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    return Installed(formatter, handler)
