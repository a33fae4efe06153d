"""Reading the referrer from a From of many adjacent encoded words: stdlib vs ours.

The stdlib's header registry (what the default email policy uses) grows quadratically on
adjacent RFC 2047 encoded words; the reader care-intro uses is linear. Times both on the
same values in this run and prints milliseconds and the ratio stdlib/ours per size. The
stdlib is stopped at --stdlib-max words: at 20,000 it needs gigabytes.

    python bench/from_parsing.py [--words 1250,2500,5000,20000] [--stdlib-max 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from email.headerregistry import HeaderRegistry
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.reading.addresses import single_mailbox

REGISTRY = HeaderRegistry()


def bomb(words: int) -> str:
    """Unfolded, as the default policy hands it to the registry."""
    return "=?utf-8?q?a?= " * words + "<ada@referrer.example>"


def best_of(rounds: int, read: Callable[[str], object], value: str) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        read(value)
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default="1250,2500,5000,20000")
    parser.add_argument("--stdlib-max", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'words':>7} {'bytes':>8} {'stdlib ms':>10} {'ours ms':>8} {'ratio':>7}")
    for words in (int(w) for w in args.words.split(",")):
        value = bomb(words)
        ours = best_of(args.rounds, single_mailbox, value)
        if words <= args.stdlib_max:
            stdlib = best_of(args.rounds, lambda v: REGISTRY("From", v).addresses, value)
            print(f"{words:>7} {len(value):>8} {stdlib:>10.1f} {ours:>8.2f} {stdlib / ours:>7.0f}")
        else:
            print(f"{words:>7} {len(value):>8} {'(skipped)':>10} {ours:>8.2f} {'-':>7}")


if __name__ == "__main__":
    main()
