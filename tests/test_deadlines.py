"""Reminders and expiry: one reminder per unanswered question, then an end that tells
the referrer who was silent and a party who said yes nothing about the other."""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
import threading
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest

from service.model import Answer, Channel, State
from service.reading.addresses import Mailbox
from service.reading.request import parse_message, parse_request
from service.referral import deadlines, workflow
from service.tokens import Purpose
from service.writing import letters
from store import db, queries
from tests.conftest import REFERRER, fixture_bytes, make_settings, write_config
from tests.helpers import (
    NOW,
    OUR_LINKS,
    PROSPECT,
    PROVIDER,
    arrive,
    assert_due_from_index,
    outbox_mails,
    outcome,
)
from tests.test_cli import run

REQUEST = "request_thunderbird_labelled_lines.eml"
ADA = Mailbox("Ada Lovelace", REFERRER)
# Everything of the prospect (Bob) that must not reach the provider (Jane) before both agreed.
BOB_TRACES = ["Bob", "Smith", PROSPECT, "bakery.example", "+49 30 1234567", "49301234567"]
MINUTE = timedelta(minutes=1)


def remind_at(ctx) -> datetime:
    return NOW + timedelta(days=ctx.settings.timing.reminder_after_days)


def expire_at(ctx) -> datetime:
    return NOW + timedelta(days=ctx.settings.timing.consent_expiry_days)


def open_one(ctx, need: str | None = None):
    """The standard request, opened at NOW; `need` replaces what it says is needed."""
    raw = fixture_bytes(REQUEST)
    if need is not None:
        raw = re.sub(rb"(?m)^Need: .*$", b"Need: " + need.encode(), raw)
    draft = parse_request(parse_message(raw))
    return workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)


def say(ctx, referral, role: str, answer: Answer, at: datetime) -> None:
    workflow.answer(ctx, referral.party(role).ask_key, answer, Channel.LINK, at)


def queued_at(at: datetime) -> list[tuple[str, EmailMessage]]:
    """(purpose, message) of every mail queued at exactly `at`, as its recipient reads it."""
    items = queries.claim_outbox(at, at, 1000)
    return [
        (i.purpose, email.message_from_bytes(i.raw, policy=email.policy.default))
        for i in items
        if i.created_at == at
    ]


def purposes(referral_id: int) -> list[tuple[str, tuple[str, ...]]]:
    return [(p, r) for p, _, r in queries.outbox_for_referral(referral_id)]


def everything_in(message: EmailMessage) -> str:
    """Headers and every body part, decoded as a mail client shows them, without what is
    random: our links and the Message-ID, whose tokens may spell any short name ("Bob").
    test_privacy reads every token a party gets: each names only what is theirs."""
    parts = [f"{k}: {v}" for k, v in message.items() if k.lower() != "message-id"]
    parts += [part.get_content() for part in message.walk() if not part.is_multipart()]
    return OUR_LINKS.sub("", "\n".join(parts))


def links(ctx, message: EmailMessage) -> list[tuple[str, str, str]]:
    """(base, ask key the token opens, query) of every consent link in the text."""
    text = message.get_body(("plain",)).get_content()
    return [
        (base, ctx.tokens.read(Purpose.CONSENT, token), query)
        for base, token, query in re.findall(r"(http://\S+/c/)([A-Za-z0-9_.\-]+)(\?\S*)?", text)
    ]


# ------------------------------------------------------------------ reminders


def test_nothing_is_due_before_the_reminder_time(ctx):
    referral = open_one(ctx)
    before = remind_at(ctx) - MINUTE
    assert deadlines.send_reminders(ctx, before) == 0
    assert deadlines.expire_due(ctx, before) == 0
    assert len(purposes(referral.id)) == 3


def test_each_party_who_has_not_answered_is_reminded_once(ctx):
    state, ref = outcome(ctx, arrive(REQUEST))
    assert state == "processed"
    referral = queries.referral_by_ref(ref)
    assert referral.remind_at == remind_at(ctx)
    outbox_mails()  # the receipt and both questions
    due = remind_at(ctx)
    assert deadlines.send_reminders(ctx, due) == 2
    reminders = queued_at(due)
    assert sorted((p, m["To"].addresses[0].addr_spec) for p, m in reminders) == [
        ("consent_reminder", PROSPECT),
        ("consent_reminder", PROVIDER),
    ]
    assert reminders[0][1]["Subject"].startswith("Reminder: ")
    for later in (due, due + MINUTE, expire_at(ctx) - MINUTE):
        assert deadlines.send_reminders(ctx, later) == 0
    assert [p for p, _ in purposes(referral.id)].count("consent_reminder") == 2
    reminded = [e for e in queries.events_for(referral.id) if e.kind == "reminded"]
    assert [(e.actor, e.channel, e.detail) for e in reminded] == [
        ("service", "tick", "provider, prospect")
    ]
    assert queries.referral_by_id(referral.id).remind_at is None


