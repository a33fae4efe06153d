"""Pure: a request's "Follow up: 6 weeks" -> a number of days, or None when it says no duration."""

from __future__ import annotations

import re

from service.reading.text import fold_written

# The range a request may ask for: a survey sooner than a day after the introduction asks
# about nothing yet, and one two years later reaches people who have forgotten it. The
# refusal of any other value says this range in words (templates/*/mail/_problem.*).
MIN_FOLLOW_UP_DAYS = 1.0
MAX_FOLLOW_UP_DAYS = 730.0

# Days per unit. A month is 30 days: the value is stored as days, so "3 months" is 90
# days from the introduction, not the same date three calendar months on.
_DAY, _WEEK, _MONTH = 1.0, 7.0, 30.0
# Every spelling of our six languages, as `fold_written` leaves it (no case, no accents,
# Arabic evened): singular, plural, the German dative ("in 6 Wochen") and the Arabic
# accusative ("45 يوما"), the Arabic dual too ("شهرين": two months, with no digit).
_SPELLINGS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (_DAY, ("d", "day", "days", "tag", "tage", "tagen", "j", "jour", "jours", "zi", "zile")),
    (_DAY, ("zilei", "hari", "يوم", "يوما", "ايام", "اياما")),
    (_WEEK, ("w", "wk", "wks", "week", "weeks", "woche", "wochen", "semaine", "semaines")),
    (_WEEK, ("saptamana", "saptamani", "minggu", "pekan", "اسبوع", "اسبوعا", "اسابيع")),
    (_MONTH, ("mo", "mos", "month", "months", "monat", "monate", "monaten", "mois")),
    (_MONTH, ("luna", "luni", "bulan", "شهر", "شهرا", "اشهر", "شهور")),
)
_UNITS = {word: days for days, words in _SPELLINGS for word in words}
_DUALS = {"يومين": 2 * _DAY, "يومان": 2 * _DAY, "اسبوعين": 2 * _WEEK, "شهرين": 2 * _MONTH}
# A number as people write an amount of days: "45", "1.5", "1,5", "١٫٥". More than two
# decimals ("1.000") is a thousands separator or a date, never a duration we should guess.
_AMOUNT = re.compile(r"^\d+(?:[.,\u066b]\d{1,2})?$")
# Every run of digits, with the separators inside it: "15.03.2027" is one run, not 15.03.
_NUMBERS = re.compile(r"\d+(?:[.,/\-\u066b:]\d+)*")
# The words between a number and its unit: Romanian writes "21 de zile" from twenty on.
_CONNECTORS = frozenset({"de"})
_WORD = re.compile(r"[^\W\d_]+")


def duration_days(value: str) -> float | None:
    """The days a follow-up value asks for, within MIN_ and MAX_FOLLOW_UP_DAYS; else None.

    One number and its unit ("6 weeks", "in 21 de zile", "nach 3 Monaten", "بعد 45 يوما"),
    or a whole number alone, which means days ("45"). Anything else — a date, two numbers,
    a number with a word that is no unit ("15 March"), a range ("4-6 weeks") — is no duration:
    None, so the caller can say so rather than act on a number the writer did not mean.
    """
    text = fold_written(value).strip()
    numbers = _NUMBERS.findall(text)
    if not numbers:
        words = _WORD.findall(text)
        # "شهرين", "بعد أسبوعين": the Arabic dual says two of a unit in one word.
        duals = [_DUALS[w] for w in words if w in _DUALS]
        return _within(duals[0]) if len(duals) == 1 else None
    if len(numbers) != 1 or not _AMOUNT.match(numbers[0]):
        return None
    number = numbers[0]
    before, _, rest = text.partition(number)
    if before.rstrip().endswith(("-", "\u2212")):
        return None  # "-5 days": a sign, not a dash before a number
    amount = float(number.replace(",", ".").replace("\u066b", "."))
    after = [w for w in _WORD.findall(rest) if w not in _CONNECTORS]
    if after and after[0] in _UNITS:
        return _within(amount * _UNITS[after[0]])
    # A number alone means days, as the configuration counts them; a fraction or a word
    # around it ("March 15", "15.03") is too likely a date to be read as days.
    if text == number and number.isdigit():
        return _within(amount)
    return None


def _within(days: float) -> float | None:
    return days if MIN_FOLLOW_UP_DAYS <= days <= MAX_FOLLOW_UP_DAYS else None
