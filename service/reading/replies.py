"""Pure: what a person answered when we asked them, by mail, whether they want an introduction.

`read_answer` reads the decision in the first words of a reply's new text (see
`quotes.new_text`): a yes, a no (with a reason when one is recognisable), or unclear.

Word lists cover English, German, French, Romanian, Indonesian and Arabic. They are compared
case-, accent- and hamza-blind (see `text.fold_written`), so "Mulţumesc" (cedilla, as windows-1250
writes it), "mulțumesc" and "MULTUMESC" are one word.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from service.model import DeclineReason
from service.reading.quotes import QUOTED
from service.reading.text import fold_written, phrases


class Verdict(enum.StrEnum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class ReplyReading:
    verdict: Verdict
    reason: DeclineReason | None = None
    reason_text: str = ""


_UNCLEAR = ReplyReading(Verdict.UNCLEAR)
_REASON_CHARS = 300


# ----------------------------------------------------------------------------- the answer

YES, NO, UNSURE, NEUTRAL = "yes", "no", "unsure", "neutral"

# Written as people type them; compared word by word after folding. The longest phrase that
# starts at a word wins, so "no problem" is a yes, "not sure" unsure, "nu acum" a reason.
YES_WORDS = phrases(
    # English
    "yes, yeah, yep, yup, yes please, sure, of course, certainly, absolutely, definitely, ok, "
    "okay, happy to, glad to, gladly, please do, please go ahead, go ahead, sounds good, sounds "
    "great, with pleasure, i'd like that, i would like that, i'd love to, i would love to, count "
    "me in, why not, no problem, i'm interested, i am interested, interested, agreed, please "
    "introduce us, happy to be introduced",
    # German
    "ja, jawohl, gerne, gern, klar, na klar, ja bitte, ja gerne, sehr gerne, sicher, sicherlich, "
    "selbstverständlich, natürlich, einverstanden, warum nicht, kein problem, auf jeden fall, "
    "interessiert, bin dabei, gute idee, stellen sie uns vor, bitte vorstellen, klingt gut, das "
    "klingt gut, hört sich gut an, klingt interessant, mit vergnügen, da bin ich dabei, machen "
    "wir, super, prima, sehr gut",
    # French
    "oui, ouais, oui merci, oui volontiers, avec plaisir, avec grand plaisir, volontiers, "
    "d'accord, bien sûr, pourquoi pas, ça me va, pas de problème, pas de souci, intéressé, "
    "intéressée, certainement, absolument, je veux bien, très bien, parfait, allez-y, allez y, ça "
    "marche, entendu, je suis partant, je suis partante, avec joie, mettez-nous en relation, "
    "mettez nous en relation",
    # Romanian
    "da, cu plăcere, cu mare plăcere, sigur, desigur, bineînțeles, de acord, sunt interesat, sunt "
    "interesată, interesat, interesată, de ce nu, nicio problemă, nici o problemă, bine, perfect, "
    "accept, accept cu plăcere, mi-ar face plăcere, cu drag, categoric, evident, vă rog să ne "
    "puneți în legătură, puneți-ne în legătură",
    # Indonesian
    "ya, iya, boleh, tentu, tentu saja, tentu boleh, mau, saya mau, baik, baiklah, oke, setuju, "
    "dengan senang hati, silakan, silahkan, saya tertarik, tertarik, kenapa tidak, tidak masalah, "
    "tidak apa apa, bisa, siap, bersedia, saya bersedia, berminat, saya berminat, mohon "
    "diperkenalkan, mohon dikenalkan, sip",
    # Arabic
    "نعم, أجل, بكل سرور, موافق, موافقة, بالتأكيد, بكل تأكيد, طبعا, حسنا, أكيد, لا مانع, لا مانع "
    "لدي, لم لا, لما لا, مهتم, مهتمة, يسعدني, تمام, لا بأس, أوافق, وافقت, أقبل, بالطبع, يشرفني, "
    "يسرني, أرحب بذلك, بكل ترحيب, اوكي, أوكي, ممكن, تفضلوا",
)
_NO_WORDS = phrases(
    # English
    "no, nope, nah, no thanks, no thank you, not interested, not for me, i'll pass, i will pass, "
    "i'd rather not, rather not, i decline, not ok, not okay, no way, not really, thanks but no, "
    "thank you but no, no need, don't want, do not want, unfortunately not, sadly not, i have to "
    "decline, i must decline, decline",
    # German
    "nein, nee, nein danke, danke nein, kein interesse, keinerlei interesse, lieber nicht, eher "
    "nicht, besser nicht, nicht interessiert, interessiert mich nicht, interessiert uns nicht, "
    "kein bedarf, keinen bedarf, nicht für mich, möchte ich nicht, ich möchte nicht, nicht "
    "einverstanden, leider nicht, muss ablehnen, lehne ab, nicht nötig, nicht notwendig, brauche "
    "ich nicht, ich verzichte, auf keinen fall, keinesfalls",
    # French
    "non, non merci, merci mais non, pas intéressé, pas intéressée, ne m'intéresse pas, ne nous "
    "intéresse pas, pas pour moi, je préfère pas, je préfère ne pas, plutôt pas, plutôt non, sans "
    "façon, pas d'accord, je décline, je dois décliner, malheureusement pas, pas besoin, aucun "
    "intérêt, je passe mon tour, en aucun cas",
    # Romanian
    "nu, nu mulțumesc, nu sunt interesat, nu sunt interesată, nu mă interesează, nu ne "
    "interesează, nu pentru mine, prefer să nu, nu doresc, nu vreau, nu sunt de acord, mulțumesc "
    "dar nu, nu e cazul, refuz, în niciun caz, în nici un caz, nicidecum",
    # Indonesian
    "tidak, tidak usah, tidak tertarik, saya tidak tertarik, tidak terima kasih, terima kasih "
    "tidak, nggak, enggak, gak, ga, ngga, tdk, tidak mau, nggak usah, gak usah, tidak perlu, tidak "
    "bisa, tidak setuju, maaf tidak, jangan, sama sekali tidak, tidak sama sekali",
    # Arabic
    "لا, لا شكرا, غير مهتم, غير مهتمة, لست مهتما, لست مهتمة, لا أرغب, لا أريد, كلا, غير موافق, لا "
    "داعي, أعتذر",
)
# A yes word taken back by the next one is a no ("Absolutely not.", "Natürlich nicht"), but
# only with nothing between them: "Absolutely, not a problem" is a yes.
TAKEN_BACK_WORDS = phrases(
    "absolutely not, definitely not, certainly not, of course not, surely not, absolutely no, "
    "definitely no, certainly no, of course no",
    "natürlich nicht, sicher nicht, sicherlich nicht, ganz sicher nicht, bestimmt nicht, klar "
    "nicht, na klar nicht, selbstverständlich nicht, absolut nicht, natürlich nein",
    "certainement pas, absolument pas, sûrement pas, surtout pas, bien sûr que non, bien sûr pas",
    "sigur nu, sigur că nu, desigur nu, desigur că nu, categoric nu, bineînțeles că nu, "
    "bineînțeles nu",
    "tentu tidak, tentu saja tidak, tentu tidak mau, tentu saja tidak mau",
    "طبعا لا, بالطبع لا, بالتأكيد لا, أكيد لا, قطعا لا",
)
_UNSURE_WORDS = phrases(
    # English
    "maybe, perhaps, possibly, not sure, unsure, not certain, don't know, do not know, dunno, "
    "think about it, let me think, need to think, depends, it depends, who is it, who is this, who "
    "is the, who is, who are they, tell me more, more information, more info, more details, what "
    "is it about, undecided, not yet sure",
    # German
    "vielleicht, eventuell, evtl, nicht sicher, unsicher, weiß nicht, weiß ich nicht, weiß noch "
    "nicht, keine ahnung, mal sehen, mal schauen, überlege, überlegen, nachdenken, kommt darauf "
    "an, kommt drauf an, wer ist, um wen geht es, mehr infos, mehr informationen, jein",
    # French
    "peut-être, pas sûr, pas sûre, pas certain, pas certaine, je ne sais pas, sais pas, réfléchir, "
    "ça dépend, cela dépend, qui est-ce, c'est qui, qui est, de qui s'agit-il, plus "
    "d'informations, plus d'infos, plus de détails, j'hésite, hésite",
    # Romanian
    "poate, poate că, nu sunt sigur, nu sunt sigură, nesigur, nu știu, mă gândesc, mă voi gândi, "
    "să mă gândesc, depinde, cine este, cine e, despre cine, mai multe detalii, mai multe "
    "informații",
    # Indonesian
    "mungkin, barangkali, belum yakin, tidak yakin, kurang yakin, ragu, tidak tahu, belum tahu, "
    "pikir pikir, saya pikirkan, pikirkan dulu, tergantung, siapa, boleh tahu, info lebih lanjut, "
    "informasi lebih lanjut, mau tanya, tanya dulu",
    # Arabic
    "ربما, لست متأكدا, لست متأكدة, لست متأكد, غير متأكد, غير متأكدة, لا أعرف, لا أدري, سأفكر, دعني "
    "أفكر, من هو, من هي, من هم, يعتمد, مزيد من المعلومات, المزيد من المعلومات",
)
# Words that carry no vote but must not be read as one ("no rush" is not a no).
_NEUTRAL_WORDS = phrases(
    "thanks, thank you, many thanks, no rush, no hurry, no worries, no pressure, danke, vielen "
    "dank, danke schön, keine eile, merci, merci beaucoup, rien ne presse, pas d'urgence, "
    "mulțumesc, mersi, nu e grabă, terima kasih, makasih, maaf ya, terima kasih ya, شكرا, شكرا لك, "
    "شكرا لكم",
)
# A reason is itself a no ("not right now" needs no "no" before it).
_REASON_WORDS: dict[DeclineReason, tuple[str, ...]] = {
    DeclineReason.NOT_RELEVANT: phrases(
        "not relevant, isn't relevant, is not relevant, not really relevant, irrelevant, not "
        "applicable, doesn't apply, does not apply, not my field, not my area, outside my area, "
        "nicht relevant, nicht mein bereich, nicht mein gebiet, betrifft mich nicht, pas "
        "pertinent, pas pertinente, non pertinent, ne me concerne pas, pas concerné, pas "
        "concernée, pas mon domaine, nu e relevant, nu este relevant, nu e relevantă, nu este "
        "relevantă, irelevant, nu mă privește, nu e domeniul meu, nu este domeniul meu, tidak "
        "relevan, kurang relevan, bukan bidang saya, tidak berkaitan, غير مناسب, غير ذي صلة, ليس "
        "ذا صلة, ليس له صلة, لا صلة, لا علاقة لي, ليس من اختصاصي, خارج اختصاصي",
    ),
    DeclineReason.NO_NEED_NOW: phrases(
        "not right now, not now, not at the moment, not at this time, not currently, not for now, "
        "not yet, maybe later, perhaps later, no need at the moment, no need right now, no need "
        "now, no need for now, another time, some other time, im moment nicht, momentan nicht, "
        "derzeit nicht, zurzeit nicht, zur zeit nicht, aktuell nicht, jetzt nicht, nicht jetzt, "
        "gerade nicht, noch nicht, vielleicht später, später vielleicht, im moment kein bedarf, im "
        "moment keinen bedarf, derzeit kein bedarf, derzeit keinen bedarf, aktuell kein bedarf, "
        "momentan kein bedarf, zurzeit kein bedarf, zurzeit keinen bedarf, momentan keinen bedarf, "
        "aktuell keinen bedarf, keine zeit, pas le moment, ce n'est pas le bon moment, plus tard, "
        "je n'en ai pas besoin pour le moment, tidak dulu, lagi sibuk, sedang sibuk, saya sedang "
        "sibuk, pas pour le moment, pas maintenant, pas pour "
        "l'instant, pas en ce moment, pas actuellement, pas tout de suite, peut-être plus tard, "
        "plus tard peut-être, pas encore, nu acum, nu momentan, nu deocamdată, momentan nu, "
        "deocamdată nu, acum nu, poate mai târziu, poate altă dată, nu încă, încă nu, "
        "nu am nevoie, nu e momentul potrivit, nu este momentul potrivit, nu este momentul, "
        "belum perlu, "
        "belum sekarang, tidak sekarang, jangan sekarang, nanti saja, nanti dulu, mungkin nanti, "
        "lain kali, untuk saat ini tidak, saat ini tidak, sekarang tidak, belum, ليس الآن, ليس "
        "حاليا, ليس في الوقت الحالي, لا حاجة الآن, لاحقا, ربما لاحقا, ليس بعد, في وقت لاحق, "
        "مشغول حاليا, مشغولة حاليا, لست بحاجة إليه, لست بحاجة إليها",
    ),
    DeclineReason.NOT_A_FIT: phrases(
        "not a fit, not a good fit, not the right fit, not a good match, not a match, not the "
        "right person, doesn't fit, does not fit, doesn't suit, not suitable, passt nicht, passt "
        "leider nicht, passt nicht zu, nicht passend, passt mir nicht, passt uns nicht, nicht der "
        "richtige, nicht die richtige, ne correspond pas, ne me correspond pas, ne nous correspond "
        "pas, ne convient pas, ne me convient pas, pas adapté, pas adaptée, pas la bonne personne, "
        "nu se potrivește, nu mi se potrivește, nu ne potrivim, nu mă potrivesc, nu e potrivit, nu "
        "este potrivit, nu sunt potrivit, nu sunt persoana potrivită, tidak cocok, kurang cocok, "
        "tidak sesuai, kurang sesuai, bukan orang yang tepat, لا يناسبني, لا يناسب, لا يناسبنا, "
        "غير ملائم, لست الشخص المناسب",
    ),
}
# Once the answer is a no, these words in the words after it tell which reason it is.
_REASON_HINTS: dict[DeclineReason, tuple[str, ...]] = {
    DeclineReason.NOT_RELEVANT: ("relevant", "relevan", "pertinent", "pertinente", "صلة"),
    DeclineReason.NO_NEED_NOW: phrases(
        "at the moment, right now, currently, for now, at present, busy, booked, im moment, "
        "momentan, derzeit, zurzeit, aktuell, ausgebucht, pour le moment, pour l'instant, en ce "
        "moment, actuellement, débordé, deocamdată, acum, în prezent, ocupat, saat ini, sekarang, "
        "sibuk, حاليا, الآن, الوقت الحالي, مشغول",
    ),
    DeclineReason.NOT_A_FIT: phrases(
        "fit, match, suit, passt, passen, correspond, convient, potrivește, potrivit, cocok, "
        "sesuai, يناسب, يناسبني",
    ),
}
# Words around an answer that are neither its reason nor the person's point.
_FILLER = frozenset(
    phrases(
        "thanks, thank, you, very, much, many, sorry, but, though, anyway, again, really",
        "danke, vielen, dank, schön, leider, aber, trotzdem",
        "merci, beaucoup, mais, désolé, désolée",
        "mulțumesc, mersi, frumos, dar, scuze, îmi, pare, rău",
        "terima, kasih, makasih, tapi, maaf, ya",
        "شكرا, لك, لكم, لكن, آسف, عذرا",
    )
)
_GREETINGS = phrases(
    "hi, hello, hey, dear, good morning, good afternoon, good evening, hallo, liebe, lieber, sehr "
    "geehrte, sehr geehrter, guten morgen, guten tag, guten abend, moin, servus, grüß gott, "
    "bonjour, bonsoir, salut, cher, chère, coucou, bună, bună ziua, bună dimineața, bună seara, "
    "dragă, stimate, stimată, halo, hai, selamat pagi, selamat siang, selamat sore, selamat malam, "
    "yth, kepada yth, مرحبا, أهلا, اهلا وسهلا, السلام عليكم, عزيزي, عزيزتي, صباح الخير, مساء الخير",
)
_CLOSINGS = phrases(
    "best, best regards, best wishes, kind regards, regards, warm regards, many thanks, thanks, "
    "thank you, thx, cheers, sincerely, yours, all the best, viele grüße, liebe grüße, beste "
    "grüße, herzliche grüße, freundliche grüße, mit freundlichen grüßen, gruß, grüße, lg, vg, mfg, "
    "danke, vielen dank, beste, cordialement, bien cordialement, bien à vous, bien à toi, merci, "
    "merci beaucoup, bonne journée, salutations, amitiés, à bientôt, cu stimă, cu respect, "
    "mulțumesc, mulțumesc frumos, o zi bună, toate cele bune, salutări, numai bine, salam, hormat "
    "saya, terima kasih, makasih, salam hangat, wassalam, مع التحية, تحياتي, شكرا, مع خالص التحية, "
    "مع الشكر, وشكرا",
)
# A negation right before a yes makes it a hesitation ("not happy to", "nicht gerne").
NEGATORS = frozenset(
    phrases(
        "not, never, nicht, nie, pas, jamais, nu, niciodata",
        "tidak, belum, bukan, tak, ليس, لست, غير",
    )
)
# Words that are an answer only where an answer stands: German "Da ich …" is no Romanian
# yes, nor is the Indonesian particle in "Maaf ya" or "Tidak dulu ya".
_LEADING_ONLY = frozenset({"da", "ya", "iya"})
_DA_GOES_ON = frozenset({"sigur", "cu", "va", "te", "desigur", "multumesc", "sunt", "as"})

_WORD = re.compile(r"[\w\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]+")
_STOP = re.compile(r"[!?…؟]|\.(?!\d)")
_WRAPPED_LINE = 50
_FIRST_SENTENCES = 4
_SHORT_SENTENCE = 3


def _words(text: str) -> list[str]:
    return [fold_written(w) for w in _WORD.findall(unicodedata.normalize("NFC", text))]


@dataclass(frozen=True)
class _Token:
    word: str
    start: int
    end: int
    sentence: int
    paragraph: int
    before: str  # the text between the previous word and this one


@dataclass(frozen=True)
class _Match:
    first: int  # token index
    last: int  # token index after the phrase
    kind: str  # YES, NO, UNSURE, NEUTRAL, or a DeclineReason
    start: int  # character offsets in the text read
    end: int


def _table(entries: Iterable[tuple[str, str]]) -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for phrase, kind in entries:
        table.setdefault(tuple(_words(phrase)), kind)
    return table


_PHRASES = _table(
    [
        *((p, reason.value) for reason, words in _REASON_WORDS.items() for p in words),
        *((p, UNSURE) for p in _UNSURE_WORDS),
        *((p, NO) for p in (*_NO_WORDS, *TAKEN_BACK_WORDS)),
        *((p, YES) for p in YES_WORDS),
        *((p, NEUTRAL) for p in _NEUTRAL_WORDS),
    ]
)
_TIGHT = frozenset(tuple(_words(p)) for p in TAKEN_BACK_WORDS)
_HINTS = _table((p, reason.value) for reason, words in _REASON_HINTS.items() for p in words)
_GREETING_PHRASES = {tuple(_words(p)) for p in _GREETINGS}
CLOSING_PHRASES = {tuple(_words(p)) for p in _CLOSINGS}
_FILLER_WORDS = frozenset(fold_written(w) for w in _FILLER)
_NEGATOR_WORDS = frozenset(fold_written(w) for w in NEGATORS)
_LONGEST = max(len(p) for p in (*_PHRASES, *_HINTS, *_GREETING_PHRASES, *CLOSING_PHRASES))
_REASON_KINDS = {reason.value for reason in DeclineReason}
_VOTES = {YES, NO, UNSURE, *_REASON_KINDS}


def read_answer(text: str) -> ReplyReading:
    """The decision in the first words that are not quoted.

    The first sentence that holds an answer decides (with the next one when it is as short
    as "Yes…" or "No."). A yes and a no there, a hesitation ("maybe", "not sure", "who is
    it?"), or no answer at all is UNCLEAR. A reason is a no: "Yes, but not now" declines
    for now (NO_NEED_NOW), since an introduction needs a need that is actual. A no carries
    the reason it names, else OTHER when the person wrote more than thanks after it.
    """
    region = _answer_region(text)
    tokens = _tokenize(region)
    if not tokens:
        return _UNCLEAR
    matches = _matches(tokens, _PHRASES)
    window = _window(tokens, matches)
    if not window:
        return _UNCLEAR
    kinds = {m.kind for m in window}
    reasons = [m for m in window if m.kind in _REASON_KINDS]
    if UNSURE in kinds:
        return _UNCLEAR
    if not reasons:
        if YES in kinds and NO in kinds:
            return _UNCLEAR
        if YES in kinds:
            return ReplyReading(Verdict.YES)
    return _declined(region, tokens, window, reasons)


def _declined(
    region: str, tokens: list[_Token], window: list[_Match], reasons: list[_Match]
) -> ReplyReading:
    """A no: which reason, in the person's own words (after the answer word, or from the
    reason on when the reason is the answer: "Not right now, we are busy")."""
    answer = next((m for m in window if m.kind in (YES, NO)), None)
    if answer is not None and (not reasons or answer.first < reasons[0].first):
        words = _reason_words(region[answer.end :])
    else:
        words = _reason_words(region[reasons[0].start :])
    if reasons:
        return ReplyReading(Verdict.NO, DeclineReason(reasons[0].kind), words)
    said = _tokenize(words)
    named = [m for m in _matches(said, _PHRASES) if m.kind in _REASON_KINDS]
    if named:
        return ReplyReading(Verdict.NO, DeclineReason(named[0].kind), words)
    hints = _matches(said, _HINTS)
    if hints:
        return ReplyReading(Verdict.NO, DeclineReason(hints[0].kind), words)
    if _meaningful(words):
        return ReplyReading(Verdict.NO, DeclineReason.OTHER, words)
    return ReplyReading(Verdict.NO)


# ----------------------------------------------------------------------------- reading words


def _answer_region(text: str) -> str:
    """The person's words from the first one after a greeting to before their closing."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    text = re.sub(r"\b[oO]\.\s?[kK]\.", "OK ", text)
    lines = [line.strip() for line in text.split("\n") if not QUOTED.match(line)]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return ""
    lines[0] = without_greeting(lines[0])
    if not lines[0]:
        lines.pop(0)
    kept: list[str] = []
    for line in lines:
        if any(k.strip() for k in kept) and _is_closing(line):
            break
        kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    if len([k for k in kept if k]) > 1 and _is_name(kept[-1]):
        kept.pop()
    return "\n".join(kept).strip()


