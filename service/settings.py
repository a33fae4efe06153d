"""Load the configuration: defaults, then one TOML file, then CARE_INTRO_* variables."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.clock import zone
from service.errors import ConfigError

DEFAULT_PATH = Path("config/care-intro.toml")
ENV_PATH = "CARE_INTRO_CONFIG"
ENV_PREFIX = "CARE_INTRO_"
LANGUAGES = ("en", "de", "fr", "ro", "id", "ar")
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
    starttls: bool = False
    username: str = ""
    password: str = ""
    daily_limit_per_address: int = 5
    connections: int = 4


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
    health: HealthSettings = field(default_factory=HealthSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

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
    env = os.environ if env is None else env
    path, named = config_path(explicit, env)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    elif named:
        raise ConfigError(f"configuration file not found: {path}")
    return from_mapping(data, env, source=str(path))


def from_mapping(data: Mapping[str, Any], env: Mapping[str, str], source: str = "") -> Settings:
    where = f" in {source}" if source else ""
    sections: dict[str, Any] = {}
    for section in dataclasses.fields(Settings):
        section_cls = _section_class(section.name)
        raw_section = data.get(section.name, {})
        if not isinstance(raw_section, Mapping):
            raise ConfigError(f"[{section.name}]{where} must be a table of keys")
        given = dict(raw_section)
        hints = typing.get_type_hints(section_cls)
        values: dict[str, Any] = {}
        for key in dataclasses.fields(section_cls):
            env_name = f"{ENV_PREFIX}{section.name}_{key.name}".upper()
            dotted = f"{section.name}.{key.name}"
            if env_name in env:
                values[key.name] = _from_env(env[env_name], hints[key.name], env_name)
            elif key.name in given:
                values[key.name] = _from_toml(given[key.name], hints[key.name], dotted)
            given.pop(key.name, None)
        if given:
            unknown = ", ".join(f"{section.name}.{k}" for k in sorted(given))
            raise ConfigError(f"unknown configuration key{where}: {unknown}")
        sections[section.name] = section_cls(**values)
    unknown_sections = sorted(set(data) - set(sections))
    if unknown_sections:
        raise ConfigError(f"unknown configuration section{where}: {', '.join(unknown_sections)}")
    settings = Settings(**sections)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    if settings.outbound.transport not in ("maildir", "smtp"):
        raise ConfigError('outbound.transport must be "maildir" or "smtp"')
    if not 1 <= settings.outbound.connections <= 100:
        raise ConfigError("outbound.connections must be between 1 and 100")
    if settings.database.quota_mb < 0:
        raise ConfigError("database.quota_mb must be 0 (no limit) or more")
    if settings.service.default_language not in LANGUAGES:
        raise ConfigError(f"service.default_language must be one of {', '.join(LANGUAGES)}")
    if not settings.database.url.startswith(("sqlite:", "postgresql:", "postgres:")):
        raise ConfigError("database.url must start with sqlite:// or postgresql://")
    if not settings.service.public_url.startswith(("http://", "https://")):
        raise ConfigError("service.public_url must start with http:// or https://")
    for name in (
        "reminder_after_days",
        "consent_expiry_days",
        "follow_up_days",
        "follow_up_again_days",
        "survey_open_days",
    ):
        if getattr(settings.timing, name) <= 0:
            raise ConfigError(f"timing.{name} must be more than 0")
    if not 0 <= settings.timing.follow_up_again_times <= 10:
        raise ConfigError("timing.follow_up_again_times must be between 0 and 10")
    if not 1024 <= settings.inbound.max_header_bytes <= settings.inbound.max_message_bytes:
        raise ConfigError(
            "inbound.max_header_bytes must be at least 1024 and at most inbound.max_message_bytes"
        )
    if zone(settings.service.timezone) is None:
        raise ConfigError(
            f"service.timezone must be a time zone name such as Europe/Berlin, "
            f"not {settings.service.timezone!r}"
        )
    if settings.digest.weekday.lower() not in WEEKDAYS:
        raise ConfigError(f"digest.weekday must be one of {', '.join(WEEKDAYS)}")
    if not 0 <= settings.digest.hour <= 23:
        raise ConfigError("digest.hour must be between 0 and 23")
    if settings.health.max_outbox_wait_minutes <= 0:
        raise ConfigError("health.max_outbox_wait_minutes must be more than 0")
    if not 0 <= settings.metrics.port <= 65535:
        raise ConfigError("metrics.port must be 0 (the web port) or between 1 and 65535")
    if settings.logging.level.upper() not in LOG_LEVELS:
        raise ConfigError(f"logging.level must be one of {', '.join(LOG_LEVELS)}")
    if settings.logging.format not in LOG_FORMATS:
        raise ConfigError('logging.format must be "text" or "json"')


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
