"""Signed, time-limited link tokens: one salt per purpose, a key list for rotation."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from binascii import b2a_base64
from collections.abc import Mapping, Sequence
from datetime import timedelta

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import int_to_bytes
from itsdangerous.signer import HMACAlgorithm

from service.clock import Clock
from service.errors import BadToken, TokenExpired
from service.macs import KeyedHash


class Purpose(enum.StrEnum):
    CONSENT = "consent"
    SURVEY = "survey"
    OPTOUT = "optout"
    REPORT = "report"
    DIGEST = "digest"


class _OneCallHMAC(HMACAlgorithm):
    """HMAC-SHA1, the MAC itsdangerous checks a token with, computed in OpenSSL in one call.

    itsdangerous hands `hmac` its digest as a Python function, which `hmac` can only run
    through its pure-Python construction: reading a token cost three times what it does
    here. Same algorithm, same bytes.
    """

    def __init__(self) -> None:
        super().__init__(hashlib.sha1)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha1")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """itsdangerous's `base64_encode` (URL-safe, unpadded) in one call to C: its own goes
    through `want_bytes` and base64's Python wrapper, twice the time, three times a token."""
    return b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _stamp(clock: Clock) -> int:
    # The service's clock, not itsdangerous's time.time(): `tick --at` and the tests see
    # tokens made and aged the way the store does. One rule for making and for reading.
    return int(clock.now().timestamp())


class Tokens:
    """Makes and reads tokens whose payload is an opaque key, never personal data."""

    def __init__(
        self, secret_keys: Sequence[str], clock: Clock, max_age: Mapping[Purpose, timedelta]
    ) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self._max_age = {p: int(age.total_seconds()) for p, age in max_age.items()}

        class _ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return _stamp(clock)

        # Our configuration lists keys newest first; itsdangerous signs with the last.
        keys = list(reversed(list(secret_keys)))
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                keys,
                salt=f"care-intro/{purpose.value}",
                signer=_ClockSigner,
                signer_kwargs={"algorithm": _OneCallHMAC()},
            )
            for purpose in Purpose
        }
        self.clock = clock
        self.keys = tuple(secret_keys)  # newest first, as configured
        self._macs = {
            purpose: KeyedHash(s.make_signer().derive_key(), "sha1")
            for purpose, s in self._serializers.items()
        }

    def make(self, purpose: Purpose, key: str) -> str:
        """The token itsdangerous's signer writes for `key` (payload, timestamp, signature),
        put together here: through the signer, a token cost a tenth of a tick's letter.

        The payload is never compressed, as `dumps` would where zlib shortens it: it never
        shortens a random key, and trying cost more than the signature; `loads` reads both.
        """
        payload = _b64(json.dumps(key, ensure_ascii=False).encode())
        stamp = _stamp(self.clock)
        value = payload + b"." + _b64(int_to_bytes(stamp))
        return (value + b"." + _b64(self._macs[purpose].digest(value))).decode("ascii")

    def read(self, purpose: Purpose, token: str) -> str:
        try:
            key = self._serializers[purpose].loads(token, max_age=self._max_age[purpose])
        except SignatureExpired as exc:
            raise TokenExpired(f"{purpose.value} token expired") from exc
        except BadData as exc:
            raise BadToken(f"not a valid {purpose.value} token") from exc
        if not isinstance(key, str):
            raise BadToken(f"not a valid {purpose.value} token")
        return key
