"""Instructions a tick item and a referral cost, counted by valgrind's callgrind: the same
count on a quiet machine and a busy one, where the wall clock here moves by half between
runs of the same code. For telling two releases apart by a few percent.

    python bench/instructions.py [--against ../other-checkout] [--items 300] [--referrals 60]

Each figure runs twice in a child process under callgrind: once doing the work, once doing
all but the work (the baseline: the interpreter starting, the store made and filled, the
templates compiled by a small tick first), and the difference is divided by the items.
`--against` counts another checkout of care-intro the same way, in the same run, and gives
the ratio. Needs `valgrind` (Debian: `apt-get install valgrind`); about a minute a figure
and checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURES = ("tick", "lifecycle")
# callgrind's closing line: "totals: N" (or "summary: N" in older files).
_TOTAL = re.compile(rb"^(?:totals|summary): (\d+)", re.MULTILINE)


def count(root: Path, figure: str, items: int, work: bool, folder: Path) -> int:
    """Instructions of one child run of `figure` with `items` (doing the work, or all but
    it), on the checkout at `root`."""
    out = folder / f"callgrind.{figure}.{int(work)}.out"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(root),
            figure,
            str(items),
            str(int(work)),
            str(folder),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found = _TOTAL.search(out.read_bytes())
    if found is None:
        raise RuntimeError(f"callgrind wrote no total to {out}")
    return int(found.group(1))


def per_item(root: Path, figure: str, items: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        done = count(root, figure, items, True, folder)
        return (done - count(root, figure, items, False, folder)) / items


def child(root: Path, figure: str, items: int, work: bool, folder: Path) -> None:
    """The figure in the checkout at `root`: its service and its bench's own fills."""
    sys.path[:0] = [str(root), str(root / "bench")]
    os.chdir(root)
    from service.writing import compose

    # Its own templates too: the installed package names the checkout it was installed from.
    compose.templates_root = lambda: root / "templates"
    if figure == "tick":
        _tick(items, work, folder)
    else:
        _lifecycle(items, work, folder)


def _tick(items: int, work: bool, folder: Path) -> None:
    import tick_cost
    from harness import bound, database_url, scratch
    from survey_tick import NOW

    from service.edge import jobs

    # The tick figure's own split of what is due, not its `busy_tick`: that also times idle
    # ticks after, which would count as work here.
    def tick_all(store: Path, due: int, work: bool = True) -> None:
        url = database_url(store)
        surveys = due // 3 // 2 * 2
        reminders = (due - surveys) // 2
        with bound(url):
            tick_cost.fill(0, surveys // 2)
            tick_cost.fill_asking(reminders, True, 0)
            tick_cost.fill_asking(due - surveys - reminders, False, reminders)
            ctx = tick_cost._context(store, url)
            for _ in range(tick_cost.MOST_TICKS if work else 0):
                if not asyncio.run(jobs.run_deadlines(ctx, NOW, tick_cost._here)):
                    break

    # As `serve`'s first tick does: the templates compiled, the languages' data loaded.
    tick_all(scratch(folder, "warm"), 30)
    tick_all(scratch(folder, "busy"), items, work)


def _lifecycle(items: int, work: bool, folder: Path) -> None:
    import lifecycle
    from harness import bound, database_url, scratch
    from smtp_load import request

    store = scratch(folder, "life")
    url = database_url(store)
    with bound(url):
        ctx = lifecycle._context(store, url)
        lifecycle.whole_lifecycles(ctx, [request(n, "warm") for n in range(5)])
        requests = [request(n, "l") for n in range(items)]
        if work:
            lifecycle.whole_lifecycles(ctx, requests)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        root, figure, items, work, folder = sys.argv[2:7]
        child(Path(root), figure, int(items), work == "1", Path(folder))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout, counted the same way")
    parser.add_argument("--items", type=int, default=300, help="tick items due")
    parser.add_argument("--referrals", type=int, default=60, help="lifecycle referrals")
    parser.add_argument("--only", default=",".join(FIGURES), help="figures, comma-separated")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    roots = [HERE.parent] + ([args.against.resolve()] if args.against else [])
    sizes = {"tick": args.items, "lifecycle": args.referrals}
    header = ["figure", *map(str, roots), *(["ratio"] if args.against else [])]
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for figure in [f.strip() for f in args.only.split(",") if f.strip()]:
        counts = [per_item(root, figure, sizes[figure]) for root in roots]
        cells = " | ".join(f"{c / 1e6:.2f} million" for c in counts)
        ratio = f" | {counts[0] / counts[1]:.3f}×" if args.against else ""
        unit = "a tick item" if figure == "tick" else "a referral"
        print(f"| {figure}, instructions {unit} | {cells}{ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
