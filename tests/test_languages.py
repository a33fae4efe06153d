"""Codes, labels and free text -> which of our six languages they are written in."""

from __future__ import annotations

import pytest

from service.reading.bodies import body_text
from service.reading.labels import PARTY_FIELDS, PARTY_LABELS, REFERRAL_FIELDS, fold_label
from service.reading.languages import (
    _LABEL_LANGUAGES,
    label_language,
    language_code,
    request_language,
    text_language,
)
from service.reading.request import parse_message
from service.settings import LANGUAGES
from tests.conftest import FIXTURES

CODES = {
    "en": ["en", "EN", "en-GB", "en_US", "eng", "English."],
    "de": ["de", "DE", "de-AT", "de_DE", "deu", "ger", "de-CH-1996"],
    "fr": ["fr", "fr-CA", "FR_fr", "fra", "fre"],
    "ro": ["ro", "ro-RO", "ron", "rum", "mo"],
    "id": ["id", "ID", "id-ID", "in", "ind"],
    "ar": ["ar", "ar-EG", "ar_SA", "ara"],
}
NAMES = {
    "en": ["English", "Englisch", "anglais", "engleză", "Inggris", "الإنجليزية", "انجليزي"],
    "de": [
        "German",
        "Deutsch",
        "allemand",
        "germană",
        "Jerman",
        "الألمانية",
        "die deutsche Sprache",
    ],
    "fr": ["French", "Französisch", "français", "franceză", "Prancis", "الفرنسية", "Française"],
    "ro": ["Romanian", "Rumänisch", "roumain", "română", "Rumania", "الرومانية", "limba română"],
    "id": [
        "Indonesian",
        "Indonesisch",
        "indonésien",
        "indoneziană",
        "Indonesia",
        "Bahasa Indonesia",
        "الإندونيسية",
    ],
    "ar": ["Arabic", "Arabisch", "arabe", "arabă", "Arab", "العربية", "اللغة العربية", "عربي"],
}
WRITTEN = [
    (value, code) for table in (CODES, NAMES) for code, values in table.items() for value in values
] + [
    ("  GERMAN  ", "de"),
    ("deutsch!", "de"),
    ("Francais;", "fr"),
    ("*Arabic*", "ar"),
    ("ROMANA", "ro"),
    ("bahasa inggris", "en"),
]


@pytest.mark.parametrize(("value", "code"), WRITTEN, ids=[value for value, _ in WRITTEN])
def test_codes_tags_and_names_in_our_six_languages(value, code):
    assert language_code(value) == code


@pytest.mark.parametrize(
    "value",
    ["es", "Spanish", "español", "zh-Hant-TW", "pt_BR", "ms", "Turkish", "", "   ", "?", "en de"],
)
def test_languages_we_do_not_serve_are_none(value):
    assert language_code(value) is None


LABELS = [
    ("german", ["Anbieter", "Interessent", "Interessent Telefon", "Bedarf", "Budget"], "de"),
    ("english", ["Prospect:", "Need:"], "en"),
    ("english phone", ["Prospect phone"], "en"),
    ("english full", ["Provider", "Provider booking", "Prospect", "Need", "Budget"], "en"),
    ("french", ["Prestataire", "Besoin"], "fr"),
    ("french field first", ["Prestataire", "Téléphone du prospect", "Besoin"], "fr"),
    ("romanian", ["Furnizor", "Nevoie"], "ro"),
    ("romanian shared words", ["Furnizor", "Client", "Client telefon", "Buget"], "ro"),
    ("indonesian", ["Penyedia", "Kebutuhan"], "id"),
    ("indonesian prospect", ["Calon klien", "Telepon calon klien"], "id"),
    ("arabic", ["المزود", "هاتف العميل", "الحاجة"], "ar"),
    ("markup", ["**Anbieter**", "_Bedarf_"], "de"),
    ("only shared en/fr", ["Prospect", "Budget", "E-mail"], None),
    ("only shared fr/ro", ["Client"], None),
    ("only shared de/ro", ["Telefon", "Mail"], None),
    ("unknown words", ["Name", "Address"], None),
    ("none", [], None),
]


@pytest.mark.parametrize(
    ("labels", "code"), [case[1:] for case in LABELS], ids=[case[0] for case in LABELS]
)
def test_labels_vote_for_their_language(labels, code):
    assert label_language(labels) == code


