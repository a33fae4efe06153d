"""RFC 3834: what a robot wrote is never acted on nor answered; what a person wrote always is."""

from __future__ import annotations

import re

import pytest

from service.reading.request import parse_message
from service.reading.robots import automatic_reason
from tests.conftest import FIXTURES, fixture_bytes

PERSON = b"""From: Jane Roe <jane@acme.example>
To: Introductions <refer@intro.example.org>
Subject: Re: Ada Lovelace would like to introduce you to someone
Date: Sat, 21 Nov 2026 12:00:00 +0000
Message-ID: <reply-1@acme.example>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

Yes, please introduce us.
"""


def person_with(*headers: str, subject: str | None = None, sender: str | None = None):
    """A person's reply, with extra header lines, another Subject or another From."""
    raw = PERSON.decode()
    if subject is not None:
        raw = re.sub(r"(?m)^Subject: .*$", lambda _: f"Subject: {subject}", raw)
    if sender is not None:
        raw = re.sub(r"(?m)^From: .*$", lambda _: f"From: {sender}", raw)
    head, body = raw.split("\n\n", 1)
    return parse_message(("\n".join([head, *headers]) + "\n\n" + body).encode())


# ------------------------------------------------------------------ whole messages


@pytest.mark.parametrize(
    ("name", "envelope_from", "reason"),
    [
        pytest.param(
            "auto_reply_exchange_out_of_office.eml",
            "ada@referrer.example",
            "Auto-Submitted: auto-replied",
            id="exchange-en",
        ),
        pytest.param(
            "auto_reply_exchange_de.eml",
            "jane@acme.example",
            "Auto-Submitted: auto-generated",
            id="exchange-de",
        ),
        pytest.param(
            "auto_reply_exchange_fr.eml",
            "jane@acme.example",
            "Auto-Submitted: auto-generated",
            id="exchange-fr",
        ),
        pytest.param(
            "auto_reply_outlook_ar.eml",
            "jane@acme.example",
            "Auto-Submitted: auto-generated",
            id="outlook-ar",
        ),
        pytest.param(
            "auto_reply_gmail_vacation_en.eml",
            "bob@bakery.example",
            "Auto-Submitted: auto-replied",
            id="gmail-vacation-en",
        ),
        pytest.param(
            "auto_reply_gmail_vacation_ro.eml",
            "bob@bakery.example",
            "Auto-Submitted: auto-replied",
            id="gmail-vacation-ro",
        ),
        pytest.param(
            "auto_reply_gmail_vacation_id.eml",
            "bob@bakery.example",
            "Auto-Submitted: auto-replied",
            id="gmail-vacation-id",
        ),
        pytest.param(
            "auto_reply_mailing_list_mailman.eml",
            "networking-bounces@lists.chamber.example",
            "mailing list (List-Id)",
            id="mailman-list-post",
        ),
        pytest.param(
            "auto_reply_person_mentions_out_of_office.eml",
            "jane@acme.example",
            None,
            id="person-mentions-out-of-office",
        ),
        pytest.param(
            "auto_reply_person_outlook_suppress.eml",
            "jane@acme.example",
            None,
            id="person-outlook-with-x-auto-response-suppress",
        ),
    ],
)
def test_each_fixture_is_judged_robot_or_person(name, envelope_from, reason):
    message = parse_message(fixture_bytes(name))
    assert automatic_reason(message, envelope_from) == reason


