"""What a tick costs per due item: reminders, expiries and surveys, mail included.

Fills a SQLite store with `--due` referrals of each kind whose date has come (a reminder
to two silent parties, an expiry telling the referrer and the party who said yes, two
surveys), runs the tick's jobs once with no limit in the way, and divides by what they
did. The baseline, measured in the same run and interleaved with it, renders the same
letters and nothing else: the ratio tick/render says how much a tick adds to writing the
mail itself (claiming, locking, the checks, the rows and their commit).

    python bench/deadline_tick.py [--due 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.evaluation import letters as survey_letters
from service.evaluation import surveys
from service.referral import deadlines
from service.settings import Settings
from service.writing import letters
from service.writing.context import Context, make_context
from store import db, queries
from store.models import Party, Referral, Survey

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
EVERYTHING = 1_000_000  # no per-tick bound in the way of the measurement


def fill(due: int) -> None:
    """`due` referrals for each of: a reminder to both parties, an expiry with one yes, two
    surveys."""
    asked = NOW - timedelta(days=4, minutes=1)
    kinds = ("remind", "expire", "survey")
    for kind in kinds:
        with db.transaction():
            rows = [
                {
                    "ref": f"R-{kind[:3].upper()}-{i:06d}",
                    "state": "introduced" if kind == "survey" else "asking",
                    "referrer_email": f"referrer{i % 97}@example.org",
                    "referrer_name": "Ada Lovelace",
                    "need": "bookkeeping for a small bakery, two days a month",
                    "budget": "300 EUR a month",
                    "language": "en",
                    "created_at": asked,
                    "updated_at": asked,
                    "expires_at": NOW - timedelta(minutes=1)
                    if kind == "expire"
                    else NOW + timedelta(days=10),
                    "remind_at": NOW - timedelta(minutes=1) if kind == "remind" else None,
                    "introduced_at": asked if kind == "survey" else None,
                }
                for i in range(due)
            ]
            Referral.insert_many(rows).execute()
            ids = [
                r.id
                for r in Referral.select(Referral.id).where(
                    Referral.ref.in_([row["ref"] for row in rows])
                )
            ]
            parties = [
                {
                    "referral": rid,
                    "role": role,
                    "name": f"{'Jane' if role == 'provider' else 'Bob'} {rid}",
                    "email": f"{role}{rid}@example.net",
                    "language": "en",
                    "ask_key": f"ask-{role}-{rid}",
                    "reply_key": f"{role[:4]}{rid:012d}",
                    "answer": "yes" if kind != "remind" and role == "provider" else None,
                }
                for rid in ids
                for role in ("provider", "prospect")
            ]
            if kind == "survey":
                for party in parties:
                    party["answer"] = "yes"
            Party.insert_many(parties).execute()
            if kind == "survey":
                Survey.insert_many(
                    [
                        {
                            "referral": p.referral_id,
                            "party": p.id,
                            "survey_key": f"s-{p.id}",
                            "reply_key": f"r{p.id:015d}",
                            "due_at": NOW - timedelta(minutes=1),
                        }
                        for p in Party.select().where(Party.referral.in_(ids))
                    ]
                ).execute()


def tick(ctx: Context) -> tuple[float, int]:
    """Seconds for the three jobs, and how many items they handled."""
    started = time.perf_counter()
    done = deadlines.expire_due(ctx, NOW, EVERYTHING)
    done += deadlines.send_reminders(ctx, NOW, EVERYTHING)
    done += surveys.send_due(ctx, NOW, EVERYTHING)
    return time.perf_counter() - started, done


def render(ctx: Context) -> tuple[float, int]:
    """Seconds to render, alone, the letters the same items write, and how many items."""
    remind = queries.referrals_by_id([r.id for r in Referral.select(Referral.id)])
    started = time.perf_counter()
    items = 0
    for referral in remind:
        if referral.ref.startswith("R-REM"):
            for party in referral.parties:
                letters.consent_reminder(ctx, referral, party, NOW)
                items += 1
        elif referral.ref.startswith("R-EXP"):
            letters.referrer_expired(ctx, referral, NOW)
            for party in referral.parties:
                if party.answer == "yes":
                    letters.expired_to_party(ctx, referral, party, NOW)
            items += 1
        else:
            for survey in queries.surveys_of(referral.id):
                party = referral.party_by_id(survey.party_id)
                # As the tick sends it: sent now, open for the configured days.
                open_days = timedelta(days=ctx.settings.timing.survey_open_days)
                sent = replace(survey, state="sent", sent_at=NOW, expires_at=NOW + open_days)
                survey_letters.survey(ctx, referral, party, sent, NOW)
                items += 1
    return time.perf_counter() - started, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=300, help="referrals of each kind due")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    per_tick, per_render, counts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in range(args.rounds):
            url = f"sqlite:///{folder / f'store-{n}.db'}"
            db.bind(url)
            fill(args.due)
            settings = (
                Settings()
                .replace("database", url=url)
                .replace("service", data_dir=str(folder), domain="intro.example.org")
            )
            ctx = make_context(settings, FixedClock(NOW))
            # Interleaved: the baseline on the same store, just before the tick it is for.
            seconds, items = render(ctx)
            per_render.append(seconds * 1000 / items)
            seconds, done = tick(ctx)
            counts.append(done)
            per_tick.append(seconds * 1000 / done)
            idle_started = time.perf_counter()
            assert tick(ctx)[1] == 0, "a second tick found work left over"
            idle = (time.perf_counter() - idle_started) * 1000
            db.close()
    expected = 2 * args.due + args.due + 2 * args.due
    assert all(c == expected for c in counts), (counts, expected)
    rendering, ticking = statistics.median(per_render), statistics.median(per_tick)
    print(f"items due per tick: {expected} (reminders, expiries, surveys); all done in one tick")
    print(f"rendering their letters alone (baseline): {rendering:6.3f} ms per item")
    print(
        f"tick:                                     {ticking:6.3f} ms per item"
        f"   ratio {ticking / rendering:.2f}"
    )
    print(f"the tick after, with nothing due:         {idle:6.2f} ms")


if __name__ == "__main__":
    main()
