"""A relay that refuses, stalls or hangs up, against `care-intro serve` as a real process.

A 5xx (at RCPT or after DATA) ends the referral as a bounce would; a 4xx and a connection
dropped after the final dot are retried, the one delivered once, the other at most twice
with the same Message-ID; a refusal of our sender at MAIL keeps every mail until the relay
takes them. Each test prints its figures (run with -s to see them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from store import queries
from store.models import OutboxMail
from tests.conftest import (
    REFERRER,
    Delivery,
    ServeProcess,
    Sink,
    SinkHandler,
    eventually,
    make_settings,
    relay_sink,
    wire_fixture,
)
from tests.helpers import PROSPECT, PROVIDER, inbound_counts, parse, send, text_of, words_of
from tests.test_cli import run

REQUEST = "request_thunderbird_labelled_lines.eml"
UNKNOWN_USER = "550 5.1.1 <bob@bakery.example>: Recipient address rejected: User unknown"
POLICY = "554 5.7.1 <bob@bakery.example>: Message refused by policy"
TRY_LATER = "451 4.3.0 Try again later"
NOT_OURS = "553 5.7.1 <refer@intro.example.org>: Sender address rejected: not owned by user"
# Everything of the prospect (Bob) the provider must never read.
BOB_TRACES = ["Bob", "Smith", PROSPECT, "bakery.example"]


class FaultyRelay(SinkHandler):
    """A real SMTP server that refuses our sender at MAIL, or some recipients, at RCPT or after
    DATA, or answers a mail for them 451, or takes it and hangs up before answering, the first
    few times."""

    def __init__(self) -> None:
        super().__init__()
        self.at_rcpt: dict[str, str] = {}  # address -> the reply to RCPT TO
        self.after_data: dict[str, str] = {}  # address -> the reply after the final dot
        self.temporary: Counter[str] = Counter()  # address -> how many 451s to give
        self.hang_up: Counter[str] = Counter()  # address -> how many times to take and drop
        self.attempts: Counter[str] = Counter()  # DATA commands that ended, by recipient
        self.at_mail = ""  # the reply to every MAIL FROM, while set

    async def handle_MAIL(
        self, server: object, session: object, envelope: object, address: str, options: list
    ) -> str:
        with self.lock:
            if self.at_mail:
                return self.at_mail
        envelope.mail_from = address  # type: ignore[attr-defined]
        envelope.mail_options.extend(options)  # type: ignore[attr-defined]
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: list
    ) -> str:
        refusal = self.at_rcpt.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        rcpts = [r.lower() for r in envelope.rcpt_tos]  # type: ignore[attr-defined]
        with self.lock:
            self.attempts.update(rcpts)
            for rcpt in rcpts:
                if rcpt in self.after_data:
                    return self.after_data[rcpt]
                if self.temporary[rcpt] > 0:
                    self.temporary[rcpt] -= 1
                    return TRY_LATER
            delivery = Delivery(
                envelope.mail_from,  # type: ignore[attr-defined]
                tuple(rcpts),
                bytes(envelope.original_content),  # type: ignore[attr-defined]
            )
            self.deliveries.append(delivery)
            for rcpt in rcpts:
                if self.hang_up[rcpt] > 0:
                    # The mail is in; the client never hears so, as when a relay dies
                    # between queueing a mail and saying 250.
                    self.hang_up[rcpt] -= 1
                    server.transport.abort()  # type: ignore[attr-defined]
                    return "421 4.4.2 never sent"
        return "250 2.0.0 OK"


@pytest.fixture
def relay() -> Iterator[tuple[FaultyRelay, Sink]]:
    handler = FaultyRelay()
    with relay_sink(handler) as running:
        yield handler, running


@pytest.fixture
def serve(tmp_path, store_url, relay) -> Iterator[ServeProcess]:
    settings = make_settings(tmp_path, store_url, relay[1].port)
    process = ServeProcess.in_folder(tmp_path, settings)
    process.start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        assert process.stop() == 0, process.log.read_text()


def request(serve: ServeProcess) -> int:
    """Send the standard request; 1 when the service answered 250 (smtplib raises otherwise)."""
    send(serve.settings.inbound.port, wire_fixture(REQUEST))
    return 1


def state() -> str:
    """The referral's state; "" until intake, behind the 250, has made it."""
    found = queries.recent_referrals()
    return found[0].state if found else ""


