"""Fresh random identifiers: the one place besides the clock where the service is not pure."""

from __future__ import annotations

import secrets

# Crockford's alphabet: no I, L, O or U, so a reference read over the phone survives.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Each random byte to one of base32's lower-case letters by its low five bits: 256 is a
# multiple of 32, so every letter is as likely as any other, and sixteen bytes carry 80 bits.
_BASE32_LOWER = bytes(b"abcdefghijklmnopqrstuvwxyz234567"[b & 31] for b in range(256))
_ADDRESS_KEY_LENGTH = 16


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
    """The plus part of one of our addresses: lower case base32, because MTAs may fold case.

    A table lookup in C per byte: `base64.b32encode` is written in Python, and every mail
    takes a key.
    """
    return secrets.token_bytes(_ADDRESS_KEY_LENGTH).translate(_BASE32_LOWER).decode("ascii")


def secret_key() -> str:
    return secrets.token_urlsafe(32)
