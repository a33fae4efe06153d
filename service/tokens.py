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
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer
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


class _KeySerializer(URLSafeTimedSerializer):
    """Tokens as URLSafeTimedSerializer writes them, without its attempt to compress.

    Our payloads are short random keys that zlib never shortens, and trying cost more than
    the signature. `loads` reads compressed and plain payloads alike.
    """

    def dump_payload(self, obj: object) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class _OneCallHMAC(HMACAlgorithm):
    """HMAC-SHA1, the MAC itsdangerous signs with, computed in OpenSSL in one call.

    itsdangerous hands `hmac` its digest as a Python function, which `hmac` can only run
    through its pure-Python construction: a token cost three times what it does here. Same
    algorithm, same bytes: every token already sent still reads.
    """

    def __init__(self) -> None:
        super().__init__(hashlib.sha1)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha1")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """itsdangerous's `base64_encode`: URL-safe, unpadded."""
    return b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


class Tokens:
    """Makes and reads tokens whose payload is an opaque key, never personal data."""

    def __init__(
        self, secret_keys: Sequence[str], clock: Clock, max_age: Mapping[Purpose, timedelta]
    ) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self._max_age = {p: int(age.total_seconds()) for p, age in max_age.items()}

        class _ClockSigner(TimestampSigner):
            # itsdangerous reads time.time(); the service's clock decides instead, so that
            # `tick --at` and the tests see tokens age the way the store does.
            def get_timestamp(self) -> int:
                return int(clock.now().timestamp())

            def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
                # A hash of the salt and the key, both fixed: taken once per key, not per
                # token.
                derived = self._derived.get(secret_key)
                if derived is None:
                    derived = self._derived[secret_key] = super().derive_key(secret_key)
                return derived

            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, **kwargs)  # type: ignore[arg-type]
                self._derived: dict[str | bytes | None, bytes] = {}

        # Our configuration lists keys newest first; itsdangerous signs with the last.
        keys = list(reversed(list(secret_keys)))
        self._serializers = {
            purpose: _KeySerializer(
                keys,
                salt=f"care-intro/{purpose.value}",
                signer=_ClockSigner,
                signer_kwargs={"algorithm": _OneCallHMAC()},
            )
            for purpose in Purpose
        }
        self._clock = clock
        self._macs = {
            purpose: KeyedHash(s.make_signer().derive_key(), "sha1")
            for purpose, s in self._serializers.items()
        }

    def make(self, purpose: Purpose, key: str) -> str:
        """The token itsdangerous's `dumps` writes for `key` (payload, timestamp, signature),
        put together here: through its signer, a token cost a tenth of a tick's letter."""
        payload = _b64(json.dumps(key, ensure_ascii=False).encode())
        stamp = int(self._clock.now().timestamp())
        value = payload + b"." + _b64(stamp.to_bytes((stamp.bit_length() + 7) // 8, "big"))
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
