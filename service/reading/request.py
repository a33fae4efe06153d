"""Pure: a request message -> a RequestDraft, from its labelled lines."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, replace
from email.message import EmailMessage

from service.errors import Unreadable
from service.model import Role
from service.reading.addresses import Mailbox, parse_mailbox
from service.reading.bodies import body_text, header_text
from service.reading.durations import duration_days
from service.reading.forwarded_fields import forwarded_fields
from service.reading.forwards import Forwarded, split_request
from service.reading.labels import classify, fold_label
from service.reading.letter_body import letter_body
from service.reading.mail_policy import intake_policy

# "- *Provider:* Jane", "• Need : …", "> Budget: …": bullets, quote marks and bold around
# the label do not matter; the label is short and ends at the first colon.
_LINE = re.compile(r"^[\s>•·*\-–—]*(?P<label>[^:：\n]{1,40}?)[\s*_]*[:：][\s*_]*(?P<value>.*?)\s*$")
_SIGNATURE = "-- "
_PARAGRAPH_FIELDS = {"need"}
# Enough for a few paragraphs of the prospect's own mail; the rest is theirs to say later.
_NEED_CHARS = 2000
# Fwd:, WG:, TR:, RV:, I:, Redir.:, Re:, AW: … as the clients of our six languages prefix.
SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:fwd?|wg|tr|rv|enc|i|redir\.?|re|aw|ref|balas|terusan|rs|إعادة توجيه|رد)\s*:)+",
    re.IGNORECASE,
)
_METHODS = {
    "email": "email",
    "e-mail": "email",
    "mail": "email",
    "phone": "phone",
    "call": "phone",
    "telephone": "phone",
    # The same methods as the other languages write them.
    "telefon": "phone",
    "téléphone": "phone",
    "telepon": "phone",
    "هاتف": "phone",
    "الهاتف": "phone",
    "courriel": "email",
    "البريد الإلكتروني": "email",
    "anruf": "phone",
    "appel": "phone",
    "text": "text message",
    "sms": "text message",
    "whatsapp": "WhatsApp",
    "signal": "Signal",
    "telegram": "Telegram",
    "linkedin": "LinkedIn",
    "video": "video call",
    "zoom": "video call",
    "teams": "video call",
    "in person": "in person",
}


@dataclass(frozen=True)
class PartyDraft:
    role: Role
    given: str = ""
    mailbox: Mailbox | None = None
    phone: str = ""
    prefers: str = ""
    best_time: str = ""
    booking: str = ""
    language: str = ""
    timezone: str = ""


@dataclass(frozen=True)
class RequestDraft:
    provider: PartyDraft
    prospect: PartyDraft
    need: str = ""
    budget: str = ""
    # "Follow up: 6 weeks" as written, and the days it asks for: None when there is no such
    # line, or when the line says no duration we can read (the CARE gate then says so).
    follow_up: str = ""
    follow_up_days: float | None = None
    language: str = ""
    # "Copy me: yes": the referrer wants to be in the introduction's Cc.
    copy_me: bool = False
    subject: str = ""
    message_id: str | None = None
    # What the request's own language is read from: its labels as written, and its text.
    labels: tuple[str, ...] = ()
    text: str = ""


def parse_message(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=intake_policy())
    assert isinstance(message, EmailMessage)
    return message


def parse_request(message: EmailMessage, referrer: str = "") -> RequestDraft:
    """The request a message makes, from its labelled lines and any forwarded message.

    Raises Unreadable when the message has no text we can read at all.
    """
    body = body_text(message)
    split = split_request(message, body)
    if body is None and not split.forwards:
        kinds = sorted({p.get_content_type() for p in message.walk() if not p.is_multipart()})
        raise Unreadable(f"no readable text ({', '.join(kinds) or 'empty'})")
    # Above a forward, only the referrer's own lines are labels; the forwarded text may
    # carry words that look like labels ("Client: …") but were never meant as ones.
    own = split.own if split.forwards else (body or "")
    lines = labelled_lines(own)
    parties: dict[Role, dict[str, str]] = {Role.PROVIDER: {}, Role.PROSPECT: {}}
    referral: dict[str, str] = {}
    for (role, name), value in lines:
        target = parties[role] if role else referral
        if name in target:
            continue  # the first mention wins; later ones are usually quoted history
        target[name] = value
    provider = _party(Role.PROVIDER, parties[Role.PROVIDER])
    prospect = _party(Role.PROSPECT, parties[Role.PROSPECT])
    forward = _prospects_forward(split.forwards, prospect, {referrer, _address(provider)})
    budget = referral.get("budget", "")
    if forward is not None:
        if not prospect.given:
            prospect = replace(prospect, given=forward.sender_text, mailbox=forward.sender)
        # The referrer's labelled lines win over what we read in the prospect's sentences.
        read = forwarded_fields(forward.text, forward.signature)
        prospect = replace(
            prospect,
            phone=prospect.phone or read.phone,
            prefers=prospect.prefers or read.prefers,
            best_time=prospect.best_time or read.best_time,
        )
        budget = budget or read.budget
    need = referral.get("need", "") or (need_of(forward) if forward else "")
    return RequestDraft(
        provider=provider,
        prospect=prospect,
        need=need,
        budget=budget,
        follow_up=referral.get("follow_up", ""),
        follow_up_days=duration_days(referral.get("follow_up", "")),
        language=referral.get("language", "").strip().lower(),
        copy_me=is_yes(referral.get("copy_me", "")),
        subject=header_text(message, "Subject"),
        message_id=_message_id(message),
        labels=tuple(label_words(own)),
        text=own if own.strip() else (forward.text if forward else ""),
    )


def _address(party: PartyDraft) -> str:
    return party.mailbox.address if party.mailbox else ""


def _prospects_forward(
    forwards: tuple[Forwarded, ...], prospect: PartyDraft, not_them: set[str]
) -> Forwarded | None:
    """The forward that brings the prospect: theirs if a label names them, else the innermost
    one written by someone other than the referrer or the provider (a forward of a forward
    carries the referrer's own mail, and often the provider's, above the prospect's)."""
    if prospect.mailbox is not None:
        for forward in reversed(forwards):
            if forward.sender and forward.sender.address == prospect.mailbox.address:
                return forward
        return None
    for forward in reversed(forwards):
        if forward.sender is None or forward.sender.address not in not_them:
            return forward
    return None


def need_of(forward: Forwarded) -> str:
    """A forwarded mail as a need: its subject, then the prospect's own paragraphs, without
    greeting or sign-off, cut at a paragraph (else a word) past ~2000 characters."""
    subject = " ".join(SUBJECT_PREFIX.sub("", forward.subject).split())
    writer = forward.sender.name if forward.sender else forward.sender_text
    words = letter_body(forward.text, writer)
    text = "\n\n".join(part for part in (subject, words) if part)
    if len(text) <= _NEED_CHARS:
        return text
    cut = text[:_NEED_CHARS]
    if "\n\n" in cut:
        return cut.rsplit("\n\n", 1)[0] + "\n\n…"
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + " …"


def label_words(text: str) -> list[str]:
    """The labels of a request as written ("Anbieter", "Langue du prospect"), in order."""
    found = []
    for line in text.split("\n"):
        match = _LINE.match(line.strip())
        if match and classify(match.group("label")):
            found.append(match.group("label"))
    return found


def labelled_lines(text: str) -> list[tuple[tuple[Role | None, str], str]]:
    """((role, field), value) for every labelled line, in order.

    A need may go on over the following lines until a blank line or the next label (it is
    often a paragraph); any other field with nothing after its colon takes the next line.
    """
    found: list[tuple[tuple[Role | None, str], list[str]]] = []
    open_value: list[str] | None = None
    open_paragraph = False
    for line in text.split("\n"):
        if line.rstrip() == _SIGNATURE.rstrip() and line.startswith("--"):
            break
        stripped = line.strip()
        match = _LINE.match(stripped) if stripped else None
        kind = classify(match.group("label")) if match else None
        if match and kind:
            value = match.group("value")
            parts = [value] if value else []
            found.append((kind, parts))
            open_paragraph = kind[1] in _PARAGRAPH_FIELDS
            open_value = parts if (open_paragraph or not value) else None
            continue
        if not stripped:
            if open_value:  # a blank line ends a value, but not before it began
                open_value = None
            continue
        if open_value is not None:
            open_value.append(stripped.lstrip(">").strip())
            if not open_paragraph:
                open_value = None
    return [(kind, _clean(" ".join(parts))) for kind, parts in found if any(parts)]


def _clean(value: str) -> str:
    value = re.sub(r"\s+", " ", value).strip()
    if len(value) > 2 and value[0] == value[-1] == "*":
        value = value.strip("*").strip()
    return value


def _party(role: Role, values: dict[str, str]) -> PartyDraft:
    given = values.get("party", "")
    mailbox = parse_mailbox(given) if given else None
    if values.get("email"):
        address = parse_mailbox(values["email"])
        if address and (mailbox is None):
            mailbox = Mailbox(name=_name_only(given), address=address.address)
    prefers, best_time = _preference(values.get("prefers", ""))
    return PartyDraft(
        role=role,
        given=given,
        mailbox=mailbox,
        phone=values.get("phone", ""),
        prefers=prefers,
        best_time=values.get("best_time", "") or best_time,
        booking=values.get("booking", ""),
        language=values.get("language", "").strip().lower(),
        timezone=values.get("timezone", "").strip(),
    )


def _name_only(given: str) -> str:
    return "" if "@" in given else " ".join(given.split())


def _preference(value: str) -> tuple[str, str]:
    """'phone, after 4pm' -> ('phone', 'after 4pm'); anything else stays as written."""
    head, _, rest = value.partition(",")
    method = _METHODS.get(head.strip().lower())
    if method:
        return method, rest.strip()
    return value.strip(), ""


# "Copy me: yes" as each of our languages writes the yes (and how people answer a form).
_YES = frozenset(
    {"yes", "y", "true", "please", "ja", "bitte", "oui", "da", "ya", "iya", "نعم", "✓", "✔"}
)


def is_yes(value: str) -> bool:
    """Whether a yes/no field says yes: its first word, case- and accent-blind."""
    words = fold_label(value).replace(",", " ").replace(".", " ").split()
    return bool(words) and words[0] in _YES


def _message_id(message: EmailMessage) -> str | None:
    value = message.get("Message-ID")
    if value is None:
        return None
    value = str(value).strip()
    return value or None
