"""Who asked never to hear from us again, kept as keyed hashes and never as addresses.

The key lives in the store, not among the link keys: those rotate, and a rotation must not
forget who said stop. Several instances share the store, so they share the key too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import peewee

from store.db import database
from store.models import StoreKey, Suppression

_KEY_NAME = "suppression"


def address_hash(address: str) -> str:
    key = _key()
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def suppress(address: str, now: datetime) -> bool:
    """Remember that `address` said stop; False if it already had."""
    try:
        with database.atomic():
            Suppression.insert(address_hash=address_hash(address), created_at=now).execute()
    except peewee.IntegrityError:
        return False
    return True


def suppressed(addresses: list[str]) -> set[str]:
    """Those of `addresses` that said stop."""
    if not addresses:
        return set()
    hashes = {address_hash(a): a for a in addresses}
    found = Suppression.select(Suppression.address_hash).where(
        Suppression.address_hash.in_(list(hashes))
    )
    return {hashes[row.address_hash] for row in found}


def _key() -> bytes:
    row = StoreKey.get_or_none(StoreKey.name == _KEY_NAME)
    if row is None:
        # Two instances may race here: the unique name lets one win, and both read its key.
        StoreKey.insert(name=_KEY_NAME, value=secrets.token_hex(32)).on_conflict_ignore().execute()
        row = StoreKey.get(StoreKey.name == _KEY_NAME)
    return bytes.fromhex(row.value)
