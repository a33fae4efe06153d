"""Every mail template renders into a complete, well-formed message."""

from __future__ import annotations

import email
import email.policy
import html as html_module
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.evaluation.figures import compute
from service.model import State
from service.reading.addresses import Mailbox
from service.settings import LANGUAGES
from service.writing.compose import Rendered, Templates, build_message, header_safe, paragraphs

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CARD = {
    "name": "Jane Roe",
    "display": "Jane Roe",
    "email": "jane@acme.example",
    "phone": "+1 555",
    "prefers": "email",
    "best_time": "mornings",
    "booking": "https://cal.example/jane",
}
OTHER = {**CARD, "name": "Bob", "display": "Bob", "email": "bob@bakery.example"}
CONTEXTS = {
    "receipt": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "Ada",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
        "expires_at": NOW,
        "suggestions": ["preferred_contact", "best_time", "booking", "budget"],
    },
    "request_unreadable": {"referrer_name": "Ada", "request_subject": "Intro <b>x</b>"},
    "consent_request": {
        "name": "Jane",
        "role": "provider",
        "referrer": "Ada",
        "referrer_email": "ada@referrer.example",
        "need": "books",
        "budget": "5 EUR",
        "timing": "mornings",
        "expires_at": NOW,
        "url": "http://x/c/t",
        "yes_url": "http://x/c/t?answer=yes",
        "no_url": "http://x/c/t?answer=no",
        "keep_mail_days": 30,
        "keep_people_days": 730,
        "privacy_url": "http://x/privacy",
    },
    "reply_unclear": {
        "name": "Jane",
        "role": "provider",
        "referrer": "Ada",
        "referrer_email": "ada@referrer.example",
        "need": "books",
        "budget": "",
        "timing": "",
        "expires_at": NOW,
        "url": "http://x/c/t",
        "yes_url": "http://x/c/t?answer=yes",
        "no_url": "http://x/c/t?answer=no",
    },
    "consent_reminder": {
        "name": "",
        "role": "prospect",
        "referrer": "Ada",
        "referrer_email": "ada@referrer.example",
        "need": "books",
        "budget": "",
        "timing": "",
        "expires_at": NOW,
        "url": "http://x/c/t",
        "yes_url": "http://x/c/t?answer=yes",
        "no_url": "http://x/c/t?answer=no",
    },
    "referrer_expired": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "Ada",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
        "silent": [OTHER],
        "agreed": [CARD],
        "expires_at": NOW,
    },
    "expired_to_party": {"name": "Jane", "referrer": "Ada", "need": "books"},
    "introduction": {
        "referrer": "Ada",
        "need": "books",
        "budget": "",
        "provider": CARD,
        "prospect": OTHER,
        "readers": ["provider", "prospect"],
        "optouts": [
            {"name": "Jane Roe", "url": "http://x/u/jane"},
            {"name": "Bob", "url": "http://x/u/bob"},
        ],
    },
    "declined_to_other": {"name": "", "referrer": "Ada", "need": "books"},
    "referrer_introduced": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "Ada",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
    },
    "referrer_declined": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
        "declined_by": OTHER,
        "reason": "not_relevant",
        "reason_text": "we do this <b>in house</b>",
    },
    "no_stands": {
        "name": "Bob",
        "referrer": "Ada",
        "referrer_email": "ada@referrer.example",
        "need": "books",
    },
    "referrer_undeliverable": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "Ada",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
        "failed": OTHER,
        "status": "5.1.1",
    },
    "referrer_not_introduced": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "Ada",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
        "failed": OTHER,
        "status": "550 5.1.1 <bob@bakery.example>: Recipient address rejected: User unknown",
    },
    "request_refused": {
        "referrer_name": "Ada",
        "request_subject": "Intro",
        "referral_address": "refer@intro.example.org",
        "findings": [
            {"problem": p, "role": r, "given": "<b>x</b>"}
            for p, r in [
                ("no_need", ""),
                ("need_too_short", ""),
                ("missing_party", "provider"),
                ("invalid_address", "prospect"),
                ("same_person", ""),
                ("party_is_referrer", "provider"),
            ]
        ],
    },
    "survey": {
        "name": "Jane",
        "other": "Bob Smith",
        "referrer": "Ada",
        "need": "books",
        "introduced_at": NOW,
        "round": 1,
        "expires_at": NOW,
        "url": "http://x/s/t",
        "rating_urls": {n: f"http://x/s/t?rating={n}" for n in range(1, 6)},
        "business_urls": {b: f"http://x/s/t?business={b}" for b in ("yes", "not_yet", "no")},
    },
    "referrer_evaluated": {
        "ref": "R-AAAA-BBBB",
        "referrer_name": "Ada",
        "provider": CARD,
        "prospect": OTHER,
        "need": "books",
        "introduced_at": NOW,
        "outcomes": [
            {
                "person": CARD,
                "role": "provider",
                "answered": True,
                "rounds": [
                    {
                        "round": 1,
                        "asked_at": NOW,
                        "answered_at": NOW,
                        "answered": True,
                        "final": False,
                        "rating": 3,
                        "business": "not_yet",
                        "amount": None,
                        "currency": "",
                        "more": None,
                        "comment": "still deciding",
                    },
                    {
                        "round": 2,
                        "asked_at": NOW,
                        "answered_at": NOW,
                        "answered": True,
                        "final": True,
                        "rating": 4,
                        "business": "yes",
                        "amount": Decimal("1200.00"),
                        "currency": "EUR",
                        "more": True,
                        "comment": "<b>great</b>",
                    },
                ],
            },
            {
                "person": OTHER,
                "role": "prospect",
                "answered": False,
                "rounds": [
                    {
                        "round": 1,
                        "asked_at": NOW,
                        "answered_at": None,
                        "answered": False,
                        "final": False,
                        "rating": None,
                        "business": None,
                        "amount": None,
                        "currency": "",
                        "more": None,
                        "comment": "",
                    }
                ],
            },
        ],
        "several_rounds": True,
    },
    "report": {
        "referrer_name": "Ada",
        "figures": compute([], {}, referrer="ada@referrer.example", since=None, now=NOW),
        "report_url": "http://x/r/t",
    },
    "digest": {
        "referrer_name": "Ada",
        "referrals": [
            {
                "ref": "R-AAAA-BBBB",
                "state": "introduced",
                "provider": CARD,
                "prospect": {**OTHER, "display": "<Bob & co>"},
                "events": [
                    {"at": NOW, "kind": kind, "actor": actor, "detail": detail}
                    for kind, actor, detail in [
                        ("received", "referrer", ""),
                        ("asked", "service", "provider, prospect"),
                        ("reminded", "service", "provider, prospect"),
                        ("answered yes", "provider", ""),
                        ("answered yes", "prospect", ""),
                        ("introduced", "service", ""),
                        ("surveyed", "provider", "round 1"),
                        ("survey answered", "prospect", "rating 4"),
                        ("follow-up scheduled", "prospect", "round 2"),
                        ("evaluated", "service", ""),
                        ("something new", "service", ""),
                    ]
                ],
            }
        ],
        "since": NOW,
        "until": NOW,
        "report_url": "http://x/r/t",
        "digest_off_url": "http://x/d/t",
    },
}
TEMPLATES = Templates()


