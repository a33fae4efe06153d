"""What a prospect's own sentences say about budget, timing, contact and phone, in six
languages; and the sentences that look alike but say no such thing."""

from __future__ import annotations

import pytest

from service.reading.forwarded_fields import (
    best_time_in,
    budget_in,
    forwarded_fields,
    phone_in,
    preference_in,
)
from service.reading.letter_body import letter_body


@pytest.mark.parametrize(
    ("sentence", "budget"),
    [
        ("Our budget is around 3,000 EUR for the set-up.", "around 3,000 EUR"),
        ("Budget: ca. 3.000 € für die Einrichtung.", "ca. 3.000 €"),
        ("Unser Budget liegt bei etwa 800 Euro im Monat.", "etwa 800 Euro im Monat"),
        ("Notre budget est d’environ 5 000 € pour l’année.", "environ 5 000 €"),
        ("Bugetul este de aproximativ 2.000 lei.", "aproximativ 2.000 lei"),
        ("Anggaran kami sekitar Rp 15 juta.", "sekitar Rp 15 juta"),
        ("الميزانية حوالي 3000 دولار للتركيب.", "حوالي 3000 دولار"),
        ("Budget: max. 500 £ a month", "max. 500 £ a month"),
    ],
)
def test_a_sum_after_the_word_budget_is_the_budget(sentence, budget):
    assert budget_in(sentence) == budget


@pytest.mark.parametrize(
    "sentence",
    [
        "We paid 3,000 EUR last year for this.",  # money, but no budget
        "Le devis précédent était de 5 000 €.",
        "Budget is tight. Last year we paid 3,000 EUR.",  # the sum is in another sentence
        "Our budget is small, we sold 2000 loaves last month.",  # no currency
        "Am Budget hängt alles.",
        "We run a budget hotel with 40 rooms, rooms from 60 EUR a night.",
    ],
)
def test_money_that_is_not_said_to_be_the_budget_is_not_one(sentence):
    assert budget_in(sentence) == ""


@pytest.mark.parametrize(
    ("sentence", "time"),
    [
        ("The best time to call me is 3-5pm, when the shop is quiet.", "3-5pm"),
        ("Best time to reach me is 9.30-11am.", "9.30-11am"),
        ("Am besten vormittags, lieber per Telefon.", "vormittags"),
        ("Am besten erreichen Sie mich zwischen 9 und 12 Uhr.", "zwischen 9 und 12 Uhr"),
        ("Je suis joignable plutôt le matin, par téléphone.", "le matin"),
        ("Cel mai bine după-amiaza, după ora 14.", "după-amiaza"),
        ("Paling baik sore hari, setelah jam 3.", "sore hari"),
        ("أفضل وقت للاتصال بي بعد الظهر، ويفضل الهاتف.", "بعد الظهر"),
    ],
)
def test_a_best_time_is_read_as_written(sentence, time):
    assert best_time_in(sentence) == time


@pytest.mark.parametrize(
    "sentence",
    [
        "Am besten wäre eine Lösung, die bis 2027 hält.",
        "C’est plutôt urgent, avant le 15 mars.",
        "We are the best bakery in town since 1990.",
        "Cel mai bine ar fi un magazin simplu.",
    ],
)
def test_best_without_a_time_of_day_is_no_best_time(sentence):
    assert best_time_in(sentence) == ""


@pytest.mark.parametrize(
    ("sentence", "method"),
    [
        ("Please call me, I rarely read mail.", "phone"),
        ("Lieber per Telefon – nachmittags sind wir voll.", "phone"),
        ("Par e-mail de préférence, merci.", "email"),
        ("Sunați-mă oricând după ora 14.", "phone"),
        ("Saya lebih suka dihubungi lewat WhatsApp.", "WhatsApp"),
        ("ويفضل التواصل عبر الهاتف.", "phone"),
    ],
)
def test_the_one_way_asked_for_is_the_preference(sentence, method):
    assert preference_in(sentence) == method


def test_two_ways_asked_for_make_no_preference():
    assert preference_in("Please call me, or reach me by email.") == ""


@pytest.mark.parametrize(
    ("text", "signature", "phone"),
    [
        ("You can call me on 0722 123 456 any time.", "", "0722 123 456"),
        ("Tél : 01 42 68 53 00", "", "01 42 68 53 00"),
        ("Cordialement,\nSophie Martin\n06 12 34 56 78", "", "06 12 34 56 78"),
        ("Thanks", "Tom Byrne\nByrne's Greengrocers\n+353 87 123 4567", "+353 87 123 4567"),
        ("Salam", "Dewi Lestari\nWA: 0813 1111 2222", "0813 1111 2222"),
        ("مع تحياتي", "جوال: +971 50 123 4567", "+971 50 123 4567"),
    ],
)
def test_the_writers_own_number_is_their_phone(text, signature, phone):
    assert phone_in(text, signature) == phone


