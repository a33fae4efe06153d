"""A mail the relay refused for good is settled like a bounce, once, on SQLite and PostgreSQL:
a question or reminder ends the referral, a survey closes, an introduction is reported to
the referrer, and a failed notice ends with its record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from service.delivery.outbox import RETRY_FOR, Report, deliver_due
from service.delivery.transports import SmtpRelay
from service.evaluation import surveys
from service.intake import refusals
from service.model import Answer, State, SurveyState
from service.referral import deadlines, workflow
from store import db, queries
from store.records import ReferralRecord
from tests.conftest import REFERRER, Sink, free_port, relay_sink
from tests.helpers import (
    NOW,
    PROSPECT,
    PROVIDER,
    at_once,
    breaking_one_template,
    parse,
    text_of,
    words_of,
)
from tests.test_deadlines import BOB_TRACES, open_one, purposes, remind_at, say
from tests.test_relay_faults import POLICY, TRY_LATER, UNKNOWN_USER, FaultyRelay


@pytest.fixture
def relay() -> Iterator[tuple[FaultyRelay, Sink]]:
    handler = FaultyRelay()
    with relay_sink(handler) as running:
        yield handler, running


def deliver(sink: Sink, at: datetime = NOW) -> Report:
    return asyncio.run(deliver_due(SmtpRelay("127.0.0.1", sink.port, timeout=5), at))


def events(referral_id: int) -> list[tuple[str, str]]:
    return [(e.kind, e.actor) for e in queries.events_for(referral_id)]


def told(delivery) -> str:
    return " ".join(text_of(delivery).split())


def test_a_question_refused_at_rcpt_ends_the_referral(ctx, relay):
    handler, sink = relay
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    referral = open_one(ctx)
    assert deliver(sink) == Report(sent=2, failed=1)
    assert refusals.settle_failures(ctx, NOW) == 1
    assert refusals.settle_failures(ctx, NOW) == 0  # settled once, never again
    assert queries.referral_by_id(referral.id).state == State.UNDELIVERABLE
    assert ("bounced", "prospect") in events(referral.id)
    for event in queries.events_for(referral.id):
        assert "bakery.example" not in event.detail  # the history keeps no address
    assert deliver(sink) == Report(sent=2)
    _, notice = sink.to(REFERRER)
    assert "We could not reach Bob Smith at <bob@bakery.example>" in told(notice)
    assert f"(status {UNKNOWN_USER})" in told(notice)
    _, will_not = sink.to(PROVIDER)
    for leak in [*BOB_TRACES, "550"]:
        assert leak not in words_of(will_not)


def test_a_reminder_refused_after_data_ends_the_referral(ctx, relay):
    handler, sink = relay
    referral = open_one(ctx)
    assert deliver(sink) == Report(sent=3)
    handler.after_data[PROSPECT] = POLICY
    at = remind_at(ctx)
    assert deadlines.send_reminders(ctx, at) == 2
    assert deliver(sink, at) == Report(sent=1, failed=1)
    assert refusals.settle_failures(ctx, at) == 1
    assert queries.referral_by_id(referral.id).state == State.UNDELIVERABLE
    assert deliver(sink, at) == Report(sent=2)
    assert f"(status {POLICY})" in told(sink.to(REFERRER)[-1])


def test_a_survey_refused_closes_and_the_other_still_counts(ctx, relay):
    handler, sink = relay
    referral = open_one(ctx)
    say(ctx, referral, "provider", Answer.YES, NOW)
    say(ctx, referral, "prospect", Answer.YES, NOW)
    assert deliver(sink).failed == 0
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    due = workflow.follow_up_at(referral, ctx.settings.timing.follow_up_days, NOW)
    assert surveys.send_due(ctx, due) == 2
    assert deliver(sink, due) == Report(sent=1, failed=1)
    assert refusals.settle_failures(ctx, due) == 1
    states = {s.party_id: s.state for s in queries.surveys_of(referral.id)}
    assert states == {
        referral.party("provider").id: SurveyState.SENT,
        referral.party("prospect").id: SurveyState.EXPIRED,
    }
    assert ("survey bounced", "prospect") in events(referral.id)
    assert queries.referral_by_id(referral.id).state == State.EVALUATING


def introduction_refused_to_the_prospect(ctx, relay) -> ReferralRecord:
    """Both said yes; the relay takes the introduction for the provider and refuses it for
    the prospect."""
    handler, sink = relay
    referral = open_one(ctx)
    assert deliver(sink) == Report(sent=3)
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    say(ctx, referral, "provider", Answer.YES, NOW)
    say(ctx, referral, "prospect", Answer.YES, NOW)
    # One mail, one envelope each: the provider's went, the prospect's was refused, and the
    # referrer's own note went.
    assert deliver(sink) == Report(sent=2, failed=1)
    return referral


def test_an_introduction_refused_tells_the_referrer_whom_it_missed(ctx, relay):
    handler, sink = relay
    referral = introduction_refused_to_the_prospect(ctx, relay)
    introduction = parse(sink.to(PROVIDER)[-1])
    assert [a.addr_spec for a in introduction["To"].addresses] == [PROVIDER, PROSPECT]
    assert refusals.settle_failures(ctx, NOW) == 1
    assert queries.referral_by_id(referral.id).state == State.INTRODUCED
    assert ("not introduced", "prospect") in events(referral.id)
    assert ("not introduced", "provider") not in events(referral.id)
    assert deliver(sink) == Report(sent=1)
    notice = sink.to(REFERRER)[-1]
    assert "could not be delivered to Bob Smith at <bob@bakery.example>" in told(notice)
    assert "Jane Roe at <jane@acme.example>" not in told(notice)
    assert f"(status {UNKNOWN_USER})" in told(notice)
    # Only the party the introduction reached is asked how it went.
    handler.at_rcpt.clear()
    due = workflow.follow_up_at(referral, ctx.settings.timing.follow_up_days, NOW)
    assert surveys.send_due(ctx, due) == 1
    states = {s.party_id: s.state for s in queries.surveys_of(referral.id)}
    assert states[referral.party("prospect").id] == SurveyState.SKIPPED
    assert states[referral.party("provider").id] == SurveyState.SENT


def test_an_introduction_refused_whose_notice_fails_leaves_no_trace_in_the_history(
    ctx, relay, tmp_path, caplog
):
    """Settling it fails after its "not introduced" was added: the savepoint takes that
    event back with the rest. Left in, the history would tell of a notice never sent, and
    the survey of a party the introduction reached would be skipped."""
    referral = introduction_refused_to_the_prospect(ctx, relay)
    broken = breaking_one_template(ctx, tmp_path, "en/mail/referrer_not_introduced.txt", NOW)

    assert refusals.settle_failures(broken, NOW) == 0
    assert "not introduced" not in [kind for kind, _ in events(referral.id)]
    assert queries.not_introduced([referral.id]) == set()
    assert "referrer_not_introduced" not in [p for p, _ in purposes(referral.id)]
    assert [r.levelname for r in caplog.records if r.name == refusals.log.name] == ["ERROR"]
    assert refusals.settle_failures(ctx, NOW) == 0  # settled all the same, not tried forever


def hourly_until_given_up(sink: Sink, start: datetime) -> datetime:
    """Run the outbox every hour from `start` until a mail fails; when it did."""
    at = start
    while deliver(sink, at).failed == 0:
        at += timedelta(hours=1)
        assert at - start < 2 * RETRY_FOR, "never given up"
    return at


def test_a_mail_out_of_retries_is_a_failure_too(ctx, relay):
    handler, sink = relay
    handler.temporary[PROSPECT] = 1000
    referral = open_one(ctx)
    assert deliver(sink) == Report(sent=2, retrying=1)
    assert refusals.settle_failures(ctx, NOW) == 0  # a retry is no answer yet
    failed_at = hourly_until_given_up(sink, NOW + timedelta(hours=1))
    assert NOW + RETRY_FOR <= failed_at < NOW + RETRY_FOR + timedelta(hours=2)
    assert refusals.settle_failures(ctx, failed_at) == 1
    assert queries.referral_by_id(referral.id).state == State.UNDELIVERABLE
    deliver(sink, failed_at)
    assert f"(status {TRY_LATER})" in told(sink.to(REFERRER)[-1])


def test_a_failed_notice_about_a_failure_sends_nothing_more(ctx, relay):
    handler, sink = relay
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    handler.at_rcpt[REFERRER] = "550 5.2.1 Mailbox disabled"
    referral = open_one(ctx)
    assert deliver(sink) == Report(sent=1, failed=2)  # only the provider's question went
    assert refusals.settle_failures(ctx, NOW) == 1  # the question; the receipt is a notice
    assert deliver(sink) == Report(sent=1, failed=1)  # the provider told, the referrer not
    assert refusals.settle_failures(ctx, NOW) == 0
    assert deliver(sink) == Report()
    assert [p for p, _ in purposes(referral.id)] == [
        "receipt",
        "consent_request",
        "consent_request",
        "referrer_undeliverable",
        "declined_to_other",
    ]


def test_two_instances_settle_each_failure_once(ctx, relay):
    handler, sink = relay
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    referrals = [open_one(ctx) for _ in range(8)]
    assert deliver(sink).failed == 8
    settled = at_once(lambda: refusals.settle_failures(ctx, NOW))
    assert sum(settled) == 8
    for referral in referrals:
        kinds = [p for p, _ in purposes(referral.id)]
        assert kinds.count("referrer_undeliverable") == 1
        assert kinds.count("declined_to_other") == 1


def test_the_log_names_no_address(ctx, relay, caplog):
    handler, sink = relay
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    open_one(ctx)
    with caplog.at_level(logging.INFO):
        deliver(sink)
        refusals.settle_failures(ctx, NOW)
    ours = [r for r in caplog.records if r.name.startswith("service.")]  # not the relay's
    [warning] = [r for r in ours if r.levelno >= logging.WARNING]
    assert "550 5.1.1" in warning.getMessage()
    for record in ours:
        assert "bakery.example" not in record.getMessage()


def test_failures_of_an_earlier_release_stay_as_they_were(ctx, relay):
    handler, sink = relay
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    referral = open_one(ctx)
    assert deliver(sink).failed == 1
    # The store as the release before settling wrote it: no settled_at column.
    db.database.execute_sql("DROP INDEX IF EXISTS outbox_mail_id")
    db.database.execute_sql("ALTER TABLE outbox_mail DROP COLUMN settled_at")
    db.bind(ctx.settings.database.url)
    assert refusals.settle_failures(ctx, NOW) == 0
    assert queries.referral_by_id(referral.id).state == State.ASKING


def test_the_failures_to_settle_are_found_from_their_own_index(ctx):
    """A partial index that holds only the failures not yet settled: reading all of it costs
    what waits, not what the outbox ever sent (SQLite scans it, hence no SEARCH here)."""
    sql, params = queries.DUE["failures"](NOW).sql()
    with db.transaction():
        if db.is_postgresql():
            db.database.execute_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(r[0] for r in db.database.execute_sql("EXPLAIN " + sql, params))
            assert "Index Only Scan using outbox_mail_id" in plan
        else:
            rows = db.database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            assert [r[-1] for r in rows] == ["SCAN t1 USING INDEX outbox_mail_id"]


def test_our_relay_down_for_days_ends_nothing_and_the_mail_goes_when_it_is_back(ctx, relay):
    """Our outage is no answer about anyone: no referrer is told the other person's server
    refused, and nothing waits out its retries while no relay could say a word about it."""
    _handler, sink = relay
    referral = open_one(ctx)
    closed = SmtpRelay("127.0.0.1", free_port(), timeout=2)
    for at in (NOW, NOW + RETRY_FOR, NOW + 3 * RETRY_FOR):
        assert asyncio.run(deliver_due(closed, at)) == Report(retrying=3)
        assert refusals.settle_failures(ctx, at) == 0
    assert queries.referral_by_id(referral.id).state == State.ASKING
    assert queries.outbox_counts() == {"pending": 3}
    # Back: everything goes, once.
    assert deliver(sink, NOW + 3 * RETRY_FOR + timedelta(hours=1)) == Report(sent=3)
    assert deliver(sink, NOW + 4 * RETRY_FOR) == Report()
    assert [len(sink.to(a)) for a in (REFERRER, PROVIDER, PROSPECT)] == [1, 1, 1]
    assert queries.referral_by_id(referral.id).state == State.ASKING


def test_after_our_outage_a_refusal_for_now_gets_its_whole_retry_window(ctx, relay):
    handler, sink = relay
    handler.temporary[PROSPECT] = 1000
    referral = open_one(ctx)
    closed = SmtpRelay("127.0.0.1", free_port(), timeout=2)
    for hours in range(0, 72, 8):  # down all weekend, tried again and again meanwhile
        asyncio.run(deliver_due(closed, NOW + timedelta(hours=hours)))
    back = NOW + timedelta(hours=72)
    assert deliver(sink, back) == Report(sent=2, retrying=1)
    # Counted from the relay's first word about the mail, not from when it was queued.
    assert hourly_until_given_up(sink, back + timedelta(hours=1)) >= back + RETRY_FOR
    assert refusals.settle_failures(ctx, back + 2 * RETRY_FOR) == 1
    assert queries.referral_by_id(referral.id).state == State.UNDELIVERABLE
