"""Link tokens: signed, time-limited, one salt per purpose, keys that rotate."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.clock import FixedClock
from service.errors import BadToken, TokenExpired
from service.tokens import Purpose, Tokens

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
AGES = {Purpose.CONSENT: timedelta(days=14), Purpose.SURVEY: timedelta(days=30)}


def tokens(keys=("current-key",), clock=None) -> Tokens:
    return Tokens(keys, clock or FixedClock(START), AGES)


def test_a_token_reads_back_to_its_key():
    t = tokens()
    assert t.read(Purpose.CONSENT, t.make(Purpose.CONSENT, "ask-key-1")) == "ask-key-1"


def test_the_payload_is_the_opaque_key_and_nothing_else():
    token = tokens().make(Purpose.CONSENT, "ask-key-1")
    payload = token.split(".")[0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded == "ask-key-1"


def test_old_keys_still_verify_and_the_newest_signs():
    old = tokens(("old-key",)).make(Purpose.CONSENT, "k")
    rotated = tokens(("new-key", "old-key"))
    assert rotated.read(Purpose.CONSENT, old) == "k"
    fresh = rotated.make(Purpose.CONSENT, "k")
    assert tokens(("new-key",)).read(Purpose.CONSENT, fresh) == "k"
    with pytest.raises(BadToken):
        tokens(("old-key",)).read(Purpose.CONSENT, fresh)


def test_a_retired_key_no_longer_verifies():
    old = tokens(("old-key",)).make(Purpose.CONSENT, "k")
    with pytest.raises(BadToken):
        tokens(("new-key",)).read(Purpose.CONSENT, old)


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t[1:],
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "....",
    ],
    ids=["signature", "payload", "unsigned", "empty", "dots"],
)
def test_tampered_tokens_are_refused(damage):
    t = tokens()
    with pytest.raises(BadToken):
        t.read(Purpose.CONSENT, damage(t.make(Purpose.CONSENT, "k")))


def test_a_token_for_one_purpose_is_refused_for_another():
    t = tokens()
    with pytest.raises(BadToken):
        t.read(Purpose.CONSENT, t.make(Purpose.SURVEY, "k"))


def test_tokens_expire_after_their_purposes_age():
    clock = FixedClock(START)
    t = tokens(clock=clock)
    token = t.make(Purpose.CONSENT, "k")
    clock.at = START + timedelta(days=14)
    assert t.read(Purpose.CONSENT, token) == "k"
    clock.at = START + timedelta(days=14, seconds=2)
    with pytest.raises(TokenExpired):
        t.read(Purpose.CONSENT, token)


def test_tokens_are_itsdangerous_tokens_both_ways():
    """Links in mail already sent outlive an upgrade: a token as itsdangerous itself signs
    it reads here, and one made here reads in itsdangerous, key by key and purpose by purpose
    (with the same timestamp, the very same bytes)."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class AtStart(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(START.timestamp())

    ours = tokens(("new-key", "old-key"))
    for purpose in AGES:
        for key in ("new-key", "old-key"):
            plain = URLSafeTimedSerializer(key, salt=f"care-intro/{purpose.value}", signer=AtStart)
            theirs = plain.dumps("ask-key-1")
            assert ours.read(purpose, theirs) == "ask-key-1"
        newest = URLSafeTimedSerializer(
            "new-key", salt=f"care-intro/{purpose.value}", signer=AtStart
        )
        made = ours.make(purpose, "ask-key-1")
        assert made == newest.dumps("ask-key-1")
        assert newest.loads(made) == "ask-key-1"


@given(
    key=st.text(st.characters(exclude_categories=["Cs"]), max_size=80),
    seconds=st.integers(min_value=0, max_value=253_402_300_799),  # to the end of year 9999
    micro=st.integers(min_value=0, max_value=999_999),
    signing=st.sampled_from(["new-key", "ключ"]),
)
@example(key="ask-key-1", seconds=0, micro=0, signing="new-key")
@example(key='a "quoted" \\ key\n', seconds=255, micro=999_999, signing="new-key")
@example(key="schlüssel ☃", seconds=256, micro=500_000, signing="new-key")
def test_a_token_is_the_one_itsdangerous_writes_for_any_key_and_moment(
    key, seconds, micro, signing
):
    """Tokens are written here, not by itsdangerous's signer: byte for byte what its signer
    writes for the payload (uncompressed, as ours always are: random keys never shorten),
    whatever the key holds (quotes, non-ASCII), with either signing key, at any moment (a
    timestamp of any length); and itsdangerous reads it back."""
    from itsdangerous import Serializer, TimestampSigner, URLSafeTimedSerializer
    from itsdangerous.encoding import base64_encode

    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(moment.timestamp())  # as itsdangerous does with time.time()

    ours = Tokens((signing, "older-key"), FixedClock(moment), AGES)
    for purpose in AGES:
        theirs = URLSafeTimedSerializer(signing, salt=f"care-intro/{purpose.value}", signer=Then)
        made = ours.make(purpose, key)
        payload = base64_encode(Serializer.dump_payload(theirs, key))
        assert made == theirs.make_signer().sign(payload).decode("ascii")
        assert theirs.loads(made) == key
