"""The queries that erase a person, and those that let stored mail and people go after a while.

What is erased is overwritten in place, not deleted: a referral, its outcome and its events
stay countable for the report, only who it was about goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import peewee

from service.model import InboundState, OutboxState
from store.marks import may_become
from store.models import (
    ConsentText,
    InboundMessage,
    OutboxMail,
    Party,
    Referral,
    Retention,
    Survey,
    database,
)
from store.records import PLACEHOLDER_DOMAIN, PLACEHOLDER_PREFIX
from store.suppressions import address_hash


@dataclass
class Erased:
    """How many stored things lost what identified someone, by kind."""

    parties: int = 0
    inbound_mails: int = 0
    sent_mails: int = 0
    dropped_mails: int = 0
    survey_comments: int = 0
    consent_texts: int = 0


def placeholder(party_id: int) -> str:
    return f"{PLACEHOLDER_PREFIX}{party_id}@{PLACEHOLDER_DOMAIN}"


def parties_of(address: str) -> list[tuple[int, int]]:
    """(party id, referral id) of every party row with this address."""
    rows = Party.select(Party.id, Party.referral).where(Party.email == address.strip().lower())
    return list(rows.tuples())


def erase_parties(party_ids: Sequence[int], now: datetime, address: str | None = None) -> Erased:
    """Overwrite everything that names these parties, in the caller's transaction: with
    `address` (all of one person's parties), also every mail from or to it anywhere; without,
    only what belongs to these parties' referrals. Mail still waiting to go to others is left
    to go, and retention empties it once it went."""
    done = Erased()
    if not party_ids:
        return done
    ids = list(party_ids)
    rows = list(Party.select(Party.referral, Party.email).where(Party.id.in_(ids)).tuples())
    referral_ids = [r for r, _ in rows]
    # One placeholder for the person, so the report still counts them as one. Who is
    # forgotten already keeps their placeholder: another instance may have forgotten them
    # since these ids were read, under a placeholder of its own.
    email = placeholder(min(ids))
    # Each address leaves its keyed hash behind (one address, as both callers pass one
    # person, but each row keeps its own): an opt-out link in an old mail outlives the
    # address it went to, and must still stop that person.
    for old in {e for _, e in rows if not e.startswith(PLACEHOLDER_PREFIX)}:
        done.parties += (
            Party.update(
                email=email,
                erased_hash=address_hash(old),
                name="",
                phone="",
                booking="",
                best_time="",
                decline_text="",
            )
            .where(Party.id.in_(ids) & (Party.email == old))
            .execute()
        )
    done.consent_texts = _erase_consent_texts(ids)
    done.survey_comments = (
        Survey.update(comment="").where(Survey.party.in_(ids) & (Survey.comment != "")).execute()
    )
    done.inbound_mails = _erase_inbound(referral_ids, address, email)
    done.sent_mails, done.dropped_mails = _erase_outbox(referral_ids, address, email, now)
    # What went to them by their question or survey names them as its recipient.
    sent_to_them = (
        OutboxMail.party.in_(ids)
        & (OutboxMail.state != OutboxState.PENDING)
        & ~OutboxMail.recipients.startswith(PLACEHOLDER_PREFIX)
    )
    for (recipients,) in (
        OutboxMail.select(OutboxMail.recipients).where(sent_to_them).distinct().tuples()
    ):
        OutboxMail.update(recipients=email, erased_hash=_first_hash(recipients)).where(
            sent_to_them & (OutboxMail.recipients == recipients)
        ).execute()
    return done


def _first_hash(recipients: str) -> str:
    """The keyed hash of whom an opt-out link in this mail is for: its first recipient."""
    return address_hash(recipients.split("\n", 1)[0])


def _erase_consent_texts(party_ids: list[int]) -> int:
    """The text each of them was shown greets them by name; the hash stays on their row, so
    that they agreed, when and how is still on record, without who."""
    hashes = [
        h
        for (h,) in Party.select(Party.consent_hash)
        .where(Party.id.in_(party_ids) & Party.consent_hash.is_null(False))
        .tuples()
    ]
    if not hashes:
        return 0
    shared = Party.select(Party.consent_hash).where(
        Party.consent_hash.in_(hashes) & Party.id.not_in(party_ids)
    )
    return (
        ConsentText.delete()
        .where(ConsentText.text_hash.in_(hashes) & ConsentText.text_hash.not_in(shared))
        .execute()
    )


def _erase_inbound(referral_ids: Sequence[int], address: str | None, email: str) -> int:
    """The requests that named them, and whatever they sent us themselves (mail not yet
    handled is left to intake, which must not lose it)."""
    requests = Referral.select(Referral.inbound).where(
        Referral.id.in_(list(referral_ids)) & Referral.inbound.is_null(False)
    )
    handled = InboundMessage.state != InboundState.NEW
    which = InboundMessage.id.in_(requests)
    if address is not None:
        theirs = InboundMessage.envelope_from == address.strip().lower()
        InboundMessage.update(envelope_from=email).where(theirs & handled).execute()
        # Only with an address: without, nothing came from the placeholder just made, and
        # asking would read every stored message for each person retention lets go of.
        which |= InboundMessage.envelope_from == email
    return (
        InboundMessage.update(raw=b"", retention=Retention.GONE)
        .where(which & handled & (InboundMessage.raw != b""))
        .execute()
    )


def _erase_outbox(
    referral_ids: Sequence[int], address: str | None, email: str, now: datetime
) -> tuple[int, int]:
    """Sent mails of their referrals lose their body; mail still waiting for them is dropped,
    and their referrals' mail still waiting for others loses its body once it went."""
    theirs = OutboxMail.referral.in_(list(referral_ids))
    pending = OutboxMail.state == OutboxState.PENDING
    # First: a mail that goes out between this and the erasing below is then one or the
    # other, never neither.
    OutboxMail.update(retention=Retention.ONCE_SENT).where(
        theirs & pending & may_become(OutboxMail.retention, Retention.ONCE_SENT)
    ).execute()
    if address is None:
        return _erase_sent(theirs), 0
    address = address.strip().lower()
    mine = OutboxMail.recipients == address
    kept = address_hash(address)
    dropped = (
        OutboxMail.update(
            raw=b"",
            retention=Retention.GONE,
            recipients=email,
            erased_hash=kept,
            state=OutboxState.FAILED,
            settled_at=now,
            last_error="erased before it was sent",
        )
        .where(mine & pending)
        .execute()
    )
    erased = _erase_sent(theirs | mine)
    OutboxMail.update(recipients=email, erased_hash=kept).where(mine).execute()
    return erased, dropped


def _erase_sent(which: peewee.Expression) -> int:
    return (
        OutboxMail.update(raw=b"", retention=Retention.GONE)
        .where(which & (OutboxMail.state != OutboxState.PENDING) & (OutboxMail.raw != b""))
        .execute()
    )


def flush_files() -> None:
    """Let erased bytes leave the files: SQLite overwrites freed pages (secure_delete is on
    for every connection) and the write-ahead log is folded into the store and truncated."""
    if not isinstance(database.obj, peewee.SqliteDatabase):
        return
    database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def erased_hash_of_ask(ask_key: str) -> str | None:
    """The keyed hash left where the address a question went to was erased."""
    return Party.select(Party.erased_hash).where(Party.ask_key == ask_key).scalar()


def erased_hash_of_mail(bounce_key: str) -> str | None:
    """The keyed hash left where the recipient of a sent mail was erased."""
    found = OutboxMail.select(OutboxMail.erased_hash).where(
        OutboxMail.bounce_key == bounce_key.lower()
    )
    return found.scalar()


def held_address_with_hash(hashed: str) -> str | None:
    """The address we still hold, in some party row not yet erased, whose keyed hash this is.

    A keyed hash cannot be looked up, only compared, so this reads every address still held:
    a cost paid only when someone opts out through the mail of a referral already erased,
    to close what is still open for them and forget them as they asked."""
    held = (
        Party.select(Party.email)
        .where(~Party.email.startswith(PLACEHOLDER_PREFIX))
        .distinct()
        .tuples()
        .iterator()
    )
    return next((email for (email,) in held if address_hash(email) == hashed), None)
