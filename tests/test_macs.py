"""HMAC with the key set up once: the bytes `hmac` gives, for any key and message."""

from __future__ import annotations

import hmac

from hypothesis import example, given
from hypothesis import strategies as st

from service.macs import KeyedHash


@given(
    key=st.binary(max_size=200),
    message=st.binary(max_size=300),
    algorithm=st.sampled_from(["sha1", "sha256"]),
)
@example(key=b"k" * 65, message=b"a key past one block is hashed first", algorithm="sha1")
@example(key=b"k" * 64, message=b"a key of exactly one block is not", algorithm="sha256")
def test_a_keyed_hash_is_hmac(key, message, algorithm):
    keyed = KeyedHash(key, algorithm)
    assert keyed.digest(message) == hmac.digest(key, message, algorithm)
    assert keyed.hexdigest(message) == hmac.new(key, message, algorithm).hexdigest()
    # The states it keeps are copied, never used up: the same message, the same bytes.
    assert keyed.digest(message) == hmac.digest(key, message, algorithm)
