"""Building one mail, from a referral to its final bytes, against rendering its templates
alone; and the same mail put together with the compat32 classes, to show the headroom."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any

from harness import Row, interleaved
from render_languages import NOW, REFERRAL

from service.clock import FixedClock
from service.model import Role
from service.settings import Settings
from service.writing import letters
from service.writing.compose import Rendered
from service.writing.context import Context, make_context
from store.records import ReferralRecord

TARGET_SECONDS = 0.0005
OPTOUT_URL = "http://127.0.0.1:8080/u/an-opt-out-token"


def _context() -> Context:
    settings = (
        Settings()
        .replace("service", domain="intro.example.org", timezone="Europe/Berlin")
        .replace("security", secret_keys=("bench-key",))
    )
    return make_context(settings, FixedClock(NOW))


def _in(language: str) -> ReferralRecord:
    """The bench referral with both parties reading `language`."""
    parties = tuple(replace(p, language=language) for p in REFERRAL.parties)
    return replace(REFERRAL, parties=parties)


def _shared(ctx: Context) -> dict[str, Any]:
    return {
        "sender_name": ctx.settings.service.sender_name,
        "optout_url": OPTOUT_URL,
        "timezone": ctx.settings.service.timezone,
    }


def question_context(ctx: Context, referral: ReferralRecord) -> dict[str, Any]:
    """What letters.consent_request gives its templates, key by key."""
    party = referral.party(Role.PROVIDER)
    url = letters.consent_url(ctx, party.ask_key)
    return {
        **letters.consent_context(referral, party),
        "url": url,
        "yes_url": url + "?answer=yes",
        "no_url": url + "?answer=no",
        **letters.privacy_notice(ctx),
        **_shared(ctx),
    }


def introduction_context(ctx: Context, referral: ReferralRecord) -> dict[str, Any]:
    """What letters.introduction gives its template when both read one language."""
    return {
        "referrer": referral.referrer_display,
        "need": referral.need,
        "budget": referral.budget,
        "provider": letters.card(referral.party(Role.PROVIDER)),
        "prospect": letters.card(referral.party(Role.PROSPECT)),
        "readers": [Role.PROVIDER, Role.PROSPECT],
        "optouts": [
            {"name": referral.party(role).display, "url": OPTOUT_URL}
            for role in (Role.PROVIDER, Role.PROSPECT)
        ],
        **_shared(ctx),
    }


def compat32_bytes(rendered: Rendered, language: str) -> bytes:
    """The same two-part mail with the compat32 classes: what building it could cost."""
    message = MIMEMultipart("alternative")
    message["From"] = "Introductions <refer@intro.example.org>"
    message["To"] = "Jane Roe <jane@acme.example>"
    message["Reply-To"] = "Introductions <refer+0000000000000001@intro.example.org>"
    message["Subject"] = Header(rendered.subject, "utf-8")
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = "<bench.1@intro.example.org>"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = language
    message.attach(MIMEText(rendered.text, "plain", "utf-8"))
    message.attach(MIMEText(rendered.html, "html", "utf-8"))
    return message.as_bytes()


def per_call(job: Callable[[], object], calls: int, each: int = 1) -> float:
    """Seconds per mail: `calls` calls of `job`, which writes `each` mails."""
    job()  # warm the caches
    started = time.perf_counter()
    for _ in range(calls):
        job()
    return (time.perf_counter() - started) / (calls * each)


def _rows(
    ctx: Context,
    label: str,
    template: str,
    language: str,
    build: Callable[[], object],
    each: int,
    context: dict[str, Any],
    calls: int,
    rounds: int,
) -> list[Row]:
    def render() -> object:
        return ctx.templates.render_mail(template, language, context)

    def compat() -> object:
        return compat32_bytes(ctx.templates.render_mail(template, language, context), language)

    base, subject = interleaved(
        lambda: per_call(render, calls), lambda: per_call(build, calls, each), rounds
    )
    rows = [
        Row(
            f"building one mail: {label} ({language}), template to bytes; its Jinja render "
            "alone as baseline",
            f"{base * 1000:.3f} ms",
            f"{subject * 1000:.3f} ms",
            f"{subject / base:.1f}× the render",
            "≤ 0.5 ms",
            subject <= TARGET_SECONDS,
        )
    ]
    if template == "consent_request" and language in ("en", "de"):
        base, headroom = interleaved(
            lambda: per_call(render, calls), lambda: per_call(compat, calls), rounds
        )
        rows.append(
            Row(
                f"the same {label} ({language}) rendered and built with the compat32 classes "
                "(headroom, not a target)",
                f"{base * 1000:.3f} ms",
                f"{headroom * 1000:.3f} ms",
                f"{headroom / base:.1f}× the render",
                "–",
                None,
            )
        )
    return rows


def mail_build(calls: int, rounds: int) -> list[Row]:
    ctx = _context()
    rows = []
    for language in ("en", "de", "ar"):
        referral = _in(language)
        provider = referral.party(Role.PROVIDER)
        rows += _rows(
            ctx,
            "consent question",
            "consent_request",
            language,
            lambda r=referral, p=provider: letters.consent_request(ctx, r, p, NOW),
            1,
            question_context(ctx, referral),
            calls,
            rounds,
        )
    referral = _in("en")
    rows += _rows(
        ctx,
        "introduction",
        "introduction",
        "en",
        lambda: letters.introduction(ctx, referral, NOW),
        1,  # one mail To both (an envelope each, the same bytes)
        introduction_context(ctx, referral),
        calls,
        rounds,
    )
    return rows
