"""How much memory `serve` holds after many referrals, against the same process idle."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness import Relay, Row, Serve, bound, database_url, settings_for
from smtp_load import request, send_load

from store import queries

TARGET_MB = 200
TARGET_AT = 100_000
BATCH = 5000


def _backlog() -> int:
    return queries.intake_backlog()


def memory(referrals: int, seconds: float) -> list[Row]:
    """Requests sent in batches to one serve on SQLite, each processed before the next
    batch; its high-water mark of resident memory then, and idle after start."""
    with tempfile.TemporaryDirectory() as tmp, Relay(Relay.best()) as relay:
        folder = Path(tmp)
        url = database_url(folder)
        with Serve(folder, settings_for(folder, url, relay.port)) as serve:
            time.sleep(1)  # the first kicks of every worker have run
            _, idle = serve.memory_kb()
            deadline = time.monotonic() + seconds
            accepted = 0
            for first in range(0, referrals, BATCH):
                count = min(BATCH, referrals - first)
                batch = [request(n, "mem") for n in range(first, first + count)]
                load = send_load(serve.port, batch, 16, deadline - time.monotonic())
                accepted += load.codes[250]
                with bound(url):
                    while _backlog() and time.monotonic() < deadline:
                        time.sleep(0.2)
                if time.monotonic() >= deadline:
                    break
            rss, peak = serve.memory_kb()
            with bound(url):
                processed = queries.referral_counts()
    done = sum(processed.values())
    judged = done >= TARGET_AT
    return [
        Row(
            f"serve's resident memory (VmHWM) after {done:,} referrals on SQLite "
            f"({accepted:,} requests accepted); idle after start as baseline",
            f"{idle / 1024:.0f} MB",
            f"{peak / 1024:.0f} MB (now {rss / 1024:.0f} MB)",
            f"{peak / idle:.2f}×",
            f"≤ {TARGET_MB} MB at {TARGET_AT:,}",
            peak / 1024 <= TARGET_MB if judged else None,
        )
    ]
