"""The referrer's summaries, the report page and `report --format json` tell the same story.

Real referrals go through real survey rounds ("not yet" then "yes" with a value, a "no",
an unanswered round, two currencies) on a real store, answered on the survey page over
HTTP; then each surface is read as its reader gets it: the summaries at the SMTP sink, the
page over HTTP, the JSON from the command line.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from babel.numbers import get_currency_symbol, parse_decimal

from service import ids
from service.evaluation import letters, surveys
from service.model import Answer, Channel, DeclineReason
from service.reading.request import parse_message, parse_request
from service.referral import workflow
from service.writing.formats import format_money, format_number
from store import queries
from store.db import transaction
from tests.conftest import (
    REFERRER,
    FixedClock,
    InProcess,
    fixture_bytes,
    make_context,
    make_settings,
    write_config,
)
from tests.helpers import NOW, parse, text_of, web
from tests.test_cli import run
from tests.test_deadlines import ADA, REQUEST

DAY = timedelta(days=1)
FIRST = NOW + timedelta(days=45)  # the standard request's "Follow up: 45 days"

JANE = "jane@acme.example"
BOB = "bob@bakery.example"
CAROL = "carol@cafe.example"
DAN = "dan@deli.example"
ERIN = "erin@florist.example"


def _open(ctx, provider: str, prospect: str):
    """The standard request, with other people in it."""
    raw = fixture_bytes(REQUEST)
    raw = re.sub(rb"(?m)^Provider: .*$", f"Provider: {provider}".encode(), raw)
    raw = re.sub(rb"(?m)^Prospect: .*$", f"Prospect: {prospect}".encode(), raw)
    draft = parse_request(parse_message(raw))
    return workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)


class Story:
    """Four introductions and one no, surveyed over two rounds, all settled."""

    def __init__(self, service: InProcess, clock: FixedClock) -> None:
        self.service, self.clock = service, clock
        self.ctx = make_context(service.settings, clock)
        ctx = self.ctx
        self.won_later = _open(ctx, f"Jane Roe <{JANE}>", f"Bob Smith <{BOB}>")
        self.half_quiet = _open(ctx, f"Carol Cafe <{CAROL}>", f"Dan Deli <{DAN}>")
        self.asked_twice = _open(ctx, f"Jane Roe <{JANE}>", f"Erin Florist <{ERIN}>")
        self.silent = _open(ctx, f"Dan Deli <{DAN}>", f"Bob Smith <{BOB}>")
        for referral in (self.won_later, self.half_quiet, self.asked_twice, self.silent):
            for role in ("provider", "prospect"):
                workflow.answer(ctx, referral.party(role).ask_key, Answer.YES, Channel.LINK, NOW)
        declined = _open(ctx, f"Carol Cafe <{CAROL}>", f"Erin Florist <{ERIN}>")
        workflow.answer(
            ctx,
            declined.party("provider").ask_key,
            Answer.NO,
            Channel.LINK,
            NOW,
            DeclineReason.NOT_RELEVANT,
        )

        self.at(FIRST)
        assert surveys.send_due(ctx, FIRST) == 8
        self.at(FIRST + DAY)
        self.answer(
            self.won_later,
            "provider",
            rating="3",
            business="not_yet",
            comment="still deciding",
        )
        self.answer(self.won_later, "prospect", rating="4", business="no", more="no")
        self.answer(
            self.half_quiet,
            "provider",
            rating="4",
            business="yes",
            amount="800",
            currency="USD",
            more="yes",
        )
        self.answer(
            self.asked_twice, "provider", rating="4", business="yes", amount="300", currency="EUR"
        )
        self.answer(self.asked_twice, "prospect", rating="2", business="not_yet")

        again = FIRST + DAY + timedelta(days=ctx.settings.timing.follow_up_again_days)
        self.at(again)
        assert surveys.send_due(ctx, again) == 2  # the two "not yet"s, asked again
        self.at(again + DAY)
        self.answer(
            self.won_later,
            "provider",
            rating="5",
            business="yes",
            amount="1200",
            currency="EUR",
            more="yes",
        )
        # Dan never answered round 1, Erin never answered round 2, and nobody answered
        # about the silent introduction: each of those rounds closes.
        self.at(again + timedelta(days=60))
        assert surveys.close_due(ctx, self.clock.at) == 4
        self.service.deliver()

    def at(self, moment) -> None:
        # Nothing in flight when the clock jumps days ahead: a mail handed on and not yet
        # recorded would look to the next run like a claim that ran out.
        self.service.deliver()
        self.clock.at = moment

    def answer(self, referral, role: str, **form: str) -> None:
        party = referral.party(role)
        [latest] = [
            s
            for s in queries.surveys_of(referral.id)
            if s.party_id == party.id and s.state == "sent"
        ]
        url = letters.survey_url(self.ctx, latest.survey_key)
        page = web.post(url, data=form)
        assert page.status_code == 200, page.text


@pytest.fixture
def story(tmp_path, store_url, sink):
    clock = FixedClock(NOW)
    service = InProcess(make_settings(tmp_path, store_url, sink.port), clock)
    try:
        yield Story(service, clock), sink
    finally:
        service.stop()


# ------------------------------------------------------------------ reading each surface


def summaries(sink) -> list[str]:
    found = [d for d in sink.deliveries if parse(d)["Subject"].startswith("How it went:")]
    assert all(d.rcpt_tos == (REFERRER,) for d in found)
    return [text_of(d) for d in found]


HEADER = re.compile(r"^  .+ <(?P<email>[^>]+)> \((provider|prospect)\):$")


def final_answers(summary: str) -> dict[str, list[str]]:
    """Each party's final answer lines, by email; [] for a party who answered nothing.

    With several rounds the final one is marked; with one round its lines are the answer.
    """
    blocks: dict[str, list[str]] = {}
    email = None
    for line in summary.splitlines():
        header = HEADER.match(line)
        if header:
            email = header["email"]
            blocks[email] = []
        elif email and line.startswith("    "):
            blocks[email].append(line.strip())
        elif email and not line.strip():
            email = None
    finals: dict[str, list[str]] = {}
    for email, lines in blocks.items():
        if lines == ["did not answer the survey"]:
            finals[email] = []
            continue
        marked = [i for i, line in enumerate(lines) if "(final answer)" in line]
        if marked:
            rest = lines[marked[0] + 1 :]
            ends = [i for i, line in enumerate(rest) if line.startswith("Round ")]
            lines = rest[: ends[0]] if ends else rest
        finals[email] = lines
    return finals


def _said(lines: list[str], pattern: str) -> str | None:
    found = [m[1] for m in map(re.compile(pattern).fullmatch, lines) if m]
    return found[0] if found else None


def _money(text: str, currencies: list[str]) -> tuple[str, Decimal]:
    """An English money figure back into (currency, amount), among the currencies in play."""
    [currency] = [c for c in currencies if get_currency_symbol(c, "en") in text]
    return currency, parse_decimal(re.sub(r"[^\d.,]", "", text), locale="en")


class Tables(HTMLParser):
    """Every table of a page, as rows of cell texts; a <br> in a cell becomes "|"."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("|")

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    """The page's tables by their first cell's text."""
    parser = Tables()
    parser.feed(html)
    return {table[0][0]: table for table in parser.tables if table and table[0]}


