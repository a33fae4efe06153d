"""Postfix's SMTP access policy delegation (check_policy_service): refuse at RCPT.

The protocol: Postfix sends name=value lines, an empty line ends a request, and we answer
`action=...` and an empty line, for as many requests as it sends on one connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from service.intake.screening import rcpt_refusal
from service.settings import Settings
from store.db import DatabaseUnavailable, RunDb

log = logging.getLogger(__name__)

DUNNO = "DUNNO"
# Temporary, and only if the rest of Postfix's restrictions would have let the mail in: an
# outage of ours never turns a refusal into a pass, nor a pass into a bounce.
DEFER = "DEFER_IF_PERMIT Service temporarily unavailable"
# Postfix sends about 30 attributes; far more means the peer is not Postfix.
MAX_ATTRIBUTES = 200
MAX_LINE_BYTES = 8192

Decide = Callable[[Mapping[str, str]], Awaitable[str]]


class PolicyProtocolError(ValueError):
    """The peer does not speak the policy protocol; its connection is closed."""


def parse_line(line: bytes) -> tuple[str, str]:
    """One name=value attribute; values may hold '=' (a sender's address may)."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    name, equals, value = text.partition("=")
    if not equals or not name:
        # Not the line itself: it may carry an address, and this goes to a warning.
        raise PolicyProtocolError("a line that is not name=value")
    return name, value


def parse_request(lines: list[bytes]) -> dict[str, str]:
    """A request's attributes; a repeated name keeps its last value, as Postfix's own do."""
    return dict(parse_line(line) for line in lines)


def answer(action: str) -> bytes:
    """The reply to one request: its action line, then the empty line that ends it."""
    # A line break in the text would end the answer early and desynchronise the connection.
    action = " ".join(action.split())
    return f"action={action}\n\n".encode()


def action_for(refusal: str | None) -> str:
    """REJECT with the refusal's status and text, else DUNNO (the next restriction decides)."""
    return f"REJECT {refusal}" if refusal else DUNNO


def is_rcpt(request: Mapping[str, str]) -> bool:
    """Only RCPT carries the recipient we judge; every other stage is left to Postfix."""
    return (
        request.get("request") == "smtpd_access_policy"
        and request.get("protocol_state", "").upper() == "RCPT"
    )


async def read_request(reader: asyncio.StreamReader) -> list[bytes] | None:
    """The lines of one request, or None when the peer closed between requests."""
    lines: list[bytes] = []
    while len(lines) <= MAX_ATTRIBUTES:
        line = await reader.readline()
        if not line:
            if lines:
                raise PolicyProtocolError("connection closed in the middle of a request")
            return None
        if line in (b"\n", b"\r\n"):
            if lines:
                return lines
            continue  # a stray empty line between requests carries nothing to answer
        lines.append(line)
    raise PolicyProtocolError(f"more than {MAX_ATTRIBUTES} attributes in one request")


def decider(settings: Settings, run_db: RunDb) -> Decide:
    """The service's decisions, with the store asked off the event loop."""

    async def decide(request: Mapping[str, str]) -> str:
        if not is_rcpt(request):
            return DUNNO
        refusal = await run_db(
            rcpt_refusal, request.get("sender", ""), request.get("recipient", ""), settings
        )
        return action_for(refusal)

    return decide


class PolicyServer:
    def __init__(self, decide: Decide) -> None:
        self.decide = decide
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(
            self._serve, host=host, port=port, limit=MAX_LINE_BYTES
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (lines := await read_request(reader)) is not None:
                writer.write(answer(await self._decide(lines)))
                await writer.drain()
        except (PolicyProtocolError, ValueError) as exc:
            # ValueError: a line longer than the limit; such a peer is not Postfix.
            log.warning("closed a policy connection that did not speak the protocol: %s", exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # Postfix went away (it closes idle connections itself)
        finally:
            writer.close()

    async def _decide(self, lines: list[bytes]) -> str:
        try:
            return await self.decide(parse_request(lines))
        except PolicyProtocolError as exc:
            log.warning("policy answered DEFER_IF_PERMIT to a malformed request: %s", exc)
        except DatabaseUnavailable as exc:
            log.warning("policy answered DEFER_IF_PERMIT, the database is unavailable: %s", exc)
        except Exception:
            log.exception("policy answered DEFER_IF_PERMIT after an internal error")
        return DEFER
