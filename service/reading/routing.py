"""Pure: what a recipient address of ours means, or None when it is not ours.

Every address we own is the referral address with an optional plus part:
refer@domain takes requests, refer+<reply key>@domain answers to one consent question, and
refer+b-<bounce key>@domain is the envelope sender (VERP) of one mail, where bounces land.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from service.reading.addresses import normalize
from service.settings import Settings

_KEY = re.compile(r"^[a-z2-7]{16}$")
_BOUNCE_PREFIX = "b-"


class Route(enum.Enum):
    REQUEST = "request"
    REPLY = "reply"
    BOUNCE = "bounce"


@dataclass(frozen=True)
class Destination:
    route: Route
    key: str = ""


def route(recipient: str, settings: Settings) -> Destination | None:
    address = normalize(recipient)
    local, _, domain = address.rpartition("@")
    if domain != settings.service.domain.lower():
        return None
    base, plus, detail = local.partition("+")
    if base != settings.service.referral_address.lower():
        return None
    if not plus:
        return Destination(Route.REQUEST)
    if detail.startswith(_BOUNCE_PREFIX) and _KEY.match(detail[len(_BOUNCE_PREFIX) :]):
        return Destination(Route.BOUNCE, detail[len(_BOUNCE_PREFIX) :])
    if _KEY.match(detail):
        return Destination(Route.REPLY, detail)
    return None


def reply_address(settings: Settings, key: str) -> str:
    return f"{settings.service.referral_address}+{key}@{settings.service.domain}"


def bounce_address(settings: Settings, key: str) -> str:
    return f"{settings.service.referral_address}+{_BOUNCE_PREFIX}{key}@{settings.service.domain}"
