"""Load the configuration: defaults, then one TOML file, then CARE_INTRO_* variables."""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.clock import zone
from service.errors import ConfigError

DEFAULT_PATH = Path("config/care-intro.toml")
ENV_PATH = "CARE_INTRO_CONFIG"
ENV_PREFIX = "CARE_INTRO_"
# Left to test suites (CARE_INTRO_TEST_DATABASE_URL): never a configuration key.
ENV_RESERVED = "CARE_INTRO_TEST_"
LANGUAGES = ("en", "de", "fr", "ro", "id", "ar")
TLS_MODES = ("none", "starttls", "implicit")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_REQUIRED_PORTS = ("inbound", "web", "outbound")
# An address or `*@domain`, plainly: the readers hold the full address rules, and the
# configuration is checked before any of them is loaded.
_REFERRER_PATTERN = re.compile(
    r"^(?:\*|[^@\s\"(),:;<>\[\\\]]+)@(?:[^@\s.]+(?:\.[^@\s.]+)+|localhost)$"
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class ServiceSettings:
    domain: str = "localhost"
    referral_address: str = "refer"
    public_url: str = "http://127.0.0.1:8080"
    sender_name: str = "Introductions"
    default_language: str = "en"
    data_dir: str = "data"
    timezone: str = "UTC"


@dataclass(frozen=True)
class InboundSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    max_message_bytes: int = 10485760
    max_header_bytes: int = 65536
    protocol: str = "smtp"


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class OutboundSettings:
    transport: str = "maildir"
    maildir: str = "data/outbox"
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"
    # Deprecated: `true` reads as tls = "starttls" (files written before `tls` existed).
    starttls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    username: str = ""
    password: str = ""
    daily_limit_per_address: int = 5
    daily_reports_per_referrer: int = 3
    connections: int = 8
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key_file: str = ""

    @property
    def tls_mode(self) -> str:
        """How to reach the relay: "none", "starttls" or "implicit" (TLS from the first byte)."""
        return "starttls" if self.tls == "none" and self.starttls else self.tls


@dataclass(frozen=True)
class PolicySettings:
    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///data/care-intro.db"
    quota_mb: int = 0


@dataclass(frozen=True)
class SecuritySettings:
    secret_keys: tuple[str, ...] = ()
    allowed_referrers: tuple[str, ...] = ()
    trusted_authserv_id: str = ""


@dataclass(frozen=True)
class TimingSettings:
    reminder_after_days: float = 4
    consent_expiry_days: float = 14
    follow_up_days: float = 30
    follow_up_again_days: float = 30
    follow_up_again_times: int = 2
    survey_open_days: float = 14


@dataclass(frozen=True)
class DigestSettings:
    enabled: bool = True
    weekday: str = "monday"
    hour: int = 8


@dataclass(frozen=True)
class HealthSettings:
    max_outbox_wait_minutes: float = 30


@dataclass(frozen=True)
class MetricsSettings:
    host: str = "127.0.0.1"
    port: int = 0  # 0: /metrics is served on the web port


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True)
class PrivacySettings:
    # Named on /privacy: who decides what happens to the data, and whom to ask about it.
    controller: str = ""
    contact: str = ""
    keep_mail_days: int = 30
    keep_people_days: int = 730


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    service: ServiceSettings = field(default_factory=ServiceSettings)
    inbound: InboundSettings = field(default_factory=InboundSettings)
    web: WebSettings = field(default_factory=WebSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    timing: TimingSettings = field(default_factory=TimingSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    @property
    def referral_mailbox(self) -> str:
        return f"{self.service.referral_address}@{self.service.domain}"

    def replace(self, section: str, **values: Any) -> Settings:
        """A copy with some keys of one section changed (for tests and the demo)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})


def config_path(explicit: str | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """Which file to read, and whether the user named it (then it must exist)."""
    if explicit:
        return Path(explicit), True
    if env.get(ENV_PATH):
        return Path(env[ENV_PATH]), True
    return DEFAULT_PATH, False


def load(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings the way every command does: --config, $CARE_INTRO_CONFIG, default."""
    settings, problems = read(explicit, env)
    if problems:
        raise ConfigError(*problems)
    assert settings is not None
    return settings


def read(
    explicit: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[Settings | None, list[str]]:
    """The settings and every problem found in them; a key with a problem keeps its default.

    None only when there is no file to read: then nothing else can be said.
    """
    env = os.environ if env is None else env
    path, named = config_path(explicit, env)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return None, [f"cannot read configuration {path}: {exc}"]
    elif named:
        return None, [f"configuration file not found: {path}"]
    return parse(data, env, source=str(path))


def from_mapping(data: Mapping[str, Any], env: Mapping[str, str], source: str = "") -> Settings:
    settings, problems = parse(data, env, source)
    if problems:
        raise ConfigError(*problems)
    return settings


def parse(
    data: Mapping[str, Any], env: Mapping[str, str], source: str = ""
) -> tuple[Settings, list[str]]:
    where = f" in {source}" if source else ""
    problems: list[str] = []
    sections: dict[str, Any] = {}
    known_env: set[str] = set()
    for section in dataclasses.fields(Settings):
        section_cls = _section_class(section.name)
        raw_section = data.get(section.name, {})
        if not isinstance(raw_section, Mapping):
            problems.append(f"[{section.name}]{where} must be a table of keys")
            raw_section = {}
        given = dict(raw_section)
        hints = typing.get_type_hints(section_cls)
        values: dict[str, Any] = {}
        for key in dataclasses.fields(section_cls):
            env_name = f"{ENV_PREFIX}{section.name}_{key.name}".upper()
            known_env.add(env_name)
            dotted = f"{section.name}.{key.name}"
            try:
                if env_name in env:
                    values[key.name] = _from_env(env[env_name], hints[key.name], env_name)
                elif key.name in given:
                    values[key.name] = _from_toml(given[key.name], hints[key.name], dotted)
            except ConfigError as exc:
                problems.append(str(exc))
            given.pop(key.name, None)
        if given:
            unknown = ", ".join(f"{section.name}.{k}" for k in sorted(given))
            problems.append(f"unknown configuration key{where}: {unknown}")
        sections[section.name] = section_cls(**values)
    unknown_sections = sorted(set(data) - set(sections))
    if unknown_sections:
        problems.append(f"unknown configuration section{where}: {', '.join(unknown_sections)}")
    problems.extend(unknown_variables(env, known_env))
    settings = Settings(**sections)
    return settings, problems + problems_of(settings)


def as_toml(settings: Settings) -> str:
    """The settings as a configuration file holds them, every section and key: what `read`
    gives back as the same settings (a harness hands them to a `serve` it starts)."""
    lines = []
    for section, values in vars(settings).items():
        if not hasattr(values, "__dataclass_fields__"):
            continue
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in vars(values).items()]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def unknown_variables(env: Mapping[str, str], known: set[str]) -> list[str]:
    """A typo in an override would otherwise leave the value it meant to change in place."""
    return [
        f"environment variable {name} names no configuration key"
        for name in sorted(env)
        if name.startswith(ENV_PREFIX)
        and name not in known
        and name != ENV_PATH
        and not name.startswith(ENV_RESERVED)
    ]


def validate(settings: Settings) -> None:
    problems = problems_of(settings)
    if problems:
        raise ConfigError(*problems)


def warnings_of(settings: Settings) -> list[str]:
    """What works but falls short of what people are owed; said, never refused."""
    warnings = []
    if not settings.privacy.controller.strip():
        # The notice and /privacy must name who is responsible (GDPR Art. 14(1)(a)).
        warnings.append("privacy.controller is empty: /privacy names nobody as responsible")
    return warnings


MOST_DAYS = 3650


def problems_of(settings: Settings) -> list[str]:
    """Every value that is well typed but cannot work, one line each."""
    problems: list[str] = []
    say = problems.append
    if settings.outbound.transport not in ("maildir", "smtp"):
        say('outbound.transport must be "maildir" or "smtp"')
    if settings.inbound.protocol not in ("smtp", "lmtp"):
        say('inbound.protocol must be "smtp" or "lmtp"')
    if not 1 <= settings.outbound.connections <= 100:
        say("outbound.connections must be between 1 and 100")
    if settings.outbound.daily_limit_per_address < 1:
        say("outbound.daily_limit_per_address must be 1 or more")
    if settings.outbound.daily_reports_per_referrer < 1:
        say("outbound.daily_reports_per_referrer must be 1 or more")
    problems.extend(_outbound_security_problems(settings.outbound))
    if settings.database.quota_mb < 0:
        say("database.quota_mb must be 0 (no limit) or more")
    if settings.service.default_language not in LANGUAGES:
        say(f"service.default_language must be one of {', '.join(LANGUAGES)}")
    problems.extend(_database_url_problems(settings.database.url))
    if not _is_web_url(settings.service.public_url):
        say(
            "service.public_url must be an http:// or https:// URL with a host, "
            f"not {settings.service.public_url!r}"
        )
    problems.extend(_port_problems(settings))
    for name in (
        "reminder_after_days",
        "consent_expiry_days",
        "follow_up_days",
        "follow_up_again_days",
        "survey_open_days",
    ):
        # Ten years is past any use and far within what a date can be moved by: a larger
        # value (or TOML's inf and nan) would stop the step that adds it, not just be odd.
        if not 0 < getattr(settings.timing, name) <= MOST_DAYS:
            say(f"timing.{name} must be more than 0 and at most {MOST_DAYS}")
    if settings.timing.reminder_after_days >= settings.timing.consent_expiry_days:
        say("timing.reminder_after_days must be less than timing.consent_expiry_days")
    if not 0 <= settings.timing.follow_up_again_times <= 10:
        say("timing.follow_up_again_times must be between 0 and 10")
    if settings.inbound.max_message_bytes < 1:
        say("inbound.max_message_bytes must be more than 0")
    elif not 1024 <= settings.inbound.max_header_bytes <= settings.inbound.max_message_bytes:
        say("inbound.max_header_bytes must be at least 1024 and at most inbound.max_message_bytes")
    if zone(settings.service.timezone) is None:
        say(
            f"service.timezone must be a time zone name such as Europe/Berlin, "
            f"not {settings.service.timezone!r}"
        )
    if settings.digest.weekday.lower() not in WEEKDAYS:
        say(f"digest.weekday must be one of {', '.join(WEEKDAYS)}")
    if not 0 <= settings.digest.hour <= 23:
        say("digest.hour must be between 0 and 23")
    for pattern in settings.security.allowed_referrers:
        if not _REFERRER_PATTERN.match(pattern.strip()):
            say(
                f"security.allowed_referrers: {pattern!r} is neither an address "
                "nor a *@domain pattern"
            )
    if settings.health.max_outbox_wait_minutes <= 0:
        say("health.max_outbox_wait_minutes must be more than 0")
    if settings.logging.level.upper() not in LOG_LEVELS:
        say(f"logging.level must be one of {', '.join(LOG_LEVELS)}")
    if settings.privacy.keep_mail_days <= 0 or settings.privacy.keep_people_days <= 0:
        say("privacy.keep_mail_days and privacy.keep_people_days must be more than 0")
    if settings.logging.format not in LOG_FORMATS:
        say('logging.format must be "text" or "json"')
    return problems


def _database_url_problems(url: str) -> list[str]:
    if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        return ["database.url must start with sqlite:// or postgresql://"]
    # Found, not imported: only the store speaks to the driver.
    if url.startswith("postgres") and importlib.util.find_spec("psycopg2") is None:
        return [
            "database.url names PostgreSQL, but its driver is not installed: "
            "pip install 'care-intro[postgresql]'"
        ]
    return []


def _is_web_url(url: str) -> bool:
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def _port_problems(settings: Settings) -> list[str]:
    """Every `port` key: those we listen on or send to need one; others take 0 for off."""
    problems = []
    for section in dataclasses.fields(Settings):
        values = getattr(settings, section.name)
        port = getattr(values, "port", None)
        if port is None:
            continue
        lowest = 1 if section.name in _REQUIRED_PORTS else 0
        if not lowest <= port <= 65535:
            off = "" if lowest else " (0 for off)"
            problems.append(
                f"{section.name}.port must be between {lowest} and 65535{off}, not {port}"
            )
    return problems


def _on_this_host(host: str) -> bool:
    """Whether `host` names this machine's loopback, where nothing crosses a network."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _outbound_security_problems(out: OutboundSettings) -> list[str]:
    problems: list[str] = []
    say = problems.append
    if out.tls not in TLS_MODES:
        say(f"outbound.tls must be one of {', '.join(TLS_MODES)}, not {out.tls!r}")
    if out.starttls and out.tls == "implicit":
        say(
            f'outbound.starttls = true contradicts outbound.tls = "{out.tls}"; '
            "drop starttls (deprecated), tls says it all"
        )
    if (
        out.transport == "smtp"
        and out.username
        and out.tls_mode == "none"
        and not _on_this_host(out.host)
    ):
        # As Postfix's smtp_sasl_security_options = noplaintext: PLAIN and LOGIN carry the
        # password itself, readable by anyone on the way to a relay elsewhere.
        say(
            f'outbound.username is set and outbound.tls is "none": the password would cross '
            f'the network to {out.host} in the clear; set tls = "starttls" or "implicit"'
        )
    dkim = {
        "dkim_domain": out.dkim_domain,
        "dkim_selector": out.dkim_selector,
        "dkim_key_file": out.dkim_key_file,
    }
    if any(dkim.values()) and not all(dkim.values()):
        missing = ", ".join(f"outbound.{k}" for k, v in dkim.items() if not v)
        say(f"DKIM signing needs {missing} as well")
    if out.dkim_selector and not _DNS_LABEL.fullmatch(out.dkim_selector):
        say("outbound.dkim_selector must be a DNS label such as mail2027")
    if out.dkim_domain and not all(_DNS_LABEL.fullmatch(p) for p in out.dkim_domain.split(".")):
        say("outbound.dkim_domain must be a domain name such as intro.example.org")
    return problems


def _section_class(name: str) -> type:
    return typing.get_type_hints(Settings)[name]


def _from_toml(value: Any, kind: Any, name: str) -> Any:
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings")
        return tuple(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def _from_env(raw: str, kind: Any, name: str) -> Any:
    if typing.get_origin(kind) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    try:
        if kind is float:
            return float(raw)
        if kind is int:
            return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    return raw
