"""Configuration that fails early: every problem named, one line each, exit 78 (EX_CONFIG)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.settings import parse
from tests.conftest import make_settings, write_config
from tests.test_cli import one_line_error, run

EX_CONFIG = 78


@pytest.fixture
def good(tmp_path, sqlite_url):
    return make_settings(tmp_path, sqlite_url)


def check(tmp_path, settings, *extra_lines: str, env: dict[str, str] | None = None):
    config = write_config(tmp_path / "care-intro.toml", settings)
    if extra_lines:
        config.write_text(config.read_text() + "\n".join(extra_lines) + "\n")
    if env is None:
        return run("check-config", "--config", str(config), cwd=tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")}
    return subprocess.run(
        [sys.executable, "-m", "service", "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, **env},
        timeout=60,
    )


def test_a_good_configuration_passes(tmp_path, good):
    done = check(tmp_path, good)
    assert (done.returncode, done.stdout, done.stderr) == (0, "configuration OK\n", "")


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("inbound", {"port": 99999}, "inbound.port must be between 1 and 65535, not 99999"),
        ("web", {"port": 0}, "web.port must be between 1 and 65535, not 0"),
        ("outbound", {"port": -1}, "outbound.port must be between 1 and 65535, not -1"),
        (
            "security",
            {"allowed_referrers": ("ada@referrer.example", "ada at referrer")},
            "security.allowed_referrers: 'ada at referrer' is neither an address nor",
        ),
        (
            "security",
            {"allowed_referrers": ("*@",)},
            "security.allowed_referrers: '*@' is neither",
        ),
        (
            "timing",
            {"reminder_after_days": 14.0, "consent_expiry_days": 14.0},
            "timing.reminder_after_days must be less than timing.consent_expiry_days",
        ),
        ("inbound", {"max_message_bytes": 0}, "inbound.max_message_bytes must be more than 0"),
        (
            "outbound",
            {"daily_limit_per_address": 0},
            "outbound.daily_limit_per_address must be 1 or more",
        ),
        (
            "outbound",
            {"daily_reports_per_referrer": 0},
            "outbound.daily_reports_per_referrer must be 1 or more",
        ),
        ("outbound", {"connections": 0}, "outbound.connections must be between 1 and 100"),
        (
            "service",
            {"public_url": "intro.example.org"},
            "service.public_url must be an http:// or https:// URL with a host",
        ),
        ("service", {"public_url": "https://"}, "service.public_url must be an http://"),
        (
            "database",
            {"url": "postgresql://postgres@127.0.0.1:1/nowhere"},
            "database.url: cannot reach the database",
        ),
        (
            "outbound",
            {
                "dkim_domain": "intro.example.org",
                "dkim_selector": "mail2027",
                "dkim_key_file": "/nonexistent/dkim.pem",
            },
            "outbound.dkim_key_file",
        ),
        ("outbound", {"tls_ca_file": "/nonexistent/ca.pem"}, "outbound.tls_ca_file"),
    ],
    ids=[
        "port-too-high",
        "port-zero",
        "port-negative",
        "referrer",
        "referrer-pattern",
        "reminder-after-expiry",
        "message-size",
        "daily-limit",
        "daily-reports",
        "connections",
        "public-url",
        "public-url-host",
        "database",
        "dkim-key-file",
        "tls-ca-file",
    ],
)
def test_each_bad_value_is_one_clear_line(tmp_path, good, section, values, message):
    one_line_error(check(tmp_path, good.replace(section, **values)), EX_CONFIG, message)


def test_an_override_that_names_no_key_is_refused(tmp_path, good):
    done = check(tmp_path, good, env={"CARE_INTRO_SERVICE_BOGUS": "1"})
    one_line_error(
        done, EX_CONFIG, "environment variable CARE_INTRO_SERVICE_BOGUS names no configuration key"
    )


def test_every_problem_is_reported_at_once(tmp_path, good):
    bad = good.replace("inbound", port=99999).replace("service", public_url="ftp://x")
    bad = bad.replace("database", url="postgresql://postgres@127.0.0.1:1/nowhere")
    done = check(tmp_path, bad, "[bogus]", env={"CARE_INTRO_DATABSE_URL": "sqlite:///x.db"})
    assert done.returncode == EX_CONFIG
    lines = done.stderr.splitlines()
    assert all(line.startswith("care-intro: ") for line in lines)
    assert [line for line in lines if "unknown configuration section" in line]
    assert [line for line in lines if "CARE_INTRO_DATABSE_URL names no" in line]
    assert [line for line in lines if "inbound.port" in line]
    assert [line for line in lines if "service.public_url" in line]
    assert [line for line in lines if "database.url: cannot reach the database" in line]
    assert len(lines) == 5, done.stderr


def test_serve_refuses_port_99999_before_opening_any_port(tmp_path, good):
    config = write_config(tmp_path / "care-intro.toml", good.replace("inbound", port=99999))
    done = run("serve", "--config", str(config), cwd=tmp_path)
    one_line_error(done, EX_CONFIG, "inbound.port must be between 1 and 65535, not 99999")
    assert "OverflowError" not in done.stderr


def test_a_missing_postgresql_driver_names_the_install_command(tmp_path, good):
    config = write_config(
        tmp_path / "care-intro.toml", good.replace("database", url="postgresql://care@db/care")
    )
    # The interpreter as it is where psycopg2 was never installed: the import finds nothing.
    program = (
        "import sys; sys.modules['psycopg2'] = None\n"
        "from service.edge.cli import main\n"
        f"sys.exit(main(['check-config', '--config', {str(config)!r}]))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")}
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean,
        timeout=60,
    )
    one_line_error(done, EX_CONFIG, "pip install 'care-intro[postgresql]'")


def test_a_key_with_a_problem_keeps_its_default_so_the_rest_is_still_checked():
    settings, problems = parse(
        {"inbound": {"port": "25"}, "web": {"port": 70000}},
        {"CARE_INTRO_TEST_DATABASE_URL": "left to test suites"},
    )
    assert settings.inbound.port == 8025
    assert problems == [
        "inbound.port must be a whole number",
        "web.port must be between 1 and 65535, not 70000",
    ]


def test_an_empty_controller_is_a_warning_that_does_not_fail(tmp_path, good):
    done = check(tmp_path, good.replace("privacy", controller=""))
    assert done.returncode == 0
    assert done.stdout == "configuration OK\n"
    assert (
        done.stderr
        == "warning: privacy.controller is empty: /privacy names nobody as responsible\n"
    )
