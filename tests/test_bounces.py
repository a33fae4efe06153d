"""Delivery status notifications: who failed, for good or for now, and in the server's words."""

from __future__ import annotations

import pytest

from service.reading.bounces import Failure, read_bounce, returned_message_ids
from service.reading.request import parse_message
from tests.conftest import FIXTURES, fixture_bytes

JANE = "jane@acme.example"
BOB = "bob@bakery.example"

# ------------------------------------------------------------------ whole messages

# Written the way each MTA formats its reports, about our consent mail
# <consent.3f9a1c7e2b@intro.example.org> sent from the VERP address refer+b-3f9a1c7e2b@….
OURS = [
    pytest.param(
        "dsn_postfix_user_unknown.eml",
        [Failure(BOB, True, "5.1.1", 'unknown user: "bob"')],
        id="postfix-user-unknown",
    ),
    pytest.param(
        "dsn_postfix_delayed.eml",
        [
            Failure(
                JANE,
                False,
                "4.4.1",
                "delivery temporarily suspended: connect to mx.acme.example[192.0.2.25]:25: "
                "Connection timed out",
            )
        ],
        id="postfix-delayed-warning",
    ),
    pytest.param(
        "dsn_exim_retry_timeout.eml",
        # Exim writes no Diagnostic-Code for its own timeout; its reason is in the prose.
        [Failure(JANE, True, "5.0.0", "retry timeout exceeded")],
        id="exim-rfc3464-retry-timeout",
    ),
    pytest.param(
        "dsn_exim_plain_text.eml",
        [
            Failure(
                JANE,
                True,
                "5.1.1",
                "SMTP error from remote mail server after RCPT TO:<jane@acme.example>: "
                "host exchange.acme.example [192.0.2.27]: 550 5.1.1 User unknown",
            )
        ],
        id="exim-prose-only",
    ),
    pytest.param(
        "dsn_exchange_online_recipient_not_found.eml",
        [
            Failure(
                JANE,
                True,
                "5.1.10",
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient jane@acme.example "
                "not found by SMTP address lookup",
            )
        ],
        id="exchange-online-ndr",
    ),
    pytest.param(
        "dsn_gmail_no_such_user.eml",
        [
            Failure(
                BOB,
                True,
                "5.1.1",
                "550-5.1.1 The email account that you tried to reach does not exist. Please try "
                "double-checking the recipient's email address for typos or unnecessary spaces. "
                "For more information, go to https://support.google.com/mail/?p=NoSuchUser "
                "41be03b00d2f7-7fd1b2c3d4esor1234567a12.101 - gsmtp",
            )
        ],
        id="gmail-no-such-user",
    ),
    pytest.param(
        "dsn_qmail_no_mailbox.eml",
        [Failure(BOB, True, "5.1.1", "Sorry, no mailbox here by that name. (#5.1.1)")],
        id="qmail-prose-only",
    ),
    pytest.param(
        "dsn_sendmail_one_failed_one_delayed.eml",
        [
            Failure(
                JANE,
                True,
                "5.1.1",
                "550 5.1.1 <jane@acme.example>: Recipient address rejected: "
                "User unknown in virtual mailbox table",
            ),
            Failure(
                BOB,
                False,
                "4.2.2",
                "452 4.2.2 <bob@bakery.example>: Recipient address rejected: Mailbox full",
            ),
        ],
        id="sendmail-one-failed-one-delayed",
    ),
    pytest.param(
        "dsn_postfix_alias_target_unknown.eml",
        # bob@ forwarded to bob.old@, which failed: the address we sent to is the one reported.
        [Failure(BOB, True, "5.1.1", 'unknown user: "bob.old"')],
        id="postfix-alias-original-recipient-wins",
    ),
    pytest.param(
        "dsn_forged_postfix_naming_a_party_to_the_plain_address.eml",
        # Read as any report is; what it may change is decided by which mail it names.
        [Failure(JANE, True, "5.1.1", 'unknown user: "jane"')],
        id="forged-postfix-report",
    ),
]

