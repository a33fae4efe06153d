"""The caps measured before any parser runs: header block, fields, encoded words, MIME depth."""

from __future__ import annotations

import email
import email.policy

import pytest

from service.reading.limits import (
    Excess,
    Limits,
    header_block,
    header_excess,
    message_excess,
)
from tests.conftest import FIXTURES

LIMITS = Limits()
HEAD = b"From: Ada <ada@referrer.example>\r\nTo: refer@intro.example.org\r\nSubject: x\r\n"
NESTED = Excess("554 5.6.0", "The message nests more than 50 levels")


def nested_multiparts(levels: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(levels)
    )
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(levels)))
    return HEAD + opening + b"Content-Type: text/plain\r\n\r\nhello\r\n" + closing


def nested_messages(levels: int) -> bytes:
    opening = b"".join(
        b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i for i in range(levels)
    )
    return HEAD + opening + b"\r\nhello\r\n"


def nested_digests(levels: int) -> bytes:
    """A digest's parts are messages without saying so: two levels per declaration."""
    opening = b"".join(
        b'Content-Type: multipart/digest; boundary="d%d"\r\n\r\n--d%d\r\n\r\n' % (i, i)
        for i in range(levels)
    )
    return HEAD + opening + b"hello\r\n"


def boundaries_among_headers(levels: int) -> bytes:
    """A part's headers end at an enclosing boundary, even without an empty line."""
    parts = [HEAD]
    for i in range(levels):
        parts.append(
            b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n'
            b"--n%d\r\nContent-Type: text/plain\r\n--n%d\r\n" % (i, i, i)
        )
    return b"".join(parts) + b"Content-Type: text/plain\r\n\r\nhi\r\n"


def stdlib_depth(raw: bytes) -> int:
    """How deep the stdlib parser (intake's own) finds the message, walked without recursion."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    deepest, stack = 0, [(message, 0)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload)
            deepest = max(deepest, depth + 1)
    return deepest


def test_every_fixture_is_within_every_limit():
    fixtures = sorted(FIXTURES.glob("*.eml"))
    assert len(fixtures) > 100
    assert [f.name for f in fixtures if message_excess(f.read_bytes(), LIMITS)] == []


@pytest.mark.parametrize(
    ("raw", "limit", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", 100, b"A: 1\r\nB: 2\r\n"),
        (b"A: 1\nB: 2\n\nbody\n", 100, b"A: 1\nB: 2\n"),
        (b"A: 1\r\nB: 2\r\n", 100, b"A: 1\r\nB: 2\r\n"),
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", 8, None),
        (b"A: " + b"x" * 200, 100, None),
    ],
    ids=["crlf", "lf", "no-body", "over", "over-without-body"],
)
def test_header_block_ends_at_the_first_empty_line(raw, limit, expected):
    assert header_block(raw, limit) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            HEAD + b"X-Filler: " + b"x" * 900 + b"\r\n" * 0 + b"".join([b"\r\n x"] * 70000),
            Excess("552 5.3.4", "Message header is too large: more than 65536 bytes"),
        ),
        (
            HEAD + b"References:" + b"".join([b" <%d@example.org>\r\n" % i for i in range(2000)]),
            Excess("552 5.3.4", "Header field References is too long: more than 16384 bytes"),
        ),
        (
            HEAD.replace(b"Subject: x", b"Subject:" + b" =?utf-8?q?a?=\r\n" * 201),
            Excess("554 5.6.0", "Header field Subject has too many encoded words: more than 200"),
        ),
        (HEAD.replace(b"Subject: x", b"Subject:" + b" =?utf-8?q?a?=\r\n" * 200), None),
        (HEAD + b"\r\n" + b"=?utf-8?q?a?= " * 5000, None),
    ],
    ids=["block", "field", "encoded-words", "encoded-words-at-the-cap", "body-is-not-header"],
)
def test_header_caps(raw, expected):
    assert header_excess(raw, LIMITS) == expected
    assert message_excess(raw, LIMITS) == expected


def test_the_header_cap_follows_the_setting():
    raw = HEAD + b"X-Filler: " + b"x" * 3000 + b"\r\n\r\nbody\r\n"
    assert header_excess(raw, LIMITS) is None
    assert header_excess(raw, Limits(header_bytes=2048)) == Excess(
        "552 5.3.4", "Message header is too large: more than 2048 bytes"
    )


@pytest.mark.parametrize(
    "build", [nested_multiparts, nested_messages, nested_digests, boundaries_among_headers]
)
def test_depth_is_the_depth_the_stdlib_parser_finds(build):
    for levels in (3, 20):
        raw = build(levels)
        depth = stdlib_depth(raw)
        assert message_excess(raw, Limits(mime_depth=depth)) is None
        assert message_excess(raw, Limits(mime_depth=depth - 1)) == Excess(
            "554 5.6.0", f"The message nests more than {depth - 1} levels"
        )


@pytest.mark.parametrize(
    "build", [nested_multiparts, nested_messages, nested_digests, boundaries_among_headers]
)
def test_a_thousand_levels_are_refused_without_recursion(build):
    assert message_excess(build(1000), LIMITS) == NESTED


def test_fifty_levels_are_fine():
    assert stdlib_depth(nested_multiparts(50)) == 50
    assert message_excess(nested_multiparts(50), LIMITS) is None
    assert message_excess(nested_multiparts(51), LIMITS) == NESTED


def test_the_headers_of_a_nested_message_are_capped_too():
    inner = b"From:" + b" =?utf-8?q?a?=\r\n" * 1500 + b" <x@example.org>\r\n\r\nhi\r\n"
    raw = (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        + b"Content-Type: message/rfc822\r\n\r\n"
        + inner
        + b"--b--\r\n"
    )
    assert header_excess(raw, LIMITS) is None
    assert message_excess(raw, LIMITS) == Excess(
        "552 5.3.4", "Header field From is too long: more than 16384 bytes"
    )


def test_a_multipart_without_a_boundary_is_text_to_the_parser_and_one_level_here():
    raw = (
        HEAD + b"Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    )
    assert stdlib_depth(raw) == 0
    assert message_excess(raw, Limits(mime_depth=1)) is None


def flat_parts(count: int) -> bytes:
    part = b"--p\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    opening = b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
    return HEAD + opening + part * count + b"--p--\r\n"


def test_the_count_of_parts_is_capped_as_the_parser_counts_them():
    # Each part's headers cost intake a stdlib parse: the count bounds what a message costs.
    parsed = email.message_from_bytes(flat_parts(1000), policy=email.policy.default)
    assert len(parsed.get_payload()) == 1000
    assert message_excess(flat_parts(1000), LIMITS) is None
    assert message_excess(flat_parts(1001), LIMITS) == Excess(
        "554 5.6.0", "The message has more than 1000 parts"
    )
