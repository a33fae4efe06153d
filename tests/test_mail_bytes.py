"""Every mail we write reads back, header by header and part by part, exactly as meant.

The bytes are written directly (service/writing/mime.py); these tests read them with the
stdlib's own parser (`email.policy.default`) and, for display names, with the RFC 2047
decoder our readers use, for every template in every language and for hostile names and
subjects: Arabic, emoji, long words, commas, quotes, attempts at new header lines.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from dataclasses import replace
from email.utils import getaddresses

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.reading.addresses import Mailbox, display_name
from service.settings import LANGUAGES
from service.writing.compose import Rendered, build_message, header_safe
from tests.test_compose import CONTEXTS, NOW, TEMPLATES
from tests.test_dkim import DOMAIN, SELECTOR, make_key, verifies

HOSTILE_NAMES = {
    "arabic": "عبد الرحمن بن محمد الحسيني القرشي الهاشمي المكي",
    "emoji": "Zoë 🥐🎂 Châtelain 👩🏽‍🍳",
    "long-word": "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
    "long-ascii-word": "Ada" + "x" * 90,
    "comma-and-quotes": 'Roe, Jane "JR" \\ (Acme) <CEO>',
    "header-injection": "Jane\r\nBcc: mallory@elsewhere.example\x00",
    "encoded-word-lookalike": "=?utf-8?q?Mallory?= Smith",
    "plain": "Jane Roe",
}
SUBJECT_CONTEXT_NAMES = ("provider", "prospect", "declined_by", "failed")
# The order every mail's headers are written in; those in brackets only when asked for.
HEADER_ORDER = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
]
# Identifiers and links cannot be folded; they may pass column 78, never 998.
UNFOLDABLE = {"In-Reply-To", "References", "List-Unsubscribe"}


def as_sent(text: str) -> str:
    """A part's text as mail carries it: LF line ends, ending in one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def read_mailboxes(raw_value: str) -> list[tuple[str, str]]:
    """(name, address) as an RFC 2047 reader sees them: whitespace between adjacent encoded
    words is not part of the text (RFC 2047 6.2). Python 3.11's address parser keeps it,
    so names are read here with the decoder service/reading uses."""
    pairs = getaddresses(["".join(raw_value.splitlines())])
    return [(display_name(name), address) for name, address in pairs]