def mail_templates() -> list[str]:
    return sorted(
        p.stem for p in (TEMPLATES.root / "en" / "mail").glob("*.txt") if not p.stem.startswith("_")
    )


def test_the_digest_escapes_names_in_html_and_keeps_them_whole_in_text():
    context = {**CONTEXTS["digest"], "sender_name": "Introductions"}
    rendered = TEMPLATES.render_mail("digest", "en", context)
    assert "&lt;Bob &amp; co&gt;" in rendered.html and "<Bob & co>" not in rendered.html
    assert "<Bob & co> said yes" in rendered.text
    assert "we reminded Jane Roe, <Bob & co>" in rendered.text


def test_every_mail_template_has_a_test_context():
    assert mail_templates() == sorted(CONTEXTS)


def _to_jane(rendered: Rendered) -> bytes:
    """The mail's bytes as the service writes them to one reader, in English."""
    return build_message(
        sender=Mailbox("Introductions", "refer@intro.example.org"),
        to=[Mailbox("Jane Roe", "jane@acme.example")],
        rendered=rendered,
        message_id="<abc@intro.example.org>",
        date=NOW,
        languages=["en"],
    )


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_each_mail_renders_to_a_complete_message(name):
    context = {**CONTEXTS[name], "sender_name": "Introductions"}
    rendered = TEMPLATES.render_mail(name, "en", context)
    raw = _to_jane(rendered)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Message-ID"] == "<abc@intro.example.org>"
    assert message["Date"] == "Sun, 22 Nov 2026 12:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Content-Language"] == "en"
    assert message["Subject"].strip()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "{{" not in part and "{%" not in part
    assert max(len(line) for line in raw.split(b"\n")) <= 998


