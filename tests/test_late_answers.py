"""An answer at or after the question's deadline, by link or by reply, against the running
service on a stopped clock: until the deadline it counts; from the deadline on it records
nothing, the referral expires as the tick would expire it, and nothing goes twice."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest

from service.clock import FixedClock
from service.referral import deadlines
from store import queries
from tests.conftest import InProcess, eventually, write_config
from tests.helpers import PROSPECT, PROVIDER, request_referral, text_of, web
from tests.test_answers_by_mail import processed, reply

# Just before the deadline the answer counts; at the deadline it no longer does.
OFFSETS = [
    pytest.param(timedelta(seconds=-1), True, id="deadline-1s"),
    pytest.param(timedelta(0), False, id="at-deadline"),
]


def referral():
    [found] = queries.recent_referrals()
    return found


def reminder_link(service: InProcess, clock: FixedClock, sink, who: str) -> str:
    """Remind at the reminder's time and return the link the reminder carries: signed then,
    so still valid as a token long after the question's deadline."""
    clock.at = referral().remind_at
    assert deadlines.send_reminders(service.service.ctx, clock.at) >= 1
    service.deliver()
    [reminded] = [d for d in sink.deliveries if d.rcpt_tos == (who,) and "/c/" in text_of(d)][1:]
    return re.search(r"(http://\S+/c/[A-Za-z0-9_.\-]+)\?answer=yes", text_of(reminded))[1]


def tick_afterwards(tmp_path, service: InProcess) -> None:
    """`care-intro tick` as cron runs it, a minute after the deadline, twice."""
    config = write_config(tmp_path / "tick.toml", service.settings)
    at = (referral().expires_at + timedelta(minutes=1)).isoformat()
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "service", "tick", "--at", at, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr


def purposes() -> Counter[str]:
    return Counter(purpose for purpose, _, _ in queries.outbox_for_referral(referral().id))


def assert_expired_once(answered_by: str) -> None:
    """Expired, the late answer nowhere, and the expiry's letters each queued once."""
    after = referral()
    assert after.state == "expired"
    assert after.party(answered_by).answer is None
    counts = purposes()
    assert counts["referrer_expired"] == 1
    assert counts["expired_to_party"] == 1  # to the provider, who had said yes
    assert counts["introduction"] == 0


@pytest.mark.parametrize(("offset", "counts"), OFFSETS)
def test_a_yes_on_the_reminders_page_counts_only_before_the_deadline(
    tmp_path, clocked, sink, offset, counts
):
    service, clock = clocked
    links = request_referral(service.service.smtp_port, sink)
    assert web.post(links[PROVIDER], data={"answer": "yes"}).status_code == 200
    link = reminder_link(service, clock, sink, PROSPECT)
    clock.at = referral().expires_at + offset
    page = web.post(link, data={"answer": "yes"})
    if counts:
        assert page.status_code == 200 and "the introduction is on its way" in page.text
        assert referral().state == "introduced"
        assert referral().party("prospect").answer == "yes"
    else:
        assert page.status_code == 410 and "This question is closed" in page.text
        assert "Would you like to be introduced?" not in web.get(link).text
        assert_expired_once("prospect")
    before = purposes()
    tick_afterwards(tmp_path, service)
    assert purposes() == before  # the tick found nothing left to send
    if not counts:
        assert_expired_once("prospect")


def test_a_no_at_the_deadline_records_nothing_either(clocked, sink):
    service, clock = clocked
    links = request_referral(service.service.smtp_port, sink)
    web.post(links[PROVIDER], data={"answer": "yes"})
    clock.at = referral().expires_at
    page = web.post(links[PROSPECT], data={"answer": "no", "reason": "not_relevant"})
    assert page.status_code == 410
    assert_expired_once("prospect")
    assert purposes()["declined_to_other"] == 0


def test_the_page_at_the_deadline_no_longer_asks_and_changes_nothing(clocked, sink):
    service, clock = clocked
    links = request_referral(service.service.smtp_port, sink)
    clock.at = referral().expires_at
    page = web.get(links[PROSPECT])
    assert page.status_code == 410 and "This question is closed" in page.text
    assert referral().state == "asking"  # only a POST, or the tick, moves it


@pytest.mark.parametrize(("offset", "counts"), OFFSETS)
def test_a_yes_by_reply_counts_only_before_the_deadline(tmp_path, clocked, sink, offset, counts):
    service, clock = clocked
    links = request_referral(service.service.smtp_port, sink)
    web.post(links[PROVIDER], data={"answer": "yes"})
    clock.at = referral().expires_at + offset
    reply(service, sink, PROSPECT, "reply_gmail_top_de_yes.eml")
    processed(2)
    if counts:
        eventually(lambda: referral().state == "introduced", "introduced")
        assert referral().party("prospect").answer_channel == "reply"
    else:
        assert_expired_once("prospect")
        [event] = [e for e in queries.events_for(referral().id) if e.kind == "expired"]
        assert event.channel == "reply"
    before = purposes()
    tick_afterwards(tmp_path, service)
    assert purposes() == before
