"""Every performance figure of care-intro against its baseline, measured in one run.

Each figure takes its baseline and its subject in turn (baseline, subject, baseline,
subject…) and reports the median of each, so a machine that slows down slows both. Prints
one Markdown table, ready for the README, and how long the run took.

    python bench/run.py [--quick | --large] [--only smtp,lifecycle] [--rounds 2]
                        [--database-url postgresql://…]

Figures: smtp (SMTP accept under load, SQLite and PostgreSQL), outbox, lifecycle, mail,
tick, memory, instances (two serve on one PostgreSQL). PostgreSQL figures run when
--database-url or CARE_INTRO_TEST_DATABASE_URL names a database; its tables are dropped.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness import PG_ENV, Row, machine_pace, table


@dataclass(frozen=True)
class Sizes:
    messages: int  # requests per SMTP load
    outbox_mails: int
    outbox_window: float  # seconds the outbox is watched at most
    lifecycles: int
    mail_calls: int
    due: int  # items due in the busy tick
    small_store: int
    large_store: int
    referrals: int  # for memory
    instance_messages: int


QUICK = Sizes(150, 150, 5, 15, 20, 60, 100, 1_000, 100, 60)
DEFAULT = Sizes(2_000, 2_000, 20, 300, 300, 1_000, 1_000, 10_000, 2_000, 600)
LARGE = Sizes(5_000, 5_000, 30, 1_000, 1_000, 1_000, 10_000, 1_000_000, 100_000, 2_000)

FIGURES = ("smtp", "outbox", "lifecycle", "mail", "tick", "memory", "instances")


Figure = Callable[[], list[Row]]


def figures(sizes: Sizes, rounds: int, postgresql: str | None) -> dict[str, Figure]:
    # Imported here: each figure's module loads the service only when it runs.
    from accept import smtp_accept, two_instances
    from lifecycle import lifecycle
    from mail_build import mail_build
    from memory import memory
    from outbox_relay import outbox
    from tick_cost import ticks

    return {
        "smtp": lambda: smtp_accept(sizes.messages, rounds, postgresql),
        "outbox": lambda: outbox(sizes.outbox_mails, rounds, sizes.outbox_window),
        "lifecycle": lambda: lifecycle(sizes.lifecycles, rounds),
        "mail": lambda: mail_build(sizes.mail_calls, max(rounds, 3)),
        "tick": lambda: ticks(sizes.due, rounds, sizes.small_store, sizes.large_store),
        "memory": lambda: memory(sizes.referrals, max(600.0, sizes.referrals / 5)),
        "instances": lambda: two_instances(sizes.instance_messages, rounds, postgresql),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    size.add_argument("--large", action="store_true", help="1M-referral store, 100k referrals")
    parser.add_argument("--only", default=",".join(FIGURES), help="figures, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="baseline and subject each")
    parser.add_argument("--database-url", default=os.environ.get(PG_ENV) or None)
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    sizes = QUICK if args.quick else LARGE if args.large else DEFAULT
    # An empty --database-url keeps a run on SQLite even where the environment names one.
    runs = figures(sizes, max(args.rounds, 1), args.database_url or None)
    rows: list[Row] = []
    paces: list[tuple[str, float]] = []
    started = time.monotonic()
    for name in chosen:
        paces.append((name, machine_pace()))
        began = time.monotonic()
        rows += runs[name]()
        print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    paces.append(("end", machine_pace()))
    elapsed = time.monotonic() - started
    print(table(rows))
    print()
    # Absolute targets (referrals a second, ms a tick item) move with the machine's pace;
    # this says whether a figure that missed ran on a slowed machine.
    print(
        "a fixed pure-Python workload before each figure (lower: a faster machine), ms: "
        + ", ".join(f"{name} {pace * 1000:.0f}" for name, pace in paces)
    )
    print(
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{'--quick' if args.quick else '--large' if args.large else 'default sizes'}, "
        f"{args.rounds} round(s); took {elapsed / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
