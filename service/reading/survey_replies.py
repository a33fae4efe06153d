"""Pure: what a party answered, in free text, to the follow-up survey after an introduction."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from service.model import Business
from service.reading.replies import CLOSING_PHRASES, TAKEN_BACK_WORDS, without_greeting
from service.reading.text import fold_written, phrases


@dataclass(frozen=True)
class SurveyAnswers:
    rating: int | None = None  # 1..5, how useful the introduction was
    business: Business | None = None  # did it lead to business
    amount: Decimal | None = None  # value of business closed (>= 0, quantized to 0.01)
    currency: str = ""  # ISO 4217 upper case, "" when not given
    more: bool | None = None  # would welcome more referrals like this
    comment: str = ""  # whatever else they wrote (trimmed, <= 1000 chars)

    @property
    def empty(self) -> bool:
        """Nothing read: no answer, and no comment of two words or more. A stray "ok", "?" or
        emoji answers no question; "Great intro, thanks" is feedback worth keeping."""
        answered = any(v is not None for v in (self.rating, self.business, self.amount, self.more))
        return not answered and len(_LETTERS.findall(self.comment)) < 2


_COMMENT_CHARS = 1000
_CENTS = Decimal("0.01")
_RATING, _SMALL, _BARE, _MONEY, _ANSWER = "rating", "small", "bare", "money", "answer"
_CUR, _UNIT, _OF, _MULT, _NEUTRAL = "currency", "unit", "of", "mult", "neutral"

# Answers as people type them in the six languages; a part must be nothing but such words to
# count (see `_scan`), so short words like "da", "ya", "y" are safe here.
_ANSWERS = {
    Business.YES: "yes, yeah, yep, yup, y, sure, of course, definitely, absolutely, certainly, "
    "indeed, yes please, ja, jawohl, jep, klar, gerne, natürlich, auf jeden fall, oui, ouais, "
    "bien sûr, absolument, tout à fait, da, sigur, desigur, bineînțeles, ya, iya, sudah, udah, "
    "tentu, نعم, أجل, بلى, طبعا, بالتأكيد, أكيد, gerne wieder, volontiers, avec plaisir, "
    "mau, boleh, bersedia, sudah deal, deal, بالطبع, أرحب بذلك, لا بأس",
    Business.NO: "no, nope, nah, n, not really, no thanks, never, nein, nee, nö, leider nicht, "
    "leider nein, non, non merci, pas vraiment, nu, nu mulțumesc, deloc, tidak, tdk, nggak, "
    "enggak, gak, ga, bukan, tidak ada, لا, كلا, لا شكرا, pas du tout, aucune affaire, "
    "überhaupt nicht, gar nicht",
    Business.NOT_YET: "not yet, nothing yet, not so far, noch nicht, bisher nicht, noch nichts, "
    "pas encore, încă nu, nu încă, nu deocamdată, deocamdată nu, belum, blm, belum ada, ليس بعد, "
    "لم بعد, ليس حتى الآن, لم يتم بعد, ليس بعد حتى الآن, leider noch nicht, bis jetzt nicht, "
    "toujours pas, pas pour l'instant, pas pour le moment, încă nu din păcate, belum ada deal, "
    "لم يحدث بعد",
}
_PLAIN = "yes, y, no, n, ja, nein, oui, non, da, nu, ya, iya, tidak, نعم, لا"
_CURRENCIES = {
    "EUR": "eur, euro, euros, €, يورو",
    "USD": "usd, $, dollar, dollars, us dollars, دولار",
    "GBP": "gbp, £, pound, pounds",
    "RON": "ron, lei, leu",
    "IDR": "idr, rp, rupiah",
    "SAR": "sar, ريال, ريال سعودي, ر.س",
    "AED": "aed, درهم, درهم إماراتي, د.إ",
}
_CURRENCIES |= {c: c for c in re.findall(r"\w+", "CHF JPY CAD AUD SGD MYR QAR KWD BHD OMR")}
_CURRENCIES["EGP"] = "egp, جنيه, جنيه مصري, ج.م"
_CURRENCIES |= {c: c for c in re.findall(r"\w+", "PLN HUF CZK SEK NOK DKK TRY INR CNY HKD NZD")}
_UNITS = "star, stars, stern, sterne, punkte, étoile, étoiles, points, stea, stele, puncte, "
_UNITS += "bintang, poin, نجمة, نجوم, نجمات, نقاط"
_OFS = "of, out of, von, aus, sur, din, dari, من"
_MULTIPLIERS = {"k": 1000, "rb": 1000, "ribu": 1000, "ألف": 1000, "jt": 10**6, "juta": 10**6}
_MULTIPLIERS |= {"mio": 10**6, "million": 10**6, "millionen": 10**6, "millions": 10**6}
_MULTIPLIERS |= {"mii": 1000, "milioane": 10**6, "mil": 10**6}
# Words around answers that neither answer nor say anything: "4, yes, about 1200 EUR, thanks".
_NEUTRALS = "and, und, et, și, dan, و, about, around, approx, approximately, ca, circa, etwa, "
_NEUTRALS += "rund, environ, aprox, aproximativ, sekitar, kira kira, حوالي, تقريبا, please, "
_NEUTRALS += "thanks, thank you, danke, merci, mersi, mulțumesc, terima kasih, makasih, شكرا"

# Labels in the six languages, tried in this order: "value of business" is a value, "useful
# for business" a rating. French/German "Note" is a rating; "Nilai" (Indonesian score) too.
_LABELS = {
    "comment": "comment, comments, remark, remarks, notes, feedback, kommentar, anmerkung, "
    "anmerkungen, bemerkung, commentaire, commentaires, remarque, remarques, comentariu, "
    "comentarii, observații, observație, komentar, catatan, saran, masukan, تعليق, تعليقات, "
    "ملاحظة, ملاحظات",
    "amount": "value, amount, worth, revenue, wert, betrag, umsatz, auftragswert, "
    "geschäftswert, volumen, valeur, montant, chiffre, valoare, valoarea, suma, nilai bisnis, "
    "nilai transaksi, nilai kesepakatan, jumlah, nominal, قيمة, القيمة, مبلغ, المبلغ",
    "more": "more, referrals, introductions, mehr, weitere, empfehlungen, weitere kontakte, "
    "kontakte, vermittlungen, mises en relation, mise en relation, plus, encore, "
    "recommandations, mai mult, mai multe, recomandări, lagi, lebih banyak, rujukan, المزيد, "
    "مزيد, إحالات",
    "rating": "rating, rate, score, stars, useful, usefulness, helpful, bewertung, note, sterne, "
    "nutzen, nützlich, hilfreich, évaluation, utile, utilité, notă, evaluare, calificativ, util, "
    "utilitate, nilai, penilaian, skor, bintang, manfaat, bermanfaat, تقييم, التقييم, الفائدة, "
    "مفيد",
    "business": "business, deal, contract, geschäft, geschäfte, auftrag, abschluss, affaires, "
    "affaire, contrat, afacere, afaceri, bisnis, transaksi, kesepakatan, usaha, أعمال, الأعمال, "
    "صفقة, الصفقة, تجارة",
}

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Arabic-Indic and Persian digits, and the Arabic decimal and thousands marks.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٫٬", "01234567890123456789.,")
_GROUP = "[ \u00a0\u202f\u2009'’]"
_TOKEN = re.compile(
    rf"(?P<num>\d{{1,3}}(?:{_GROUP}\d{{3}})+(?:[.,]\d{{1,2}})?(?![\d.,])|\d+(?:[.,]\d+)*)"
    r"|(?P<stars>(?:[★⭐]\ufe0f?)+)"
    r"|(?P<word>[€$£]|(?:[^\W\d_]|[\u0300-\u036f\u064b-\u065f\u0670])+(?:['’.][^\W\d_]+)*)"
    r"|(?P<mark>[/+:%#])"
)
_LETTERS = re.compile(r"[^\W\d_]{2,}")
# Between answers: line ends, ; , (not inside 1,200) . (not "Rp.") ! ? and spaced dashes.
_SEPARATOR = re.compile(
    r"\n|[;؛،…]|[!?؟]+(?!\s*[:：])|(?<!\d),|,(?!\d)|(?<![Rr][Pp])\.(?=\s|$)|\s[-–—]+\s"
)
_LABELLED = re.compile(r"(?P<label>[^\W\d_][^:：=]{0,60}?)\s*[:：=]\s*(?P<value>.*)", re.S)
_NUMBERED = re.compile(r"^([1-9])[.)]\s+")
_JOINS = re.compile(r"[\s,;.!?؟،؛…\-–—]*")
_TRIM = re.compile(r"^[\s,;:\-–—،؛]+|[\s,;:\-–—،؛]+$")


def _fold_words(phrase: str) -> tuple[str, ...]:
    return tuple(fold_written(m.group()) for m in _TOKEN.finditer(phrase) if m.lastgroup == "word")


_VOCAB: dict[tuple[str, ...], tuple[str, object]] = {}
for _kind, _value, _words in (
    *((_ANSWER, answer, words) for answer, words in _ANSWERS.items()),
    (_ANSWER, Business.NO, ", ".join(TAKEN_BACK_WORDS)),
    *((_CUR, code, words) for code, words in _CURRENCIES.items()),
    *((_MULT, factor, word) for word, factor in _MULTIPLIERS.items()),
    (_UNIT, None, _UNITS),
    (_OF, None, _OFS),
    (_NEUTRAL, None, _NEUTRALS),
):
    for _phrase in phrases(_words):
        _VOCAB.setdefault(_fold_words(_phrase), (_kind, _value))
_LONGEST = max(len(p) for p in _VOCAB)
# "More: absolutely not" is a no, "More: absolutely, not now" a yes and a comment.
_TIGHT = {_fold_words(p) for p in TAKEN_BACK_WORDS}
_PLAIN_WORDS = {_fold_words(p) for p in phrases(_PLAIN)}
# What answers a labelled question. Money under a rating label is the value ("Nilai: Rp 15
# juta", Indonesian "nilai" being both score and value), as under a business label ("Deal: $500").
_ANSWERED_BY = {
    "rating": (_RATING, _SMALL, _MONEY),
    "amount": (_MONEY, _BARE, _SMALL),
    "business": (_ANSWER, _MONEY),
    "more": (_ANSWER,),
}
_LABEL_WORDS = {key: [_fold_words(p) for p in phrases(words)] for key, words in _LABELS.items()}


@dataclass(frozen=True)
class _Token:
    kind: str  # num, stars, word, mark
    text: str
    word: str  # folded, for words
    start: int
    end: int


@dataclass(frozen=True)
class _Item:
    kind: str  # _RATING, _SMALL (a bare 1..5), _BARE (any other number), _MONEY, _ANSWER
    start: int
    end: int
    explicit: bool = False  # unmistakable even in prose: "4/5", "4 stars", "★★★★", "1200 EUR"
    number: Decimal = Decimal(0)
    currency: str = ""
    answer: Business | None = None
    stress: bool = False  # "of course", "leider nicht": after the same answer, only stresses it


def read_survey(text: str) -> SurveyAnswers:
    """The answers in the new text of a reply to the survey.

    Parts are split at line ends, commas, semicolons, full stops and spaced dashes. A part
    that is a known label and a value ("Rating: 4", "Wert: 1.200 €") answers that question.
    A part made of nothing but answers ("4", "yes", "1200 EUR", "4 yes") answers in the
    survey's order: a number 1..5 is the rating, any other the amount, the first yes/no/not
    yet the business, the second `more`. Other parts are the comment, from which only
    unmistakable forms ("4/5", "5 stars", "1200 EUR") are read, and only for questions left
    unanswered: a phone number, date or "3 times" in prose is never an answer.
    """
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text)).translate(_DIGITS)
    reading = _Reading(_answer_lines(text.replace("\r\n", "\n")))
    start = 0
    for sep in [*_SEPARATOR.finditer(reading.text), None]:
        end = sep.start() if sep else len(reading.text)
        part = reading.text[start:end]
        if part.strip():
            offset = start + len(part) - len(part.lstrip())
            reading.take(part.strip(), offset)
        start = sep.end() if sep else end
    return reading.result()


def _answer_lines(text: str) -> str:
    """Without the greeting, the closing with everything below it, and a name signed last."""
    lines = [line.strip() for line in text.split("\n")]
    written = [i for i, line in enumerate(lines) if line]
    if not written:
        return ""
    lines[written[0]] = without_greeting(lines[written[0]])
    # "1. 4 / 2. yes / 3. 1200 EUR" on lines: list marks, not ratings, when they count 1, 2, …
    marks = [int(m[1]) for line in lines if (m := _NUMBERED.match(line))]
    if len(marks) > 1 and marks == list(range(1, len(marks) + 1)):
        lines = [_NUMBERED.sub("", line) for line in lines]
    for i in written[1:]:
        if _is_closing(lines[i]):
            lines = lines[:i]
            break
    written = [line for line in lines if line]
    last = written[-1] if written else ""
    is_name = re.fullmatch(r"[^\W\d_]+(?: [^\W\d_]+){0,2}", last) and not _scan(last)[0]
    if len(written) > 1 and is_name and all(not w[0].islower() for w in last.split()):
        lines = lines[: len(lines) - 1 - lines[::-1].index(last)]
    return "\n".join(lines).strip()


def _is_closing(line: str) -> bool:
    """'Thanks,' / 'Viele Grüße' / 'Best, Jane' — not 'Thanks, yes' nor 'Best intro ever'."""
    words = re.findall(r"[^\W\d_]+|\d+", line)
    folded = [fold_written(w) for w in words]
    for n in range(min(len(words), 4), 0, -1):
        if tuple(folded[:n]) in CLOSING_PHRASES:
            name = words[n:]
            signed = len(name) <= 3 and all(w.isalpha() and not w[0].islower() for w in name)
            return signed and not _scan(" ".join(name))[0]
    return False


class _Reading:
    """The answers read so far, part by part, and where the comment's words stand."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.rating: int | None = None
        self.business: Business | None = None
        self.money: _Item | None = None
        self.more: bool | None = None
        self.fallbacks: list[_Item] = []
        self.comments: list[tuple[int, int]] = []
        self.last: _Item | None = None  # the answer before, in the survey's order
        self.in_comment = False  # once "Comment:" is written, what follows is comment

    def take(self, part: str, offset: int) -> None:
        labelled = _LABELLED.fullmatch(part)
        key = _label_key(labelled["label"]) if labelled else None
        if labelled and key:
            self.in_comment = key == "comment"
            self.labelled(key, labelled["value"], offset + labelled.start("value"))
            return
        if self.in_comment:
            self.comments.append((offset, offset + len(part)))
            return
        items, other = _scan(part)
        if items and not other:
            for item in items:
                self.positional(item)
        elif _label_key(part, exact=True) and not items:
            pass  # "Rating - 4": a label standing alone is no comment
        elif not self.unlabelled(part, offset):
            if other:
                self.comments.append((offset, offset + len(part)))
            self.fallbacks += [item for item in items if item.explicit]

    def unlabelled(self, part: str, offset: int) -> bool:
        """'Rating 4', 'Business not yet': a label and an answer without the colon."""
        words = [m for m in _TOKEN.finditer(part) if m.lastgroup == "word"][:3]
        for count in range(len(words), 0, -1):
            cut = words[count - 1].end()
            key = _label_key(part[:cut], exact=True)
            items, other = _scan(part[cut:])
            if key and key != "comment" and items and not other:
                self.labelled(key, part[cut:], offset + cut)
                return True
        return False

    def labelled(self, key: str, value: str, offset: int) -> None:
        """A labelled answer overrides a positional one: the label says which question."""
        if key == "comment":
            self.comments.append((offset, offset + len(value)))
            return
        items, other = _scan(value)
        if other:  # prose in the value: only a leading answer, or an unmistakable one
            lead = len(value) - len(value.lstrip())
            items = [it for n, it in enumerate(items) if it.explicit or (n, it.start) == (0, lead)]
        used = next((it for it in items if it.kind in _ANSWERED_BY[key]), None)
        if used and used.answer is Business.NOT_YET and key == "more":
            used = None
        if used is None:
            pass
        elif used.kind in (_RATING, _SMALL) and key == "rating":
            self.rating = int(used.number)
        elif used.kind in (_MONEY, _BARE, _SMALL):
            self.money = used
        elif key == "business":
            self.business = used.answer
        else:
            self.more = used.answer is Business.YES
        if other:
            start = used.end if used else 0
            self.comments.append((offset + start, offset + len(value)))

    def positional(self, item: _Item) -> None:
        last, self.last = self.last, item
        if item.kind == _RATING or (item.kind == _SMALL and self.rating is None):
            self.rating = self.rating or int(item.number)
        elif item.kind in (_MONEY, _BARE, _SMALL):
            self.money = self.money or item
        elif item.stress and last and last.answer is item.answer:
            pass  # "Yes, of course" is one answer
        elif self.business is None:
            self.business = item.answer
        elif self.business is Business.NO and item.answer is Business.NOT_YET:
            self.business = item.answer  # "No, not yet": the not yet says more
        elif self.more is None and item.answer is not Business.NOT_YET:
            self.more = item.answer is Business.YES

    def result(self) -> SurveyAnswers:
        for item in self.fallbacks:
            if item.kind == _RATING:
                self.rating = self.rating or int(item.number)
            elif item.kind == _MONEY:
                self.money = self.money or item
        money = self.money
        answers = SurveyAnswers(
            rating=self.rating,
            business=self.business,
            amount=money.number.quantize(_CENTS, ROUND_HALF_UP) if money else None,
            currency=money.currency if money else "",
            more=self.more,
            comment=self.comment(),
        )
        return SurveyAnswers() if answers.empty else answers  # a lone "ok" is no comment

    def comment(self) -> str:
        """The comment parts, with the text between them when only separators stand there."""
        groups: list[list[int]] = []
        for start, end in sorted(self.comments):
            rest = self.text[end:]
            end += len(rest) - len(rest.lstrip(".!?؟…"))  # a sentence keeps its own end
            if groups and _JOINS.fullmatch(self.text[groups[-1][1] : start]):
                groups[-1][1] = end
            else:
                groups.append([start, end])
        text = "\n".join(p for s, e in groups if (p := _TRIM.sub("", self.text[s:e])))
        if len(text) > _COMMENT_CHARS:
            text = text[: _COMMENT_CHARS - 1].rstrip() + "…"
        return text


