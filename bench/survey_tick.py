"""How a survey tick's cost depends on what is stored: it should follow what is due.

Builds two SQLite stores that differ only in how many finished surveys they hold (the
baseline, and one 100 times larger), with the same number of surveys due, and times the
same tick on each in this run. Prints milliseconds and the ratio large/baseline; a ratio
near 1 means the work follows what is due, not the size of the table.

    python bench/survey_tick.py [--small 1000] [--factor 100] [--due 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.evaluation import surveys
from service.settings import Settings
from service.writing.context import make_context
from store import db
from store.models import Party, Referral, Survey

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
CHUNK = 500


def fill(finished: int, due: int) -> None:
    """`finished` evaluated referrals with answered surveys, and `due` introduced ones whose
    surveys are due at NOW."""
    long_ago = NOW - timedelta(days=400)
    for start in range(0, finished + due, CHUNK):
        batch = range(start, min(start + CHUNK, finished + due))
        with db.transaction():
            rows = [
                {
                    "ref": f"R-{i:09d}",
                    "state": "evaluated" if i < finished else "introduced",
                    "referrer_email": f"referrer{i % 97}@example.org",
                    "need": "bookkeeping for a small bakery",
                    "language": "en",
                    "created_at": long_ago,
                    "updated_at": long_ago,
                    "expires_at": long_ago + timedelta(days=14),
                    "introduced_at": long_ago + timedelta(days=1),
                }
                for i in batch
            ]
            Referral.insert_many(rows).execute()
            found = Referral.select(Referral.id, Referral.state).where(
                Referral.ref.in_([row["ref"] for row in rows])
            )
            finished_ids = {r.id for r in found if r.state == "evaluated"}
            ids = [r.id for r in found]
            parties = [
                {
                    "referral": rid,
                    "role": role,
                    "name": f"{role.title()} {rid}",
                    "email": f"{role}{rid}@example.net",
                    "language": "en",
                    "ask_key": f"ask-{role}-{rid}",
                    "answer": "yes",
                }
                for rid in ids
                for role in ("provider", "prospect")
            ]
            Party.insert_many(parties).execute()
            surveys = []
            for party in Party.select(Party.id, Party.referral).where(Party.referral.in_(ids)):
                done = party.referral_id in finished_ids
                surveys.append(
                    {
                        "referral": party.referral_id,
                        "party": party.id,
                        "round": 1,
                        "state": "answered" if done else "scheduled",
                        "survey_key": f"s-{party.id}",
                        "reply_key": f"r{party.id:015d}",
                        "due_at": long_ago + timedelta(days=31) if done else NOW,
                        "rating": 4 if done else None,
                    }
                )
            Survey.insert_many(surveys).execute()


def timed_tick(folder: Path, finished: int, due: int, rounds: int) -> tuple[float, float]:
    """Median ms of a tick with `due` surveys due, and of one with nothing due."""
    busy, idle = [], []
    for n in range(rounds):
        url = f"sqlite:///{folder / f'store-{finished}-{n}.db'}"
        db.bind(url)
        fill(finished, due)
        settings = (
            Settings()
            .replace("database", url=url)
            .replace("service", data_dir=str(folder), domain="intro.example.org")
        )
        ctx = make_context(settings, FixedClock(NOW))
        started = time.perf_counter()
        sent = surveys.send_due(ctx, NOW, limit=2 * due)
        busy.append((time.perf_counter() - started) * 1000)
        assert sent == 2 * due, sent
        started = time.perf_counter()
        assert surveys.send_due(ctx, NOW, limit=2 * due) == 0
        idle.append((time.perf_counter() - started) * 1000)
        db.close()
    return statistics.median(busy), statistics.median(idle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000, help="finished referrals, baseline")
    parser.add_argument("--factor", type=int, default=100, help="how much larger the other is")
    parser.add_argument("--due", type=int, default=100, help="referrals whose surveys are due")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = timed_tick(folder, args.small, args.due, args.rounds)
        large = timed_tick(folder, args.small * args.factor, args.due, args.rounds)
    due = 2 * args.due
    print(
        f"surveys due per tick: {due}; stored finished referrals: {args.small} vs "
        f"{args.small * args.factor}"
    )
    print(
        f"tick with {due} due:   baseline {small[0]:8.1f} ms   large {large[0]:8.1f} ms   "
        f"ratio {large[0] / small[0]:.2f}"
    )
    print(
        f"tick with none due: baseline {small[1]:8.2f} ms   large {large[1]:8.2f} ms   "
        f"ratio {large[1] / small[1]:.2f}"
    )


if __name__ == "__main__":
    main()