@given(st.text())
@example("a = b_c =_d =\n_e ==_f" + "x" * 80)
def test_a_quoted_printable_body_never_holds_a_boundary(text):
    """Why a mail's boundary is looked for in its 7bit bodies only: every boundary starts
    with "=_", which quoted-printable never writes."""
    from service.writing import mime

    encoding, body = mime.text_part(text)
    if encoding == "quoted-printable":
        assert b"=_" not in body


def test_a_text_that_holds_the_boundary_gets_another_and_reads_back_whole():
    from service.writing import mime

    first = mime.boundary("<abc@intro.example.org>", [])
    text = f"Quoting a mail of ours:\n--{first}\nas it was.\n"
    rendered = Rendered("A subject", text, "<p>" + "long line, " * 20 + "</p>")
    raw = _to_jane(rendered)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_boundary() != first
    assert message.get_body(("plain",)).get_content() == text
    assert message.get_body(("html",))["Content-Transfer-Encoding"] == "quoted-printable"


def test_html_escapes_what_people_wrote_and_text_keeps_it():
    context = {
        **CONTEXTS["consent_request"],
        "need": "<script>alert(1)</script> & co",
        "sender_name": "Introductions",
    }
    rendered = TEMPLATES.render_mail("consent_request", "en", context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in rendered.html
    assert "<script>alert(1)</script> & co" in rendered.text


# The mails that quote the need, as their templates say.
NEEDS_IN = [
    "consent_reminder",
    "consent_request",
    "declined_to_other",
    "expired_to_party",
    "introduction",
    "receipt",
    "referrer_declined",
    "referrer_evaluated",
    "referrer_expired",
    "referrer_introduced",
]


@pytest.mark.parametrize("name", NEEDS_IN)
def test_a_need_in_paragraphs_reads_as_paragraphs_in_text_and_html(name):
    need = "Books for the <b>shop</b>\n\nWe need:\n- VAT returns\n- payroll & pensions"
    context = {**CONTEXTS[name], "need": need, "sender_name": "Introductions"}
    rendered = TEMPLATES.render_mail(name, "en", context)
    # Text: every line of the need under the first, at its indentation.
    assert "  Books for the <b>shop</b>\n\n  We need:\n  - VAT returns\n  - payroll" in (
        rendered.text
    )
    # HTML: escaped, and each paragraph and list item starts a line of its own.
    assert "<b>shop</b>" not in rendered.html
    assert "&lt;b&gt;shop&lt;/b&gt;<br><br>" in rendered.html
    assert "We need:<br>" in rendered.html and "- VAT returns<br>" in rendered.html
    assert "payroll &amp; pensions" in rendered.html


def test_refusal_findings_are_escaped_in_html():
    context = {**CONTEXTS["request_refused"], "sender_name": "Introductions"}
    rendered = TEMPLATES.render_mail("request_refused", "en", context)
    assert "<b>x</b>" not in rendered.html
    assert "&lt;b&gt;x&lt;/b&gt;" in rendered.html


def test_a_missing_context_key_fails_instead_of_rendering_blank():
    context = dict(CONTEXTS["consent_request"])
    del context["need"]
    with pytest.raises(Exception, match="need"):
        TEMPLATES.render_mail("consent_request", "en", {**context, "sender_name": "x"})


def test_non_ascii_subjects_and_bodies_are_encoded_for_any_relay():
    rendered = Rendered(subject="Vorstellung: Jürgen und Zoë", text="Grüße\n", html="<p>Grüße</p>")
    raw = build_message(
        sender=Mailbox("Einführungen", "refer@intro.example.org"),
        to=[Mailbox("Zoë Châtelain", "zoe@patisserie.example")],
        rendered=rendered,
        message_id="<x@y>",
        date=NOW,
        languages=["de"],
    )
    assert raw.isascii()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Vorstellung: Jürgen und Zoë"
    assert message["To"].addresses[0].display_name == "Zoë Châtelain"
    assert re.search(r"Grüße", message.get_body(("plain",)).get_content())


@pytest.mark.parametrize("subject", ["Intro Jane\x00 / Bob", "Intro Jäne\x00 / Bob"])
def test_no_nul_or_line_break_from_a_request_reaches_a_header(subject):
    rendered = Rendered(subject=subject, text="x\n", html="<p>x</p>")
    raw = build_message(
        sender=Mailbox("Introductions", "refer@intro.example.org"),
        to=[Mailbox("Jane\x00\r\nBcc: mallory@elsewhere.example", "jane@acme.example")],
        rendered=rendered,
        message_id="<x@y>",
        date=NOW,
        languages=["en"],
        in_reply_to="<request\x00.1@referrer.example>",
    )
    head = raw.split(b"\n\n", 1)[0]
    assert b"\x00" not in raw and b"\r" not in head
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bcc" not in message and "\x00" not in message["Subject"]
    assert message["Subject"] == subject.replace("\x00", "")
    assert message["To"].addresses[0].addr_spec == "jane@acme.example"
    assert message["In-Reply-To"] == "<request .1@referrer.example>"


def event_kinds() -> set[str]:
    """Every kind of event the service writes: literals, states, and answers."""
    source = " ".join(p.read_text() for p in Path("service").rglob("*.py"))
    calls = re.findall(r"add_event\(\s*[\w.]+,\s*\w+,\s*([^,]+),", source)
    kinds = {c.strip('"') for c in calls if c.startswith('"')}
    kinds |= {state.value for state in State}
    kinds |= {f"{how} {answer}" for how in ("answered", "changed to") for answer in ("yes", "no")}
    return kinds


def test_the_digest_has_words_for_every_event_the_service_writes():
    kinds = sorted(event_kinds())
    assert {"survey answered", "follow-up scheduled", "delivery delayed"} <= set(kinds)
    digest = CONTEXTS["digest"]["referrals"][0]
    events = [{"at": NOW, "kind": k, "actor": "provider", "detail": ""} for k in kinds]
    context = {**CONTEXTS["digest"], "referrals": [{**digest, "events": events}]}
    text = TEMPLATES.render_mail("digest", "en", {**context, "sender_name": "x"}).text
    for kind in kinds:
        assert f"22 November 2026: {kind}\n" not in text, f"no words for {kind!r}"


# Text as people paste it: line breaks and blank lines, markup, entities, blanks of every
# kind (no-break, ideographic, tabs), controls, accents.
PASTED = st.text(
    alphabet=st.sampled_from(list("ab <>&\"'\n\n\t;é\u00a0\u3000\u2028\x00\x1b\x85\r")), max_size=60
) | st.text(max_size=40)


@given(PASTED)
@example("One line, no break")
@example("<b>x</b> & y\n\n\n\nz\n")
def test_paragraphs_keep_every_paragraph_and_line_and_escape_the_rest(text):
    html = str(paragraphs(text))
    # No markup but our line breaks: whatever the text held is escaped.
    assert "<" not in html.replace("<br>", "")
    back = html.replace("<br><br>\n", "\n\n").replace("<br>\n", "\n")
    expected = "\n\n".join(block for block in text.split("\n\n") if block.strip())
    assert html_module.unescape(back) == expected


@given(PASTED)
@example("Jane  Roe")  # each way a value can look printable and still need mending
@example(" Jane Roe")
@example("Jane Roe ")
@example("Jane\u00a0Roe")
@example("Jane\u200bRoe")
def test_a_header_value_holds_no_control_and_no_stray_blank(text):
    safe = header_safe(text)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", safe)
    assert safe == safe.strip() and not re.search(r"\s\s", safe)
    # The words stay, in their order, and whatever separated them is one plain space.
    assert safe == " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).split())
    assert header_safe(safe) == safe


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_footer_rendered_once_reads_as_rendered_for_each_mail(language):
    for link in ("http://127.0.0.1:8080/u/abc.def-ghi_jkl", "https://x.example/u/a?b=c&d=<e>"):
        context = {"sender_name": "Introductions", "optout_url": link, "timezone": "UTC"}
        direct = TEMPLATES.render_fragment("mail/_optout.txt", language, context)
        around = TEMPLATES.render_fragment_around(
            "mail/_optout.txt", language, context, "optout_url"
        )
        assert around == direct and link in around


@pytest.mark.parametrize(
    "source", ["[{{ v|upper }}]", "{{ v }} and {{ v }}", "no value at all", "<a href='{{ v }}'>"]
)
def test_a_fragment_that_does_more_than_show_the_value_is_rendered_each_time(tmp_path, source):
    name = "x.html" if source.startswith("<") else "x.txt"
    (tmp_path / "en" / "mail").mkdir(parents=True)
    (tmp_path / "en" / "mail" / name).write_text(source)
    templates = Templates(tmp_path)
    for value in ("one <&>", "two"):
        context = {"v": value}
        direct = templates.render_fragment(f"mail/{name}", "en", context)
        assert templates.render_fragment_around(f"mail/{name}", "en", context, "v") == direct
