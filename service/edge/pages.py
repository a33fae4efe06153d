"""The pages behind links: GET (and HEAD) only show, POST decides."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from multidict import MultiDictProxy

from service.clock import Clock
from service.edge.access import log_requests, route_of
from service.errors import AddressGone, BadToken, NotFound, TokenExpired
from service.evaluation import report, surveys
from service.model import Answer, Channel, DeclineReason, State, SurveyState
from service.reading.bodies import html_to_text
from service.reading.survey_form import CHOICES, survey_form
from service.referral import erasure, expiry, workflow
from service.referral.consent_evidence import Shown
from service.referral.workflow import Outcome
from service.tokens import Purpose
from service.writing import formats
from service.writing.context import Context
from service.writing.letters import consent_context
from store import queries
from store.db import RunDb
from store.records import PartyRecord, ReferralRecord, ReferrerRecord, SurveyRecord

log = logging.getLogger(__name__)

ANSWERS = frozenset(a.value for a in Answer)
# What the survey page offers; a reply by mail may name any ISO 4217 code.
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "RON", "IDR", "SAR", "AED", "EGP", "MAD")
REASONS = frozenset(r.value for r in DeclineReason)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Tokens are in the path: nothing on these pages may send it elsewhere (Referer), keep it
# (caches), or run code. The pages need no script at all.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def make_app(
    ctx: Context, clock: Clock, run_db: RunDb, on_change: Callable[[], None]
) -> web.Application:
    pages = Pages(ctx, clock, run_db, on_change)
    # The request's line last, so it names the status the guard's page was sent with.
    app = web.Application(middlewares=[log_requests, pages.guard], client_max_size=64 * 1024)
    app.router.add_get("/c/{token}", pages.show_consent)  # HEAD too, and just as harmless
    app.router.add_post("/c/{token}", pages.answer_consent)
    app.router.add_get("/u/{token}", pages.show_optout)
    app.router.add_post("/u/{token}", pages.optout)
    app.router.add_get("/s/{token}", pages.show_survey)
    app.router.add_post("/s/{token}", pages.answer_survey)
    app.router.add_get("/r/{token}", pages.show_report)
    app.router.add_get("/d/{token}", pages.show_digest_off)
    app.router.add_post("/d/{token}", pages.digest_off)
    app.router.add_get("/", pages.home)
    app.router.add_get("/privacy", pages.privacy)
    return app


async def _form(request: web.Request) -> MultiDictProxy[str | bytes | web.FileField]:
    """The posted form. A body no browser writes (a multipart without its boundary, a
    part without a name) is the sender's mistake, a 400, not a failure of ours to log."""
    try:
        return await request.post()
    except (ValueError, BadHttpMessage) as exc:
        raise web.HTTPBadRequest() from exc


