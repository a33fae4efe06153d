"""Replies to the consent question, read as the person meant them, from real clients' mail."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.model import DeclineReason
from service.reading import replies
from service.reading.bodies import body_text
from service.reading.quotes import new_text
from service.reading.replies import ReplyReading, Verdict, read_answer
from service.reading.request import parse_message
from service.reading.text import fold
from tests.conftest import fixture_bytes

YES, NO, UNCLEAR = Verdict.YES, Verdict.NO, Verdict.UNCLEAR
NOT_RELEVANT = DeclineReason.NOT_RELEVANT
NO_NEED_NOW = DeclineReason.NO_NEED_NOW
NOT_A_FIT = DeclineReason.NOT_A_FIT
OTHER = DeclineReason.OTHER

# The question each consent mail asks, in its language: quoted in every fixture.
QUESTION = {
    "en": "Reply yes or no",
    "de": "Antworten Sie mit Ja oder Nein",
    "fr": "Répondez oui ou non",
    "ro": "Răspundeți da sau nu",
    "id": "Balas ya atau tidak",
    "ar": "أجب بنعم",
}
LINK = "intro.example.org/c/k7q3x9m2p4w8r6t1/"


@dataclass(frozen=True)
class Reply:
    fixture: str
    lang: str
    verdict: Verdict
    reason: DeclineReason | None
    said: str  # words the person wrote, which new_text keeps
    gone: tuple[str, ...]  # signature, attribution, header lines in the mail, not in new_text
    because: str = ""  # words the reason_text holds


REPLIES = [
    # ------------------------------------------------------------------ English
    Reply(
        "reply_gmail_top_en_yes.eml",
        "en",
        YES,
        None,
        "Yes please, happy to be introduced!",
        ("Acme Tax & Accounts", "+44 20 7946 0958", "wrote:"),
    ),
    Reply("reply_gmail_quote_only_en_unclear.eml", "en", UNCLEAR, None, "", ("wrote:",)),
    Reply(
        "reply_outlook_top_en_no_not_relevant.eml",
        "en",
        NO,
        NOT_RELEVANT,
        "No thank you – this isn’t relevant to me",
        ("________________", "Sent: Monday, November 16, 2026", "Subject: A possible"),
        "we only survey commercial property",
    ),
    Reply(
        "reply_outlook_original_message_en_no_need_now.eml",
        "en",
        NO,
        NO_NEED_NOW,
        "Yes, but not now",
        ("-----Original Message-----", "[mailto:", "Sent: 16 November 2026"),
        "fully booked until the spring",
    ),
    Reply(
        "reply_iphone_top_en_unclear.eml",
        "en",
        UNCLEAR,
        None,
        "Maybe – who is it?",
        ("Sent from my iPhone", "wrote:"),
    ),
    Reply(
        "reply_thunderbird_bottom_en_no_other.eml",
        "en",
        NO,
        OTHER,
        "No thanks.",
        ("Benson Accounts Ltd", "01632 960 123", "wrote:"),
        "We already look after a bakery chain in the same town and it would be a conflict",
    ),
    Reply(
        "reply_iphone_top_en_no_absolutely_not.eml",
        "en",
        NO,
        None,
        "Absolutely not.",
        ("Sent from my iPhone", "wrote:"),
    ),
    # ------------------------------------------------------------------ German
    Reply(
        "reply_gmail_top_de_no_natuerlich_nicht.eml",
        "de",
        NO,
        OTHER,
        "natürlich nicht.",
        ("schrieb Introductions",),
        "Wir beraten nur Gewerbekunden",
    ),
    Reply(
        "reply_outlook_top_de_no_no_need_now.eml",
        "de",
        NO,
        NO_NEED_NOW,
        "vielen Dank, aber im Moment nicht",
        ("Gesendet: Montag", "Betreff: Eine", "______"),
        "bis Ende Januar ausgebucht",
    ),
    Reply(
        "reply_gmail_top_de_yes.eml",
        "de",
        YES,
        None,
        "ja, gerne!",
        ("schrieb Introductions",),
    ),
    Reply(
        "reply_iphone_top_de_unclear.eml",
        "de",
        UNCLEAR,
        None,
        "Ja, aber nein",
        ("Von meinem iPhone gesendet", "schrieb Introductions"),
    ),
    Reply(
        "reply_html_only_de_no.eml",
        "de",
        NO,
        None,
        "lieber nicht, danke.",
        ("Gesendet: Montag", "Betreff: Eine"),
    ),
    Reply(
        "reply_thunderbird_bottom_de_no_not_a_fit.eml",
        "de",
        NO,
        NOT_A_FIT,
        "Nein, das passt leider nicht",
        ("Roth Beratung GmbH", "Tel. 089 1234567", "schrieb Introductions"),
        "wir beraten ausschließlich Freiberufler",
    ),
    # ------------------------------------------------------------------ French
    Reply(
        "reply_gmail_top_fr_no_not_a_fit.eml",
        "fr",
        NO,
        NOT_A_FIT,
        "Non merci, cela ne correspond pas",
        ("a écrit",),
        "professions libérales",
    ),
    Reply(
        "reply_apple_mail_top_fr_yes.eml",
        "fr",
        YES,
        None,
        "Oui, avec plaisir !",
        ("a écrit",),
    ),
    Reply(
        "reply_thunderbird_bottom_fr_unclear.eml",
        "fr",
        UNCLEAR,
        None,
        "je ne suis pas sûre",
        ("Cabinet Girard", "a écrit"),
    ),
    Reply(
        "reply_outlook_ios_top_fr_yes.eml",
        "fr",
        YES,
        None,
        "D'accord, volontiers.",
        ("Obtenir Outlook pour iOS", "Envoyé :", "Objet :", "______"),
    ),
    # ------------------------------------------------------------------ Romanian
    Reply(
        "reply_gmail_top_ro_yes.eml",
        "ro",
        YES,
        None,
        "Da, cu plăcere!",
        ("a scris",),
    ),
    Reply(
        "reply_outlook_top_ro_no_not_relevant.eml",
        "ro",
        NO,
        NOT_RELEVANT,
        "Nu, mulţumesc.",
        ("Trimis: luni", "Subiect: O posibil", "______"),
        "lucrez doar cu firme din IT",
    ),
    Reply(
        "reply_iphone_top_ro_no_need_now.eml",
        "ro",
        NO,
        NO_NEED_NOW,
        "Nu acum, poate mai târziu.",
        ("Trimis de pe iPhone-ul meu", "a scris"),
        "Nu acum, poate mai târziu.",
    ),
    Reply(
        "reply_thunderbird_bottom_ro_unclear.eml",
        "ro",
        UNCLEAR,
        None,
        "Nu știu încă.",
        ("Dumitrescu Audit SRL", "a scris"),
    ),
    # ------------------------------------------------------------------ Indonesian
    Reply(
        "reply_gmail_top_id_yes.eml",
        "id",
        YES,
        None,
        "Ya, boleh.",
        ("menulis:",),
    ),
    Reply(
        "reply_outlook_top_id_no_other.eml",
        "id",
        NO,
        OTHER,
        "Tidak, terima kasih.",
        ("Dikirim: Senin", "Subjek: Kemungkinan", "______"),
        "Kami sudah punya konsultan pajak tetap untuk usaha roti.",
    ),
    Reply(
        "reply_html_only_id_unclear.eml",
        "id",
        UNCLEAR,
        None,
        "Mungkin. Boleh tahu siapa orangnya?",
        ("menulis:",),
    ),
    Reply(
        "reply_thunderbird_bottom_id_no.eml",
        "id",
        NO,
        None,
        "Tidak usah, terima kasih.",
        ("Kantor Konsultan Pajak Lestari", "menulis:"),
    ),
    # ------------------------------------------------------------------ Arabic
    Reply(
        "reply_gmail_top_ar_no_not_a_fit.eml",
        "ar",
        NO,
        NOT_A_FIT,
        "لا، شكراً.",
        ("تمت كتابة ما يلي بواسطة",),
        "فأنا أعمل مع الشركات الكبيرة فقط",
    ),
    Reply(
        "reply_iphone_top_ar_yes.eml",
        "ar",
        YES,
        None,
        "نعم، بكل سرور",
        ("أُرسلت من الـ iPhone", "كتب"),
    ),
    Reply(
        "reply_outlook_top_ar_unclear.eml",
        "ar",
        UNCLEAR,
        None,
        "ربما، لست متأكداً بعد.",
        ("تم الإرسال:", "الموضوع:", "______"),
    ),
    Reply(
        "reply_html_only_ar_no_not_relevant.eml",
        "ar",
        NO,
        NOT_RELEVANT,
        "لا، شكراً.",
        ("تم الإرسال:", "الموضوع:"),
        "الطلب غير ذي صلة بعملي.",
    ),
]


def test_fixtures_cover_every_language_verdict_and_reason() -> None:
    for lang in QUESTION:
        mine = [r for r in REPLIES if r.lang == lang]
        assert len(mine) >= 3, lang
        assert {YES, NO} <= {r.verdict for r in mine}, lang
    assert {r.reason for r in REPLIES if r.reason} == set(DeclineReason)
    assert sum(1 for r in REPLIES if r.verdict is UNCLEAR) >= 4
    assert sum(1 for r in REPLIES if r.reason) >= 4


@pytest.mark.parametrize("reply", REPLIES, ids=[r.fixture[len("reply_") : -4] for r in REPLIES])
def test_a_real_reply_is_read_as_the_person_meant_it(reply: Reply) -> None:
    message = parse_message(fixture_bytes(reply.fixture))
    reading = read_answer(new_text(message))
    assert (reading.verdict, reading.reason) == (reply.verdict, reply.reason)
    if reply.reason is None:
        assert reading.reason_text == ""
    else:
        assert reply.because in reading.reason_text
        assert len(reading.reason_text) <= 300


@pytest.mark.parametrize("reply", REPLIES, ids=[r.fixture[len("reply_") : -4] for r in REPLIES])
def test_new_text_keeps_the_persons_words_and_nothing_quoted_or_signed(reply: Reply) -> None:
    message = parse_message(fixture_bytes(reply.fixture))
    whole = body_text(message) or ""
    text = new_text(message)
    # The quoted original asks the question in so many words: a naive reader finds both.
    assert fold(QUESTION[reply.lang]) in fold(whole)
    assert fold(QUESTION[reply.lang]) not in fold(text)
    assert LINK in whole and LINK not in text
    for line in reply.gone:
        assert line in whole, line
        assert line not in text, line
    if reply.said:
        assert reply.said in text
    else:
        assert text == ""


# ----------------------------------------------------------------------------- read_answer

YES_PHRASES = [
    # English
    "Yes",
    "yes!",
    "YES PLEASE",
    "Yeah sure",
    "Yep 👍",
    "Sure, happy to.",
    "OK",
    "o.k.",
    "Okay, go ahead.",
    "Happy to!",
    "Gladly.",
    "Please do.",
    "Sounds good to me",
    "Hi Ada,\n\nyes – please introduce us.",
    "Of course!",
    "Why not!",
    "No problem, happy to help.",
    "Thanks for asking! Yes, I'd love to.",
    "Dear Ada, count me in.",
    "Yes please\n\n> Would you like to be introduced? Reply yes or no",
    # German
    "Ja",
    "ja bitte",
    "Gerne!",
    "Gern.",
    "Klar",
    "Ja, gerne!",
    "Hallo,\nja gerne",
    "Hallo ja gerne",
    "Sehr gerne, danke!",
    "Warum nicht?",
    "Kein Problem, gerne.",
    "Einverstanden.",
    # French
    "Oui",
    "OUI !",
    "oui merci",
    "Avec plaisir.",
    "Volontiers",
    "D'accord",
    "Bonjour, oui avec plaisir",
    "Bien sûr !",
    "Pourquoi pas !",
    # Romanian
    "Da",
    "Da!",
    "Da, cu plăcere.",
    "Cu plăcere!",
    "Sigur.",
    "Bună, da, sigur",
    "Desigur",
    "DA, MULȚUMESC",
    "Bună ziua,\n\nda, vă rog.",
    # Indonesian
    "Ya",
    "Ya, boleh",
    "Boleh",
    "Tentu!",
    "Mau",
    "Baik, terima kasih.",
    "Halo, ya boleh",
    "Iya, silakan.",
    "Oke",
    # Arabic
    "نعم",
    "نعم!",
    "أجل",
    "بكل سرور",
    "موافق",
    "مرحبا، نعم بكل سرور",
    "نعم، موافق.",
    "لا مانع لدي",
]

NO_PHRASES = [
    # English
    "No",
    "no.",
    "Nope",
    "No thanks",
    "No, thank you.",
    "Not interested.",
    "Hi Ada, no thanks.",
    "Thanks, but no.",
    "No.\n\nBest,\nJane",
    "No thanks!\nJane Roe",
    "I'll pass, thanks.",
    "Unfortunately not.",
    "> Would you like to be introduced? Reply yes or no\n\nNo thanks",
    # German
    "Nein",
    "Nein danke",
    "Kein Interesse.",
    "Lieber nicht.",
    "Hallo, nein danke.",
    "Danke, nein.",
    "Interessiert mich nicht.",
    "Leider nicht.",
    # French
    "Non",
    "Non merci",
    "Pas intéressé.",
    "Bonjour, non merci.",
    "Merci, mais non.",
    "Ça ne m'intéresse pas.",
    "Malheureusement pas.",
    # Romanian
    "Nu",
    "Nu, mulțumesc",
    "Nu mulţumesc.",
    "Nu sunt interesat.",
    "Bună, nu mulțumesc",
    # Indonesian
    "Tidak",
    "Tidak usah",
    "Tidak tertarik.",
    "Tidak, terima kasih.",
    "Halo, tidak usah.",
    "Maaf ya, tidak.",
    # Arabic
    "لا",
    "لا شكرا",
    "لا، شكراً",
    "غير مهتم",
    "مرحبا، لا شكرا",
    "كلا.",
    # A yes word taken back by the next one
    "Absolutely not.",
    "Definitely not, thanks",
    "Of course not!",
    "Certainly not",
    "Absolutely no",
    "Natürlich nicht.",
    "Sicher nicht",
    "Klar nicht, danke",
    "Auf keinen Fall",
    "Certainement pas",
    "Absolument pas.",
    "Bien sûr que non",
    "Sigur nu",
    "Desigur că nu.",
    "Tentu tidak",
    "طبعا لا",
    "بالتأكيد لا",
]

REASONED = [
    # not relevant
    ("Not relevant to me.", NOT_RELEVANT),
    ("No – not relevant to me, sorry.", NOT_RELEVANT),
    ("Nicht relevant für mich.", NOT_RELEVANT),
    ("Nein, das ist für mich nicht relevant.", NOT_RELEVANT),
    ("Pas pertinent pour moi.", NOT_RELEVANT),
    ("Non, ce n'est pas pertinent pour moi.", NOT_RELEVANT),
    ("Nu e relevant pentru mine.", NOT_RELEVANT),
    ("Tidak relevan untuk saya.", NOT_RELEVANT),
    ("غير مناسب لي", NOT_RELEVANT),
    ("هذا غير ذي صلة بعملي", NOT_RELEVANT),
    # no need now
    ("Not right now.", NO_NEED_NOW),
    ("No need at the moment, thanks.", NO_NEED_NOW),
    ("No thanks, not at the moment.", NO_NEED_NOW),
    ("Maybe later.", NO_NEED_NOW),
    ("Yes, but not now.", NO_NEED_NOW),
    ("Im Moment nicht.", NO_NEED_NOW),
    ("Nein, im Moment nicht.", NO_NEED_NOW),
    ("Ja, aber nicht jetzt.", NO_NEED_NOW),
    ("Vielleicht später.", NO_NEED_NOW),
    ("Pas pour le moment, merci.", NO_NEED_NOW),
    ("Non, pas maintenant.", NO_NEED_NOW),
    ("Oui, mais pas maintenant.", NO_NEED_NOW),
    ("Nu acum.", NO_NEED_NOW),
    ("Nu, nu acum.", NO_NEED_NOW),
    ("Da, dar nu acum.", NO_NEED_NOW),
    ("Belum perlu.", NO_NEED_NOW),
    ("Tidak sekarang, terima kasih.", NO_NEED_NOW),
    ("Ya, tapi belum sekarang.", NO_NEED_NOW),
    ("ليس الآن", NO_NEED_NOW),
    ("لا، ليس الآن", NO_NEED_NOW),
    ("نعم، لكن ليس الآن", NO_NEED_NOW),
    ("No thanks, we are fully booked at the moment.", NO_NEED_NOW),
    # not a fit
    ("Not a fit for us.", NOT_A_FIT),
    ("No, not a good fit.", NOT_A_FIT),
    ("Passt nicht.", NOT_A_FIT),
    ("Nein, passt nicht zu uns.", NOT_A_FIT),
    ("Ça ne correspond pas.", NOT_A_FIT),
    ("Non, cela ne me convient pas.", NOT_A_FIT),
    ("Nu se potrivește.", NOT_A_FIT),
    ("Nu, nu se potrivește.", NOT_A_FIT),
    ("Tidak cocok.", NOT_A_FIT),
    ("Tidak, kurang cocok untuk kami.", NOT_A_FIT),
    ("لا يناسبني", NOT_A_FIT),
    ("لا، هذا لا يناسبني", NOT_A_FIT),
]

OTHER_REASONS = [
    ("No thanks, we already have an accountant we are happy with.", "we already have an"),
    ("Nein danke. Wir haben bereits einen Steuerberater.", "Wir haben bereits einen"),
    ("Non merci, nous avons déjà un expert-comptable.", "nous avons déjà un expert-comptable"),
    ("Nu, mulțumesc. Avem deja un contabil.", "Avem deja un contabil."),
    ("Tidak, kami sudah punya akuntan.", "kami sudah punya akuntan."),
    ("لا شكرا، لدينا محاسب بالفعل.", "لدينا محاسب بالفعل."),
]

UNCLEAR_PHRASES = [
    # English
    "Maybe",
    "maybe?",
    "Who is it?",
    "I'll think about it.",
    "Not sure.",
    "I'm not sure yet",
    "Yes… no wait",
    "Yes no",
    "Tell me more first.",
    "Not happy to",
    "Call me tomorrow.",
    "It depends.",
    "I don't know.",
    "",
    "   \n ",
    "Hi Ada,",
    "> Would you like to be introduced? Reply yes or no",
    # German
    "Vielleicht",
    "Ja, aber nein",
    "Nicht sicher.",
    "Ich weiß nicht.",
    "Wer ist das?",
    "Jein",
    "Nicht gerne.",
    "Da ich gerade viel zu tun habe, melde ich mich nächste Woche.",
    # French
    "Peut-être",
    "Pas sûr.",
    "Je ne sais pas.",
    "C'est qui ?",
    "Je vais réfléchir.",
    "Oui… non, attendez",
    # Romanian
    "Poate",
    "Nu sunt sigur.",
    "Nu știu.",
    "Cine este?",
    "Mă gândesc.",
    "Da... nu, stai",
    # Indonesian
    "Mungkin",
    "Tidak yakin.",
    "Siapa ya?",
    "Saya pikir-pikir dulu.",
    "Ya tidak",
    # Arabic
    "ربما",
    "لست متأكدا",
    "من هو؟",
    "سأفكر في الأمر",
    "نعم لا",
]


@pytest.mark.parametrize("text", YES_PHRASES)
def test_yes(text: str) -> None:
    assert read_answer(text) == ReplyReading(YES)


@pytest.mark.parametrize("text", NO_PHRASES)
def test_no_without_a_reason(text: str) -> None:
    assert read_answer(text) == ReplyReading(NO)


@pytest.mark.parametrize(("text", "reason"), REASONED)
def test_no_with_a_reason_it_names(text: str, reason: DeclineReason) -> None:
    reading = read_answer(text)
    assert (reading.verdict, reading.reason) == (NO, reason)
    assert reading.reason_text and fold(reading.reason_text) in fold(text)


@pytest.mark.parametrize(("text", "because"), OTHER_REASONS)
def test_no_with_words_of_its_own(text: str, because: str) -> None:
    reading = read_answer(text)
    assert (reading.verdict, reading.reason) == (NO, OTHER)
    assert reading.reason_text.startswith(because)


@pytest.mark.parametrize("text", UNCLEAR_PHRASES)
def test_unclear(text: str) -> None:
    assert read_answer(text) == ReplyReading(UNCLEAR)


def test_yes_but_not_now_keeps_the_persons_words() -> None:
    reading = read_answer("Yes, but not now – we're fully booked until spring. Ask me in April.")
    assert reading == ReplyReading(
        NO, NO_NEED_NOW, "not now – we're fully booked until spring. Ask me in April."
    )


def test_reason_text_is_the_first_sentence_or_two_and_short() -> None:
    reading = read_answer("No. " + "We have far too much work on our plate this year " * 10)
    assert reading.reason is OTHER
    assert len(reading.reason_text) <= 300
    assert reading.reason_text.startswith("We have far too much work")
    two = read_answer("No thanks. We have an adviser. She is great. We are loyal to her.")
    assert two.reason_text == "We have an adviser. She is great."


def test_only_the_first_words_decide() -> None:
    assert read_answer("Yes please.\n\nNo need to send anything else.").verdict is YES
    assert read_answer("No thanks.\n\nYes, I got your mail last week.").verdict is NO


@pytest.mark.parametrize(
    "text", ["Absolutely, not a problem", "Sure, not a problem at all", "Of course, no problem"]
)
def test_a_yes_word_before_a_comma_stays_a_yes(text: str) -> None:
    assert read_answer(text).verdict is YES


@given(
    st.sampled_from(replies.YES_WORDS),
    st.sampled_from(sorted(replies.NEGATORS)),
    st.sampled_from(["", ".", "!", " thanks", " danke", " merci"]),
    st.booleans(),
)
def test_no_yes_word_followed_by_a_negation_reads_as_a_yes(
    yes: str, negation: str, end: str, capital: bool
) -> None:
    # Consent is the product: "Gladly not" may be asked again, never taken as a yes.
    text = f"{yes} {negation}{end}"
    reading = read_answer(text.capitalize() if capital else text)
    assert reading.verdict is not YES, text


@given(st.text(max_size=400))
def test_any_text_reads_as_a_verdict_with_a_reason_only_for_no(text: str) -> None:
    reading = read_answer(text)
    assert reading.verdict in set(Verdict)
    if reading.verdict is not NO:
        assert reading.reason is None and reading.reason_text == ""
    assert len(reading.reason_text) <= 300


# ----------------------------------------------------------------------------- new_text


def plain_message(text: str, subtype: str = "plain") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jane Roe <jane@acme.example>"
    message["To"] = "Introductions <refer+k7q3x9m2p4w8r6t1@intro.example.org>"
    message["Subject"] = "Re: A possible introduction from Ada Lovelace"
    message.set_content(text, subtype=subtype)
    return parse_message(message.as_bytes())


ORIGINAL = "Hello Jane,\n\nWould you like to be introduced? Reply yes or no, or click a link."

ATTRIBUTIONS = [
    "On Mon, Nov 16, 2026 at 9:14 AM Introductions <refer@intro.example.org> wrote:",
    "On Mon, Nov 16, 2026 at 9:14 AM Introductions <\nrefer@intro.example.org> wrote:",
    "Am Mo., 16. Nov. 2026 um 09:14 Uhr schrieb Introductions <refer@intro.example.org>:",
    "Le lun. 16 nov. 2026 à 09:14, Introductions <refer@intro.example.org> a écrit :",
    "În lun., 16 nov. 2026 la 09:14, Introductions <refer@intro.example.org> a scris:",
    "Pe 16.11.2026 09:14, Introductions a scris:",
    "Pada tanggal Sen, 16 Nov 2026 pukul 09.14 Introductions <refer@intro.example.org> menulis:",
    "في الاثنين، 16 نوفمبر 2026 في 9:14 ص، كتب Introductions <refer@intro.example.org>:",
]


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_an_attribution_ends_the_new_text_above_an_unmarked_original(attribution: str) -> None:
    message = plain_message(f"Yes please\n\n{attribution}\n\n{ORIGINAL}\n")
    assert new_text(message) == "Yes please"


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_bottom_posted_and_interleaved_answers_are_kept(attribution: str) -> None:
    quoted = "\n".join(f"> {line}" if line else ">" for line in ORIGINAL.split("\n"))
    body = f"{attribution}\n{quoted}\n\nNo thanks.\n\n> More quoted text\n\nJane\n\n-- \nJane Roe\n"
    assert new_text(plain_message(body)) == "No thanks.\n\nJane"


OUTLOOK_BLOCKS = [
    "-----Original Message-----\nFrom: Introductions <refer@intro.example.org>\n"
    "Sent: Monday, November 16, 2026 9:14 AM\nTo: Jane Roe\nSubject: An introduction",
    "________________________________\nFrom: Introductions <refer@intro.example.org>\n"
    "Sent: Monday, November 16, 2026 9:14 AM\nTo: Jane Roe\nSubject: An introduction",
    "-----Ursprüngliche Nachricht-----\nVon: Introductions <refer@intro.example.org>\n"
    "Gesendet: Montag, 16. November 2026 09:14\nAn: Jane Roe\nBetreff: Eine Vorstellung",
    "-----Message d'origine-----\nDe : Introductions <refer@intro.example.org>\n"
    "Envoyé : lundi 16 novembre 2026 09:14\nÀ : Jane Roe\nObjet : Une mise en relation",
    "-----Mesaj original-----\nDe la: Introductions <refer@intro.example.org>\n"
    "Trimis: luni, 16 noiembrie 2026 09:14\nCătre: Jane Roe\nSubiect: O recomandare",
    "-----Pesan Asli-----\nDari: Introductions <refer@intro.example.org>\n"
    "Dikirim: Senin, 16 November 2026 09.14\nKepada: Jane Roe\nSubjek: Perkenalan",
    "-----الرسالة الأصلية-----\nمن: Introductions <refer@intro.example.org>\n"
    "تم الإرسال: الاثنين، 16 نوفمبر، 2026 09:14 ص\nإلى: Jane Roe\nالموضوع: تعارف",
    # A header block with no line above it (Outlook desktop, its rule drawn in HTML only).
    "Von: Introductions <refer@intro.example.org>\nGesendet: Montag, 16. November 2026 09:14\n"
    "An: Jane Roe\nBetreff: Eine Vorstellung",
]


@pytest.mark.parametrize("block", OUTLOOK_BLOCKS)
def test_an_outlook_header_block_ends_the_new_text(block: str) -> None:
    message = plain_message(f"Gerne, danke!\n\nJane\n\n{block}\n\n{ORIGINAL}\n")
    assert new_text(message) == "Gerne, danke!\n\nJane"


FORWARDS = [
    "---------- Forwarded message ---------\nFrom: Bob <bob@bakery.example>\n"
    "Date: Mon, Nov 16, 2026 at 9:14 AM\nSubject: Bakery\nTo: <jane@acme.example>",
    "Begin forwarded message:\n\nFrom: Bob <bob@bakery.example>\nSubject: Bakery\n"
    "Date: 16 November 2026 at 09:14:22 GMT\nTo: Jane Roe <jane@acme.example>",
    "---------- Weitergeleitete Nachricht ---------\nVon: Bob <bob@bakery.example>\n"
    "Date: Mo., 16. Nov. 2026 um 09:14 Uhr\nSubject: Bäckerei",
    "Anfang der weitergeleiteten Nachricht:\n\nVon: Bob <bob@bakery.example>",
    "Début du message réexpédié :\n\nDe: Bob <bob@bakery.example>",
    "---------- Mesaj redirecționat ---------\nDe la: Bob <bob@bakery.example>",
    "---------- Pesan yang diteruskan ---------\nDari: Bob <bob@bakery.example>",
    "---------- الرسالة المُعاد توجيهها ---------\nمن: Bob <bob@bakery.example>",
]


@pytest.mark.parametrize("forward", FORWARDS)
def test_a_forward_block_ends_the_new_text(forward: str) -> None:
    message = plain_message(f"Yes please, and see below.\n\n{forward}\n\n{ORIGINAL}\n")
    assert new_text(message) == "Yes please, and see below."


SIGNATURES = [
    "-- \nJane Roe\nAcme Ltd",
    "--\nJane Roe",
    "Sent from my iPhone",
    "Sent from my Galaxy",
    "Get Outlook for Android<https://aka.ms/AAb9ysg>",
    "Get Outlook for iOS",
    "Von meinem iPhone gesendet",
    "Gesendet von Outlook für Android",
    "Outlook für iOS beziehen<https://aka.ms/o0ukef>",
    "Envoyé de mon iPhone",
    "Obtenir Outlook pour Android",
    "Trimis de pe iPhone",
    "Trimis de pe iPhone-ul meu",
    "Dikirim dari iPhone saya",
    "Dapatkan Outlook untuk Android",
    "أُرسلت من الـ iPhone",
    "أرسلت من الـ iPad الخاص بي",
]


@pytest.mark.parametrize("signature", SIGNATURES)
def test_a_signature_ends_the_new_text(signature: str) -> None:
    message = plain_message(f"Da, cu plăcere.\n\n{signature}\n\n> {ORIGINAL}\n")
    assert new_text(message) == "Da, cu plăcere."


def test_html_only_reply_loses_its_gmail_quote() -> None:
    html = (
        '<div dir="ltr">Oui, avec plaisir !</div><br><div class="gmail_quote">'
        '<div dir="ltr" class="gmail_attr">Le lun. 16 nov. 2026 à 09:14, Introductions '
        "&lt;refer@intro.example.org&gt; a écrit&nbsp;:<br></div>"
        '<blockquote class="gmail_quote">Bonjour, Répondez oui ou non.</blockquote></div>'
    )
    text = new_text(plain_message(html, subtype="html"))
    assert text == "Oui, avec plaisir !"
    assert read_answer(text) == ReplyReading(YES)


def test_a_reply_of_only_the_quote_has_no_new_text() -> None:
    quoted = "\n".join(f"> {line}" for line in ORIGINAL.split("\n"))
    message = plain_message(f"{ATTRIBUTIONS[0]}\n{quoted}\n")
    assert new_text(message) == ""
    assert read_answer(new_text(message)) == ReplyReading(UNCLEAR)


def test_a_sentence_that_merely_starts_like_an_attribution_is_kept() -> None:
    text = "On Monday I can talk, yes please.\nAm Dienstag auch.\n"
    assert new_text(plain_message(text)) == text.strip()


# Answers our translators found people of each language write to our own questions.
@pytest.mark.parametrize(
    ("text", "verdict", "reason"),
    [
        ("Bersedia", "yes", None),
        ("Saya bersedia", "yes", None),
        ("Klingt gut", "yes", None),
        ("Allez-y", "yes", None),
        ("Mettez-nous en relation", "yes", None),
        ("Ce n'est pas le bon moment", "no", "no_need_now"),
        ("Zurzeit keinen Bedarf", "no", "no_need_now"),
        ("Tidak dulu", "no", "no_need_now"),
        ("Nicht nötig", "no", None),
        ("Accept", "yes", None),
        ("Refuz", "no", None),
        ("Nu e momentul potrivit", "no", "no_need_now"),
        ("لا بأس", "yes", None),
        ("أوافق", "yes", None),
        ("مشغول حاليا", "no", "no_need_now"),
    ],
)
def test_answers_the_translations_invite(text, verdict, reason):
    reading = read_answer(text)
    assert (reading.verdict.value, reading.reason) == (verdict, reason)