def test_a_party_who_answered_gets_no_reminder(ctx):
    referral = open_one(ctx)
    say(ctx, referral, "provider", Answer.YES, NOW + timedelta(days=1))
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 1
    assert purposes(referral.id)[-1] == ("consent_reminder", (PROSPECT,))
    assert deadlines.send_reminders(ctx, remind_at(ctx) + timedelta(days=1)) == 0


def test_the_reminder_asks_the_same_question_with_the_same_links_and_reply_to(ctx):
    referral = open_one(ctx)
    questions = {m["To"].addresses[0].addr_spec: m for p, m in queued_at(NOW) if p != "receipt"}
    deadlines.send_reminders(ctx, remind_at(ctx))
    reminders = {m["To"].addresses[0].addr_spec: m for _, m in queued_at(remind_at(ctx))}
    assert set(reminders) == set(questions) == {PROVIDER, PROSPECT}
    for address, reminder in reminders.items():
        question = questions[address]
        party = next(p for p in referral.parties if p.email == address)
        assert links(ctx, reminder) == links(ctx, question)
        assert {key for _, key, _ in links(ctx, reminder)} == {party.ask_key}
        assert reminder["Reply-To"] == question["Reply-To"]
        assert reminder["Reply-To"].addresses[0].addr_spec.endswith("@intro.example.org")
    # Answering through the reminder answers the question.
    [(_, ask_key, _), *_] = links(ctx, reminders[PROVIDER])
    result = workflow.answer(ctx, ask_key, Answer.YES, Channel.LINK, remind_at(ctx))
    assert result.outcome is workflow.Outcome.RECORDED


def test_the_reminder_to_a_party_shows_nothing_of_the_other(ctx):
    open_one(ctx, need="Bob Smith (+49 30 1234567) needs bookkeeping before March")
    deadlines.send_reminders(ctx, remind_at(ctx))
    [to_jane] = [
        m for _, m in queued_at(remind_at(ctx)) if m["To"].addresses[0].addr_spec == PROVIDER
    ]
    seen = everything_in(to_jane)
    assert "needs bookkeeping before March" in seen
    for trace in BOB_TRACES:
        assert trace not in seen


def test_no_reminder_once_the_question_has_expired(ctx):
    referral = open_one(ctx)
    assert deadlines.send_reminders(ctx, expire_at(ctx)) == 0
    assert [p for p, _ in purposes(referral.id)].count("consent_reminder") == 0


def test_no_reminder_is_scheduled_when_it_would_come_after_expiry(tmp_path, store_url):
    from service.clock import FixedClock
    from service.writing.context import make_context

    settings = make_settings(tmp_path, store_url)
    settings = settings.replace("timing", reminder_after_days=20, consent_expiry_days=14)
    late = make_context(settings, FixedClock(NOW))
    referral = open_one(late)
    assert referral.remind_at is None
    assert deadlines.send_reminders(late, NOW + timedelta(days=30)) == 0


# ------------------------------------------------------------------ expiry


def test_expiry_tells_the_referrer_who_was_silent_and_the_yes_only_that_it_ends(ctx):
    referral = open_one(ctx, need="Bob Smith (+49 30 1234567) needs bookkeeping before March")
    say(ctx, referral, "provider", Answer.YES, NOW + timedelta(days=1))
    deadlines.send_reminders(ctx, remind_at(ctx))
    assert deadlines.expire_due(ctx, expire_at(ctx) - MINUTE) == 0
    assert deadlines.expire_due(ctx, expire_at(ctx)) == 1

    stored = queries.referral_by_id(referral.id)
    assert stored.state == State.EXPIRED
    [event] = [e for e in queries.events_for(referral.id) if e.kind == "expired"]
    assert (event.actor, event.channel, event.detail) == (
        "service",
        "tick",
        "no answer from prospect",
    )
    mails = {p: m for p, m in queued_at(expire_at(ctx))}
    assert sorted(mails) == ["expired_to_party", "referrer_expired"]
    to_ada, to_jane = mails["referrer_expired"], mails["expired_to_party"]
    assert [a.addr_spec for a in to_ada["To"].addresses] == [REFERRER]
    assert "no answer from Bob Smith" in to_ada["Subject"]
    ada_text = to_ada.get_body(("plain",)).get_content()
    assert f"Bob Smith <{PROSPECT}> did not answer." in ada_text
    assert f"Jane Roe <{PROVIDER}> had said yes" in ada_text

    assert [a.addr_spec for a in to_jane["To"].addresses] == [PROVIDER]
    assert to_jane["Subject"] == "The introduction will not go ahead"
    seen = everything_in(to_jane)
    assert "will not go ahead" in seen
    for trace in BOB_TRACES:
        assert trace not in seen
    assert "answer" not in to_jane.get_body(("plain",)).get_content().lower()