def _label_key(label: str, exact: bool = False) -> str | None:
    """Which question a label names; a long label ("Led to business") by a word it holds."""
    words = _fold_words(label)
    if not 1 <= len(words) <= 8:
        return None
    for key, label_phrases in _LABEL_WORDS.items():
        for phrase in label_phrases:
            n = len(phrase)
            if words == phrase or (
                not exact and any(words[i : i + n] == phrase for i in range(len(words)))
            ):
                return key
    return None


# ----------------------------------------------------------------------------- scanning


def _scan(text: str) -> tuple[list[_Item], int]:
    """The answers written in a piece of text, in order, and how many other words it has."""
    tokens = [
        _Token(m.lastgroup or "", m.group(), fold_written(m.group()), m.start(), m.end())
        for m in _TOKEN.finditer(text)
    ]
    items: list[_Item] = []
    other = 0
    index = 0
    answered_to = -1  # the token after the last answer: "yes definitely" is one answer
    while index < len(tokens):
        token = tokens[index]
        hit, length = _phrase_at(tokens, index, text)
        if token.kind == "stars":
            stars = token.text.count("★") + token.text.count("⭐")
            items += [_Item(_RATING, token.start, token.end, True, Decimal(stars))]
            index += 1
        elif token.kind == "num" or (hit and hit[0] == _CUR and _is(tokens, index + length, "num")):
            currency = str(hit[1]) if token.kind == "word" and hit else ""
            at = index + length if currency else index
            item, index = _number_at(text, tokens, at, currency, token.start)
            items += [item] if item else []
            other += not item
        elif hit and hit[0] == _ANSWER:
            answer = hit[1]
            assert isinstance(answer, Business)
            if answered_to == index:  # merged: "no, not yet" says not yet
                answer = Business.NOT_YET if answer is Business.NOT_YET else items[-1].answer
                items.pop()
            words = tuple(t.word for t in tokens[index : index + length])
            end = tokens[index + length - 1].end
            stress = words not in _PLAIN_WORDS
            items.append(_Item(_ANSWER, token.start, end, answer=answer, stress=stress))
            index += length
            answered_to = index
        else:
            other += token.kind == "word" and not hit
            index += max(length, 1)
    items = [it for it in items if it.kind != _RATING or 1 <= it.number <= 5]
    return items, other


