"""The state machine: each answer's effect, on both stores, alone and at the same moment."""

from __future__ import annotations

import threading

import pytest

from service.errors import NotFound, WrongState
from service.model import Answer, Channel, State, Suggestion
from service.reading.addresses import Mailbox
from service.reading.request import parse_message, parse_request
from service.referral import workflow
from service.referral.gate import suggestions
from service.referral.workflow import Notice, Outcome, decide_answer
from store import db, queries
from store.models import Referral
from tests.conftest import REFERRER, fixture_bytes
from tests.helpers import NOW

ADA = Mailbox("Ada Lovelace", REFERRER)
Y, N = Answer.YES, Answer.NO


@pytest.mark.parametrize(
    ("state", "answers", "role", "answer", "expected"),
    [
        (State.ASKING, {}, "provider", Y, (Outcome.RECORDED, State.ASKING, ())),
        (
            State.ASKING,
            {"prospect": "yes"},
            "provider",
            Y,
            (Outcome.RECORDED, State.INTRODUCED, (Notice.INTRODUCTION, Notice.REFERRER_INTRODUCED)),
        ),
        (
            State.ASKING,
            {},
            "prospect",
            N,
            (
                Outcome.RECORDED,
                State.DECLINED,
                (Notice.DECLINED_TO_OTHER, Notice.REFERRER_DECLINED),
            ),
        ),
        (
            State.ASKING,
            {"provider": "yes"},
            "prospect",
            N,
            (
                Outcome.RECORDED,
                State.DECLINED,
                (Notice.DECLINED_TO_OTHER, Notice.REFERRER_DECLINED),
            ),
        ),
        (
            State.ASKING,
            {"provider": "yes"},
            "provider",
            Y,
            (Outcome.ALREADY_ANSWERED, State.ASKING, ()),
        ),
        (
            State.ASKING,
            {"provider": "yes"},
            "provider",
            N,
            (
                Outcome.RECORDED,
                State.DECLINED,
                (Notice.DECLINED_TO_OTHER, Notice.REFERRER_DECLINED),
            ),
        ),
        (State.DECLINED, {"provider": "no"}, "prospect", Y, (Outcome.CLOSED, State.DECLINED, ())),
        (
            State.DECLINED,
            {"provider": "no"},
            "provider",
            Y,
            (Outcome.NO_STANDS, State.DECLINED, ()),
        ),
        (
            State.DECLINED,
            {"provider": "no", "prospect": "yes"},
            "provider",
            Y,
            (Outcome.NO_STANDS, State.DECLINED, ()),
        ),
        (
            State.DECLINED,
            {"provider": "yes", "prospect": "no"},
            "provider",
            N,
            (Outcome.ALREADY_ANSWERED, State.DECLINED, ()),
        ),
        (State.EXPIRED, {}, "prospect", Y, (Outcome.CLOSED, State.EXPIRED, ())),
        (
            State.INTRODUCED,
            {"provider": "yes", "prospect": "yes"},
            "prospect",
            N,
            (Outcome.ALREADY_ANSWERED, State.INTRODUCED, ()),
        ),
    ],
    ids=[
        "first-yes",
        "second-yes",
        "first-no",
        "no-after-yes",
        "repeat-yes",
        "no-after-own-yes-withdraws",
        "yes-after-the-others-no",
        "yes-after-own-no-stands",
        "yes-after-own-no-while-the-other-said-yes-stands",
        "no-after-the-others-no-changes-nothing",
        "after-expiry",
        "after-introduction",
    ],
)
def test_decide_answer(state, answers, role, answer, expected):
    decision = decide_answer(state, answers, role, answer)
    assert (decision.outcome, decision.state, decision.notices) == expected


def open_one(ctx):
    draft = parse_request(parse_message(fixture_bytes("request_thunderbird_labelled_lines.eml")))
    return workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)


def purposes(referral_id):
    return [(p, r) for p, _, r in queries.outbox_for_referral(referral_id)]


def test_opening_asks_both_parties_and_thanks_the_referrer(ctx):
    referral = open_one(ctx)
    assert referral.state == "asking"
    assert referral.ref.startswith("R-")
    assert purposes(referral.id) == [
        ("receipt", ("ada@referrer.example",)),
        ("consent_request", ("jane@acme.example",)),
        ("consent_request", ("bob@bakery.example",)),
    ]
    assert [(e.kind, e.actor, e.channel) for e in queries.events_for(referral.id)] == [
        ("received", "referrer", "smtp"),
        ("asked", "service", "smtp"),
    ]


