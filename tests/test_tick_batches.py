"""The tick a batch at a time: what a batch reads is what one row's read gives, two surveys
of one referral move it once, and one item whose letter fails leaves the others sent."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from service.evaluation import surveys
from service.model import Answer, Business, Channel, State
from service.reading.survey_replies import SurveyAnswers
from service.referral import deadlines
from store import db, queries
from store.models import Party, Referral
from tests.helpers import NOW, PROVIDER, breaking_one_template, watch_commits
from tests.test_deadlines import expire_at, open_one, purposes, remind_at, say
from tests.test_evaluation import DAY, due, introduce, surveys_of


def test_a_batch_reads_each_referral_as_reading_it_alone_does(ctx):
    """Every kind of value a record holds: text, none, numbers, booleans, aware times."""
    plain, full = open_one(ctx), open_one(ctx)
    say(ctx, full, "provider", Answer.NO, NOW + DAY)
    queries.mark_reminded(full.party("prospect").id, NOW + 2 * DAY)
    queries.mark_unclear_told(full.party("prospect").id)
    Referral.update(copy_me=True, follow_up_days=12.5, remind_at=None).where(
        Referral.id == full.id
    ).execute()
    Party.update(withheld_until=NOW + 3 * DAY, timezone="Europe/Berlin").where(
        Party.id == full.party("prospect").id
    ).execute()
    batch = queries.referrals_by_id([full.id, plain.id, 10**9])
    assert batch == [queries.referral_by_id(plain.id), queries.referral_by_id(full.id)]
    read = batch[1]
    assert (read.copy_me, read.follow_up_days, read.remind_at) == (True, 12.5, None)
    prospect = read.party("prospect")
    assert prospect.unclear_told is True
    assert prospect.withheld_until == NOW + 3 * DAY
    assert prospect.withheld_until.utcoffset() == timedelta(0)
    assert (read.party("provider").answer, read.party("provider").answered_at) == ("no", NOW + DAY)


def test_a_batch_reads_each_survey_as_reading_it_alone_does(ctx):
    referral = introduce(ctx)
    surveys.send_due(ctx, due(ctx))
    provider, prospect = surveys_of(referral)["provider"][0], surveys_of(referral)["prospect"][0]
    given = SurveyAnswers(
        rating=4, business=Business.YES, amount=Decimal("1200.50"), currency="EUR", more=True
    )
    surveys.record(ctx, provider.survey_key, given, Channel.LINK, due(ctx) + DAY)
    batch = queries.surveys_by_id([prospect.id, provider.id])
    assert batch == sorted(
        [queries.survey_by_id(provider.id), queries.survey_by_id(prospect.id)], key=lambda s: s.id
    )
    answered = next(s for s in batch if s.id == provider.id)
    assert (answered.amount, answered.more, answered.rating) == (Decimal("1200.50"), True, 4)


def test_both_surveys_of_a_referral_closing_in_one_batch_end_it_once(ctx):
    referral = introduce(ctx)
    assert surveys.send_due(ctx, due(ctx)) == 2
    assert queries.referral_by_id(referral.id).state == State.EVALUATING
    closes = due(ctx) + timedelta(days=ctx.settings.timing.survey_open_days)
    assert surveys.close_due(ctx, closes) == 2
    assert queries.referral_by_id(referral.id).state == State.EVALUATED
    assert [p for p, _ in purposes(referral.id)].count("referrer_evaluated") == 1
    kinds = [e.kind for e in queries.events_for(referral.id)]
    assert (kinds.count("evaluating"), kinds.count("evaluated")) == (1, 1)


def test_a_survey_whose_letter_fails_leaves_the_others_of_its_batch_sent(ctx, tmp_path):
    """A bug in one item's letter is contained: its survey is skipped, the rest go."""
    # StrictUndefined fails the German survey, and only it.
    broken = breaking_one_template(ctx, tmp_path, "de/mail/survey.txt", NOW)
    first, german, last = introduce(ctx), introduce(ctx), introduce(ctx)
    Party.update(language="de").where(
        (Party.referral == german.id) & (Party.role == "provider")
    ).execute()

    assert surveys.send_due(broken, due(ctx)) == 5
    for referral in (first, last):
        assert [p for p, _ in purposes(referral.id)].count("survey") == 2
        assert queries.referral_by_id(referral.id).state == State.EVALUATING
    states = {role: found[0].state for role, found in surveys_of(german).items()}
    assert states == {"provider": "skipped", "prospect": "sent"}
    # Whichever of its two came first, the one that went moved the referral, once.
    assert queries.referral_by_id(german.id).state == State.EVALUATING
    assert [e.kind for e in queries.events_for(german.id)].count("evaluating") == 1
    assert surveys.send_due(broken, due(ctx) + DAY) == 0


