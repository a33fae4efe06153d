"""One referral across languages, over real SMTP and HTTP: a French referrer introduces a
French provider to a German prospect; everyone reads their own language throughout."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from service.evaluation import surveys
from service.writing.context import make_context
from service.writing.formats import format_date, format_money
from store import queries
from tests import browser
from tests.conftest import REFERRER, InProcess, eventually, make_settings, wire_fixture
from tests.helpers import NOW, parse, send, web

REQUEST = "request_apple_mail_french_with_german_prospect.eml"
JEANNE = "jeanne@conseil-roux.example"
BERND = "bernd@baeckerei-schmidt.example"


@pytest.fixture
def service(clocked):
    return clocked


def mails_to(sink, address: str, count: int = 1):
    def found():
        mails = [d for d in sink.deliveries if d.rcpt_tos == (address,)]
        return mails if len(mails) >= count else None

    return [parse(d) for d in eventually(found, f"{count} mail(s) to {address}")]


ENGLISH = re.compile(r"\b(Hello|Thank you|introduction|would like|your)\b", re.IGNORECASE)


def body(message) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def link(message, path: str) -> str:
    return re.search(rf"(http://\S+/{path}/[A-Za-z0-9_.\-]+)", body(message))[1]


def test_a_french_provider_and_a_german_prospect_each_read_their_own_language(service, sink):
    running, clock = service
    send(running.service.smtp_port, wire_fixture(REQUEST))

    [receipt] = mails_to(sink, REFERRER)
    [to_jeanne] = mails_to(sink, JEANNE)
    [to_bernd] = mails_to(sink, BERND)
    assert receipt["Content-Language"] == "fr"  # the referrer wrote in French
    for mail in (receipt, to_jeanne, to_bernd):
        assert not ENGLISH.search(body(mail) + str(mail["Subject"])), ENGLISH.search(body(mail))
    assert to_jeanne["Content-Language"] == "fr"
    assert to_bernd["Content-Language"] == "de"  # "Langue du prospect : allemand"
    # The German question shows its expiry in Berlin time, as a German reader writes dates.
    [referral] = queries.recent_referrals()
    assert format_date(referral.expires_at, "de", "Europe/Berlin") in body(to_bernd)
    # Still nothing of the other party before both said yes.
    for trace in ("Jeanne", "Roux", JEANNE, "conseil-roux"):
        assert trace not in body(to_bernd) and trace not in str(to_bernd["Subject"])

    # The pages behind the links speak the reader's language too.
    bernd_page = web.get(link(to_bernd, "c"))
    jeanne_page = web.get(link(to_jeanne, "c"))
    assert '<html lang="de" dir="ltr">' in bernd_page.text
    assert '<html lang="fr" dir="ltr">' in jeanne_page.text
    # So does "never contact me again", from the mail's footer and from the page.
    assert '<html lang="de" dir="ltr">' in web.get(link(to_bernd, "u")).text
    footer_link = re.search(r'href="(http://[^"]+/u/[^"]+)"', bernd_page.text)[1]
    assert '<html lang="de" dir="ltr">' in web.get(footer_link).text
    assert web.post(link(to_jeanne, "c"), data={"answer": "yes"}).status_code == 200
    assert web.post(link(to_bernd, "c"), data={"answer": "yes"}).status_code == 200

    introductions = {
        address: [m for m in mails_to(sink, address, 2) if m is not None][1]
        for address in (JEANNE, BERND)
    }
    # One mail to both: Jeanne's part in French first, then Bernd's in German.
    to_jeanne_intro, to_bernd_intro = introductions[JEANNE], introductions[BERND]
    assert to_jeanne_intro.as_bytes() == to_bernd_intro.as_bytes()
    assert to_jeanne_intro["Content-Language"] == "fr, de"
    text = body(to_jeanne_intro)
    assert text.index("Bonjour Jeanne Roux") < text.index("Guten Tag Bernd Schmidt")
    told = mails_to(sink, REFERRER, 2)[1]
    assert told["Content-Language"] == "fr"

    # A month on: each is asked how it went, in their language; the referrer hears in French.
    ctx = make_context(running.settings, clock)
    clock.at = NOW + timedelta(days=ctx.settings.timing.follow_up_days)
    assert surveys.send_due(ctx, clock.at) == 2
    running.deliver()
    survey_to_jeanne = mails_to(sink, JEANNE, 3)[2]
    survey_to_bernd = mails_to(sink, BERND, 3)[2]
    assert survey_to_jeanne["Content-Language"] == "fr"
    assert survey_to_bernd["Content-Language"] == "de"
    page = web.get(link(survey_to_bernd, "s") + "?rating=5")
    assert '<html lang="de" dir="ltr">' in page.text
    web.post(link(survey_to_bernd, "s"), data={"rating": "5", "business": "yes"})
    web.post(
        link(survey_to_jeanne, "s"),
        data={"rating": "4", "business": "yes", "amount": "1200", "currency": "EUR"},
    )
    running.deliver()
    summary = mails_to(sink, REFERRER, 3)[2]
    for mail in (summary, survey_to_bernd, survey_to_jeanne, told, *introductions.values()):
        assert not ENGLISH.search(body(mail) + str(mail["Subject"])), ENGLISH.search(body(mail))
    assert summary["Content-Language"] == "fr"
    assert " ".join(format_money(1200, "EUR", "fr").split()) in body(summary)


@browser.needs_chromium
def test_arabic_pages_read_from_the_right_in_a_real_browser(tmp_path, sqlite_url):
    """The home page as Chromium set to Arabic and to English draws it: the Arabic heading
    hangs from the right edge of the column, the English one from the left."""
    running = InProcess(make_settings(tmp_path, sqlite_url))
    try:
        url = running.settings.service.public_url + "/"
        edges = {}
        for lang in ("en", "ar"):
            shot = browser.screenshot(url, tmp_path / f"{lang}.png", (1000, 400), language=lang)
            heading = browser.colour_mask(shot, (0x22, 0x22, 0x22), tolerance=40).crop(
                (0, 20, 1000, 70)
            )
            edges[lang] = heading.getbbox()
    finally:
        running.stop()
    (en_left, _, en_right, _), (ar_left, _, ar_right, _) = edges["en"], edges["ar"]
    # The column is 560 CSS pixels wide and centred: its text runs from x=220 to x=780.
    assert abs(en_left - 220) <= 4 and en_right < 780 - 60
    assert abs(ar_right - 780) <= 4 and ar_left > 220 + 60
