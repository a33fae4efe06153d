"""Configuration: the documented defaults, the TOML file, and environment overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import Settings, as_toml, from_mapping, load

DEFAULTS_FILE = Path(__file__).parent.parent / "config" / "care-intro.toml"


def test_the_commented_defaults_file_says_exactly_the_built_in_defaults():
    data = tomllib.loads(DEFAULTS_FILE.read_text())
    assert from_mapping(data, {}) == Settings()


def test_environment_overrides_every_kind_of_key():
    settings = from_mapping(
        {"inbound": {"port": 2525}},
        {
            "CARE_INTRO_INBOUND_PORT": "2626",
            "CARE_INTRO_DATABASE_URL": "postgresql://care@db:5432/care",
            "CARE_INTRO_SECURITY_ALLOWED_REFERRERS": "ada@referrer.example, *@partners.example",
            "CARE_INTRO_OUTBOUND_STARTTLS": "true",
            "CARE_INTRO_TIMING_FOLLOW_UP_DAYS": "0.5",
        },
    )
    assert settings.inbound.port == 2626
    assert settings.database.url == "postgresql://care@db:5432/care"
    assert settings.security.allowed_referrers == ("ada@referrer.example", "*@partners.example")
    assert settings.outbound.starttls is True
    assert settings.timing.follow_up_days == 0.5


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"inbound": {"prot": 25}}, {}, "unknown configuration key: inbound.prot"),
        ({"smtp": {}}, {}, "unknown configuration section: smtp"),
        ({"inbound": {"port": "25"}}, {}, "inbound.port must be a whole number"),
        ({"security": {"allowed_referrers": "ada@x.example"}}, {}, "must be a list of strings"),
        ({}, {"CARE_INTRO_INBOUND_PORT": "twenty-five"}, "must be a number"),
        ({"outbound": {"transport": "carrier-pigeon"}}, {}, 'must be "maildir" or "smtp"'),
        ({"timing": {"consent_expiry_days": 0}}, {}, "must be more than 0"),
        ({"timing": {"follow_up_days": float("inf")}}, {}, "follow_up_days must be more than 0"),
        ({}, {"CARE_INTRO_TIMING_SURVEY_OPEN_DAYS": "nan"}, "survey_open_days must be more"),
        ({"timing": {"reminder_after_days": 1e6}}, {}, "at most 3650"),
        ({"database": {"url": "mysql://x"}}, {}, "database.url must start with"),
        ({"service": {"timezone": "Mars/Olympus"}}, {}, "service.timezone must be a time zone"),
        ({"digest": {"weekday": "funday"}}, {}, "digest.weekday must be one of monday"),
        ({}, {"CARE_INTRO_DIGEST_HOUR": "24"}, "digest.hour must be between 0 and 23"),
        ({"timing": {"follow_up_again_times": 11}}, {}, "follow_up_again_times must be between"),
        ({"inbound": {"max_header_bytes": 100}}, {}, "inbound.max_header_bytes must be at least"),
    ],
    ids=[
        "typo",
        "section",
        "type",
        "list",
        "env-type",
        "transport",
        "zero-days",
        "infinite-days",
        "nan-days",
        "too-many-days",
        "database",
        "timezone",
        "weekday",
        "hour",
        "asked-again",
        "header-cap",
    ],
)
def test_mistakes_are_named_clearly(data, env, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(data, env)


def test_the_shipped_file_states_every_default():
    shipped = load("config/care-intro.toml", {})
    assert shipped == from_mapping({}, {})


def test_config_comes_from_the_flag_then_the_environment(tmp_path):
    first = tmp_path / "first.toml"
    first.write_text('[service]\ndomain = "first.example"\n')
    second = tmp_path / "second.toml"
    second.write_text('[service]\ndomain = "second.example"\n')
    env = {"CARE_INTRO_CONFIG": str(second)}
    assert load(str(first), env).service.domain == "first.example"
    assert load(None, env).service.domain == "second.example"


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load(str(tmp_path / "missing.toml"), {})


def test_a_broken_file_names_the_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[service\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load(str(broken), {})


def test_settings_written_as_toml_read_back_the_same():
    """What a harness writes for a `serve` it starts is what that `serve` will run with,
    quotes, backslashes, lists and all."""
    settings = (
        Settings()
        .replace("service", domain="intro.example.org", sender_name='Ada "the" \\ Referrer')
        .replace("security", allowed_referrers=("a@x.example", "b@y.example"))
        .replace("timing", consent_expiry_days=9)
    )
    assert from_mapping(tomllib.loads(as_toml(settings)), {}) == settings
