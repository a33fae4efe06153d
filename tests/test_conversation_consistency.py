"""Nothing anyone is told is contradicted later, whatever happens in whatever order.

A state machine drives one referral through the real workflow on a real SQLite store: yes
and no by link and by reply, a reply we cannot read, changes of mind, the reminder and the
expiry coming due, a question bounced or refused by the relay, an opt-out, and a party who
had said "never contact me again" (withheld). After every step it reads the outbox, in
order, and checks each person's mail as that person reads it:

- a party's first mail is the question, asked once, reminded at most once, and told how to
  answer at most once;
- after a last word ("it will not go ahead", the introduction, or "your no stands")
  nothing more comes: no reminder, no second introduction, no going back;
- after a party's own no, nothing but "your no stands" reaches them;
- the referrer gets the receipt, then exactly one final notice once the referral has ended,
  the one that matches how it ended, and none while it is still asking.
"""

from __future__ import annotations

import email
import itertools
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from service.clock import FixedClock
from service.intake import conversation, refusals
from service.model import ROLES, Answer, Channel, State
from service.reading.addresses import Mailbox
from service.reading.request import parse_message, parse_request
from service.referral import deadlines, withheld, workflow
from service.writing.context import make_context
from store import db, queries, suppressions
from store.models import OutboxMail
from store.records import InboundRecord, PartyRecord
from tests.conftest import REFERRER, fixture_bytes, make_settings
from tests.helpers import NOW

REQUEST = "request_thunderbird_labelled_lines.eml"
REPLIES = {
    Answer.YES: "reply_gmail_top_en_yes.eml",
    Answer.NO: "reply_outlook_top_en_no_not_relevant.eml",
}
UNCLEAR = "reply_iphone_top_en_unclear.eml"
ADA = Mailbox("Ada Lovelace", REFERRER)
MINUTE = timedelta(minutes=1)

# What each mail to a party means to them.
ASK, LAST = "ask", "last word"
KIND = {
    "consent_request": ASK,
    "consent_reminder": ASK,
    "reply_unclear": ASK,
    "declined_to_other": LAST,
    "expired_to_party": LAST,
    "introduction": LAST,
    "no_stands": LAST,
}
WONT_GO_AHEAD = {"declined_to_other", "expired_to_party"}
# The referrer's notice for each way a referral ends.
FINAL = {
    "referrer_introduced": State.INTRODUCED,
    "referrer_declined": State.DECLINED,
    "referrer_expired": State.EXPIRED,
    "referrer_undeliverable": State.UNDELIVERABLE,
}

roles = st.sampled_from(ROLES)
answers = st.sampled_from([Answer.YES, Answer.NO])
ways = st.sampled_from(["link", "reply"])


