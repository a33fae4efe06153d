"""Pure: a budget, a best time, a way to be reached and a phone, as a prospect writes them.

A forwarded mail says in sentences what a referrer would put on labelled lines: "our budget
is around 3,000 EUR", "am besten vormittags", "par e-mail de préférence", a phone under the
name. We read only what is unmistakable: a wrong budget or phone in an introduction is
worse than none, so a sum of money is a budget only next to the word, a time only when it
names a time of day or week, a number a phone only where the prospect gives it as theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.reading.letter_body import reflowed
from service.reading.text import fold_written

_BUDGET_WORD = (
    r"(?:budget|budgets|buget|bugetul|bugetului|anggaran|anggarannya|(?:ال)?ميزاني(?:ة|تنا|تي|ته))"
)
_APPROX = (
    r"(?:around|about|approximately|approx\.?|roughly|up to|max\.?|maximum|ca\.|circa|etwa"
    r"|ungefähr|rund|bis zu|maximal|höchstens|environ|autour de"
    r"|jusqu'à|jusqu’à|aproximativ|în jur de|până la|maxim|sekitar|kira-kira|kurang lebih"
    r"|maksimal|hingga|sampai|حوالي|حوالى|تقريبا|نحو|حتى|بحدود)"
)
_NUMBER = r"\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_SCALE = r"(?:\s?(?:k|K|Mio\.?|million|millions|juta|ribu|mii|ألف|الف|مليون))"
_CURRENCY = (
    r"(?:€|\$|£|US\$|EUR|USD|GBP|CHF|RON|IDR|AED|SAR|Rp\.?|euros?|Euro|dollars?|pounds?"
    r"|Franken|lei|leu|rupiah|يورو|دولار|درهم|ريال|جنيه)"
)
_PERIOD = (
    r"(?:\s?(?:/\s?(?:month|monat|mois|lună|luna|bulan|شهر)|per month|a month|pro monat"
    r"|im monat|monatlich|par mois|pe lună|pe luna|lunar|per bulan|sebulan|شهريا|في الشهر))"
)
_SUM = re.compile(
    rf"(?:{_APPROX}\s+)?(?:{_CURRENCY}\s?(?:{_NUMBER}){_SCALE}?|(?:{_NUMBER}){_SCALE}?\s?{_CURRENCY})"
    rf"{_PERIOD}?(?![\w])",
    re.IGNORECASE,
)
_BUDGET = re.compile(rf"(?<![\w]){_BUDGET_WORD}(?![\w])", re.IGNORECASE)
# The sum is in the same sentence; "ca." and "approx." do not end one.
_SENTENCE_END = re.compile(r"(?<!\bca)(?<!approx)(?<!\bmax)[.!?;؛؟](?:\s|$)|\n")
# How far past the word the sum may be: "our budget for this is around 3,000 EUR".
_BUDGET_REACH = 60
_BUDGET_GAP_WORDS = 4
_TIME_OPENING_WORDS = 3

# What opens a sentence about when to call, per language; the time follows it.
_BEST_TIME = re.compile(
    r"(?:best time (?:to (?:call|reach|phone|contact) (?:me|us) )?(?:is |would be )?"
    r"|(?:best|easiest) (?:to (?:call|reach) (?:me|us)|reached) (?:is |would be )?"
    r"|(?:i am|i'm|we are|we're) best reached "
    r"|am besten (?:erreichen sie mich |erreichst du mich |erreichbar |bin ich erreichbar )?"
    r"|(?:erreichbar|erreichen sie mich|erreichst du mich) (?:bin ich )?(?:meist |am besten )?"
    r"|plutôt |le mieux (?:c'est |est |serait )?(?:de m'appeler |de me joindre )?"
    r"|joignable (?:plutôt |de préférence )?"
    r"|cel mai bine (?:mă (?:puteți|poți) (?:suna|contacta) |ar fi )?"
    r"|paling baik (?:menghubungi saya |dihubungi |ditelepon |telepon )?(?:pada )?"
    r"|waktu terbaik (?:untuk menghubungi saya |untuk menelepon saya )?(?:adalah )?"
    r"|(?:ال)?أفضل وقت (?:للاتصال بي |للتواصل معي |للاتصال )?(?:هو )?)"
    r"(?P<time>[^\n]{2,60}?)(?=[.!?;؛؟](?:\s|$)|[,،\n]|$)",
    re.IGNORECASE,
)
# A best time names a time of day or of the week in its first words: without one it is some
# other "am besten" ("am besten wäre eine Lösung bis 2027").
_TIME_WORDS = re.compile(
    r"\d|\b(?:morning|afternoon|evening|noon|lunch|weekday|weekend|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|vormittag|nachmittag|morgens|abends|mittag|fruh|uhr"
    r"|werktag|wochenende|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag"
    r"|matin|apres-midi|soir|midi|heure|semaine|week-end|lundi|mardi|mercredi|jeudi"
    r"|vendredi|samedi|dimanche|dimineat|dupa-amiaz|seara|pranz|ora |orele|marti|miercuri"
    r"|joi\b|vineri|sambata|duminica|pagi|siang|sore|malam|jam|pukul|senin|selasa|rabu|kamis"
    r"|jumat|sabtu|minggu|akhir pekan)|صباح|الظهر|مساء|الساعه|الاحد|الاثنين|الثلاثاء"
    r"|الاربعاء|الخميس|الجمعه|السبت|العصر"
)

# A way to be reached, as people ask for it, and the method each phrase means.
_PREFERENCES: tuple[tuple[str, str], ...] = (
    (
        r"please call me|call me rather|prefer (?:a )?(?:phone call|call)|by phone,? please"
        r"|phone is best|reach me by phone",
        "phone",
    ),
    (r"prefer (?:an )?e-?mail|by e-?mail,? please|e-?mail is best|reach me by e-?mail", "email"),
    (r"prefer whatsapp|whatsapp is best|via whatsapp,? please", "WhatsApp"),
    (
        r"(?:lieber|am liebsten|bitte|gerne) (?:per telefon|telefonisch)"
        r"|rufen sie mich (?:bitte )?an|ruf mich (?:bitte )?an",
        "phone",
    ),
    (r"(?:lieber|am liebsten|bitte|gerne) per e-?mail|(?:lieber|am liebsten) per mail", "email"),
    (r"(?:lieber|am liebsten|bitte|gerne) per whatsapp", "WhatsApp"),
    (
        r"par téléphone de préférence|de préférence par téléphone|appelez-moi|appelle-moi"
        r"|je préfère (?:être appelée?|un appel|le téléphone)",
        "phone",
    ),
    (
        r"par (?:e-?mail|courriel) de préférence|de préférence par (?:e-?mail|courriel)"
        r"|je préfère (?:les |un )?(?:e-?mails?|courriels?)",
        "email",
    ),
    (
        r"sunați-mă|sună-mă|prefer (?:să fiu sunat|un telefon|telefonul)"
        r"|de preferință (?:prin |la )?telefon",
        "phone",
    ),
    (r"prefer (?:e-?mailul|e-?mail|un e-?mail)|de preferință (?:prin |pe )?e-?mail", "email"),
    (
        r"(?:tolong|silakan|mohon) (?:telepon|telpon) saya|lebih suka (?:dihubungi )?"
        r"(?:lewat |via |melalui )?(?:telepon|telpon)",
        "phone",
    ),
    (r"lebih suka (?:dihubungi )?(?:lewat |via |melalui )?e-?mail", "email"),
    (r"lebih suka (?:dihubungi )?(?:lewat |via |melalui )?(?:wa|whatsapp)", "WhatsApp"),
    (
        r"(?:اتصل|اتصلي|اتصلوا) بي|و?(?:يفضل|أفضل|افضل) (?:التواصل|الاتصال) (?:عبر |ب)ال?هاتف",
        "phone",
    ),
    (r"و?(?:يفضل|أفضل|افضل) (?:التواصل|الاتصال) (?:عبر |ب)ال?بريد الإلكتروني", "email"),
    (r"و?(?:يفضل|أفضل|افضل) (?:التواصل|الاتصال) (?:عبر )?(?:ال)?واتساب", "WhatsApp"),
)
_PREFERENCE = tuple(
    (re.compile(rf"(?<!\w)(?:{p})(?!\w)", re.IGNORECASE), m) for p, m in _PREFERENCES
)

# International (+44 …, 0044 …) or national with its trunk 0 (0722 …, (030) …).
_PHONE = re.compile(r"(?<![\w+])(?:\+|00|\(?0)\d[\d\s\-./()]{5,}\d(?![\w])")
_PHONE_DIGITS = (7, 15)
# A label or a sentence that gives a number as the writer's own.
_PHONE_CUE = re.compile(
    r"(?i)(?:\b(?:tel|phone|mobile|mob|cell|call me|reach me|my number|handy|telefon|mobil"
    r"|ruf mich|erreichen sie mich|erreichbar|tél|portable|appelez-moi|appelle-moi|joindre"
    r"|mon numéro|sunați-mă|sună-mă|numărul meu|telp|telepon|hp|wa|whatsapp|nomor saya"
    r"|hubungi saya)\b|هاتف|جوال|موبايل|اتصل بي|رقمي)"
)


@dataclass(frozen=True)
class ForwardedFields:
    budget: str = ""
    best_time: str = ""
    prefers: str = ""
    phone: str = ""


def forwarded_fields(text: str, signature: str = "") -> ForwardedFields:
    """What a prospect's own mail says about budget, timing and how to reach them."""
    # A sentence the client wrapped is one sentence again; a phone is read line by line.
    sentences = reflowed(text)
    return ForwardedFields(
        budget=budget_in(sentences),
        best_time=best_time_in(sentences),
        prefers=preference_in(sentences),
        phone=phone_in(text, signature),
    )


