"""The request's "Follow up:" line through the running service: the survey is due when it
asked, a line we cannot read is refused, and no stored value can stop an introduction."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from service.referral import workflow
from store import queries
from store.models import Referral
from tests.conftest import eventually, fixture_bytes, wire_fixture
from tests.helpers import NOW, PROSPECT, PROVIDER, request_referral, send, text_of, web
from tests.test_answers_by_mail import reply
from tests.test_deadlines import open_one

STANDARD = "request_thunderbird_labelled_lines.eml"


def yes_by_link(links: dict[str, str]) -> None:
    for who in (PROVIDER, PROSPECT):
        response = web.post(links[who], data={"answer": "yes"})
        assert response.status_code == 200, response.text


def survey_delay() -> timedelta:
    """How long after the introduction each party's first survey is due."""
    [referral] = queries.recent_referrals()
    assert referral.state == "introduced" and referral.introduced_at is not None
    due = {s.due_at for s in queries.surveys_of(referral.id)}
    assert len(due) == 1
    return due.pop() - referral.introduced_at


def test_a_follow_up_in_weeks_sets_the_survey_that_many_weeks_on(running, sink, tmp_path):
    request = tmp_path / "six-weeks.eml"
    request.write_bytes(
        fixture_bytes(STANDARD).replace(b"Follow up: 45 days", b"Follow up: 6 weeks")
    )
    # An absolute path: the helper reads a fixture by joining its name to the folder.
    links = request_referral(running.service.smtp_port, sink, fixture=str(request))
    yes_by_link(links)
    assert survey_delay() == timedelta(weeks=6)


def test_a_date_as_follow_up_is_refused_naming_the_line(running, sink):
    send(running.service.smtp_port, wire_fixture("request_refused_invalid_follow_up.eml"))
    [refusal] = sink.wait_for(1)
    text = " ".join(text_of(refusal).split())
    # Answered in the request's German, quoting what it said; nobody else was asked.
    assert "„15.03.2027“ können wir nicht als Frist zum Nachfassen lesen" in text
    assert "zwischen 1 Tag und 2 Jahren" in text
    assert refusal.rcpt_tos == ("ada@referrer.example",)
    assert queries.recent_referrals() == []


# What a store written by an older release may hold: "Follow up: 20270315" read as days,
# and near the largest a PostgreSQL REAL column takes. Each overflowed the survey's date.
HUGE = [pytest.param(20270315.0, id="a-date-as-days"), pytest.param(3e38, id="3e38")]


def stored_follow_up(days: float) -> None:
    [referral] = queries.recent_referrals()
    Referral.update(follow_up_days=days).where(Referral.id == referral.id).execute()


@pytest.mark.parametrize("days", HUGE)
def test_the_second_yes_by_link_introduces_them_whatever_is_stored(running, sink, days):
    links = request_referral(running.service.smtp_port, sink)
    stored_follow_up(days)
    yes_by_link(links)
    assert survey_delay() == timedelta(days=running.settings.timing.follow_up_days)


@pytest.mark.parametrize("days", HUGE)
def test_the_second_yes_by_reply_introduces_them_whatever_is_stored(running, sink, days):
    request_referral(running.service.smtp_port, sink)
    stored_follow_up(days)
    reply(running, sink, PROVIDER, "reply_gmail_top_de_yes.eml")
    reply(running, sink, PROSPECT, "reply_outlook_ios_top_fr_yes.eml")
    eventually(lambda: queries.recent_referrals()[0].state == "introduced", "introduced")
    assert survey_delay() == timedelta(days=running.settings.timing.follow_up_days)
    assert queries.quarantined() == []


@pytest.mark.parametrize(
    ("stored", "delay"),
    [
        pytest.param(None, 30, id="none"),
        pytest.param(45.0, 45, id="in-range"),
        pytest.param(730.0, 730, id="the-longest"),
        pytest.param(731.0, 30, id="past-the-longest"),
        pytest.param(0.5, 30, id="under-a-day"),
        pytest.param(-3.0, 30, id="negative"),
        pytest.param(math.inf, 30, id="infinite"),
        pytest.param(math.nan, 30, id="nan"),
        pytest.param(1e308, 30, id="1e308"),
    ],
)
def test_follow_up_at_never_overflows(ctx, stored, delay):
    referral = replace(open_one(ctx), follow_up_days=stored)
    assert workflow.follow_up_at(referral, 30, NOW) == NOW + timedelta(days=delay)