def _phrase_at(
    tokens: list[_Token], index: int, text: str = ""
) -> tuple[tuple[str, object] | None, int]:
    """The longest known phrase of words starting at this token; given the `text` they
    were read from, a taken-back yes only where nothing but spaces parts its words."""
    for length in range(min(_LONGEST, len(tokens) - index), 0, -1):
        chunk = tokens[index : index + length]
        if all(t.kind == "word" for t in chunk):
            words = tuple(t.word for t in chunk)
            hit = _VOCAB.get(words)
            if (
                hit
                and words in _TIGHT
                and any(text[a.end : b.start].strip() for a, b in pairwise(chunk))
            ):
                continue  # "absolutely, not now"
            if hit:
                return hit, length
    return None, 0


def _is(tokens: list[_Token], index: int, kind: str, text: str = "") -> bool:
    return index < len(tokens) and tokens[index].kind == kind and text in ("", tokens[index].text)


def _number_at(
    text: str, tokens: list[_Token], index: int, currency: str, start: int
) -> tuple[_Item | None, int]:
    """A rating ("4/5", "4 of 5 stars"), money ("1.200 €", "Rp 15 juta") or bare number at
    this token; None for what only looks like one: a phone, date, time or percentage."""
    token = tokens[index]
    number = parse_number(token.text)
    after = index + 1
    glued = text[token.end : token.end + 1]
    if (
        number is None
        or text[:start].rstrip().endswith(("+", "#"))
        or (glued in ("%", ":", "/") and not (_rating_end(tokens, index) and not currency))
        or re.match(r"0\d", token.text)
    ):
        while _is(tokens, after, "mark") and _is(tokens, after + 1, "num"):
            after += 2  # "03/12/2026", "10:30"
        return None, after
    rated = _rating_end(tokens, index) if not currency else None
    if rated:
        return _Item(_RATING, start, tokens[rated - 1].end, True, number), rated
    hit, length = _phrase_at(tokens, after)
    if hit and hit[0] == _MULT:
        number *= Decimal(str(hit[1]))
        after += length
        hit, length = _phrase_at(tokens, after)
    if not currency and _is(tokens, after, "word") and tokens[after].word == "de":
        # Romanian puts "de" between a number from 20 up and its noun: "1200 de euro".
        following, following_length = _phrase_at(tokens, after + 1)
        if following and following[0] == _CUR:
            after, hit, length = after + 1, following, following_length
    if not currency and hit and hit[0] == _CUR:
        currency = str(hit[1])
        after += length
    end = tokens[after - 1].end
    if currency:
        return _Item(_MONEY, start, end, True, number, currency), after
    small = token.text.isdigit() and 1 <= number <= 5
    return _Item(_SMALL if small else _BARE, start, end, number=number), after


