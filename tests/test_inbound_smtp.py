"""The SMTP edge over a real socket: what is refused, what is stored, and when we say 250."""

from __future__ import annotations

import smtplib

import pytest

from store import db, queries
from tests.conftest import REFERRER, InProcess, eventually, make_settings, wire_fixture
from tests.helpers import inbound_counts

RCPT = "refer@intro.example.org"


def client(service: InProcess) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", service.service.smtp_port, timeout=10)


def test_an_address_we_do_not_own_is_refused_with_550(running):
    with client(running) as smtp, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp.sendmail(REFERRER, ["someone@intro.example.org"], b"Subject: x\n\nx\n")
    code, text = refused.value.recipients["someone@intro.example.org"]
    assert code == 550 and b"no such mailbox" in text


def test_a_stranger_is_refused_in_the_dialogue(running):
    with client(running) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        stranger = wire_fixture("request_from_stranger.eml")
        smtp.sendmail("mallory@elsewhere.example", [RCPT], stranger)
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error == (
        b"5.7.1 <mallory@elsewhere.example> is not allowed to send requests here"
    )
    assert inbound_counts() == {}


def test_a_stranger_in_from_behind_an_allowed_envelope_is_refused_at_data(running):
    with client(running) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail(REFERRER, [RCPT], wire_fixture("request_from_stranger.eml"))
    assert refused.value.smtp_code == 550
    assert inbound_counts() == {}


def test_the_message_is_stored_before_the_server_says_250(running):
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    with client(running) as smtp:
        smtp.ehlo()
        smtp.mail(REFERRER)
        smtp.rcpt(RCPT)
        code, text = smtp.data(raw)
        assert code == 250
        # Read the store from this thread, not through the service, the moment 250 arrives.
        stored = inbound_counts()
        assert sum(stored.values()) == 1
    assert b"queued as" in text
    assert b"\n" not in text and b"Traceback" not in text


def test_the_same_message_id_twice_is_accepted_twice_and_kept_once(running, sink):
    raw = wire_fixture("request_thunderbird_labelled_lines.eml")
    with client(running) as smtp:
        assert smtp.sendmail(REFERRER, [RCPT], raw) == {}
    with client(running) as smtp:
        smtp.ehlo()
        smtp.mail(REFERRER)
        smtp.rcpt(RCPT)
        assert smtp.data(raw) == (250, b"2.0.0 OK: already received")
    sink.wait_for(3)
    assert queries.referral_counts() == {"asking": 1}
    assert sum(inbound_counts().values()) == 1


def test_a_bounce_with_the_null_sender_is_accepted_and_kept(running):
    with client(running) as smtp:
        assert smtp.sendmail("", [RCPT], wire_fixture("dsn_postfix_user_unknown.eml")) == {}
    eventually(lambda: inbound_counts() == {"ignored": 1}, "the bounce to be filed")


def test_only_our_recipients_are_taken_from_a_mixed_list(running):
    raw = wire_fixture("request_with_pdf_attachment.eml")
    with client(running) as smtp:
        refused = smtp.sendmail(REFERRER, ["other@intro.example.org", RCPT], raw)
    assert list(refused) == ["other@intro.example.org"]
    assert sum(inbound_counts().values()) == 1


@pytest.mark.parametrize(
    ("fixture", "text"),
    [
        (
            "request_with_two_from_headers.eml",
            b"5.7.1 A request needs exactly one From header, not 2",
        ),
        (
            "request_from_address_as_display_name.eml",
            b"5.7.1 The From header must name exactly one address, and nothing else",
        ),
    ],
    ids=["two-from-headers", "address-as-display-name"],
)
def test_a_from_that_could_name_someone_else_is_refused_in_the_dialogue(running, fixture, text):
    with client(running) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail(REFERRER, [RCPT], wire_fixture(fixture))
    assert (refused.value.smtp_code, refused.value.smtp_error) == (550, text)
    assert inbound_counts() == {}


