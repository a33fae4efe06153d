"""Mailboxes as people write them, and who counts as an allowed referrer."""

from __future__ import annotations

import pytest

from service.reading.addresses import (
    Mailbox,
    display_name,
    is_allowed,
    parse_mailbox,
    single_mailbox,
)

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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ada Lovelace <ada@referrer.example>", Mailbox("Ada Lovelace", "ada@referrer.example")),
        ("ada@referrer.example (Ada)", Mailbox("Ada", "ada@referrer.example")),
        (
            '"Lovelace, Ada" <ADA@referrer.example>',
            Mailbox("Lovelace, Ada", "ada@referrer.example"),
        ),
        (
            "=?utf-8?q?Zo=C3=AB?=\r\n <zoe@patisserie.example>",
            Mailbox("Zoë", "zoe@patisserie.example"),
        ),
        (
            '"Ada \\" <x@y.example>" <ada@referrer.example>',
            Mailbox('Ada " <x@y.example>', "ada@referrer.example"),
        ),
        ("<ada@referrer.example>", Mailbox("", "ada@referrer.example")),
        ("ada@referrer.example <mallory@elsewhere.example>", None),
        ("Ada <ada@referrer.example> mallory@elsewhere.example", None),
        ("Ada <ada@referrer.example", None),
        ("Ada (unclosed <ada@referrer.example>", None),
        ("Desk: ada@referrer.example;", None),
        ("ada@referrer.example, eve@elsewhere.example", None),
        ("Ada Lovelace ada@referrer.example", None),
        ("", None),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_single_mailbox_takes_one_address_and_refuses_every_defect(value, expected):
    assert single_mailbox(value) == expected


def test_single_mailbox_reads_a_from_of_20000_encoded_words():
    """The stdlib header registry needs gigabytes for this; a linear reader does not."""
    value = "=?utf-8?q?a?=\r\n " * 20000 + "<ada@referrer.example>"
    mailbox = single_mailbox(value)
    assert mailbox is not None and mailbox.address == "ada@referrer.example"
    assert mailbox.name == "=?utf-8?q?a?= " * 19999 + "=?utf-8?q?a?="


def test_display_name_decodes_few_encoded_words_and_leaves_many_alone():
    assert display_name("=?utf-8?q?Zo=C3=AB?= Roe") == "Zoë Roe"
    assert display_name("=?utf-8?q?a?= " * 201) == " ".join(["=?utf-8?q?a?="] * 201)