class Pages:
    def __init__(
        self, ctx: Context, clock: Clock, run_db: RunDb, on_change: Callable[[], None]
    ) -> None:
        self.ctx = ctx
        self.clock = clock
        self.run_db = run_db
        self.on_change = on_change

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Security headers on everything; our own page, not a traceback, on any failure."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                response = self.page("problem", {"problem": "not_found"}, status=exc.status)
            elif exc.status in (400, 413):  # a form no page of ours sends
                response = self.page("problem", {"problem": "bad_form"}, status=exc.status)
            else:
                raise
        except Exception:
            log.exception("page %s %s failed", request.method, route_of(request))
            response = self.page("problem", {"problem": "internal"}, status=500)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def home(self, request: web.Request) -> web.StreamResponse:
        return self.page(
            "home",
            {"referral_address": self.ctx.settings.referral_mailbox},
            language=self._browser_language(request),
        )

    async def privacy(self, request: web.Request) -> web.StreamResponse:
        """Who is responsible, what is kept, for how long, and how to say no (GDPR Art. 14):
        nobody's in particular, so in the browser's language."""
        privacy = self.ctx.settings.privacy
        context = {
            "controller": privacy.controller,
            "contact": privacy.contact,
            "keep_mail_days": privacy.keep_mail_days,
            "keep_people_days": privacy.keep_people_days,
        }
        return self.page("privacy", context, language=self._browser_language(request))

    async def show_consent(self, request: web.Request) -> web.StreamResponse:
        found = await self._question(request)
        if isinstance(found, web.Response):
            return found
        referral, party = found
        if expiry.overdue(referral, self.clock.now()):
            # Past the deadline the page shows what the tick will make of it (an answer now
            # would expire it), not a question that no longer counts. GET changes nothing.
            referral = replace(referral, state=State.EXPIRED)
        context = {
            **consent_context(referral, party),
            "action": request.path,
            "optout_url": self._optout_link(party.ask_key),
        }
        if party.answer is not None:
            already = {
                "answer": party.answer,
                "outcome": "already",
                "state": referral.state,
                "can_change": self._can_change(referral, party),
            }
            return self.for_party("consent_answered", {**context, **already}, party)
        if referral.state != State.ASKING:
            return self.for_party("problem", {"problem": "closed"}, party, 410)
        chosen = request.query.get("answer", "")
        chosen = chosen if chosen in ANSWERS else ""
        return self.for_party("consent", {**context, "chosen": chosen}, party)

    async def answer_consent(self, request: web.Request) -> web.StreamResponse:
        found = await self._question(request)
        if isinstance(found, web.Response):
            return found
        referral, party = found
        form = await _form(request)
        given = str(form.get("answer", ""))
        reason = str(form.get("reason", ""))
        if given not in ANSWERS or (reason and reason not in REASONS):
            return self.for_party("problem", {"problem": "bad_form"}, party, 400)
        # The page they answered on, as they read it: what they consented to.
        shown = {
            **consent_context(referral, party),
            "action": request.path,
            "optout_url": self._optout_link(party.ask_key),
            "chosen": given,
        }
        page_text = html_to_text(self._html("consent", shown, party.language, party.timezone))
        try:
            result = await self.run_db(
                workflow.answer,
                self.ctx,
                party.ask_key,
                Answer(given),
                Channel.LINK,
                self.clock.now(),
                DeclineReason(reason) if reason else None,
                str(form.get("reason_text", ""))[:500],
                Shown(page_text=page_text),
            )
        except NotFound:
            return self.page("problem", {"problem": "not_found"}, status=404)
        if result.outcome is Outcome.CLOSED:
            return self.for_party("problem", {"problem": "closed"}, party, 410)
        if result.outcome is Outcome.RECORDED:
            self.on_change()
        after = await self.run_db(workflow.find_question, party.ask_key)
        referral, party = after if after is not None else (referral, party)
        outcome = {Outcome.RECORDED: "recorded", Outcome.NO_STANDS: "no_stands"}
        context = {
            **consent_context(referral, party),
            "action": request.path,
            "optout_url": self._optout_link(party.ask_key),
            "answer": result.answer,
            "outcome": outcome.get(result.outcome, "already"),
            "state": result.state,
            "can_change": self._can_change(referral, party),
        }
        return self.for_party("consent_answered", context, party)

    def _optout_link(self, ask_key: str) -> str:
        return self.ctx.link("/u/" + self.ctx.tokens.make(Purpose.OPTOUT, f"q:{ask_key}"))

    def _can_change(self, referral: ReferralRecord, party: PartyRecord) -> bool:
        """Whether the other answer would still count: a yes, until the introduction is sent
        (a no is final, so a page after a no offers no yes)."""
        if party.answer is None:
            return False
        other = Answer.NO if party.answer == Answer.YES else Answer.YES
        answers = {p.role: p.answer for p in referral.parties}
        decision = workflow.decide_answer(State(referral.state), answers, party.role, other)
        return decision.outcome is Outcome.RECORDED

    async def show_optout(self, request: web.Request) -> web.StreamResponse:
        """Only asks: a scanner opening the link must not silence anyone."""
        subject = self._optout_subject(request)
        if isinstance(subject, web.Response):
            return subject
        language = await self.run_db(workflow.language_of_optout, subject)
        return self.page("optout", {"action": request.path}, language=language)

    async def optout(self, request: web.Request) -> web.StreamResponse:
        """The confirmation from our page, or a mail client's one-click POST (RFC 8058)."""
        subject = self._optout_subject(request)
        if isinstance(subject, web.Response):
            return subject
        # A mail client's one-click POST carries no choice: it only stops mail.
        erase = (await _form(request)).get("erase") == "yes"
        done = "optout_done"
        try:
            await self.run_db(erasure.stop, self.ctx, subject, erase, self.clock.now())
        except AddressGone:
            # Erased before a hash of it was kept: say what is true instead of "Done".
            done = "optout_gone"
        except NotFound:
            return self.page("problem", {"problem": "not_found"}, status=404)
        self.on_change()
        language = await self.run_db(workflow.language_of_optout, subject)
        return self.page(done, {}, language=language)

    def _optout_subject(self, request: web.Request) -> str | web.Response:
        return self._token(request, Purpose.OPTOUT)

    def _token(
        self, request: web.Request, purpose: Purpose, expired: str = "expired"
    ) -> str | web.Response:
        """The key a link's token names, or the page that says why the link does not work."""
        try:
            return self.ctx.tokens.read(purpose, request.match_info["token"])
        except TokenExpired:
            return self.page("problem", {"problem": expired}, status=410)
        except BadToken:
            return self.page("problem", {"problem": "not_found"}, status=404)

    async def _question(self, request: web.Request) -> Any:
        key = self._token(request, Purpose.CONSENT)
        if isinstance(key, web.Response):
            return key
        found = await self.run_db(workflow.find_question, key)
        if found is None:
            return self.page("problem", {"problem": "not_found"}, status=404)
        referral, party = found
        if party.erased:
            # Their open question was closed as a no by the erasure, not by them: the page
            # says what happened instead, and offers nothing to press (GET and POST alike).
            introduced = referral.introduced_at is not None
            return self.for_party(
                "problem", {"problem": "erased", "introduced": introduced}, party, 410
            )
        return found

    # ------------------------------------------------------------ surveys

    async def show_survey(self, request: web.Request) -> web.StreamResponse:
        found = await self._survey(request)
        if isinstance(found, web.Response):
            return found
        referral, survey, party = found
        if survey.state == SurveyState.ANSWERED:
            done = {**self._survey_done(referral, survey), "outcome": "already"}
            return self.for_party("survey_done", done, party)
        if survey.state != SurveyState.SENT:
            return self.for_party("problem", {"problem": "survey_closed"}, party, 410)
        chosen = {
            name: request.query.get(name, "")
            for name in ("rating", "business", "more")
            if request.query.get(name, "") in CHOICES[name]
        }
        context = {
            **self._survey_context(referral, survey, party),
            "action": request.path,
            "chosen": {"rating": "", "business": "", "more": "", **chosen},
            "currencies": CURRENCIES,
        }
        return self.for_party("survey", context, party)

    async def answer_survey(self, request: web.Request) -> web.StreamResponse:
        found = await self._survey(request)
        if isinstance(found, web.Response):
            return found
        referral, survey, party = found
        answers = survey_form(await _form(request))
        if answers is None:
            return self.for_party("problem", {"problem": "bad_survey"}, party, 400)
        try:
            result = await self.run_db(
                surveys.record,
                self.ctx,
                survey.survey_key,
                answers,
                Channel.LINK,
                self.clock.now(),
            )
        except NotFound:
            return self.page("problem", {"problem": "not_found"}, status=404)
        if result.outcome is surveys.SurveyOutcome.CLOSED:
            return self.for_party("problem", {"problem": "survey_closed"}, party, 410)
        self.on_change()
        context = self._survey_done(referral, result.survey)
        if result.outcome is surveys.SurveyOutcome.ALREADY_ANSWERED:
            context["outcome"] = "already"
        return self.for_party("survey_done", context, party)

    def _survey_context(
        self, referral: ReferralRecord, survey: SurveyRecord, party: PartyRecord
    ) -> dict[str, Any]:
        return {
            "referrer": referral.referrer_display,
            "other": referral.other(party.role).display,
            "expires_at": survey.expires_at,
            "optout_url": self._optout_link(party.ask_key),
        }

    def _survey_done(self, referral: ReferralRecord, survey: SurveyRecord) -> dict[str, Any]:
        times = self.ctx.settings.timing.follow_up_again_times
        return {
            "outcome": "recorded",
            "referrer": referral.referrer_display,
            "business": survey.business or "",
            "asked_again": surveys.asks_again(survey.business, survey.round, times),
        }

    async def _survey(self, request: web.Request) -> Any:
        key = self._token(request, Purpose.SURVEY, expired="survey_closed")
        if isinstance(key, web.Response):
            return key
        found = await self.run_db(surveys.find_survey, key)
        if found is None:
            return self.page("problem", {"problem": "not_found"}, status=404)
        referral, survey = found
        party = referral.party_by_id(survey.party_id)
        return referral, survey, party

    # ------------------------------------------------------------ the referrer's pages

    async def show_report(self, request: web.Request) -> web.StreamResponse:
        found = await self._referrer(request, Purpose.REPORT)
        if isinstance(found, web.Response):
            return found
        referrer, language = found
        figures = await self.run_db(report.figures_for, referrer.email, None, self.clock.now())
        context = report.page_context(figures, referrer.email, language)
        return self.page("report", context, language=language)

    async def show_digest_off(self, request: web.Request) -> web.StreamResponse:
        """Only asks: a scanner opening the link must not turn anything off."""
        found = await self._referrer(request, Purpose.DIGEST)
        if isinstance(found, web.Response):
            return found
        return self.page("digest_off", {"action": request.path}, language=found[1])

    async def digest_off(self, request: web.Request) -> web.StreamResponse:
        """Our page's button, or a mail client's one-click POST (RFC 8058)."""
        found = await self._referrer(request, Purpose.DIGEST)
        if isinstance(found, web.Response):
            return found
        referrer, language = found
        await self.run_db(queries.set_digest, referrer.id, False)
        return self.page("digest_off_done", {}, language=language)

    async def _referrer(self, request: web.Request, purpose: Purpose) -> Any:
        """The referrer a report or digest link names, and the language they write in."""
        key = self._token(request, purpose)
        if isinstance(key, web.Response):
            return key
        found = await self.run_db(_referrer_and_language, key)
        if found is None:
            return self.page("problem", {"problem": "not_found"}, status=404)
        referrer, language = found
        return referrer, language or self.ctx.settings.service.default_language

    def _browser_language(self, request: web.Request) -> str:
        """For a page that is nobody's in particular: the browser's choice among ours."""
        return formats.negotiate(request.headers.get("Accept-Language", "")) or ""

    def for_party(
        self, name: str, context: dict[str, Any], party: PartyRecord, status: int = 200
    ) -> web.Response:
        """A page for one party: in their language, with dates in their time zone."""
        return self.page(name, context, status, party.language, party.timezone)

    def page(
        self,
        name: str,
        context: dict[str, Any],
        status: int = 200,
        language: str = "",
        timezone: str = "",
    ) -> web.Response:
        html = self._html(name, context, language, timezone)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def _html(self, name: str, context: dict[str, Any], language: str, timezone: str) -> str:
        service = self.ctx.settings.service
        shared = {
            "sender_name": service.sender_name,
            "timezone": timezone or service.timezone,
        }
        return self.ctx.templates.render_page(
            name, language or service.default_language, {**context, **shared}
        )


def _referrer_and_language(key: str) -> tuple[ReferrerRecord, str] | None:
    referrer = queries.referrer_by_key(key)
    if referrer is None:
        return None
    return referrer, queries.language_of_referrer(referrer.email)
