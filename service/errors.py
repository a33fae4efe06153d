"""One family of exceptions for everything care-intro refuses or cannot do."""

from __future__ import annotations


class CareIntroError(Exception):
    """Root of every error the service raises on purpose; its text is safe to show an operator."""


class ConfigError(CareIntroError):
    """The configuration cannot be used as written: one line per problem, all of them at once,
    so an operator fixes a file in one go rather than one restart per mistake."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class TokenError(CareIntroError):
    """A link token that cannot be honoured."""


class BadToken(TokenError):
    """Tampered, malformed, signed for another purpose, or with a key we no longer hold."""


class TokenExpired(TokenError):
    """Genuine, but older than its purpose allows."""


class Unreadable(CareIntroError):
    """A message with nothing we can read as text (only an image, a winmail.dat, …)."""


class WrongState(CareIntroError):
    """A referral move the transition table does not allow, or one made on a stale view."""


class NotFound(CareIntroError):
    """No referral, party or message with that reference."""


class DeliveryError(CareIntroError):
    """An outgoing mail could not be handed on.

    `ours`: the failure is at our end (our relay, our login, our sender address), not about
    the mail or whom it is for. It is the operator's to fix, and says nothing of the mail.
    """

    def __init__(self, message: str, *, permanent: bool, ours: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.ours = ours


class AddressGone(NotFound):
    """An opt-out link whose address was erased by a release that kept no hash of it: we can
    no longer tell whom it was for, so we cannot stop them, only say so."""
