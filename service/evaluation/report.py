"""The referrer's report: the figures of their referrals, as JSON, CSV, text and a page."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from service.evaluation import charts, figures
from service.writing import formats
from store import queries

FORMATS = {"text": figures.as_text, "json": figures.as_json, "csv": figures.as_csv}


def figures_for(referrer: str | None, since: datetime | None, now: datetime) -> figures.Figures:
    """The report's figures: of one referrer (or everyone), of referrals made since a moment."""
    referrals = queries.referrals_for_report(referrer, since)
    surveys = queries.surveys_for(r.id for r in referrals if r.introduced_at is not None)
    return figures.compute(referrals, surveys, referrer=referrer, since=since, now=now)


def render(found: figures.Figures, fmt: str) -> str:
    return FORMATS[fmt](found)


def page_context(found: figures.Figures, referrer: str, language: str) -> dict[str, object]:
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
