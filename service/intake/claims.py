"""Intake's claims on stored messages: who holds one, and which claims nobody works on.

A claim names the process that made it (as the outbox's do) and one run of intake in it,
so a claim left by a run that failed, or by a process that is gone, is taken over at once
instead of after its lease, while a claim some run is still working on is never touched.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterable, Iterator

from service.delivery import holder

_SEPARATOR = "#"


class Claims:
    """The claims this process's runs of intake are working on right now."""

    def __init__(self) -> None:
        self._me = str(holder.this_process())
        self._guard = threading.Lock()
        self._working: set[str] = set()

    @contextlib.contextmanager
    def new(self) -> Iterator[str]:
        """A claim of its own for one run; nobody else's from when it is made until the run
        ends, whatever the lease says."""
        claim = f"{self._me}{_SEPARATOR}{secrets.token_hex(6)}"
        with self._guard:
            self._working.add(claim)
        try:
            yield claim
        finally:
            with self._guard:
                self._working.discard(claim)

    def stale(self, claims: Iterable[str]) -> list[str]:
        """Of `claims`, those no run works on: this process's that no run holds now, and
        those of a process on this host that is no longer running."""
        with self._guard:
            working = set(self._working)
        found = []
        for claim in claims:
            maker, _, _ = claim.partition(_SEPARATOR)
            if maker == self._me:
                if claim not in working:
                    found.append(claim)
                continue
            parsed = holder.parse(maker)
            if parsed is not None and holder.is_gone(parsed):
                found.append(claim)
        return found


# One process, one set of runs: shared by every caller of intake in it.
CLAIMS = Claims()