class Conversation(RuleBasedStateMachine):
    folder: Path  # set by the test: where each run's store lives
    runs = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        run = next(self.runs)
        url = f"sqlite:///{self.folder / f'run-{run}.db'}"
        db.bind(url)
        self.ctx = make_context(make_settings(self.folder / f"run-{run}", url), FixedClock(NOW))
        self.now = NOW
        self.checked = 0  # outbox rows already checked against who had said no
        self.said_no: set[str] = set()

    def teardown(self) -> None:
        db.close()

    # ------------------------------------------------------------------ steps

    @initialize(withheld_role=st.sampled_from([None, *ROLES]))
    def open_referral(self, withheld_role: str | None) -> None:
        draft = parse_request(parse_message(fixture_bytes(REQUEST)))
        self.emails = {"provider": draft.provider.mailbox.address}
        self.emails["prospect"] = draft.prospect.mailbox.address
        self.withheld = withheld_role
        held = {}
        if withheld_role is not None:
            # As intake finds them: someone who said "never contact me again" before.
            with db.transaction():
                suppressions.suppress(self.emails[withheld_role], self.now - timedelta(days=30))
            expires = self.now + timedelta(days=self.ctx.settings.timing.consent_expiry_days)
            held = {self.emails[withheld_role]: withheld.decline_due(self.now, expires, 0.5)}
        self.referral = workflow.open_referral(
            self.ctx, draft, ADA, None, Channel.SMTP, self.now, withheld=held
        )

    @rule(role=roles, given=answers, way=ways)
    def answer(self, role: str, given: Answer, way: str) -> None:
        self._answer(role, given, way)

    @rule(role=roles, way=ways)
    def change_of_mind(self, role: str, way: str) -> None:
        """The other answer than the one they gave (a no, if they gave none yet)."""
        mine = self._party(role).answer
        self._answer(role, Answer.YES if mine == Answer.NO else Answer.NO, way)

    @rule(role=roles)
    def unclear_reply(self, role: str) -> None:
        if role == self.withheld:
            return
        self.now += MINUTE
        self._reply(self._party(role), UNCLEAR)

    @rule()
    def reminder_due(self) -> None:
        self._tick(self.referral.remind_at or self.now)

    @rule()
    def expiry_due(self) -> None:
        self._tick(self.referral.expires_at)

    @rule()
    def withheld_no_due(self) -> None:
        withheld_party = self._party(self.withheld) if self.withheld else None
        self._tick(withheld_party.withheld_until if withheld_party else None)

    @rule(role=roles)
    def question_bounces(self, role: str) -> None:
        self.now += MINUTE
        party = self._party(role)
        status = "5.1.1 The email account that you tried to reach does not exist"
        workflow.undeliverable(self.ctx, self.referral.id, party.id, status, Channel.SMTP, self.now)

    @rule(role=roles)
    def relay_refuses_the_last_question(self, role: str) -> None:
        party = self._party(role)
        asked = (
            OutboxMail.select(OutboxMail.id)
            .where((OutboxMail.party == party.id) & OutboxMail.purpose.in_(_asking()))
            .order_by(OutboxMail.id.desc())
            .first()
        )
        if asked is None:
            return
        self.now += MINUTE
        queries.mark_failed(asked.id, self.now, "550 5.1.1 <someone>: Recipient address rejected")
        self._tick(None)

    @rule(role=roles)
    def opts_out(self, role: str) -> None:
        self.now += MINUTE
        workflow.opt_out(self.ctx, f"q:{self._party(role).ask_key}", Channel.LINK, self.now)

    # ------------------------------------------------------------------ what they read

    @invariant()
    def nothing_contradicts_what_anyone_was_told(self) -> None:
        referral = queries.referral_by_id(self.referral.id)
        rows = [(purpose, recipients) for purpose, _, recipients in self._outbox()]
        for purpose, recipients in rows[self.checked :]:
            for address in set(recipients) & self.said_no:
                assert purpose == "no_stands", f"{purpose} to {address} after their no"
        self.checked = len(rows)
        self.said_no |= {self.emails[p.role] for p in referral.parties if p.answer == Answer.NO}

        for role, address in self.emails.items():
            mine = [purpose for purpose, recipients in rows if address in recipients]
            if role == self.withheld:
                assert mine == [], f"the {role} said never again, and got {mine}"
            else:
                _check_party(role, mine)
        got = {purpose for purpose, _ in rows}
        if "introduction" in got:
            assert referral.state == State.INTRODUCED, f"an introduction, yet {referral.state}"
            assert not got & WONT_GO_AHEAD, f"an introduction and {got & WONT_GO_AHEAD}"
        theirs = [purpose for purpose, recipients in rows if REFERRER in recipients]
        _check_referrer(theirs, State(referral.state))

    # ------------------------------------------------------------------ helpers

    def _party(self, role: str) -> PartyRecord:
        referral = queries.referral_by_id(self.referral.id)
        assert referral is not None
        return referral.party(role)

    def _outbox(self) -> list[tuple[str, str, tuple[str, ...]]]:
        return queries.outbox_for_referral(self.referral.id)

    def _answer(self, role: str, given: Answer, way: str) -> None:
        if role == self.withheld:
            return  # asked nothing, so they have nothing to answer
        self.now += MINUTE
        party = self._party(role)
        if way == "link":
            workflow.answer(self.ctx, party.ask_key, given, Channel.LINK, self.now)
            return
        self._reply(party, REPLIES[given])

    def _reply(self, party: PartyRecord, fixture: str) -> None:
        """`fixture` as the party's reply, through what receiving hands a reply to."""
        message = _written_by(fixture, party.email)
        record = InboundRecord(
            id=0,
            message_id=message["Message-ID"],
            envelope_from=party.email,
            recipients=(f"refer+{party.reply_key}@intro.example.org",),
            via="smtp",
            raw=message.as_bytes(),
            received_at=self.now,
            state="new",
            note="",
        )
        conversation.process_reply(self.ctx, record, message, party.ask_key, self.now)

    def _tick(self, due: datetime | None) -> None:
        """Time passes to `due` (if later), and the jobs run as `serve` runs them."""
        self.now = max(self.now, due or self.now) + MINUTE
        deadlines.expire_due(self.ctx, self.now)
        deadlines.send_reminders(self.ctx, self.now)
        withheld.decline_due_withheld(self.ctx, self.now)
        refusals.settle_failures(self.ctx, self.now)


def _asking() -> list[str]:
    return [purpose for purpose, kind in KIND.items() if kind == ASK]


def _written_by(fixture: str, author: str) -> EmailMessage:
    message = email.message_from_bytes(fixture_bytes(fixture), policy=default)
    del message["From"]
    message["From"] = author
    return message


def _check_party(role: str, mail: list[str]) -> None:
    """One party's mail, in the order they got it, tells one story."""
    assert not mail or mail[0] == "consent_request", f"the {role} was first sent {mail[0]}"
    assert mail.count("consent_request") <= 1, f"the {role} was asked twice: {mail}"
    assert mail.count("consent_reminder") <= 1, f"the {role} was reminded twice: {mail}"
    assert mail.count("reply_unclear") <= 1, f"the {role} was told how to answer twice: {mail}"
    for i, purpose in enumerate(mail):
        assert purpose in KIND, f"the {role} got {purpose}, which this test cannot place"
        if KIND[purpose] == LAST:
            assert mail[i + 1 :] == [], f"the {role} got {mail[i + 1 :]} after {purpose}"


def _check_referrer(mail: list[str], state: State) -> None:
    """The receipt, then the one notice that says how it ended, once it ended."""
    assert mail[:1] == ["receipt"], mail
    finals = mail[1:]
    assert all(purpose in FINAL for purpose in finals), f"the referrer got {finals}"
    if state is State.ASKING:
        assert finals == [], f"the referrer got {finals} while the question is open"
    else:
        assert [FINAL[p] for p in finals] == [state], f"{finals} for a referral {state}"


# Passing takes seconds; a failure is shrunk to its shortest story, which takes minutes.
@pytest.mark.timeout(600)
def test_no_mail_contradicts_an_earlier_one(tmp_path: Path) -> None:
    Conversation.folder = tmp_path
    run_state_machine_as_test(
        Conversation,
        settings=settings(
            max_examples=75,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
