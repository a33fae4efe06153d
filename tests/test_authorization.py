"""Who may refer: allowed addresses, one author, no stand-ins, and our own MTA's DKIM/SPF word."""

from __future__ import annotations

import pytest

from service.intake.receiving import headers_of
from service.reading.authorization import Verdict, aligned, judge
from service.settings import SecuritySettings
from tests.conftest import REFERRER, fixture_bytes

ALLOWED = ("ada@referrer.example", "*@partners.example")
OPEN = SecuritySettings(allowed_referrers=ALLOWED)
STRICT = SecuritySettings(allowed_referrers=ALLOWED, trusted_authserv_id="mx.intro.example.org")


def verdict(name: str, security=OPEN, envelope: str = REFERRER):
    return judge(envelope, headers_of(fixture_bytes(name)), security)


def test_an_allowed_author_is_the_referrer():
    result = verdict("request_thunderbird_labelled_lines.eml")
    assert result.refusal is None
    assert (result.referrer.name, result.referrer.address) == ("Ada Lovelace", REFERRER)


NOT_ALLOWED = "the From address is not allowed to send requests here"
NOT_ONE_ADDRESS = "the From header must name exactly one address, and nothing else"


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("request_sent_on_behalf_by_assistant.eml", NOT_ALLOWED),
        ("request_from_stranger.eml", NOT_ALLOWED),
        ("request_from_a_group.eml", NOT_ONE_ADDRESS),
        ("request_with_two_authors.eml", NOT_ONE_ADDRESS),
        ("request_from_address_as_display_name.eml", NOT_ONE_ADDRESS),
        ("request_from_with_unclosed_angle.eml", NOT_ONE_ADDRESS),
        ("request_with_two_from_headers.eml", "a request needs exactly one From header, not 2"),
    ],
    ids=[
        "sender-differs",
        "stranger",
        "group",
        "two-authors",
        "address-as-display-name",
        "unclosed-angle",
        "two-from-headers",
    ],
)
def test_messages_that_could_speak_for_someone_else_never_count(name, refusal):
    result = verdict(name)
    assert result.referrer is None
    assert result.refusal == refusal


def test_a_bounce_is_judged_without_reading_its_from():
    """Bounces skip the sender check, so their From is never parsed here: any shape passes."""
    headers = headers_of(b"From: " + b"=?utf-8?q?a?= " * 5000 + b"<x@y.test>\n\nx\n")
    assert judge("", headers, OPEN) == Verdict(None, None)


def test_a_stranger_envelope_is_refused_before_looking_at_headers():
    result = verdict("request_thunderbird_labelled_lines.eml", envelope="eve@elsewhere.example")
    assert result.refusal == "<eve@elsewhere.example> is not allowed to send requests here"


def test_a_bounce_is_neither_a_request_nor_refused():
    result = verdict("dsn_postfix_user_unknown.eml", envelope="")
    assert (result.referrer, result.refusal) == (None, None)


def test_without_a_trusted_mta_authentication_results_are_not_consulted():
    assert verdict("request_forged_authentication_results_below_ours.eml").refusal is None


@pytest.mark.parametrize(
    ("name", "passes"),
    [
        ("request_authenticated_dkim_pass_aligned.eml", True),
        ("request_authenticated_only_by_a_bulk_sender.eml", False),
        ("request_forged_authentication_results_below_ours.eml", False),
        ("request_authenticated_by_another_mta.eml", False),
        ("request_thunderbird_labelled_lines.eml", False),
    ],
    ids=["dkim-subdomain-aligned", "unaligned-esp", "forged-below", "other-mta", "no-results"],
)
def test_with_a_trusted_mta_the_from_domain_must_pass_with_alignment(name, passes):
    result = verdict(name, STRICT)
    assert (result.refusal is None) is passes
    if not passes:
        assert result.refusal == "the From domain did not pass DKIM or SPF"


@pytest.mark.parametrize(
    ("signer", "author", "expected"),
    [
        ("referrer.example", "referrer.example", True),
        ("mail.referrer.example", "referrer.example", True),
        ("referrer.example", "eu.referrer.example", True),
        ("esp.example", "referrer.example", False),
        ("example.co.uk", "other.co.uk", False),
        ("mail.example.co.uk", "example.co.uk", True),
        ("", "referrer.example", False),
    ],
)
def test_relaxed_alignment_compares_organizational_domains(signer, author, expected):
    assert aligned(signer, author) is expected
