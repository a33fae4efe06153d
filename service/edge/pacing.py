"""Pure: while mail is arriving, intake lets the SMTP edge have the CPU, for a bounded time.

One process answers SMTP and works through what it stored, and Python runs one thread at a
time. Intake working beside a burst of arrivals halves the rate at which the edge can answer,
and an MTA whose message waits for its 250 holds its connection. So, while messages keep
arriving, intake waits for a quiet moment, but never longer than `patience` after the
first message it has not taken up yet; past that, it works a `share` of the time and leaves
the rest to the edge until arrivals stop. Every message is stored before its 250 either
way: this only decides how soon it is taken up.
"""

from __future__ import annotations

# No message for this long: the edge is quiet, intake may run.
QUIET_SECONDS = 0.05
# The longest a stored message waits for intake while mail keeps arriving.
PATIENCE_SECONDS = 2.0
# Past its patience, while mail still arrives, the part of the time intake works.
SHARE = 1 / 3
LONGEST_REST_SECONDS = 1.0


class Arrivals:
    """When a message was last stored, and since when some have waited for intake."""

    def __init__(
        self, quiet: float = QUIET_SECONDS, patience: float = PATIENCE_SECONDS, share: float = SHARE
    ) -> None:
        self.quiet = quiet
        self.patience = patience
        self.share = share
        self.last: float | None = None
        self.waiting_since: float | None = None

    def arrived(self, at: float) -> None:
        self.last = at
        if self.waiting_since is None:
            self.waiting_since = at

    def drained(self) -> None:
        """Intake found nothing more to take up."""
        self.waiting_since = None

    def pause(self, at: float) -> float:
        """How long intake should wait before its next batch; 0 to run now."""
        if self.last is None or at - self.last >= self.quiet:
            return 0.0
        if self.waiting_since is None:
            return 0.0
        left = self.patience - (at - self.waiting_since)
        return min(self.quiet, left) if left > 0 else 0.0

    def rest(self, at: float, spent: float) -> float:
        """After a batch that took `spent` seconds: how long to leave the CPU to the edge."""
        if self.last is None or at - self.last >= self.quiet:
            return 0.0
        return min(spent * (1 - self.share) / self.share, LONGEST_REST_SECONDS)
