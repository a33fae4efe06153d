"""Pure: the survey page's form -> the answers it gives, or None when it is not a valid form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from service.model import Business
from service.reading.survey_replies import SurveyAnswers, parse_number

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^\d[\d.,' \u00a0\u202f]*$")
MAX_AMOUNT = Decimal("1e13")
# The one-click answers: the values a survey link may carry and the page's form may post.
CHOICES = {
    "rating": ("1", "2", "3", "4", "5"),
    "business": tuple(b.value for b in Business),
    "more": ("yes", "no"),
}


def survey_form(form: Mapping[str, Any]) -> SurveyAnswers | None:
    """Every field is optional, but something must be answered, and what is given must be valid."""
    rating_text = _field(form, "rating")
    business_text = _field(form, "business")
    more_text = _field(form, "more")
    currency = _field(form, "currency").upper()
    amount_text = _field(form, "amount")
    comment = " ".join(_field(form, "comment").split())[:1000]
    for name, given in (("rating", rating_text), ("business", business_text), ("more", more_text)):
        if given and given not in CHOICES[name]:
            return None
    if currency and not _CURRENCY.match(currency):
        return None
    amount = parse_amount(amount_text) if amount_text else None
    if amount_text and amount is None:
        return None
    answers = SurveyAnswers(
        rating=int(rating_text) if rating_text else None,
        business=Business(business_text) if business_text else None,
        amount=amount,
        currency=currency if amount is not None else "",
        more={"yes": True, "no": False}.get(more_text),
        comment=comment,
    )
    nothing = (
        answers.rating is None
        and answers.business is None
        and answers.amount is None
        and answers.more is None
        and not answers.comment
    )
    return None if nothing else answers


def parse_amount(text: str) -> Decimal | None:
    """An amount as people type it (1200, 1.200, 1,200.50, 1.200,50, 1 200), read by the same
    rule as an amount in a reply by mail; None for anything else."""
    text = text.strip()
    if not _AMOUNT.match(text):
        return None
    try:
        amount = parse_number(text)
    except InvalidOperation:
        return None
    if amount is None or amount >= MAX_AMOUNT:
        return None
    return amount.quantize(Decimal("0.01"))


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""