# Real bounces from the wild, copied unchanged from flufl.bounce 6.0.0's test data
# (https://gitlab.com/flufl/flufl.bounce, tests/data/<file>; Apache-2.0, © Barry Warsaw):
#   dsn_fluflbounce_x400_failed_after_timeout.eml   <- dsn_02.txt
#   dsn_fluflbounce_action_with_comment.eml         <- dsn_12.txt
#   dsn_fluflbounce_recipient_without_type.eml      <- dsn_14.txt
#   dsn_fluflbounce_postfix_delayed_alias.eml       <- dsn_17.txt
#   dsn_fluflbounce_qmail_mailfolder_full.eml       <- qmail_02.txt
#   dsn_fluflbounce_exim_old_prose.eml              <- exim_01.txt
#   dsn_fluflbounce_warning_not_yet_delivered.eml   <- simple_21.txt
THEIRS = [
    pytest.param(
        "dsn_fluflbounce_x400_failed_after_timeout.eml",
        # Final-Recipient is an X.400 address; the rfc822 Original-Recipient is what was sent.
        # "failed" with a 4.x.x status: the gateway gave up, so it is permanent for us.
        [
            Failure(
                "zzzzz@example.uk",
                True,
                "4.4.7",
                "Reason 1 (Unable-To-Transfer); Diagnostic 5 (Maximum-Time-Expired)",
            )
        ],
        id="x400-gateway-gave-up",
    ),
    pytest.param(
        "dsn_fluflbounce_action_with_comment.eml",
        [Failure("userx@example.jp", True, "5.1.1", "(failed: Bad destination mailbox address)")],
        id="action-with-comment",
    ),
    pytest.param(
        "dsn_fluflbounce_recipient_without_type.eml",
        [Failure("userx@example.com.dk", True, "5.1.1", "550 5.1.1 User unknown")],
        id="final-recipient-without-type-and-no-status",
    ),
    pytest.param(
        "dsn_fluflbounce_postfix_delayed_alias.eml",
        [
            Failure(
                "userx@example.fi",
                False,
                "4.3.0",
                "Quota exceeded message delivery failed to /mail/mbx/p/5/kb3543/INBOX",
            )
        ],
        id="postfix-delayed-original-recipient-wins",
    ),
    pytest.param(
        "dsn_fluflbounce_qmail_mailfolder_full.eml",
        [
            Failure(
                "userx@example.com",
                True,
                "",
                "The e-mail message could not be delivered because the user's mailfolder is full.",
            )
        ],
        id="qmail-godaddy-mailfolder-full",
    ),
    pytest.param(
        "dsn_fluflbounce_exim_old_prose.eml",
        [
            Failure(
                "userx@its.example.nl",
                True,
                "5.1.1",
                "SMTP error from remote mailer after RCPT TO: <userx@its.example.nl>: "
                "host mailhost1.et.example.nl [130.161.33.163]: "
                "553 5.1.1 unknown or illegal user: userx@its.example.nl",
            )
        ],
        id="exim-2-prose",
    ),
    pytest.param(
        "dsn_fluflbounce_warning_not_yet_delivered.eml",
        [Failure("userx@example.com", False, "", "")],
        id="prose-warning-is-temporary",
    ),
]


@pytest.mark.parametrize(("name", "failures"), OURS + THEIRS)
def test_each_bounce_reports_exactly_these_failures(name, failures):
    assert read_bounce(parse_message(fixture_bytes(name))) == failures


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("dsn_postfix_user_unknown.eml", ["<Zq1xY2abc-def@intro.example.org>"]),
        ("dsn_gmail_no_such_user.eml", ["<consent.3f9a1c7e2b@intro.example.org>"]),
        ("dsn_exchange_online_recipient_not_found.eml", ["<consent.3f9a1c7e2b@intro.example.org>"]),
        ("dsn_qmail_no_mailbox.eml", ["<consent.3f9a1c7e2b@intro.example.org>"]),
        ("dsn_fluflbounce_qmail_mailfolder_full.eml", []),
    ],
    ids=["returned-headers", "returned-message", "in-reply-to", "quoted-in-prose", "none"],
)
def test_a_bounce_quotes_the_message_id_of_what_failed(name, quoted):
    assert returned_message_ids(parse_message(fixture_bytes(name))) == quoted


