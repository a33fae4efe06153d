"""A consent link past its age, through the running pages: it shows nothing of the question
and claims nothing about it, since whoever holds it may have been introduced long since."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.settings import LANGUAGES
from service.writing.compose import Templates
from store import queries
from tests.helpers import NOW, PROSPECT, PROVIDER, request_referral, web

# What the expired page used to claim, false for everyone who was introduced.
NOTHING_SHARED = {
    "en": "Nothing has been shared about you",
    "de": "Über Sie wurde nichts weitergegeben",
    "fr": "Rien n'a été communiqué à votre sujet",
    "ro": "Nu s-a transmis nimic despre dumneavoastră",
    "id": "Tidak ada informasi tentang Anda yang dibagikan",
    "ar": "لم نشارك أي معلومات عنك",
}


def test_an_introduced_persons_old_link_claims_nothing_false(clocked, sink):
    service, clock = clocked
    links = request_referral(service.service.smtp_port, sink)
    for who in (PROVIDER, PROSPECT):
        assert web.post(links[who], data={"answer": "yes"}).status_code == 200
    assert queries.recent_referrals()[0].state == "introduced"
    clock.at = NOW + timedelta(days=service.settings.timing.consent_expiry_days, seconds=1)
    for method in (web.get, lambda url: web.post(url, data={"answer": "no"})):
        page = method(links[PROVIDER])
        words = " ".join(page.text.split())
        assert page.status_code == 410 and "This link has expired" in words
        assert "it no longer shows or changes anything" in words
        assert NOTHING_SHARED["en"] not in words
    assert queries.recent_referrals()[0].party("provider").answer == "yes"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_language_says_on_an_expired_link_that_nothing_was_shared(lang):
    context = {"problem": "expired", "sender_name": "Introductions", "timezone": "UTC"}
    text = Templates().render_page("problem", lang, context)
    assert NOTHING_SHARED[lang] not in text
