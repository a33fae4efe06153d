"""What became of a stored inbound message: the state it is left in, and why."""

from __future__ import annotations

from dataclasses import dataclass

from service.model import InboundState


@dataclass(frozen=True)
class Disposition:
    state: InboundState
    note: str
