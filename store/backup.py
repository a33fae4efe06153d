"""A consistent copy of a SQLite store while `serve` writes to it: SQLite's online backup."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

# Pages copied per step: small steps let serve's writers in between instead of queueing
# behind one long read of the whole file.
PAGES_PER_STEP = 1024
BUSY_TIMEOUT_MS = 10_000


class BackupRefused(Exception):
    """The copy was not made, for a reason the user can act on (one line)."""


def sqlite_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme in ("postgresql", "postgres"):
        raise BackupRefused(
            "the store is PostgreSQL: back it up with pg_dump (pg_dump -Fc DBNAME > FILE)"
        )
    if parsed.scheme != "sqlite":
        raise BackupRefused(f"cannot back up a {parsed.scheme!r} store")
    return Path(unquote(parsed.path[1:]) if parsed.path.startswith("/") else parsed.path)


def backup(url: str, target: Path, force: bool = False) -> int:
    """Copy the store at `url` to `target` and return the number of pages copied.

    The copy is written beside `target` and renamed into place only once it is complete and
    checked, so `target` is never a half-written file, even if this process dies.
    """
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupRefused(f"no store at {source_path}")
    if target.exists() and not force:
        raise BackupRefused(f"{target} exists; give --force to replace it")
    if not target.parent.is_dir():
        raise BackupRefused(f"no folder {target.parent}")
    partial = target.with_name(target.name + ".tmp")
    partial.unlink(missing_ok=True)
    try:
        pages = _copy(source_path, partial)
        _put_in_place(partial, target, force)
    except sqlite3.Error as exc:
        raise BackupRefused(f"could not copy the store: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return pages


def _copy(source_path: Path, partial: Path) -> int:
    # mode=rw: never create an empty store where the configured one is missing.
    source = sqlite3.connect(f"file:{source_path}?mode=rw", uri=True)
    try:
        source.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=PAGES_PER_STEP)
            # A backup is one self-contained file: no -wal beside it to lose on the way.
            copy.execute("PRAGMA journal_mode = DELETE")
            checked = copy.execute("PRAGMA quick_check").fetchone()[0]
            if checked != "ok":
                raise BackupRefused(f"the copy failed its check: {checked}")
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        finally:
            copy.close()
    finally:
        source.close()
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    return pages


def _put_in_place(partial: Path, target: Path, force: bool) -> None:
    if force:
        os.replace(partial, target)
    else:
        # A link fails if target appeared meanwhile: an existing file is never overwritten.
        try:
            os.link(partial, target)
        except FileExistsError:
            raise BackupRefused(f"{target} exists; give --force to replace it") from None
    with contextlib.suppress(OSError):
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
