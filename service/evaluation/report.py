"""The referrer's report: the figures of their referrals, as JSON, CSV, text and a page."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from functools import partial

from service.clock import stored_utc
from service.evaluation import charts, figures
from service.evaluation.figures import Figures, RadarRow
from service.writing import formats
from service.writing.compose import Templates
from store import queries

JSON_SCHEMA = "care-intro/figures/1"
FORMATS = ("text", "json", "csv")


def figures_for(referrer: str | None, since: datetime | None, now: datetime) -> Figures:
    """The report's figures: of one referrer (or everyone), of referrals made since a moment."""
    referrals = queries.referrals_for_report(referrer, since)
    surveys = queries.surveys_for(r.id for r in referrals if r.introduced_at is not None)
    return figures.compute(referrals, surveys, referrer=referrer, since=since, now=now)


def render(found: Figures, fmt: str, templates: Templates, language: str, timezone: str) -> str:
    """The figures in one of FORMATS; text is written in `language`, dates in `timezone`."""
    if fmt == "json":
        return as_json(found)
    if fmt == "csv":
        return as_csv(found)
    return as_text(found, templates, language, timezone)


def as_text(found: Figures, templates: Templates, language: str, timezone: str) -> str:
    """The report as the command line prints it, from the same translated words as the
    mailed report."""
    context = {"figures": found, "timezone": timezone}
    return templates.render_text("report", language, context)


def page_context(found: Figures, referrer: str, language: str) -> dict[str, object]:
    """What the report page shows: the figures, and the chart functions its template calls
    with its own (translated) labels, writing numbers as the page's language does."""
    percent = partial(formats.format_percent, language=language)
    # Arabic joins a list with its own semicolon.
    separator = "؛ " if language in formats.RTL else "; "
    return {
        "referrer": referrer,
        "figures": found,
        "funnel": {c.name: c.count for c in found.funnel},
        "funnel_svg": partial(
            charts.funnel_svg,
            number=partial(formats.format_number, language=language),
            percent=percent,
            separator=separator,
        ),
        "share_bars_svg": partial(charts.share_bars_svg, percent=percent, separator=separator),
    }


def _amount(amount: Decimal) -> str:
    return f"{figures.cents(amount):f}"


def _moment(moment: datetime | None) -> str | None:
    return stored_utc(moment).isoformat() if moment is not None else None


def _yes_no(flag: bool | None) -> str:
    return "" if flag is None else ("yes" if flag else "no")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def as_json(figures: Figures) -> str:
    """The figures as JSON, schema "care-intro/figures/1".

    {
      "schema": "care-intro/figures/1",
      "referrer": str | null,              null = all referrers
      "since": ISO-8601 | null,
      "generated_at": ISO-8601,
      "funnel": {step: int, ...},          keys in FUNNEL_STEPS order
      "declines": {reason: int, ...},      not_relevant, no_need_now, not_a_fit, other,
                                           unspecified
      "people": [{
        "email": str, "name": str, "roles": [str], "referred": int, "introduced": int,
        "declined": int, "declined_not_relevant": int, "average_rating": number | null,
        "business": int, "value": {currency: "1200.00"}, "more": bool | null,
        "refer_again": "yes" | "no" | "unknown"
      }],                                  most referred first, then by email
      "value_closed": {currency: "1200.00", ...},   "" = no currency given
      "radar": {
        "months": [{"month": "YYYY-MM", "introduced": int, "business": int,
                    "business_share": number | null, "requested": int,
                    "not_relevant": int, "not_relevant_share": number | null}],
        "all": {the same fields, without "month"}
      }
    }
    Money is a string with two decimals, so no reader turns it into a float.
    """

    def radar(row: RadarRow) -> dict[str, object]:
        return {
            "introduced": row.introduced,
            "business": row.business,
            "business_share": row.business_share,
            "requested": row.requested,
            "not_relevant": row.not_relevant,
            "not_relevant_share": row.not_relevant_share,
        }

    document = {
        "schema": JSON_SCHEMA,
        "referrer": figures.referrer,
        "since": _moment(figures.since),
        "generated_at": _moment(figures.generated_at),
        "funnel": {c.name: c.count for c in figures.funnel},
        "declines": {c.name: c.count for c in figures.declines},
        "people": [
            {
                "email": p.email,
                "name": p.name,
                "roles": list(p.roles),
                "referred": p.referred,
                "introduced": p.introduced,
                "declined": p.declined,
                "declined_not_relevant": p.declined_not_relevant,
                "average_rating": p.average_rating,
                "business": p.business,
                "value": {m.currency: _amount(m.amount) for m in p.value},
                "more": p.more,
                "refer_again": p.refer_again,
            }
            for p in figures.people
        ],
        "value_closed": {m.currency: _amount(m.amount) for m in figures.value_closed},
        "radar": {
            "months": [{"month": row.month, **radar(row)} for row in figures.radar],
            "all": radar(figures.radar_all),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def as_csv(figures: Figures) -> str:
    """The figures as tidy CSV: one value per row, header section,subject,measure,value.

    Sections: report (referrer, since, generated_at), funnel, declines, person (subject =
    email; measures name, roles joined by ";", referred, introduced, declined,
    declined_not_relevant, average_rating, business, value:<currency>, more, refer_again),
    value (subject = currency, "" when none given; measure total), radar (subject = month
    or "all"). Missing values (no rating, no answer, no base for a share) are empty.
    """
    rows: list[tuple[str, str, str, object]] = [
        ("report", "", "referrer", figures.referrer or ""),
        ("report", "", "since", _moment(figures.since) or ""),
        ("report", "", "generated_at", _moment(figures.generated_at)),
    ]
    rows += [("funnel", "", c.name, c.count) for c in figures.funnel]
    rows += [("declines", "", c.name, c.count) for c in figures.declines]
    for p in figures.people:
        rows += [
            ("person", p.email, "name", p.name),
            ("person", p.email, "roles", ";".join(p.roles)),
            ("person", p.email, "referred", p.referred),
            ("person", p.email, "introduced", p.introduced),
            ("person", p.email, "declined", p.declined),
            ("person", p.email, "declined_not_relevant", p.declined_not_relevant),
            ("person", p.email, "average_rating", _number(p.average_rating)),
            ("person", p.email, "business", p.business),
            *(("person", p.email, f"value:{m.currency}", _amount(m.amount)) for m in p.value),
            ("person", p.email, "more", _yes_no(p.more)),
            ("person", p.email, "refer_again", p.refer_again),
        ]
    rows += [("value", m.currency, "total", _amount(m.amount)) for m in figures.value_closed]
    for row in (*figures.radar, figures.radar_all):
        rows += [
            ("radar", row.month, "introduced", row.introduced),
            ("radar", row.month, "business", row.business),
            ("radar", row.month, "business_share", _number(row.business_share)),
            ("radar", row.month, "requested", row.requested),
            ("radar", row.month, "not_relevant", row.not_relevant),
            ("radar", row.month, "not_relevant_share", _number(row.not_relevant_share)),
        ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "subject", "measure", "value"))
    writer.writerows(rows)
    return out.getvalue()