def assert_reads_back(
    raw: bytes,
    *,
    sender: Mailbox,
    to: list[Mailbox],
    rendered: Rendered,
    message_id: str,
    languages: list[str],
    cc: list[Mailbox] | None = None,
    reply_to: list[Mailbox] | None = None,
    in_reply_to: str | None = None,
    unsubscribe_url: str | None = None,
) -> None:
    assert raw.isascii(), "not 7-bit"
    assert b"\r" not in raw and b"\x00" not in raw
    head, _, body = raw.partition(b"\n\n")
    assert max(len(line) for line in body.split(b"\n")) <= 78
    assert max(len(line) for line in head.split(b"\n")) <= 998
    for line in head.decode().split("\n"):
        if len(line) > 78:
            name, _, value = line.partition(": ")
            assert name in UNFOLDABLE and " " not in value, line

    message = email.message_from_bytes(raw, policy=email.policy.default)
    present = [name for name, _ in message.raw_items()]
    assert present == [name for name in HEADER_ORDER if name in present]
    expected_present = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"}
    expected_present |= {"X-Auto-Response-Suppress", "MIME-Version", "Content-Type"}
    expected_present |= {"Content-Language"}
    expected_present |= {"Cc"} if cc else set()
    expected_present |= {"Reply-To"} if reply_to else set()
    expected_present |= {"In-Reply-To", "References"} if header_safe(in_reply_to or "") else set()
    expected_present |= {"List-Unsubscribe", "List-Unsubscribe-Post"} if unsubscribe_url else set()
    assert set(present) == expected_present

    raw_headers = dict(message.raw_items())
    for name, mailboxes in (("From", [sender]), ("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        if not mailboxes:
            continue
        meant = [(header_safe(m.name), header_safe(m.address)) for m in mailboxes]
        assert read_mailboxes(raw_headers[name]) == meant
        parsed = message[name].addresses
        assert [a.addr_spec for a in parsed] == [address for _, address in meant]
        # The same characters in the stdlib's reading; only its spacing between encoded
        # words differs (see read_mailboxes).
        assert ["".join(a.display_name.split()) for a in parsed] == [
            "".join(n.split()) for n, _ in meant
        ]
        assert not message[name].defects

    assert message["Subject"] == header_safe(rendered.subject)
    assert message["Date"] == "Sun, 22 Nov 2026 12:00:00 +0000"
    assert message["Message-ID"] == message_id
    if header_safe(in_reply_to or ""):
        assert message["In-Reply-To"] == header_safe(in_reply_to or "")
        assert message["References"] == header_safe(in_reply_to or "")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    if unsubscribe_url:
        assert message["List-Unsubscribe"] == f"<{unsubscribe_url}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == ", ".join(languages)
    assert message.get_content_type() == "multipart/alternative"

    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part, text in zip(parts, (rendered.text, rendered.html), strict=True):
        assert part.get_content_charset() == "utf-8"
        sent = as_sent(text)
        plain = sent.isascii() and not re.search(r"[^\t\n\x20-\x7e]", sent)
        plain = plain and max(len(line) for line in sent.split("\n")) <= 78
        assert part["Content-Transfer-Encoding"] == ("7bit" if plain else "quoted-printable")
        assert part.get_content() == sent
    assert not message.defects and not any(p.defects for p in parts)


SENDER = Mailbox("Introductions", "refer@intro.example.org")
LONG_ID = "<DB9PR10MB1234567890ABCDEF1234567890@DB9PR10MB1234.EURPRD10.PROD.OUTLOOK.COM>"
UNSUBSCRIBE = "http://127.0.0.1:8080/u/Im06Nnk2YW9icm55YTdwMnFnZSI.awLZQA.uGGhBqBulhN6H0za8Dfq"


def hostile_context(template: str, name: str) -> dict:
    """The template's test context with every person in it, and so its subject, named `name`."""
    context = {**CONTEXTS[template], "sender_name": "Introductions"}
    for key in SUBJECT_CONTEXT_NAMES:
        if isinstance(context.get(key), dict):
            context[key] = {**context[key], "name": name, "display": name}
    for key in ("name", "referrer_name", "referrer", "other"):
        if isinstance(context.get(key), str):
            context[key] = name
    return context


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(HOSTILE_NAMES))
def test_every_mail_in_every_language_reads_back_as_meant(language, kind):
    name = HOSTILE_NAMES[kind]
    for template in sorted(CONTEXTS):
        rendered = TEMPLATES.render_mail(template, language, hostile_context(template, name))
        people = {
            "sender": replace(SENDER, name=name),
            "to": [Mailbox(name, "jane@acme.example"), Mailbox("Bob", "bob@bakery.example")],
            "cc": [Mailbox(name, "ada@referrer.example")],
            "reply_to": [Mailbox(name, "refer+abc@intro.example.org")],
        }
        raw = build_message(
            **people,
            rendered=rendered,
            message_id="<abc@intro.example.org>",
            date=NOW,
            languages=[language, "en"] if language != "en" else ["en"],
            in_reply_to=LONG_ID,
            unsubscribe_url=UNSUBSCRIBE,
        )
        assert_reads_back(
            raw,
            **people,
            rendered=rendered,
            message_id="<abc@intro.example.org>",
            languages=[language, "en"] if language != "en" else ["en"],
            in_reply_to=LONG_ID,
            unsubscribe_url=UNSUBSCRIBE,
        )


def test_the_same_mail_is_the_same_bytes():
    rendered = TEMPLATES.render_mail(
        "consent_request", "ar", hostile_context("consent_request", "x")
    )
    once, again = (
        build_message(
            sender=SENDER,
            to=[Mailbox("Zoë", "zoe@patisserie.example")],
            rendered=rendered,
            message_id="<same@intro.example.org>",
            date=NOW,
            languages=["ar"],
        )
        for _ in range(2)
    )
    assert once == again


def test_a_body_that_quotes_the_boundary_gets_another():
    rendered = Rendered(subject="x", text="x\n", html="<p>x</p>\n")
    first = build_message(
        sender=SENDER,
        to=[SENDER],
        rendered=rendered,
        message_id="<b@x>",
        date=NOW,
        languages=["en"],
    )
    mark = re.search(rb'boundary="([^"]+)"', first).group(1).decode()
    quoting = replace(rendered, text=f"--{mark}\nFrom: mallory@elsewhere.example\n")
    raw = build_message(
        sender=SENDER,
        to=[SENDER],
        rendered=quoting,
        message_id="<b@x>",
        date=NOW,
        languages=["en"],
    )
    assert mark not in raw.split(b"\n\n", 1)[0].decode()
    assert_reads_back(
        raw, sender=SENDER, to=[SENDER], rendered=quoting, message_id="<b@x>", languages=["en"]
    )


def test_an_internationalised_domain_goes_as_its_a_label():
    raw = build_message(
        sender=SENDER,
        to=[Mailbox("Zoë", "zoe@pâtisserie.example"), Mailbox("", "jo@bücher.example")],
        rendered=Rendered(subject="x", text="x\n", html="<p>x</p>"),
        message_id="<i@x>",
        date=NOW,
        languages=["fr"],
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [
        "zoe@xn--ptisserie-b2a.example",
        "jo@xn--bcher-kva.example",
    ]
    assert message["To"].addresses[0].display_name == "Zoë"


def test_a_local_part_that_is_not_ascii_is_refused_not_garbled():
    with pytest.raises(ValueError, match="local part"):
        build_message(
            sender=SENDER,
            to=[Mailbox("", "zoë@patisserie.example")],
            rendered=Rendered(subject="x", text="x\n", html="<p>x</p>"),
            message_id="<i@x>",
            date=NOW,
            languages=["fr"],
        )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the DKIM key")
def test_hostile_mails_still_verify_once_signed(tmp_path):
    """Relaxed canonicalisation unfolds and collapses whitespace: our folding must survive it."""
    key, record = make_key(tmp_path)
    for name in HOSTILE_NAMES.values():
        rendered = TEMPLATES.render_mail("receipt", "ar", hostile_context("receipt", name))
        raw = build_message(
            sender=SENDER,
            to=[Mailbox(name, "jane@acme.example")],
            cc=[Mailbox(name, "ada@referrer.example")],
            reply_to=[Mailbox(name, "refer+abc@intro.example.org")],
            rendered=rendered,
            message_id="<d@intro.example.org>",
            date=NOW,
            languages=["ar"],
            in_reply_to=LONG_ID,
            unsubscribe_url=UNSUBSCRIBE,
        )
        headers = [b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID", b"Reply-To"]
        signature = dkim.sign(
            raw,
            SELECTOR.encode(),
            DOMAIN.encode(),
            key.read_bytes(),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[*headers, b"List-Unsubscribe"],
            linesep=b"\n",
        )
        # As the SMTP client sends it: CRLF line ends.
        assert verifies((signature + raw).replace(b"\n", b"\r\n"), record), name


# Anything a person may type, control characters and all; no lone surrogates (text we are
# given is decoded, and mail cannot carry them).
TYPED = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=300, deadline=None)
@given(name=TYPED, subject=TYPED, text=TYPED, html=TYPED)
def test_any_name_subject_and_body_read_back_as_meant(name, subject, text, html):
    rendered = Rendered(subject=subject, text=text, html=html)
    people = {
        "sender": replace(SENDER, name=name),
        "to": [Mailbox(name, "jane@acme.example"), Mailbox(name, "bob@bakery.example")],
        "reply_to": [Mailbox(name, "refer+abc@intro.example.org")],
    }
    raw = build_message(
        **people,
        rendered=rendered,
        message_id="<p@intro.example.org>",
        date=NOW,
        languages=["de"],
        in_reply_to="<request.1@referrer.example>",
    )
    assert_reads_back(
        raw,
        **people,
        rendered=rendered,
        message_id="<p@intro.example.org>",
        languages=["de"],
        in_reply_to="<request.1@referrer.example>",
    )
