"""Whom a "never contact me again" link is for: their address while we hold it, else the keyed
hash erasure left in its place."""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import AddressGone, NotFound
from store import erasure, queries, suppressions
from store.records import is_placeholder


@dataclass(frozen=True)
class Addressee:
    """The keyed hash that stops them (the suppression list's), and their address while some
    row still holds it: None once every row naming them was erased."""

    address_hash: str
    address: str | None


def addressee_of_optout(subject: str) -> Addressee:
    """Whom an opt-out link is for.

    `subject` is what the link names: "m:<bounce key>" for a mail, "q:<ask key>" for a
    question's page. An erased row says who only by its hash, which is all a stop needs; the
    address, if another row still holds it, closes their open questions too. NotFound when
    the link names nothing we hold; AddressGone when it was erased before hashes were kept.
    """
    address = address_of_optout(subject)
    if not is_placeholder(address):
        return Addressee(suppressions.address_hash(address), address)
    kind, _, key = subject.partition(":")
    hashed = erasure.erased_hash_of_ask(key) if kind == "q" else erasure.erased_hash_of_mail(key)
    if hashed is None:
        raise AddressGone("the address this link was for is erased, and no hash of it kept")
    return Addressee(hashed, erasure.held_address_with_hash(hashed))


def address_of_optout(subject: str) -> str:
    """The address an opt-out link's row holds (a placeholder once erased); NotFound when it
    names nothing we hold."""
    kind, _, key = subject.partition(":")
    address = None
    if kind == "m":
        sent = queries.sent_mail_by_bounce_key(key)
        address = sent.recipients[0] if sent is not None and sent.recipients else None
    elif kind == "q":
        address = queries.email_of_ask(key)
    if address is None:
        raise NotFound("no such mail or question")
    return address
