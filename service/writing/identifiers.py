"""Pure: which dotted words are host names and which digit runs are phone numbers, in free text.

Redaction replaces every one of them before consent, whoever it belongs to, so each shape
here is drawn so that it takes what people write as a site or a number to call and leaves
what they write as a sentence, an amount, a date, a year or a count. Where the two meet,
the shapes err towards the person's privacy; the line is spelled out in README.md.
"""

from __future__ import annotations

import re

# Top-level domains a host name ends in: every country code, and the generic ones people
# put on a letterhead. Not the whole root zone: it holds words like "next", "done" or
# "date" that end sentences typed without a space ("we are done.next week").
_COUNTRY_CODES = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo "
    "br bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm "
    "do dz ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs "
    "gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km "
    "kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp "
    "mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk "
    "pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss "
    "st sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc "
    "ve vg vi vn vu wf ws ye yt za zm zw"
)
_GENERIC = (
    "com net org edu gov mil int info biz name pro mobi aero coop museum travel jobs tel "
    "asia cat app dev xyz online site website shop store tech blog cloud club design agency "
    "studio digital media email page art law consulting services solutions company group "
    "business berlin hamburg koeln cologne bayern nrw wien paris london nyc amsterdam "
    "brussels swiss example"
)
_TLDS = sorted(set(_COUNTRY_CODES.split()) | set(_GENERIC.split()), key=len, reverse=True)
# A TLD is written in small letters or in capitals: "Backstube.de", "BACKSTUBE.DE". A
# capitalised word after a dot starts a sentence ("done.Next", "fertig.Es"), and a single
# letter is an abbreviation ("e.g.", "i.e.", "z.B.", "Dr."). Digits are never a TLD, so
# versions ("3.11"), amounts ("1.200") and decimals stay.
_TLD = "|".join(_TLDS) + "|" + "|".join(t.upper() for t in _TLDS)
_HOST = re.compile(
    r"(?<![\w@.\-])"  # a whole word, not the end of an address or of a longer dotted run
    rf"(?:[^\W_][\w\-]*\.)+(?:{_TLD})"
    r"(?![\w\-])"
)
# Product names and a company form ("GmbH & Co.KG") spelled like hosts.
_NOT_HOSTS = frozenset({"asp.net", "vb.net", "ado.net", "co.kg"})


def hosts(text: str, replacement: str) -> str:
    """`text` with every bare host name ("backstube-kreuzberg.de", "sub.name.co.uk")
    replaced."""
    return _HOST.sub(
        lambda m: m.group(0) if m.group(0).lower() in _NOT_HOSTS else replacement, text
    )


# ------------------------------------------------------------------ phone numbers

_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DATE_SEP = r" ?[./-] ?"
# 15.03.2027, 03/15/2027, 15. 3. 27, 2027-03-15: a date, never a phone number.
_DATE = (
    rf"(?:(?:{_DAY}{_DATE_SEP}{_MONTH}|{_MONTH}{_DATE_SEP}{_DAY}){_DATE_SEP}(?:(?:19|20)\d\d|\d\d)"
    rf"|(?:19|20)\d\d-{_MONTH}-{_DAY})(?![./-]?\d)"
)
# 10.00, 9.30-17.00: a time or opening hours. Not when more digits follow after a space:
# "10.00 555 867 5309" reads as a number to call.
_CLOCK = r"(?:[01]?\d|2[0-3])[.:][0-5]\d"
_TIME = rf"{_CLOCK}(?: ?[-–] ?{_CLOCK})?(?![./-]?\d| \d)"
_GROUP = r"(?:\(\d{1,5}\)\d*|\d+)"  # "030", or an area code in brackets: "(415)", "(0)30"
# Groups join by a - or / (with spaces around it or not), a point (without: "2026. 12"
# ends a sentence) or one space; after a space a date or a time is a figure of its own,
# not more of the number. Any other number a space joins to it is read with it ("2027
# 12 000" reads as one number).
_JOINED = r"(?:[ \u00a0]?[-/][ \u00a0]?|\.)"
_SPACED = r"[ \u00a0]"
# A run of digit groups with the separators people type. It starts where a number starts
# (not inside a word, nor after a digit and a point, comma or colon as in "3,14159265" or
# "17:00") and stops before a date or a time that a space joins to it.
_RUN = (
    rf"(?:\+[ \u00a0]?)?{_GROUP}"
    rf"(?:{_JOINED}{_GROUP}|{_SPACED}(?!{_DATE}|{_TIME}){_GROUP})*"
    r"(?![\w]|[.,/-]?\d)"
)
# Dates, times and runs in one scan: at each place a date or a time is tried first, so a
# run never starts inside one.
NUMBERS = re.compile(
    rf"(?=[\d+(])(?<![\w+])(?<!\d[.,/:-])(?:(?P<kept>{_DATE}|{_TIME})|(?P<run>{_RUN}))"
)

