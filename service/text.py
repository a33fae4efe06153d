"""Pure: comparing words the way people mean them, whatever their case and accents."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Case- and accent-blind: Zoë, ZOE and zoe are one word; Arabic marks are dropped too."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