def test_the_party_who_never_answered_gets_nothing_at_expiry(ctx):
    referral = open_one(ctx)
    say(ctx, referral, "provider", Answer.YES, NOW + timedelta(days=1))
    deadlines.expire_due(ctx, expire_at(ctx))
    to_bob = [p for p, r in purposes(referral.id) if PROSPECT in r]
    assert to_bob == ["consent_request"]


def test_when_nobody_answered_only_the_referrer_hears_and_learns_both(ctx):
    referral = open_one(ctx)
    assert deadlines.expire_due(ctx, expire_at(ctx) + timedelta(days=3)) == 1
    [(purpose, to_ada)] = queued_at(expire_at(ctx) + timedelta(days=3))
    assert purpose == "referrer_expired"
    text = to_ada.get_body(("plain",)).get_content()
    assert f"Jane Roe <{PROVIDER}> did not answer." in text
    assert f"Bob Smith <{PROSPECT}> did not answer." in text
    assert "had said yes" not in text
    assert deadlines.expire_due(ctx, expire_at(ctx) + timedelta(days=4)) == 0
    assert [p for p, _ in purposes(referral.id)].count("referrer_expired") == 1


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"provider": Answer.YES, "prospect": Answer.YES}, id="introduced"),
        pytest.param({"provider": Answer.YES, "prospect": Answer.NO}, id="declined"),
        pytest.param({"prospect": Answer.NO}, id="declined-before-the-other-answered"),
    ],
)
def test_a_decided_referral_is_neither_reminded_nor_expired(ctx, answers):
    referral = open_one(ctx)
    for role, answer in answers.items():
        say(ctx, referral, role, answer, NOW + timedelta(days=1))
    decided = queries.referral_by_id(referral.id).state
    sent = purposes(referral.id)
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 0
    assert deadlines.expire_due(ctx, expire_at(ctx) + timedelta(days=100)) == 0
    assert queries.referral_by_id(referral.id).state == decided
    assert purposes(referral.id) == sent


def test_an_answer_at_the_moment_of_expiry_is_too_late(ctx):
    referral = open_one(ctx)
    deadlines.expire_due(ctx, expire_at(ctx))
    late = workflow.answer(
        ctx, referral.party("prospect").ask_key, Answer.YES, Channel.LINK, expire_at(ctx)
    )
    assert late.outcome is workflow.Outcome.CLOSED
    assert queries.referral_by_id(referral.id).state == State.EXPIRED


# ------------------------------------------------------------------ several instances


