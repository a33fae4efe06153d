"""The survey page's form, read as the page's POST gives it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.model import Business
from service.reading.survey_form import parse_amount, survey_form
from service.reading.survey_replies import SurveyAnswers


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("1200", "1200.00"),
        ("1.200", "1200.00"),
        ("1,200.50", "1200.50"),
        ("1.200,50", "1200.50"),
        ("1 200", "1200.00"),
        ("1\u202f200", "1200.00"),
        ("0,5", "0.50"),
        ("15.000.000", "15000000.00"),
    ],
)
def test_amounts_as_people_type_them(typed, amount):
    assert parse_amount(typed) == Decimal(amount)


@pytest.mark.parametrize("typed", ["lots", "12.03.2026", "-5", "1e9", "€ 12", "9" * 20])
def test_what_is_not_an_amount(typed):
    assert parse_amount(typed) is None


def test_a_full_form():
    form = {
        "rating": "4",
        "business": "not_yet",
        "amount": "2.500",
        "currency": "ron",
        "more": "no",
        "comment": " soon\n maybe ",
    }
    assert survey_form(form) == SurveyAnswers(
        rating=4,
        business=Business.NOT_YET,
        amount=Decimal("2500.00"),
        currency="RON",
        more=False,
        comment="soon maybe",
    )


def test_a_currency_without_an_amount_is_dropped():
    assert survey_form({"rating": "5", "currency": "EUR"}) == SurveyAnswers(rating=5)


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"comment": "   "},
        {"rating": "0"},
        {"rating": "4.5"},
        {"more": "maybe"},
        {"amount": "x"},
    ],
    ids=["nothing", "blank-comment", "rating-0", "half-rating", "more-maybe", "amount-x"],
)
def test_forms_that_are_refused(form):
    assert survey_form(form) is None