def test_two_yeses_introduce_them_once(ctx):
    referral = open_one(ctx)
    first = workflow.answer(ctx, referral.party("provider").ask_key, Y, Channel.LINK, NOW)
    assert (first.outcome, first.state) == (Outcome.RECORDED, State.ASKING)
    second = workflow.answer(ctx, referral.party("prospect").ask_key, Y, Channel.LINK, NOW)
    assert (second.outcome, second.state) == (Outcome.RECORDED, State.INTRODUCED)
    assert purposes(referral.id)[3:] == [
        ("introduction", ("jane@acme.example",)),
        ("introduction", ("bob@bakery.example",)),
        ("referrer_introduced", ("ada@referrer.example",)),
    ]
    again = workflow.answer(ctx, referral.party("prospect").ask_key, Y, Channel.LINK, NOW)
    assert again.outcome is Outcome.ALREADY_ANSWERED
    assert len(purposes(referral.id)) == 6
    stored = queries.referral_by_id(referral.id)
    assert stored.state == "introduced" and stored.introduced_at == NOW
    assert [e.kind for e in queries.events_for(referral.id)][-3:] == [
        "answered yes",
        "answered yes",
        "introduced",
    ]


def test_a_no_closes_it_and_tells_the_other_only_that(ctx):
    referral = open_one(ctx)
    workflow.answer(ctx, referral.party("provider").ask_key, Y, Channel.LINK, NOW)
    result = workflow.answer(ctx, referral.party("prospect").ask_key, N, Channel.LINK, NOW)
    assert result.state is State.DECLINED
    assert purposes(referral.id)[3:] == [
        ("declined_to_other", ("jane@acme.example",)),
        ("referrer_declined", ("ada@referrer.example",)),
    ]


def test_an_answer_after_the_other_declined_changes_nothing(ctx):
    referral = open_one(ctx)
    workflow.answer(ctx, referral.party("provider").ask_key, N, Channel.LINK, NOW)
    late = workflow.answer(ctx, referral.party("prospect").ask_key, Y, Channel.LINK, NOW)
    assert late.outcome is Outcome.CLOSED
    assert queries.referral_by_id(referral.id).party("prospect").answer is None
    assert len(purposes(referral.id)) == 5


def test_a_yes_after_ones_own_no_changes_nothing_and_tells_nobody(ctx):
    referral = open_one(ctx)
    prospect = referral.party("prospect").ask_key
    workflow.answer(ctx, referral.party("provider").ask_key, Y, Channel.LINK, NOW)
    workflow.answer(ctx, prospect, N, Channel.LINK, NOW)
    sent, history = purposes(referral.id), queries.events_for(referral.id)
    later = workflow.answer(ctx, prospect, Y, Channel.REPLY, NOW)
    assert (later.outcome, later.answer, later.state) == (Outcome.NO_STANDS, "no", State.DECLINED)
    stored = queries.referral_by_id(referral.id)
    assert stored.state == "declined" and stored.party("prospect").answer == "no"
    # The provider was told it will not go ahead; nothing may say otherwise, nor hint at it.
    assert purposes(referral.id) == sent and queries.events_for(referral.id) == history


def test_a_yes_by_reply_after_ones_own_no_is_explained_once(ctx):
    referral = open_one(ctx)
    prospect = referral.party("prospect").ask_key
    workflow.answer(ctx, prospect, N, Channel.REPLY, NOW)
    assert workflow.tell_no_stands(ctx, prospect, NOW)
    assert not workflow.tell_no_stands(ctx, prospect, NOW)
    assert purposes(referral.id)[-1] == ("no_stands", ("bob@bakery.example",))
    assert [p for p, _ in purposes(referral.id)].count("no_stands") == 1
    # Only a standing no is explained: a party who said yes, or nothing, gets no such note.
    assert not workflow.tell_no_stands(ctx, referral.party("provider").ask_key, NOW)


def test_a_no_stands_note_counts_in_the_days_limit_of_unprompted_mail(ctx):
    limit = ctx.settings.outbound.daily_limit_per_address
    referral = open_one(ctx)
    for _ in range(limit):
        workflow.explain_unclear(ctx, open_one(ctx).party("prospect").ask_key, NOW)
    workflow.answer(ctx, referral.party("prospect").ask_key, N, Channel.REPLY, NOW)
    assert not workflow.tell_no_stands(ctx, referral.party("prospect").ask_key, NOW)
    assert "no_stands" not in [p for p, _ in purposes(referral.id)]


