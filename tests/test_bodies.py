"""Every charset, transfer encoding and MIME shape a client sends -> the request it carries.

Each fixture is a labelled-lines request exactly as one client writes it; the parser must
give the same people and need, character for character, whatever the bytes looked like.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

import pytest

from service.intake import pipeline, receiving
from service.model import Channel, Role
from service.reading.bodies import decode
from service.reading.request import RequestDraft, parse_message, parse_request
from store import queries
from tests.conftest import REFERRER, fixture_bytes
from tests.helpers import NOW

# What wrong decoding leaves behind: the replacement character, C1 controls (a windows-125x
# byte read as ISO-8859-x), and UTF-8 read as a single-byte charset (Ã¼, Â€, â€™).
MOJIBAKE = re.compile(r"[\ufffd\x80-\x9f]|Ã|Â|â€")


@dataclass(frozen=True)
class Case:
    fixture: str
    provider: tuple[str, str]
    prospect: tuple[str, str]
    need: tuple[str, ...]  # pieces the need must contain, accents and punctuation as written
    budget: str
    subject: str
    declared: str | None  # the charset the text part says it is in
    codec: str  # what its bytes really are


CASES = [
    Case(
        "request_outlook_web_html_only_german_windows1252.eml",
        ("Jürgen Weiß", "juergen.weiss@steuerkanzlei-weiss.example"),
        ("Dörte Schäfer", "doerte@baeckerei-schaefer.example"),
        (
            "Lohnbuchhaltung und Jahresabschluss für eine Bäckerei",
            "mit drei Filialen in München – Übergabe vom bisherigen Büro bis Ende Januar",
        ),
        "ca. 900 € im Monat",
        "Vorstellung: Jürgen Weiß – Dörte Schäfer",
        "windows-1252",
        "cp1252",
    ),
    Case(
        "request_thunderbird_romanian_iso8859_2_quoted_printable.eml",
        ("Ştefan Ţurcanu", "stefan@contabilitate-turcanu.example"),
        ("Ioana Mărgărit", "ioana@brutaria-margarit.example"),
        (
            "contabilitate şi salarizare",
            "brutărie cu şase angajaţi din Iaşi, înainte de termenul fiscal din martie",
        ),
        "1.500 lei pe lună",
        "Recomandare: Ştefan Ţurcanu şi Ioana Mărgărit",
        "iso-8859-2",
        "iso-8859-2",
    ),
    Case(
        "request_outlook_romanian_windows1250_8bit.eml",
        ("Radu Bălăşoiu", "radu@instalatii-balasoiu.example"),
        ("Cătălina Neagoe-Ştefănescu", "catalina@pensiunea-cerbul.example"),
        (
            "instalaţie de încălzire cu pompă de căldură",
            "pensiunea „Cerbul” din Braşov (12 camere), înainte de sezonul de iarnă",
        ),
        "60.000 lei",
        "Recomandare instalaţii – pensiunea „Cerbul”",
        "windows-1250",
        "cp1250",
    ),
    Case(
        "request_outlook_arabic_windows1256_rtl.eml",
        ("سامي الحدّاد", "sami@haddad-accounting.example"),
        ("ليلى عبد الرحمن", "layla@boutique-layla.example"),
        ("نظام محاسبة وفوترة إلكترونية", "لمتجر ملابس في عمّان قبل نهاية السنة المالية"),
        "1500 دينار أردني",
        "تعريف: سامي الحدّاد وليلى عبد الرحمن",
        "windows-1256",
        "cp1256",
    ),
    Case(
        "request_the_bat_french_latin1_declared_windows1252_bytes.eml",
        ("Hélène Lefèvre", "helene@cabinet-lefevre.example"),
        ("François Béranger", "francois@boulangerie-beranger.example"),
        (
            "un expert-comptable pour l’ouverture d’une deuxième boulangerie à Besançon",
            "avec sa sœur, “clé en main”, prévisionnel compris",
        ),
        "3 000 € HT par an",
        "Mise en relation – l’expert-comptable qu’il faut à François",
        "iso-8859-1",
        "cp1252",
    ),
    Case(
        "request_gmail_indonesian_base64_utf8.eml",
        ("Putu Ayu Lestari", "putu@konsultan-pajak-bali.example"),
        ("Bagus Kurniawan", "bagus@kopi-kurniawan.example"),
        ("pembukuan dan laporan pajak", "kedai kopi dengan 3 cabang di Yogyakarta — mulai Januari"),
        "± Rp 4.500.000/bulan",
        "Perkenalan: Putu Ayu Lestari dan Bagus Kurniawan",
        "utf-8",
        "utf-8",
    ),
    Case(
        "request_mailutils_romanian_declared_us_ascii_but_utf8.eml",
        ("Horia Vlăduț", "horia@traduceri-vladut.example"),
        ("Ana-Maria Păunescu", "ana.maria@clinica-paunescu.example"),
        (
            "traducere autorizată în germană",
            "documentelor medicale și a site-ului clinicii, până la sfârșitul lunii",
        ),
        "2.500 lei",
        "Recomandare traduceri (CRM #4821)",
        "us-ascii",
        "utf-8",
    ),
    Case(
        "request_php_form_german_no_charset_declared.eml",
        ("Bärbel Kühn", "baerbel@kuehn-architektur.example"),
        ("Jörg Öztürk", "joerg@oeztuerk-bau.example"),
        ("Entwurfsplanung für den Umbau einer Scheune", "zu drei Wohnungen in Großenhain"),
        "18.000 € netto",
        "Empfehlung aus dem Partnerformular",
        None,
        "utf-8",
    ),
    Case(
        "request_apple_mail_docx_in_mixed_inside_alternative.eml",
        ("Anaïs Roussel", "anais@studio-roussel.example"),
        ("Gaëlle Le Bihan", "gaelle@creperie-lebihan.example"),
        (
            "nouvelle identité visuelle et menu bilingue",
            "crêperie de Gaëlle à Quimper, avant la réouverture de février",
        ),
        "2 500 €",
        "Mise en relation : Anaïs / Gaëlle (crêperie)",
        "utf-8",
        "utf-8",
    ),
    Case(
        "request_iphone_png_in_related_inside_alternative.eml",
        ("Siobhán Ó Briain", "siobhan@obriain-web.example"),
        ("Rónán Mac Giolla Phádraig", "ronan@galway-gallery.example"),
        ("a new website with online sales", "art gallery in Galway – ready before the spring"),
        "€6,000",
        "Siobhán / Rónán – gallery website",
        "utf-8",
        "utf-8",
    ),
    Case(
        "request_cdo_french_declared_us_ascii_windows1252_bytes.eml",
        ("Thérèse Vasseur", "therese@vasseur-expertise.example"),
        ("Gaëtan Mercier", "gaetan@fromagerie-mercier.example"),
        ("reprise de la comptabilité de la fromagerie", "après le départ de l’ancien expert"),
        "",
        "Mise en relation - dossier 2026-118",
        "us-ascii",
        "cp1252",
    ),
]

IDS = [
    "outlook-web-html-only-de-windows1252-qp",
    "thunderbird-ro-iso8859-2-qp-flowed",
    "outlook-ro-windows1250-8bit",
    "outlook-ar-windows1256-base64-rtl",
    "the-bat-fr-says-latin1-is-windows1252-8bit",
    "gmail-id-utf8-base64",
    "mailutils-ro-says-us-ascii-is-utf8",
    "php-form-de-no-charset-utf8",
    "apple-mail-fr-docx-in-mixed-in-alternative",
    "iphone-en-png-in-related-in-alternative",
    "cdo-fr-says-us-ascii-is-windows1252-8bit",
]
BY_ID = dict(zip(IDS, CASES, strict=True))


every_case = pytest.mark.parametrize("case", CASES, ids=IDS)


def draft_of(name: str) -> RequestDraft:
    return parse_request(parse_message(fixture_bytes(name)), REFERRER)


def texts_of(draft: RequestDraft) -> list[str]:
    parties = (draft.provider, draft.prospect)
    return [
        draft.need,
        draft.budget,
        *(p.given for p in parties),
        *(p.mailbox.name for p in parties if p.mailbox),
        *(p.prefers for p in parties),
        *(p.best_time for p in parties),
        *(p.phone for p in parties),
    ]


# ------------------------------------------------------------------ the fixtures are what they say


@every_case
def test_the_text_part_really_is_in_that_charset(case):
    """Guards the fixtures themselves: the bytes are the encoding named, not re-saved UTF-8."""
    part = parse_message(fixture_bytes(case.fixture)).get_body(("plain", "html"))
    assert part.get_content_charset() == case.declared
    payload = part.get_payload(decode=True)
    assert case.need[0].encode(case.codec) in payload
    if case.codec != "utf-8":
        with pytest.raises(UnicodeDecodeError):
            payload.decode("utf-8")


# ------------------------------------------------------------------ what the parser reads


@every_case
def test_people_and_need_come_through_every_encoding(case):
    draft = draft_of(case.fixture)
    assert (draft.provider.mailbox.name, draft.provider.mailbox.address) == case.provider
    assert (draft.prospect.mailbox.name, draft.prospect.mailbox.address) == case.prospect
    for piece in case.need:
        assert piece in draft.need
    assert draft.budget == case.budget
    for text in texts_of(draft):
        assert not MOJIBAKE.search(text), text


@every_case
def test_subject_is_decoded_like_the_body(case):
    subject = draft_of(case.fixture).subject
    assert not MOJIBAKE.search(subject), subject
    assert subject == case.subject


ALTERNATIVES = {
    case_id: case
    for case_id, case in BY_ID.items()
    if parse_message(fixture_bytes(case.fixture)).get_content_type() == "multipart/alternative"
}


@pytest.mark.parametrize("case", ALTERNATIVES.values(), ids=ALTERNATIVES.keys())
def test_the_html_alternative_tells_the_same_request(case):
    """Read alone, the HTML part (RTL, Word markup, nested in mixed or related) gives the same
    request as the plain part: what we would read if a client sent only HTML."""
    html = parse_message(fixture_bytes(case.fixture)).get_body(("html",))
    assert html is not None and html.get_content_type() == "text/html"
    from_html = parse_request(html, REFERRER)
    from_plain = draft_of(case.fixture)
    assert from_html.provider.mailbox == from_plain.provider.mailbox
    assert from_html.prospect.mailbox == from_plain.prospect.mailbox
    assert from_html.need == from_plain.need
    assert from_html.budget == from_plain.budget


def test_the_html_only_mail_keeps_bold_labels_and_word_markup_out_of_the_values():
    draft = draft_of(BY_ID["outlook-web-html-only-de-windows1252-qp"].fixture)
    # "Telefon" is the German for a method we know, so the rest is the best time.
    assert (draft.provider.prefers, draft.provider.best_time) == ("phone", "vormittags")
    assert draft.provider.booking == "https://termine.example/weiss"
    assert draft.prospect.phone == "+49 89 2180 4471"
    assert draft.need == (
        "Lohnbuchhaltung und Jahresabschluss für eine Bäckerei mit drei Filialen in München "
        "– Übergabe vom bisherigen Büro bis Ende Januar"
    )


def test_the_rtl_request_reads_its_arabic_party_fields():
    draft = draft_of(BY_ID["outlook-ar-windows1256-base64-rtl"].fixture)
    assert draft.provider.prefers == "البريد الإلكتروني، صباحاً"
    assert draft.prospect.phone == "0791234567"


@pytest.mark.parametrize(
    ("case_id", "kind", "filename", "looks_like"),
    [
        (
            "apple-mail-fr-docx-in-mixed-in-alternative",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "Cahier des charges crêperie.docx",
            lambda data: "word/document.xml" in zipfile.ZipFile(io.BytesIO(data)).namelist(),
        ),
        (
            "iphone-en-png-in-related-in-alternative",
            "image/png",
            "IMG_0412.png",
            lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
        ),
    ],
    ids=["docx", "png"],
)
def test_an_attachment_is_carried_but_never_read(case_id, kind, filename, looks_like):
    case = BY_ID[case_id]
    message = parse_message(fixture_bytes(case.fixture))
    [attached] = [p for p in message.walk() if p.get_content_type() == kind]
    assert attached.get_filename() == filename
    assert looks_like(attached.get_payload(decode=True))
    draft = draft_of(case.fixture)
    assert draft.provider.mailbox.address == case.provider[1]
    assert filename not in " ".join(texts_of(draft))


# ------------------------------------------------------------------ through intake


@every_case
def test_every_encoding_becomes_a_referral_with_the_right_names(ctx, case):
    received = receiving.receive(
        fixture_bytes(case.fixture), REFERRER, ["refer@intro.example.org"], Channel.SMTP, NOW
    )
    pipeline.process_pending(ctx, NOW)
    record = queries.inbound_by_id(received.inbound_id)
    assert record.state == "processed", record.note
    referral = queries.referral_by_ref(record.note)
    assert referral.state == "asking"
    provider, prospect = referral.party(Role.PROVIDER), referral.party(Role.PROSPECT)
    assert (provider.name, provider.email) == case.provider
    assert (prospect.name, prospect.email) == case.prospect
    for piece in case.need:
        assert piece in referral.need
    assert [(p, r) for p, _, r in queries.outbox_for_referral(referral.id)] == [
        ("receipt", (REFERRER,)),
        ("consent_request", (case.provider[1],)),
        ("consent_request", (case.prospect[1],)),
    ]


# ------------------------------------------------------------------ decoding, stage by stage


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        ("Hélène Dubois".encode(), "iso-8859-1", "Hélène Dubois"),
        ("Hélène – l’idée".encode("cp1252"), "iso-8859-1", "Hélène – l’idée"),
        ("Hélène – l’idée".encode("cp1252"), "us-ascii", "Hélène – l’idée"),
        ("Ştefan Rădulescu".encode("iso8859_2"), "iso-8859-2", "Ştefan Rădulescu"),
        ("Jürgen".encode("cp1252"), "x-unknown-8bit", "Jürgen"),
        ("مرحبا بكم".encode("cp1256"), None, "مرحبا بكم"),
    ],
    ids=[
        "utf8-labelled-latin1",
        "windows1252-labelled-latin1",
        "windows1252-labelled-us-ascii",
        "iso8859-2-as-labelled",
        "unknown-label",
        "arabic-unlabelled",
    ],
)
def test_bytes_are_read_as_their_sender_meant_them(data, declared, expected):
    assert decode(data, declared) == expected


def test_invisible_direction_marks_do_not_hide_a_label():
    message = parse_message(
        "From: Ada Lovelace <ada@referrer.example>\nSubject: تعريف\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        "\u200fالمزود: سارة الخطيب <sara@khatib-law.example>\n"
        "\u200f\u202bالعميل: أحمد منصور <ahmad@mansour-trading.example>\u202c\n"
        "\ufeffالحاجة: محامٍ لتأسيس شركة تجارية جديدة\n".encode()
    )
    draft = parse_request(message, REFERRER)
    assert draft.provider.mailbox.address == "sara@khatib-law.example"
    assert draft.prospect.mailbox.name == "أحمد منصور"
    assert draft.need == "محامٍ لتأسيس شركة تجارية جديدة"