_THOUSANDS = re.compile(r"\d{1,3}(?:([ .\u00a0'])\d{3})(?:\1\d{3})*")
# Words that announce a number to call, in the service's languages, with up to three
# short words between ("call me on", "Tel.:", "ruf ihn an unter", "appelez-le au").
_CUE = re.compile(
    r"(?i)(?:\b(?:tel|t[ée]l[ée]?phone|phone|telefon\w*|telepon|call|ring|mobile?|mob|mobil"
    r"|handy|cell|fax|sms|text|whats ?app|signal|portable|appel\w*|anruf\w*|ruf|suna\w*"
    r"|hubungi|hp|wa)\b|هاتف|جوال|اتصل|واتساب)"
    r"\W*(?:\w{1,5}\W+){0,3}$"
)
_CUE_REACH = 40
_FEWEST_DIGITS = 7  # a local number without its area code
_MOST_DIGITS = 15  # E.164's longest number


def phones(text: str, replacement: str) -> str:
    """`text` with every phone number replaced, in the national and international forms
    people write them, and every other number kept."""

    def one(found: re.Match[str]) -> str:
        if found.group("kept") is not None or _digits(found.group(0)) < _FEWEST_DIGITS:
            return found.group(0)
        before = text[max(0, found.start() - _CUE_REACH) : found.start()].rsplit("\n", 1)[-1]
        return _phones_in(found.group(0), bool(_CUE.search(before)), replacement)

    return NUMBERS.sub(one, text)


def _phones_in(run: str, announced: bool, replacement: str) -> str:
    """Each phone number in a run, which may hold ordinary numbers a space joins to it
    ("since 2019 030 1234567", "555 867 5309 3 times"), found among its space-separated
    chunks: the phone-shaped stretch with the most digits goes, then the same on each side
    of it, so that a stretch that merely starts with a number ("3.11 0100") cannot leave
    the rest of a phone number behind."""
    chunks = re.split(r"([ \u00a0]+)", run)  # chunk, space, chunk, …
    # A phone number spans at most _MOST_DIGITS chunks (each holds a digit), so only such
    # stretches are tried: a run of a thousand one-digit chunks costs thousands of looks,
    # not a billion (every stretch of every length, each joined anew).
    widest = 2 * (_MOST_DIGITS - 1)
    stretches = [
        (i, j)
        for i in range(0, len(chunks), 2)
        for j in range(i, min(i + widest + 1, len(chunks)), 2)
    ]

    def phone(i: int, j: int) -> bool:
        return is_phone("".join(chunks[i : j + 1]), announced and i == 0)

    # Two numbers written together ("030 1234567 / 0171 2345678"), or an account number:
    # too long for one phone, and cut anywhere it would leave part of one.
    if _digits(run) > _MOST_DIGITS and any(phone(i, j) for i, j in stretches):
        return replacement

    def within(first: int, last: int) -> str:
        found = [(i, j) for i, j in stretches if first <= i and j <= last and phone(i, j)]
        if not found:
            return "".join(chunks[first : last + 1])
        i, j = max(found, key=lambda s: _digits("".join(chunks[s[0] : s[1] + 1])))
        left = within(first, i - 2) + chunks[i - 1] if i > first else ""
        right = chunks[j + 1] + within(j + 2, last) if j < last else ""
        return left + replacement + right

    return within(0, len(chunks) - 1)


def _digits(text: str) -> int:
    return sum(map(str.isdigit, text))


def is_phone(run: str, announced: bool = False) -> bool:
    """Whether a run of digit groups (no date, no time) is written as a phone number.

    `announced`: a word such as "call" or "Tel." stands just before it.
    """
    digits = _digits(run)
    if not _FEWEST_DIGITS <= digits <= _MOST_DIGITS:
        return False  # years, postcodes, counts, amounts to 999,999; or more than one number
    if run.startswith("+"):
        return True  # international
    if announced:
        return True
    groups = re.findall(r"\d+", run)
    if run.startswith("0") and groups[0] != "0":
        return True  # national trunk prefix: 030 1234567, 06 12 34 56 78, 0171-2345678
    if run.startswith("("):
        return True  # area code in brackets: (415) 555-0132, (030) 1234567
    if len(groups) == 1:
        return digits >= 10  # 4155550132; shorter unbroken runs are amounts or references
    if _THOUSANDS.fullmatch(run):
        return False  # 1 200 000, 2.000.000 (and, unannounced, Spain's 612 345 678)
    # 415-555-0132, 555 867 5309, 1-415-555-0132, 12 34 56 78, 30 123 4567, 123 45 678.
    return len(groups) >= 3 and len(groups[0]) <= 4 and all(2 <= len(g) <= 4 for g in groups[1:])