def without_greeting(line: str) -> str:
    """'Hi Ada, yes please' -> 'yes please'; 'Hallo ja gerne' -> 'ja gerne'."""
    tokens = _tokenize(line)
    words = tuple(t.word for t in tokens)
    length = next(
        (n for n in range(min(len(words), 3), 0, -1) if words[:n] in _GREETING_PHRASES), 0
    )
    if not length:
        return line
    opening = _matches(tokens, _PHRASES)
    if opening and opening[0].first == 0 and opening[0].last > length:
        return line  # "Lieber nicht" is an answer, not a greeting
    after = tokens[length - 1].end
    mark = re.search(r"[,!:،;]", line[after:])
    if mark and len(_WORD.findall(line[after : after + mark.start()])) <= 4:
        return line[after + mark.end() :].strip()
    if len(tokens) > length and len(tokens) - length <= 3 and not _has_vote(line[after:]):
        return ""  # "Hi Ada" alone on its line
    return line[tokens[length].start :] if len(tokens) > length else ""


def _is_closing(line: str) -> bool:
    """'Best,' / 'Viele Grüße' / 'مع التحية،' / 'Thanks, Jane' — not 'Thanks, but no'."""
    tokens = _tokenize(line)
    words = tuple(t.word for t in tokens)
    for n in range(min(len(words), 4), 0, -1):
        if words[:n] in CLOSING_PHRASES:
            rest = line[tokens[n - 1].end :]
            return len(words) - n <= 3 and not _has_vote(rest)
    return False


