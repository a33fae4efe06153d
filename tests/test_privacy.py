"""Privacy as a property: before both said yes, nothing a party receives identifies the other.

Every example runs the real service over real sockets: a request by SMTP, the mails at the
sink, the pages a party opens, and the page after their answer. For each party we collect
everything that reached them, decoded every way a mail client would, and look for anything
of the other person's: name, each part of the name, address, local part, domain, phone,
booking link; and every token they hold must open only their own question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.tokens import Purpose, Tokens
from store import queries
from tests.conftest import REFERRER, on_the_wire
from tests.helpers import OUR_MESSAGE_ID, parse, send, web

# Canary values: no vowels, so a generated name or address can never spell a word of our
# templates or the referrer's own address, which every party may see.
LETTERS = "bcdfghjklmnpqrstvwxzçñøłśžßğșțБДЖЛФЦЧШЮЯدجحخشصضطظعغ"
SLUG = "bcdfghjkmnpqrstvwxz0123456789"
NEEDS = (
    "bookkeeping for a small team",
    "a new website before spring",
    "legal advice on a lease renewal",
    "payroll for seasonal staff",
)


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    local: str
    domain: str
    phone: str
    booking: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def traces(self) -> list[str]:
        """Everything of this person that must not reach the other before consent."""
        digits = re.sub(r"\D", "", self.phone)
        return [
            self.name,
            self.first,
            self.last,
            self.address,
            self.local,
            self.domain,
            self.phone,
            digits,
            self.booking,
        ]


word = st.text(alphabet=LETTERS, min_size=5, max_size=9).map(str.capitalize)
slug = st.text(alphabet=SLUG, min_size=7, max_size=11)
people = st.builds(
    Person,
    first=word,
    last=word,
    local=slug,
    domain=slug.map(lambda s: f"{s}.example"),
    phone=st.from_regex(r"\+[1-9][0-9] [0-9]{2,3} [0-9]{6,8}", fullmatch=True),
    booking=slug.map(lambda s: f"https://book.example/{s}"),
)


def distinct(pair: tuple[Person, Person]) -> bool:
    a, b = pair
    a_parts = {t.casefold() for t in a.traces()}
    return not any(
        t.casefold() in part or part in t.casefold() for t in b.traces() for part in a_parts
    )


def request(provider: Person, prospect: Person, need: str, shape: str = "labels") -> bytes:
    message = EmailMessage()
    message["From"] = f"Ada Lovelace <{REFERRER}>"
    message["To"] = "refer@intro.example.org"
    message["Subject"] = "Two people who should meet"
    message["Message-ID"] = make_msgid(domain="referrer.example")
    if shape == "forward":
        message.set_content(forwarded(provider, prospect, need))
        return on_the_wire(message.as_bytes())
    message.set_content(
        f"Provider: {provider.name} <{provider.address}>\n"
        f"Provider phone: {provider.phone}\n"
        f"Provider booking: {provider.booking}\n"
        f"Provider prefers: email, mornings\n"
        f"Prospect: {prospect.name} <{prospect.address}>\n"
        f"Prospect phone: {prospect.phone}\n"
        f"Prospect booking: {prospect.booking}\n"
        f"Prospect prefers: phone, after 4pm\n"
        f"Need: {prospect.first} ({prospect.phone}) needs {need}; {provider.name} can help,\n"
        f"see {provider.booking} or write to {prospect.address} or {provider.domain}\n"
        f"Budget: 500 EUR\n"
    )
    return on_the_wire(message.as_bytes())


def forwarded(provider: Person, prospect: Person, need: str) -> str:
    """The prospect's own mail forwarded, signed the way people sign: all of them in it."""
    return (
        f"Provider: {provider.name} <{provider.address}>\n"
        f"Provider phone: {provider.phone}\n"
        f"Provider booking: {provider.booking}\n\n"
        "---------- Forwarded message ---------\n"
        f"From: {prospect.name} <{prospect.address}>\n"
        "Date: Mon, Nov 16, 2026 at 9:14 AM\n"
        f"Subject: {need} for {prospect.last}\n"
        f"To: Ada Lovelace <{REFERRER}>\n\n\n"
        f"Hi Ada,\n\n{prospect.first} here. We need {need}; call me on {prospect.phone},\n"
        f"book at {prospect.booking} or write to {prospect.address}.\n\n"
        # Read as the budget and best time the provider sees before consent: the phone in
        # the best time must not go with it.
        f"Our budget is around 2,000 EUR. The best time to call me is after 4pm on\n"
        f"{prospect.phone}, or {prospect.first} at {prospect.phone}.\n\n"
        f"Thanks,\n{prospect.name}\n{prospect.phone}\n{prospect.domain}\n"
    )


