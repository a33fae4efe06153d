"""Tests on the PostgreSQL in CARE_INTRO_TEST_DATABASE_URL: a fresh store, its backends
ended as an operator's pg_terminate_backend ends them, and the server out of reach for a
while as during a restart (through a relay, since the shared server is never restarted)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import psycopg2
import pytest

from store import db
from store.models import ALL_MODELS
from tests.conftest import PG_ENV, eventually, free_port

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


class Outage:
    """A TCP relay in front of PostgreSQL that can be unplugged like a cable: down() cuts
    every connection through it and refuses new ones, as a server restarting does."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 5432)
        self.port = free_port()
        userinfo = parsed.netloc.rpartition("@")[0]
        self.url = f"{parsed.scheme}://{userinfo}@127.0.0.1:{self.port}{parsed.path}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listening = threading.Event()
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        listener.settimeout(0.1)
        self._listening.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        self._listening.clear()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()
        # The listener closes within its accept timeout; new connections are refused after.
        eventually(self._refused, "the relay to refuse connections", 5)

    def _refused(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) != 0

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._listening.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                server = socket.create_connection(self.target)
                with self._lock:
                    self._open += [client, server]
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction until either side closes."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
