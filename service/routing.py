"""Pure: what a recipient address of ours means, or None when it is not ours."""

from __future__ import annotations

import enum

from service.addresses import normalize
from service.settings import Settings


class Route(enum.Enum):
    REQUEST = "request"


def route(recipient: str, settings: Settings) -> Route | None:
    address = normalize(recipient)
    if address == settings.referral_mailbox.lower():
        return Route.REQUEST
    return None
