"""`care-intro forget` and retention, run as an operator runs them: the command against a real
store, then the store's files read back byte by byte."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.model import Channel, State
from service.referral import erasure
from store import db, queries
from store.db import database
from store.models import ConsentText
from tests.conftest import FIXTURES, eventually, make_settings, write_config
from tests.helpers import PROSPECT, PROVIDER, request_referral, text_of, web

REQUEST = FIXTURES / "request_thunderbird_labelled_lines.eml"
# The prospect the fixture names, in every form a file might hold them.
ADDRESS = "bob@bakery.example"
NAME = "Bob Smith"
TRACES = [ADDRESS, ADDRESS.upper(), NAME, NAME.lower(), "+49 30 1234567"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")}
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def traces_in_files(database: Path) -> dict[str, int]:
    """How often each trace stands in the store's files (the .db and its write-ahead log)."""
    found: dict[str, int] = {}
    for path in (database, database.with_name(database.name + "-wal")):
        data = path.read_bytes() if path.exists() else b""
        for trace in TRACES:
            hits = data.count(trace.encode())
            if hits:
                found[f"{path.name}: {trace}"] = hits
    return found


@pytest.fixture
def sqlite_config(tmp_path: Path) -> tuple[Path, Path]:
    database = tmp_path / "care-intro.db"
    settings = make_settings(tmp_path, f"sqlite:///{database}")
    return write_config(tmp_path / "care-intro.toml", settings), database


def counts(stdout: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.rsplit(": ", 1) for line in stdout.splitlines())}


def test_forget_leaves_no_trace_in_the_files_and_withdraws_the_open_referral(
    tmp_path, sqlite_config
):
    config, database = sqlite_config
    submitted = run("submit", str(REQUEST), "--config", str(config), cwd=tmp_path)
    ref = submitted.stdout.split(": processed, ")[1].split()[0].strip(".,")
    assert traces_in_files(database), "the request should have stored the prospect"

    first = counts(run("forget", ADDRESS, "--config", str(config), cwd=tmp_path).stdout)
    assert first["parties"] == 1
    assert first["inbound mails"] == 1  # the request that named them
    assert first["sent mails"] >= 2  # their question, and the referrer's receipt
    # The withdrawal's letters go out, and their bodies go once sent.
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    for _ in range(2):
        run("tick", "--at", later, "--config", str(config), cwd=tmp_path)

    assert traces_in_files(database) == {}
    again = counts(run("forget", ADDRESS.upper(), "--config", str(config), cwd=tmp_path).stdout)
    assert sum(again.values()) == 0

    db.bind(f"sqlite:///{database}")
    try:
        referral = queries.referral_by_ref(ref)
        assert referral is not None and referral.state == State.DECLINED
        provider = referral.party("provider")
        assert provider.email == "jane@acme.example" and provider.name == "Jane Roe"
        assert referral.referrer_email == "ada@referrer.example"
        sent = queries.outbox_for_referral(referral.id)
        purposes = [purpose for purpose, _, _ in sent]
        assert "declined_to_other" in purposes and "referrer_declined" in purposes
    finally:
        db.close()


def test_retention_keeps_the_reports_figures(tmp_path, sqlite_config):
    config, database = sqlite_config
    run("submit", str(REQUEST), "--config", str(config), cwd=tmp_path)
    # Past expiry, then past both retention periods after it.
    expired = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    run("tick", "--at", expired, "--config", str(config), cwd=tmp_path)
    before = json.loads(
        run("report", "--format", "json", "--config", str(config), cwd=tmp_path).stdout
    )
    assert traces_in_files(database)

    years = (datetime.now(UTC) + timedelta(days=20 + 731)).isoformat()
    ticked = run("tick", "--at", years, "--config", str(config), cwd=tmp_path)
    assert "let go of" in ticked.stdout
    after = json.loads(
        run("report", "--format", "json", "--config", str(config), cwd=tmp_path).stdout
    )

    assert traces_in_files(database) == {}
    assert without_identity(after) == without_identity(before)
    again = run("tick", "--at", years, "--config", str(config), cwd=tmp_path)
    assert "let go of" not in again.stdout


def without_identity(report: dict) -> dict:
    """The figures, with who each person was left out: that is what retention lets go of."""
    people = report.get("people", [])
    return {
        **{k: v for k, v in report.items() if k != "generated_at"},
        "people": sorted(
            json.dumps({k: v for k, v in p.items() if k not in ("email", "name")}, sort_keys=True)
            for p in people
        ),
    }


# ------------------------------------------------------------------ from the opt-out page


@pytest.fixture
def asked(running, sink):
    request_referral(running.service.smtp_port, sink)
    eventually(lambda: queries.outbox_counts() == {"sent": 3}, "the outbox to settle")
    [question] = [d for d in sink.deliveries if d.rcpt_tos == (PROSPECT,)]
    match = re.search(r"(http://\S+/u/[A-Za-z0-9_.\-]+)", text_of(question))
    assert match
    return match.group(1)


def prospect_row() -> tuple[str, str, str]:
    return database.execute_sql(
        "SELECT email, name, phone FROM party WHERE role = 'prospect'"
    ).fetchone()


def test_the_page_offers_to_delete_as_well(asked):
    page = web.get(asked)
    assert 'name="erase" value="yes"' in page.text
    assert "also delete what you hold about me" in page.text


def test_deleting_from_the_page_forgets_them_at_once(asked, sink):
    done = web.post(asked, data={"erase": "yes"})
    assert done.status_code == 200
    email, name, phone = prospect_row()
    assert email.startswith("erased-") and email.endswith("@invalid")
    assert (name, phone) == ("", "")
    assert queries.recent_referrals()[0].state == "declined"
    # Still suppressed by its keyed hash: a stop outlives the erasure.
    assert database.execute_sql("SELECT COUNT(*) FROM suppression").fetchone()[0] == 1
    sink.wait_for(5)
    [_, told] = [d for d in sink.deliveries if d.rcpt_tos == (PROVIDER,)]
    assert "will not go ahead" in text_of(told)


def test_never_again_forgets_them_once_no_open_referral_needs_them(asked):
    # Their no ends the only referral they were in, so nothing needs their address any more.
    assert web.post(asked).status_code == 200
    email, name, _ = prospect_row()
    assert email.startswith("erased-") and name == ""


def test_forget_takes_the_consent_text_that_greets_them_and_keeps_its_hash(running, sink):
    # The prospect said yes on the page: what they were shown is kept as evidence (for an
    # answer by reply, the mail that greets them by name). Forgetting them takes the text;
    # that they agreed, and to which text, stays without who.

    links = request_referral(running.service.smtp_port, sink)
    assert web.post(links[PROSPECT], data={"answer": "yes"}).status_code == 200
    shown = database.execute_sql(
        "SELECT c.text FROM consent_text c JOIN party p ON p.consent_hash = c.text_hash"
        " WHERE p.role = 'prospect'"
    ).fetchone()
    assert shown is not None and "Would you like to be introduced?" in shown[0]

    ctx = running.service.ctx
    assert ctx is not None
    done = erasure.forget(ctx, ADDRESS, Channel.CLI, datetime.now(UTC))
    assert done.consent_texts == 1
    kept = database.execute_sql(
        "SELECT consent_hash FROM party WHERE role = 'prospect'"
    ).fetchone()[0]
    assert kept

    assert not ConsentText.select().where(ConsentText.text_hash == kept).exists()
