"""The pages behind links, through a real HTTP client: GET shows, only POST decides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.clock import FixedClock, SystemClock
from service.keys import secret_keys
from service.model import Channel
from service.referral import deadlines, workflow
from service.tokens import Purpose, Tokens
from store import queries
from tests.conftest import REFERRER, eventually
from tests.helpers import PROSPECT, PROVIDER, parse, request_referral, text_of, web


@pytest.fixture
def links(running, sink):
    found = request_referral(running.service.smtp_port, sink)
    # The sink has the three mails a moment before the outbox records the last one as sent;
    # a snapshot taken in between would see that record land as a change.
    eventually(lambda: queries.outbox_counts() == {"sent": 3}, "the outbox to settle")
    return found


def snapshot():
    """Everything a click could change."""
    [referral] = queries.recent_referrals()
    return (
        referral.state,
        [(p.answer, p.answered_at) for p in referral.parties],
        len(queries.events_for(referral.id)),
        queries.outbox_counts(),
    )


def test_get_and_head_show_the_question_and_change_nothing(links):
    before = snapshot()
    for url in (links[PROVIDER], links[PROVIDER] + "?answer=yes", links[PROSPECT] + "?answer=no"):
        page = web.get(url)
        assert page.status_code == 200
        assert "Would you like to be introduced?" in page.text
        assert "bookkeeping for a 5-person bakery" in page.text
        assert 'method="post"' in page.text
        head = web.head(url)
        assert head.status_code == 200 and head.content == b""
    assert snapshot() == before


def test_the_answer_in_the_link_is_preselected_but_not_recorded(links):
    page = web.get(links[PROVIDER] + "?answer=yes")
    assert 'class="yes chosen" autofocus' in page.text
    assert "Nothing is recorded until you press a button." in page.text
    assert queries.recent_referrals()[0].party("provider").answer is None


def test_post_records_and_a_repeated_post_changes_nothing(links):
    first = web.post(links[PROVIDER], data={"answer": "yes"})
    assert first.status_code == 200 and "Thank you, that is a yes" in first.text
    after_first = snapshot()
    again = web.post(links[PROVIDER], data={"answer": "yes"})
    assert again.status_code == 200 and "You have already answered" in again.text
    assert snapshot() == after_first
    assert "You have already answered" in web.get(links[PROVIDER]).text


def test_a_no_with_its_reason_reaches_the_referrer_and_only_the_referrer(links, sink):
    form = {"answer": "no", "reason": "not_relevant", "reason_text": "we do this in house"}
    assert "Thank you, that is a no" in web.post(links[PROSPECT], data=form).text
    told_whom = {d.rcpt_tos: d for d in sink.wait_for(5)[3:]}
    to_provider, to_referrer = told_whom[(PROVIDER,)], told_whom[(REFERRER,)]
    told = " ".join(text_of(to_referrer).split())
    assert "Their reason: it is not relevant to them." in told
    assert 'In their words: "we do this in house"' in told
    assert "house" not in text_of(to_provider) and "relevant" not in text_of(to_provider)
    prospect = queries.recent_referrals()[0].party("prospect")
    assert (prospect.decline_reason, prospect.decline_text) == (
        "not_relevant",
        "we do this in house",
    )


def test_a_yes_can_be_taken_back_until_the_introduction(links, sink):
    web.post(links[PROVIDER], data={"answer": "yes"})
    page = web.get(links[PROVIDER])
    assert "Changed your mind?" in page.text and 'value="no"' in page.text
    withdrawn = web.post(links[PROVIDER], data={"answer": "no"})
    assert "Thank you, that is a no" in withdrawn.text
    [referral] = queries.recent_referrals()
    assert referral.state == "declined"
    assert [e.kind for e in queries.events_for(referral.id)][-2:] == ["changed to no", "declined"]


def test_a_no_is_final_and_the_page_says_whom_to_ask_instead(links, sink):
    web.post(links[PROSPECT], data={"answer": "no"})
    sink.wait_for(5)
    eventually(lambda: queries.outbox_counts() == {"sent": 5}, "the outbox to settle")
    before = snapshot()
    # The page behind the link, and the question mail's own Yes link, offer no yes any more.
    for url in (links[PROSPECT], links[PROSPECT] + "?answer=yes"):
        page = web.get(url)
        words = " ".join(page.text.split())
        assert "has already been told that the introduction will not go ahead" in words
        assert "please ask Ada Lovelace to send a new request" in words
        assert 'value="yes"' not in page.text
    late = web.post(links[PROSPECT], data={"answer": "yes"})
    assert late.status_code == 200 and "Your no stands" in late.text
    assert "please ask Ada Lovelace to send a new request" in " ".join(late.text.split())
    # Nothing was recorded as a change, and nobody else heard of it.
    assert snapshot() == before
    assert queries.recent_referrals()[0].party("prospect").answer == "no"


@pytest.mark.parametrize("end", ["expired", "undeliverable"])
def test_a_yes_whose_referral_ended_otherwise_is_not_told_it_may_still_happen(running, links, end):
    web.post(links[PROVIDER], data={"answer": "yes"})
    [referral] = queries.recent_referrals()
    if end == "expired":
        later = referral.expires_at + timedelta(minutes=1)
        deadlines.expire_due(running.service.ctx, later)
    else:
        bob = referral.party("prospect")
        workflow.undeliverable(
            running.service.ctx, referral.id, bob.id, "5.1.1", Channel.SMTP, referral.created_at
        )
    assert queries.recent_referrals()[0].state == end
    # They were mailed that it will not go ahead; their page must say the same.
    words = " ".join(web.get(links[PROVIDER]).text.split())
    assert "The introduction will not go ahead." in words
    assert "as soon as the other person agrees" not in words


def test_a_reason_we_do_not_know_is_a_bad_form(links):
    page = web.post(links[PROSPECT], data={"answer": "no", "reason": "because"})
    assert page.status_code == 400
    assert queries.recent_referrals()[0].party("prospect").answer is None


def test_two_yeses_send_the_introduction(links, sink):
    web.post(links[PROVIDER], data={"answer": "yes"})
    done = web.post(links[PROSPECT], data={"answer": "yes"})
    assert "the introduction is on its way" in done.text
    intros = [m for m in map(parse, sink.wait_for(6)[3:]) if m["Reply-To"]]
    assert sorted(m["Subject"] for m in intros) == ["Introduction: Jane Roe and Bob Smith"] * 2
    assert eventually(lambda: queries.recent_referrals()[0].state == "introduced", "introduced")


def test_after_a_no_the_other_link_says_the_question_is_closed(links, sink):
    declined = web.post(links[PROSPECT], data={"answer": "no"})
    assert "Thank you, that is a no" in declined.text
    closed = web.get(links[PROVIDER])
    assert closed.status_code == 410 and "This question is closed" in closed.text
    late = web.post(links[PROVIDER], data={"answer": "yes"})
    assert late.status_code == 410
    assert queries.recent_referrals()[0].party("provider").answer is None


@pytest.mark.parametrize(
    "mangle",
    [lambda u: u[:-3], lambda u: u + "x", lambda u: u.rsplit("/", 1)[0] + "/not-a-token"],
    ids=["truncated", "extended", "garbage"],
)
def test_a_tampered_link_gets_a_clear_404(links, mangle):
    for method in (web.get, web.post):
        page = method(mangle(links[PROVIDER]))
        assert page.status_code == 404
        assert "This link does not work" in page.text
        assert "Traceback" not in page.text


def _base(links) -> str:
    return links[PROVIDER].rsplit("/c/", 1)[0]


def test_an_expired_link_gets_410(running, links):
    settings = running.settings
    long_ago = FixedClock(
        SystemClock().now() - timedelta(days=settings.timing.consent_expiry_days + 1)
    )
    ask_key = queries.recent_referrals()[0].party("provider").ask_key
    old = Tokens(secret_keys(settings), long_ago, {p: timedelta(days=14) for p in Purpose})
    page = web.get(f"{_base(links)}/c/{old.make(Purpose.CONSENT, ask_key)}")
    assert page.status_code == 410 and "This link has expired" in page.text


def test_a_link_signed_for_another_purpose_is_refused(running, links):
    ask_key = queries.recent_referrals()[0].party("provider").ask_key
    token = running.service.ctx.tokens.make(Purpose.SURVEY, ask_key)
    assert web.get(f"{_base(links)}/c/{token}").status_code == 404
    assert web.post(f"{_base(links)}/c/{token}", data={"answer": "yes"}).status_code == 404
    assert queries.recent_referrals()[0].party("provider").answer is None


def test_a_genuine_token_for_a_question_we_do_not_have_is_404(running, links):
    token = running.service.ctx.tokens.make(Purpose.CONSENT, "no-such-question")
    assert web.get(f"{_base(links)}/c/{token}").status_code == 404


@pytest.mark.parametrize("form", [{}, {"answer": "maybe"}, {"answer": ""}])
def test_a_form_without_yes_or_no_is_a_400(links, form):
    page = web.post(links[PROVIDER], data=form)
    assert page.status_code == 400 and "Please choose yes or no" in page.text


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"--x\r\nbroken", "multipart/form-data; boundary=x", 400),
        (b"answer=yes", "multipart/form-data", 400),  # no boundary
        (b"--x\r\nContent-Disposition: form-data\r\n\r\nyes\r\n--x--\r\n", None, 400),
        (b"answer=yes&reason=" + b"x" * 70_000, "application/x-www-form-urlencoded", 413),
    ],
    ids=["torn-multipart", "no-boundary", "part-without-name", "too-large"],
)
def test_a_body_no_browser_sends_gets_our_page_and_records_nothing(
    links, body, content_type, status, caplog
):
    before = snapshot()
    content_type = content_type or "multipart/form-data; boundary=x"
    page = web.post(links[PROVIDER], content=body, headers={"Content-Type": content_type})
    assert page.status_code == status and "Please choose yes or no" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert snapshot() == before
    assert not [r for r in caplog.records if r.exc_info]


def test_pages_carry_security_headers_and_unknown_paths_get_our_404(links):
    for response in (web.get(links[PROVIDER]), web.get(_base(links) + "/nope")):
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    missing = web.get(_base(links) + "/nope")
    assert missing.status_code == 404 and "This link does not work" in missing.text
    assert web.put(links[PROVIDER]).status_code == 405


@pytest.mark.parametrize(
    ("header", "lang"),
    [("de-AT,de;q=0.9,en;q=0.8", "de"), ("es,fr;q=0.5", "fr"), ("ar-EG", "ar"), ("", "en")],
)
def test_the_home_page_follows_the_browsers_language(running, header, lang):
    page = web.get(running.settings.service.public_url + "/", headers={"Accept-Language": header})
    assert f'<html lang="{lang}"' in page.text
