"""Which of our addresses a recipient is: requests, answers to one question, bounces of one mail."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import ids
from service.reading.routing import Destination, Route, bounce_address, reply_address, route
from tests.conftest import make_settings

KEY = "k7q3xzm2p4wsr6tb"


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path, "sqlite:///unused.db")


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("refer@intro.example.org", Destination(Route.REQUEST)),
        ("Refer@Intro.Example.Org", Destination(Route.REQUEST)),
        (f"refer+{KEY}@intro.example.org", Destination(Route.REPLY, KEY)),
        (f"refer+{KEY.upper()}@intro.example.org", Destination(Route.REPLY, KEY)),
        (f"refer+b-{KEY}@intro.example.org", Destination(Route.BOUNCE, KEY)),
        ("refer+nonsense@intro.example.org", None),
        (f"refer+b-{KEY}x@intro.example.org", None),
        ("someone@intro.example.org", None),
        (f"refer+{KEY}@elsewhere.example", None),
        ("refer@intro.example.org.evil.example", None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_what_an_address_of_ours_means(settings, recipient, expected):
    assert route(recipient, settings) == expected


def test_the_addresses_we_make_route_back_to_their_key(settings):
    assert route(reply_address(settings, KEY), settings) == Destination(Route.REPLY, KEY)
    assert route(bounce_address(settings, KEY), settings) == Destination(Route.BOUNCE, KEY)


def test_every_key_we_make_routes_back_and_none_repeats(settings):
    """Keys are drawn at random: a thousand of them are a thousand addresses of ours, each
    leading back to its own key, and together they use the whole alphabet."""
    keys = [ids.address_key() for _ in range(1_000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert route(reply_address(settings, key), settings) == Destination(Route.REPLY, key)
        assert route(bounce_address(settings, key), settings) == Destination(Route.BOUNCE, key)
    # 16,000 letters drawn from 32: one left out would be a broken table, not chance.
    assert set("".join(keys)) == set("abcdefghijklmnopqrstuvwxyz234567")
