"""The referrer's report: by mail command, on the page behind its signed link (drawn in a
real headless Chromium), and from the command line in text, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from service.evaluation import charts
from service.intake import commands
from service.model import Answer, Channel, DeclineReason
from service.reading.request import parse_message
from service.referral import workflow
from store import queries
from tests import browser
from tests.conftest import (
    FIXTURES,
    REFERRER,
    eventually,
    fixture_bytes,
    wire_fixture,
    write_config,
)
from tests.helpers import NOW, PROSPECT, PROVIDER, parse, send, text_of, web
from tests.test_cli import run
from tests.test_deadlines import open_one

COMMANDS = sorted(p.name for p in FIXTURES.glob("command_report_*.eml"))


@pytest.mark.parametrize("name", COMMANDS)
def test_a_report_command_is_recognised(name):
    assert commands.report_language(parse_message(fixture_bytes(name))) is not None


@pytest.mark.parametrize(
    "name",
    ["request_thunderbird_labelled_lines.eml", "forward_gmail_web_en.eml"],
)
def test_a_request_is_not_a_report_command(name):
    assert commands.report_language(parse_message(fixture_bytes(name))) is None


def add_history(surveyed) -> None:
    """Business from one survey, and a second referral declined as not relevant."""
    web.post(surveyed.links[PROVIDER], data={"rating": "5", "business": "yes"})
    web.post(
        surveyed.links[PROSPECT],
        data={"rating": "4", "business": "yes", "amount": "1200", "currency": "EUR"},
    )
    other = open_one(surveyed.ctx)
    workflow.answer(
        surveyed.ctx,
        other.party("provider").ask_key,
        Answer.NO,
        Channel.LINK,
        NOW,
        DeclineReason.NOT_RELEVANT,
    )


def report_by_mail(surveyed, fixture: str):
    send(surveyed.service.service.smtp_port, wire_fixture(fixture))

    def the_report():
        asked = parse_message(fixture_bytes(fixture))["Message-ID"]
        found = [d for d in surveyed.sink.deliveries if parse(d)["In-Reply-To"] == asked]
        return found[0] if len(found) == 1 else None

    return eventually(the_report, "the report at the sink")


@pytest.mark.parametrize(
    ("fixture", "language"),
    [
        ("command_report_apple_mail_subject.eml", "en"),
        ("command_report_gmail_body_only.eml", "en"),
        ("command_report_outlook_german_reply.eml", "de"),
    ],
)
def test_a_referrer_who_mails_report_gets_theirs_back(surveyed, fixture, language):
    add_history(surveyed)
    mail = report_by_mail(surveyed, fixture)
    assert mail.rcpt_tos == (REFERRER,)
    message = parse(mail)
    assert message["In-Reply-To"] == parse_message(fixture_bytes(fixture))["Message-ID"]
    # Answered in the language the command was written in.
    assert message["Content-Language"] == language
    text = text_of(mail)
    assert re.search(r"http://\S+/r/[A-Za-z0-9_.\-]+", text)
    # A report is an answer, not a request: nothing was opened, nobody else was written to.
    assert len(queries.recent_referrals()) == 2


def test_the_mailed_report_gives_the_figures(surveyed):
    add_history(surveyed)
    text = text_of(report_by_mail(surveyed, "command_report_apple_mail_subject.eml"))
    assert "Requested: 2 (100%)" in text
    assert "Led to business: 1 (50%)" in text
    assert "Not relevant to them: 1" in text
    assert "€1,200.00" in text  # Babel writes the money as an English reader expects


def report_link(surveyed) -> str:
    add_history(surveyed)
    mail = report_by_mail(surveyed, "command_report_apple_mail_subject.eml")
    return re.search(r"(http://\S+/r/[A-Za-z0-9_.\-]+)", text_of(mail))[1]


def test_the_report_page_shows_the_figures_and_the_funnel_without_scripts(surveyed):
    page = web.get(report_link(surveyed))
    assert page.status_code == 200
    assert "script" not in page.headers["Content-Security-Policy"].split("style-src")[0]
    assert "<script" not in page.text
    assert "<svg" in page.text and 'role="img"' in page.text
    assert "From request to business" in page.text
    assert "Jane Roe" in page.text and "Bob Smith" in page.text
    assert "1,200.00" in page.text
    assert "Not relevant to them" in page.text


def test_a_tampered_report_link_is_a_404(surveyed):
    url = report_link(surveyed)
    assert web.get(url[:-2]).status_code == 404


@browser.needs_chromium
def test_chromium_draws_the_funnel_in_proportion(surveyed, tmp_path):
    url = report_link(surveyed)
    dom = browser.dump_dom(url)
    assert dom.count('class="bar"') + dom.count('class="bar ') >= 4
    shot = browser.screenshot(url, tmp_path / "report.png", size=(1000, 1600))
    fill = browser.hex_to_rgb(charts.BAR_FILL)
    assert browser.pixels_of(shot, fill) > 2000
    # The funnel comes first on the page: requested 2, asked 2, then 1 at every later step.
    widths = _bar_widths(shot, fill)[:6]
    assert [round(w / widths[0], 2) for w in widths] == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]


def _bar_widths(path: Path, rgb: tuple[int, int, int]) -> list[int]:
    """The length of each horizontal run of the bar colour, one per bar, top to bottom."""
    mask = browser.colour_mask(path, rgb)
    width, height = mask.size
    pixels = mask.load()
    runs: list[int] = []
    previous = 0
    for y in range(height):
        run = sum(1 for x in range(width) if pixels[x, y])
        if run and not previous:
            runs.append(run)
        elif run and runs:
            runs[-1] = max(runs[-1], run)
        previous = run
    return runs


# ------------------------------------------------------------------ the command line


@pytest.fixture
def cli_config(tmp_path, surveyed):
    add_history(surveyed)
    return write_config(tmp_path / "care-intro.toml", surveyed.service.settings)


def test_report_as_text_json_and_csv(tmp_path, cli_config):
    text = run("report", "--config", str(cli_config), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "FUNNEL" in text.stdout and "Requested: 2" in text.stdout
    german = run("report", "--language", "de", "--config", str(cli_config), cwd=tmp_path)
    assert german.returncode == 0, german.stderr
    assert "EMPFEHLUNGSTRICHTER" in german.stdout and "Eingereicht: 2" in german.stdout
    as_json = run("report", "--format", "json", "--config", str(cli_config), cwd=tmp_path)
    figures = json.loads(as_json.stdout)
    assert figures["funnel"]["requested"] == 2
    assert figures["funnel"]["led_to_business"] == 1
    assert figures["declines"]["not_relevant"] == 1
    assert figures["value_closed"] == {"EUR": "1200.00"}
    as_csv = run("report", "--format", "csv", "--config", str(cli_config), cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    funnel = {r["measure"]: r["value"] for r in rows if r["section"] == "funnel"}
    assert funnel["introduced"] == "1"


def test_report_for_one_referrer_since_a_date(tmp_path, cli_config):
    def funnel(*args: str) -> dict:
        done = run("report", "--format", "json", *args, "--config", str(cli_config), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["funnel"]

    assert funnel("--referrer", REFERRER)["requested"] == 2
    assert funnel("--referrer", "nobody@else.example")["requested"] == 0
    assert funnel("--since", "2026-11-23")["requested"] == 0
    assert funnel("--since", "2026-11-22T00:00:00+00:00")["requested"] == 2


def test_a_day_since_starts_at_midnight_in_the_services_time_zone(tmp_path, cli_config):
    # The referrals came in at 12:00 UTC on 22 November: 23 November has begun in Kiritimati.
    config = cli_config.read_text()
    config = re.sub(r"(?m)^timezone = .*$", 'timezone = "Pacific/Kiritimati"', config)
    cli_config.write_text(config)
    done = run(
        "report",
        "--format",
        "json",
        "--since",
        "2026-11-23",
        "--config",
        str(cli_config),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["funnel"]["requested"] == 2
    text = run("report", "--since", "2026-11-23", "--config", str(cli_config), cwd=tmp_path)
    assert "since 23 November 2026" in text.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "last tuesday"], "--since"),
        (["--format", "xml"], "invalid choice"),
        (["--language", "xx"], "invalid choice"),
    ],
)
def test_report_refuses_what_it_cannot_read(tmp_path, cli_config, args, says):
    done = run("report", *args, "--config", str(cli_config), cwd=tmp_path)
    assert done.returncode != 0
    assert says in done.stderr


def test_a_deal_both_parties_report_is_one_value_in_the_report(tmp_path, surveyed):
    # The provider earned it and the prospect paid it: one deal, 1,200 EUR, not 2,400.
    for party in (PROVIDER, PROSPECT):
        answered = web.post(
            surveyed.links[party],
            data={"rating": "5", "business": "yes", "amount": "1200", "currency": "EUR"},
        )
        assert answered.status_code == 200
    config = write_config(tmp_path / "care-intro.toml", surveyed.service.settings)
    text = run("report", "--config", str(config), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "Led to business: 1" in text.stdout
    assert "€1,200.00" in text.stdout and "2,400" not in text.stdout
    as_json = run("report", "--format", "json", "--config", str(config), cwd=tmp_path)
    figures = json.loads(as_json.stdout)
    assert figures["value_closed"] == {"EUR": "1200.00"}
    # Each person's own row keeps what they reported.
    assert [p["value"] for p in figures["people"]] == [{"EUR": "1200.00"}] * 2
