"""Every CARE-gate refusal, read where the referrer reads it: the one reply in the outbox."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest

from service.model import Problem
from service.reading import languages
from service.reading.request import parse_message, parse_request
from store import queries
from store.records import OutboxItem
from tests.conftest import REFERRER, eventually, fixture_bytes, wire_fixture
from tests.helpers import NOW, arrive, outcome, parse, send

PROBLEMS_HEAD = "because the request is missing something:"
PROBLEMS_END = "A good referral carries:"
SUGGESTIONS_HEAD = "What would make it even better, next time:"

NO_NEED = "What is it about? Add a Need line with the exact product, service or reason for contact."
MISSING_PROVIDER = "Who is the person who can help (Provider)? Add their name and email address."
MISSING_PROSPECT = "Who is the person who needs help (Prospect)? Add their name and email address."


def queued() -> list[tuple[OutboxItem, EmailMessage]]:
    """Everything waiting in the outbox, with each mail parsed as its recipient will."""
    items = queries.claim_outbox(NOW, NOW, 100)
    return [(i, email.message_from_bytes(i.raw, policy=email.policy.default)) for i in items]


def plain_text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def bullets_between(text: str, head: str, end: str) -> list[str]:
    """The `  - …` lines of one section of a mail, in order."""
    assert head in text, text
    section = text.split(head, 1)[1].split(end, 1)[0]
    return [line.strip()[2:] for line in section.splitlines() if line.strip().startswith("- ")]


def in_reply_to(message: EmailMessage) -> str:
    """The header's msg-id; a fold before it ("In-Reply-To:\\n <…>") is not part of it."""
    return str(message["In-Reply-To"]).strip()


def message_id_of(fixture: str) -> str:
    return " ".join(str(email.message_from_bytes(fixture_bytes(fixture))["Message-ID"]).split())


def subject_of(fixture: str) -> str:
    message = email.message_from_bytes(fixture_bytes(fixture), policy=email.policy.default)
    return str(message["Subject"]).strip()


# ------------------------------------------------------------------ one problem, one reply


REFUSALS = [
    pytest.param("request_refused_no_need.eml", "no_need", NO_NEED, id="no_need"),
    pytest.param(
        "request_refused_need_too_short.eml",
        "need_too_short",
        '"Übersetzungen nötig" is too short to judge by: say exactly which product or '
        "service, or why they should talk.",
        id="need_too_short",
    ),
    pytest.param(
        "request_refused_missing_provider.eml",
        "missing_party",
        MISSING_PROVIDER,
        id="missing_party-provider",
    ),
    pytest.param(
        "request_refused_missing_prospect.eml",
        "missing_party",
        MISSING_PROSPECT,
        id="missing_party-prospect",
    ),
    pytest.param(
        "request_refused_invalid_address.eml",
        "invalid_address",
        "We could not find one valid email address for the person who needs help "
        '(Prospect) in "Marc Dubois (marc.dubois@gmail,com)".',
        id="invalid_address",
    ),
    pytest.param(
        "request_refused_same_person.eml",
        "same_person",
        "Both lines name the same address (karim@mansour-design.example); an introduction "
        "needs two people.",
        id="same_person",
    ),
    pytest.param(
        "request_refused_party_is_referrer.eml",
        "party_is_referrer",
        "The person who needs help (Prospect) is you (ada@referrer.example); we introduce "
        "two other people to each other.",
        id="party_is_referrer",
    ),
    pytest.param(
        "request_refused_party_is_service.eml",
        "party_is_service",
        "The person who needs help (Prospect) is our own address (refer+bob@intro.example.org); "
        "nobody here could answer their question. Name the person's own address.",
        id="party_is_service",
    ),
    pytest.param(
        "request_refused_invalid_follow_up.eml",
        "invalid_follow_up",
        'We could not read "15.03.2027" as a follow-up delay: write a number of days, weeks '
        "or months, between 1 day and 2 years (Follow up: 6 weeks), or leave the line out "
        "for our usual delay.",
        id="invalid_follow_up",
    ),
]


@pytest.mark.parametrize(("fixture", "note", "sentence"), REFUSALS)
def test_a_refused_request_gets_one_reply_that_says_why(ctx, fixture, note, sentence):
    assert outcome(ctx, arrive(fixture)) == ("rejected", note)
    assert queries.referral_counts() == {}
    [(item, reply)] = queued()
    assert item.purpose == "request_refused"
    assert item.recipients == (REFERRER,)
    assert [a.addr_spec for a in reply["To"].addresses] == [REFERRER]
    assert in_reply_to(reply) == message_id_of(fixture)
    text = plain_text(reply)
    language = reply["Content-Language"]
    # The referrer is answered in the language their request is written in.
    assert language == request_language(fixture)
    if language == "en":
        assert bullets_between(text, PROBLEMS_HEAD, PROBLEMS_END) == [sentence]
        assert "Send it again to refer@intro.example.org" in text
    else:
        # The same finding in their words; what they wrote is quoted as they wrote it.
        flat = " ".join(text.split())
        assert sentence not in flat
        for quoted in re.findall(r'"([^"]+)"|\(([^()]*@[^()]*)\)', sentence):
            assert "".join(quoted) in flat
        assert "refer@intro.example.org" in text


