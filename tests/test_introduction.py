"""The introduction: one mail To both with one Message-ID, written for both in one language
or with a part for each in their own, sent as one envelope per recipient; the referrer is
copied only when the request asked for it."""

from __future__ import annotations

import email
import email.policy
import html
import itertools
import json
import re
from dataclasses import replace
from email.message import EmailMessage

import pytest

from service.clock import FixedClock
from service.model import Answer, Channel, Role, State
from service.reading.request import parse_message, parse_request
from service.referral import workflow
from service.settings import LANGUAGES
from service.tokens import Purpose
from service.writing import letters
from service.writing.context import make_context
from service.writing.signing import Signer
from store import queries
from store.models import OutboxMail
from store.records import OutgoingMail, PartyRecord, ReferralRecord
from tests import browser
from tests.conftest import REFERRER, eventually, fixture_bytes, make_settings, on_the_wire
from tests.helpers import NOW, PROSPECT, PROVIDER, parse, request_referral, web
from tests.test_deadlines import ADA, open_one, say
from tests.test_dkim import DOMAIN, SELECTOR, make_key, signed_headers, verifies

# How each language's part greets its reader: a reader finds their part by it.
HELLO = {
    "en": "Hello",
    "de": "Guten Tag",
    "fr": "Bonjour",
    "ro": "Bună ziua,",
    "id": "Halo",
    "ar": "مرحبًا",
}
FRENCH_AND_GERMAN = "request_apple_mail_french_with_german_prospect.eml"
PAIRS = [pytest.param(a, b, id=f"{a}+{b}") for a, b in itertools.permutations(LANGUAGES, 2)]


def person(party_id: int, role: Role, name: str, address: str, language: str) -> PartyRecord:
    return PartyRecord(
        id=party_id,
        role=role,
        name=name,
        email=address,
        phone="+49 30 1234567" if role == Role.PROSPECT else "",
        prefers="",
        best_time="",
        booking="https://cal.example/jane" if role == Role.PROVIDER else "",
        language=language,
        ask_key=f"ask{party_id}",
        answer=Answer.YES,
        answered_at=NOW,
        answer_channel="link",
    )


def agreed(provider_language: str, prospect_language: str, copy_me: bool = False):
    return ReferralRecord(
        id=7,
        ref="R-AAAA-BBBB",
        state=State.INTRODUCED,
        referrer_email=REFERRER,
        referrer_name="Ada Lovelace",
        need="bookkeeping for a 5-person bakery before the tax deadline in March",
        budget="400 EUR/month",
        follow_up_days=None,
        language="en",
        subject="Intro",
        request_message_id="<request@referrer.example>",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW,
        introduced_at=NOW,
        parties=(
            person(1, Role.PROVIDER, "Jane Roe", PROVIDER, provider_language),
            person(2, Role.PROSPECT, "Bob Smith", PROSPECT, prospect_language),
        ),
        copy_me=copy_me,
    )


