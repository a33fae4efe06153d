"""Pure: comparing words the way people mean them, whatever their case and accents."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Case- and accent-blind: Zoë, ZOE and zoe are one word; Arabic marks are dropped too."""
    if text.isascii():  # no accents to drop; most words, and the cost of redacting a need
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold_written(text: str) -> str:
    """`fold`, and Arabic evened as people type it: ta marbuta, alif maqsura, no tatweel."""
    return fold(text).replace("\u0640", "").replace("ى", "ي").replace("ة", "ه")


def phrases(*groups: str) -> tuple[str, ...]:
    """Comma-separated phrases, a group per language, as one tuple."""
    return tuple(p.strip() for group in groups for p in group.split(",") if p.strip())