def _is_name(line: str) -> bool:
    """A last line that signs: one to three capitalised words, or uncased ones (Arabic)."""
    words = _WORD.findall(line)
    if not 1 <= len(words) <= 3 or re.search(r"[.!?؟,]", line) or _has_vote(line):
        return False
    return all(w[0].isupper() or (not w[0].islower() and not w[0].isupper()) for w in words)


def _has_vote(text: str) -> bool:
    return any(m.kind in _VOTES for m in _matches(_tokenize(text), _PHRASES))


def _tokenize(text: str) -> list[_Token]:
    """Words with their offsets, numbered by sentence: a stop mark, a blank line, or a line
    break after a short line (a wrapped line runs on into the next)."""
    tokens: list[_Token] = []
    sentence = 0
    paragraph = 0
    previous_end = 0
    line_start = 0
    for found in _WORD.finditer(text):
        gap = text[previous_end : found.start()]
        if tokens:
            breaks = "\n" in gap
            line_length = previous_end - line_start
            stops = _STOP.search(gap) and not _decimal(text, previous_end, found.start())
            wraps = breaks and (gap.count("\n") > 1 or line_length < _WRAPPED_LINE)
            if stops or wraps:
                sentence += 1
            if gap.count("\n") > 1:
                paragraph += 1
            if breaks:
                line_start = previous_end + gap.rfind("\n") + 1
        tokens.append(
            _Token(
                fold_written(found.group()), found.start(), found.end(), sentence, paragraph, gap
            )
        )
        previous_end = found.end()
    return tokens


