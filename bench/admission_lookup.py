"""What asking the store about a sender adds to the SMTP answer, against a configured sender.

Judges one request's headers through intake's admission (what SMTP and `submit` call) on a
SQLite store holding many allowed referrers: for a sender the configuration allows (no
store question: the baseline), for one only the store allows, and for a stranger (the store
asked, then whether the mail answers one of ours). Prints microseconds per judgement and
the ratio to the baseline; a ratio that stays put as --referrers grows means the look-up
follows the sender, not the list.

    python bench/admission_lookup.py [--referrers 20000] [--rounds 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.intake import receiving
from service.settings import Settings
from store import db, referrers
from store.db import transaction

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RCPT = "refer@intro.example.org"
CONFIGURED = "ada@referrer.example"


def headers(sender: str) -> object:
    return receiving.headers_of(
        f"From: {sender}\r\nTo: {RCPT}\r\nSubject: Intro\r\nMessage-ID: <b.1@x.example>\r\n"
        f"\r\nJane, meet Bob.\r\n".encode()
    )


def per_call(settings: Settings, sender: str, rounds: int) -> float:
    parsed = headers(sender)
    start = time.perf_counter()
    for _ in range(rounds):
        receiving.admission(sender, [RCPT], parsed, settings)
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrers", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        db.bind(f"sqlite:///{scratch}/bench.db")
        with transaction():
            for n in range(args.referrers):
                referrers.add(f"member{n}@network.example", "", NOW)
        settings = (
            Settings()
            .replace("service", domain="intro.example.org")
            .replace("security", allowed_referrers=(CONFIGURED,))
        )
        stored = f"member{args.referrers // 2}@network.example"
        base = per_call(settings, CONFIGURED, args.rounds)
        print(f"{args.referrers} stored referrers, {args.rounds} rounds")
        print(f"configured sender  {base:8.1f} us  ratio 1.00")
        for label, sender in (("stored sender", stored), ("stranger", "eve@else.example")):
            took = per_call(settings, sender, args.rounds)
            print(f"{label:<18} {took:8.1f} us  ratio {took / base:.2f}")
        db.close()


if __name__ == "__main__":
    main()
