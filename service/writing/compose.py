"""Pure: (template, language, context) -> a finished mail or page."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from service.reading.addresses import Mailbox
from service.writing import formats, mime

FALLBACK_LANGUAGE = "en"
# Between the parts of a plain-text mail in several languages: not "-- ", which readers
# take for the start of a signature and hide.
SECTION_BREAK = "\n\n" + "=" * 40 + "\n\n"

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def templates_root() -> Path:
    """templates/ of the checkout, or the copy an installed wheel carries."""
    spec = importlib.util.find_spec("care_intro_templates")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("care-intro's templates are not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class Templates:
    """One Jinja2 environment per language, each falling back to English file by file."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or templates_root()

    def languages(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and len(p.name) == 2)

    def load_all(self) -> int:
        """Read and compile every template of every language now: later renders use these
        and read no file again. How many were loaded."""
        count = 0
        for language in self.languages():
            env = self._env(language)
            for name in env.list_templates(extensions=("txt", "html")):
                env.get_template(name)
                count += 1
        return count

    def render_mail(self, name: str, language: str, context: Mapping[str, Any]) -> Rendered:
        subject, text = self._text(name, language, context)
        html = self._env(language).get_template(f"mail/{name}.html").render(dict(context))
        return Rendered(subject=subject, text=text, html=html)

    def _text(self, name: str, language: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """The subject a text template sets, and the text."""
        module = self._env(language).get_template(f"mail/{name}.txt").make_module(dict(context))
        subject = " ".join(str(getattr(module, "subject", "")).split())
        if not subject:
            raise ValueError(f"mail template {name} sets no subject")
        return subject, str(module)

    def render_mail_in(
        self, name: str, sections: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> Rendered:
        """One mail for readers of different languages: a part for each, in its own language.

        `sections` are (language, context) in the order the parts appear. The subject names
        every part's subject; the HTML gives each part its own `lang` and `dir`, with the
        inline styles of its own direction (the part is rendered in its language's
        environment), inside one document in the first part's language.
        """
        if len(sections) == 1:
            language, context = sections[0]
            return self.render_mail(name, language, context)
        texts = [self._text(name, language, context) for language, context in sections]
        html = [
            markupsafe.Markup(
                self._env(language)
                .get_template(f"mail/{name}.html")
                .render({**context, "section": True})
            )
            for language, context in sections
        ]
        subject = " / ".join(subject for subject, _ in texts)
        document = self._env(sections[0][0]).get_template("mail/_layout.html")
        return Rendered(
            subject=subject,
            text=SECTION_BREAK.join(text.strip("\n") for _, text in texts) + "\n",
            html=document.render({"sections": html, "title": subject}),
        )

    def render_fragment(self, path: str, language: str, context: Mapping[str, Any]) -> str:
        """A shared piece of text (a footer) in the recipient's language."""
        return self._env(language).get_template(path).render(dict(context))

    def render_fragment_around(
        self, path: str, language: str, context: Mapping[str, str], slot: str
    ) -> str:
        """`render_fragment` for a piece that differs from mail to mail only in one value
        (the footer, by its opt-out link): rendered once per language and the rest of the
        context, the value put in where it stands. Rendering it again for every mail cost a
        twentieth of a tick. A template that does more with the value than show it (a
        filter) is rendered for each mail as before."""
        rest = tuple(sorted((k, v) for k, v in context.items() if k != slot))
        before, after = _around(self.root, path, language, rest, slot)
        if after is None:
            return self.render_fragment(path, language, context)
        return before + context[slot] + after

    def render_text(self, name: str, language: str, context: Mapping[str, Any]) -> str:
        """Plain text for a terminal (the report), in the reader's language."""
        return self._env(language).get_template(f"text/{name}.txt").render(dict(context))

    def render_page(self, name: str, language: str, context: Mapping[str, Any]) -> str:
        return self._env(language).get_template(f"pages/{name}.html").render(dict(context))

    def _env(self, language: str) -> jinja2.Environment:
        return _environment(self.root, language)


# Never in a value of ours: marks where a fragment shows the value it is rendered around.
_SLOT_MARK = "\x00slot\x00"


@lru_cache(maxsize=64)
def _around(
    root: Path, path: str, language: str, rest: tuple[tuple[str, str], ...], slot: str
) -> tuple[str, str | None]:
    """A fragment's text before and after the one place it shows `slot`'s value as it is;
    (…, None) where it shows it otherwise, or more than once, or escapes what it shows.
    Holds no value of `slot`."""
    env = _environment(root, language)
    rendered = env.get_template(path).render({**dict(rest), slot: _SLOT_MARK})
    if env.autoescape(path):  # the value would go in unescaped
        return rendered, None
    before, mark, after = rendered.partition(_SLOT_MARK)
    if not mark or _SLOT_MARK in after:
        return rendered, None
    return before, after


class _FlatGlobals(jinja2.Environment):
    """Each template's globals as one plain dict, copied when the template loads.

    Jinja layers them (a ChainMap over the environment's) so that later changes to the
    environment's globals still show; ours are all set in `_environment`, before the first
    template loads, and never change (a template, once loaded, keeps the copy it got).
    Every render copies the globals into its context, and through a ChainMap that copy
    cost a third of a short mail's render.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


@cache
def _environment(root: Path, language: str) -> jinja2.Environment:
    folders = [root / language] if language != FALLBACK_LANGUAGE else []
    folders.append(root / FALLBACK_LANGUAGE)
    env = _FlatGlobals(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code and change only with it: no stat() per render, and
        # every one kept in a plain dict (their number is the files'), not an LRU that
        # takes a lock and reorders a queue at each of a mail's six lookups.
        auto_reload=False,
        cache_size=-1,
    )
    env.filters["date"] = _in_zone(formats.format_date, language)
    env.filters["datetime"] = _in_zone(formats.format_datetime, language)
    env.filters["money"] = lambda amount, currency="": formats.format_money(
        amount, currency, language
    )
    env.filters["number"] = lambda value: formats.format_number(value, language)
    env.filters["percent"] = lambda share: formats.format_percent(share, language)
    env.filters["paragraphs"] = paragraphs
    rtl = language in formats.RTL
    env.globals.update(
        language=language,
        # For inline styles in mail, where clients ignore logical properties.
        dir="rtl" if rtl else "ltr",
        start="right" if rtl else "left",
        end="left" if rtl else "right",
    )
    return env


def _in_zone(
    format_moment: Callable[[datetime, str, str | None], str], language: str
) -> Callable[..., str]:
    """A date filter that reads the reader's time zone from the template's `timezone`."""

    @jinja2.pass_context
    def render(context: jinja2.runtime.Context, moment: datetime) -> str:
        zone = context.get("timezone")
        return format_moment(moment, language, zone if isinstance(zone, str) else None)

    return render


def paragraphs(text: str) -> markupsafe.Markup:
    """Plain text for HTML: each line escaped, its line and paragraph breaks kept.

    A need is a prospect's mail in paragraphs; HTML folds newlines into spaces, so without
    this every paragraph would run into the next.
    """
    # Escaped once, whole: escaping leaves line breaks and blanks as they are, so the text
    # splits where it would have, and one call in C replaces one per line.
    escaped = str(markupsafe.escape(text))
    blocks = [block.replace("\n", "<br>\n") for block in escaped.split("\n\n") if block.strip()]
    return markupsafe.Markup("<br><br>\n".join(blocks))


def build_message(
    *,
    sender: Mailbox,
    to: Sequence[Mailbox],
    rendered: Rendered,
    message_id: str,
    date: datetime,
    languages: Sequence[str],
    cc: Sequence[Mailbox] = (),
    reply_to: Sequence[Mailbox] = (),
    in_reply_to: str | None = None,
    unsubscribe_url: str | None = None,
) -> bytes:
    """The final bytes of a mail: every header set here, nothing added later.

    `languages` are those the mail is written in, its first part's first (RFC 3282). LF line
    ends (the SMTP client converts), headers folded at 78 columns, and 7-bit throughout.
    """
    head = [
        _from_line(sender),
        mime.header("To", mime.address_list(_pair(m) for m in to)),
    ]
    if cc:
        head.append(mime.header("Cc", mime.address_list(_pair(m) for m in cc)))
    if reply_to:
        head.append(mime.header("Reply-To", mime.address_list(_pair(m) for m in reply_to)))
    head.append(mime.header("Subject", mime.text_words(header_safe(rendered.subject))))
    head.append(mime.header("Date", [_date(date, date.utcoffset())]))
    head.append(mime.header("Message-ID", [header_safe(message_id)]))
    in_reply_to = header_safe(in_reply_to or "")
    if in_reply_to:
        # An identifier: kept as it is when ASCII, so threads hold; readers compare it whole.
        words = in_reply_to.split(" ") if in_reply_to.isascii() else mime.encoded_words(in_reply_to)
        head.append(mime.header("In-Reply-To", words))
        head.append(mime.header("References", words))
    # RFC 3834: we are a robot; auto-responders must not answer us.
    head.append("Auto-Submitted: auto-generated\n")
    head.append("X-Auto-Response-Suppress: All\n")
    if unsubscribe_url:
        # RFC 8058: mail clients offer "unsubscribe" and POST to the link in one click. Never
        # an encoded word: RFC 2369 readers take the value as it stands.
        head.append(mime.header("List-Unsubscribe", [f"<{header_safe(unsubscribe_url)}>"]))
        head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\n")
    text_cte, text = mime.text_part(rendered.text)
    html_cte, html = mime.text_part(rendered.html)
    # Only a 7bit body can hold a boundary: quoted-printable never writes "=_" (see boundary).
    seven_bit = [body for cte, body in ((text_cte, text), (html_cte, html)) if cte == "7bit"]
    mark = mime.boundary(message_id, seven_bit)
    head.append("MIME-Version: 1.0\n")
    head.append(f'Content-Type: multipart/alternative;\n boundary="{mark}"\n')
    head.append(mime.header("Content-Language", [", ".join(dict.fromkeys(languages))]))
    return b"".join(
        (
            "".join(head).encode("ascii"),
            f"\n--{mark}\n".encode(),
            _part_head("plain", text_cte),
            text,
            f"\n--{mark}\n".encode(),
            _part_head("html", html_cte),
            html,
            f"\n--{mark}--\n".encode(),
        )
    )


@lru_cache(maxsize=4)
def _from_line(sender: Mailbox) -> str:
    # The service's own address, the same on every mail it writes.
    return mime.header("From", mime.address_list([_pair(sender)]))


@lru_cache(maxsize=4)
def _date(moment: datetime, offset: object) -> str:
    # A tick's mails all carry one moment: formatted once, not once per mail. By offset
    # too: one instant in two zones is one key to the moment alone, and reads differently.
    return format_datetime(moment)


def _part_head(subtype: str, cte: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n'
    ).encode("ascii")


def header_safe(text: str) -> str:
    """Text for a header: control characters (NUL, CR, LF…) become spaces, runs collapse.

    Names, subjects and Message-IDs come from mail people sent us; a NUL or line break
    there must not end up in a header (or start a new one) of mail we send.
    """
    # Most values are safe as they are. A printable text holds no control character and no
    # blank but the plain space (every other one is not printable), so this says it is.
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(_CONTROLS.sub(" ", text).split())


def _pair(mailbox: Mailbox) -> tuple[str, str]:
    return header_safe(mailbox.name), header_safe(mailbox.address)
