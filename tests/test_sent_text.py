"""The text a party consented to, read from the question mail as sent: exactly the text the
full parse (`email.policy.default`, `get_body`) finds, for every mail we write and for
shapes we do not write but a stored mail might have."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.reading.addresses import Mailbox
from service.reading.bodies import body_text
from service.reading.sent_text import sent_text
from service.settings import LANGUAGES
from service.writing.compose import Rendered, build_message
from tests.test_compose import CONTEXTS, NOW, TEMPLATES
from tests.test_mail_bytes import HOSTILE_NAMES, SENDER, hostile_context


def fully_read(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return body_text(message) or ""


def written(rendered: Rendered, language: str = "en") -> bytes:
    return build_message(
        sender=SENDER,
        to=[Mailbox("Jane", "jane@acme.example")],
        rendered=rendered,
        message_id="<q@intro.example.org>",
        date=NOW,
        languages=[language],
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(HOSTILE_NAMES))
def test_every_mail_we_write_reads_as_the_full_parse_reads_it(language, kind):
    for template in sorted(CONTEXTS):
        context = hostile_context(template, HOSTILE_NAMES[kind])
        raw = written(TEMPLATES.render_mail(template, language, context), language)
        for sent in (raw, raw.replace(b"\n", b"\r\n")):  # as stored, and as it went out
            assert sent_text(sent) == fully_read(sent) != ""


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_reads_as_the_full_parse_reads_it(text):
    raw = written(Rendered(subject="Question", text=text, html=f"<p>{text}</p>"))
    assert sent_text(raw) == fully_read(raw)


def shaped(content_type: str, parts: str) -> bytes:
    return (
        "From: a@x.example\nTo: b@y.example\nSubject: s\nMIME-Version: 1.0\n"
        f'Content-Type: {content_type}; boundary="b1"\n\n{parts}'
    ).encode()


ATTACHED_TEXT = (
    "--b1\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\n"
    "not the body\n"
)
HTML = '--b1\nContent-Type: text/html; charset="utf-8"\n\n<p>Sehr geehrte <b>Frau</b> Roe</p>\n'
PLAIN = "--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "
PLAIN += "quoted-printable\n\nGr=C3=BC=C3=9Fe, Jane\n"
SHAPES = {
    "html only": shaped("multipart/alternative", HTML + "--b1--\n"),
    "an attached text before the body": shaped(
        "multipart/mixed", ATTACHED_TEXT + PLAIN + "--b1--\n"
    ),
    "html before plain": shaped("multipart/alternative", HTML + PLAIN + "--b1--\n"),
    "related, html first": shaped("multipart/related", HTML + PLAIN + "--b1--\n"),
    "nothing but an attachment": shaped("multipart/mixed", ATTACHED_TEXT + "--b1--\n"),
    "a preamble": shaped("multipart/alternative", "Read me in MIME.\n" + PLAIN + HTML + "--b1--\n"),
    "an attached text first": shaped("multipart/alternative", ATTACHED_TEXT + PLAIN + "--b1--\n"),
    "one part, then the close": shaped("multipart/alternative", PLAIN + "--b1--\n"),
    "a delimiter with blanks after it": shaped(
        "multipart/alternative", PLAIN + "--b1  \n" + HTML[5:] + "--b1--\n"
    ),
    "a line that only begins like the boundary": shaped(
        "multipart/alternative", PLAIN + "--b1x is no delimiter\n" + HTML + "--b1--\n"
    ),
    "CRLF": shaped("multipart/alternative", PLAIN + HTML + "--b1--\n").replace(b"\n", b"\r\n"),
    "one plain part": b"Subject: s\nContent-Type: text/plain; charset=utf-8\n\nJust this\n",
    "no content type at all": b"Subject: s\n\nJust this\n",
}


@pytest.mark.parametrize("raw", SHAPES.values(), ids=SHAPES.keys())
def test_other_shapes_read_as_the_full_parse_reads_them(raw):
    assert sent_text(raw) == fully_read(raw)


def test_a_signed_question_reads_as_the_unsigned_one():
    raw = written(Rendered("Q", "Yes or no?\n", "<p>Yes or no?</p>"))
    signed = b"DKIM-Signature: v=1; a=rsa-sha256; d=intro.example.org; s=s1;\n b=abc\n" + raw
    assert sent_text(signed) == sent_text(raw) == "Yes or no?\n"
