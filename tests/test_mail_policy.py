"""Intake's policy keeps each short header it parsed: every message must still read exactly
as with `email.policy.default`, header by header and part by part, read once or many times."""

from __future__ import annotations

import email
import email.policy

import pytest

from service.reading.mail_policy import INTAKE
from tests.conftest import FIXTURES

EMLS = sorted(FIXTURES.glob("*.eml"))


def described(raw: bytes, policy: email.policy.Policy) -> list[object]:
    """Everything a reader may ask of every part's headers, read twice over."""
    seen: list[object] = []
    for part in email.message_from_bytes(raw, policy=policy).walk():
        for _ in range(2):
            for name, value in part.items():
                seen.append((name, str(value), type(value).__mro__[1].__name__))
                seen.append([type(d).__name__ for d in value.defects])
                seen.append(dict(getattr(value, "params", {})))
                seen.append([str(a) for a in getattr(value, "addresses", ())])
            seen.append((part.get_content_type(), part.get_content_disposition()))
            seen.append((part.get_boundary(), part.get_content_charset(), part.get_filename()))
    return seen


@pytest.mark.parametrize("path", EMLS, ids=[p.name for p in EMLS])
def test_every_fixture_reads_as_with_the_default_policy(path):
    raw = path.read_bytes()
    assert described(raw, INTAKE) == described(raw, email.policy.default)


def test_a_header_read_in_one_message_reads_the_same_in_the_next():
    first = b"Content-Type: text/plain; charset=utf-8\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nx\n"
    other = b"Content-Type: text/plain; charset=utf-8\nSubject: Hello\n\ny\n"
    one = email.message_from_bytes(first, policy=INTAKE)
    two = email.message_from_bytes(other, policy=INTAKE)
    assert (one["Subject"], two["Subject"]) == ("Grüße", "Hello")
    assert one.get_content_charset() == two.get_content_charset() == "utf-8"
    assert one["Content-Type"].params == {"charset": "utf-8"}


def test_a_long_header_reads_as_with_the_default_policy():
    references = " ".join(f"<m{n}@x.example>" for n in range(200))
    raw = f"References: {references}\nSubject: s\n\nbody\n".encode()
    ours = email.message_from_bytes(raw, policy=INTAKE)
    theirs = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(ours["References"]) == str(theirs["References"])
