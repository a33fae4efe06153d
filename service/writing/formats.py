"""Pure: dates, times, numbers and money as a reader of each language writes them (Babel)."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime
from decimal import Decimal

from babel import Locale, dates, numbers

from service.clock import zone

# Our six languages as Babel locales. English as written in Britain: day before month and a
# 24-hour clock read unambiguously to our international readers.
LOCALES = {
    code: Locale.parse(code if code != "en" else "en_GB")
    for code in ("en", "de", "fr", "ro", "id", "ar")
}
RTL = frozenset({"ar"})
DEFAULT_ZONE = "UTC"


def negotiate(accept_language: str) -> str | None:
    """The first of our languages an Accept-Language header asks for ("de-AT,de;q=0.9")."""
    wanted = []
    for item in accept_language.split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            wanted.append((quality, tag.strip()))
    wanted.sort(key=lambda pair: -pair[0])
    for _, tag in wanted:
        code = tag.split("-")[0].split("_")[0].lower()
        if code in LOCALES:
            return code
    return None


def locale_of(language: str) -> Locale:
    return LOCALES.get(language, LOCALES["en"])


def _zone(timezone: str | None) -> zoneinfo.ZoneInfo:
    return zone(timezone or DEFAULT_ZONE) or zoneinfo.ZoneInfo(DEFAULT_ZONE)


def format_date(moment: datetime, language: str, timezone: str | None = None) -> str:
    """The day in the reader's time zone: "22 November 2026", "22. November 2026"."""
    return _long_date(moment.astimezone(_zone(timezone)).date(), language)


# A tick writes hundreds of letters naming the same few days; Babel took longer to write a
# day than everything else a date filter does.
@functools.lru_cache(maxsize=4096)
def _long_date(day: date, language: str) -> str:
    return dates.format_date(day, format="long", locale=locale_of(language))


def format_datetime(moment: datetime, language: str, timezone: str | None = None) -> str:
    """Day and time in the reader's time zone, with the zone's name so nobody has to guess."""
    zone = _zone(timezone)
    local = moment.astimezone(zone)
    locale = locale_of(language)
    day = dates.format_date(local.date(), format="long", locale=locale)
    time = dates.format_time(local, format="short", locale=locale)
    # The locale's own way of joining a date and a time ("{1}, {0}", "{1}، {0}").
    when = str(locale.datetime_formats["long"]).replace("{1}", day).replace("{0}", time)
    return f"{when} ({zone.key})"


def format_money(amount: Decimal | None, currency: str, language: str) -> str:
    """1.200,50 € in German, 1 200,50 € in French, €1,200.50 in English; no currency: the
    number alone."""
    if amount is None:
        return ""
    locale = locale_of(language)
    if currency:
        text = numbers.format_currency(amount, currency, locale=locale)
        # A currency with no symbol of its own in this locale is written as its code, which
        # Babel glues to the number ("RON2,500.00"); readers expect a space.
        if text.startswith(currency) and text[len(currency) : len(currency) + 1].isdigit():
            text = f"{currency}\u00a0{text[len(currency) :]}"
        return text
    return numbers.format_decimal(amount, format="#,##0.00", locale=locale)


def format_number(value: float | int | Decimal, language: str) -> str:
    return numbers.format_decimal(value, locale=locale_of(language))


def format_percent(share: float | None, language: str) -> str:
    """A share 0..1 as the reader writes a percentage; None (no base) as a dash."""
    if share is None:
        return "–"
    return numbers.format_percent(share, locale=locale_of(language))