def report_page(story) -> str:
    """The page the referrer's report and digest mails link to."""
    with transaction():
        referrer = queries.referrer(REFERRER, ids.ask_key, story.clock.at)
    page = web.get(letters.report_url(story.ctx, referrer))
    assert page.status_code == 200
    return page.text


# ------------------------------------------------------------------ the agreement


def test_summaries_page_and_json_agree_on_every_figure(story, tmp_path):
    story, sink = story
    texts = summaries(sink)
    config = write_config(tmp_path / "care-intro.toml", story.service.settings)
    done = run(
        "report", "--referrer", REFERRER, "--format", "json", "--config", str(config), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    tables = page_tables(report_page(story))
    currencies = sorted(figures["value_closed"])
    assert currencies == ["EUR", "USD"]

    # What the summaries say, added up as the report adds up: a referral closes one value,
    # the provider's where they named one, else the prospect's.
    finals = [final_answers(text) for text in texts]
    roles = {m["email"]: m[2] for text in texts for m in map(HEADER.match, text.splitlines()) if m}
    ratings: dict[str, list[int]] = defaultdict(list)
    business: dict[str, int] = defaultdict(int)
    values: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    more: dict[str, str] = {}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for summary in finals:
        credited = ""
        for email, lines in sorted(summary.items(), key=lambda item: roles[item[0]] != "provider"):
            if (rating := _said(lines, r"useful: (\d) of 5")) is not None:
                ratings[email].append(int(rating))
            if _said(lines, r"led to business: (.+)") == "yes":
                business[email] += 1
            if (value := _said(lines, r"value closed: (.+)")) is not None:
                currency, amount = _money(value, currencies)
                values[email][currency] += amount
                if not credited:
                    credited = email
                    totals[currency] += amount
            if welcome := _said(lines, r"would welcome more introductions like this: (.+)"):
                more[email] = welcome

    funnel = figures["funnel"]
    assert len(texts) == funnel["introduced"] == 4
    # "Evaluated" counts the introductions someone told us about, not every closed one.
    assert funnel["evaluated"] == sum(any(s.values()) for s in finals) == 3
    assert funnel["led_to_business"] == sum(
        any(_said(lines, r"led to business: (.+)") == "yes" for lines in s.values()) for s in finals
    )
    assert {c: Decimal(v) for c, v in figures["value_closed"].items()} == totals

    people = {p["email"]: p for p in figures["people"]}
    for email, person in people.items():
        mine = ratings.get(email)
        assert person["average_rating"] == (round(sum(mine) / len(mine), 2) if mine else None)
        assert person["business"] == business.get(email, 0)
        assert {c: Decimal(v) for c, v in person["value"].items()} == values.get(email, {})
        assert person["more"] == (
            {"yes": True, "no": False}[more[email]] if email in more else None
        )

    # The page: the same figures, as an English reader sees them.
    steps = {
        "Requested": "requested",
        "Asked": "asked",
        "Both said yes": "both_yes",
        "Introduced": "introduced",
        "Evaluated": "evaluated",
        "Led to business": "led_to_business",
    }
    shown = {steps[row[0]]: int(row[1]) for row in tables["Step"][1:]}
    assert shown == funnel
    [value_table] = [t for t in tables.values() if t[0][0] in currencies]
    assert {row[0]: row[1] for row in value_table} == {
        c: format_money(Decimal(v), c, "en") for c, v in figures["value_closed"].items()
    }
    header, *rows = tables["Person"]
    page_people = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert len(page_people) == len(people)
    for person in people.values():
        row = page_people[person["name"]]
        assert int(row["Referred"]) == person["referred"]
        assert int(row["Introduced"]) == person["introduced"]
        assert int(row["Said no"]) == person["declined"]
        assert int(row["Business"]) == person["business"]
        rating = person["average_rating"]
        assert row["Rating"] == ("–" if rating is None else format_number(rating, "en"))
        value = "|".join(format_money(Decimal(v), c, "en") for c, v in person["value"].items())
        assert row["Value"] == (value or "–")
        assert row["Welcomes more?"] == {True: "yes", False: "no", None: "–"}[person["more"]]


def test_the_summary_shows_each_round_in_order_and_the_final_answer(story):
    story, sink = story
    [won] = [t for t in summaries(sink) if JANE in t and BOB in t]
    jane = won[won.index(f"<{JANE}> (provider):") : won.index(f"<{BOB}> (prospect):")]
    first, second = jane.index("Round 1,"), jane.index("Round 2,")
    assert first < second
    assert "led to business: not yet" in jane[first:second]
    assert 'in their words: "still deciding"' in jane[first:second]
    assert "(final answer)" in jane[second:] and "(final answer)" not in jane[first:second]
    assert format_money(Decimal("1200"), "EUR", "en") in jane[second:]
    assert "only its value is credited to you" in won

    [twice] = [t for t in summaries(sink) if ERIN in t]
    erin = twice[twice.index(f"<{ERIN}> (prospect):") :]
    assert re.search(r"Round 1, asked .+, answered .+ \(final answer\):", erin)
    assert re.search(r"Round 2, asked [^,\n]+: no answer", erin)
