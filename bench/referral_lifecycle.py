"""How many whole referrals one process carries per second, against bare stored messages.

Each referral is one distinct request stored as the SMTP edge stores it, taken by intake
(the receipt and both consent questions), then both parties' yes through the workflow (the
introduction and the referrer's note): every mail rendered and queued, none sent. The
baseline is the same number of bare inserts of the inbound row, in the same store, rounds
interleaved. Prints referrals per second, CPU milliseconds each, the ratio of the
lifecycle's time to the baseline's, and how long the store's write lock was held per
referral (what an SMTP insert or the outbox waits behind).

    python bench/referral_lifecycle.py [--referrals 200] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.intake import pipeline, receiving
from service.model import Answer, Channel
from service.referral import workflow
from service.referral.consent_evidence import Shown
from service.settings import Settings
from service.writing.context import Context, make_context
from store import db, queries

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
REFERRER = "ada@referrer.example"
RCPT = "refer@intro.example.org"
REQUEST = b"""\
Message-ID: <MID>
Date: Fri, 1 Jan 2027 12:00:00 +0000
MIME-Version: 1.0
To: refer@intro.example.org
From: Ada Lovelace <ada@referrer.example>
Subject: Intro: Jane (bookkeeping) and Bob (bakery)
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

Hi,

Provider: Jane Roe <jane@acme.example>
Provider booking: https://cal.example/jane
Prospect: Bob Smith <bob@bakery.example>
Prospect phone: +49 30 1234567
Need: bookkeeping for a 5-person bakery before the tax deadline in March
Budget: 400 EUR/month

Thanks!
Ada
"""


def request() -> bytes:
    """One distinct request: the same words under a Message-ID of its own."""
    return REQUEST.replace(b"MID", f"{uuid.uuid4()}@referrer.example".encode()).replace(
        b"\n", b"\r\n"
    )


def store(count: int) -> None:
    for _ in range(count):
        received = receiving.receive(request(), REFERRER, [RCPT], Channel.SMTP, NOW)
        assert received.inbound_id is not None


def lifecycle(ctx: Context, count: int) -> None:
    store(count)
    assert pipeline.process_pending(ctx, NOW, limit=count) == count
    for referral in queries.recent_referrals(limit=count):
        assert referral.state == "asking", referral.state
        for party in referral.parties:
            # As the consent page answers: with the text it showed them.
            shown = Shown(page_text=f"{party.name}, {referral.need}: yes")
            workflow.answer(ctx, party.ask_key, Answer.YES, Channel.LINK, NOW, shown=shown)
        assert queries.referral_by_id(referral.id).state == "introduced"


class LockClock:
    """How long the store's write lock is held: from each BEGIN to its COMMIT or ROLLBACK,
    the time every other writer (an SMTP insert, the outbox) would wait behind it."""

    def __init__(self, database) -> None:
        self.held = 0.0
        self._since = 0.0
        begin, commit, rollback = database.begin, database.commit, database.rollback

        def timed_begin(*args, **kwargs):
            begin(*args, **kwargs)
            self._since = time.perf_counter()

        def ended(end):
            def run(*args, **kwargs):
                try:
                    return end(*args, **kwargs)
                finally:
                    self.held += time.perf_counter() - self._since

            return run

        database.begin, database.commit = timed_begin, ended(commit)
        database.rollback = ended(rollback)


def timed(work) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=200, help="referrals per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print where the CPU goes")
    args = parser.parse_args()
    n = args.referrals
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'store.db'}"
        settings = (
            Settings()
            .replace("database", url=url)
            .replace("service", data_dir=str(folder), domain="intro.example.org")
            .replace("security", allowed_referrers=(REFERRER,))
            .replace("outbound", transport="maildir", maildir=str(folder / "outbox"))
        )
        lock = LockClock(db.bind(url))
        ctx = make_context(settings, FixedClock(NOW))
        lifecycle(ctx, 5)  # templates compiled, keys made: not what a round should pay
        bare, full, held = [], [], []
        profile = cProfile.Profile() if args.profile else None
        for _ in range(args.rounds):
            bare.append(timed(lambda: store(n)))
            # The bare rows stay NEW; intake must not take them in the lifecycle's count.
            pipeline.process_pending(ctx, NOW, limit=n)
            if profile:
                profile.enable()
            before = lock.held
            full.append(timed(lambda: lifecycle(ctx, n)))
            held.append(lock.held - before)
            if profile:
                profile.disable()
        db.close()
    bare_wall = statistics.median(w for w, _ in bare)
    full_wall = statistics.median(w for w, _ in full)
    full_cpu = statistics.median(c for _, c in full)
    print(f"referrals per round: {n}; rounds: {args.rounds}; SQLite, one process")
    print(f"bare stored messages: {n / bare_wall:8.1f} /s   {bare_wall / n * 1000:6.2f} ms each")
    print(
        f"whole referrals:      {n / full_wall:8.1f} /s   {full_wall / n * 1000:6.2f} ms each, "
        f"{full_cpu / n * 1000:6.2f} ms CPU each"
    )
    print(f"ratio lifecycle/bare: {full_wall / bare_wall:.1f}")
    print(
        f"write lock held:      {statistics.median(held) / n * 1000:6.2f} ms per referral "
        f"({statistics.median(held) / full_wall * 100:.0f}% of the time)"
    )
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
