"""Every mail and page in every language: present, complete, free of English, and Arabic
right to left. Run one language with `pytest tests/test_translations.py -k lang_de`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import pytest

from service.evaluation import report
from service.evaluation.charts import funnel_svg, share_bars_svg
from service.reading.addresses import Mailbox
from service.settings import LANGUAGES
from service.writing.compose import build_message
from tests.test_compose import CONTEXTS, NOW, TEMPLATES
from tests.test_figures import declined, introduced, run, survey

OTHERS = [lang for lang in LANGUAGES if lang != "en"]
ENGLISH = TEMPLATES.root / "en"
# The layouts hold no words, only structure and the `lang`/`dir` every language fills in:
# one copy, English's, serves all (a copy per language would only drift).
WORDLESS = frozenset({"mail/_layout.html", "pages/_layout.html"})
FILES = sorted(
    str(p.relative_to(ENGLISH))
    for p in ENGLISH.rglob("*")
    if p.is_file() and str(p.relative_to(ENGLISH)) not in WORDLESS
)
SHARED = {"sender_name": "Introductions", "timezone": "Europe/Berlin", "optout_url": "http://x/u/t"}


def _figures():
    business = introduced(provider_name="Jane Roe")
    quiet = introduced(provider="carol@cafe.example", prospect="dan@deli.example")
    return run(
        [business, quiet, declined("not_relevant"), declined(None, who="provider")],
        [
            survey(business, "provider", rating=5, business="yes", amount="1200", currency="EUR"),
            survey(business, "prospect", rating=4, business="not_yet", more=True),
        ],
    )


FIGURES = _figures()
PAGES: dict[str, dict[str, Any]] = {
    "home": {"referral_address": "refer@intro.example.org"},
    "consent": {
        "action": "/c/t",
        "referrer": "Ada",
        "role": "provider",
        "need": "bookkeeping",
        "budget": "400 EUR",
        "timing": "mornings",
        "expires_at": NOW,
        "optout_url": "http://x/u/t",
        "chosen": "yes",
    },
    "optout": {"action": "/u/t"},
    "privacy": {
        "controller": "Example Introductions Ltd",
        "contact": "privacy@intro.example.org",
        "keep_mail_days": 30,
        "keep_people_days": 730,
    },
    "optout_done": {},
    "optout_gone": {},
    "digest_off": {"action": "/d/t"},
    "digest_off_done": {},
    "survey": {
        "action": "/s/t",
        "referrer": "Ada",
        "other": "Bob Smith",
        "expires_at": NOW,
        "optout_url": "http://x/u/t",
        "chosen": {"rating": "4", "business": "not_yet", "more": ""},
        "currencies": ("EUR", "USD"),
    },
    "report": {
        "referrer": "ada@referrer.example",
        "figures": FIGURES,
        "funnel_svg": funnel_svg,
        "share_bars_svg": share_bars_svg,
    },
}
# Pages whose wording depends on a choice: every branch is a page of its own.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "consent_answered": [
        {
            "action": "/c/t",
            "referrer": "Ada",
            "answer": answer,
            "outcome": outcome,
            "state": state,
            "can_change": can_change,
            "expires_at": NOW,
            "optout_url": "http://x/u/t",
        }
        for answer, state, can_change, outcome in [
            ("yes", "asking", True, "recorded"),
            ("yes", "asking", True, "already"),
            ("yes", "introduced", False, "recorded"),
            ("yes", "introduced", False, "already"),
            ("yes", "evaluating", False, "already"),
            ("yes", "evaluated", False, "already"),
            ("yes", "declined", False, "already"),
            ("yes", "expired", False, "already"),
            ("no", "declined", False, "recorded"),
            ("no", "declined", False, "already"),
            ("no", "declined", False, "no_stands"),
        ]
    ],
    "problem": [
        {"problem": p}
        for p in (
            "expired",
            "closed",
            "survey_closed",
            "bad_survey",
            "bad_form",
            "internal",
            "not_found",
        )
    ]
    + [{"problem": "erased", "introduced": introduced} for introduced in (False, True)],
    "survey_done": [
        {"outcome": outcome, "referrer": "Ada", "business": business, "asked_again": again}
        for outcome in ("recorded", "already")
        for business, again in (("yes", False), ("not_yet", True))
    ],
}


def page_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, context in PAGES.items():
        yield name, context
    for name, contexts in VARIANTS.items():
        for context in contexts:
            yield name, context


def mail_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    yield from sorted(CONTEXTS.items())
    yield "survey", {**CONTEXTS["survey"], "round": 2}  # asking again after a "not yet"
    # One reader's own part of an introduction to two people of different languages.
    yield "introduction", {**CONTEXTS["introduction"], "readers": ["prospect"]}


def lang_param(lang: str) -> str:
    return f"lang_{lang}"


# ------------------------------------------------------------------ completeness


@pytest.mark.parametrize("lang", OTHERS, ids=lang_param)
def test_every_template_exists_in_every_language(lang):
    missing = [f for f in FILES if not (TEMPLATES.root / lang / f).is_file()]
    assert missing == [], f"{lang} lacks {missing}"
    empty = [f for f in FILES if not (TEMPLATES.root / lang / f).read_text().strip()]
    assert empty == [], f"{lang} has empty {empty}"


def test_the_wordless_layouts_have_no_words():
    for name in WORDLESS:
        html = (ENGLISH / name).read_text()
        words = re.findall(r"[A-Za-z]{3,}", _visible(re.sub(r"\{[{%#].*?[}%#]\}", "", html)))
        assert words == [], f"{name} has words to translate: {words}"


def test_no_language_has_a_template_english_does_not():
    for lang in OTHERS:
        folder = TEMPLATES.root / lang
        extra = (
            sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            if folder.is_dir()
            else []
        )
        assert set(extra) <= set(FILES), f"{lang}: {sorted(set(extra) - set(FILES))}"


MAIL_CASES = [
    pytest.param(lang, name, context, id=f"{lang_param(lang)}-{name}-{i}")
    for lang in LANGUAGES
    for i, (name, context) in enumerate(mail_cases())
]
PAGE_CASES = [
    pytest.param(lang, name, context, id=f"{lang_param(lang)}-{name}-{i}")
    for lang in LANGUAGES
    for i, (name, context) in enumerate(page_cases())
]

TRANSLATED_MAILS = [c for c in MAIL_CASES if c.values[0] != "en"]
TRANSLATED_PAGES = [c for c in PAGE_CASES if c.values[0] != "en"]
ARABIC_MAILS = [c for c in MAIL_CASES if c.values[0] == "ar"]


def render_mail(name: str, lang: str, context: Mapping[str, Any]):
    return TEMPLATES.render_mail(name, lang, {**context, **SHARED})


def render_page(name: str, lang: str, context: Mapping[str, Any]) -> str:
    return TEMPLATES.render_page(name, lang, {**context, **SHARED})


LEFTOVERS = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}|\bNone\b|\bUndefined\b|\[\[|\]\]|__")


@pytest.mark.parametrize(("lang", "name", "context"), MAIL_CASES)
def test_each_mail_renders_whole_and_says_its_language(lang, name, context):
    rendered = render_mail(name, lang, context)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert part.strip()
        assert not LEFTOVERS.search(_without_urls(part)), LEFTOVERS.search(_without_urls(part))
    raw = build_message(
        sender=Mailbox("Introductions", "refer@intro.example.org"),
        to=[Mailbox("Jane", "jane@acme.example")],
        rendered=rendered,
        message_id="<x@intro.example.org>",
        date=NOW,
        languages=[lang],
    )
    assert f"\nContent-Language: {lang}\n".encode() in raw


@pytest.mark.parametrize(("lang", "name", "context"), PAGE_CASES)
def test_each_page_renders_whole_in_its_language(lang, name, context):
    html = render_page(name, lang, context)
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in html
    assert not LEFTOVERS.search(_without_urls(_visible(html)))


# ------------------------------------------------------------------ no English left behind


@pytest.mark.parametrize(("lang", "name", "context"), TRANSLATED_MAILS)
def test_no_english_sentence_leaks_into_a_mail(lang, name, context):
    english = render_mail(name, "en", context)
    translated = render_mail(name, lang, context)
    given = _given_words(context)
    for en_part, other_part in (
        (english.subject, translated.subject),
        (english.text, translated.text),
        (_visible(english.html), _visible(translated.html)),
    ):
        leaks = [s for s in _phrases(en_part, given) if s in _normal(other_part)]
        assert leaks == [], f"English left in {lang} {name}: {leaks}"


@pytest.mark.parametrize(("lang", "name", "context"), TRANSLATED_PAGES)
def test_no_english_sentence_leaks_into_a_page(lang, name, context):
    english = _visible(render_page(name, "en", context))
    translated = _normal(_visible(render_page(name, lang, context)))
    leaks = [s for s in _phrases(english, _given_words(context)) if s in translated]
    assert leaks == [], f"English left in {lang} page {name}: {leaks}"


# ------------------------------------------------------------------ the text report


def render_report_text(lang: str, referrer: str | None) -> str:
    found = replace(FIGURES, referrer=referrer, since=NOW if referrer else None)
    return report.as_text(found, TEMPLATES, lang, "Europe/Berlin")


@pytest.mark.parametrize("referrer", [None, "ada@referrer.example"], ids=["all", "one"])
@pytest.mark.parametrize("lang", LANGUAGES, ids=lang_param)
def test_the_text_report_renders_whole(lang, referrer):
    written = render_report_text(lang, referrer)
    assert written.strip() and not LEFTOVERS.search(_without_urls(written))


@pytest.mark.parametrize("referrer", [None, "ada@referrer.example"], ids=["all", "one"])
@pytest.mark.parametrize("lang", OTHERS, ids=lang_param)
def test_no_english_sentence_leaks_into_the_text_report(lang, referrer):
    english = render_report_text("en", referrer)
    translated = _normal(render_report_text(lang, referrer))
    given = {w.lower() for p in FIGURES.people for w in re.findall(r"\w+", p.name + p.email)}
    leaks = [s for s in _phrases(english, given) if s in translated]
    assert leaks == [], f"English left in {lang} text report: {leaks}"
    if referrer is None:
        assert "all referrers" not in translated


# ------------------------------------------------------------------ right to left


@pytest.mark.parametrize(("lang", "name", "context"), ARABIC_MAILS)
def test_arabic_mail_html_reads_right_to_left(lang, name, context):
    html = render_mail(name, lang, context).html
    assert '<html lang="ar" dir="rtl">' in html
    # Mail clients ignore logical CSS, so every side the English sets is mirrored here.
    sides = re.compile(r"(border|padding|margin|text-align)[-:]\s*(left|right)")
    flip = {"left": "right", "right": "left"}
    english = sides.findall(render_mail(name, "en", context).html)
    assert sides.findall(html) == [(what, flip[side]) for what, side in english]


def test_the_english_mail_html_reads_left_to_right():
    html = render_mail("consent_request", "en", CONTEXTS["consent_request"]).html
    assert '<html lang="en" dir="ltr">' in html and "border-left:4px" in html


# ------------------------------------------------------------------ helpers


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "svg"):
            self._skip += 1
        for key, value in attrs:
            if key in ("title", "alt", "aria-label", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def _without_urls(text: str) -> str:
    return re.sub(r"https?://\S+|\S+@\S+", " ", text)


def _normal(text: str) -> str:
    return " ".join(_without_urls(text).lower().split())


def _given_words(context: Mapping[str, Any]) -> set[str]:
    """Words that come from the test data (names, needs), not from the template."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.update(w.lower() for w in re.findall(r"\w+", value))
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(context)
    walk(SHARED)
    return found


