"""Each mail the service writes: who gets it, and exactly what its template may show.

The context of every template is spelled out here, key by key. That is the privacy
boundary: a consent request's context holds nothing about the other party, so no
template change can leak it by accident (StrictUndefined fails the render instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from service import ids
from service.model import INTRODUCTION, Answer, Finding, Role, Suggestion
from service.reading.addresses import Mailbox
from service.reading.request import RequestDraft
from service.reading.routing import bounce_address, reply_address
from service.tokens import Purpose
from service.writing.compose import Rendered, build_message
from service.writing.context import Context
from service.writing.redaction import Person, redactor
from store.records import (
    OutgoingMail,
    PartyRecord,
    ReferralRecord,
)


def receipt(
    ctx: Context, referral: ReferralRecord, suggestions: Sequence[Suggestion], now: datetime
) -> OutgoingMail:
    """The referral's reference, and what would make it better (the CARE gate's suggestions)."""
    return to_referrer(
        ctx,
        "receipt",
        referral,
        now,
        expires_at=referral.expires_at,
        suggestions=[s.value for s in suggestions],
    )


def consent_request(
    ctx: Context,
    referral: ReferralRecord,
    party: PartyRecord,
    now: datetime,
    template: str = "consent_request",
) -> OutgoingMail:
    """The question to one party (or, with another template, a reminder of it).

    Its Reply-To is the question's own address, so a plain reply answers it.
    """
    url = consent_url(ctx, party.ask_key)
    reply_to = (
        [Mailbox(ctx.settings.service.sender_name, reply_address(ctx.settings, party.reply_key))]
        if party.reply_key
        else []
    )
    return post(
        ctx,
        template,
        [mailbox_of(party)],
        party.language,
        {
            **consent_context(referral, party),
            "url": url,
            "yes_url": url + "?answer=yes",
            "no_url": url + "?answer=no",
            **privacy_notice(ctx),
        },
        now,
        referral.id,
        reply_to=reply_to,
        party_id=party.id,
        timezone=party.timezone,
    )


def consent_context(referral: ReferralRecord, party: PartyRecord) -> dict[str, Any]:
    """What one party may know before both agreed: the referrer and the need, never the other.

    Everything the referrer wrote passes through redaction, because it may name the other.
    """
    hide = before_consent(referral, party)
    is_provider = party.role == Role.PROVIDER
    return {
        "name": party.name,
        "role": party.role,
        "referrer": referral.referrer_display,
        "referrer_email": referral.referrer_email,
        "need": hide(referral.need),
        # The provider judges relevance before agreeing, so sees budget and timing too.
        "budget": hide(referral.budget) if is_provider else "",
        "timing": hide(referral.party(Role.PROSPECT).best_time) if is_provider else "",
        "expires_at": referral.expires_at,
    }


def before_consent(referral: ReferralRecord, party: PartyRecord) -> Callable[[str], str]:
    """What the referrer wrote (need, budget, timing) as `party` reads it before both agreed:
    the other party taken out. Every mail, page and export that shows it uses this, so that
    none of them shows more than the consent question did."""
    return redactor(_person(referral.other(party.role)))


def privacy_notice(ctx: Context) -> dict[str, Any]:
    """What the first mail to a person must tell them (GDPR Art. 14): how long we keep what,
    and where the rest is said."""
    privacy = ctx.settings.privacy
    return {
        "keep_mail_days": privacy.keep_mail_days,
        "keep_people_days": privacy.keep_people_days,
        "privacy_url": ctx.link("/privacy"),
    }


def consent_url(ctx: Context, ask_key: str) -> str:
    return ctx.link("/c/" + ctx.tokens.make(Purpose.CONSENT, ask_key))


def notice(
    ctx: Context, kind: str, referral: ReferralRecord, actor_role: str, now: datetime
) -> list[OutgoingMail]:
    """The mails a transition sends; `actor_role` is the party whose answer caused it."""
    if kind == "introduction":
        return introduction(ctx, referral, now)
    if kind == "referrer_introduced":
        return [to_referrer(ctx, "referrer_introduced", referral, now)]
    if kind == "declined_to_other":
        return [declined_to_other(ctx, referral, referral.other(actor_role), now)]
    if kind == "referrer_declined":
        decliner = referral.party(actor_role)
        return [
            to_referrer(
                ctx,
                "referrer_declined",
                referral,
                now,
                declined_by=card(decliner),
                reason=decliner.decline_reason or "",
                reason_text=decliner.decline_text,
            )
        ]
    raise ValueError(f"no letter for notice {kind!r}")


def referrer_undeliverable(
    ctx: Context, referral: ReferralRecord, failed: PartyRecord, status: str, now: datetime
) -> OutgoingMail:
    """The referrer learns which address failed; the bounce's own text stays with us."""
    return to_referrer(
        ctx, "referrer_undeliverable", referral, now, failed=card(failed), status=status
    )


