"""Replies to the follow-up survey, read from free text as people write them in six languages."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.model import Business
from service.reading.bodies import body_text
from service.reading.quotes import new_text
from service.reading.request import parse_message
from service.reading.survey_replies import SurveyAnswers, read_survey
from tests.conftest import fixture_bytes

YES, NOT_YET, NO = Business.YES, Business.NOT_YET, Business.NO
D = Decimal

# The example each survey mail gives, in its language: quoted in every fixture, never read.
EXAMPLE = {
    "en": "4, yes, 1200 EUR, yes",
    "de": "4, ja, 1200 EUR, ja",
    "fr": "4, oui, 1200 EUR, oui",
    "ro": "4, da, 1200 EUR, da",
    "id": "4, ya, 1200 EUR, ya",
    "ar": "4، نعم، 1200 EUR، نعم",
}


def answers(
    rating: int | None = None,
    business: Business | None = None,
    amount: str | None = None,
    currency: str = "",
    more: bool | None = None,
    comment: str = "",
) -> SurveyAnswers:
    return SurveyAnswers(rating, business, D(amount) if amount else None, currency, more, comment)


def read_fixture(name: str) -> SurveyAnswers:
    return read_survey(new_text(parse_message(fixture_bytes(name))))


# ----------------------------------------------------------------------------- real mail


@dataclass(frozen=True)
class Reply:
    fixture: str
    lang: str
    expected: SurveyAnswers


REPLIES = [
    Reply("survey_reply_gmail_positional.eml", "en", answers(5, NOT_YET, more=True)),
    Reply(
        "survey_reply_outlook_labelled_de.eml",
        "de",
        answers(4, YES, "3400.00", "EUR", True, "Sehr angenehme Zusammenarbeit – gerne wieder."),
    ),
    Reply(
        "survey_reply_outlook_positional_comment.eml",
        "en",
        answers(3, NO, more=False, comment="Nice enough chap, but he wanted a bigger firm."),
    ),
    Reply("survey_reply_iphone_stars_dollars.eml", "en", answers(5, YES, "2500.00", "USD", True)),
    Reply(
        "survey_reply_apple_mail_labelled_fr.eml",
        "fr",
        answers(4, NOT_YET, more=True, comment="on se revoit en janvier"),
    ),
    Reply("survey_reply_thunderbird_bottom_ro.eml", "ro", answers(4, YES, "2500.00", "RON", True)),
    Reply(
        "survey_reply_gmail_labelled_id_base64.eml",
        "id",
        answers(5, YES, "15000000.00", "IDR", True),
    ),
    Reply("survey_reply_gmail_positional_ar.eml", "ar", answers(4, YES, "5000.00", "SAR", False)),
    Reply(
        "survey_reply_html_only_labelled.eml",
        "en",
        answers(4, YES, "1200.50", "EUR", False, "Good guy, but we are at capacity until spring."),
    ),
    Reply(
        "survey_reply_windows1252_positional_fr.eml",
        "fr",
        answers(5, YES, "1200.50", "EUR", True, "Très bonne mise en relation, merci à Ada."),
    ),
    Reply(
        "survey_reply_gmail_prose_phone_and_date.eml",
        "en",
        answers(
            4,
            NOT_YET,
            more=True,
            comment="We met on 03.12.2026 and again on 10 December, and he was really helpful. "
            "If anyone needs him, his mobile is +44 7700 900123.",
        ),
    ),
    Reply("survey_reply_gmail_quote_only_empty.eml", "en", SurveyAnswers()),
    Reply(
        "survey_reply_iphone_labelled_ar.eml",
        "ar",
        answers(5, NOT_YET, more=True, comment="شخص محترف جداً"),
    ),
    Reply("survey_reply_gmail_android_stars_de.eml", "de", answers(5, YES, "1200.00", "EUR", True)),
]
REPLY_IDS = [r.fixture[len("survey_reply_") : -len(".eml")] for r in REPLIES]


def test_fixtures_cover_every_language() -> None:
    assert {r.lang for r in REPLIES} == set(EXAMPLE)


@pytest.mark.parametrize("reply", REPLIES, ids=REPLY_IDS)
def test_a_real_reply_reads_as_written(reply: Reply) -> None:
    assert read_fixture(reply.fixture) == reply.expected


@pytest.mark.parametrize("reply", REPLIES, ids=REPLY_IDS)
def test_the_quoted_survey_and_its_example_are_not_in_the_new_text(reply: Reply) -> None:
    message = parse_message(fixture_bytes(reply.fixture))
    assert EXAMPLE[reply.lang] in (body_text(message) or "")
    assert EXAMPLE[reply.lang] not in new_text(message)


def has_both_parts(name: str) -> bool:
    message = parse_message(fixture_bytes(name))
    return None not in (message.get_body(("plain",)), message.get_body(("html",)))


ALTERNATIVES = [r.fixture for r in REPLIES if has_both_parts(r.fixture)]


@pytest.mark.parametrize(
    "fixture", ALTERNATIVES, ids=[f[len("survey_reply_") : -4] for f in ALTERNATIVES]
)
def test_the_html_alternative_reads_as_the_plain_text(fixture: str) -> None:
    message = parse_message(fixture_bytes(fixture))
    html_part = message.get_body(("html",))
    assert html_part is not None
    html_only = EmailMessage()
    html_only.set_content(html_part.get_content(), subtype="html")
    assert read_survey(new_text(html_only)) == read_fixture(fixture)


def test_a_reply_with_nothing_written_is_empty() -> None:
    assert read_fixture("survey_reply_gmail_quote_only_empty.eml").empty


# ----------------------------------------------------------------------------- positional

POSITIONAL = {
    "all_four": ("4, yes, 1200 EUR, yes", answers(4, YES, "1200.00", "EUR", True)),
    "semicolons_not_yet": ("5; not yet", answers(5, NOT_YET)),
    "no_value_two_noes": ("2, no, no", answers(2, NO, more=False)),
    "lines": ("4\nyes\n1200 EUR\nyes", answers(4, YES, "1200.00", "EUR", True)),
    "spaces_only": ("4 yes 1200 EUR yes", answers(4, YES, "1200.00", "EUR", True)),
    "dashes": ("5/5 - yes - $500 - no", answers(5, YES, "500.00", "USD", False)),
    "full_stops": ("3. No. No.", answers(3, NO, more=False)),
    "without_rating": ("yes, 800 EUR, no", answers(None, YES, "800.00", "EUR", False)),
    "amount_without_currency": ("4, yes, 1200, yes", answers(4, YES, "1200.00", "", True)),
    "small_amount_after_rating": ("4, yes, 3, yes", answers(4, YES, "3.00", "", True)),
    "rating_after_business": ("yes, 4", answers(4, YES)),
    "no_then_not_yet": ("No, not yet", answers(None, NOT_YET)),
    "second_not_yet_is_no_more": ("yes, not yet", answers(None, YES)),
    "a_third_answer_is_ignored": ("4, no, yes, no", answers(4, NO, more=True)),
    "two_yes_words_together_are_one": ("yes definitely, no", answers(None, YES, more=False)),
    "stressed_yes_is_one_answer": ("Yes, of course", answers(None, YES)),
    "stressed_no_is_one_answer": ("Nein, leider nicht", answers(None, NO)),
    "stress_after_money_is_more": (
        "4, yes, 1200 EUR, definitely",
        answers(4, YES, "1200.00", "EUR", True),
    ),
    "approximate": ("4, yes, about 1200 EUR", answers(4, YES, "1200.00", "EUR")),
    "thanks_is_no_comment": ("4, yes, thanks!", answers(4, YES)),
    "numbered_list": ("1. 4\n2. yes\n3. 1200 EUR\n4. no", answers(4, YES, "1200.00", "EUR", False)),
    "arabic_commas": ("٥، لا، لا", answers(5, NO, more=False)),
    "german": ("4, ja, 1.200 €, nein", answers(4, YES, "1200.00", "EUR", False)),
    "french": ("3, pas encore, oui", answers(3, NOT_YET, more=True)),
    "romanian": ("4, încă nu, da", answers(4, NOT_YET, more=True)),
    "indonesian": ("5, ya, Rp 15.000.000, ya", answers(5, YES, "15000000.00", "IDR", True)),
}


@pytest.mark.parametrize(("text", "expected"), POSITIONAL.values(), ids=POSITIONAL.keys())
def test_positional_answers_follow_the_surveys_order(text: str, expected: SurveyAnswers) -> None:
    assert read_survey(text) == expected


# ----------------------------------------------------------------------------- labelled

LABELLED = {
    "en": (
        "Rating: 4\nBusiness: not yet\nValue: 1.200 €\nMore: no\nComment: great guy",
        answers(4, NOT_YET, "1200.00", "EUR", False, "great guy"),
    ),
    "en_useful": ("Useful: 4/5\nBusiness: yes", answers(4, YES)),
    "de": (
        "Bewertung: 5\nGeschäft: noch nicht\nWert: 0\nMehr: ja\nKommentar: sehr nett",
        answers(5, NOT_YET, "0.00", "", True, "sehr nett"),
    ),
    "fr": (
        "Note : 4/5\nAffaires : oui\nValeur : 1\u202f200,50 €\nPlus : non\nCommentaire : très bien",
        answers(4, YES, "1200.50", "EUR", False, "très bien"),
    ),
    "ro": (
        "Notă: 4\nAfacere: inca nu\nValoare: 2500 lei\nMai multe: da\nComentariu: om de treabă",
        answers(4, NOT_YET, "2500.00", "RON", True, "om de treabă"),
    ),
    "id": (
        "Nilai: 4\nBisnis: belum\nNilai bisnis: IDR 15000000\nLagi: tidak\nKomentar: orangnya baik",
        answers(4, NOT_YET, "15000000.00", "IDR", False, "orangnya baik"),
    ),
    "ar": (
        "التقييم: ٤\nالأعمال: لم بعد\nالقيمة: ٥٠٠٠ درهم\nالمزيد: نعم\nتعليق: شخص رائع",
        answers(4, NOT_YET, "5000.00", "AED", True, "شخص رائع"),
    ),
    "upper_case_and_no_accents": (
        "NOTA: 3\nGESCHAFT: NEIN\nMAI MULTE: DA",
        answers(3, NO, more=True),
    ),
    "long_labels": (
        "Rating (1-5): 4\nLed to business: yes\nValue of business closed: 900 GBP\n"
        "Would welcome more referrals: no",
        answers(4, YES, "900.00", "GBP", False),
    ),
    "without_colons": ("Rating 4\nBusiness not yet", answers(4, NOT_YET)),
    "several_on_a_line": ("Rating: 5, Business: yes, More: yes", answers(5, YES, more=True)),
    "label_order_is_free": ("More: no\nRating: 2", answers(2, more=False)),
    "score_label_holding_money": (
        "Nilai: Rp 15.000.000",
        answers(amount="15000000.00", currency="IDR"),
    ),
    "prose_after_a_leading_answer": (
        "Rating: 4 - very helpful\nBusiness: yes we signed",
        answers(4, YES, comment="very helpful\nwe signed"),
    ),
    "comment_runs_on": (
        "Comment: great guy\nreally quick to reply",
        answers(comment="great guy\nreally quick to reply"),
    ),
    "taken_back_yes_words": (
        "Business: of course not\nMore: absolutely not",
        answers(business=NO, more=False),
    ),
    "taken_back_yes_words_de": ("Mehr: natürlich nicht", answers(more=False)),
    "taken_back_yes_words_fr": ("Plus : absolument pas", answers(more=False)),
    "a_yes_word_then_a_comma_is_a_yes": (
        "More: absolutely, not now though",
        answers(more=True, comment="not now though"),
    ),
}


@pytest.mark.parametrize(("text", "expected"), LABELLED.values(), ids=LABELLED.keys())
def test_labelled_lines_answer_their_question(text: str, expected: SurveyAnswers) -> None:
    assert read_survey(text) == expected


def test_a_label_wins_over_the_position() -> None:
    assert read_survey("Business: no\nyes").more is True


def test_an_unreadable_labelled_value_is_comment() -> None:
    assert read_survey("Note: I met him 3 times") == answers(comment="I met him 3 times")


# ----------------------------------------------------------------------------- ratings

RATINGS = [
    "4", "4/5", "4 / 5", "4 of 5", "4 out of 5", "4 out of 5 stars", "4 stars", "4 Sterne",
    "4 von 5", "4 sur 5", "4 étoiles", "4 din 5", "4 stele", "4 dari 5", "4 bintang",
    "٤", "٤ من ٥", "٤ نجوم", "★★★★", "★★★★☆", "⭐⭐⭐⭐",
]  # fmt: skip


@pytest.mark.parametrize("text", RATINGS)
def test_rating_forms(text: str) -> None:
    assert read_survey(text).rating == 4


@pytest.mark.parametrize(("text", "amount"), [("0", "0.00"), ("6", "6.00"), ("12", "12.00")])
def test_a_number_that_is_no_rating_is_an_amount(text: str, amount: str) -> None:
    assert read_survey(text) == answers(amount=amount)


@pytest.mark.parametrize("text", ["10/10", "4.5/5", "0/5", "★★★★★★"])
def test_a_rating_off_the_scale_is_not_read(text: str) -> None:
    assert read_survey(text).rating is None


# ----------------------------------------------------------------------------- yes, no, not yet

WORDS = {
    YES: ["yes", "Yes!", "YES", "yeah", "ja", "Ja, klar", "oui", "da", "ya", "iya", "sudah", "نعم"],
    NO: ["no", "No.", "nope", "nein", "non", "nu", "tidak", "nggak", "لا", "كلا"],
    NOT_YET: [
        "not yet", "Not yet!", "noch nicht", "pas encore", "încă nu", "inca nu", "nu încă",
        "belum", "ليس بعد", "لم بعد",
    ],
}  # fmt: skip
WORD_CASES = [(text, answer) for answer, texts in WORDS.items() for text in texts]


@pytest.mark.parametrize(("text", "business"), WORD_CASES, ids=[t for t, _ in WORD_CASES])
def test_business_in_six_languages(text: str, business: Business) -> None:
    assert read_survey(text).business is business


@pytest.mark.parametrize("text", ["yes, yes", "ja, ja", "oui, oui", "da, da", "ya, ya", "نعم، نعم"])
def test_a_second_yes_is_more(text: str) -> None:
    assert read_survey(text).more is True


# ----------------------------------------------------------------------------- money

MONEY = [
    ("1200 EUR", "1200.00", "EUR"),
    ("EUR 1,200.50", "1200.50", "EUR"),
    ("€1.200", "1200.00", "EUR"),
    ("1.200,50 €", "1200.50", "EUR"),
    ("1200eur", "1200.00", "EUR"),
    ("$500", "500.00", "USD"),
    ("500 USD", "500.00", "USD"),
    ("£ 300", "300.00", "GBP"),
    ("1 200 RON", "1200.00", "RON"),
    ("2500 lei", "2500.00", "RON"),
    ("Rp 15.000.000", "15000000.00", "IDR"),
    ("Rp. 15.000.000,-", "15000000.00", "IDR"),
    ("IDR 15000000", "15000000.00", "IDR"),
    ("Rp 15 juta", "15000000.00", "IDR"),
    ("1200 ريال", "1200.00", "SAR"),
    ("SAR 1,200", "1200.00", "SAR"),
    ("٣٠٠٠ درهم", "3000.00", "AED"),
    ("AED 3000", "3000.00", "AED"),
    ("1.2k EUR", "1200.00", "EUR"),
    ("1500 CHF", "1500.00", "CHF"),
]


@pytest.mark.parametrize(("money", "amount", "currency"), MONEY, ids=[m for m, _, _ in MONEY])
def test_money_with_its_currency(money: str, amount: str, currency: str) -> None:
    assert read_survey(f"4, yes, {money}, yes") == answers(4, YES, amount, currency, True)


NUMBERS = [
    ("1200", "1200.00"),
    ("1.200", "1200.00"),
    ("1,200", "1200.00"),
    ("1,5", "1.50"),
    ("1.5", "1.50"),
    ("1.200,50", "1200.50"),
    ("1,200.50", "1200.50"),
    ("1 200", "1200.00"),
    ("1\u202f200,50", "1200.50"),
    ("15.000.000", "15000000.00"),
    ("1'200.50", "1200.50"),
    ("0,505", "0.51"),
    ("١٬٢٠٠٫٥٠", "1200.50"),
]


@pytest.mark.parametrize(("number", "amount"), NUMBERS, ids=[n for n, _ in NUMBERS])
def test_thousands_and_decimal_separators(number: str, amount: str) -> None:
    assert read_survey(f"Value: {number}") == answers(amount=amount)


# ----------------------------------------------------------------------------- prose

PROSE = [
    "We met 2 times, and he called back on 03.12.2026.",
    "Call me on +40 721 123 456 or 0721 123 456.",
    "Our revenue grew 5% since then",
    "Let's talk at 10:30 tomorrow, or after 4 pm",
    "It was on 12/03, a Tuesday.",
]


@pytest.mark.parametrize("text", PROSE)
def test_numbers_in_prose_are_no_answers(text: str) -> None:
    assert read_survey(text) == answers(comment=text)


def test_an_unmistakable_amount_in_prose_is_read() -> None:
    text = "Yes! We signed a contract worth €12,000 last week."
    assert read_survey(text) == answers(
        None, YES, "12000.00", "EUR", comment="We signed a contract worth €12,000 last week."
    )


def test_an_unmistakable_rating_in_prose_is_read() -> None:
    assert read_survey("I'd give him 5 stars, honestly").rating == 5


def test_a_positional_amount_wins_over_one_in_prose() -> None:
    assert read_survey("4, yes, 1200 EUR\nHe first quoted 5000 EUR.").amount == D("1200.00")


# ----------------------------------------------------------------------------- comment, empty


def test_prose_next_to_answers_is_the_comment() -> None:
    text = "4, yes, 1200 EUR, yes\nGreat guy, very quick."
    assert read_survey(text).comment == "Great guy, very quick."


def test_greeting_closing_and_signature_are_no_comment() -> None:
    text = "Hi Ada,\n\n4, yes\n\nBest regards,\nJane Smith\nAcme Ltd\n+44 20 7946 0958"
    assert read_survey(text) == answers(4, YES)


def test_a_name_signed_last_is_no_comment() -> None:
    assert read_survey("4, no, no\nJane") == answers(4, NO, more=False)


def test_the_comment_is_at_most_1000_characters() -> None:
    answers_read = read_survey("4, " + "blah " * 400)
    assert answers_read.rating == 4 and 900 < len(answers_read.comment) <= 1000


def test_a_comment_alone_is_something() -> None:
    read = read_survey("Great introduction, thank you so much")
    assert not read.empty and read.comment == "Great introduction, thank you so much"


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\n", "?", "ok", "Thanks!", "👍", "Hi Ada,\n\nThanks,\nJane", "-- "]
)
def test_nothing_readable_is_empty(text: str) -> None:
    read = read_survey(text)
    assert read == SurveyAnswers() and read.empty


# ----------------------------------------------------------------------------- properties

LANGS = ("en", "de", "fr", "ro", "id", "ar")
ANSWER_WORDS = {
    "en": {YES: ("yes", "Yes"), NO: ("no", "No"), NOT_YET: ("not yet", "Not yet")},
    "de": {YES: ("ja", "Ja"), NO: ("nein", "Nein"), NOT_YET: ("noch nicht", "Noch nicht")},
    "fr": {YES: ("oui", "Oui"), NO: ("non", "Non"), NOT_YET: ("pas encore", "Pas encore")},
    "ro": {YES: ("da", "Da"), NO: ("nu", "Nu"), NOT_YET: ("încă nu", "inca nu")},
    "id": {YES: ("ya", "Ya"), NO: ("tidak", "Tidak"), NOT_YET: ("belum", "Belum")},
    "ar": {YES: ("نعم",), NO: ("لا",), NOT_YET: ("ليس بعد", "لم بعد")},
}
OUT_OF = {"en": "of", "de": "von", "fr": "sur", "ro": "din", "id": "dari", "ar": "من"}
STARS = {
    "en": "stars",
    "de": "Sterne",
    "fr": "étoiles",
    "ro": "stele",
    "id": "bintang",
    "ar": "نجوم",
}
CURRENCY_FORMS = [
    ("EUR", "{} EUR"), ("EUR", "EUR {}"), ("EUR", "€{}"), ("EUR", "{} €"), ("USD", "${}"),
    ("USD", "{} USD"), ("GBP", "£{}"), ("GBP", "£ {}"), ("RON", "{} lei"), ("RON", "{} RON"),
    ("IDR", "Rp {}"), ("IDR", "IDR {}"), ("SAR", "{} ريال"), ("SAR", "SAR {}"), ("AED", "{} AED"),
    ("AED", "{} درهم"), ("", "{}"),
]  # fmt: skip
ARABIC_DIGITS = str.maketrans("0123456789.,", "٠١٢٣٤٥٦٧٨٩٫٬")


def written_number(amount: Decimal, style: str, cents: bool) -> str:
    """An amount as people of each habit write it: 1,200.50 / 1.200,50 / 1 200,50 / 1200.50."""
    text = f"{amount:,.2f}" if cents else f"{amount:,.0f}"
    if style == "plain":
        return text.replace(",", "")
    if style == "de":
        return text.replace(",", "_").replace(".", ",").replace("_", ".")
    if style == "fr":
        return text.replace(",", "\u202f").replace(".", ",")
    if style == "ar":
        return text.translate(ARABIC_DIGITS)
    return text


@st.composite
def positional_replies(draw: st.DrawFn) -> tuple[str, SurveyAnswers]:
    lang = draw(st.sampled_from(LANGS))
    rating = draw(st.none() | st.integers(1, 5))
    business = draw(st.none() | st.sampled_from(list(Business)))
    amount = draw(st.none() | st.decimals(0, 10**8, places=2))
    more = draw(st.none() | st.booleans()) if business else None  # alone it would be business
    parts: list[str] = []
    if rating is not None:
        forms = [
            str(rating),
            f"{rating}/5",
            f"{rating} {OUT_OF[lang]} 5",
            f"{rating} {STARS[lang]}",
        ]
        forms += ["★" * rating, str(rating).translate(ARABIC_DIGITS)]
        parts.append(draw(st.sampled_from(forms)))
    if business is not None:
        parts.append(draw(st.sampled_from(ANSWER_WORDS[lang][business])))
    currency = ""
    if amount is not None:
        currency, form = draw(st.sampled_from(CURRENCY_FORMS))
        # Without a currency, whole 1..5 would be a rating: such amounts are written with cents.
        cents = not currency or amount != amount.to_integral_value() or draw(st.booleans())
        style = draw(st.sampled_from(["plain", "en", "de", "fr", "ar"]))
        parts.append(form.format(written_number(amount, style, cents)))
    if more is not None:
        parts.append(draw(st.sampled_from(ANSWER_WORDS[lang][YES if more else NO])))
    separator = draw(st.sampled_from([", ", "; ", "\n", " - ", "، " if lang == "ar" else ",  "]))
    expected = SurveyAnswers(rating, business, amount, currency if amount is not None else "", more)
    return separator.join(parts), expected


@given(positional_replies())
def test_any_positional_reply_in_any_language_reads_back_exactly(
    reply: tuple[str, SurveyAnswers],
) -> None:
    text, expected = reply
    assert read_survey(text) == expected


@given(st.text(max_size=400))
def test_any_text_reads_as_answers_within_their_bounds(text: str) -> None:
    read = read_survey(text)
    assert read.rating is None or 1 <= read.rating <= 5
    assert read.amount is None or (read.amount >= 0 and read.amount.as_tuple().exponent == -2)
    assert read.currency == "" or (read.amount is not None and read.currency.isupper())
    assert len(read.comment) <= 1000 and read.comment == read.comment.strip()
    assert read.empty == (read == SurveyAnswers())


@pytest.mark.parametrize(
    ("text", "business", "more"),
    [
        ("4, pas du tout, oui", "no", True),
        ("4, toujours pas, oui", "not_yet", True),
        ("4 Sterne, leider noch nicht, ja", "not_yet", True),
        ("2, aucune affaire, non", "no", False),
        ("D'autres mises en relation : oui", None, True),
        ("4، لم يحدث بعد، نعم", "not_yet", True),
    ],
)
def test_answers_the_translated_surveys_invite(text, business, more):
    answers = read_survey(text)
    assert (answers.business, answers.more) == (business, more)


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("4, da, 1200 de euro, da", "1200.00", "EUR"),
        ("Valoare: 5.000 de lei", "5000.00", "RON"),
        ("Valoare: 3 mii de lei", "3000.00", "RON"),
    ],
)
def test_romanian_amounts_with_de_and_thousands(text, amount, currency):
    answers = read_survey(text)
    assert (answers.amount, answers.currency) == (Decimal(amount), currency)
