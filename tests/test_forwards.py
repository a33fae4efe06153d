"""Forwarded requests as every common client writes them, in each of our six languages."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from service.intake import pipeline, receiving
from service.model import Channel
from service.reading.addresses import parse_mailbox
from service.reading.bodies import html_to_text
from service.reading.request import RequestDraft, parse_message, parse_request
from service.reading.text import fold
from store import queries
from tests.conftest import FIXTURES, REFERRER, fixture_bytes
from tests.helpers import NOW, OUR_LINKS, outbox_mails


@dataclass(frozen=True)
class Expected:
    provider: tuple[str, str]
    prospect: tuple[str, str]
    subject: str  # the forwarded mail's subject, the need's first paragraph
    words: str  # words from the prospect's own text, which the need goes on with
    # The forward's header lines, and the prospect's greeting, sign-off and signature.
    not_in_need: tuple[str, ...]


EXPECTED = {
    "en": Expected(
        ("Jane Roe", "jane@acme.example"),
        ("Bob Smith", "bob@bakery.example"),
        "Bookkeeping for our bakery",
        "need someone to take over our bookkeeping before the tax deadline in March",
        ("7946 0958", "Smith's Bakery", "Subject", "From", "Hi Ada", "Thanks", "Bob"),
    ),
    "de": Expected(
        ("Jürgen Müller", "juergen@steuer-mueller.example"),
        ("Zoë Weiß", "zoe.weiss@baeckerei-weiss.example"),
        "Steuerberatung für unsere Bäckerei",
        "suchen einen Steuerberater, der sich mit Bäckereien auskennt",
        ("1234567", "GmbH", "Betreff", "Von:", "Gesendet", "Hallo Klaus", "Viele Grüße", "Zoë"),
    ),
    "fr": Expected(
        ("Hélène Dubois", "helene@cabinet-dubois.example"),
        ("François Lefèvre", "francois.lefevre@boulangerie-lefevre.example"),
        "Site web pour notre boulangerie",
        "refaire le site de la boulangerie, avec commande en ligne avant Noël",
        ("68 53 00", "Boulangerie Lefèvre", "Objet", "Envoyé", "Bonjour", "Bien à toi", "François"),
    ),
    "ro": Expected(
        ("Andrei Popescu", "andrei@web-studio.example"),
        ("Elena Rădulescu", "elena@florarie-radulescu.example"),
        "Magazin online pentru florărie",
        "gata înainte de Ziua Îndrăgostiților",
        ("0722", "Florăria Rădulescu", "Subiect", "Trimis", "Bună Maria", "Mulțumesc", "Elena"),
    ),
    "id": Expected(
        ("Siti Rahmawati", "siti@konsultan-pajak.example"),
        ("Agus Wijaya", "agus@kopi-wijaya.example"),
        "Pembukuan untuk kedai kopi kami",
        "bantuan pembukuan dan laporan pajak untuk tiga kedai kopi",
        ("3456 7890", "Kopi Wijaya", "Subjek", "Kepada", "Halo Pak", "Terima kasih", "Agus"),
    ),
    "ar": Expected(
        ("سارة الخطيب", "sara@khatib-law.example"),
        ("أحمد منصور", "ahmad@mansour-trading.example"),
        "استشارة قانونية لتأسيس شركة",
        "يساعدنا في تأسيس شركة تجارية جديدة",
        ("123 4567", "منصور للتجارة", "الموضوع", "إلى:", "مرحبا", "شكراً", "أحمد"),
    ),
}
REFERRERS = {
    "en": REFERRER,
    "de": "klaus@partners.example",
    "fr": "camille@partners.example",
    "ro": "maria@partners.example",
    "id": "budi@partners.example",
    "ar": "layla@partners.example",
}
# How each client lays out a forward; the fixture files are named after these.
CLIENTS = {
    "gmail_web": "Gmail on the web: '---------- Forwarded message ---------', text and HTML",
    "gmail_android": "Gmail's Android app: the typed line right above the forward, base64",
    "outlook_web_html_only": "Outlook on the web: HTML only, divRplyFwdMsg with bold labels",
    "outlook_desktop": "Outlook desktop: the underscore rule, From/Sent/To/Subject, 8-bit charsets",
    "outlook_original_message": "Outlook plain text: '-----Original Message-----', [mailto:]",
    "apple_mail": "Apple Mail on a Mac: 'Begin forwarded message:', blockquote type=cite",
    "apple_iphone_quoted": "iPhone Mail: the forwarded block quoted with '> '",
    "thunderbird_inline": "Thunderbird: '-------- Forwarded Message --------', tab after labels",
    "thunderbird_as_attachment": "Thunderbird 'as attachment': message/rfc822 from Gmail",
    "outlook_as_attachment": "Outlook 'as attachment': message/rfc822 in the language's charset",
}
CASES = [
    pytest.param(f"forward_{client}_{lang}.eml", lang, id=f"{client}-{lang}")
    for client in CLIENTS
    for lang in EXPECTED
]


def draft_of(raw: bytes) -> RequestDraft:
    message = parse_message(raw)
    referrer = parse_mailbox(str(message["From"]))
    assert referrer is not None
    return parse_request(message, referrer.address)


def folded(text: str) -> str:
    """Romanian in 8-bit charsets has ş and ţ with a cedilla; people read them as ș and ț."""
    return " ".join(fold(text).split())


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_the_forwarded_sender_is_the_prospect_and_their_mail_the_need(name, lang):
    expected = EXPECTED[lang]
    draft = draft_of(fixture_bytes(name))
    assert draft.provider.mailbox is not None and draft.prospect.mailbox is not None
    assert (draft.provider.mailbox.name, draft.provider.mailbox.address) == expected.provider
    assert (folded(draft.prospect.mailbox.name), draft.prospect.mailbox.address) == (
        folded(expected.prospect[0]),
        expected.prospect[1],
    )
    subject, *paragraphs = draft.need.split("\n\n")
    assert folded(subject) == folded(expected.subject)
    assert folded(expected.words) in folded(paragraphs[0])
    need = folded(draft.need)
    for leftover in expected.not_in_need:
        assert folded(leftover) not in need
    # Decoded, not guessed at: no replacement characters, no UTF-8 read as Latin-1.
    assert "\ufffd" not in draft.need and "Ã" not in draft.need and "Ä" not in draft.need


@pytest.mark.parametrize(
    ("name", "lang"),
    [
        case
        for case in CASES
        if parse_message(fixture_bytes(case.values[0])).get_content_type()
        == "multipart/alternative"
    ],
)
def test_the_html_alternative_alone_says_the_same(name, lang):
    """Clients that send both parts must be understood from either: some gateways drop one."""
    whole = draft_of(fixture_bytes(name))
    message = parse_message(fixture_bytes(name))
    message.set_payload([p for p in message.iter_parts() if p.get_content_type() == "text/html"])
    html_only = draft_of(message.as_bytes())
    assert html_only.provider.mailbox == whole.provider.mailbox
    assert html_only.prospect.mailbox == whole.prospect.mailbox
    assert folded(EXPECTED[lang].words) in folded(html_only.need)


def test_the_fixtures_cover_every_client_in_every_language():
    assert len(CASES) == len(CLIENTS) * 6 == 60


# ------------------------------------------------------------------ forwards of forwards


def test_a_forward_of_a_forward_takes_the_innermost_sender():
    draft = draft_of(fixture_bytes("forward_of_a_forward_gmail_over_outlook.eml"))
    assert draft.prospect.mailbox.address == "carol@florist.example"
    assert draft.prospect.mailbox.name == "Carol White"
    assert draft.need.startswith("Payroll for the new shop\n\nWe open our second flower shop")
    assert "Tom Baker" not in draft.need and "this one for your network" not in draft.need
    assert draft.budget == "250 EUR/month"  # the referrer's labels above the forwards still count


def test_the_provider_forwarding_a_mail_to_the_referrer_is_not_the_prospect():
    draft = draft_of(fixture_bytes("forward_of_the_providers_forward_apple_mail.eml"))
    assert draft.provider.mailbox.address == "jane@acme.example"
    assert draft.prospect.mailbox.address == "dan@garage-green.example"
    assert draft.need.startswith("Looking for a new website\n\nOur garage needs a new website")


def test_labels_naming_the_prospect_win_over_the_innermost_sender():
    draft = draft_of(fixture_bytes("forward_of_a_forward_labels_name_the_prospect.eml"))
    assert draft.prospect.mailbox.address == "tom@chamber.example"
    assert draft.need == (
        "regular office cleaning for the chamber's new building, three floors, from January"
    )


# ------------------------------------------------------------------ through intake


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_a_forwarded_request_asks_both_people(ctx, name, lang):
    received = receiving.receive(
        fixture_bytes(name), REFERRERS[lang], ["refer@intro.example.org"], Channel.SMTP, NOW
    )
    assert received.inbound_id is not None
    pipeline.process_pending(ctx, NOW)
    record = queries.inbound_by_id(received.inbound_id)
    assert record.state == "processed", record.note
    referral = queries.referral_by_ref(record.note)
    assert referral.state == "asking"
    sent = {m["To"].addresses[0].addr_spec: m for m in outbox_mails()}
    expected = EXPECTED[lang]
    assert set(sent) == {REFERRERS[lang], expected.provider[1], expected.prospect[1]}


def test_a_forward_without_a_provider_line_gets_a_reply_asking_for_one(ctx):
    received = receiving.receive(
        fixture_bytes("forward_without_provider_line_gmail.eml"),
        REFERRER,
        ["refer@intro.example.org"],
        Channel.SMTP,
        NOW,
    )
    pipeline.process_pending(ctx, NOW)
    assert queries.inbound_by_id(received.inbound_id).state == "rejected"
    assert queries.referral_counts() == {}
    [reply] = outbox_mails()
    assert reply["To"].addresses[0].addr_spec == REFERRER
    text = reply.get_body(("plain",)).get_content()
    assert "Who is the person who can help (Provider)? Add their name and email address." in text
    # Bob came through the forward, so the reply does not ask for him.
    assert "person who needs help (Prospect)?" not in text


# ------------------------------------------------------------------ what the prospect wrote


@dataclass(frozen=True)
class Written:
    """A forward whose prospect wrote in paragraphs, named a budget and a time to call."""

    fixture: str
    prospect: tuple[str, str]
    greeting: str
    sign_off: str
    paragraphs: tuple[str, ...]  # how each paragraph after the subject begins
    budget: str
    best_time: str
    phone: str
    prefers: str


WRITTEN = [
    Written(
        "forward_gmail_web_budget_best_time_en.eml",
        ("Tom Byrne", "tom@byrne-grocers.example"),
        "Hi Ada",
        "Many thanks",
        (
            "Books and VAT for the second shop",
            "Hope all is well! We're opening our second shop",
            "What I need help with:\n- moving both shops onto proper accounting software\n- the",
            "Our budget is around 3,000 EUR",
        ),
        "around 3,000 EUR",
        "3-5pm",
        "+353 87 123 4567",
        "",
    ),
    Written(
        "forward_outlook_desktop_budget_best_time_de.eml",
        ("Markus Brandt", "m.brandt@praxis-brandt.example"),
        "Hallo zusammen",
        "Viele Grüße",
        (
            "Neue IT für unsere Praxis",
            "Wir sind eine Physiotherapiepraxis mit vier Behandlungsräumen und brauchen bis Ende",
            "Budget: ca. 3.000 € für die Einrichtung, danach gern ein kleiner Wartungsvertrag.",
            "Am besten vormittags",
        ),
        "ca. 3.000 €",
        "vormittags",
        "0221 9876543",
        "phone",
    ),
    Written(
        "forward_apple_mail_budget_best_time_fr.eml",
        ("Sophie Martin", "sophie.martin@cabinet-kine.example"),
        "Bonjour",
        "Cordialement",
        (
            "Comptabilité du cabinet",
            "Nous ouvrons en février un cabinet de kinésithérapie",
            "Notre budget est d’environ 5 000 €",
            "Je suis joignable plutôt le matin",
        ),
        "environ 5 000 €",
        "le matin",
        "06 12 34 56 78",
        "phone",
    ),
    Written(
        "forward_thunderbird_inline_budget_best_time_ro.eml",
        ("Ioana Stan", "ioana@cofetaria-stan.example"),
        "Bună ziua",
        "Cu stimă",
        (
            "Identitate vizuală pentru cofetărie",
            "Deschidem în martie o cofetărie în centrul Clujului și avem nevoie de un logo",
            "Bugetul este de aproximativ 2.000 lei",
            "Cel mai bine după-amiaza",
        ),
        "aproximativ 2.000 lei",
        "după-amiaza",
        "0744 123 456",
        "",
    ),
    Written(
        "forward_gmail_android_budget_best_time_id.eml",
        ("Dewi Lestari", "dewi@batik-lestari.example"),
        "Halo Pak Budi",
        "Salam,",
        (
            "Toko online untuk batik kami",
            "Kami pengrajin batik di Solo",
            "Anggaran kami sekitar Rp 15 juta",
            "Paling baik sore hari",
        ),
        "sekitar Rp 15 juta",
        "sore hari",
        "0813 1111 2222",
        "WhatsApp",
    ),
    Written(
        "forward_apple_iphone_quoted_budget_best_time_ar.eml",
        ("خالد العلي", "khaled@ali-imports.example"),
        "مرحبا ليلى",
        "مع تحياتي",
        (
            "نظام محاسبة لشركتنا",
            "نحن شركة استيراد صغيرة في دبي",
            "الميزانية حوالي 3000 دولار",
            "أفضل وقت للاتصال بي بعد الظهر",
        ),
        "حوالي 3000 دولار",
        "بعد الظهر",
        "+971 50 123 4567",
        "phone",
    ),
]
FORWARDS = sorted(
    path.name
    for path in FIXTURES.glob("forward_*.eml")
    if path.name != "forward_without_provider_line_gmail.eml"  # asks for a provider instead
)


def opened(ctx, name: str):
    """The referral a forward opens through the real intake, and the mails it sent, by address."""
    raw = fixture_bytes(name)
    referrer = parse_mailbox(str(parse_message(raw)["From"]))
    received = receiving.receive(
        raw, referrer.address, ["refer@intro.example.org"], Channel.SMTP, NOW
    )
    pipeline.process_pending(ctx, NOW)
    record = queries.inbound_by_id(received.inbound_id)
    assert record.state == "processed", record.note
    sent = {m["To"].addresses[0].addr_spec: m for m in outbox_mails()}
    return queries.referral_by_ref(record.note), sent


def parts(mail) -> tuple[str, str]:
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def traces(name: str, address: str, phone: str) -> list[str]:
    """What names the prospect: the name's words, the address, its domain, the phone's digits."""
    words = [w for w in name.replace("-", " ").split() if len(w) >= 3]
    return [*words, address, address.split("@")[1], re.sub(r"\D", "", phone)[-7:]]


def searched(mail_part: str) -> str:
    """A part with a number's digits run together ("+49 30 123" as "4930123"), and without
    our links: their tokens spell "Bob" or "Tom" by chance, about once in a thousand mails."""
    return re.sub(r"(?<=\d)[\s.-](?=\d)", "", OUR_LINKS.sub("", mail_part))


def test_the_new_forwards_cover_every_language():
    assert len(WRITTEN) == len(EXPECTED) == 6
    assert {w.fixture.rsplit("_", 1)[1].removesuffix(".eml") for w in WRITTEN} == set(EXPECTED)


@pytest.mark.parametrize("written", WRITTEN, ids=lambda w: w.fixture.removesuffix(".eml"))
def test_the_prospects_paragraphs_and_fields_reach_the_right_people(ctx, written):
    referral, sent = opened(ctx, written.fixture)
    prospect = referral.party("prospect")
    assert (prospect.name, prospect.email) == written.prospect

    paragraphs = referral.need.split("\n\n")
    assert len(paragraphs) == len(written.paragraphs)
    for paragraph, opening in zip(paragraphs, written.paragraphs, strict=True):
        assert paragraph.startswith(opening)
    assert written.greeting not in referral.need and written.sign_off not in referral.need
    assert "[" not in referral.need

    assert referral.budget == written.budget
    assert (prospect.best_time, prospect.phone, prospect.prefers) == (
        written.best_time,
        written.phone,
        written.prefers,
    )

    provider = referral.party("provider")
    text, html = parts(sent[provider.email])
    # Before consent the provider judges relevance: the need, the budget, when to call.
    for paragraph in paragraphs:
        assert "\n  " + paragraph.split("\n")[0] in text  # indented as the rest of the mail
    assert written.budget in text and written.best_time in text
    # In HTML too, each paragraph and each list item starts a line of its own.
    as_read = [line.strip() for line in html_to_text(html).split("\n")]
    for line in referral.need.split("\n"):
        assert any(read.startswith(line[:30]) for read in as_read), line
    # ...and nothing that says who the prospect is.
    for mail_part in (text, html):
        for trace in traces(prospect.name, prospect.email, written.phone):
            assert trace not in searched(mail_part), trace
        assert "[name]" not in mail_part and "[phone]" not in mail_part


def test_the_referrers_labelled_lines_win_over_the_forwarded_text(ctx):
    referral, sent = opened(ctx, "forward_outlook_original_message_labels_win_en.eml")
    prospect = referral.party("prospect")
    assert referral.budget == "4,500 EUR"  # the forward says "around 3,000 EUR"
    assert prospect.best_time == "mornings before 10"  # the forward says "after 6pm"
    assert prospect.phone == "+353 1 555 0100"  # the forward is signed "+353 87 123 4567"
    text, _ = parts(sent[referral.party("provider").email])
    assert "4,500 EUR" in text and "3,000 EUR" in text  # the prospect's words stay in the need
    assert "mornings before 10" in text


@pytest.mark.parametrize("name", FORWARDS, ids=lambda n: n.removesuffix(".eml"))
def test_every_forward_reaches_the_provider_without_greeting_sign_off_or_prospect(ctx, name):
    referral, sent = opened(ctx, name)
    prospect = referral.party("prospect")
    lines = [line for line in referral.need.split("\n") if line]
    assert "[" not in referral.need
    assert not any(line in ("--", "-- ") for line in lines)
    # A greeting or sign-off line ends in a comma ("Hi Ada,", "Thanks,", "شكراً،") or is the
    # writer's name alone; what the prospect wrote ends in a full stop or a question mark.
    assert not any(line.endswith((",", "،")) for line in lines), referral.need
    first_name = prospect.name.split()[0] if prospect.name else ""
    assert not first_name or lines[-1] != first_name
    text, html = parts(sent[referral.party("provider").email])
    for mail_part in (text, html):
        for trace in traces(prospect.name, prospect.email, prospect.phone or "x"):
            if trace:
                assert trace not in searched(mail_part), trace
