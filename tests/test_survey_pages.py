"""The survey behind a mail's one-click answers, through a real HTTP client against the
running service: GET shows the choice made, only POST records."""

from __future__ import annotations

import re
import smtplib
from datetime import timedelta

import pytest

from service.clock import FixedClock
from service.evaluation import surveys
from service.model import Answer, Channel
from service.referral import workflow
from service.tokens import Purpose
from service.writing.context import make_context
from store import queries
from tests.conftest import REFERRER, InProcess, eventually, wire_fixture
from tests.helpers import NOW, PROSPECT, PROVIDER, parse, text_of, web
from tests.test_deadlines import open_one

FOLLOW_UP = timedelta(days=45)  # the standard request's own "Follow up: 45 days"


class Surveyed:
    """A referral introduced at NOW, its surveys sent at NOW + 45 days and delivered."""

    def __init__(self, service: InProcess, clock: FixedClock, sink) -> None:
        self.service, self.clock, self.sink = service, clock, sink
        self.ctx = make_context(service.settings, clock)
        referral = open_one(self.ctx)
        for role in ("provider", "prospect"):
            workflow.answer(self.ctx, referral.party(role).ask_key, Answer.YES, Channel.LINK, NOW)
        self.referral = queries.referral_by_id(referral.id)
        clock.at = NOW + FOLLOW_UP
        assert surveys.send_due(self.ctx, clock.at) == 2
        self.service.deliver()
        self.links = {
            d.rcpt_tos[0]: re.search(r"(http://\S+/s/[A-Za-z0-9_.\-]+)\?rating=1", text_of(d))[1]
            for d in sink.wait_for(1)
            if b"/s/" in d.data
        }
        assert set(self.links) == {PROVIDER, PROSPECT}

    def survey(self, role: str):
        party = self.referral.party(role)
        return [s for s in queries.surveys_of(self.referral.id) if s.party_id == party.id][-1]


def state(surveyed: Surveyed):
    return [(s.state, s.rating, s.business) for s in queries.surveys_of(surveyed.referral.id)]


def test_a_one_click_answer_shows_the_choice_made_and_records_nothing(surveyed):
    before = state(surveyed)
    url = surveyed.links[PROVIDER]
    for query, checked in (
        ("?rating=4", 'name="rating" value="4" checked'),
        ("?business=not_yet", 'name="business" value="not_yet" checked'),
    ):
        page = web.get(url + query)
        assert page.status_code == 200
        assert checked in page.text
        assert "Nothing is recorded until you press Send." in page.text
        assert "How did the introduction to Bob Smith go?" in page.text
        head = web.head(url + query)
        assert head.status_code == 200 and head.content == b""
    assert state(surveyed) == before


def test_a_choice_that_is_not_offered_is_not_preselected(surveyed):
    page = web.get(surveyed.links[PROVIDER] + "?rating=9&business=maybe")
    assert "checked" not in page.text


def test_post_records_the_answers_and_a_repeat_changes_nothing(surveyed):
    url = surveyed.links[PROVIDER]
    form = {
        "rating": "4",
        "business": "yes",
        "amount": "1.200,50",
        "currency": "EUR",
        "more": "yes",
        "comment": "  Bob was   great ",
    }
    first = web.post(url, data=form)
    assert first.status_code == 200 and "Thank you" in first.text
    survey = surveyed.survey("provider")
    assert (survey.state, survey.rating, survey.business, str(survey.amount), survey.currency) == (
        "answered",
        4,
        "yes",
        "1200.50",
        "EUR",
    )
    assert (survey.more, survey.comment, survey.channel) == (True, "Bob was great", "link")
    again = web.post(url, data={"rating": "1"})
    assert "You have already answered" in again.text
    assert surveyed.survey("provider").rating == 4
    assert "You have already answered" in web.get(url).text