def test_past_100_recipients_the_rest_are_told_to_come_again(running):
    """RFC 5321 4.5.3.1.8: 100 must be taken; a 4xx makes the client send the rest again."""
    recipients = [RCPT] * 101
    with client(running) as smtp:
        smtp.ehlo()
        smtp.mail("")
        replies = [smtp.rcpt(r) for r in recipients]
        assert [code for code, _ in replies] == [250] * 100 + [452]
        assert replies[-1][1] == b"4.5.3 Too many recipients"
        assert smtp.data(wire_fixture("dsn_postfix_user_unknown.eml"))[0] == 250
        assert smtp.mail("")[0] == 250  # the session goes on
    assert sum(inbound_counts().values()) == 1


def test_a_session_that_only_idles_is_hung_up_on(running):
    with client(running) as smtp:
        assert [smtp.noop()[0] for _ in range(100)] == [250] * 100
        code, text = smtp.noop()
    assert (code, text) == (421, b"4.7.0 NOOP sent too many times")


def test_a_store_failure_answers_451_and_tells_the_peer_nothing_more(running):
    db.database.execute_sql(
        "DROP TABLE inbound_message CASCADE" if db.is_postgresql() else "DROP TABLE inbound_message"
    )
    with client(running) as smtp, pytest.raises(smtplib.SMTPDataError) as failed:
        smtp.sendmail(REFERRER, [RCPT], wire_fixture("request_thunderbird_labelled_lines.eml"))
    assert failed.value.smtp_code == 451
    assert failed.value.smtp_error == b"4.3.0 Temporary local problem, please try again later"


def test_a_message_over_the_size_limit_is_refused(tmp_path, sqlite_url, sink):
    settings = make_settings(tmp_path, sqlite_url, sink.port).replace(
        "inbound", max_message_bytes=2000
    )
    service = InProcess(settings.replace("inbound", port=settings.inbound.port))
    try:
        with client(service) as smtp, pytest.raises(smtplib.SMTPException) as refused:
            smtp.sendmail(
                REFERRER,
                [RCPT],
                wire_fixture("request_thunderbird_labelled_lines.eml") + b"x" * 3000,
            )
        assert "552" in str(refused.value)
        assert inbound_counts() == {}
    finally:
        service.stop()


def test_with_a_trusted_mta_unauthenticated_from_domains_are_refused_at_data(
    tmp_path, sqlite_url, sink
):
    settings = make_settings(tmp_path, sqlite_url, sink.port)
    settings = settings.replace(
        "security",
        allowed_referrers=settings.security.allowed_referrers,
        trusted_authserv_id="mx.intro.example.org",
    )
    service = InProcess(settings)
    try:
        with client(service) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
            forged = wire_fixture("request_forged_authentication_results_below_ours.eml")
            smtp.sendmail(REFERRER, [RCPT], forged)
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error == b"5.7.1 The From domain did not pass DKIM or SPF"
        with client(service) as smtp:
            signed = wire_fixture("request_authenticated_dkim_pass_aligned.eml")
            assert smtp.sendmail(REFERRER, [RCPT], signed) == {}
        assert sum(inbound_counts().values()) == 1
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("request_outlook_tnef_winmail_dat_only.eml", "no readable text (application/ms-tnef)"),
        (
            "request_multipart_without_boundary_php_mailer.eml",
            "no readable text (multipart/alternative)",
        ),
    ],
    ids=["winmail-dat-only", "multipart-without-boundary"],
)
def test_what_cannot_be_read_is_accepted_kept_and_the_listener_goes_on(
    running, sink, fixture, reason
):
    with client(running) as smtp:
        assert smtp.sendmail(REFERRER, [RCPT], wire_fixture(fixture)) == {}
    [note] = sink.wait_for(1)
    assert note.rcpt_tos == (REFERRER,)
    assert b"could not read" in note.data
    [kept] = eventually(queries.quarantined, "the message in quarantine")
    assert kept.note == reason
    assert kept.raw.replace(b"\r\n", b"\n") == wire_fixture(fixture).replace(b"\r\n", b"\n")
    # The next request on the same listener is served as usual.
    with client(running) as smtp:
        smtp.sendmail(REFERRER, [RCPT], wire_fixture("request_thunderbird_labelled_lines.eml"))
    sink.wait_for(4)
    assert queries.referral_counts() == {"asking": 1}
