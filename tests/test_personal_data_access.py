"""Access and consent evidence: `care-intro export ADDRESS` and `care-intro evidence REF`.

The answers come the ways people give them, over real sockets: one party presses Yes on the
page behind their link, the other replies to the question mail by SMTP. The commands run as
the operator runs them, in a child process against the same store.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
from email.message import EmailMessage
from email.utils import make_msgid

from store import consent, queries
from tests.conftest import REFERRER, eventually, fixture_bytes, on_the_wire, write_config
from tests.helpers import (
    OUR_LINKS,
    PROSPECT,
    PROVIDER,
    REFERENCE,
    consent_link,
    parse,
    request_referral,
    send,
    text_of,
    web,
)
from tests.test_answers_by_mail import question, reply
from tests.test_cli import run

REPLY_FIXTURE = "reply_outlook_ios_top_fr_yes.eml"


def lines(text: str) -> list[str]:
    """Text as read, whatever line endings it travelled with."""
    return text.strip().splitlines()


def cli(tmp_path, settings, *args: str):
    config = write_config(tmp_path / "cli.toml", settings)
    return run(*args, "--config", str(config), cwd=tmp_path)


def answered_both_ways(running, sink):
    """The provider says yes on the page, the prospect by reply; the introduced referral."""
    links = request_referral(running.service.smtp_port, sink)
    page = web.post(links[PROVIDER], data={"answer": "yes"})
    assert page.status_code == 200
    reply(running, sink, PROSPECT, REPLY_FIXTURE)
    eventually(lambda: queries.recent_referrals()[0].state == "introduced", "introduced")
    return queries.recent_referrals()[0]


def test_evidence_shows_what_each_party_was_shown_and_how_they_answered(running, sink, tmp_path):
    referral = answered_both_ways(running, sink)
    found = {e.role: e for e in consent.evidence_of(referral.id)}
    provider, prospect = found["provider"], found["prospect"]

    for kept in (provider, prospect):
        assert kept.text and hashlib.sha256(kept.text.encode()).hexdigest() == kept.consent_hash
        assert kept.language == "en"
        assert referral.referrer_name in kept.text
    # By link: the page they pressed Yes on, answering the question they were mailed.
    assert provider.channel == "link" and provider.answer_message_id is None
    assert "<form" not in provider.text and "Yes" in provider.text
    assert provider.question_message_id == question(sink, PROVIDER)["Message-ID"]
    # By reply: the question mail's own text, and both Message-IDs.
    asked = question(sink, PROSPECT)
    assert prospect.channel == "reply"
    assert prospect.question_message_id == asked["Message-ID"]
    assert lines(prospect.text) == lines(asked.get_body(("plain",)).get_content())
    sent = email.message_from_bytes(fixture_bytes(REPLY_FIXTURE), policy=email.policy.default)
    assert prospect.answer_message_id == sent["Message-ID"].strip()

    shown = cli(tmp_path, running.settings, "evidence", referral.ref)
    assert shown.returncode == 0, shown.stderr
    for kept in (provider, prospect):
        assert f"{kept.role}: yes by {kept.channel}" in shown.stdout
        assert kept.consent_hash in shown.stdout
        assert kept.question_message_id in shown.stdout
        assert kept.text.splitlines()[0].strip() in shown.stdout
    assert prospect.answer_message_id in shown.stdout

    missing = cli(tmp_path, running.settings, "evidence", "NOSUCHREF")
    assert missing.returncode != 0 and "no referral NOSUCHREF" in missing.stderr


def test_export_of_a_party_holds_their_referral_answer_evidence_and_mails(running, sink, tmp_path):
    referral = answered_both_ways(running, sink)
    running.deliver()
    done = cli(tmp_path, running.settings, "export", PROSPECT.upper())
    assert done.returncode == 0, done.stderr
    held = json.loads(done.stdout)
    assert held["schema"] == "care-intro/export/1"
    assert held["address"] == PROSPECT and held["suppressed"] is False
    [entry] = held["referrals"]
    assert (entry["reference"], entry["role"], entry["state"]) == (
        referral.ref,
        "prospect",
        "introduced",
    )
    assert entry["referred_by"]["address"] == REFERRER
    # Introduced, they know who the other is: the need as the referrer wrote it.
    assert entry["need"] == referral.need
    assert entry["you"]["address"].lower() == PROSPECT
    answer = entry["answer"]
    assert (answer["answer"], answer["channel"]) == ("yes", "reply")
    text = answer["evidence"]["consent_text"]
    assert hashlib.sha256(text.encode()).hexdigest() == answer["evidence"]["consent_sha256"]
    # Of the other party, only what the introduction told them: no answer, no evidence.
    assert "link" not in {e.get("answer", {}).get("channel") for e in held["referrals"]}
    purposes = [m["purpose"] for m in held["mails"]]
    assert purposes[0] == "consent_request" and "introduction" in purposes
    asked = question(sink, PROSPECT)
    assert held["mails"][0]["message_id"] == asked["Message-ID"]
    assert lines(held["mails"][0]["text"]) == lines(asked.get_body(("plain",)).get_content())
    # Nothing that went only to someone else (the introduction went to both, as one mail).
    theirs = {parse(d)["Message-ID"] for d in sink.deliveries if d.rcpt_tos == (PROSPECT,)}
    for delivery in sink.deliveries:
        if parse(delivery)["Message-ID"] not in theirs:
            assert parse(delivery)["Message-ID"] not in done.stdout

    nobody = cli(tmp_path, running.settings, "export", "nobody@nowhere.example")
    assert nobody.returncode == 0
    assert json.loads(nobody.stdout)["referrals"] == json.loads(nobody.stdout)["mails"] == []
    bad = cli(tmp_path, running.settings, "export", "not an address")
    assert bad.returncode != 0 and "not an address" in bad.stderr


# What differs from run to run: moments (to the microsecond), Message-IDs, hashes, and the
# referral's reference, in its field and in the mails' texts ("R-7V77-…": once in 8,000).
_RANDOM = re.compile(r'"(?:\w+_at|\w*message_id|consent_sha256)": "[^"]*"|' + REFERENCE)


def without_chance(export: str) -> str:
    """An export without what is random in it, so that a figure looked for in the rest
    (a reported "777") cannot turn up by chance, as in a timestamp's microseconds."""
    return OUR_LINKS.sub("", _RANDOM.sub("", export))


