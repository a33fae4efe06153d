"""Redaction of anyone's site and phone number by shape, as properties: every host name and
phone number written the common ways goes, wherever it stands; the numbers and dotted words
of ordinary text (amounts, dates, years, counts, versions, abbreviations) stay."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.writing import identifiers
from service.writing.redaction import LINK, PHONE, Person, redact

NOBODY = Person()
digit = st.integers(0, 9).map(str)


def digits(n: int) -> st.SearchStrategy[str]:
    return st.lists(digit, min_size=n, max_size=n).map("".join)


area = st.integers(200, 989).map(str)  # North American area and exchange codes: 2-9, then two
line = digits(4)


@st.composite
def phone_numbers(draw) -> str:
    """A phone number as people write one, nationally or internationally."""
    a, b, c = draw(area), draw(area), draw(line)
    pairs = " ".join(draw(digits(2)) for _ in range(4))
    forms = [
        f"({a}) {b}-{c}",
        f"{a}-{b}-{c}",
        f"{a}.{b}.{c}",
        f"{a} {b} {c}",
        f"1-{a}-{b}-{c}",
        f"+1 {a} {b} {c}",
        f"+1 ({a}) {b}-{c}",
        f"0{draw(st.integers(10, 999))} {draw(digits(7))}",  # Germany, national
        f"0{draw(st.integers(10, 999))}/{draw(digits(3))} {draw(digits(4))}",
        f"+{draw(st.integers(20, 99))} {draw(st.integers(20, 899))} {draw(digits(7))}",
        f"+49 (0){draw(st.integers(20, 99))} {draw(digits(7))}",
        f"0{draw(st.integers(1, 9))} {pairs}",  # France
        f"0{draw(st.integers(1, 9))}.{pairs.replace(' ', '.')}",
        pairs,  # Denmark, Norway: eight digits in pairs
        f"{draw(digits(3))} {draw(digits(2))} {draw(digits(3))}",
        f"00{draw(st.integers(20, 99))}-{draw(digits(3))}-{draw(digits(6))}",
        f"{a}{b}{c}",  # ten digits, unbroken
    ]
    return draw(st.sampled_from(forms))


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=10).filter(
    lambda s: s[0].isalpha()
)


@st.composite
def host_names(draw) -> str:
    """A site without a scheme: a name, perhaps a subdomain, and a TLD in use."""
    name = draw(label) + draw(st.sampled_from(["", "-" + draw(label)]))
    sub = draw(st.sampled_from(["", draw(label) + "."]))
    tld = draw(st.sampled_from(["de", "com", "co.uk", "fr", "ro", "co.id", "org", "io", "ae"]))
    host = f"{sub}{name}.{tld}"
    return host.upper() if draw(st.booleans()) and draw(st.booleans()) else host


# What a need says besides: words, and the numbers and dotted words of ordinary text.
ORDINARY = [
    "bookkeeping for a bakery",
    "in 2026",
    "by 2027",
    "1200 EUR",
    "€ 15,000",
    "1 200 000 EUR",
    "2.000.000 EUR",
    "12 000 EUR",
    "$ 1,500.50",
    "before 15.03.2027",
    "on 01.03.2027",
    "from 2026-11-22",
    "3/15/2027",
    "3 people",
    "a 5-person team",
    "10997 Berlin",
    "75001 Paris",
    "94107-1234",
    "Python 3.11",
    "version 10.15.7",
    "2.5 hours",
    "0.75 FTE",
    "at 10.00",
    "10.00-17.00 Uhr",
    "9:00-17:00",
    "e.g.",
    "i.e.",
    "z.B.",
    "u.a.",
    "Dr. Meier",
    "etc.",
    "done.Next",
    "fertig.Es",
    "GmbH & Co.KG",
    "ASP.NET",
    "p.m.",
    "U.S.",
    "ISO 9001",
    "20%",
    "12 months",
]
ordinary = st.sampled_from(ORDINARY)
separator = st.sampled_from([" ", ", ", ". ", "\n", " (", ") ", "; "])
# Ordinary text puts a word or a mark between two figures; a number a mere space joins to
# another is read with it, and may take its neighbour along as a phone number.
apart = st.sampled_from([" and ", ", ", ". ", "\n", " (", ") ", "; ", " or "])


def joined(pieces: list[str], separators: list[str]) -> str:
    return "".join(p + s for p, s in zip(pieces, separators, strict=False))


@st.composite
def texts_with(draw, secret: st.SearchStrategy[str]) -> tuple[str, list[str]]:
    """Ordinary text with some secrets in it; the text and the secrets."""
    pieces = draw(st.lists(st.one_of(ordinary, secret.map(lambda s: "\0" + s)), max_size=10))
    pieces.insert(draw(st.integers(0, len(pieces))), "\0" + draw(secret))
    separators = draw(st.lists(separator, min_size=len(pieces), max_size=len(pieces)))
    secrets = [p[1:] for p in pieces if p.startswith("\0")]
    return joined([p.lstrip("\0") for p in pieces], separators), secrets


def digit_runs(text: str) -> list[str]:
    """The digits of each run of digits and phone separators, read independently of redaction,
    besides the ordinary figures left whole (whose digits may spell a phone's by chance)."""
    for figure in sorted(ORDINARY, key=len, reverse=True):
        text = text.replace(figure, "|")
    return [re.sub(r"\D", "", run) for run in re.findall(r"[\d()+./\- ]+", text)]


@settings(max_examples=500, deadline=None)
@given(texts_with(phone_numbers()))
def test_every_phone_number_goes_wherever_it_stands(case):
    text, numbers = case
    kept = redact(text, NOBODY)
    for number in numbers:
        tail = re.sub(r"\D", "", number)[-7:]
        assert not any(tail in run for run in digit_runs(kept)), (number, kept)
    assert PHONE in kept


@settings(max_examples=500, deadline=None)
@given(texts_with(host_names()))
def test_every_host_name_goes_wherever_it_stands(case):
    text, found = case
    kept = redact(text, NOBODY)
    for host in found:
        # Not the whole, nor its last two labels (a registrable name) left by a partial match.
        assert ".".join(host.split(".")[-2:]).lower() not in kept.lower(), kept
    assert LINK in kept


@settings(max_examples=500, deadline=None)
@given(st.lists(ordinary, max_size=12), st.lists(apart, min_size=12, max_size=12))
def test_ordinary_numbers_and_dotted_words_stay(pieces, separators):
    text = joined(pieces, separators)
    assert redact(text, NOBODY) == text


@pytest.mark.parametrize(
    ("need", "shown"),
    [
        (
            "website for backstube-kreuzberg.de, call (415) 555-0132 or 555 867 5309.",
            "website for [link], call [phone] or [phone].",
        ),
        ("see sub.name.co.uk.", "see [link]."),
        ("Tel.: 867-5309, mobile 1234 5678", "Tel.: [phone], mobile [phone]"),
        ("since 2019 030 1234567", "since 2019 [phone]"),
        ("on 15.03.2027 10.00 Uhr", "on 15.03.2027 10.00 Uhr"),
        ("at 10.00 555 867 5309", "at [phone]"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN DE89 [phone]"),
        ("612 345 678 EUR in 2027", "612 345 678 EUR in 2027"),
    ],
    ids=[
        "the review's need",
        "subdomain at a sentence end",
        "announced local numbers",
        "a year before a number",
        "a date and a time",
        "a time before a number",
        "an account number",
        "an amount in thousands",
    ],
)
def test_where_the_line_falls(need, shown):
    assert redact(need, NOBODY) == shown


def test_a_long_run_of_numbers_costs_looks_in_proportion_to_its_length(monkeypatch):
    # A need of up to 2,000 characters may be one run of a thousand one-digit groups; every
    # letter before consent redacts it. Counted in looks, not seconds: each group is looked
    # at with at most the next fourteen, however long the run.
    looks = 0
    real = identifiers.is_phone

    def counted(run: str, announced: bool = False) -> bool:
        nonlocal looks
        looks += 1
        return real(run, announced)

    monkeypatch.setattr(identifiers, "is_phone", counted)
    groups = 1000
    need = " ".join(str(n % 10) for n in range(groups)) + " 555 867 5309"
    assert redact(need, NOBODY) == PHONE
    assert looks <= 15 * (groups + 3)