def test_every_bounce_fixture_is_listed_above():
    listed = {p.values[0] for p in OURS + THEIRS}
    assert {p.name for p in FIXTURES.glob("dsn_*.eml")} == listed


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in FIXTURES.glob("*.eml")
        if p.name.startswith(("auto_reply_", "request_", "forward_"))
    ),
    ids=lambda n: n[:-4],
)
def test_mail_that_is_no_bounce_reports_nothing(name):
    assert read_bounce(parse_message(fixture_bytes(name))) == []


# ------------------------------------------------------------------ RFC 3464 rules


def report(*groups: str, status_type: str = "message/delivery-status", charset: str = "") -> bytes:
    """A minimal multipart/report with one delivery-status part holding these groups."""
    ctype = status_type + (f"; charset={charset}" if charset else "")
    blocks = "\n\n".join(["Reporting-MTA: dns; mx.acme.example", *groups])
    return f"""From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)
To: refer+b-3f9a1c7e2b@intro.example.org
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.acme.example.

--B
Content-Type: {ctype}
Content-Transfer-Encoding: 8bit

{blocks}

--B--
""".encode()


def read(raw: bytes) -> list[Failure]:
    return read_bounce(parse_message(raw))


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded", "Delivered (ok)"])
def test_a_recipient_that_was_delivered_relayed_or_expanded_did_not_fail(action):
    group = f"Final-Recipient: rfc822; {JANE}\nAction: {action}\nStatus: 2.0.0"
    assert read(report(group)) == []


def test_a_success_report_from_the_mailer_daemon_is_not_read_as_prose():
    # The RFC 3464 part is the whole truth; the prose around it names Jane too.
    group = f"Final-Recipient: rfc822; {JANE}\nAction: delivered\nStatus: 2.0.0"
    raw = report(group).replace(
        b"This is the mail system", b"<jane@acme.example>: delivered to mailbox. This is the"
    )
    assert read(raw) == []


@pytest.mark.parametrize(
    ("action", "status", "permanent"),
    [
        ("failed", "5.1.1", True),
        ("failed", "4.4.7", True),  # expired in the queue: given up for good
        ("Failed (bad mailbox)", "5.1.1", True),
        ("error", "5.1.1", True),  # OpenSMTPD
        ("delayed", "4.2.2", False),
        ("delayed", "5.2.2", False),  # still being retried, whatever the status says
    ],
)
def test_the_action_says_whether_it_is_for_good(action, status, permanent):
    group = f"Final-Recipient: rfc822; {JANE}\nAction: {action}\nStatus: {status}"
    [failure] = read(report(group))
    assert (failure.permanent, failure.status) == (permanent, status)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("5.2.2", [Failure(JANE, True, "5.2.2", "")]), ("4.2.2", [Failure(JANE, False, "4.2.2", "")])],
)
def test_without_an_action_the_status_class_decides(status, expected):
    assert read(report(f"Final-Recipient: rfc822; {JANE}\nStatus: {status}")) == expected


def test_without_action_or_failing_status_nothing_failed():
    assert read(report(f"Final-Recipient: rfc822; {JANE}\nStatus: 2.1.5")) == []
    assert read(report(f"Final-Recipient: rfc822; {JANE}")) == []


def test_the_original_recipient_is_the_address_we_sent_to():
    group = (
        "Final-Recipient: rfc822; j.roe@mailhost.acme.example\n"
        f"Original-Recipient: rfc822;{JANE}\n"
        "Action: failed\nStatus: 5.1.1"
    )
    assert [f.recipient for f in read(report(group))] == [JANE]


@pytest.mark.parametrize(
    "value",
    ["rfc822; Jane@ACME.example", "RFC822;<jane@acme.example>", "<JANE@acme.example>"],
)
def test_the_recipient_is_normalized(value):
    group = f"Final-Recipient: {value}\nAction: failed\nStatus: 5.1.1"
    assert [f.recipient for f in read(report(group))] == [JANE]


def test_a_recipient_without_an_address_is_skipped():
    group = "Final-Recipient: x400; /S=roe/O=acme/C=GB/\nAction: failed\nStatus: 5.1.1"
    assert read(report(group)) == []


