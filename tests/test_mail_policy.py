"""Intake's policy keeps each short header it parsed: every message must still read exactly
as with `email.policy.default`, header by header and part by part, read once or many times."""

from __future__ import annotations

import email
import email.policy
import gc
import weakref

import pytest

from service.reading.mail_policy import intake_policy
from service.reading.request import parse_message, parse_request
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
    assert described(raw, intake_policy()) == described(raw, email.policy.default)


def test_a_header_read_in_one_message_reads_the_same_in_the_next():
    first = b"Content-Type: text/plain; charset=utf-8\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nx\n"
    other = b"Content-Type: text/plain; charset=utf-8\nSubject: Hello\n\ny\n"
    one, two = parse_message(first), parse_message(other)
    assert (one["Subject"], two["Subject"]) == ("Grüße", "Hello")
    assert one.get_content_charset() == two.get_content_charset() == "utf-8"
    assert one["Content-Type"].params == {"charset": "utf-8"}


def _parts_with_long_types(count: int) -> bytes:
    """A request of many parts, each typed with its own long Content-Type, as a hostile
    sender would write to make a reader keep many large parse trees."""
    parts = [
        f'--b\nContent-Type: text/plain; charset=utf-8; name*0="{n:04d}{"x" * 200}"\n\nbody {n}\n'
        for n in range(count)
    ]
    head = "From: Ada <ada@referrer.example>\nSubject: Please introduce\n"
    return (
        head + 'Content-Type: multipart/mixed; boundary="b"\n\n' + "".join(parts) + "--b--\n"
    ).encode()


def test_what_a_message_wrote_is_not_held_after_it():
    """Header objects live with their message: once it is read and dropped, none of what its
    sender wrote stays in memory, however many headers it had."""
    message = parse_message(_parts_with_long_types(300))
    parse_request(message, "ada@referrer.example")
    held = [weakref.ref(part["Content-Type"]) for part in message.walk()]
    held.append(weakref.ref(message["From"]))
    del message
    gc.collect()
    assert [ref for ref in held if ref() is not None] == []


def test_a_long_header_reads_as_with_the_default_policy():
    references = " ".join(f"<m{n}@x.example>" for n in range(200))
    raw = f"References: {references}\nSubject: s\n\nbody\n".encode()
    ours = email.message_from_bytes(raw, policy=intake_policy())
    theirs = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(ours["References"]) == str(theirs["References"])
