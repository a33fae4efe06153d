"""`care-intro serve` as a real process: request over SMTP, consent by link, introduction out."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib

import pytest

from store import queries
from tests.conftest import (
    REFERRER,
    ServeProcess,
    eventually,
    make_settings,
    wire_fixture,
)
from tests.helpers import (
    PROSPECT,
    PROVIDER,
    RCPT,
    parse,
    request_referral,
    send,
    text_of,
    web,
    words_of,
)


@pytest.fixture
def serve(tmp_path, store_url, sink):
    settings = make_settings(tmp_path, store_url, sink.port)
    process = ServeProcess.in_folder(tmp_path, settings)
    process.start()
    yield process
    if process.proc.poll() is None:
        assert process.stop() == 0, (tmp_path / "serve.log").read_text()


def answer(url: str, choice: str) -> object:
    response = web.post(url, data={"answer": choice})
    assert response.status_code == 200, response.text
    return response


def shown(delivery) -> str:
    """A mail as its reader can see it: every header decoded, every text part decoded.

    Not the raw bytes: base64 bodies and random tokens spell "bob" by chance now and then.
    """
    message = parse(delivery)
    headers = [f"{name}: {value}" for name, value in message.items()]
    parts = [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return "\n".join(headers + parts)


def test_one_introduction_from_request_to_introduction(serve, sink):
    links = request_referral(serve.settings.inbound.port, sink)
    # The three go out side by side, in no promised order.
    [receipt] = sink.to(REFERRER)
    consents = [d for d in sink.deliveries if d is not receipt]
    assert "R-" in parse(receipt)["Subject"]
    for consent in consents:
        me = consent.rcpt_tos[0]
        other = PROSPECT if me == PROVIDER else PROVIDER
        other_words = (
            ("bob", "Bob Smith", "bakery.example", "1234567")
            if other == PROSPECT
            else ("jane", "Jane Roe", "acme.example", "cal.example")
        )
        assert not [w for w in other_words if re.search(rf"(?i)\b{re.escape(w)}\b", shown(consent))]
        # Each mail's envelope sender is its own VERP address, so a bounce says which it was.
        assert re.fullmatch(r"refer\+b-[a-z2-7]{16}@intro\.example\.org", consent.mail_from)
    assert len({d.mail_from for d in sink.deliveries}) == len(sink.deliveries)
    # Scanners fetch every link, some with HEAD: nothing may change.
    [referral] = queries.recent_referrals()
    history = queries.events_for(referral.id)
    for url in links.values():
        for variant in (url, url + "?answer=yes", url + "?answer=no"):
            assert web.get(variant).status_code == 200
            assert web.head(variant).status_code == 200
    assert queries.events_for(referral.id) == history
    assert [p.answer for p in queries.referral_by_id(referral.id).parties] == [None, None]

    answer(links[PROVIDER], "yes")
    assert "introduction is on its way" in answer(links[PROSPECT], "yes").text
    deliveries = sink.wait_for(6)
    intros = [parse(d) for d in deliveries[3:] if parse(d)["Reply-To"]]
    assert sorted(d.rcpt_tos for d in deliveries[3:] if parse(d)["Reply-To"]) == [
        (PROSPECT,),
        (PROVIDER,),
    ]
    for intro in intros:
        assert {a.addr_spec for a in intro["To"].addresses} == {PROVIDER, PROSPECT}
        assert {a.addr_spec for a in intro["Reply-To"].addresses} == {PROVIDER, PROSPECT}
        body = intro.get_body(("plain",)).get_content()
        for fact in (
            "Jane Roe",
            "jane@acme.example",
            "Bob Smith",
            "bob@bakery.example",
            "+49 30 1234567",
            "Prefers: phone",
            "Best time: after 4pm",
            "Best time: weekday mornings",
            "https://cal.example/jane",
            "bookkeeping for a 5-person bakery",
            "Budget: 400 EUR/month",
        ):
            assert fact in body, fact
    [notice] = [d for d in deliveries[3:] if d.rcpt_tos == (REFERRER,)]
    assert "both said yes" in text_of(notice)
    assert queries.referral_by_id(referral.id).state == "introduced"


def test_a_no_tells_the_other_only_that_and_the_referrer_who(serve, sink):
    links = request_referral(serve.settings.inbound.port, sink)
    answer(links[PROVIDER], "yes")
    answer(links[PROSPECT], "no")
    later = sink.wait_for(5)[3:]
    to_provider = text_of(next(d for d in later if d.rcpt_tos == (PROVIDER,)))
    to_referrer = text_of(next(d for d in later if d.rcpt_tos == (REFERRER,)))
    assert "will not go ahead" in to_provider
    assert "Bob" not in words_of(next(d for d in later if d.rcpt_tos == (PROVIDER,)))
    assert "bakery.example" not in to_provider
    assert "Bob Smith <bob@bakery.example> said no" in " ".join(to_referrer.split())


def test_strangers_unknown_addresses_and_repeats_over_the_wire(serve, sink):
    port = serve.settings.inbound.port
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPDataError),
    ):
        stranger = wire_fixture("request_from_stranger.eml")
        smtp.sendmail("mallory@elsewhere.example", [RCPT], stranger)
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        smtp.sendmail(
            REFERRER,
            ["nobody@intro.example.org"],
            wire_fixture("request_thunderbird_labelled_lines.eml"),
        )
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    send(port, raw)
    send(port, raw)
    sink.wait_for(3)
    assert queries.referral_counts() == {"asking": 1}


def test_a_restart_between_the_two_answers_loses_nothing(serve, sink):
    links = request_referral(serve.settings.inbound.port, sink)
    answer(links[PROVIDER], "yes")
    assert serve.stop() == 0
    serve.start()
    answer(links[PROSPECT], "yes")
    intros = [d for d in sink.wait_for(6)[3:] if parse(d)["Reply-To"]]
    assert len(intros) == 2


def test_a_hard_kill_right_after_250_loses_nothing_and_sends_nothing_twice(serve, sink):
    send(serve.settings.inbound.port, wire_fixture("request_thunderbird_labelled_lines.eml"))
    serve.kill()  # SIGKILL: no shutdown, whatever was in flight is cut off
    serve.start()
    sink.wait_for(3)
    eventually(lambda: queries.outbox_counts().get("pending", 0) == 0, "the outbox to drain")
    assert sorted(d.rcpt_tos[0] for d in sink.deliveries) == sorted([REFERRER, PROVIDER, PROSPECT])


def test_the_maildir_transport_writes_each_mail_once(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)  # no sink: the embedded maildir default
    process = ServeProcess.in_folder(tmp_path, settings).start()
    try:
        send(settings.inbound.port, wire_fixture("request_thunderbird_labelled_lines.eml"))
        new = tmp_path / "outbox" / "new"
        eventually(lambda: new.is_dir() and len(list(new.iterdir())) == 3, "three maildir files")
        recipients = sorted(
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Delivered-To"]
            for p in new.iterdir()
        )
        assert recipients == sorted([REFERRER, PROVIDER, PROSPECT])
    finally:
        assert process.stop() == 0
