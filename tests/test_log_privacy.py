"""`serve` at its default level names nobody: a lifecycle, a refusal and a bounce leave only
ids, references and purposes in the log."""

from __future__ import annotations

import re
import smtplib

import pytest

from store import queries
from tests.conftest import REFERRER, ServeProcess, eventually, make_settings, wire_fixture
from tests.helpers import OUR_MESSAGE_ID, PROSPECT, PROVIDER, RCPT, REFERENCE, request_referral, web

STRANGER = "mallory@elsewhere.example"
# Everyone the three conversations name, by address (as written and lowercased, so a
# case-insensitive search) and by name; the subject line names two of them too.
PEOPLE = (
    REFERRER,
    PROVIDER,
    PROSPECT,
    STRANGER,
    "Bob.Smith@Bakery.Example",
    "Ada Lovelace",
    "Jane Roe",
    "Bob Smith",
    "Mallory",
    "Lovelace",
    "Jane",
    "Bob",
)


def _answer_yes(url: str) -> None:
    assert web.post(url, data={"answer": "yes"}).status_code == 200


def _second_request() -> bytes:
    # The same people again, as a new message: the prospect's address written in capitals.
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    raw = raw.replace(b"8f3c2a1e-7b4d", b"8f3c2a1e-0000")
    return raw.replace(b"Bob Smith <bob@bakery.example>", b"Bob Smith <Bob.Smith@Bakery.Example>")


def test_serve_logs_no_address_and_no_name_at_its_default_level(tmp_path, store_url, sink):
    settings = make_settings(tmp_path, store_url, sink.port)
    assert settings.logging.level.upper() == "INFO"  # the default, not raised for the test
    serve = ServeProcess.in_folder(tmp_path, settings).start()
    port = settings.inbound.port
    try:
        # A whole lifecycle: request, both questions, both yes by link, the introduction.
        links = request_referral(port, sink)
        _answer_yes(links[PROVIDER])
        _answer_yes(links[PROSPECT])
        sink.wait_for(6)
        # A refusal: a sender who may not refer.
        with (
            smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp,
            pytest.raises(smtplib.SMTPDataError),
        ):
            smtp.sendmail(STRANGER, [RCPT], wire_fixture("request_from_stranger.eml"))
        # A bounce: the second request's question to the prospect comes back.
        before = len(sink.deliveries)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail(REFERRER, [RCPT], _second_request())
        sink.wait_for(before + 3)
        [question] = [
            d
            for d in sink.deliveries[before:]
            if d.rcpt_tos[0].lower() == "bob.smith@bakery.example"
        ]
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("<>", [question.mail_from], wire_fixture("dsn_postfix_user_unknown.eml"))
        eventually(
            lambda: "undeliverable" in queries.referral_counts(), "the bounced referral to end"
        )
        sink.wait_for(before + 5)
    finally:
        assert serve.stop() == 0
    log = serve.log.read_text()
    # The log did say what happened, by the message's id, the reference and the purpose.
    assert re.search(r"inbound 1 processed: R-[A-Z0-9-]+\n", log), log
    assert "(introduction) handed on to 1 recipient(s)" in log
    assert "refused a message in the dialogue: <[address]> is not allowed" in log
    assert "inbound 3 processed: permanent failure: [address] 5.1.1; 1 referral(s) ended" in log
    # Names are looked for without our Message-IDs and references: random, they spell a short
    # name now and then (<bob-…@intro.example.org>, R-JANE-…), about once in 60,000 runs.
    names = re.sub(f"{OUR_MESSAGE_ID}|{REFERENCE}", "", log)
    found = {who for who in PEOPLE if re.search(rf"(?i)\b{re.escape(who)}\b", names)}
    assert not found, f"the log names {sorted(found)}:\n{log}"


def test_an_lmtp_refusal_says_why_and_not_who(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url).replace("inbound", protocol="lmtp")
    serve = ServeProcess.in_folder(tmp_path, settings).start()
    try:
        client = smtplib.LMTP("127.0.0.1", settings.inbound.port, timeout=10)
        try:
            client.ehlo()
            assert client.mail(STRANGER)[0] == 250
            assert client.rcpt(RCPT)[0] == 250
            code, _ = client.data(wire_fixture("request_from_stranger.eml"))
            assert code == 550
        finally:
            client.close()
        eventually(lambda: "refused a message" in serve.log.read_text(), "the refusal's line")
    finally:
        assert serve.stop() == 0
    log = serve.log.read_text()
    assert "refused a message in the dialogue: <[address]> is not allowed" in log
    assert not re.search(r"(?i)mallory|elsewhere\.example", log), log