def test_an_unknown_question_is_not_found(ctx):
    with pytest.raises(NotFound):
        workflow.answer(ctx, "no-such-key", Y, Channel.LINK, NOW)


def test_both_answering_at_the_same_moment_introduces_exactly_once(ctx):
    for _ in range(8):
        referral = open_one(ctx)
        barrier = threading.Barrier(2)
        results, errors = [], []

        def say_yes(role, referral=referral, barrier=barrier, results=results, errors=errors):
            try:
                barrier.wait(10)
                results.append(
                    workflow.answer(ctx, referral.party(role).ask_key, Y, Channel.LINK, NOW)
                )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.close()

        threads = [threading.Thread(target=say_yes, args=(r,)) for r in ("provider", "prospect")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert sorted(r.state for r in results) == ["asking", "introduced"]
        introductions = [p for p, _ in purposes(referral.id) if p == "introduction"]
        assert len(introductions) == 2  # one envelope each, never two


def test_the_receipt_says_what_would_make_a_referral_better(ctx):
    draft = parse_request(parse_message(fixture_bytes("request_with_pdf_attachment.eml")))
    referral = workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)
    assert suggestions(referral) == [
        Suggestion.PREFERRED_CONTACT,
        Suggestion.BEST_TIME,
        Suggestion.BOOKING,
        Suggestion.BUDGET,
    ]
    assert suggestions(open_one(ctx)) == []


# ------------------------------------------------------------------ the transition table

LIFECYCLE = {
    (State.RECEIVED, State.ASKING),
    (State.ASKING, State.INTRODUCED),
    (State.ASKING, State.DECLINED),
    (State.ASKING, State.EXPIRED),
    (State.ASKING, State.UNDELIVERABLE),
    (State.INTRODUCED, State.EVALUATING),
    (State.INTRODUCED, State.EVALUATED),
    (State.EVALUATING, State.EVALUATED),
}


def test_the_table_is_the_lifecycle_and_knows_every_state():
    assert set(workflow.TRANSITIONS) == set(State)
    allowed = {(a, b) for a, targets in workflow.TRANSITIONS.items() for b in targets}
    assert allowed == LIFECYCLE


def _put(referral_id: int, state: State) -> None:
    """As an operator's hand would: the store says `state`, whatever came before."""
    Referral.update(state=state).where(Referral.id == referral_id).execute()


@pytest.mark.parametrize("current", list(State), ids=lambda s: f"from-{s}")
def test_every_allowed_move_works_and_every_other_is_refused(ctx, current):
    for to in State:
        referral = open_one(ctx)
        _put(referral.id, current)
        with db.transaction():
            locked = queries.lock_referral(referral.id)
            if (current, to) in LIFECYCLE:
                moved = workflow.move(locked, to, NOW, Channel.CLI, detail="by hand")
                assert moved.state == to
            else:
                with pytest.raises(WrongState):
                    workflow.move(locked, to, NOW, Channel.CLI)
        stored = queries.referral_by_id(referral.id)
        events = queries.events_for(referral.id)
        if (current, to) in LIFECYCLE:
            assert stored.state == to and stored.updated_at == NOW
            assert (events[-1].kind, events[-1].channel, events[-1].detail) == (
                to,
                "cli",
                "by hand",
            )
        else:
            assert stored.state == current
            assert events[-1].kind == "asked"


def test_a_stale_writer_cannot_move_a_referral_backwards(ctx):
    referral = open_one(ctx)
    seen = queries.referral_by_id(referral.id)  # asking, as one writer read it
    with db.transaction():
        workflow.move(queries.lock_referral(referral.id), State.DECLINED, NOW, Channel.LINK)
    with pytest.raises(WrongState), db.transaction():
        workflow.move(seen, State.INTRODUCED, NOW, Channel.LINK)
    assert queries.referral_by_id(referral.id).state == State.DECLINED
    assert [e.kind for e in queries.events_for(referral.id)][-1] == "declined"


def test_a_new_referral_is_received_then_asking_in_one_transaction(ctx):
    referral = open_one(ctx)
    assert queries.referral_by_id(referral.id).state == State.ASKING
    kinds = [e.kind for e in queries.events_for(referral.id)]
    assert kinds == ["received", "asked"]