# The headers a machine sets, removed: the Subject alone still tells an out-of-office, as it
# arrives (encoded words, ISO-8859-1 with Outlook's no-break space, base64 Arabic).
_MACHINE_HEADERS = re.compile(
    rb"(?mi)^(?:auto-submitted|precedence|x-autoreply|x-ms-exchange-inbox-rules-loop):.*\n"
)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        pytest.param("auto_reply_exchange_out_of_office.eml", "Automatic reply:", id="en"),
        pytest.param("auto_reply_exchange_de.eml", "Automatische Antwort:", id="de"),
        pytest.param("auto_reply_exchange_fr.eml", "Réponse automatique :", id="fr"),
        pytest.param("auto_reply_outlook_ar.eml", "رد تلقائي:", id="ar"),
        pytest.param("auto_reply_gmail_vacation_en.eml", "Out of Office", id="gmail-en"),
        pytest.param("auto_reply_gmail_vacation_ro.eml", "Absent de la birou", id="gmail-ro"),
        pytest.param("auto_reply_gmail_vacation_id.eml", "Sedang cuti", id="gmail-id"),
    ],
)
def test_an_out_of_office_subject_alone_is_enough(name, phrase):
    raw = _MACHINE_HEADERS.sub(b"", fixture_bytes(name))
    assert b"uto-submitted" not in raw.lower()
    message = parse_message(raw)
    assert automatic_reason(message, "someone@acme.example") == f"out-of-office subject ({phrase})"


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("dsn_*.eml")), ids=lambda n: n[4:-4]
)
def test_every_bounce_is_a_robot_even_when_the_envelope_is_unknown(name):
    message = parse_message(fixture_bytes(name))
    assert automatic_reason(message, "") == "null envelope sender"
    assert automatic_reason(message, "whoever@relay.example") is not None


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in FIXTURES.glob("*.eml") if p.name.startswith(("request_", "forward_"))),
    ids=lambda n: n[:-4],
)
def test_requests_people_wrote_are_not_robots(name):
    message = parse_message(fixture_bytes(name))
    assert automatic_reason(message, "ada@referrer.example") is None


# ------------------------------------------------------------------ one rule at a time


def test_a_plain_reply_from_a_person_is_a_person():
    assert automatic_reason(person_with(), "jane@acme.example") is None


@pytest.mark.parametrize(
    "envelope_from", ["", "<>", "  "], ids=["empty", "angle-brackets", "blank"]
)
def test_the_null_envelope_sender_is_a_robot(envelope_from):
    assert automatic_reason(person_with(), envelope_from) == "null envelope sender"


def test_a_null_return_path_is_a_robot():
    message = person_with("Return-Path: <>")
    assert automatic_reason(message, "jane@acme.example") == "null Return-Path"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        # the headers reading.robots.automatic_reason reads
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted: Auto-Notified", "Auto-Submitted: auto-notified"),
        (
            'Auto-Submitted: auto-replied; owner-email="x@acme.example"',
            "Auto-Submitted: auto-replied",
        ),
        ("Auto-Submitted: auto-generated (failure)", "Auto-Submitted: auto-generated (failure)"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: JUNK", "Precedence: junk"),
        ("Precedence: list", "Precedence: list"),
        # and beyond it
        ("Precedence: auto_reply", "Precedence: auto_reply"),
        (
            "List-Id: Chamber networking <networking.lists.chamber.example>",
            "mailing list (List-Id)",
        ),
        ("List-Unsubscribe: <mailto:leave@lists.example>", "mailing list (List-Unsubscribe)"),
        ("List-Post: <mailto:networking@lists.example>", "mailing list (List-Post)"),
        ("X-Mailing-List: networking@lists.example", "mailing list (X-Mailing-List)"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("X-Autorespond: Vacation", "X-Autorespond"),
        ("X-MS-Exchange-Inbox-Rules-Loop: jane@acme.example", "X-MS-Exchange-Inbox-Rules-Loop"),
        ("X-Autogenerated: Reply", "X-Autogenerated"),
        ("X-Mailer: Unity Mail Autoresponder 2.1", "X-Mailer: autoresponder"),
        ("X-Mailer: cPanel auto-responder", "X-Mailer: autoresponder"),
    ],
)
def test_a_header_that_marks_a_machine(header, reason):
    assert automatic_reason(person_with(header), "jane@acme.example") == reason


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: no",
        "Auto-Submitted: No ; comment",
        "Auto-Submitted:",
        "Precedence: first-class",
        "Precedence: normal",
        "X-Autoreply: no",
        "X-Auto-Response-Suppress: All",
        "X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply",
        "X-Mailer: Microsoft Outlook 16.0",
        "X-MS-Has-Attach:",
        "Importance: high",
    ],
)
def test_a_header_that_does_not(header):
    assert automatic_reason(person_with(header), "jane@acme.example") is None


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("MAILER-DAEMON@mx.acme.example", "From: MAILER-DAEMON@mx.acme.example"),
        (
            "Mail Delivery System <Mailer-Daemon@mx.acme.example>",
            "From: Mailer-Daemon@mx.acme.example",
        ),
        ("postmaster@acme.example (Postmaster)", "From: postmaster@acme.example"),
        ('"Acme" <no-reply@acme.example>', "From: no-reply@acme.example"),
        ("NoReply@acme.example", "From: NoReply@acme.example"),
        ("Acme <noreply+invoices@acme.example>", "From: noreply+invoices@acme.example"),
        ("DoNotReply@acme.example", "From: DoNotReply@acme.example"),
        ("do_not_reply@acme.example", "From: do_not_reply@acme.example"),
    ],
)
def test_a_sender_only_machines_use(sender, reason):
    message = person_with(sender=sender)
    assert automatic_reason(message, "bounces@acme.example") == reason


