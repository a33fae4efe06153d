"""What a health check and a metrics scrape cost as the store grows.

Builds two SQLite stores that differ only in how much finished work they hold (sent mails,
handled messages, referrals): the baseline, and one `factor` times larger, with the same
few mails pending and messages new. Times the health check's questions and a whole scrape
on each, in this run, and prints the ratios large/baseline. The health check should stay
near 1 (it reads the partial indexes of what is pending); the scrape reads whole tables
for its by-state figures and grows with them.

    python bench/health_check.py [--small 2000] [--factor 50] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import generate_latest

from service.edge.metrics import Metrics
from store import db, queries
from store.models import InboundMessage, OutboxMail, Referral

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
PENDING = 10
CHUNK = 500


def fill(done: int) -> None:
    """`done` sent mails, handled messages and evaluated referrals; PENDING of each kind
    still to go."""
    long_ago = NOW - timedelta(days=200)
    for start in range(0, done + PENDING, CHUNK):
        batch = range(start, min(start + CHUNK, done + PENDING))
        with db.transaction():
            InboundMessage.insert_many(
                {
                    "dedupe_key": f"k{i}",
                    "envelope_from": "ada@example.org",
                    "recipients": "refer@intro.example.org",
                    "via": "smtp",
                    "raw": b"Subject: x\r\n\r\nbody\r\n",
                    "received_at": long_ago,
                    "state": "processed" if i < done else "new",
                }
                for i in batch
            ).execute()
            Referral.insert_many(
                {
                    "ref": f"R-{i:09d}",
                    "state": "evaluated" if i < done else "asking",
                    "referrer_email": "ada@example.org",
                    "need": "bookkeeping for a small bakery",
                    "language": "en",
                    "created_at": long_ago,
                    "updated_at": long_ago,
                    "expires_at": long_ago + timedelta(days=14),
                }
                for i in batch
            ).execute()
            OutboxMail.insert_many(
                {
                    "message_id": f"<m{i}@intro.example.org>",
                    "purpose": "consent_request",
                    "envelope_from": "refer@intro.example.org",
                    "recipients": f"p{i}@example.net",
                    "raw": b"Subject: x\r\n\r\nbody\r\n",
                    "state": "sent" if i < done else "pending",
                    "created_at": long_ago if i < done else NOW,
                    "due_at": long_ago if i < done else NOW,
                    "sent_at": long_ago if i < done else None,
                }
                for i in batch
            ).execute()


def median_ms(job: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        job()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def health() -> None:
    assert queries.oldest_pending_mail() == NOW
    assert queries.intake_backlog() == PENDING


def measure(folder: Path, done: int, rounds: int) -> tuple[float, float]:
    """Median ms of the health check's questions, and of a whole scrape."""
    db.bind(f"sqlite:///{folder / f'store-{done}.db'}")
    fill(done)
    registry = Metrics(asyncio.to_thread).registry
    try:
        return median_ms(health, rounds), median_ms(lambda: generate_latest(registry), rounds)
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="finished rows, baseline")
    parser.add_argument("--factor", type=int, default=50, help="how much larger the other is")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = measure(folder, args.small, args.rounds)
        large = measure(folder, args.small * args.factor, args.rounds)
    print(
        f"pending mails and new messages: {PENDING}; finished rows of each: {args.small} vs "
        f"{args.small * args.factor}"
    )
    print(
        f"health check: baseline {small[0]:8.3f} ms   large {large[0]:8.3f} ms   "
        f"ratio {large[0] / small[0]:.2f}"
    )
    print(
        f"scrape:       baseline {small[1]:8.3f} ms   large {large[1]:8.3f} ms   "
        f"ratio {large[1] / small[1]:.2f}"
    )


if __name__ == "__main__":
    main()
