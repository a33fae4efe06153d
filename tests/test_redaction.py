"""Redaction as a property: whatever the referrer wrote, the other person does not show."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.reading.text import fold
from service.writing import identifiers, redaction
from service.writing.redaction import Person, redact

LETTERS = "abcdefghijklmnopqrstuvwxyzäöüéèçñøåłśžßșțâîăğı"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
NEUTRAL = [
    "needs",
    "bookkeeping",
    "before",
    "March",
    "for",
    "a",
    "small",
    "team",
    "400 EUR",
    "2.000.000 EUR",
    "in 2027",
    "asap",
    "5-person",
]

part = st.one_of(
    st.text(alphabet=LETTERS, min_size=3, max_size=9).map(str.capitalize),
    st.text(alphabet=ARABIC, min_size=3, max_size=7),
)


@st.composite
def people(draw):
    first, last = draw(part), draw(part)
    local = draw(st.sampled_from([f"{first}.{last}", first, f"{first[0]}{last}", "info"]))
    local = fold(local).encode("ascii", "ignore").decode() or "info"
    domain = draw(st.text(alphabet="bcdfghjkmnpqrstvwxz", min_size=4, max_size=8)) + ".example"
    country = draw(st.integers(10, 99))
    area = draw(st.integers(20, 899))
    number = draw(st.integers(1_000_000, 99_999_999))
    return Person(
        name=f"{first} {last}",
        email=f"{local}@{domain}",
        phone=f"+{country} {area} {number}",
        booking=f"https://cal.example/{fold(first).encode('ascii', 'ignore').decode()}x",
    )


def mentions(person: Person) -> st.SearchStrategy[str]:
    """Every way a referrer or a signature writes someone into a text."""
    first, last = person.name.split(" ")
    digits = re.sub(r"\D", "", person.phone)
    country, area, number = person.phone[1:].split(" ")
    return st.sampled_from(
        [
            person.name,
            first,
            last,
            first.upper(),
            last.lower(),
            f"{first}'s",
            f"{last}’s",
            fold(person.name),
            f"Mr {last}",
            f"{first}-{last}",
            person.email,
            person.email.upper(),
            f"mailto:{person.email}",
            f"<{person.email}>",
            person.phone,
            f"+{country} ({area}) {number}",
            f"0{area} {number}",
            f"00{country}-{area}-{number}",
            f"+{digits}",
            f"0{area}/{number[:3]} {number[3:]}",
            person.booking,
            f"{person.booking}.",
            f"https://www.linkedin.com/in/{fold(first)}-{fold(last)}",
            f"https://{person.email.split('@')[1]}/about",
            f"www.{person.email.split('@')[1]}",
            person.email.split("@")[1],
        ]
    )


@st.composite
def texts(draw):
    person = draw(people())
    pieces = draw(st.lists(st.one_of(st.sampled_from(NEUTRAL), mentions(person)), max_size=14))
    separators = draw(
        st.lists(
            st.sampled_from([" ", ", ", ". ", "\n", " (", ") "]),
            min_size=len(pieces),
            max_size=len(pieces),
        )
    )
    return person, "".join(p + s for p, s in zip(pieces, separators, strict=True))


def traces_left(text: str, person: Person) -> list[str]:
    """What of `person` can still be read in `text`, judged independently of the redactor."""
    left = []
    words = {fold(w) for w in re.findall(r"\w+", text)}
    for name_part in person.name.split(" "):
        if fold(name_part) in words:
            left.append(name_part)
    folded = fold(text)
    for whole in (person.email, person.email.split("@")[1], person.booking.split("://")[1]):
        if fold(whole) in folded:
            left.append(whole)
    tail = re.sub(r"\D", "", person.phone)[-7:]
    if tail in re.sub(r"\D", "", text):
        left.append(person.phone)
    return left


@settings(max_examples=400, deadline=None)
@given(texts())
def test_no_trace_of_the_person_survives(case):
    person, text = case
    assert traces_left(redact(text, person), person) == []


@settings(max_examples=200, deadline=None)
@given(texts())
def test_what_is_not_about_the_person_stays(case):
    person, text = case
    kept = redact(text, person)
    for word in ("bookkeeping", "March", "EUR"):
        if word in text and fold(word) not in {fold(w) for w in person.name.split()}:
            assert word in kept


def test_a_typical_need_reads_well_after_redaction():
    bob = Person(
        "Bob Smith", "bob.smith@bakery.example", "+49 30 1234567", "https://cal.example/bob"
    )
    need = (
        "Bob Smith needs bookkeeping for his 5-person bakery before March; "
        "call Bob on 030 1234567 or see https://bakery.example/about."
    )
    assert redact(need, bob) == (
        "[name] needs bookkeeping for his 5-person bakery before March; "
        "call [name] on [phone] or see [link]."
    )


def test_numbers_that_are_not_phones_stay():
    text = "Budget: 2.000.000 EUR, 12 months, invoice 2026-11-22, 5 people"
    assert redact(text, Person("Bob Smith", "bob@bakery.example", "+49 30 1234567")) == text


@pytest.mark.parametrize(
    "link",
    [
        "https://calendly.com/xk3j9",
        "https://www.linkedin.com/in/a1b2c3",
        "www.shop-4711.example/about",
        "calendly.com/xk3j9",
        "http://wa.me/4930123",
    ],
)
def test_every_link_goes_even_one_that_does_not_spell_the_person(link):
    """A booking page under a made-up slug identifies someone as well as their name does."""
    bob = Person("Bob Smith", "bob@bakery.example")
    assert redact(f"Book me at {link}. Thanks", bob) == "Book me at [link]. Thanks"


# Redaction looks for a pattern's mark (a slash, an @, a digit, the word itself) before it
# runs the pattern. A look that says "absent" where the pattern would match lets a trace
# through, so each look is held to its pattern over texts of every kind.
anything = st.one_of(
    texts().map(lambda case: case[1]),
    st.text(max_size=60),
    st.text(alphabet="aAwW./:@0123456789 -+ſKkİı\u212a", max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(anything)
def test_each_look_finds_what_its_pattern_would(text):
    if redaction._URL.search(text):
        assert redaction._LINK_MARK.search(text)
    if redaction._EMAIL.search(text):
        assert "@" in text
    if redaction._DIGIT_RUN.search(text) or identifiers.NUMBERS.search(text):
        assert redaction._DIGIT.search(text)
    if identifiers._HOST.search(text):
        assert "." in text
    if redaction._REPEATED_NAME.search(text):
        assert redaction.NAME in text


@settings(max_examples=400, deadline=None)
@given(anything, st.one_of(st.text(min_size=1, max_size=6), st.sampled_from(["kelvin", "sam"])))
def test_a_word_the_case_blind_patterns_find_is_never_ruled_out(text, word):
    pattern = re.compile(re.escape(word), re.IGNORECASE)
    if pattern.search(text):
        assert redaction.may_hold(text, word)
    for found in redaction._WORD.findall(text):
        if fold(found) == fold(word):
            assert redaction.may_hold(text, fold(word))
