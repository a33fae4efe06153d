"""A party label and a field label make one label, in whatever form each language puts them.

Every form of every party word in labels.PARTY_LABELS, with every field word of
labels.PARTY_FIELDS, in both orders, joined by every connector labels.CONNECTORS knows:
the request parser must read each of them as that party's field.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.model import Role
from service.reading.labels import CONNECTORS, PARTY_FIELDS, PARTY_LABELS, classify
from service.reading.request import labelled_lines, parse_message, parse_request
from store import queries
from tests.helpers import arrive, outbox_mails, outcome

PARTIES = [(word, role) for role, words in PARTY_LABELS.items() for word in words]
FIELDS = [(word, key) for key, words in PARTY_FIELDS.items() for word in words]
# How the field goes before its party: nothing between them ("هاتف العميل", "Telefonul
# clientului"), one small word ("Telefon des Interessenten"), two ("phone of the prospect"),
# or an elided article glued to the party word, with either apostrophe ("de l'intéressé").
ELIDED = {"l", "d"}
FIELD_FIRST = sorted(
    {" "}
    | {f" {word} " for words in CONNECTORS.values() for word in words if word not in ELIDED}
    | {" of the ", " de la ", " von der "}
    | {f" {word}{mark}" for word in ELIDED for mark in ("'", "’")}
    | {f" de l{mark}" for mark in ("'", "’")}
)
# How the party goes before its field: "Prospect phone", "Prospect's phone", the German
# compound written with a hyphen ("Interessenten-Telefon").
PARTY_FIRST = (" ", "'s ", "’s ", "-")


def _misread(labels: list[tuple[str, tuple[Role, str]]]) -> list[str]:
    return [f"{label!r} -> {classify(label)}" for label, want in labels if classify(label) != want]


def test_every_field_before_every_party_form_with_every_connector():
    labels = [
        (f"{field}{join}{party}", (role, key))
        for party, role in PARTIES
        for field, key in FIELDS
        for join in FIELD_FIRST
    ]
    assert len(labels) > 10_000
    assert _misread(labels) == []


def test_every_party_form_before_every_field():
    labels = [
        (f"{party}{join}{field}", (role, key))
        for party, role in PARTIES
        for field, key in FIELDS
        for join in PARTY_FIRST
    ]
    assert _misread(labels) == []


# Case, bullets' bold markers and accents do not matter either, whichever way round.
@given(
    party=st.sampled_from(PARTIES),
    field=st.sampled_from(FIELDS),
    join=st.sampled_from(FIELD_FIRST),
    field_first=st.booleans(),
    case=st.sampled_from((str.upper, str.lower, str.title, str)),
    bold=st.booleans(),
)
def test_case_and_markup_do_not_change_a_combined_label(
    party, field, join, field_first, case, bold
):
    (party_word, role), (field_word, key) = party, field
    label = f"{field_word}{join}{party_word}" if field_first else f"{party_word} {field_word}"
    label = case(label)
    assert classify(f"*{label}*" if bold else label) == (role, key)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Telefon des Interessenten", ("prospect", "phone")),
        ("Sprache des Interessenten", ("prospect", "language")),
        ("E-Mail des Anbieters", ("provider", "email")),
        ("Zeitzone der Interessentin", ("prospect", "timezone")),
        ("Fuseau horaire de l'intéressé", ("prospect", "timezone")),
        ("Langue de l’intéressée", ("prospect", "language")),
        ("Téléphone du prestataire", ("provider", "phone")),
        ("Telefonul clientului", ("prospect", "phone")),
        ("Limba furnizorului", ("provider", "language")),
        ("Prospect's phone", ("prospect", "phone")),
        ("لغة العميل", ("prospect", "language")),
        ("المنطقة الزمنية للعميل", ("prospect", "timezone")),
        ("Interessenten", ("prospect", "party")),
        ("Telefon des Bedarfs", None),
        ("Subject of the prospect", None),
    ],
    ids=lambda v: str(v),
)
def test_inflected_party_labels_in_each_language(label, expected):
    assert classify(label) == expected


def test_a_genitive_label_after_need_is_read_not_swallowed_into_the_need():
    text = "Need: Buchhaltung für eine Bäckerei\nSprache des Interessenten: Arabisch\n"
    assert labelled_lines(text) == [
        ((None, "need"), "Buchhaltung für eine Bäckerei"),
        (("prospect", "language"), "Arabisch"),
    ]


def test_an_unknown_label_after_need_stays_part_of_the_need():
    # Not a label we read, so it is the referrer's words: kept in the need the parties
    # read rather than dropped unseen.
    text = "Need: bookkeeping for a bakery\nDeadline: end of March\n\nProvider: x <x@y.example>\n"
    assert parse_request(parse_message(b"Subject: x\n\n" + text.encode())).need == (
        "bookkeeping for a bakery Deadline: end of March"
    )


def test_the_prospects_language_from_a_genitive_label_is_the_language_he_is_asked_in(ctx):
    # The referrer writes German; "Sprache des Interessenten: Arabisch" under the need must
    # reach the prospect as Arabic, and the provider still read German.
    state, _ = outcome(ctx, arrive("request_outlook_german_genitive_labels.eml"))
    assert state == "processed"
    [referral] = queries.recent_referrals()
    asked = {m["To"].addresses[0].addr_spec: m for m in outbox_mails()}
    assert asked["karim@baeckerei-haddad.example"]["Content-Language"] == "ar"
    assert asked["petra@kanzlei-weber.example"]["Content-Language"] == "de"
    prospect = referral.party("prospect")
    assert (prospect.phone, prospect.language) == ("+49 30 5550123", "ar")
    assert referral.need.endswith("sechs Angestellten")
