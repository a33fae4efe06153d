"""The SMTP edge reads the usual MAIL and RCPT path itself: always as aiosmtpd would."""

from __future__ import annotations

import smtplib

import pytest
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.edge.smtp import EdgeSMTP, usual_path
from tests.conftest import REFERRER
from tests.helpers import RCPT

# Characters that make paths of every shape: atext, the specials, spaces, brackets.
PATH_CHARACTERS = "ab.@<>\"()[]:;,\\ \t!#$%&'*+/=?^_`{|}~-=SIZE1é"


def aiosmtpd_reads(arg: str) -> object:
    return reading(SMTP(Sink()), arg)


def edge_reads(arg: str) -> object:
    return reading(EdgeSMTP(Sink()), arg)


def reading(server: SMTP, arg: str) -> object:
    """What the server makes of a MAIL or RCPT argument, down to the error it meets: the
    stdlib's parser fails on some arguments (an IndexError on "1@"), and must fail alike."""
    try:
        return server._getaddr(arg)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize(
    "arg",
    [
        "<ada@referrer.example>",
        "<ada@referrer.example> SIZE=1234 BODY=8BITMIME",
        "<ada.lovelace+x@referrer.example>\tSIZE=1",
        "<o'brien@example.org>",
        "<ada@referrer.example>(a comment)",
        "<ada@referrer.example>   ",
        '<"ada lovelace"@referrer.example>',
        "<ada@[192.0.2.1]>",
        "<@relay.example:ada@referrer.example>",
        "<ada..l@referrer.example>",
        "<.ada@referrer.example>",
        "<ada@referrer.example.>",
        "ada@referrer.example",
        "<ada@referrer.example",
        "<>",
        "<ädä@referrer.example>",
    ],
)
def test_every_shape_of_path_is_read_as_aiosmtpd_reads_it(arg):
    assert edge_reads(arg) == aiosmtpd_reads(arg)


@settings(max_examples=400, deadline=None)
@given(st.text(PATH_CHARACTERS, max_size=40))
@example("<a@b> SIZE=1 (c)")
@example("<a@b>x")
def test_any_argument_is_read_as_aiosmtpd_reads_it(arg):
    assert edge_reads(arg) == aiosmtpd_reads(arg)


@given(st.text(PATH_CHARACTERS, max_size=40).map(lambda s: f"<{s}>"))
@settings(max_examples=400, deadline=None)
def test_any_bracketed_argument_is_read_as_aiosmtpd_reads_it(arg):
    assert edge_reads(arg) == aiosmtpd_reads(arg)


def test_the_usual_path_is_the_one_read_without_aiosmtpd():
    assert usual_path("<ada@referrer.example> SIZE=1") == ("ada@referrer.example", "SIZE=1")
    assert usual_path('<"ada"@referrer.example>') is None


def test_a_message_with_size_and_body_parameters_is_stored(running):
    raw = (
        f"From: Ada Lovelace <{REFERRER}>\r\nTo: {RCPT}\r\nSubject: x\r\n"
        "Message-ID: <params@referrer.example>\r\n\r\nNeed: bookkeeping for a bakery\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", running.service.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        code, _ = smtp.mail(REFERRER, [f"SIZE={len(raw)}", "BODY=8BITMIME"])
        assert code == 250
        assert smtp.rcpt(RCPT)[0] == 250
        code, text = smtp.data(raw)
    assert code == 250 and text.startswith(b"2.0.0 OK: queued as ")
