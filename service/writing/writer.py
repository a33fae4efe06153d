"""A share of a batch's letters, written by a letter writer beside the service.

A letter is almost all CPU (rendering, quoted-printable, tokens, DKIM), and one process
runs its Python on one core at a time. `serve` hands a share of a busy batch to a writer in
a process of its own (`service.edge.letter_writer`) and writes the rest meanwhile. This is
what the two agree on: the job, and what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.clock import Clock
from store.records import OutgoingMail

# One record's letters, or None where they could not be written there.
Written = list[OutgoingMail] | None


@dataclass(frozen=True)
class Job:
    """`letters(ctx, *record, now)` for each record, on the service's clock (tokens read the
    time when they are made). `letters` is a function of its module: it goes by name."""

    letters: Callable[..., list[OutgoingMail]]
    now: datetime
    clock: Clock
    records: Sequence[tuple[Any, ...]]


class Writer(Protocol):
    def share(self, count: int) -> int:
        """How many of `count` records it takes now; 0 when it cannot help."""
        ...

    def write(self, job: Job, meanwhile: Callable[[], object]) -> list[Written] | None:
        """Take `job`, run `meanwhile` here, then give its letters, record by record; None
        where it could not write them. `meanwhile` runs once whatever happens."""
        ...