def test_export_shows_only_the_value_the_person_gave_and_the_referrer_none(surveyed, tmp_path):
    web.post(
        surveyed.links[PROVIDER],
        data={"rating": "5", "business": "yes", "amount": "4321", "currency": "EUR"},
    )
    web.post(
        surveyed.links[PROSPECT],
        data={"rating": "4", "business": "yes", "amount": "777", "currency": "EUR"},
    )
    surveyed.service.deliver()
    eventually(
        lambda: queries.referral_by_id(surveyed.referral.id).state == "evaluated", "evaluated"
    )
    settings = surveyed.service.settings

    party = cli(tmp_path, settings, "export", PROSPECT)
    assert party.returncode == 0, party.stderr
    [entry] = json.loads(party.stdout)["referrals"]
    assert [(s["amount"], s["currency"]) for s in entry["surveys"]] == [("777.00", "EUR")]
    assert "4321" not in without_chance(party.stdout)
    assert "4,321" not in without_chance(party.stdout)

    referrer = cli(tmp_path, settings, "export", REFERRER)
    assert referrer.returncode == 0, referrer.stderr
    held = json.loads(referrer.stdout)
    assert [(e["reference"], e["role"]) for e in held["referrals"]] == [
        (surveyed.referral.ref, "referrer")
    ]
    assert all("surveys" not in e and "answer" not in e for e in held["referrals"])
    evaluated = [m for m in held["mails"] if m["purpose"] == "referrer_evaluated"]
    assert evaluated and all(m["text"] is None for m in evaluated)
    for value in ("4321", "4,321", "777"):
        assert value not in without_chance(referrer.stdout)


# A need that names the provider every way a referrer does.
NAMING_NEED = (
    "Jane Roe (jane@acme.example, +1 555 0100) can do the bakery's books before March; "
    "see acme-books.de"
)
JANE = ("Jane", "Roe", "jane@acme.example", "acme.example", "555 0100", "5550100", "acme-books")


def request_naming_the_provider() -> bytes:
    message = EmailMessage()
    message["From"] = f"Ada Lovelace <{REFERRER}>"
    message["To"] = "refer@intro.example.org"
    message["Subject"] = "Jane and Bob"
    message["Message-ID"] = make_msgid(domain="referrer.example")
    message.set_content(
        f"Provider: Jane Roe <{PROVIDER}>\n"
        "Provider phone: +1 555 0100\n"
        f"Prospect: Bob Smith <{PROSPECT}>\n"
        f"Need: {NAMING_NEED}\n"
    )
    return on_the_wire(message.as_bytes())


def flowing(text: str) -> str:
    """Text with its line breaks and runs of spaces as one space, as a wrapped mail reads."""
    return " ".join(text.split())


def test_export_shows_a_party_the_need_as_their_question_did_unless_introduced(
    running, sink, tmp_path
):
    """Bob said no: his export must not tell him who Jane is, which his question did not."""
    before = len(sink.deliveries)
    send(running.service.smtp_port, request_naming_the_provider())
    asked = {d.rcpt_tos[0]: d for d in sink.wait_for(before + 3)[before:] if "/c/" in text_of(d)}
    page = web.post(consent_link(asked[PROSPECT]), data={"answer": "no"})
    assert page.status_code == 200
    eventually(lambda: queries.recent_referrals()[0].state == "declined", "declined")
    settings = running.settings

    bob = cli(tmp_path, settings, "export", PROSPECT)
    assert bob.returncode == 0, bob.stderr
    [entry] = json.loads(bob.stdout)["referrals"]
    assert entry["need"] == (
        "[name] ([email], [phone]) can do the bakery's books before March; see [link]"
    )
    assert flowing(entry["need"]) in flowing(text_of(asked[PROSPECT]))
    for trace in JANE:
        assert trace.casefold() not in without_chance(bob.stdout).casefold(), trace

    # Jane was asked too and never introduced: what she was shown, whatever names her.
    jane = cli(tmp_path, settings, "export", PROVIDER)
    assert jane.returncode == 0, jane.stderr
    [entry] = json.loads(jane.stdout)["referrals"]
    assert entry["need"] == (
        "Jane Roe ([email], [phone]) can do the bakery's books before March; see [link]"
    )
    assert flowing(entry["need"]) in flowing(text_of(asked[PROVIDER]))

    # The referrer wrote it: whole.
    ada = cli(tmp_path, settings, "export", REFERRER)
    assert ada.returncode == 0, ada.stderr
    [entry] = json.loads(ada.stdout)["referrals"]
    assert (entry["role"], entry["need"]) == ("referrer", NAMING_NEED)