def test_two_instances_at_once_send_each_reminder_and_expiry_once(ctx):
    referrals = [open_one(ctx) for _ in range(12)]
    for job, at in (
        (deadlines.send_reminders, remind_at(ctx)),
        (deadlines.expire_due, expire_at(ctx)),
    ):
        barrier = threading.Barrier(2)
        counts: list[int] = []
        errors: list[BaseException] = []

        def instance(job=job, at=at, barrier=barrier, counts=counts, errors=errors) -> None:
            try:
                barrier.wait(10)
                counts.append(job(ctx, at, limit=5))
                counts.append(job(ctx, at))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.close()

        threads = [threading.Thread(target=instance) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sum(counts) == (24 if job is deadlines.send_reminders else 12)
    for referral in referrals:
        kinds = [p for p, _ in purposes(referral.id)]
        assert kinds.count("consent_reminder") == 2
        assert kinds.count("referrer_expired") == 1
        assert queries.referral_by_id(referral.id).state == State.EXPIRED


def test_a_referral_held_by_an_answer_is_skipped_then_rechecked(ctx):
    if not db.is_postgresql():
        pytest.skip("SQLite runs one writer at a time; there is nothing to skip past")
    referral = open_one(ctx)
    holding, release = threading.Event(), threading.Event()

    def answering() -> None:
        # What workflow.answer does, held open: lock the referral, record a yes.
        try:
            with db.transaction():
                queries.lock_referral(referral.id)
                queries.record_answer(referral.party("prospect").id, "yes", "link", NOW)
                holding.set()
                release.wait(10)
        finally:
            db.close()

    thread = threading.Thread(target=answering)
    thread.start()
    assert holding.wait(10)
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 0  # skipped, not waited for
    release.set()
    thread.join(10)
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 1
    assert [r for p, r in purposes(referral.id) if p == "consent_reminder"] == [(PROVIDER,)]


def test_one_tick_reminds_more_than_a_batch_and_each_party_once(ctx, monkeypatch):
    """Due work is claimed a batch at a time; one tick goes on until none is left."""
    monkeypatch.setattr(deadlines, "BATCH", 10)
    referrals = [open_one(ctx) for _ in range(deadlines.BATCH + 5)]
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 2 * len(referrals)
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 0
    for referral in referrals:
        assert sorted(r for p, r in purposes(referral.id) if p == "consent_reminder") == [
            (PROSPECT,),
            (PROVIDER,),
        ]


def test_a_letter_written_before_an_answer_is_written_again_from_what_the_lock_reads(ctx):
    """Reminders are written before the write lock; an answer in between voids them."""
    referral = open_one(ctx)
    at = remind_at(ctx)

    def reminders(ctx, seen, now) -> list:
        waiting = [p for p in seen.parties if p.answer is None]
        return [letters.consent_reminder(ctx, seen, p, now) for p in waiting]

    drafts = deadlines.Drafts(deadlines.Write(ctx, reminders, at))
    unchanged = queries.referral_by_id(referral.id)
    written = drafts.prepare(unchanged)
    assert len(written) == 2
    assert drafts.letters(queries.referral_by_id(referral.id)) == written  # used as written

    written = drafts.prepare(unchanged)
    say(ctx, referral, "prospect", Answer.YES, at - MINUTE)
    [mail] = drafts.letters(queries.referral_by_id(referral.id))
    assert mail.recipients == (PROVIDER,)
    assert mail.message_id not in {m.message_id for m in written}


def test_a_tick_with_nothing_due_does_not_wait_for_a_writer(ctx, tmp_path):
    """An idle tick only looks: a writer holding SQLite's lock does not hold it up."""
    if db.is_postgresql():
        pytest.skip("PostgreSQL's readers never wait for writers")
    open_one(ctx)
    holder = sqlite3.connect(str(tmp_path / "care-intro.db"), timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        # Nothing is due yet; with the write lock taken, a tick that wanted it would fail.
        assert deadlines.expire_due(ctx, NOW) == 0
        assert deadlines.send_reminders(ctx, NOW) == 0
    finally:
        holder.rollback()
        holder.close()


# ------------------------------------------------------------------ the store


@pytest.mark.parametrize(
    ("kind", "index"),
    [("reminders", "referral_remind_at"), ("expiries", "referral_expires_at")],
)
def test_the_due_questions_are_answered_from_an_index(ctx, kind, index):
    assert_due_from_index(kind, index, NOW)


# ------------------------------------------------------------------ the command


def test_tick_at_a_later_moment_reminds_then_expires(tmp_path, store_url):
    config = write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, store_url))
    arrive(REQUEST)

    def tick(at: datetime) -> str:
        result = run("tick", "--at", at.isoformat(), "--config", str(config), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert tick(NOW) == (
        "processed 1 inbound message(s); reminded 0, expired 0; "
        "surveyed 0, surveys closed 0; digests 0; sent 3, retrying 0, failed 0"
    )
    # Thursday: the reminders, and Monday's digest of the week the request came in.
    assert tick(NOW + timedelta(days=4)) == (
        "processed 0 inbound message(s); reminded 2, expired 0; "
        "surveyed 0, surveys closed 0; digests 1; sent 3, retrying 0, failed 0"
    )
    assert tick(NOW + timedelta(days=5)) == (
        "processed 0 inbound message(s); reminded 0, expired 0; "
        "surveyed 0, surveys closed 0; digests 0; sent 0, retrying 0, failed 0"
    )
    # Sunday two weeks on: the expiry, and the digest of the week of the reminders.
    assert tick(NOW + timedelta(days=14)) == (
        "processed 0 inbound message(s); reminded 0, expired 1; "
        "surveyed 0, surveys closed 0; digests 1; sent 2, retrying 0, failed 0"
    )
    [referral] = queries.recent_referrals()
    assert referral.state == State.EXPIRED


def test_a_referral_whose_letters_fail_does_not_hold_up_the_rest(ctx, tmp_path):
    """A bug in one referral's reminder or expiry is logged, and the tick moves on."""
    import shutil

    from service.clock import FixedClock
    from service.writing.compose import Templates, templates_root
    from service.writing.context import make_context

    broken_root = tmp_path / "templates"
    shutil.copytree(templates_root(), broken_root)
    for path in broken_root.glob("*/mail/consent_reminder.*"):
        path.unlink()
    for path in broken_root.glob("*/mail/referrer_expired.*"):
        path.unlink()
    broken = make_context(ctx.settings, FixedClock(NOW), Templates(broken_root))
    first, second = open_one(ctx), open_one(ctx)
    assert deadlines.send_reminders(broken, remind_at(ctx) + MINUTE) == 0
    assert deadlines.send_reminders(broken, remind_at(ctx) + MINUTE) == 0  # nothing stuck
    assert deadlines.expire_due(broken, expire_at(ctx) + MINUTE) == 0
    for referral in (first, second):
        assert queries.referral_by_id(referral.id).state == "expired"
    assert deadlines.expire_due(broken, expire_at(ctx) + MINUTE) == 0
