"""The notice a person is owed (GDPR Art. 14): the first mail says who gave us their address,
why, for how long we keep it, and where to read the rest; /privacy says the rest."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REFERRER
from tests.helpers import OUR_LINKS, PROSPECT, PROVIDER, parse, request_referral, text_of, web

OTHER = {PROVIDER: ("Bob Smith", PROSPECT), PROSPECT: ("Jane Roe", PROVIDER)}


def test_the_first_question_says_who_gave_the_address_how_long_and_where_to_read_more(
    running, sink
):
    request_referral(running.service.smtp_port, sink)
    privacy_url = running.settings.service.public_url + "/privacy"
    questions = [d for d in sink.deliveries if d.rcpt_tos[0] in OTHER]
    assert sorted(d.rcpt_tos[0] for d in questions) == sorted(OTHER)
    for delivery in questions:
        text = " ".join(text_of(delivery).split())
        assert "Ada Lovelace gave us your address so that we could ask you this" in text
        assert "We delete the mails 30 days after the request is settled" in text
        assert "after 730 days at the latest" in text
        assert text.count(privacy_url) == 1
        html = parse(delivery).get_body(("html",)).get_content()
        assert f'<a href="{privacy_url}">' in html
        # The notice names the referrer, never the person they want to introduce. Looked for
        # without our links: their tokens spell "Bob" or "Roe" about once in a thousand mails.
        name, address = OTHER[delivery.rcpt_tos[0]]
        words, html_words = OUR_LINKS.sub("", text), OUR_LINKS.sub("", html)
        for trace in (name, *name.split(), address):
            assert trace not in words and trace not in html_words


@pytest.mark.parametrize(
    ("header", "lang", "heading"),
    [
        ("de-AT,de;q=0.9,en;q=0.8", "de", "Ihre persönlichen Daten"),
        ("es,fr;q=0.5", "fr", "Vos données personnelles"),
        ("ro", "ro", "Datele dumneavoastră personale"),
        ("id-ID", "id", "Data pribadi Anda"),
        ("ar-EG", "ar", "بياناتك الشخصية"),
        ("", "en", "Your personal data"),
    ],
)
def test_the_privacy_page_names_who_is_responsible_and_how_long_in_the_browsers_language(
    running, header, lang, heading
):
    page = web.get(
        running.settings.service.public_url + "/privacy", headers={"Accept-Language": header}
    )
    assert page.status_code == 200
    assert f'<html lang="{lang}"' in page.text
    assert f"<h1>{heading}</h1>" in page.text
    privacy = running.settings.privacy
    assert privacy.controller in page.text
    assert f'<a href="mailto:{privacy.contact}">{privacy.contact}</a>' in page.text
    days = re.findall(r"\b(\d+)\b", re.sub(r"<[^>]+>", " ", page.text))
    assert str(privacy.keep_mail_days) in days and str(privacy.keep_people_days) in days
    assert REFERRER not in page.text
