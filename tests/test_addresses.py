"""Mailboxes as people write them, and who counts as an allowed referrer."""

from __future__ import annotations

import pytest

from service.reading.addresses import Mailbox, is_allowed, parse_mailbox

ALLOWED = ("ada@referrer.example", "*@partners.example")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Jane Roe <jane@acme.example>", Mailbox("Jane Roe", "jane@acme.example")),
        ("jane@acme.example (Jane Roe)", Mailbox("Jane Roe", "jane@acme.example")),
        ("JANE@Acme.Example", Mailbox("", "jane@acme.example")),
        ('"Roe, Jane" <jane@acme.example>', Mailbox("Roe, Jane", "jane@acme.example")),
        ("Zoë <zoe@patisserie.example>", Mailbox("Zoë", "zoe@patisserie.example")),
        ("bob at bakery dot example", None),
        ("bob@bakery", None),
        ("a@b.example, c@d.example", None),
        ("", None),
    ],
    ids=lambda v: repr(v),
)
def test_parse_mailbox(text, expected):
    assert parse_mailbox(text) == expected


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("ada@referrer.example", True),
        ("ADA@Referrer.Example", True),
        ("maria@partners.example", True),
        ("maria@sub.partners.example", False),
        ("eve@referrer.example", False),
        ("not an address", False),
    ],
)
def test_allowed_referrers_take_addresses_and_domain_patterns(address, allowed):
    assert is_allowed(address, ALLOWED) is allowed