def _decimal(text: str, end: int, start: int) -> bool:
    """'16.00', '09.14': a dot between digits is no full stop."""
    return text[end:start] in (".", ",") and text[end - 1].isdigit() and text[start].isdigit()


def _matches(tokens: list[_Token], table: dict[tuple[str, ...], str]) -> list[_Match]:
    """Every phrase of the table in the words, longest first at each word, left to right."""
    words = [t.word for t in tokens]
    found: list[_Match] = []
    index = 0
    while index < len(words):
        for length in range(min(_LONGEST, len(words) - index), 0, -1):
            key = tuple(words[index : index + length])
            kind = table.get(key)
            if kind is None:
                continue
            last = index + length
            if key in _TIGHT and any(t.before.strip() for t in tokens[index + 1 : last]):
                continue
            leading_only = length == 1 and words[index] in _LEADING_ONLY and table is _PHRASES
            if leading_only and not _answer_word_stands(tokens, index):
                break
            negated = index and words[index - 1] in _NEGATOR_WORDS
            if kind == YES and negated and (not found or found[-1].last <= index - 1):
                kind = UNSURE  # "not happy to", "nicht gerne"
            elif kind == YES and _negated_after(tokens, last):
                # "Gladly not", "Gerne nicht": a yes word the next word takes back is no yes.
                # The usual ones ("absolutely not") are noes of their own above.
                kind = UNSURE
            found.append(_Match(index, last, kind, tokens[index].start, tokens[last - 1].end))
            index = last - 1
            break
        index += 1
    return found