def request_language(fixture: str) -> str:
    draft = parse_request(parse_message(fixture_bytes(fixture)))
    return languages.request_language(draft.labels, draft.text, "en")


def test_every_problem_the_gate_knows_has_its_refusal_above():
    assert {p.values[1] for p in REFUSALS} == {problem.value for problem in Problem}


@pytest.mark.parametrize("fixture", [pytest.param(p.values[0], id=p.id) for p in REFUSALS])
def test_the_reply_subject_quotes_the_request_subject_as_written(ctx, fixture):
    outcome(ctx, arrive(fixture))
    [(_, reply)] = queued()
    subject = str(reply["Subject"])
    assert subject_of(fixture) in subject
    if reply["Content-Language"] == "en":
        assert subject == (
            f"Not sent yet: your introduction request needs a little more "
            f"(Re: {subject_of(fixture)})"
        )


# ------------------------------------------------------------------ several problems, one reply


def test_several_problems_are_all_listed_in_the_one_reply(ctx):
    fixture = "request_refused_several_problems.eml"
    assert outcome(ctx, arrive(fixture)) == (
        "rejected",
        "invalid_address, missing_party, need_too_short",
    )
    assert queries.referral_counts() == {}
    [(item, reply)] = queued()
    assert (item.purpose, item.recipients) == ("request_refused", (REFERRER,))
    assert in_reply_to(reply) == "<a7c2e91b-4f3d-4b8a-9c6e-0d1f2a3b4c5d@referrer.example>"
    # Written in Indonesian, answered in Indonesian: every problem, each value as written.
    assert reply["Content-Language"] == "id"
    text = " ".join(plain_text(reply).split())
    assert '"desain logo"' in text
    assert '"Rini Wulandari, 0812-3344-5566"' in text
    assert "(Calon klien)" in text


# ------------------------------------------------------------------ accepted, but could be better


@pytest.mark.parametrize(
    ("fixture", "wanted"),
    [
        pytest.param(
            "request_k9_mail_minimal_fields.eml",
            [
                "how each prefers to be contacted (email, phone, ...)",
                "the best time to reach each of them",
                "how to book an appointment with the provider",
                "a budget, if there is one",
            ],
            id="nothing-but-people-and-need",
        ),
        pytest.param(
            "request_gmail_multipart_quoted_printable.eml",
            [
                "how each prefers to be contacted (email, phone, ...)",
                "the best time to reach each of them",
                "how to book an appointment with the provider",
            ],
            id="budget-and-provider-preference-only",
        ),
    ],
)
def test_an_accepted_referral_gets_a_receipt_naming_what_would_make_it_better(ctx, fixture, wanted):
    state, ref = outcome(ctx, arrive(fixture))
    assert state == "processed"
    mails = queued()
    assert sorted(i.purpose for i, _ in mails) == ["consent_request", "consent_request", "receipt"]
    [(item, receipt)] = [(i, m) for i, m in mails if i.purpose == "receipt"]
    assert item.recipients == (REFERRER,)
    assert in_reply_to(receipt) == message_id_of(fixture)
    assert ref in str(receipt["Subject"])
    text = plain_text(receipt)
    assert bullets_between(text, SUGGESTIONS_HEAD, "Your reference:") == wanted


def test_a_complete_referral_gets_a_receipt_without_suggestions(ctx):
    state, _ = outcome(ctx, arrive("request_thunderbird_labelled_lines.eml"))
    assert state == "processed"
    [receipt] = [m for i, m in queued() if i.purpose == "receipt"]
    text = plain_text(receipt)
    assert "bookkeeping for a 5-person bakery" in text
    assert SUGGESTIONS_HEAD not in text


def test_a_request_naming_our_own_address_is_refused_over_smtp_and_asks_nobody(running, sink):
    # Through the real listener and outbox: the referrer's one reply is all that goes out,
    # and no question is mailed to ourselves, where nobody could answer it.
    send(running.service.smtp_port, wire_fixture("request_refused_party_is_service.eml"))
    [reply] = sink.wait_for(1)
    eventually(lambda: queries.outbox_counts() == {"sent": 1}, "the outbox to settle")
    assert reply.rcpt_tos == (REFERRER,)
    text = " ".join(plain_text(parse(reply)).split())
    assert "is our own address (refer+bob@intro.example.org)" in text
    assert queries.referral_counts() == {}
    assert len(sink.deliveries) == 1
