"""What `secure_delete`, on for every SQLite connection, costs the store's writes.

The same work twice in one run, once with the pragma off (the baseline) and once on: store
mails of a realistic size, then overwrite their bodies as retention does. Prints seconds and
the ratio to the baseline.

    python bench/secure_delete.py [--mails 3000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

BODY = os.urandom(6000)  # a sent mail with its HTML part is a few kilobytes


def run(folder: Path, secure: bool, mails: int) -> float:
    path = folder / f"secure-{int(secure)}.db"
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=wal", "synchronous=full", f"secure_delete={int(secure)}"):
        con.execute(f"PRAGMA {pragma}")
    con.execute("CREATE TABLE mail (id INTEGER PRIMARY KEY, raw BLOB)")
    started = time.perf_counter()
    for start in range(0, mails, 100):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO mail (raw) VALUES (?)", [(BODY,)] * min(100, mails - start))
        con.execute("COMMIT")
    for start in range(0, mails, 500):
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE mail SET raw = x'' WHERE id > ? AND id <= ?", (start, start + 500))
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        off = run(Path(folder), False, args.mails)
        on = run(Path(folder), True, args.mails)
    print(f"secure_delete off: {off:.3f} s for {args.mails} mails stored and emptied (baseline)")
    print(f"secure_delete on:  {on:.3f} s, {on / off:.2f}x the baseline")


if __name__ == "__main__":
    main()