def _rating_end(tokens: list[_Token], index: int) -> int | None:
    """After "4/5", "4 of 5", "4 stars", "4 out of 5 stars": the token past it, else None."""
    if not (tokens[index].text.isdigit() and 1 <= int(tokens[index].text) <= 5):
        return None
    after = index + 1
    hit, length = _phrase_at(tokens, after)
    if _is(tokens, after, "mark", "/") and _is(tokens, after + 1, "num", "5"):
        after += 2
    elif hit and hit[0] == _OF and _is(tokens, after + length, "num", "5"):
        after += length + 1
    hit, length = _phrase_at(tokens, after)
    if hit and hit[0] == _UNIT:
        after += length
    return after if after > index + 1 else None


def parse_number(raw: str) -> Decimal | None:
    """1.200 and 1,200 are 1200; 1,5 is 1.5; 1.200,50 and 1,200.50 are 1200.50; 1 200 is
    1200; a date such as 12.03.2026 is no number."""
    raw = re.sub(_GROUP, "", raw)
    marks = re.findall(r"[.,]", raw)
    decimal = None
    if len(set(marks)) == 2:
        decimal = marks[-1]
    elif len(marks) == 1:
        head, tail = raw.split(marks[0])
        if len(tail) != 3 or len(head) > 3 or head == "0":
            decimal = marks[0]
    head, tail = raw.rsplit(decimal, 1) if decimal else (raw, "")
    groups = re.split(r"[.,]", head)
    if (
        len(head) > 18  # a reference or an account number, not money (nor a Decimal to round)
        or "." in tail
        or "," in tail
        or (len(groups) > 1 and (len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:])))
    ):
        return None
    return Decimal("".join(groups) + ("." + tail if tail else ""))