def referrer_not_introduced(
    ctx: Context, referral: ReferralRecord, failed: PartyRecord, status: str, now: datetime
) -> OutgoingMail:
    """Both said yes, but the introduction did not reach one of them: the referrer, who knows
    them, learns whom, and may tell them another way."""
    return to_referrer(
        ctx, "referrer_not_introduced", referral, now, failed=card(failed), status=status
    )


def no_stands(
    ctx: Context, referral: ReferralRecord, party: PartyRecord, now: datetime
) -> OutgoingMail:
    """A yes by reply after the party's own no: why it changes nothing, and whom to ask for a
    new request. Like every mail before both agreed, nothing about the other party. It names
    the party, so `wrote_to_party` finds it and it goes once."""
    return _to_one_party(ctx, "no_stands", referral, party, now, party_id=party.id)


def reply_unclear(
    ctx: Context, referral: ReferralRecord, party: PartyRecord, now: datetime
) -> OutgoingMail:
    """Both ways to answer, once, after a reply we could not read as a yes or a no."""
    return consent_request(ctx, referral, party, now, template="reply_unclear")


def introduction(ctx: Context, referral: ReferralRecord, now: datetime) -> list[OutgoingMail]:
    """One mail To both, Reply-To both, so replies and reply-all reach the other person and
    never the service, and the thread holds for both.

    Written once in their language, or, when theirs differ, as a part for each in their own
    (the provider's first). It goes as one envelope per recipient, each with its own VERP
    address, so a bounce or a relay's refusal names whom it missed. The referrer is in Cc
    only when the request asked for it ("Copy me: yes").
    """
    provider, prospect = referral.party(Role.PROVIDER), referral.party(Role.PROSPECT)
    both = [mailbox_of(provider), mailbox_of(prospect)]
    copy = _referrer(referral) if referral.copy_me else []
    message_id = ids.message_id(ctx.settings.service.domain)
    envelopes = [(provider.email, provider.id), (prospect.email, prospect.id)]
    envelopes += [(m.address, None) for m in copy]
    keys = [ids.address_key() for _ in envelopes]
    context = {
        "referrer": referral.referrer_display,
        "need": referral.need,
        "budget": referral.budget,
        "provider": card(provider),
        "prospect": card(prospect),
        "sender_name": ctx.settings.service.sender_name,
        # A link each: the same bytes reach both, so one link would let either stop the other.
        "optouts": [
            {"name": party.display, "url": _optout_url(ctx, key)}
            for party, key in zip((provider, prospect), keys[:2], strict=True)
        ],
    }
    languages = list(dict.fromkeys([provider.language, prospect.language]))
    if len(languages) == 1:
        zone = provider.timezone if provider.timezone == prospect.timezone else ""
        sections = [
            (
                languages[0],
                {
                    **context,
                    "readers": [Role.PROVIDER, Role.PROSPECT],
                    "timezone": zone or ctx.settings.service.timezone,
                },
            )
        ]
    else:
        sections = [
            (
                party.language,
                {
                    **context,
                    "readers": [party.role],
                    "timezone": party.timezone or ctx.settings.service.timezone,
                },
            )
            for party in (provider, prospect)
        ]
    rendered = ctx.templates.render_mail_in("introduction", sections)
    footers = [
        ctx.templates.render_fragment("mail/_optouts.txt", language, context).strip("\n")
        for language in languages
    ]
    text = rendered.text.rstrip("\n") + "\n\n-- \n" + "\n\n".join(footers) + "\n"
    # Signed here, once: every envelope carries these same bytes.
    raw = ctx.seal(
        build_message(
            sender=ctx.sender,
            to=both,
            cc=copy,
            rendered=replace(rendered, text=text),
            message_id=message_id,
            date=now,
            languages=languages,
            reply_to=both,
            # No List-Unsubscribe: one click in either person's mail client would stop the
            # other; each has their own link in the footer instead.
            unsubscribe_url=None,
        )
    )
    return [
        OutgoingMail(
            message_id=message_id,
            purpose=INTRODUCTION,
            envelope_from=bounce_address(ctx.settings, key),
            recipients=(address,),
            raw=raw,
            referral_id=referral.id,
            party_id=party_id,
            bounce_key=key,
        )
        for (address, party_id), key in zip(envelopes, keys, strict=True)
    ]