def test_a_status_with_a_comment_and_a_status_only_in_the_diagnostic():
    commented = f"Final-Recipient: rfc822; {JANE}\nAction: failed\nStatus: 5.1.1 (user unknown)"
    only_in_text = (
        f"Final-Recipient: rfc822; {BOB}\nAction: failed\n"
        "Diagnostic-Code: smtp; 550 5.7.1 Relaying denied"
    )
    assert read(report(commented, only_in_text)) == [
        Failure(JANE, True, "5.1.1", ""),
        Failure(BOB, True, "5.7.1", "550 5.7.1 Relaying denied"),
    ]


def test_the_diagnostic_is_one_line_of_at_most_300_characters():
    words = " ".join(f"word{i}" for i in range(120))
    group = (
        f"Final-Recipient: rfc822; {JANE}\nAction: failed\nStatus: 5.7.1\n"
        f"Diagnostic-Code: smtp; 550-5.7.1 first line\n 550-5.7.1 {words}\n 550 5.7.1 end"
    )
    [failure] = read(report(group))
    assert failure.diagnostic.startswith("550-5.7.1 first line word0 word1")
    assert "\n" not in failure.diagnostic and "550-5.7.1 word" not in failure.diagnostic
    assert len(failure.diagnostic) == 300
    assert failure.diagnostic.endswith("…")


def test_a_one_line_reply_keeps_its_words_even_when_they_repeat_its_code():
    group = (
        f"Final-Recipient: rfc822; {JANE}\nAction: failed\nStatus: 5.2.2\n"
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox holds 552 messages, 552 MB: full"
    )
    [failure] = read(report(group))
    assert failure.diagnostic == "552 5.2.2 Mailbox holds 552 messages, 552 MB: full"


def test_a_recipient_reported_twice_is_reported_once():
    group = f"Final-Recipient: rfc822; {JANE}\nAction: failed\nStatus: 5.1.1"
    assert read(report(group, group)) == [Failure(JANE, True, "5.1.1", "")]


def test_a_global_delivery_status_with_an_international_address():
    # RFC 6533: UTF-8 fields; an address type of utf-8 may escape characters as \x{HEX}.
    groups = (
        "Final-Recipient: utf-8; j\\x{FC}rgen@m\\x{FC}ller.example\nAction: failed\nStatus: 5.1.1",
        "Final-Recipient: rfc822; zoë@acme.example\nAction: delayed\nStatus: 4.2.2",
    )
    raw = report(*groups, status_type="message/global-delivery-status", charset="utf-8")
    assert read(raw) == [
        Failure("jürgen@müller.example", True, "5.1.1", ""),
        Failure("zoë@acme.example", False, "4.2.2", ""),
    ]


# ------------------------------------------------------------------ what is not a bounce

QMAIL_WORDS = """Hi. This is the qmail-send program at mail.bakery.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<bob@bakery.example>:
Sorry, no mailbox here by that name. (#5.1.1)
"""


def test_a_person_quoting_a_bounce_is_not_a_bounce():
    raw = f"""From: Ada Lovelace <ada@referrer.example>
To: Introductions <refer@intro.example.org>
Subject: Why did this happen?
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I got this when I wrote to Bob directly:

{QMAIL_WORDS}""".encode()
    assert read(raw) == []


def test_the_same_words_from_the_mailer_daemon_are_a_bounce():
    raw = f"""From: MAILER-DAEMON@mail.bakery.example
To: refer+b-3f9a1c7e2b@intro.example.org
Subject: failure notice

{QMAIL_WORDS}""".encode()
    assert read(raw) == [
        Failure(BOB, True, "5.1.1", "Sorry, no mailbox here by that name. (#5.1.1)")
    ]


def test_a_read_receipt_is_not_a_bounce():
    raw = b"""From: Jane Roe <jane@acme.example>
To: Introductions <refer@intro.example.org>
Subject: Read: Ada Lovelace would like to introduce you to someone
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="R"

--R
Content-Type: text/plain; charset=us-ascii

Your message to jane@acme.example was read on Saturday.

--R
Content-Type: message/disposition-notification

Final-Recipient: rfc822; jane@acme.example
Original-Message-ID: <consent.3f9a1c7e2b@intro.example.org>
Disposition: manual-action/MDN-sent-manually; displayed

--R--
"""
    assert read(raw) == []
