"""Requests as real clients write them -> what the parser takes from them."""

from __future__ import annotations

import pytest

from service.reading.labels import classify, fold_label
from service.reading.request import is_yes, labelled_lines, parse_message, parse_request
from tests.conftest import fixture_bytes


def draft_of(name: str):
    return parse_request(parse_message(fixture_bytes(name)))


def test_thunderbird_plain_text_request_gives_every_field():
    draft = draft_of("request_thunderbird_labelled_lines.eml")
    assert (draft.provider.mailbox.name, draft.provider.mailbox.address) == (
        "Jane Roe",
        "jane@acme.example",
    )
    assert (draft.provider.prefers, draft.provider.best_time) == ("email", "weekday mornings")
    assert draft.provider.booking == "https://cal.example/jane"
    assert (draft.prospect.mailbox.name, draft.prospect.mailbox.address) == (
        "Bob Smith",
        "bob@bakery.example",
    )
    assert draft.prospect.phone == "+49 30 1234567"
    assert (draft.prospect.prefers, draft.prospect.best_time) == ("phone", "after 4pm")
    assert draft.need == "bookkeeping for a 5-person bakery before the tax deadline in March"
    assert draft.budget == "400 EUR/month"
    assert draft.follow_up_days == 45
    assert draft.message_id == "<8f3c2a1e-7b4d-4c1a-9e2f-1a2b3c4d5e6f@referrer.example>"
    assert draft.subject == "Intro: Jane (bookkeeping) and Bob (bakery)"


def test_gmail_quoted_printable_utf8_names_and_soft_line_breaks():
    draft = draft_of("request_gmail_multipart_quoted_printable.eml")
    assert draft.provider.mailbox.name == "Jürgen Müller"
    assert draft.provider.mailbox.address == "juergen@steuer-mueller.example"
    assert draft.prospect.mailbox.name == "Zoë Châtelain"
    assert draft.need == (
        "a tax adviser who knows French pâtisseries opening a second shop in Berlin"
    )
    assert draft.budget == "2.000 €"
    assert draft.subject == "Vorstellung: Jürgen Müller und Zoë Châtelain"


def test_apple_mail_bullets_and_bold_labels_do_not_matter():
    draft = draft_of("request_apple_mail_bullets_and_bold.eml")
    assert draft.provider.mailbox.address == "andrei@web-studio.example"
    assert draft.provider.booking == "https://book.example/andrei"
    assert draft.prospect.mailbox.name == "Elena Radu"
    assert (draft.prospect.prefers, draft.prospect.best_time) == ("WhatsApp", "evenings")
    assert draft.need == ("a new online shop for a flower business, live before Valentine's Day")


def test_outlook_windows_1252_request_without_need_has_parties_and_no_need():
    draft = draft_of("request_outlook_windows1252_without_need.eml")
    assert draft.provider.mailbox.address == "jane@acme.example"
    assert draft.prospect.mailbox.address == "bob@bakery.example"
    assert draft.need == ""


def test_attachment_is_ignored_and_the_text_part_read():
    draft = draft_of("request_with_pdf_attachment.eml")
    assert draft.need == "bookkeeping for a 5-person bakery; the brief is attached"
    assert draft.prospect.mailbox.address == "bob@bakery.example"


def test_lines_after_the_signature_separator_are_not_read():
    text = "Need: real need here\n-- \nNeed: from the signature\nProvider: x <x@y.example>\n"
    assert labelled_lines(text) == [((None, "need"), "real need here")]


def test_need_continues_over_lines_but_an_address_line_does_not():
    text = (
        "Provider: Jane <jane@acme.example>\nthanks for this\n"
        "Need: first line\nsecond line\n\nunrelated paragraph\n"
    )
    assert labelled_lines(text) == [
        (("provider", "party"), "Jane <jane@acme.example>"),
        ((None, "need"), "first line second line"),
    ]


def test_value_on_the_line_after_the_label():
    assert labelled_lines("Prospect:\n\n   Bob <bob@bakery.example>\n") == [
        (("prospect", "party"), "Bob <bob@bakery.example>")
    ]


def test_first_mention_wins_over_quoted_history():
    message = parse_message(
        b"From: a@referrer.example\nSubject: x\n\nNeed: the new need\n\n"
        b"> Need: an old need from a quoted mail\n"
    )
    assert parse_request(message).need == "the new need"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Provider", ("provider", "party")),
        ("PROSPECT PHONE", ("prospect", "phone")),
        ("Interessent Telefon", ("prospect", "phone")),
        ("Prestataire préfère", ("provider", "prefers")),
        ("prestataire prefere", ("provider", "prefers")),
        ("Calon klien", ("prospect", "party")),
        ("Furnizor programare", ("provider", "booking")),
        ("هاتف العميل", ("prospect", "phone")),
        ("Need", (None, "need")),
        ("Bedarf", (None, "need")),
        ("Follow-up", (None, "follow_up")),
        ("Urmărire", (None, "follow_up")),
        ("Prospect language", ("prospect", "language")),
        ("Copy me", (None, "copy_me")),
        ("Kopie an mich", (None, "copy_me")),
        ("Mettez-moi en copie", (None, "copy_me")),
        ("Trimiteți-mi o copie", (None, "copy_me")),
        ("Tembusan untuk saya", (None, "copy_me")),
        ("نسخة لي", (None, "copy_me")),
        ("Subject", None),
        ("https", None),
    ],
    ids=lambda v: str(v),
)
def test_labels_in_every_language(label, expected):
    assert classify(label) == expected


def test_fold_ignores_case_accents_hyphens_and_markup():
    assert fold_label("*Préfère*") == fold_label("prefere")
    assert fold_label("Follow-Up") == "follow up"


@pytest.mark.parametrize(
    "name",
    ["request_thunderbird_copy_me_en.eml", "request_outlook_copy_me_de_quoted_printable.eml"],
)
def test_copy_me_yes_asks_for_the_introduction_in_copy(name):
    draft = draft_of(name)
    assert draft.copy_me is True
    assert draft.need.startswith(("bookkeeping", "Buchhaltung"))


def test_without_copy_me_the_referrer_is_not_copied():
    assert draft_of("request_thunderbird_labelled_lines.eml").copy_me is False


@pytest.mark.parametrize("value", ["yes", "Yes please", "ja", "Oui.", "da", "ya", "نعم", "✓"])
def test_copy_me_reads_a_yes_in_every_language(value):
    assert is_yes(value)


@pytest.mark.parametrize("value", ["no", "nein", "non", "nu", "tidak", "لا", "", "maybe"])
def test_copy_me_reads_anything_else_as_no(value):
    assert not is_yes(value)
