"""Tests on the PostgreSQL in CARE_INTRO_TEST_DATABASE_URL: a fresh store, and its backends
ended as a restart or an operator's pg_terminate_backend ends them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg2
import pytest

from store import db
from store.models import ALL_MODELS
from tests.conftest import PG_ENV, eventually

needs_postgresql = pytest.mark.skipif(
    not os.environ.get(PG_ENV), reason=f"set {PG_ENV} to a PostgreSQL URL to run these"
)


def fresh_database() -> Iterator[str]:
    """The test database with empty tables of this release, bound in this process."""
    url = os.environ[PG_ENV]
    db.bind(url)
    db.database.drop_tables(ALL_MODELS, safe=True)
    db.bind(url)
    yield url
    db.close()


def terminate_others(conn: psycopg2.extensions.connection) -> int:
    """End every backend of conn's database but conn's own, and wait until they are gone.

    Only this database's: the server is shared with CI and with other people's tests.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [pid for (pid,) in cur.fetchall()]
        cur.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(unnest(%s::int[]))) t", (pids,)
        )
    conn.commit()

    def gone() -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s::int[])", (pids,))
            remaining = cur.fetchone()[0]
        conn.commit()
        return remaining == 0

    eventually(gone, "the terminated backends to exit")
    return len(pids)