def _phrases(text: str, given: set[str]) -> list[str]:
    """Runs of four or more words of the template's own English (not of the data)."""
    phrases: list[str] = []
    for piece in re.split(r"[\n.!?:;()\"“”]+", _without_urls(text)):
        words = re.findall(r"[A-Za-z']+", piece)
        own = [w for w in words if w.lower() not in given]
        run_: list[str] = []
        for word in [*words, ""]:
            if word and word in own and len(word) > 1:
                run_.append(word.lower())
                continue
            if len(run_) >= 4:
                phrases.append(" ".join(run_))
            run_ = []
    return phrases


@pytest.mark.parametrize(
    ("lang", "word"),
    [
        ("de", "Telefon"),
        ("fr", "téléphone"),
        ("ro", "telefon"),
        ("id", "telepon"),
        ("ar", "الهاتف"),
    ],
    ids=lang_param,
)
def test_how_someone_prefers_to_be_reached_is_named_in_the_readers_language(lang, word):
    phone = {**CONTEXTS["introduction"]["provider"], "prefers": "phone"}
    context = {**CONTEXTS["introduction"], "provider": phone}
    text = render_mail("introduction", lang, context).text
    assert re.search(rf":\s*{word}\s*$", text, re.M), text


@pytest.mark.parametrize(
    ("lang", "share"), [("de", "50\u00a0%"), ("fr", "50\u00a0%"), ("en", "50%")], ids=lang_param
)
def test_the_report_chart_writes_its_figures_in_the_pages_language(lang, share):
    context = report.page_context(FIGURES, "ada@referrer.example", lang)
    html = render_page("report", lang, context)
    desc = re.search(r"<desc [^>]*>([^<]*)</desc>", html)[1]
    assert share in desc