def declined_to_other(
    ctx: Context, referral: ReferralRecord, party: PartyRecord, now: datetime
) -> OutgoingMail:
    """Only that it will not go ahead: not who declined, not why."""
    return _to_one_party(ctx, "declined_to_other", referral, party, now)


def _to_one_party(
    ctx: Context,
    template: str,
    referral: ReferralRecord,
    party: PartyRecord,
    now: datetime,
    party_id: int | None = None,
) -> OutgoingMail:
    """A short word to one party about the need, never about the other party."""
    return post(
        ctx,
        template,
        [mailbox_of(party)],
        party.language,
        {
            "name": party.name,
            "referrer": referral.referrer_display,
            "referrer_email": referral.referrer_email,
            "need": before_consent(referral, party)(referral.need),
        },
        now,
        referral.id,
        party_id=party_id,
        timezone=party.timezone,
    )


def request_refused(
    ctx: Context,
    referrer: Mailbox,
    draft: RequestDraft,
    findings: Sequence[Finding],
    language: str,
    now: datetime,
) -> OutgoingMail:
    return post(
        ctx,
        "request_refused",
        [referrer],
        language,
        {
            "referrer_name": referrer.name,
            "request_subject": draft.subject,
            "findings": [
                {"problem": f.problem.value, "role": f.role or "", "given": f.given}
                for f in findings
            ],
            "referral_address": ctx.settings.referral_mailbox,
        },
        now,
        None,
        in_reply_to=draft.message_id,
    )


def request_unreadable(
    ctx: Context, referrer: Mailbox, subject: str, message_id: str | None, now: datetime
) -> OutgoingMail:
    return post(
        ctx,
        "request_unreadable",
        [referrer],
        ctx.settings.service.default_language,
        {"referrer_name": referrer.name, "request_subject": subject},
        now,
        None,
        in_reply_to=message_id,
    )


def to_referrer(
    ctx: Context, template: str, referral: ReferralRecord, now: datetime, **extra: Any
) -> OutgoingMail:
    return post(
        ctx,
        template,
        _referrer(referral),
        referral.language,
        {
            "ref": referral.ref,
            "referrer_name": referral.referrer_name,
            "provider": card(referral.party(Role.PROVIDER)),
            "prospect": card(referral.party(Role.PROSPECT)),
            "need": referral.need,
            **extra,
        },
        now,
        referral.id,
        in_reply_to=referral.request_message_id,
    )


