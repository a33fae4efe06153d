"""Who asked never to hear from us again, kept as keyed hashes and never as addresses.

The key lives in the store, not among the link keys: those rotate, and a rotation must not
forget who said stop. Several instances share the store, so they share the key too.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import peewee

from service.macs import KeyedHash
from store.compiled import CompiledIn
from store.models import StoreKey, Suppression, database

_KEY_NAME = "suppression"

# The key of the store this process is bound to, read once: it never changes once made,
# and every address hashed (each mail queued asks) used to read it again. Held beside the
# database it came from, so binding another store reads that store's key.
_known: tuple[peewee.Database, KeyedHash] | None = None


def address_hash(address: str) -> str:
    return _hasher().hexdigest(address.strip().lower().encode())


def suppress(address: str, now: datetime) -> bool:
    """Remember that `address` said stop; False if it already had."""
    return suppress_hash(address_hash(address), now)


def suppress_hash(hashed: str, now: datetime) -> bool:
    """Remember that the address with this keyed hash said stop (all an erased row still
    knows of it); False if it already had."""
    try:
        with database.atomic():
            Suppression.insert(address_hash=hashed, created_at=now).execute()
    except peewee.IntegrityError:
        return False
    return True


def suppressed(addresses: list[str]) -> set[str]:
    """Those of `addresses` that said stop."""
    if not addresses:
        return set()
    hashes = {address_hash(a): a for a in addresses}
    return {hashes[found] for (found,) in _AMONG.rows(hashes)}


# Every mail queued asks, about its few recipients: the SQL is built once per count.
_AMONG = CompiledIn((Suppression.address_hash,), Suppression.address_hash)


def ensure_key() -> None:
    """Make the store's key if it has none, in a commit of its own, and keep it: at bind,
    so that the process reads it once. A key seen only inside a transaction is not kept, as
    that transaction may be the one making it, and may yet roll back."""
    global _known
    with database.atomic():
        key = _stored_key()
    _known = (database.obj, _keyed(key))


def _hasher() -> KeyedHash:
    global _known
    bound = database.obj
    if _known is not None and _known[0] is bound:
        return _known[1]
    found = StoreKey.get_or_none(StoreKey.name == _KEY_NAME)
    hasher = _keyed(bytes.fromhex(found.value) if found is not None else _stored_key())
    if found is not None and not database.in_transaction():
        _known = (bound, hasher)
    return hasher


def _keyed(key: bytes) -> KeyedHash:
    # HMAC-SHA256: the hashes already stored were made so.
    return KeyedHash(key, "sha256")


def _stored_key() -> bytes:
    row = StoreKey.get_or_none(StoreKey.name == _KEY_NAME)
    if row is None:
        # Two instances may race here: the unique name lets one win, and both read its key.
        StoreKey.insert(name=_KEY_NAME, value=secrets.token_hex(32)).on_conflict_ignore().execute()
        row = StoreKey.get(StoreKey.name == _KEY_NAME)
    return bytes.fromhex(row.value)
