"""The command line as people type it: options anywhere, pipes, kept folders, dates, clocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from service.edge.cli import config_first
from tests.conftest import FIXTURES, make_settings, write_config
from tests.test_cli import one_line_error, run


def test_config_may_stand_anywhere_after_the_command():
    assert config_first(["quarantine", "show", "--config", "c.toml", "24"]) == [
        "quarantine",
        "--config",
        "c.toml",
        "show",
        "24",
    ]
    assert config_first(["status", "R-1", "--config=c.toml"]) == [
        "status",
        "--config=c.toml",
        "R-1",
    ]
    assert config_first(["--version"]) == ["--version"]


def test_quarantine_show_takes_config_between_its_arguments(tmp_path, sqlite_url):
    config = write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, sqlite_url))
    done = run("quarantine", "show", "--config", str(config), "24", cwd=tmp_path)
    # Parsed as meant: the store was asked for message 24, not a usage error (exit 2).
    one_line_error(done, 66, "no message 24")


def test_the_demo_kept_twice_in_one_folder_runs_twice(tmp_path):
    keep = tmp_path / "demo"
    first = run("demo", "--keep", str(keep), cwd=tmp_path)
    second = run("demo", "--keep", str(keep), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    # A fresh start each time: the second run shows its own mail, not the first one's too.
    got = re.findall(r"received (\d+) mail", second.stdout)
    assert got == re.findall(r"received (\d+) mail", first.stdout)
    assert got and all(int(n) > 0 for n in got)


def test_the_demo_leaves_a_folder_it_did_not_make_alone(tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    done = run("demo", "--keep", str(keep), cwd=tmp_path)
    one_line_error(done, 1, "holds files the demo did not write (notes.txt)")
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]


def test_a_reader_that_goes_away_ends_the_demo_quietly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "service", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    assert demo.stdout is not None and demo.stderr is not None
    # Gone before the demo writes (like `| head -1` once its line came): a pipe buffers
    # the demo's few kilobytes, so a reader that read first would never break the pipe.
    demo.stdout.close()
    errors = demo.stderr.read().decode()
    assert demo.wait(60) in (0, 141), errors
    assert "Traceback" not in errors and "unexpected" not in errors, errors


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("report", "--format", "xml"), "report: argument --format: invalid choice: 'xml'"),
        (("report", "--language", "xx"), "invalid choice: 'xx'"),
        (("quarantine", "show", "abc"), "quarantine: argument ID: invalid int value: 'abc'"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        ((), "the following arguments are required: COMMAND"),
        (("status", "--colour"), "unrecognized arguments: --colour"),
    ],
    ids=["format", "language", "id", "command", "none", "option"],
)
def test_a_mistyped_command_line_is_one_line_and_64(tmp_path, argv, said):
    done = run(*argv, cwd=tmp_path)
    one_line_error(done, 64, said)
    assert "usage:" not in done.stderr and "--help" in done.stderr


def test_since_names_the_forms_it_takes(tmp_path, sqlite_url):
    config = write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, sqlite_url))
    done = run("report", "--since", "yesterday", "--config", str(config), cwd=tmp_path)
    one_line_error(done, 64, "'yesterday' is neither a day (2026-01-01) nor an ISO-8601 moment")
    assert "T00:00" not in done.stderr
    day = run("report", "--since", "2026-01-01", "--config", str(config), cwd=tmp_path)
    assert day.returncode == 0, day.stderr


def test_status_shows_times_on_the_configured_clock(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url).replace("service", timezone="Europe/Berlin")
    config = write_config(tmp_path / "care-intro.toml", settings)
    request = FIXTURES / "request_thunderbird_labelled_lines.eml"
    submitted = run("submit", str(request), "--config", str(config), cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    summary = run("status", "--config", str(config), cwd=tmp_path)
    ref = re.search(r"R-\w{4}-\w{4}", summary.stdout)
    assert ref, summary.stdout
    story = run("status", ref.group(0), "--config", str(config), cwd=tmp_path)
    assert story.returncode == 0, story.stderr
    for text in (summary.stdout, story.stdout):
        assert re.search(r"\d\d:\d\d CES?T", text), text
        assert "UTC" not in text