def test_every_label_the_parser_reads_votes():
    tables = (PARTY_LABELS, PARTY_FIELDS, REFERRAL_FIELDS)
    words = {
        word
        for table in tables
        for terms in table.values()
        for t in terms
        for word in fold_label(t).split()
    }
    assert words - _LABEL_LANGUAGES.keys() == set()


SENTENCES = {
    "en": [
        "We need someone to take over our bookkeeping before the tax deadline in March.",
        "Could you help them find a lawyer who knows the import rules?",
        "a new online shop for a flower business, live before Valentine's Day",
    ],
    "de": [
        "Wir suchen einen Steuerberater für unsere Bäckerei, der sich damit auskennt.",
        "Bitte stellt die beiden einander vor, das passt gut.",
        "Lohnbuchhaltung und Jahresabschluss für eine Bäckerei mit drei Filialen",
    ],
    "fr": [
        "Nous cherchons quelqu’un pour refaire le site de la boulangerie avant Noël.",
        "Je pense que tu es la bonne personne pour ça.",
        "un expert-comptable pour l’ouverture d’une deuxième boulangerie",
    ],
    "ro": [
        "Avem nevoie de un magazin online pentru florărie, gata înainte de Ziua Îndrăgostiților.",
        "Vă rog să îi faceţi cunoştinţă, cred că se potrivesc.",  # cedillas, as Outlook types
        "contabilitate si salarizare pentru o brutarie cu sase angajati, din martie",
    ],
    "id": [
        "Kami butuh bantuan pembukuan dan laporan pajak untuk tiga kedai kopi sebelum akhir tahun.",
        "Mohon dikenalkan, Bu Siti pasti bisa bantu.",
        "Saya mencari desainer untuk membuat logo yang baru dengan cepat.",
    ],
    "ar": [
        "نحتاج إلى محامٍ يساعدنا في تأسيس شركة تجارية جديدة قبل نهاية الربع القادم.",
        "تصميم هوية بصرية وشعار جديد لمخبز في جدّة (www.example.com) قبل الافتتاح",
    ],
}
TEXTS = [(text, code) for code, texts in SENTENCES.items() for text in texts]


@pytest.mark.parametrize(
    ("text", "code"), TEXTS, ids=[f"{code}-{i}" for i, (_, code) in enumerate(TEXTS)]
)
def test_text_in_each_language(text, code):
    assert text_language(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "OK",
        "Thanks!",
        "desain logo",
        "Logo design",
        "Zoom, 14:00",
        "Jane Roe <jane@acme.example> https://the-and-for.example/with/is/der/und",
        "> We are a bakery and need help with the books for the year",
        "de la",  # French and Romanian alike
    ],
    ids=[
        "empty",
        "ok",
        "thanks",
        "two-words",
        "english-nouns",
        "no-words",
        "addresses",
        "quoted",
        "fr-or-ro",
    ],
)
def test_short_or_ambiguous_text_is_none(text):
    assert text_language(text) is None


def test_quoted_lines_are_someone_elses_words():
    text = "> We are a bakery and need help with the books\nJe pense que c'est pour toi.\n"
    assert text_language(text) == "fr"


def _forwards(code: str) -> list[str]:
    return sorted(path.name for path in FIXTURES.glob(f"forward_*_{code}.eml"))


@pytest.mark.parametrize("code", LANGUAGES)
def test_forwarded_fixtures_come_out_in_their_language(code):
    names = _forwards(code)
    found = {
        name: text_language(body_text(parse_message((FIXTURES / name).read_bytes())) or "")
        for name in names
    }
    wrong = {name: found_code for name, found_code in found.items() if found_code != code}
    assert len(names) >= 10
    assert (len(names) - len(wrong)) / len(names) >= 0.9, wrong


@pytest.mark.parametrize(
    ("labels", "text", "code"),
    [
        (["Anbieter", "Bedarf"], "a bookkeeper for the bakery before the deadline", "de"),
        (["Prospect", "Budget"], "Nous cherchons quelqu’un pour la boulangerie.", "fr"),
        (["Client"], "desain logo", "ro"),
        ([], "", "ro"),
    ],
    ids=["labels-win", "text-when-labels-shared", "default-when-unclear", "default-when-empty"],
)
def test_request_language_labels_then_text_then_default(labels, text, code):
    assert request_language(labels, text, default="ro") == code
