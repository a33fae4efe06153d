"""What the store holds about one address: the referrals that name it and the mail sent to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import peewee

from store.models import OutboxMail, Party, Referral


@dataclass(frozen=True)
class HeldMail:
    message_id: str
    purpose: str
    created_at: datetime
    sent_at: datetime | None
    state: str
    raw: bytes


def referral_ids_naming(address: str) -> list[int]:
    """Referrals where the address is the referrer or a party, oldest first."""
    address = address.strip().lower()
    as_referrer = Referral.select(Referral.id).where(Referral.referrer_email == address)
    # Addresses are kept as written, and a person writes theirs in any case; LIKE would
    # read an address's "_" as a wildcard and find someone else's.
    as_party = Party.select(Party.referral).where(peewee.fn.LOWER(Party.email) == address)
    ids = {r for (r,) in as_referrer.tuples()} | {r for (r,) in as_party.tuples()}
    return sorted(ids)


def mails_to(address: str) -> list[HeldMail]:
    """The outbound mails still held that went (or will go) to the address, oldest first."""
    address = address.strip().lower()
    rows = (
        OutboxMail.select(
            OutboxMail.message_id,
            OutboxMail.purpose,
            OutboxMail.created_at,
            OutboxMail.sent_at,
            OutboxMail.state,
            OutboxMail.raw,
            OutboxMail.recipients,
        )
        .where(OutboxMail.recipients.contains(address))
        .order_by(OutboxMail.id)
    )
    # `contains` finds substrings too (ann@x in joann@x): only an exact recipient counts.
    return [
        HeldMail(r.message_id, r.purpose, r.created_at, r.sent_at, r.state, bytes(r.raw))
        for r in rows
        if address in {x.strip().lower() for x in r.recipients.split("\n")}
    ]
