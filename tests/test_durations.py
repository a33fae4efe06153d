"""The "Follow up:" line -> days: a duration with its unit in six languages, never a date."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.reading.durations import MAX_FOLLOW_UP_DAYS, MIN_FOLLOW_UP_DAYS, duration_days
from service.reading.request import parse_message, parse_request

READ = [
    ("45 days", 45),
    ("45", 45),
    ("45d", 45),
    ("1 day", 1),
    ("6 weeks", 42),
    ("in 6 weeks", 42),
    ("3 months", 90),
    ("1.5 weeks", 10.5),
    ("730 days", 730),
    ("24 months", 720),
    ("104 weeks", 728),
    ("*45 days*", 45),
    ("45 Tage", 45),
    ("in 6 Wochen", 42),
    ("nach 3 Monaten", 90),
    ("1,5 Wochen", 10.5),
    ("1 Monat", 30),
    ("30 jours", 30),
    ("6 semaines", 42),
    ("dans 3 mois", 90),
    ("21 de zile", 21),
    ("6 săptămâni", 42),
    ("6 saptamani", 42),
    ("3 luni", 90),
    ("45 hari", 45),
    ("2 minggu", 14),
    ("setelah 3 bulan", 90),
    ("45 يوما", 45),
    ("بعد ٤٥ يوماً", 45),
    ("10 أيام", 10),
    ("6 أسابيع", 42),
    ("3 أشهر", 90),
    ("٣ شهور", 90),
    ("١٫٥ أسبوع", 10.5),
    ("شهرين", 60),
    ("بعد أسبوعين", 14),
]

NOT_READ = [
    # Dates, as each of our languages writes them: never a number of days.
    "2027-03-15",
    "15.03.2027",
    "15/03/2027",
    "03/15/2027",
    "15.03.",
    "15.03",
    "15. März",
    "15 March 2027",
    "March 15",
    "15 mars",
    "20270315",
    "١٥/٠٣/٢٠٢٧",
    # Out of range.
    "0 days",
    "0.5 days",
    "731 days",
    "25 months",
    "2027",
    "-5 days",
    # No duration, or more than one.
    "",
    "soon",
    "a month",
    "4-6 weeks",
    "4 to 6 weeks",
    "45 business days",
    "1.000 Tage",
]


@pytest.mark.parametrize(("value", "days"), READ, ids=[v for v, _ in READ])
def test_a_duration_with_its_unit_is_read_in_days(value, days):
    assert duration_days(value) == days


@pytest.mark.parametrize("value", NOT_READ, ids=NOT_READ)
def test_what_is_no_duration_in_range_is_not_read(value):
    assert duration_days(value) is None


# Every unit as our languages spell it, with its length in days.
SPELLINGS = [
    *[(w, 1) for w in ("day", "days", "d", "Tag", "Tage", "Tagen", "jour", "jours", "zi")],
    *[(w, 1) for w in ("zile", "de zile", "hari", "يوم", "يوما", "يوماً", "أيام")],
    *[(w, 7) for w in ("week", "weeks", "wk", "Woche", "Wochen", "semaine", "semaines")],
    *[(w, 7) for w in ("săptămână", "săptămâni", "de săptămâni", "minggu", "pekan")],
    *[(w, 7) for w in ("أسبوع", "أسابيع")],
    *[(w, 30) for w in ("month", "months", "Monat", "Monate", "Monaten", "mois", "lună")],
    *[(w, 30) for w in ("luni", "de luni", "bulan", "شهر", "شهرا", "أشهر", "شهور")],
]
LEADS = ["", "in ", "after ", "nach ", "dans ", "după ", "setelah ", "بعد "]
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@st.composite
def durations(draw: st.DrawFn) -> tuple[str, int, int]:
    word, unit = draw(st.sampled_from(SPELLINGS))
    n = draw(st.integers(int(MIN_FOLLOW_UP_DAYS), int(MAX_FOLLOW_UP_DAYS) // unit))
    number = str(n).translate(ARABIC_DIGITS) if draw(st.booleans()) else str(n)
    cased = word.upper() if draw(st.booleans()) else word
    space = draw(st.sampled_from(["", " ", "  "])) if len(word) <= 2 else " "
    return f"{draw(st.sampled_from(LEADS))}{number}{space}{cased}", n, unit


@given(durations())
def test_any_number_in_range_with_any_unit_is_that_many_units(case):
    value, n, unit = case
    assert duration_days(value) == n * unit


MONTHS = ["March", "März", "mars", "martie", "Maret", "مارس", "Jan", "Dez"]


@st.composite
def dates(draw: st.DrawFn) -> str:
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    d, m, y = day.day, day.month, day.year
    forms = [
        day.isoformat(),
        f"{d}.{m}.{y}",
        f"{d:02}.{m:02}.{y}",
        f"{d}.{m}.{y % 100:02}",
        f"{d}/{m}/{y}",
        f"{m}/{d}/{y}",
        f"{d}-{m}-{y}",
        f"{y}{m:02}{d:02}",
        f"{d}.{m}.",
        f"{d:02}.{m:02}",
        f"{d}/{m}",
        f"{y}-{m:02}",
        f"{m}/{y}",
    ]
    month = draw(st.sampled_from(MONTHS))
    forms += [
        f"{d} {month} {y}",
        f"{month} {d}, {y}",
        f"{d}. {month}",
        f"{month} {d}",
        f"{d} {month}",
    ]
    form = draw(st.sampled_from(forms))
    lead = draw(st.sampled_from(["", "on ", "am ", "le ", "pe ", "pada ", "في "]))
    return lead + (form.translate(ARABIC_DIGITS) if draw(st.booleans()) else form)


@given(dates())
def test_no_date_is_ever_a_number_of_days(value):
    assert duration_days(value) is None


def request_with(line: str) -> bytes:
    return (
        "From: ada@referrer.example\nContent-Type: text/plain; charset=utf-8\n\n"
        "Provider: jane@acme.example\nProspect: bob@bakery.example\n"
        f"Need: quarterly VAT returns\n{line}\n"
    ).encode()


@pytest.mark.parametrize(
    ("line", "written", "days"),
    [
        ("Follow up: 6 weeks", "6 weeks", 42),
        ("Nachfassen: 3 Monate", "3 Monate", 90),
        ("Suivi : 15.03.2027", "15.03.2027", None),
        ("Urmărire: 21 de zile", "21 de zile", 21),
        ("Tindak lanjut: 2 minggu", "2 minggu", 14),
        ("المتابعة: 2027-03-15", "2027-03-15", None),
        ("Budget: 400 EUR", "", None),  # no follow-up line: no wish, the default applies
    ],
)
def test_the_request_keeps_the_line_as_written_beside_its_days(line, written, days):
    draft = parse_request(parse_message(request_with(line)))
    assert (draft.follow_up, draft.follow_up_days) == (written, days)