@pytest.fixture
def writer(tmp_path):
    """What writes mail, with its keys; writing an introduction needs no store."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    return make_context(settings, FixedClock(NOW))


def read(mail: OutgoingMail) -> EmailMessage:
    message = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def addresses(message: EmailMessage, header: str) -> list[str]:
    value = message[header]
    return [a.addr_spec for a in value.addresses] if value is not None else []


def text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def greetings(body: str, language: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith(HELLO[language])]


# ------------------------------------------------------------------ one mail, one envelope each


@pytest.mark.parametrize("language", LANGUAGES)
def test_one_language_is_one_text_addressed_to_both(writer, language):
    mails = letters.introduction(writer, agreed(language, language), NOW)
    assert [m.recipients for m in mails] == [(PROVIDER,), (PROSPECT,)]
    assert [m.party_id for m in mails] == [1, 2]
    assert len({m.raw for m in mails}) == 1 and len({m.message_id for m in mails}) == 1
    # Each envelope its own VERP address, so a bounce says whom the introduction missed.
    assert len({m.envelope_from for m in mails}) == 2
    message = read(mails[0])
    assert message["Message-ID"] == mails[0].message_id
    assert addresses(message, "To") == [PROVIDER, PROSPECT]
    assert addresses(message, "Reply-To") == [PROVIDER, PROSPECT]
    assert message["Content-Language"] == language
    [hello] = greetings(text(message), language)
    assert "Jane Roe" in hello and "Bob Smith" in hello


@pytest.mark.parametrize(("provider_language", "prospect_language"), PAIRS)
def test_two_languages_give_each_reader_a_part_in_their_own(
    writer, provider_language, prospect_language
):
    mails = letters.introduction(writer, agreed(provider_language, prospect_language), NOW)
    assert len({m.raw for m in mails}) == 1
    raw = mails[0].raw
    assert raw.isascii() and max(len(line) for line in raw.split(b"\n")) <= 78
    message = read(mails[0])
    assert message["Content-Language"] == f"{provider_language}, {prospect_language}"
    assert addresses(message, "To") == [PROVIDER, PROSPECT]
    # The subject carries both languages, Arabic with its spaces.
    subject = str(message["Subject"])
    assert " / " in subject and subject.count("Jane Roe") == 2
    if "ar" in (provider_language, prospect_language):
        assert "تعارف: Jane Roe و Bob Smith" in subject
    # The provider's part first, greeting them in their language; then the prospect's.
    body = text(message)
    [to_jane] = greetings(body, provider_language)
    [to_bob] = greetings(body, prospect_language)
    assert "Jane Roe" in to_jane and "Bob Smith" not in to_jane
    assert "Bob Smith" in to_bob and "Jane Roe" not in to_bob
    assert body.index(to_jane) < body.index(to_bob)
    # Each part carries the need and both contact cards.
    assert body.count("tax deadline in March") == 2
    assert body.count("+49 30 1234567") == 2 and body.count("https://cal.example/jane") == 2
    page = message.get_body(("html",)).get_content()
    parts = re.findall(r'<div lang="(\w+)" dir="(\w+)" style="text-align:(\w+);">', page)
    assert parts == [
        (lang, "rtl" if lang == "ar" else "ltr", "right" if lang == "ar" else "left")
        for lang in (provider_language, prospect_language)
    ]


def test_each_person_has_their_own_way_to_say_stop_and_no_one_click_stops_both(writer):
    mails = letters.introduction(writer, agreed("en", "en"), NOW)
    message = read(mails[0])
    assert "List-Unsubscribe" not in message
    links = re.findall(r"http://\S+/u/\S+", text(message))
    assert len(set(links)) == 2
    # Each link names one envelope: whoever opens it stops only their own mail.
    opened = {writer.tokens.read(Purpose.OPTOUT, link.rsplit("/", 1)[1]) for link in links}
    assert opened == {f"m:{m.bounce_key}" for m in mails}


def test_the_referrer_is_never_in_the_introduction_unless_the_request_asked(writer):
    mails = letters.introduction(writer, agreed("de", "fr"), NOW)
    message = read(mails[0])
    for header in ("To", "Cc", "Reply-To"):
        assert REFERRER not in addresses(message, header)
    assert all(REFERRER not in m.recipients for m in mails)

    copied = letters.introduction(writer, agreed("de", "fr", copy_me=True), NOW)
    message = read(copied[0])
    assert addresses(message, "Cc") == [REFERRER]
    assert addresses(message, "To") == [PROVIDER, PROSPECT]
    assert REFERRER not in addresses(message, "Reply-To")
    assert [(m.recipients, m.party_id) for m in copied] == [
        ((PROVIDER,), 1),
        ((PROSPECT,), 2),
        ((REFERRER,), None),
    ]
    assert len({m.raw for m in copied}) == 1


def test_the_introduction_is_sealed_once_with_its_cc_signed(writer, tmp_path):
    key, record = make_key(tmp_path)
    sealing = replace(writer, signer=Signer(DOMAIN, SELECTOR, key.read_bytes()))
    mails = letters.introduction(sealing, agreed("de", "ar", copy_me=True), NOW)
    assert len({m.raw for m in mails}) == 1 and mails[0].raw.count(b"DKIM-Signature:") == 1
    assert verifies(on_the_wire(mails[0].raw), record)
    assert {"to", "cc", "reply-to", "subject"} <= signed_headers(mails[0].raw)


# ------------------------------------------------------------------ over SMTP


def both_say_yes(links: dict[str, str]) -> None:
    for address in (PROVIDER, PROSPECT):
        assert web.post(links[address], data={"answer": "yes"}).status_code == 200


def introductions(sink, count: int):
    def found():
        mails = [d for d in sink.deliveries if parse(d)["Reply-To"] and b"/c/" not in d.data]
        return mails if len(mails) >= count else None

    return eventually(found, f"{count} envelope(s) of the introduction")


def test_one_mail_reaches_the_relay_as_two_envelopes_of_the_same_bytes(running, sink):
    both_say_yes(request_referral(running.service.smtp_port, sink))
    first, second = introductions(sink, 2)
    assert {first.rcpt_tos, second.rcpt_tos} == {(PROVIDER,), (PROSPECT,)}
    assert first.data == second.data and first.mail_from != second.mail_from
    message = parse(first)
    assert addresses(message, "To") == [PROVIDER, PROSPECT]
    assert message["Cc"] is None

    # The referrer gets their own note, never the introduction.
    def told():
        return [d for d in sink.to(REFERRER) if parse(d)["Subject"].startswith("Introduced:")]

    assert len(eventually(told, "the referrer's note")) == 1
    assert all(parse(d)["Message-ID"] != message["Message-ID"] for d in sink.to(REFERRER))


def test_copy_me_puts_the_referrer_in_cc_with_an_envelope_of_their_own(running, sink):
    links = request_referral(
        running.service.smtp_port, sink, fixture="request_thunderbird_copy_me_en.eml"
    )
    both_say_yes(links)
    envelopes = introductions(sink, 3)
    assert sorted(d.rcpt_tos for d in envelopes) == [(REFERRER,), (PROSPECT,), (PROVIDER,)]
    assert len({d.data for d in envelopes}) == 1
    assert addresses(parse(envelopes[0]), "Cc") == [REFERRER]


def test_a_reply_to_the_introduction_is_never_taken_for_an_answer_to_us(ctx):
    """Its envelopes name their party (so a failure names whom it missed), yet a reply that
    reaches us by its Message-ID answers no question."""
    referral = open_one(ctx)
    say(ctx, referral, "provider", Answer.YES, NOW)
    say(ctx, referral, "prospect", Answer.YES, NOW)
    rows = OutboxMail.select(OutboxMail.purpose, OutboxMail.message_id).tuples()
    sent = dict(rows.where(OutboxMail.referral == referral.id))
    introduced, asked = sent["introduction"], sent["consent_request"]
    assert not queries.answers_our_mail([introduced])
    assert queries.ask_key_for_message_ids([introduced]) is None
    assert queries.answers_our_mail([asked]) and queries.ask_key_for_message_ids([asked])


def test_each_persons_stop_link_speaks_their_own_language(ctx):
    """A French provider and a German prospect: one mail in both, but each link is for one
    of them, and its page is in that person's language."""
    draft = parse_request(parse_message(fixture_bytes(FRENCH_AND_GERMAN)))
    referral = workflow.open_referral(ctx, draft, ADA, None, Channel.SMTP, NOW)
    say(ctx, referral, "provider", Answer.YES, NOW)
    say(ctx, referral, "prospect", Answer.YES, NOW)
    rows = OutboxMail.select().where(
        (OutboxMail.referral == referral.id) & (OutboxMail.purpose == "introduction")
    )
    languages = {r.recipients: workflow.language_of_optout(f"m:{r.bounce_key}") for r in rows}
    assert languages == {
        "jeanne@conseil-roux.example": "fr",
        "bernd@baeckerei-schmidt.example": "de",
    }


