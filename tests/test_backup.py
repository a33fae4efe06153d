"""`care-intro backup PATH`: a consistent copy of the SQLite store while `serve` takes mail."""

from __future__ import annotations

import sqlite3

from tests.conftest import ServeProcess, eventually, make_settings, write_config
from tests.load import Load, request
from tests.test_cli import one_line_error, run


def stored_message_ids(path) -> set[str]:
    copy = sqlite3.connect(path)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {m for (m,) in copy.execute("SELECT message_id FROM inbound_message")}
    finally:
        copy.close()


def test_a_backup_under_a_trickle_of_requests_is_whole_and_holds_what_was_accepted(tmp_path, sink):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'care-intro.db'}", sink.port)
    serve = ServeProcess.in_folder(tmp_path, settings).start()
    # Far more than are sent before the backup ends: the rest are dropped once it has.
    messages = [request(n, "backup") for n in range(5000)]
    load = Load(settings.inbound.port, messages, sessions=2, seconds=90).start()
    copy = tmp_path / "copies" / "care-intro-backup.db"
    copy.parent.mkdir()
    try:
        eventually(lambda: len(load.accepted()) >= 20, "20 requests answered 250", 30)
        before = load.accepted()
        done = run("backup", str(copy), "--config", str(serve.config), cwd=tmp_path)
        still_sending = len(load.todo) > 0
        with load.lock:
            load.todo.clear()
        load.join()
    finally:
        serve.stop()
    assert done.returncode == 0, done.stderr
    assert f"to {copy}" in done.stdout
    assert still_sending, "the backup ran while requests were still arriving"
    assert before <= stored_message_ids(copy)
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # no .tmp, no -wal left
    journal = sqlite3.connect(copy).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "delete"  # one self-contained file


def test_an_existing_copy_is_kept_unless_forced(tmp_path, sink):
    url = f"sqlite:///{tmp_path / 'care-intro.db'}"
    config = write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, url, sink.port))
    assert run("status", "--config", str(config), cwd=tmp_path).returncode == 0  # makes the store
    copy = tmp_path / "earlier.db"
    copy.write_bytes(b"last week's backup")

    refused = run("backup", str(copy), "--config", str(config), cwd=tmp_path)
    one_line_error(refused, 1, "exists; give --force to replace it")
    assert copy.read_bytes() == b"last week's backup"

    forced = run("backup", "--force", str(copy), "--config", str(config), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert stored_message_ids(copy) == set()


def test_a_missing_store_is_not_created_by_a_backup(tmp_path):
    store = tmp_path / "nowhere" / "care-intro.db"
    settings = make_settings(tmp_path, f"sqlite:///{store}")
    config = write_config(tmp_path / "care-intro.toml", settings)
    done = run("backup", str(tmp_path / "copy.db"), "--config", str(config), cwd=tmp_path)
    one_line_error(done, 1, f"no store at {store}")
    assert not store.exists()
    assert not (tmp_path / "copy.db").exists()


def test_a_postgresql_store_is_backed_up_with_pg_dump(tmp_path):
    # The URL is only read, never connected to: the command refuses before opening a store.
    settings = make_settings(tmp_path, "postgresql://care@127.0.0.1:5432/care_intro")
    config = write_config(tmp_path / "care-intro.toml", settings)
    done = run("backup", str(tmp_path / "copy.db"), "--config", str(config), cwd=tmp_path)
    one_line_error(done, 1, "back it up with pg_dump")
    assert not (tmp_path / "copy.db").exists()