def post(
    ctx: Context,
    template: str,
    to: Sequence[Mailbox],
    language: str,
    context: Mapping[str, Any],
    now: datetime,
    referral_id: int | None,
    *,
    reply_to: Sequence[Mailbox] = (),
    in_reply_to: str | None = None,
    envelope_to: Sequence[str] | None = None,
    party_id: int | None = None,
    survey_id: int | None = None,
    unsubscribe_url: str | None = None,
    timezone: str = "",
) -> OutgoingMail:
    """One finished mail. Its envelope sender names it (VERP), so a bounce says which it was.

    `unsubscribe_url` is what the one-click List-Unsubscribe stops, when that is less than
    everything (the weekly digest); the footer always offers "never again" too.
    """
    message_id = ids.message_id(ctx.settings.service.domain)
    bounce_key = ids.address_key()
    optout_url = _optout_url(ctx, bounce_key)
    shared = {
        "sender_name": ctx.settings.service.sender_name,
        "optout_url": optout_url,
        # Dates read in the reader's time zone when the request gave it, else the service's.
        "timezone": timezone or ctx.settings.service.timezone,
    }
    rendered = ctx.templates.render_mail(template, language, {**context, **shared})
    footer = ctx.templates.render_fragment_around(
        "mail/_optout.txt", language, shared, "optout_url"
    )
    rendered = Rendered(
        rendered.subject, rendered.text.rstrip("\n") + "\n\n" + footer, rendered.html
    )
    # Signed here, once: the outbox stores these bytes, so a retry sends the same signature.
    raw = ctx.seal(
        build_message(
            sender=ctx.sender,
            to=to,
            rendered=rendered,
            message_id=message_id,
            date=now,
            languages=[language],
            reply_to=reply_to,
            in_reply_to=in_reply_to,
            unsubscribe_url=unsubscribe_url or optout_url,
        )
    )
    return OutgoingMail(
        message_id=message_id,
        purpose=template,
        envelope_from=bounce_address(ctx.settings, bounce_key),
        recipients=tuple(envelope_to if envelope_to is not None else [m.address for m in to]),
        raw=raw,
        referral_id=referral_id,
        party_id=party_id,
        bounce_key=bounce_key,
        survey_id=survey_id,
    )


def _optout_url(ctx: Context, bounce_key: str) -> str:
    """Every mail says how to never hear from us again; the link names the mail (its
    envelope), not anyone."""
    return ctx.link("/u/" + ctx.tokens.make(Purpose.OPTOUT, f"m:{bounce_key}"))


def _person(party: PartyRecord) -> Person:
    return Person(name=party.name, email=party.email, phone=party.phone, booking=party.booking)


def mailbox_of(party: PartyRecord) -> Mailbox:
    return Mailbox(party.name, party.email)


def _referrer(referral: ReferralRecord) -> list[Mailbox]:
    return [Mailbox(referral.referrer_name, referral.referrer_email)]


def card(party: PartyRecord) -> dict[str, str]:
    return {
        "name": party.name,
        "display": party.display,
        "email": party.email,
        "phone": party.phone,
        "prefers": party.prefers,
        "best_time": party.best_time,
        "booking": party.booking,
    }


# ---------------------------------------------------------------- deadlines


def consent_reminder(
    ctx: Context, referral: ReferralRecord, party: PartyRecord, now: datetime
) -> OutgoingMail:
    """The one reminder of an unanswered question: the same links and Reply-To as the
    question, so answering the reminder answers the question."""
    return consent_request(ctx, referral, party, now, template="consent_reminder")


def referrer_expired(ctx: Context, referral: ReferralRecord, now: datetime) -> OutgoingMail:
    """The referrer, who knows both people, learns who did not answer in time."""
    return to_referrer(
        ctx,
        "referrer_expired",
        referral,
        now,
        silent=[card(p) for p in referral.parties if p.answer is None],
        agreed=[card(p) for p in referral.parties if p.answer == Answer.YES],
        expires_at=referral.expires_at,
    )


def expired_to_party(
    ctx: Context, referral: ReferralRecord, party: PartyRecord, now: datetime
) -> OutgoingMail:
    """To a party who said yes: only that it will not go ahead, not who or why."""
    return _to_one_party(ctx, "expired_to_party", referral, party, now)