def budget_in(text: str) -> str:
    """The sum after a budget word, as written: 'around 3,000 EUR', 'ca. 3.000 €'."""
    for word in _BUDGET.finditer(text):
        window = text[word.end() : word.end() + _BUDGET_REACH]
        window = _SENTENCE_END.split(window)[0]
        found = _SUM.search(window)
        # "our budget for this is around …", not "a budget hotel with rooms from 60 EUR".
        if found and len(window[: found.start()].split()) <= _BUDGET_GAP_WORDS:
            return " ".join(found.group(0).split())
    return ""


def best_time_in(text: str) -> str:
    """When to call, as written: '3-5pm', 'vormittags', 'le matin', 'بعد الظهر'."""
    for found in _BEST_TIME.finditer(text):
        time = found.group("time").strip(" ,:-–")
        opening = " ".join(time.split()[:_TIME_OPENING_WORDS])
        if _TIME_WORDS.search(fold_written(opening)):
            return time
    return ""


def preference_in(text: str) -> str:
    """The one way the writer asks to be reached; nothing when they name two."""
    methods = {method for pattern, method in _PREFERENCE if pattern.search(text)}
    return methods.pop() if len(methods) == 1 else ""


def phone_in(text: str, signature: str = "") -> str:
    """The writer's phone: on a line of its own or labelled, or in a sentence that gives it as
    theirs ("call me on …"). A number in any other sentence may be anyone's."""
    for line in [*text.split("\n"), *signature.split("\n")]:
        for found in _PHONE.finditer(line):
            digits = re.sub(r"\D", "", found.group(0))
            if not _PHONE_DIGITS[0] <= len(digits) <= _PHONE_DIGITS[1]:
                continue
            before = line[: found.start()]
            alone = not before.strip() and not line[found.end() :].strip()
            if alone or _PHONE_CUE.search(before):
                return found.group(0).strip()
    return ""
