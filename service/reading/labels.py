"""The labels of the request format, in every language we read, and how to recognise one."""

from __future__ import annotations

import re

from service.model import Role
from service.reading.text import fold

# Written as people type them; `fold` makes the comparison case- and accent-blind.
PARTY_LABELS: dict[Role, tuple[str, ...]] = {
    Role.PROVIDER: ("provider", "anbieter", "prestataire", "furnizor", "penyedia", "المزود"),
    Role.PROSPECT: ("prospect", "interessent", "client", "calon klien", "العميل"),
}

# Fields of a party ("Prospect phone") and fields of the referral itself ("Need").
PARTY_FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "mail", "courriel", "البريد الإلكتروني"),
    "phone": ("phone", "telefon", "téléphone", "telepon", "هاتف"),
    "prefers": ("prefers", "bevorzugt", "préfère", "preferă", "lebih suka", "يفضل"),
    "best_time": (
        "best time",
        "beste zeit",
        "meilleur moment",
        "cel mai bun moment",
        "waktu terbaik",
        "أفضل وقت",
    ),
    "booking": ("booking", "terminbuchung", "rendez-vous", "programare", "janji temu", "حجز موعد"),
    "language": ("language", "sprache", "langue", "limba", "bahasa", "اللغة"),
    "timezone": (
        "time zone",
        "timezone",
        "zeitzone",
        "fuseau horaire",
        "fus orar",
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

_CONNECTORS = frozenset({"du", "de", "la", "l", "d", "des", "der", "of", "the"})
_MARKS = re.compile(r"[\*_`~]+")
_SPACES = re.compile(r"[\s\-]+")


def fold_label(text: str) -> str:
    """Case-, accent-, hyphen- and markup-blind form of a label."""
    return _SPACES.sub(" ", _MARKS.sub("", fold(text))).strip()


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {fold_label(word): key for key, words in table.items() for word in words}


_PARTY: dict[str, Role] = {
    fold_label(word): role for role, words in PARTY_LABELS.items() for word in words
}
_PARTY_FIELD = _index(PARTY_FIELDS)
_REFERRAL_FIELD = _index(REFERRAL_FIELDS)


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
    folded = " ".join(w for w in folded.replace("'", " ").split() if w not in _CONNECTORS)
    for party_word, role in _PARTY.items():
        if folded.startswith(party_word + " "):
            rest = folded[len(party_word) + 1 :]
            if rest in _PARTY_FIELD:
                return role, _PARTY_FIELD[rest]
        if folded.endswith(" " + party_word):
            rest = folded[: -len(party_word) - 1]
            if rest in _PARTY_FIELD:
                return role, _PARTY_FIELD[rest]
    return None