@pytest.mark.parametrize(
    "text",
    [
        "Our order 0123456789 never arrived.",  # a number, not given as theirs
        "My accountant's old firm was at 0044 20 7946 0000 on paper.",
        "We opened in 2019 with 12 staff.",
        "Invoice 0123456789",  # on a line of its own, but after a word that is no label
    ],
)
def test_a_number_in_a_sentence_is_nobodys_phone(text):
    assert phone_in(text) == ""


def test_a_sentence_the_client_wrapped_is_read_whole():
    read = forwarded_fields(
        "We need payroll for eight people from January, and our budget for it is\n"
        "around 250 EUR a month. The best time to call me is on weekday mornings\n"
        "before the shop opens.\n\nThanks,\nCarol\nMobile: 0161 496 0000"
    )
    assert read.budget == "around 250 EUR a month"
    assert read.best_time == "on weekday mornings before the shop opens"
    assert read.phone == "0161 496 0000"


# ------------------------------------------------------------------ the letter's own words


@pytest.mark.parametrize(
    ("letter", "writer", "body"),
    [
        pytest.param(
            "Hi Anna,\n\nWe need a bookkeeper.\n\nBest regards,\nBob\nBob Jones\n+44 20 7946 0958",
            "Bob Jones",
            "We need a bookkeeper.",
            id="en-regards-block",
        ),
        pytest.param(
            "Hallo zusammen,\n\nwir suchen einen Steuerberater.\n\nViele Grüße\nZoë",
            "Zoë Weiß",
            "Wir suchen einen Steuerberater.",
            id="de-lower-case-after-greeting",
        ),
        pytest.param(
            "Bonjour,\n\nNous cherchons un comptable.\n\nCordialement",
            "",
            "Nous cherchons un comptable.",
            id="fr-sign-off-alone",
        ),
        pytest.param(
            "Bună ziua,\n\nAvem nevoie de un site.\n\nCu stimă,\nIoana",
            "Ioana Stan",
            "Avem nevoie de un site.",
            id="ro",
        ),
        pytest.param(
            "Halo Pak Budi,\n\nKami butuh pembukuan.\n\nSalam,\nDewi",
            "Dewi",
            "Kami butuh pembukuan.",
            id="id",
        ),
        pytest.param(
            "مرحبا\n\nنحتاج إلى محامٍ.\n\nمع تحياتي،\nأحمد",
            "أحمد منصور",
            "نحتاج إلى محامٍ.",
            id="ar",
        ),
        pytest.param(
            "We need a bookkeeper.\n\nBob\n\nSent from my iPhone",
            "Bob Smith",
            "We need a bookkeeper.",
            id="name-alone-and-phone-footer",
        ),
        pytest.param(
            "We need a bookkeeper.\n\n[name] [email]\n[phone]",
            "",
            "We need a bookkeeper.",
            id="placeholders-at-the-end",
        ),
    ],
)
def test_greeting_and_sign_off_go_what_they_framed_stays(letter, writer, body):
    assert letter_body(letter, writer) == body


def test_thanks_in_a_sentence_is_no_sign_off():
    letter = "Thanks, Ada, for the tip.\nWhat we need:\n- monthly accounts\n- payroll"
    assert letter_body(letter) == letter


def test_thanks_followed_by_more_to_say_is_no_sign_off():
    letter = "We need a bookkeeper.\n\nThanks!\nWe would also need payroll from March on."
    assert letter_body(letter) == (
        "We need a bookkeeper.\n\nThanks!\nWe would also need payroll from March on."
    )


def test_hard_wrapped_lines_join_and_list_items_stay_lines():
    letter = (
        "We are a 5-person bakery and need someone to take over our bookkeeping\n"
        "before the tax deadline in March.\n"
        "\n"
        "What we need:\n"
        "- monthly accounts\n"
        "- the VAT returns, which we have always filed late and would like someone to\n"
        "  take over entirely\n"
        "Short line one\n"
        "Short line two"
    )
    assert letter_body(letter) == (
        "We are a 5-person bakery and need someone to take over our bookkeeping before the"
        " tax deadline in March.\n\n"
        "What we need:\n"
        "- monthly accounts\n"
        "- the VAT returns, which we have always filed late and would like someone to take"
        " over entirely\n"
        "Short line one\n"
        "Short line two"
    )
