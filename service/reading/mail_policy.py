"""Pure: intake's email policy, the stdlib's default with each short header parsed once.

`email.policy.default` turns a header's text into header objects every time it is read,
and reading a message's structure reads Content-Type again and again (each
get_content_type, get_param, get_body, is_attachment): the same few lines parsed a dozen
times per request, a sixth of intake's work. Header objects cannot be changed once made,
so one made from a text serves every later read of that same text.
"""

from __future__ import annotations

import email.policy
import functools
from email.headerregistry import BaseHeader, HeaderRegistry

# Longer values (a big References, a hostile field near the cap of limits.FIELD_BYTES) are
# parsed each time, as before: kept, their parse trees could hold megabytes.
_KEPT_CHARACTERS = 1000
_KEPT_HEADERS = 512


class _ParsedOnce(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._made = functools.lru_cache(maxsize=_KEPT_HEADERS)(super().__call__)

    def __call__(self, name: str, value: str) -> BaseHeader:
        if len(value) > _KEPT_CHARACTERS:
            return super().__call__(name, value)
        return self._made(name, value)


INTAKE = email.policy.default.clone(header_factory=_ParsedOnce())
