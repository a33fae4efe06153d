"""Pure: intake's email policy, the stdlib's default with each short header parsed once.

`email.policy.default` turns a header's text into header objects every time it is read,
and reading a message's structure reads Content-Type again and again (each
get_content_type, get_param, get_body, is_attachment): the same few lines parsed a dozen
times per request, a sixth of intake's work. Header objects cannot be changed once made,
so one made from a text serves every later read of that same text in the same message.

The objects live with the message that was read, never longer: what one sender wrote is not
held in memory after their message (nor after they asked to be forgotten), and a hostile
message's parse trees go with it.
"""

from __future__ import annotations

import email.policy
import functools
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy

# Longer values (a big References, a hostile field near the cap of limits.FIELD_BYTES) are
# parsed each time, as before: a hostile value's parse tree takes some 600 bytes a character,
# so these bounds keep what one message holds at once to a few megabytes.
_KEPT_CHARACTERS = 256
_KEPT_HEADERS = 64


class _ParsedOnce(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._made = functools.lru_cache(maxsize=_KEPT_HEADERS)(super().__call__)

    def __call__(self, name: str, value: str) -> BaseHeader:
        if len(value) > _KEPT_CHARACTERS:
            return super().__call__(name, value)
        return self._made(name, value)


def intake_policy() -> EmailPolicy:
    """The policy for reading one message, with a cache of its own."""
    return email.policy.default.clone(header_factory=_ParsedOnce())
