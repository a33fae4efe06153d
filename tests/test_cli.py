"""The `care-intro` command as a user (or an MTA, or cron) runs it."""

from __future__ import annotations

import importlib.metadata
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from service.intake import receiving
from service.model import Channel
from store import queries
from tests.conftest import FIXTURES, REFERRER, fixture_bytes, make_settings, write_config


def run(*args: str, cwd, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.fixture
def config(tmp_path, store_url):
    return write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, store_url))


def test_version_names_the_installed_release(tmp_path):
    done = run("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"care-intro {importlib.metadata.version('care-intro')}"


def one_line_error(result, code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("care-intro: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert text in result.stderr


def maildir_count(tmp_path) -> int:
    new = tmp_path / "outbox" / "new"
    return len(list(new.iterdir())) if new.is_dir() else 0


def test_submit_processes_a_file_like_an_arrival(tmp_path, config):
    result = run(
        "submit",
        str(FIXTURES / "request_thunderbird_labelled_lines.eml"),
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert ": processed, R-" in result.stdout
    assert maildir_count(tmp_path) == 3
    again = run(
        "submit",
        str(FIXTURES / "request_thunderbird_labelled_lines.eml"),
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert again.returncode == 0 and "already received" in again.stdout
    assert maildir_count(tmp_path) == 3


def test_submit_reads_standard_input(tmp_path, config):
    raw = fixture_bytes("request_outlook_windows1252_without_need.eml")
    result = run("submit", "-", "--config", str(config), cwd=tmp_path, stdin=raw)
    assert result.returncode == 0, result.stderr
    assert "rejected, no_need" in result.stdout
    assert maildir_count(tmp_path) == 1


def test_submit_without_a_file_reads_what_is_piped_in(tmp_path, config):
    # `care-intro submit --config care.toml < x.eml`, as an MTA's pipe runs it.
    raw = fixture_bytes("request_outlook_windows1252_without_need.eml")
    result = run("submit", "--config", str(config), cwd=tmp_path, stdin=raw)
    assert result.returncode == 0, result.stderr
    assert "rejected, no_need" in result.stdout
    assert maildir_count(tmp_path) == 1
    empty = run("submit", "--config", str(config), cwd=tmp_path, stdin=b"")
    one_line_error(empty, 65, "standard input is empty")


def test_submit_without_a_file_at_a_terminal_says_what_it_needs(tmp_path, config):
    # A real terminal on standard input: without the check, the read would wait for ever.
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "service", "submit", "--config", str(config)],
            stdin=follower,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")},
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    one_line_error(result, 64, "submit needs FILE.eml, or the message on standard input")
    assert result.stdout == ""
    assert maildir_count(tmp_path) == 0


def test_submit_refuses_like_the_smtp_listener_with_codes_an_mta_understands(tmp_path, config):
    stranger = run(
        "submit", str(FIXTURES / "request_from_stranger.eml"), "--config", str(config), cwd=tmp_path
    )
    one_line_error(stranger, 77, "not allowed to send requests here")
    unknown = run(
        "submit",
        str(FIXTURES / "request_thunderbird_labelled_lines.eml"),
        "--recipient",
        "nobody@intro.example.org",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    one_line_error(unknown, 67, "no such mailbox here")
    missing = run("submit", str(tmp_path / "nope.eml"), "--config", str(config), cwd=tmp_path)
    one_line_error(missing, 66, "cannot read")


def test_status_tells_one_referrals_story(tmp_path, config):
    run(
        "submit",
        str(FIXTURES / "request_thunderbird_labelled_lines.eml"),
        "--config",
        str(config),
        cwd=tmp_path,
    )
    [referral] = queries.recent_referrals()
    result = run("status", referral.ref.lower(), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{referral.ref}  asking"
    assert "  provider  Jane Roe <jane@acme.example>  (no answer yet)" in lines
    assert any("received" in line and "via cli" in line for line in lines)
    assert any(line.split()[:2] == ["consent_request", "sent"] for line in lines)
    one_line_error(
        run("status", "R-0000-0000", "--config", str(config), cwd=tmp_path),
        66,
        "no referral R-0000-0000",
    )


def test_status_without_a_reference_counts_by_state(tmp_path, config):
    for name in ("request_thunderbird_labelled_lines.eml", "request_with_pdf_attachment.eml"):
        run("submit", str(FIXTURES / name), "--config", str(config), cwd=tmp_path)
    result = run("status", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["referrals: 2", "  asking         2"]


def test_tick_finishes_what_a_crash_left_behind(tmp_path, config):
    # As if serve had answered 250 and died before processing anything.
    receiving.receive(
        fixture_bytes("request_thunderbird_labelled_lines.eml"),
        REFERRER,
        ["refer@intro.example.org"],
        Channel.SMTP,
        datetime.now(UTC),
    )
    result = run("tick", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "processed 1 inbound message(s); reminded 0, expired 0; "
        "surveyed 0, surveys closed 0; digests 0; sent 3, retrying 0, failed 0"
    )
    assert maildir_count(tmp_path) == 3
    again = run("tick", "--config", str(config), cwd=tmp_path)
    assert again.stdout.strip() == (
        "processed 0 inbound message(s); reminded 0, expired 0; "
        "surveyed 0, surveys closed 0; digests 0; sent 0, retrying 0, failed 0"
    )


def test_tick_at_a_later_moment_runs_the_retries_due_then(tmp_path, store_url, sink):
    config = write_config(
        tmp_path / "care-intro.toml", make_settings(tmp_path, store_url, sink.port)
    )
    now = datetime.now(UTC)
    receiving.receive(
        fixture_bytes("request_thunderbird_labelled_lines.eml"),
        REFERRER,
        ["refer@intro.example.org"],
        Channel.SMTP,
        now,
    )
    sink.answer_next("451 4.3.0 busy", "451 4.3.0 busy")
    first = run("tick", "--at", now.isoformat(), "--config", str(config), cwd=tmp_path)
    assert "sent 1, retrying 2" in first.stdout, first.stderr
    later = (now + timedelta(minutes=1)).isoformat()
    second = run("tick", "--at", later, "--config", str(config), cwd=tmp_path)
    assert "sent 2, retrying 0" in second.stdout
    assert len(sink.deliveries) == 3


def test_bad_input_gets_one_clear_line(tmp_path, config):
    one_line_error(
        run("tick", "--at", "tomorrow", "--config", str(config), cwd=tmp_path),
        64,
        "not an ISO-8601 moment",
    )
    one_line_error(
        run("tick", "--at", "2027-01-01T00:00:00", "--config", str(config), cwd=tmp_path),
        64,
        "needs a time zone",
    )
    broken = tmp_path / "broken.toml"
    broken.write_text("[inbound]\nprot = 25\n")
    one_line_error(
        run("report", "--config", str(broken), cwd=tmp_path), 78, "unknown configuration key in"
    )
    one_line_error(
        run("report", "--config", str(tmp_path / "missing.toml"), cwd=tmp_path),
        78,
        "configuration file not found",
    )


def test_without_a_config_file_the_embedded_defaults_apply(tmp_path):
    result = run("status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("referrals: 0")
    assert (tmp_path / "data" / "care-intro.db").exists()


def test_demo_runs_one_introduction_and_shows_what_everyone_got(tmp_path):
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for person in ("ada@referrer.example", "jane@acme.example", "bob@bakery.example"):
        assert f"{person} received 2 mail(s)" in out
    # One introduction To both: each of them shows the same mail.
    assert "one introduction went out, To both" in out
    assert out.count("Subject: Introduction: Jane Roe and Bob Smith") == 2
    assert out.count("\nTo: Jane Roe <jane@acme.example>, Bob Smith <bob@bakery.example>") == 2
    assert "Subject: Introduced: Jane Roe and Bob Smith" in out
    assert not (tmp_path / "data").exists()  # it leaves nothing behind


def test_serve_on_a_port_already_taken_says_so_and_exits(tmp_path, config):
    import socket

    settings_port = int(
        next(line for line in config.read_text().splitlines() if line.startswith("port = ")).split(
            "="
        )[1]
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings_port))
        taken.listen()
        result = run("serve", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 75
    assert result.stderr.strip().splitlines()[-1].startswith("care-intro: cannot start:")


def test_quarantine_lets_the_operator_look_and_retry(tmp_path, config):
    unreadable = run(
        "submit",
        str(FIXTURES / "request_outlook_tnef_winmail_dat_only.eml"),
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert unreadable.returncode == 0, unreadable.stderr
    assert "quarantined, no readable text (application/ms-tnef)" in unreadable.stdout
    [record] = queries.quarantined()
    listed = run("quarantine", "list", "--config", str(config), cwd=tmp_path)
    assert listed.stdout.splitlines()[0] == "1 message(s) in quarantine (newest first)"
    assert f"{record.id}" in listed.stdout and '"Intro Jane / Bob"' in listed.stdout
    shown = run("quarantine", "show", str(record.id), "--config", str(config), cwd=tmp_path)
    assert "reason    no readable text (application/ms-tnef)" in shown.stdout
    assert "Subject: Intro Jane / Bob" in shown.stdout
    assert "(no readable text)" in shown.stdout
    # Still unreadable after a retry: it goes back to quarantine, nothing is lost, and the
    # referrer, who was told the first time, is not told again.
    assert maildir_count(tmp_path) == 1
    retried = run("quarantine", "retry", str(record.id), "--config", str(config), cwd=tmp_path)
    assert maildir_count(tmp_path) == 1
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == (
        f"message {record.id}: quarantined, no readable text (application/ms-tnef)"
    )
    one_line_error(
        run("quarantine", "retry", "999999", "--config", str(config), cwd=tmp_path),
        66,
        "message 999999 is not in quarantine",
    )
    one_line_error(
        run("quarantine", "show", "--config", str(config), cwd=tmp_path),
        64,
        "quarantine show needs the message's ID",
    )
