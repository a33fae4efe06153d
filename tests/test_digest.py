"""The weekly digest: once a week, to each referrer with news, never twice, off in one click."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta

import pytest

from service.clock import FixedClock
from service.evaluation import digest
from service.model import Channel
from service.reading.addresses import Mailbox
from service.reading.request import parse_message, parse_request
from service.referral import workflow
from service.tokens import Purpose
from service.writing.context import make_context
from store import queries
from store.models import OutboxMail
from tests.conftest import REFERRER, InProcess, fixture_bytes, make_settings
from tests.helpers import NOW, at_once, web
from tests.test_deadlines import REQUEST, everything_in, open_one, queued_at

# NOW is Sunday 22 November 2026, 12:00 UTC; the default slot is Monday 08:00.
SLOT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("now", "weekday", "hour", "zone", "slot"),
    [
        (SLOT, "monday", 8, "UTC", SLOT),
        (SLOT - timedelta(seconds=1), "monday", 8, "UTC", SLOT - WEEK),
        (SLOT + timedelta(days=3), "monday", 8, "UTC", SLOT),
        (SLOT, "sunday", 23, "UTC", datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        # Berlin is UTC+1 in November: Monday 08:00 there is 07:00 UTC.
        (SLOT, "monday", 8, "Europe/Berlin", datetime(2026, 11, 23, 7, 0, tzinfo=UTC)),
        # Across the end of summer time (25 October 2026): the slot keeps its wall-clock hour.
        (
            datetime(2026, 10, 26, 6, 30, tzinfo=UTC),
            "monday",
            8,
            "Europe/Berlin",
            datetime(2026, 10, 19, 6, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 10, 26, 7, 0, tzinfo=UTC),
            "monday",
            8,
            "Europe/Berlin",
            datetime(2026, 10, 26, 7, 0, tzinfo=UTC),
        ),
    ],
    ids=[
        "on-the-hour",
        "a-second-before",
        "later-that-week",
        "sunday-night",
        "berlin",
        "dst-before",
        "dst-after",
    ],
)
def test_the_latest_slot(now, weekday, hour, zone, slot):
    assert digest.latest_slot(now, weekday, hour, zone) == slot


def digests_at(at: datetime):
    return [m for p, m in queued_at(at) if p == "digest"]


def test_a_referrer_with_news_gets_one_digest_of_their_week(ctx):
    referral = open_one(ctx)
    assert digest.send_due(ctx, SLOT - timedelta(minutes=1)) == 0  # last week's slot: no news
    assert digest.send_due(ctx, SLOT) == 1
    [mail] = digests_at(SLOT)
    assert mail["To"].addresses[0].addr_spec == REFERRER
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    assert referral.ref in text
    assert "we received your request" in text
    assert "we asked both whether they would like the introduction" in text
    [report] = re.findall(r"/r/([A-Za-z0-9_.\-]+)", text)
    [off] = re.findall(r"/d/([A-Za-z0-9_.\-]+)", text)
    key = queries.referrer(REFERRER, lambda: "unused", NOW).key
    assert ctx.tokens.read(Purpose.REPORT, report) == key
    assert ctx.tokens.read(Purpose.DIGEST, off) == key
    # One click in the mail client turns off the digest, not every mail about a referral.
    assert f"/d/{off}" in mail["List-Unsubscribe"]
    assert digest.send_due(ctx, SLOT + timedelta(hours=1)) == 0


def _request_from(ctx, name: str, at: datetime) -> None:
    draft = parse_request(parse_message(fixture_bytes(REQUEST)))
    workflow.open_referral(ctx, draft, Mailbox(name, REFERRER), None, Channel.SMTP, at)


@pytest.mark.parametrize(
    ("names", "greeting", "to"),
    [
        (["Ada Lovelace"], "Hello Ada Lovelace,", "Ada Lovelace"),
        (["Ada Lovelace", "Ada King"], "Hello Ada King,", "Ada King"),
        (["Ada Lovelace", ""], "Hello Ada Lovelace,", "Ada Lovelace"),
        ([""], "Hello,", ""),
    ],
    ids=["her-name", "the-latest-name", "a-later-request-without-one", "never-named"],
)
def test_the_digest_greets_the_referrer_by_the_name_on_their_latest_request(
    ctx, names, greeting, to
):
    for minutes, name in enumerate(names):
        _request_from(ctx, name, NOW + timedelta(minutes=minutes))
    assert digest.send_due(ctx, SLOT) == 1
    [mail] = digests_at(SLOT)
    [address] = mail["To"].addresses
    assert (address.display_name, address.addr_spec) == (to, REFERRER)
    assert mail.get_body(("plain",)).get_content().startswith(greeting + "\n")
    assert f"<p>{greeting}</p>" in mail.get_body(("html",)).get_content()


def test_never_twice_for_one_slot_even_if_the_slot_is_looked_at_again(ctx):
    open_one(ctx)
    assert digest.send_due(ctx, SLOT) == 1
    queries.set_mark("digest_slot", "forgotten")  # as if a crash lost the note
    assert digest.send_due(ctx, SLOT) == 0


def test_a_quiet_week_sends_nothing(ctx):
    open_one(ctx)
    assert digest.send_due(ctx, SLOT) == 1
    assert digest.send_due(ctx, SLOT + WEEK) == 0


def test_no_digest_when_it_is_turned_off_in_the_configuration(tmp_path, store_url):
    settings = make_settings(tmp_path, store_url).replace("digest", enabled=False)
    ctx = make_context(settings, FixedClock(NOW))
    open_one(ctx)
    assert digest.send_due(ctx, SLOT) == 0


def test_no_digest_to_someone_no_longer_allowed_to_refer(tmp_path, store_url):
    ctx = make_context(make_settings(tmp_path, store_url), FixedClock(NOW))
    open_one(ctx)
    others = ctx.settings.replace("security", allowed_referrers=("*@partners.example",))
    assert digest.send_due(make_context(others, FixedClock(NOW)), SLOT) == 0


def test_two_instances_at_once_send_one_digest(ctx):
    open_one(ctx)
    assert sum(at_once(lambda: digest.send_due(ctx, SLOT))) == 1
    assert len(digests_at(SLOT)) == 1


def test_the_digest_shows_nothing_the_referrer_should_not_see(ctx):
    """The value someone reported is for the evaluation summary and the report, not the
    history: the digest is built from events, which never hold it."""
    open_one(ctx)
    digest.send_due(ctx, SLOT)
    [mail] = digests_at(SLOT)
    assert "EUR" not in everything_in(mail)


# ------------------------------------------------------------------ turning it off


@pytest.fixture
def digest_link(tmp_path, store_url, sink):
    clock = FixedClock(NOW)
    service = InProcess(make_settings(tmp_path, store_url, sink.port), clock)
    try:
        ctx = make_context(service.settings, clock)
        open_one(ctx)
        clock.at = SLOT
        assert digest.send_due(ctx, SLOT) == 1
        # The service beside may be sending it already: read it from the store, unclaimed.
        [row] = OutboxMail.select().where(OutboxMail.purpose == "digest")
        mail = email.message_from_bytes(bytes(row.raw), policy=email.policy.default)
        text = mail.get_body(("plain",)).get_content()
        yield ctx, re.search(r"(http://\S+/d/[A-Za-z0-9_.\-]+)", text)[1]
    finally:
        service.stop()


def test_the_digest_link_asks_first_then_turns_it_off(digest_link):
    ctx, url = digest_link
    page = web.get(url)
    assert page.status_code == 200 and "Stop the weekly digest?" in page.text
    assert queries.referrer(REFERRER, lambda: "unused", NOW).digest is True
    done = web.post(url)
    assert done.status_code == 200 and "The weekly digest is off" in done.text
    assert queries.referrer(REFERRER, lambda: "unused", NOW).digest is False
    open_one(ctx)  # news next week, but no digest
    assert digest.send_due(ctx, SLOT + WEEK) == 0


def test_a_mail_clients_one_click_post_turns_it_off(digest_link):
    _, url = digest_link
    done = web.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert queries.referrer(REFERRER, lambda: "unused", NOW).digest is False
