"""What became of a stored inbound message: the state it is left in, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Disposition:
    state: str
    note: str