def test_a_robot_in_sender_is_a_robot():
    message = person_with("Sender: noreply@forms.acme.example")
    assert automatic_reason(message, "jane@acme.example") == "Sender: noreply@forms.acme.example"


@pytest.mark.parametrize(
    "sender",
    [
        "Nora Reply <nora.reply@acme.example>",
        "Post Master <post.masters@acme.example>",
        "Daemon Fan <mailer@acme.example>",
    ],
)
def test_a_person_whose_address_merely_resembles_a_robots(sender):
    assert automatic_reason(person_with(sender=sender), "jane@acme.example") is None


@pytest.mark.parametrize(
    ("subject", "phrase"),
    [
        ("Out of Office: back on 4 December", "Out of Office"),
        ("OUT OF OFFICE", "Out of Office"),
        ("Automatic reply: Ada Lovelace would like to…", "Automatic reply:"),
        ("Autoreply: I'm away", "Autoreply"),
        ("Abwesenheitsnotiz: Ihre Nachricht", "Abwesenheitsnotiz"),
        ("Automatische Antwort: Ihre Nachricht", "Automatische Antwort:"),
        ("Abwesend bis 4.12.", "Abwesend"),
        ("Réponse automatique : votre message", "Réponse automatique :"),
        ("Reponse automatique: votre message", "Réponse automatique :"),
        ("Réponse automatique\u00a0: votre message", "Réponse automatique :"),
        ("Absence du bureau jusqu'au 4 décembre", "Absence du bureau"),
        ("Absent(e) jusqu'au 4 décembre", "Absent(e)"),
        ("Răspuns automat: mesajul dumneavoastră", "Răspuns automat:"),
        ("RASPUNS AUTOMAT: mesajul", "Răspuns automat:"),
        ("Absent de la birou", "Absent de la birou"),
        ("Balasan otomatis: pesan Anda", "Balasan otomatis:"),
        ("Di luar kantor sampai 4 Desember", "Di luar kantor"),
        ("Sedang cuti", "Sedang cuti"),
        ("رد تلقائي: رسالتك", "رد تلقائي:"),
        ("رَدّ تلقائي: رسالتك", "رد تلقائي:"),
        ("خارج المكتب حتى 4 ديسمبر", "خارج المكتب"),
        ("=?utf-8?q?R=C4=83spuns_automat=3A_mesajul?=", "Răspuns automat:"),
        ("Re: Ada would like to introduce you (out of office)", "Out of Office"),
    ],
)
def test_an_out_of_office_subject(subject, phrase):
    message = person_with(subject=subject)
    assert automatic_reason(message, "jane@acme.example") == f"out-of-office subject ({phrase})"


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Ada Lovelace would like to introduce you to someone",
        "Office hours next week",
        "Absent-minded question about the budget",
        "Automatic transmission repair quote",
        "Răspuns: da, vă rog",
        "رد: نعم",
    ],
)
def test_a_subject_people_write(subject):
    assert automatic_reason(person_with(subject=subject), "jane@acme.example") is None
