"""Who may refer, kept in the store beside the configuration, and in effect at once."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime

import pytest

from service.clock import FixedClock
from service.evaluation import digest
from service.intake import receiving
from service.reading.authorization import judge
from service.settings import SecuritySettings
from service.writing.context import make_context
from store import referrers
from tests.conftest import (
    REFERRER,
    ServeProcess,
    eventually,
    make_settings,
    wire_fixture,
    write_config,
)
from tests.helpers import inbound_counts
from tests.test_cli import one_line_error, run
from tests.test_digest import NOW as WEEK_NOW
from tests.test_digest import SLOT, open_one

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
NEWCOMER = "grace@newcomers.example"
RCPT = "refer@intro.example.org"


def request_from(address: str, tag: str) -> bytes:
    """A real request, written by `address`, with its own Message-ID."""
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    raw = raw.replace(REFERRER.encode(), address.encode())
    return raw.replace(b"Message-ID: <", b"Message-ID: <" + tag.encode() + b".", 1)


def test_adding_is_idempotent_and_removing_says_whether_it_held_one(store_url):
    assert referrers.add(NEWCOMER, "Grace", NOW) is True
    assert referrers.add(NEWCOMER, "", NOW) is False
    assert referrers.add(NEWCOMER, "Grace Hopper", NOW) is False
    assert [(r.email, r.name) for r in referrers.listed()] == [(NEWCOMER, "Grace Hopper")]
    assert referrers.allowed_among([NEWCOMER, "mallory@elsewhere.example"]) == {NEWCOMER}
    assert referrers.remove(NEWCOMER) is True
    assert referrers.remove(NEWCOMER) is False
    assert referrers.allowed_among([NEWCOMER]) == set()


def test_judge_takes_the_stores_addresses_beside_the_configured_ones():
    headers = receiving.headers_of(request_from(NEWCOMER, "judge"))
    security = SecuritySettings(allowed_referrers=("*@partners.example",))
    assert judge(NEWCOMER, headers, security).referrer is None
    allowed = judge(NEWCOMER, headers, security, also_allowed={NEWCOMER})
    assert allowed.refusal is None and allowed.referrer.address == NEWCOMER


def test_every_check_of_a_sender_asks_the_store(tmp_path, store_url):
    settings = make_settings(tmp_path, store_url)
    headers = receiving.headers_of(request_from(NEWCOMER, "everywhere"))
    assert receiving.admission(NEWCOMER, [RCPT], headers, settings) is not None
    assert not receiving.may_refer(NEWCOMER, settings)
    referrers.add(NEWCOMER, "", NOW)
    assert receiving.admission(NEWCOMER, [RCPT], headers, settings) is None
    assert receiving.verdict(NEWCOMER, headers, settings).referrer.address == NEWCOMER
    assert receiving.may_refer(NEWCOMER.upper(), settings)
    assert receiving.may_refer(REFERRER, settings)


@pytest.fixture
def config(tmp_path, store_url):
    return write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, store_url))


def test_the_command_adds_lists_and_removes(tmp_path, config):
    def referrers_cmd(*args: str):
        return run("referrers", *args, "--config", str(config), cwd=tmp_path)

    added = referrers_cmd("add", "Grace@Newcomers.example", "--name", "Grace Hopper")
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"{NEWCOMER}: added\n"
    again = referrers_cmd("add", NEWCOMER)
    assert (again.returncode, again.stdout) == (0, f"{NEWCOMER}: already allowed\n")
    listed = referrers_cmd("list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(f"Grace Hopper <{NEWCOMER}>\tadded ")
    assert lines[1:] == [
        f"{REFERRER}\tfrom the configuration",
        "*@partners.example\tfrom the configuration",
    ]
    removed = referrers_cmd("remove", NEWCOMER)
    assert (removed.returncode, removed.stdout) == (0, f"{NEWCOMER}: removed\n")
    one_line_error(referrers_cmd("remove", NEWCOMER), 1, "not among the referrers in the store")
    one_line_error(referrers_cmd("remove", REFERRER), 1, "the configuration allows it")
    one_line_error(referrers_cmd("add", "not-an-address"), 64, "not an address: not-an-address")
    one_line_error(referrers_cmd("add"), 64, "referrers add needs an ADDRESS")


def test_a_running_serve_follows_the_store_without_a_restart(tmp_path, store_url):
    settings = make_settings(tmp_path, store_url)
    process = ServeProcess.in_folder(tmp_path, settings).start()

    def send(tag: str) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", settings.inbound.port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail(NEWCOMER)
            smtp.rcpt(RCPT)
            return smtp.data(request_from(NEWCOMER, tag))

    def referrers_cmd(*args: str) -> None:
        done = run("referrers", *args, "--config", str(process.config), cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    try:
        code, text = send("before")
        assert code == 550 and b"not allowed to send requests" in text
        referrers_cmd("add", NEWCOMER)
        assert send("member")[0] == 250
        eventually(lambda: inbound_counts() == {"processed": 1}, "the newcomer's request", 30)
        referrers_cmd("remove", NEWCOMER)
        code, text = send("after")
        assert code == 550 and b"not allowed to send requests" in text
        assert inbound_counts() == {"processed": 1}
    finally:
        assert process.stop() == 0, (tmp_path / "serve.log").read_text()


def test_a_referrer_kept_only_in_the_store_still_gets_the_weekly_digest(tmp_path, store_url):
    ctx = make_context(make_settings(tmp_path, store_url), FixedClock(WEEK_NOW))
    open_one(ctx)
    others = ctx.settings.replace("security", allowed_referrers=("*@partners.example",))
    referrers.add(REFERRER, "", WEEK_NOW)
    assert digest.send_due(make_context(others, FixedClock(WEEK_NOW)), SLOT) == 1
