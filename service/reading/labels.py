"""The labels of the request format, in every language we read, and how to recognise one."""

from __future__ import annotations

import re

from service.model import Role
from service.reading.text import fold, phrases

# Written as people type them; `fold` makes the comparison case- and accent-blind. Each word
# also in the forms it takes next to a field, which is where people inflect it: German
# genitive and dative ("Telefon des Interessenten", "E-Mail des Anbieters") and feminine,
# French "de l'intéressé(e)", Romanian articles ("Telefonul clientului"), Arabic without
# its article or with "for the" ("هاتف عميل", "المنطقة الزمنية للعميل").
PARTY_LABELS: dict[Role, tuple[str, ...]] = {
    Role.PROVIDER: phrases(
        "provider",
        "anbieter, anbieters, anbieterin",
        "prestataire",
        "furnizor, furnizorul, furnizorului",
        "penyedia",
        "المزود, مزود, للمزود",
    ),
    Role.PROSPECT: phrases(
        "prospect",
        "interessent, interessenten, interessentin",
        "intéressé, intéressée",  # and "prospect", "client", as above and below
        "client, clientul, clientului",
        "calon klien",
        "العميل, عميل, للعميل",
    ),
}

# Fields of a party ("Prospect phone") and fields of the referral itself ("Need").
PARTY_FIELDS: dict[str, tuple[str, ...]] = {
    # Romanian with its article ("Telefonul clientului"), Arabic without it ("لغة العميل"):
    # the forms these words take in front of a party.
    "email": ("email", "e-mail", "mail", "courriel", "emailul", "e-mailul", "البريد الإلكتروني"),
    "phone": ("phone", "telefon", "téléphone", "telefonul", "telepon", "هاتف"),
    "prefers": ("prefers", "bevorzugt", "préfère", "preferă", "lebih suka", "يفضل"),
    "best_time": (
        "best time",
        "beste zeit",
        "meilleur moment",
        "cel mai bun moment",
        "waktu terbaik",
        "أفضل وقت",
    ),
    "booking": (
        "booking",
        "terminbuchung",
        "rendez-vous",
        "programare",
        "programarea",
        "janji temu",
        "حجز موعد",
    ),
    "language": ("language", "sprache", "langue", "limba", "bahasa", "اللغة", "لغة"),
    "timezone": (
        "time zone",
        "timezone",
        "zeitzone",
        "fuseau horaire",
        "fus orar",
        "fusul orar",
        "zona waktu",
        "المنطقة الزمنية",
    ),
}
REFERRAL_FIELDS: dict[str, tuple[str, ...]] = {
    "need": ("need", "bedarf", "besoin", "nevoie", "kebutuhan", "الحاجة"),
    "budget": ("budget", "buget", "anggaran", "الميزانية"),
    "follow_up": ("follow up", "nachfassen", "suivi", "urmărire", "tindak lanjut", "المتابعة"),
    "language": PARTY_FIELDS["language"],
    "copy_me": (
        "copy me",
        "cc me",
        "kopie an mich",
        "mich in kopie",
        "copie pour moi",
        "mettez moi en copie",
        "copie moi",
        "trimiteți mi o copie",
        "copie pentru mine",
        "tembusan untuk saya",
        "kirim salinan ke saya",
        "نسخة لي",
        "أرسل لي نسخة",
    ),
}

# The small words between a field and its party, by language: "phone of the prospect",
# "Telefon des/der/vom Interessenten", "langue du/de la/de l'/d'…", "telefon al clientului",
# "telepon dari calon klien". Elided "l'" and "d'" are split off their word first.
CONNECTORS: dict[str, frozenset[str]] = {
    "en": frozenset({"of", "the", "for"}),
    "de": frozenset({"des", "der", "dem", "den", "vom", "von"}),
    "fr": frozenset({"du", "de", "la", "le", "l", "d", "des"}),
    "ro": frozenset({"al", "a", "ai", "ale"}),
    "id": frozenset({"dari"}),
}
_CONNECTORS = frozenset().union(*CONNECTORS.values())
_MARKS = re.compile(r"[\*_`~]+")
_SPACES = re.compile(r"[\s\-]+")
# Apostrophes as clients type them (Word and Apple Mail turn ' into ’).
_APOSTROPHES = re.compile(r"[’‘ʼ′´]")
_ELISION = re.compile(r"(?<!\w)([ld])'")  # "l'intéressé", "d'un" -> "l intéressé"
_POSSESSIVE = re.compile(r"(?<=\w)'s(?!\w)")  # "Prospect's phone" -> "Prospect phone"


def fold_label(text: str) -> str:
    """Case-, accent-, hyphen- and markup-blind form of a label."""
    return _SPACES.sub(" ", _MARKS.sub("", fold(text))).strip()


def _words(label: str) -> tuple[str, ...]:
    """A folded label as words, apostrophes and the connectors between words taken out."""
    text = _POSSESSIVE.sub("", _ELISION.sub(r"\1 ", _APOSTROPHES.sub("'", label)))
    return tuple(w for w in text.replace("'", " ").split() if w not in _CONNECTORS)


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {fold_label(word): key for key, words in table.items() for word in words}


_PARTY: dict[str, Role] = {
    fold_label(word): role for role, words in PARTY_LABELS.items() for word in words
}
_PARTY_FIELD = _index(PARTY_FIELDS)
_REFERRAL_FIELD = _index(REFERRAL_FIELDS)
# The same, as words: a combined label is matched word by word.
_PARTY_WORDS = {_words(word): role for word, role in _PARTY.items()}
_PARTY_FIELD_WORDS = {_words(word): key for word, key in _PARTY_FIELD.items()}


def classify(label: str) -> tuple[Role | None, str] | None:
    """(role, field) for a label: ("prospect", "phone"), ("provider", "party"), (None, "need").

    A party label and a field label combine in either order, because Arabic and French
    put the field first ("هاتف العميل").
    """
    folded = fold_label(label)
    if folded in _PARTY:
        return _PARTY[folded], "party"
    if folded in _REFERRAL_FIELD:
        return None, _REFERRAL_FIELD[folded]
    # "Langue du prospect", "Fuseau horaire de l'intéressé", "Telefon des Interessenten" is
    # still a field and a party: the small words between them do not change the label.
    words = _words(folded)
    for party, role in _PARTY_WORDS.items():
        size = len(party)
        if len(words) <= size:
            continue
        if words[:size] == party and words[size:] in _PARTY_FIELD_WORDS:
            return role, _PARTY_FIELD_WORDS[words[size:]]
        if words[-size:] == party and words[:-size] in _PARTY_FIELD_WORDS:
            return role, _PARTY_FIELD_WORDS[words[:-size]]
    return None