def _negated_after(tokens: list[_Token], index: int) -> bool:
    """Whether the word at `index` negates the one before it: a negation in the same
    sentence with nothing but spaces between ("Sure, not a problem" keeps its yes)."""
    if index >= len(tokens):
        return False
    token = tokens[index]
    return (
        token.word in _NEGATOR_WORDS
        and token.sentence == tokens[index - 1].sentence
        and not token.before.strip()
    )


def _answer_word_stands(tokens: list[_Token], index: int) -> bool:
    """Romanian 'da' and Indonesian 'ya' answer only when they open their sentence; 'da'
    also must stand alone or go on in Romanian ('Da, sigur'), not start German 'Da ich …'."""
    token = tokens[index]
    if index and tokens[index - 1].sentence == token.sentence:
        return False
    if token.word != "da":
        return True
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    if following is None or following.sentence != token.sentence:
        return True
    return bool(re.search(r"[,;:!]", following.before)) or (following.word in _DA_GOES_ON)


def _window(tokens: list[_Token], matches: list[_Match]) -> list[_Match]:
    """The matches in the first sentence that holds a vote, and in the next one of the same
    paragraph when the first is as short as 'Yes…' ('Yes… no wait')."""
    votes = [m for m in matches if m.kind in _VOTES]
    if not votes:
        return []
    opening = tokens[votes[0].first]
    if opening.sentence >= _FIRST_SENTENCES:
        return []
    in_sentence = sum(1 for t in tokens if t.sentence == opening.sentence)
    last = opening.sentence + 1 if in_sentence <= _SHORT_SENTENCE else opening.sentence
    return [
        m
        for m in votes
        if opening.sentence <= tokens[m.first].sentence <= last
        and tokens[m.first].paragraph == opening.paragraph
    ]


def _reason_words(text: str) -> str:
    """The first sentence or two of what follows an answer, without thanks around them."""
    text = " ".join(text.split())
    sentences = [s.strip() for s in re.split(r"(?<=[.!?…؟])\s+", text) if s.strip()]
    kept: list[str] = []
    for sentence in sentences:
        sentence = _strip_leading_filler(sentence)
        if not sentence or not _meaningful(sentence, least=1):
            continue
        kept.append(sentence)
        if len(kept) == 2:
            break
    words = " ".join(kept)
    if len(words) > _REASON_CHARS:
        words = words[: _REASON_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return words


def _strip_leading_filler(sentence: str) -> str:
    while True:
        sentence = re.sub(r"^[\s,.;:!?…؟،\-–—]+", "", sentence)
        found = _WORD.match(sentence)
        if not found or fold_written(found.group()) not in _FILLER_WORDS:
            return sentence
        sentence = sentence[found.end() :]


def _meaningful(text: str, least: int = 2) -> bool:
    """More than thanks and apologies: at least `least` other words."""
    return sum(1 for w in _words(text) if w not in _FILLER_WORDS) >= least
