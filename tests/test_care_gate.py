"""The CARE gate: each reason a request is not a referral, all of them at once."""

from __future__ import annotations

import pytest

from service.model import Problem
from service.reading.request import parse_message, parse_request
from service.referral.gate import care_gate
from tests.conftest import REFERRER, fixture_bytes

DOMAIN = "intro.example.org"


def findings_of(name: str):
    return care_gate(parse_request(parse_message(fixture_bytes(name))), REFERRER, DOMAIN)


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
    assert [(f.problem, f.role) for f in care_gate(draft, REFERRER, DOMAIN)] == [
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
    assert [(f.problem, f.given) for f in care_gate(draft, REFERRER, DOMAIN)] == [
        (Problem.NEED_TOO_SHORT, need.strip())
    ]


def test_three_words_are_a_need():
    draft = parse_request(
        parse_message(
            b"From: ada@referrer.example\n\nProvider: jane@acme.example\n"
            b"Prospect: bob@bakery.example\nNeed: quarterly VAT returns\n"
        )
    )
    assert care_gate(draft, REFERRER, DOMAIN) == []


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
    assert [(f.problem, f.given) for f in care_gate(draft, REFERRER, DOMAIN)] == [
        (Problem.INVALID_FOLLOW_UP, given)
    ]


def test_no_follow_up_line_is_no_problem():
    draft = parse_request(
        parse_message(
            b"From: ada@referrer.example\n\nProvider: jane@acme.example\n"
            b"Prospect: bob@bakery.example\nNeed: quarterly VAT returns\n"
        )
    )
    assert draft.follow_up == "" and care_gate(draft, REFERRER, DOMAIN) == []


@pytest.mark.parametrize(
    ("provider", "role"),
    [
        pytest.param(
            "Provider: Intro <refer@intro.example.org>", "provider", id="referral-address"
        ),
        pytest.param("Provider: refer+jane@intro.example.org", "provider", id="plus-tag"),
        pytest.param("Provider: REFER@Intro.Example.Org", "provider", id="other-case"),
        pytest.param("Provider: hello@intro.example.org", "provider", id="any-local-part"),
    ],
)
def test_an_address_of_the_service_itself_is_no_party(provider, role):
    draft = parse_request(
        parse_message(
            f"From: ada@referrer.example\n\n{provider}\nProspect: bob@bakery.example\n"
            "Need: quarterly VAT returns\n".encode()
        )
    )
    [finding] = care_gate(draft, REFERRER, DOMAIN)
    assert (finding.problem, finding.role) == (Problem.PARTY_IS_SERVICE, role)
    assert finding.given.endswith("@intro.example.org")


def test_a_subdomain_or_a_lookalike_of_ours_is_someone_else():
    draft = parse_request(
        parse_message(
            b"From: ada@referrer.example\n\nProvider: jane@mail.intro.example.org\n"
            b"Prospect: bob@intro.example.org.evil.example\nNeed: quarterly VAT returns\n"
        )
    )
    assert care_gate(draft, REFERRER, DOMAIN) == []