def readable(raw: bytes) -> tuple[str, str]:
    """(the raw bytes with every header decoded, each text part decoded), as clients show them.

    The raw bytes' quoted-printable soft line breaks are joined, so that a link reads whole."""
    message = parse_bytes(raw)
    whole = re.sub(r"=\r?\n", "", raw.decode("utf-8", "replace"))
    headers = [whole] + [str(value) for value in message.values()]
    parts = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(headers), "\n".join(parts)


def parse_bytes(raw: bytes) -> EmailMessage:
    from tests.conftest import Delivery

    return parse(Delivery("", (), raw))


TOKEN = r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"

# What is ours and random: our links' tokens (the page's own "/c/..." too), Message-IDs, the
# keys of our addresses, MIME boundaries. They spell a short canary now and then: Hypothesis
# tries the simplest name, "Bbbbb", which a boundary's 30 hex digits hold once in 40,000
# mails; with the tokens', Message-IDs' and keys' chances, the test failed once in 5,000 runs.
OURS = re.compile(
    rf"(?:http://127\.0\.0\.1:\d+)?/[cu]/{TOKEN}"
    rf"|{OUR_MESSAGE_ID}"
    r"|refer\+(?:b-)?[a-z2-7]{16}@intro\.example\.org"
    r"|=_[0-9a-f]{30}"
)


def tokens_in(text: str) -> set[str]:
    return set(re.findall(rf"/c/({TOKEN})", text))


def without_ours(seen: list[str], tokens: Tokens, own: set[str]) -> list[str]:
    """What a party saw, without what is ours and random. Each of our tokens is read first:
    it may name only what is the reader's own, their question or a mail to them."""
    for path, token in re.findall(rf"/([cu])/({TOKEN})", "\n".join(seen)):
        purpose = Purpose.CONSENT if path == "c" else Purpose.OPTOUT
        assert tokens.read(purpose, token) in own, f"a /{path}/ token names what is not theirs"
    return [OURS.sub("", text) for text in seen]


def assert_nothing_of(other: Person, seen: list[str], who: str) -> None:
    corpus = "\n".join(seen).casefold()
    for trace in other.traces():
        assert trace.casefold() not in corpus, f"{who} saw {trace!r} of the other party"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pair=st.tuples(people, people).filter(distinct),
    need=st.sampled_from(NEEDS),
    first_role=st.sampled_from(["provider", "prospect"]),
    first_answer=st.sampled_from(["yes", "no"]),
    shape=st.sampled_from(["labels", "forward"]),
)
def test_nothing_reaching_one_party_identifies_the_other(
    running, sink, pair, need, first_role, first_answer, shape
):
    provider, prospect = pair
    person = {"provider": provider, "prospect": prospect}
    before = len(sink.deliveries)
    send(running.service.smtp_port, request(provider, prospect, need, shape))
    sink.wait_for(before + 3)
    referral = next(
        r
        for r in queries.recent_referrals(limit=5)
        if r.party("provider").email == provider.address
    )

    seen: dict[str, list[str]] = {"provider": [], "prospect": []}
    own = {
        role: {referral.party(role).ask_key, f"q:{referral.party(role).ask_key}"} for role in seen
    }
    links: dict[str, str] = {}
    tokens = running.service.ctx.tokens

    def collect_mail() -> None:
        for delivery in sink.deliveries[before:]:
            for role in seen:
                if person[role].address in delivery.rcpt_tos:
                    assert delivery.rcpt_tos == (person[role].address,)
                    # VERP: the envelope sender names this one mail, and nothing of anyone.
                    verp = re.fullmatch(
                        r"refer\+b-([a-z2-7]{16})@intro\.example\.org", delivery.mail_from
                    )
                    assert verp
                    own[role].add(f"m:{verp[1]}")  # its opt-out link names this mail
                    headers, text = readable(delivery.data)
                    seen[role] += [headers, text]
                    for token in tokens_in(text):
                        key = tokens.read(Purpose.CONSENT, token)
                        assert key == referral.party(role).ask_key
                        links[role] = re.search(r"http://\S+/c/" + re.escape(token), text).group(0)

    collect_mail()
    for role in seen:
        for variant in ("", "?answer=yes", "?answer=no"):
            seen[role].append(web.get(links[role] + variant).text)

    # One party answers; the other has not, so nothing may cross yet, in either direction.
    delivered = len(sink.deliveries)
    seen[first_role].append(web.post(links[first_role], data={"answer": first_answer}).text)
    if first_answer == "no":
        sink.wait_for(delivered + 2)  # the other is told it won't go ahead; the referrer who
    other_role = "prospect" if first_role == "provider" else "provider"
    seen[other_role].append(web.get(links[other_role]).text)
    collect_mail()

    to = {role: without_ours(seen[role], tokens, own[role]) for role in seen}
    assert_nothing_of(prospect, to["provider"], "the provider")
    assert_nothing_of(provider, to["prospect"], "the prospect")