# ------------------------------------------------------------------ in a real browser

# Reports, from inside the page, how the browser laid out each language's part.
MEASURE = """<script>
const found = [...document.querySelectorAll("div[lang]")].map((part) => {
  const box = part.getBoundingClientRect();
  const range = document.createRange();
  range.selectNodeContents(part.querySelector("p"));
  const hello = range.getBoundingClientRect();
  // Where "400" and "EUR" of the budget "400 EUR/month" land: in reading order or not.
  const budget = [...part.querySelectorAll("bdi")].find((b) => b.textContent.includes("EUR"));
  const at = (start, end) => {
    const r = document.createRange();
    r.setStart(budget.firstChild, start);
    r.setEnd(budget.firstChild, end);
    return r.getBoundingClientRect().left;
  };
  return {lang: part.lang, direction: getComputedStyle(part).direction,
          text: part.innerText, left: box.left, right: box.right,
          helloLeft: hello.left, helloRight: hello.right, height: box.height,
          need: getComputedStyle(part.querySelector("blockquote")).direction,
          amountLeft: budget ? at(0, 3) : null, currencyLeft: budget ? at(4, 7) : null};
});
document.body.setAttribute("data-measured", JSON.stringify(found));
</script>"""


@browser.needs_chromium
@pytest.mark.parametrize(("provider_language", "prospect_language"), [("en", "ar"), ("ar", "de")])
def test_arabic_reads_right_to_left_beside_a_left_to_right_part_in_a_browser(
    writer, tmp_path, provider_language, prospect_language
):
    mails = letters.introduction(writer, agreed(provider_language, prospect_language), NOW)
    page = read(mails[0]).get_body(("html",)).get_content()
    shown = tmp_path / "introduction.html"
    shown.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = browser.dump_dom(shown.as_uri())
    measured = json.loads(html.unescape(re.search(r'data-measured="([^"]*)"', dom)[1]))
    assert [p["lang"] for p in measured] == [provider_language, prospect_language]
    names = {provider_language: "Jane Roe", prospect_language: "Bob Smith"}
    for part in measured:
        rtl = part["lang"] == "ar"
        assert part["direction"] == ("rtl" if rtl else "ltr")
        assert part["height"] > 0 and names[part["lang"]] in part["text"]
        # The greeting hangs from the part's right edge in Arabic, from its left otherwise.
        if rtl:
            assert abs(part["helloRight"] - part["right"]) <= 2
            assert part["helloLeft"] > part["left"] + 100
        else:
            assert abs(part["helloLeft"] - part["left"]) <= 2
            assert part["helloRight"] < part["right"] - 100
        # What people typed keeps its own direction inside the other's: the English need
        # reads left to right in the Arabic part, "400 EUR/month" is not turned around.
        assert part["need"] == "ltr"
        assert part["amountLeft"] < part["currencyLeft"]