@pytest.mark.parametrize(
    "form",
    [{}, {"rating": "6"}, {"business": "maybe"}, {"amount": "lots"}, {"currency": "euro"}],
    ids=["empty", "rating-6", "unknown-business", "amount-words", "currency-name"],
)
def test_a_form_we_cannot_read_is_a_400_and_records_nothing(surveyed, form):
    page = web.post(surveyed.links[PROVIDER], data=form)
    assert page.status_code == 400
    assert "Please check your answers" in page.text
    assert surveyed.survey("provider").state == "sent"


def test_not_yet_says_we_will_ask_again(surveyed):
    page = web.post(surveyed.links[PROSPECT], data={"business": "not_yet"})
    assert "we will ask you once more" in page.text
    rounds = [s.round for s in queries.surveys_of(surveyed.referral.id)]
    assert sorted(rounds) == [1, 1, 2]


def test_when_both_answered_the_referrer_gets_the_summary_with_the_value(surveyed):
    web.post(surveyed.links[PROVIDER], data={"rating": "5", "business": "yes"})
    web.post(
        surveyed.links[PROSPECT],
        data={"rating": "4", "business": "yes", "amount": "2500", "currency": "RON"},
    )
    surveyed.service.deliver()

    def the_summary():
        found = [d for d in surveyed.sink.deliveries if "How it went" in parse(d)["Subject"]]
        return found[0] if len(found) == 1 else None

    summary = eventually(the_summary, "the summary at the sink")
    assert summary.rcpt_tos == (REFERRER,)
    text = " ".join(text_of(summary).split())
    assert "value closed: RON 2,500.00" in text  # (the space is a no-break one)
    assert "Any value closed is credited to you." in text
    assert queries.referral_by_id(surveyed.referral.id).state == "evaluated"


def test_a_closed_survey_says_so(surveyed):
    surveyed.clock.at = NOW + FOLLOW_UP + timedelta(days=14)
    surveys.close_due(surveyed.ctx, surveyed.clock.at)
    page = web.get(surveyed.links[PROVIDER])
    assert page.status_code == 410 and "This survey is closed" in page.text
    posted = web.post(surveyed.links[PROVIDER], data={"rating": "5"})
    assert posted.status_code == 410


def test_a_tampered_survey_link_is_a_404_and_a_consent_token_does_not_open_it(surveyed):
    url = surveyed.links[PROVIDER]
    assert web.get(url[:-3]).status_code == 404
    consent = surveyed.ctx.tokens.make(Purpose.CONSENT, surveyed.survey("provider").survey_key)
    assert web.get(url.rsplit("/", 1)[0] + "/" + consent).status_code == 404


def test_the_survey_page_shows_nothing_of_the_other_partys_answers(surveyed):
    web.post(
        surveyed.links[PROVIDER],
        data={"rating": "2", "business": "yes", "amount": "31337", "currency": "EUR"},
    )
    for url in (surveyed.links[PROSPECT], surveyed.links[PROSPECT] + "?rating=3"):
        assert "31337" not in web.get(url).text
    done = web.post(surveyed.links[PROSPECT], data={"rating": "3"})
    assert "31337" not in done.text and "31,337" not in done.text


def test_a_survey_that_bounces_closes_and_the_evaluation_goes_on(surveyed):
    [to_bob] = [
        d for d in surveyed.sink.deliveries if d.rcpt_tos == (PROSPECT,) and b"/s/" in d.data
    ]
    with smtplib.SMTP("127.0.0.1", surveyed.service.service.smtp_port, timeout=10) as smtp:
        smtp.sendmail("<>", [to_bob.mail_from], wire_fixture("dsn_postfix_user_unknown.eml"))
    eventually(lambda: surveyed.survey("prospect").state == "expired", "the survey to close")
    assert any(e.kind == "survey bounced" for e in queries.events_for(surveyed.referral.id))
    web.post(surveyed.links[PROVIDER], data={"rating": "3"})
    assert queries.referral_by_id(surveyed.referral.id).state == "evaluated"
