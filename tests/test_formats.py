"""Money as each language writes it: the decimals are CLDR's for the currency, not ours."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from babel.numbers import get_currency_precision

from service.writing.formats import format_money

AMOUNT = Decimal("15000000.40")


@pytest.mark.parametrize("language", ["en", "de", "fr", "ro", "id"])
@pytest.mark.parametrize("currency", ["EUR", "USD", "IDR", "JPY", "KWD", "RON"])
def test_a_currency_has_the_decimals_cldr_gives_it(language, currency):
    digits = get_currency_precision(currency)
    groups = re.findall(r"\d+", format_money(AMOUNT, currency, language))
    written = "".join(groups)
    if digits:
        assert len(groups[-1]) == digits
        assert written == "15000000" + "40".ljust(digits, "0")
    else:
        assert written == "15000000"


@pytest.mark.parametrize("language", ["en", "de", "fr", "ro", "id"])
def test_an_amount_without_a_currency_keeps_its_cents(language):
    groups = re.findall(r"\d+", format_money(AMOUNT, "", language))
    assert "".join(groups) == "1500000040" and len(groups[-1]) == 2