def retry_later(serve: ServeProcess) -> str:
    """`tick` three minutes on, beside the running `serve`: the first retry is due after one."""
    at = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    done = run("tick", "--at", at, "--config", str(serve.config), cwd=serve.config.parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


def figures(fault: str, answered: int, sink: Sink) -> dict[str, int]:
    """What the closing note reports per fault; duplicates are extra copies of one Message-ID."""
    ids = Counter(parse(d)["Message-ID"] for d in sink.deliveries)
    found = {
        "answered 250": answered,
        "stored": sum(inbound_counts().values()),
        "mails sent": len(ids),
        "duplicates": sum(n - 1 for n in ids.values()),
        "failed": queries.outbox_counts().get("failed", 0),
    }
    print(f"\n{fault}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    return found


def warnings_in(log: str) -> list[str]:
    return [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]


def assert_told_like_a_bounce(serve: ServeProcess, sink: Sink, reply: str) -> None:
    """The referral ended; the referrer learns whom and what the relay said, the provider
    only that it will not go ahead, and the log names nobody."""
    eventually(lambda: state() == "undeliverable", "the referral to end", 30)
    eventually(lambda: len(sink.to(REFERRER)) == 2, "the referrer's notice", 30)
    eventually(lambda: len(sink.to(PROVIDER)) == 2, "the provider's notice", 30)
    assert serve.stop() == 0
    _receipt, notice = sink.to(REFERRER)
    told = " ".join(text_of(notice).split())
    assert "We could not reach Bob Smith at <bob@bakery.example>" in told
    assert f"(status {reply})" in told
    assert "refer+" not in told  # our own envelope sender stays ours
    _, will_not = sink.to(PROVIDER)
    to_provider = words_of(will_not)
    assert "will not go ahead" in to_provider
    for leak in [*BOB_TRACES, reply[:3], "refused"]:
        assert leak not in to_provider
    assert sink.to(PROSPECT) == []
    log = serve.log.read_text()
    assert warnings_in(log), "the failure is logged"
    for line in warnings_in(log):
        assert "@" not in line.replace("@intro.example.org>", ""), line


def test_a_5xx_at_rcpt_ends_the_referral_as_a_bounce_would(serve, relay):
    handler, sink = relay
    handler.at_rcpt[PROSPECT] = UNKNOWN_USER
    answered = request(serve)
    assert_told_like_a_bounce(serve, sink, UNKNOWN_USER)
    found = figures("5xx at RCPT", answered, sink)
    assert found == {
        "answered 250": 1,
        "stored": 1,
        "mails sent": 4,
        "duplicates": 0,
        "failed": 1,
    }


def test_a_5xx_after_data_ends_the_referral_as_a_bounce_would(serve, relay):
    handler, sink = relay
    handler.after_data[PROSPECT] = POLICY
    answered = request(serve)
    assert_told_like_a_bounce(serve, sink, POLICY)
    assert handler.attempts[PROSPECT] == 1  # a 5xx is not tried again
    found = figures("5xx after DATA", answered, sink)
    assert found == {
        "answered 250": 1,
        "stored": 1,
        "mails sent": 4,
        "duplicates": 0,
        "failed": 1,
    }


def test_a_4xx_is_retried_and_delivered_once(serve, relay):
    handler, sink = relay
    handler.temporary[PROSPECT] = 1
    answered = request(serve)
    eventually(lambda: handler.attempts[PROSPECT] == 1, "the first try", 30)
    eventually(lambda: len(sink.deliveries) == 2, "the receipt and the provider's question", 30)
    assert "sent 1, retrying 0, failed 0" in retry_later(serve)
    assert serve.stop() == 0
    assert len(sink.to(PROSPECT)) == 1
    assert handler.attempts[PROSPECT] == 2
    assert state() == "asking"
    found = figures("4xx then 250", answered, sink)
    assert found == {
        "answered 250": 1,
        "stored": 1,
        "mails sent": 3,
        "duplicates": 0,
        "failed": 0,
    }


def test_a_connection_dropped_after_the_dot_is_retried_with_the_same_message_id(serve, relay):
    handler, sink = relay
    handler.hang_up[PROSPECT] = 1
    answered = request(serve)
    eventually(lambda: len(sink.deliveries) == 3, "all three mails at the relay", 30)
    eventually(lambda: queries.outbox_counts().get("sent") == 2, "two recorded as sent", 30)
    assert "sent 1, retrying 0, failed 0" in retry_later(serve)
    assert serve.stop() == 0
    first, again = sink.to(PROSPECT)
    assert parse(first)["Message-ID"] == parse(again)["Message-ID"]
    assert first.data == again.data  # the same bytes: a copy a client can recognise
    assert state() == "asking"
    found = figures("dropped after the dot", answered, sink)
    assert found == {
        "answered 250": 1,
        "stored": 1,
        "mails sent": 3,
        "duplicates": 1,
        "failed": 0,
    }


def every_mail_tried() -> bool:
    """Receipt and both questions queued, each tried at least once, none sent or failed."""
    rows = list(OutboxMail.select())
    return len(rows) == 3 and all(
        r.state == "pending" and r.attempts >= 1 and r.last_error for r in rows
    )


@pytest.mark.parametrize(
    "refusal",
    [NOT_OURS, "530 5.7.0 Authentication required"],
    ids=["sender-not-owned", "login-required"],
)
def test_a_relay_that_refuses_our_sender_keeps_every_mail_until_it_takes_them(
    serve, relay, refusal
):
    handler, sink = relay
    handler.at_mail = refusal
    answered = request(serve)
    eventually(every_mail_tried, "every mail tried and kept", 30)
    # Our sender is the operator's to fix, never a word about Bob or Jane: nothing ended.
    assert state() == "asking"
    assert {r.last_error for r in OutboxMail.select()} == {
        f"the relay refused our sender: {refusal}"
    }
    errors = [line for line in serve.log.read_text().splitlines() if "ERROR" in line]
    assert any(refusal[:3] in line and "refused our sender" in line for line in errors)
    for line in errors:
        assert "@" not in line.replace("@intro.example.org>", ""), line
    # Fixed: the next run sends them all, once each.
    handler.at_mail = ""
    assert "sent 3, retrying 0, failed 0" in retry_later(serve)
    assert serve.stop() == 0
    assert [len(sink.to(a)) for a in (REFERRER, PROVIDER, PROSPECT)] == [1, 1, 1]
    assert state() == "asking"
    found = figures(f"{refusal[:3]} at MAIL, then taken", answered, sink)
    assert found == {
        "answered 250": 1,
        "stored": 1,
        "mails sent": 3,
        "duplicates": 0,
        "failed": 0,
    }
