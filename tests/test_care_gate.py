"""The CARE gate: each reason a request is not a referral, all of them at once."""

from __future__ import annotations

import pytest

from service.model import Problem
from service.reading.request import parse_message, parse_request
from service.referral.gate import care_gate
from tests.conftest import REFERRER, fixture_bytes


def findings_of(name: str):
    return care_gate(parse_request(parse_message(fixture_bytes(name))), REFERRER)


def test_a_complete_request_passes():
    assert findings_of("request_thunderbird_labelled_lines.eml") == []


def test_missing_need_is_named():
    assert [f.problem for f in findings_of("request_outlook_windows1252_without_need.eml")] == [
        Problem.NO_NEED
    ]


def test_the_same_person_on_both_sides_is_not_an_introduction():
    findings = findings_of("request_same_person_twice.eml")
    assert [(f.problem, f.given) for f in findings] == [(Problem.SAME_PERSON, "jane@acme.example")]


def test_every_problem_is_reported_together():
    findings = findings_of("request_provider_is_referrer_and_bad_prospect.eml")
    assert [(f.problem, f.role) for f in findings] == [
        (Problem.PARTY_IS_REFERRER, "provider"),
        (Problem.INVALID_ADDRESS, "prospect"),
    ]
    assert findings[1].given == "Bob Smith <bob at bakery dot example>"


def test_an_empty_request_lacks_need_and_both_parties():
    draft = parse_request(parse_message(b"From: ada@referrer.example\n\nHello!\n"))
    assert [(f.problem, f.role) for f in care_gate(draft, REFERRER)] == [
        (Problem.NO_NEED, None),
        (Problem.MISSING_PARTY, "provider"),
        (Problem.MISSING_PARTY, "prospect"),
    ]


@pytest.mark.parametrize("need", ["accounting", "help needed", "  tax  "])
def test_a_need_of_a_word_or_two_is_not_enough(need):
    draft = parse_request(
        parse_message(
            f"From: ada@referrer.example\n\nProvider: jane@acme.example\n"
            f"Prospect: bob@bakery.example\nNeed: {need}\n".encode()
        )
    )
    assert [(f.problem, f.given) for f in care_gate(draft, REFERRER)] == [
        (Problem.NEED_TOO_SHORT, need.strip())
    ]


def test_three_words_are_a_need():
    draft = parse_request(
        parse_message(
            b"From: ada@referrer.example\n\nProvider: jane@acme.example\n"
            b"Prospect: bob@bakery.example\nNeed: quarterly VAT returns\n"
        )
    )
    assert care_gate(draft, REFERRER) == []


@pytest.mark.parametrize(
    "line", ["Follow up: 15.03.2027", "Nachfassen: 20270315", "Suivi: bientôt"]
)
def test_a_follow_up_line_that_says_no_duration_is_named_as_written(line):
    draft = parse_request(
        parse_message(
            "From: ada@referrer.example\nContent-Type: text/plain; charset=utf-8\n\n"
            "Provider: jane@acme.example\nProspect: bob@bakery.example\n"
            f"Need: quarterly VAT returns\n{line}\n".encode()
        )
    )
    given = line.split(":", 1)[1].strip()
    assert [(f.problem, f.given) for f in care_gate(draft, REFERRER)] == [
        (Problem.INVALID_FOLLOW_UP, given)
    ]


def test_no_follow_up_line_is_no_problem():
    draft = parse_request(
        parse_message(
            b"From: ada@referrer.example\n\nProvider: jane@acme.example\n"
            b"Prospect: bob@bakery.example\nNeed: quarterly VAT returns\n"
        )
    )
    assert draft.follow_up == "" and care_gate(draft, REFERRER) == []
