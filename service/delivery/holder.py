"""Who holds an outbox claim: a host, a process on it, and when that process started.

The start time tells a live process from a later one that was given the same pid (a
restarted container's `serve` is often pid 1 again), so a successor never mistakes its dead
predecessor's claims for live ones, nor a live neighbour's for dead ones.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
# Where the kernel does not say when a process started, any live pid counts as the holder.
_FALLBACK_START = "?"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.started}"


def parse(text: str) -> Holder | None:
    """The holder a `claimed_by` value names, or None for anything else."""
    host, _, rest = text.rpartition("/")
    host, _, pid = host.rpartition("/")
    if not host or not pid.isdigit() or not rest:
        return None
    return Holder(host, int(pid), rest)


def this_process() -> Holder:
    pid = os.getpid()
    return Holder(_hostname(), pid, start_of(pid) or _FALLBACK_START)


def start_of(pid: int) -> str | None:
    """When process `pid` started, as the kernel counts it; None if there is no such process.

    Without /proc (not Linux) a live pid counts as the same process that claimed.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _alive_without_proc(pid)
    # The command name (field 2) may hold spaces and parentheses; the fields after its
    # closing parenthesis start at field 3, so field 22 (starttime) is the 20th of them.
    return stat.rpartition(")")[2].split()[19]


def is_gone(holder: Holder) -> bool:
    """Whether a holder on this host is no longer running (a holder elsewhere: unknown, so
    False; its claims run out with their lease)."""
    if holder.host != _hostname():
        return False
    started = start_of(holder.pid)
    if started is None:
        return True
    return started not in (holder.started, _FALLBACK_START)


def _alive_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # someone else's process: alive
    return _FALLBACK_START


def _hostname() -> str:
    # "/" separates the parts of a holder; a host name never has one, but be sure.
    return socket.gethostname().replace("/", "_")
