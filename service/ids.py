"""Fresh random identifiers: the one place besides the clock where the service is not pure."""

from __future__ import annotations

import base64
import secrets

# Crockford's alphabet: no I, L, O or U, so a reference read over the phone survives.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def message_id(domain: str) -> str:
    """Random, so two mails of one referral share nothing a recipient could compare."""
    return f"<{secrets.token_urlsafe(18)}@{domain}>"


def reference() -> str:
    """A referral's reference for people: R-XXXX-XXXX."""
    chars = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
    return f"R-{chars[:4]}-{chars[4:]}"


def ask_key() -> str:
    """The opaque key a consent link carries instead of anything about a person."""
    return secrets.token_urlsafe(16)


def address_key() -> str:
    """The plus part of one of our addresses: lower case base32, because MTAs may fold case."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def secret_key() -> str:
    return secrets.token_urlsafe(32)
