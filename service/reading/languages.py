"""Pure: which of our six languages a code, labels or text is in, by rules, no detection library."""

# Rules, not a language-detection library: we choose among six languages only, mostly from a
# handful of labels or a two-line note, where general detectors guess wildly (and name languages
# we do not serve); the words and letters each language cannot do without decide better.

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from fractions import Fraction

from service.reading.labels import fold_label
from service.reading.text import fold

# ISO 639-1, 639-2 (bibliographic and terminology) and 639-3 codes, and the old "in" and "mo"
# that older systems still send for Indonesian and Moldovan (written Romanian).
_CODES = {
    **dict.fromkeys(("en", "eng"), "en"),
    **dict.fromkeys(("de", "deu", "ger"), "de"),
    **dict.fromkeys(("fr", "fra", "fre"), "fr"),
    **dict.fromkeys(("ro", "ron", "rum", "mo", "mol"), "ro"),
    **dict.fromkeys(("id", "ind", "in"), "id"),
    **dict.fromkeys(("ar", "ara", "arb"), "ar"),
}
_TAG = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]{1,8})*")

# Each language's name as our six languages write it, folded (case and accents gone), in the
# forms people type after "Prospect language:": adjective, feminine, "limba …", "bahasa …".
_LATIN_NAMES = {
    "en": "english englisch anglais anglaise engleza englezeste inggris",
    "de": "german deutsch deutsche allemand allemande germana germaneste jerman",
    "fr": "french franzosisch francais francaise franceza franceze prancis perancis",
    "ro": "romanian rumanisch roumain roumaine romana romaneste rumania",
    "id": "indonesian indonesisch indonesien indonesienne indoneziana indonesia bahasa",
    "ar": "arabic arabisch arabe araba arab",
}
# Arabic names are a stem with the adjective ending -ي or -ية, with or without the article;
# `fold` has already turned أ and إ into ا.
_ARABIC_STEMS = {
    "en": ("انجليز", "انكليز"),
    "de": ("المان",),
    "fr": ("فرنس",),
    "ro": ("رومان",),
    "id": ("اندونيس",),
    "ar": ("عرب",),
}
_NAMES = {
    **{name: code for code, names in _LATIN_NAMES.items() for name in names.split()},
    **{
        article + stem + ending: code
        for code, stems in _ARABIC_STEMS.items()
        for stem in stems
        for article in ("", "ال")
        for ending in ("ي", "ية")
    },
}
# "limba română", "bahasa Jerman", "اللغة العربية", "die deutsche Sprache" minus its noun.
_LANGUAGE_WORD = re.compile(r"^(?:limba|bahasa|langue|la langue|die|اللغة)\s+|\s+sprache$")
_TRAILING = ".,;:!?)]*_،؛۔ \t"


def language_code(value: str) -> str | None:
    """What someone wrote after "Prospect language:" -> our code, or None.

    Codes and tags ("de-AT", "fr_CA", "ind", "in") and names in any of our six languages
    ("Deutsch", "roumain", "Bahasa Indonesia", "العربية"), case- and accent-blind.
    """
    text = " ".join(fold(value).strip(_TRAILING).split())
    if text in _NAMES:
        return _NAMES[text]
    bare = _LANGUAGE_WORD.sub("", text)
    if bare in _NAMES:
        return _NAMES[bare]
    tag = _TAG.fullmatch(text)
    return _CODES.get(tag.group(1)) if tag else None


# The words of each language's request labels: the parser's tables (reading/labels.py) hold
# them by field, not by language, so which language writes which word is said here.
_LABEL_TERMS = {
    "en": "provider|prospect|email|e-mail|mail|phone|prefers|best time|booking|language|"
    "time zone|timezone|need|budget|follow up|copy me|cc me",
    "de": "anbieter|anbieters|anbieterin|interessent|interessenten|interessentin|email|e-mail|"
    "mail|telefon|bevorzugt|beste zeit|terminbuchung|sprache|zeitzone|bedarf|budget|nachfassen|"
    "kopie an mich|mich in kopie",
    "fr": "prestataire|prospect|client|intéressé|intéressée|courriel|email|e-mail|mail|"
    "téléphone|préfère|meilleur moment|rendez-vous|langue|fuseau horaire|besoin|budget|suivi|"
    "copie pour moi|mettez moi en copie|copie moi",
    "ro": "furnizor|furnizorul|furnizorului|client|clientul|clientului|email|e-mail|mail|emailul|"
    "e-mailul|telefon|telefonul|preferă|cel mai bun moment|programare|programarea|limba|fus orar|"
    "fusul orar|nevoie|buget|urmărire|trimiteți mi o copie|copie pentru mine",
    "id": "penyedia|calon klien|email|e-mail|mail|telepon|lebih suka|waktu terbaik|janji temu|"
    "bahasa|zona waktu|kebutuhan|anggaran|tindak lanjut|tembusan untuk saya|kirim salinan ke saya",
    "ar": "المزود|مزود|للمزود|العميل|عميل|للعميل|البريد الإلكتروني|هاتف|يفضل|أفضل وقت|حجز موعد|"
    "اللغة|لغة|المنطقة الزمنية|"
    "الحاجة|الميزانية|المتابعة|نسخة لي|أرسل لي نسخة",
}
_WORD = re.compile(r"\w+")