def test_a_reminder_whose_letter_fails_leaves_the_others_of_its_batch_reminded(
    ctx, tmp_path, caplog
):
    broken = breaking_one_template(ctx, tmp_path, "de/mail/consent_reminder.txt", NOW)
    first, german, last = open_one(ctx), open_one(ctx), open_one(ctx)
    Party.update(language="de").where(Party.referral == german.id).execute()
    at = NOW + timedelta(days=ctx.settings.timing.reminder_after_days)

    assert deadlines.send_reminders(broken, at) == 4
    for referral in (first, last):
        assert [p for p, _ in purposes(referral.id)].count("consent_reminder") == 2
        assert [e.kind for e in queries.events_for(referral.id)].count("reminded") == 1
    assert [p for p, _ in purposes(german.id)].count("consent_reminder") == 0
    # Its turn is over all the same, and the log names it, once.
    assert queries.referral_by_id(german.id).remind_at is None
    failed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [german.ref in r.getMessage() for r in failed] == [True]
    assert deadlines.send_reminders(broken, at + DAY) == 0


def test_a_commit_of_another_connection_changes_the_mark_and_ones_own_do_not(ctx):
    if db.is_postgresql():
        pytest.skip("PostgreSQL keeps no count of commits; the tick reads again there")
    mark = db.change_mark()
    open_one(ctx)  # this connection's own commits
    assert db.change_mark() == mark
    thread = threading.Thread(target=lambda: (open_one(ctx), db.close()))
    thread.start()
    thread.join(10)
    assert db.change_mark() != mark


def reminders_answered_meanwhile(ctx, referral, at) -> deadlines._Referrals:
    """The reminders due at `at`, the referral's prospect saying yes, on another connection,
    once they are written and before their transaction."""

    class AnswerAfterPreparing(deadlines._Referrals):
        def prepare(self, ids: list[int]) -> None:
            super().prepare(ids)
            answering = threading.Thread(
                target=lambda: (say(ctx, referral, "prospect", Answer.YES, at), db.close())
            )
            answering.start()
            answering.join(10)

    write = deadlines.Write(ctx, deadlines._reminders, at)
    return AnswerAfterPreparing(deadlines._remind, write, at)


def test_an_answer_between_the_look_and_the_claim_is_read_under_the_lock(ctx):
    """What the tick read before its transaction is used only if nothing was committed
    since; here an answer comes in between, on another connection."""
    referral = open_one(ctx)
    at = NOW + timedelta(days=ctx.settings.timing.reminder_after_days)
    batch = reminders_answered_meanwhile(ctx, referral, at)
    assert deadlines.claim_each("reminders", batch, at, 10) == 1
    assert [r for p, r in purposes(referral.id) if p == "consent_reminder"] == [(PROVIDER,)]
    assert deadlines.send_reminders(ctx, at + DAY) == 0


def test_a_batchs_events_go_in_together_at_its_end_in_order_or_not_at_all(ctx):
    referral = open_one(ctx)
    before = queries.events_for(referral.id)
    with db.transaction(), queries.events_together():
        queries.add_event(referral.id, NOW + DAY, "reminded", "service", "tick", "first")
        queries.add_event(referral.id, NOW + DAY, "reminded", "service", "tick", "second")
        assert queries.events_for(referral.id) == before  # held back until the end
    added = queries.events_for(referral.id)[len(before) :]
    assert [e.detail for e in added] == ["first", "second"]
    with pytest.raises(RuntimeError), db.transaction(), queries.events_together():
        queries.add_event(referral.id, NOW + DAY, "reminded", "service", "tick", "lost")
        raise RuntimeError("an item failed")
    assert len(queries.events_for(referral.id)) == len(before) + 2
    queries.add_event(referral.id, NOW + DAY, "expired", "service", "tick")  # at once again
    assert queries.events_for(referral.id)[-1].kind == "expired"


