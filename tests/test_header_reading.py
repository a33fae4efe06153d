"""What the SMTP edge reads of a message before its answer: the header block alone, read as
a parse of the whole message would read it, and the header caps judged at a glance when the
block is within them."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32

from hypothesis import given, settings
from hypothesis import strategies as st

from service.intake.receiving import headers_of
from service.reading.limits import Limits, _fields_excess, header_block, header_excess
from tests.conftest import FIXTURES, on_the_wire

WHOLE = BytesHeaderParser(policy=compat32)
# Small caps, so that generated blocks fall on both sides of them.
SMALL = Limits(header_bytes=400, field_bytes=40, encoded_words=2)

line_ends = st.sampled_from([b"\r\n", b"\n", b"\r"])
header_lines = st.builds(
    lambda name, value, end: name + value + end,
    st.sampled_from([b"From: ", b"Subject: ", b"Message-ID: ", b" ", b"\t", b"X:", b"From x"]),
    st.one_of(
        st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        st.lists(st.sampled_from([b"a", b"=?", b" ", b":", b"\xe9", b"x" * 10]), max_size=10).map(
            b"".join
        ),
    ),
    line_ends,
)
messages = st.builds(
    lambda lines, blank, body: b"".join(lines) + blank + body,
    st.lists(header_lines, max_size=8),
    st.sampled_from([b"", b"\r\n", b"\n", b"\r"]),
    st.binary(max_size=60),
)


def same_headers(raw: bytes) -> None:
    whole, read = WHOLE.parsebytes(raw), headers_of(raw)
    assert read.items() == whole.items()
    assert read.get_unixfrom() == whole.get_unixfrom()


def test_every_fixture_has_the_headers_a_whole_parse_finds():
    for path in sorted(FIXTURES.rglob("*.eml")):
        raw = path.read_bytes()
        for variant in (raw, on_the_wire(raw), raw.replace(b"\n", b"\r")):
            same_headers(variant)


@settings(max_examples=500, deadline=None)
@given(messages)
def test_any_message_has_the_headers_a_whole_parse_finds(raw):
    same_headers(raw)


@settings(max_examples=500, deadline=None)
@given(messages)
def test_the_caps_say_what_reading_every_field_says(raw):
    block = header_block(raw, SMALL.header_bytes)
    if block is not None:
        assert header_excess(raw, SMALL) == _fields_excess(block.splitlines(), SMALL)


def test_a_large_body_is_not_read_for_the_headers():
    raw = b"From: Ada <ada@referrer.example>\r\nSubject: x\r\n\r\n" + b"line\r\n" * 200_000
    assert headers_of(raw).get_payload() == ""
    assert headers_of(raw)["Subject"] == "x"