def _label_words() -> dict[str, frozenset[str]]:
    languages: dict[str, set[str]] = {}
    for code, terms in _LABEL_TERMS.items():
        for term in terms.split("|"):
            for word in _WORD.findall(fold_label(term)):
                languages.setdefault(word, set()).add(code)
    return {word: frozenset(codes) for word, codes in languages.items()}


_LABEL_LANGUAGES = _label_words()


def label_language(labels: Iterable[str]) -> str | None:
    """The language a request's labels are written in, or None when they do not say.

    Every label word votes for the languages that use it, a word shared by n languages with
    1/n of a vote ("Prospect" is English and French), so only the words a language has alone
    can decide; a tie is no answer.
    """
    votes: Counter[str] = Counter()
    for label in labels:
        for word in _WORD.findall(fold_label(label)):
            codes = _LABEL_LANGUAGES.get(word, ())
            for code in codes:
                votes[code] += Fraction(1, len(codes))  # exact, so ties are ties
    ranked = votes.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


# Very common words of each Latin-script language, lower-case as written. Some are shared
# ("de" fr/ro, "du" fr/de, "in" en/de) and then count for each: they still tell these from
# the rest. Romanian also as typed without its diacritics ("si", "sa", "daca"); its "a" is
# left to English, where it is far more frequent, and Romanian has its letters besides.
_FUNCTION_WORDS = {
    code: frozenset(words.split())
    for code, words in {
        "en": "a the and for with is are was be been to of in on at by from that this it its you "
        "your we our us they them he she his her have has had can could will would should not "
        "do does if or but an my me please thanks thank hi hello dear who what which there "
        "any some someone anyone one know",
        "de": "der die das und ist mit für fuer von zu den dem ein eine einen einem einer nicht "
        "auch sich auf wir ich sie er es uns unsere unser unseren ihr ihre sind haben hat bei "
        "nach aus wie oder aber noch im vom zum zur kann können bitte danke jemanden dass "
        "wenn hallo grüße mein meine meinem dich dir du an in was sehr über gut",
        "fr": "le la les et pour avec est des une un du de dans qui que qu nous vous je tu il "
        "elle ils on sont ont pas sur par au aux ce cette ces se ne mais ou notre votre nos "
        "vos mon ma mes très bonjour merci à ça été être avoir me son sa leur si va l d j c",
        "ro": "și si să sa că ca pentru cu este din care în la de pe un o unui unei nu mai sunt "
        "vă va ne noi voi lui ei lor acest această aceasta acum fost fi ce se mă îmi îi al "
        "ale sau dar foarte avem aveți rog mulțumesc multumesc bună buna meu mea până după "
        "dacă daca despre cel cea cineva",
        "id": "yang dan untuk dengan ini itu di ke dari kami kita saya anda akan ada tidak bisa "
        "dalam pada atau juga sudah belum karena oleh sebagai mohon terima kasih bapak ibu "
        "pak bu apakah seseorang kenal butuh perlu bantuan sebelum setelah halo lebih sangat "
        "agar jika kalau masih adalah tersebut bagi dia mereka kamu pasti",
    }.items()
}
# Letters that English and Indonesian never use and each of these languages writes often.
_LETTERS = {"de": "äöüß", "fr": "çéèêàôùœ", "ro": "ăâîșț"}
# Romanian s and t with comma below, as older keyboards and Outlook type them: with a cedilla.
_CEDILLA = str.maketrans("şţŞŢ", "șțȘȚ")
_NOISE = re.compile(r"^[ \t]*>.*$|https?://\S+|www\.\S+|\S+@\S+", re.MULTILINE)
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile(r"[a-zA-Z\u00c0-\u024f]")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_MIN_HITS = 2
_MARGIN = 1.5  # the winner needs this many times the runner-up's hits


def text_language(text: str) -> str | None:
    """The language of free text (a request's need, a forwarded mail), or None if unclear.

    Quoted ">" lines are someone else's words, and addresses and links are no language.
    """
    text = _NOISE.sub(" ", text).translate(_CEDILLA)
    # More Arabic letters than Latin: an Arabic mail still carries Latin names and headers.
    if len(_ARABIC.findall(text)) > len(_LATIN.findall(text)):
        return "ar"
    # lower(), not casefold(): casefold turns ß into ss, and ß is German.
    hits: Counter[str] = Counter()
    for word in _LETTER_RUN.findall(text.lower()):
        for code, words in _FUNCTION_WORDS.items():
            hits[code] += word in words
        for code, letters in _LETTERS.items():
            hits[code] += any(letter in word for letter in letters)
    ranked = [*hits.most_common(2), ("", 0), ("", 0)]
    (best, score), (_, runner_up) = ranked[0], ranked[1]
    if score >= _MIN_HITS and score >= _MARGIN * runner_up:
        return best
    return None


def request_language(labels: Iterable[str], text: str, default: str) -> str:
    """The request's own language: its labels first, else its text, else `default`."""
    return label_language(labels) or text_language(text) or default