def test_an_event_of_a_savepoint_that_rolled_back_is_not_written_with_its_batch(ctx):
    """An item's failure its caller contains (a savepoint, the error caught, the batch goes
    on): the events it added are rolled back with its other writes, not inserted at the
    batch's end."""
    referral = open_one(ctx)
    before = len(queries.events_for(referral.id))
    with db.transaction(), queries.events_together():
        queries.add_event(referral.id, NOW + DAY, "reminded", "service", "tick", "kept")
        with pytest.raises(RuntimeError), db.transaction():
            queries.add_event(referral.id, NOW + DAY, "reminded", "service", "tick", "undone")
            with db.transaction():
                queries.add_event(referral.id, NOW + DAY, "expired", "service", "tick", "undone")
            raise RuntimeError("an item failed; its caller goes on")
        with db.transaction():
            queries.add_event(referral.id, NOW + DAY, "expired", "service", "tick", "kept too")
    added = queries.events_for(referral.id)[before:]
    assert [(e.kind, e.detail) for e in added] == [("reminded", "kept"), ("expired", "kept too")]


def test_a_batch_gone_again_item_by_item_writes_each_items_events_once(ctx, tmp_path):
    """One expiry's letter fails under the lock: the batch's attempt together rolls back,
    with the events it held, and each item goes again alone."""
    broken = breaking_one_template(ctx, tmp_path, "de/mail/referrer_expired.txt", NOW)
    first, german, last = open_one(ctx), open_one(ctx), open_one(ctx)
    Referral.update(language="de").where(Referral.id == german.id).execute()
    at = german.expires_at

    assert deadlines.expire_due(broken, at) == 2
    for referral in (first, german, last):
        assert queries.referral_by_id(referral.id).state == State.EXPIRED
        expired = [e for e in queries.events_for(referral.id) if e.kind == State.EXPIRED]
        assert len(expired) == 1, referral.ref
    # Its letters failed, so it expired without them, and says so once.
    assert [e.detail for e in queries.events_for(german.id)][-1] == "letters failed"
    assert [p for p, _ in purposes(german.id)].count("referrer_expired") == 0
    assert [p for p, _ in purposes(first.id)].count("referrer_expired") == 1


def test_the_ticks_batches_return_before_the_disk_has_them_and_their_mail_waits(ctx, monkeypatch):
    """A reminder, an expiry and a survey, each as a tick does it: each batch's commit does
    not wait for the disk, and the outbox's claim of their mail does, so no mail leaves on a
    batch that a power cut could still take back (it is done again, nothing having gone)."""
    open_one(ctx)
    expiring = open_one(ctx)
    introduce(ctx)
    say(ctx, expiring, "provider", Answer.YES, NOW)
    commits = watch_commits(monkeypatch)
    assert deadlines.send_reminders(ctx, remind_at(ctx)) == 3  # to every silent party
    assert deadlines.expire_due(ctx, expire_at(ctx)) == 2  # both still asking
    assert surveys.send_due(ctx, due(ctx)) == 2
    claimed = {item.purpose for item in queries.claim_outbox(due(ctx), due(ctx), 100)}
    assert {"consent_reminder", "referrer_expired", "expired_to_party", "survey"} <= claimed
    batches = [
        (writes, synced) for writes, synced in commits if ("INSERT", "outbox_mail") in writes
    ]
    assert [synced for _, synced in batches] == [False, False, False]
    assert ("UPDATE", "party") in batches[0][0]  # the reminded marks, with their mail
    assert ("UPDATE", "referral") in batches[1][0]  # the expiries, with theirs
    assert ("UPDATE", "survey") in batches[2][0]
    assert [synced for writes, synced in commits if ("UPDATE", "outbox_mail") in writes] == [True]


def test_kinds_that_write_letters_under_the_lock_take_fewer_to_a_transaction(ctx, monkeypatch):
    """Reminders, expiries and surveys sent write their letters before the lock and take a
    large batch; withheld noes, failed mail and surveys closing write theirs under it, which
    a large batch would hold for a quarter of a second."""
    from service.intake import refusals
    from service.referral import withheld

    asked: dict[str, int] = {}
    looked = queries.due_now
    monkeypatch.setattr(
        queries, "due_now", lambda kind, now, n: asked.setdefault(kind, n) and looked(kind, now, n)
    )
    deadlines.send_reminders(ctx, NOW)
    deadlines.expire_due(ctx, NOW)
    surveys.send_due(ctx, NOW)
    surveys.close_due(ctx, NOW)
    withheld.decline_due_withheld(ctx, NOW)
    refusals.settle_failures(ctx, NOW)
    assert asked == {
        "reminders": deadlines.BATCH,
        "expiries": deadlines.BATCH,
        "surveys": deadlines.BATCH,
        "survey expiries": deadlines.BATCH_UNDER_LOCK,
        "withheld": deadlines.BATCH_UNDER_LOCK,
        "failures": deadlines.BATCH_UNDER_LOCK,
    }
    assert deadlines.BATCH_UNDER_LOCK < deadlines.BATCH
