"""LMTP (RFC 2033) on aiosmtpd: after DATA, one reply for each accepted recipient.

aiosmtpd's LMTP class answers DATA once, as SMTP does; an LMTP client (Postfix's lmtp)
then waits for the replies it is owed and the transaction hangs. The handler gives one line
per recipient where their fates differ; every other final reply of DATA (a size limit, a
store outage, an error) concerns them all alike and is repeated here, one per recipient.
"""

from __future__ import annotations

from typing import AnyStr

from aiosmtpd.lmtp import LMTP


class PerRecipientLMTP(LMTP):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._data_recipients = 0
        self._replies_due = 0

    async def smtp_DATA(self, arg: str) -> None:
        self._data_recipients = len(self.envelope.rcpt_tos) if self.envelope else 0
        try:
            await super().smtp_DATA(arg)
        finally:
            self._data_recipients = 0

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if self._replies_due:
            due, self._replies_due = self._replies_due, 0
            await super().push(per_recipient(text, due))
            return
        await super().push(text)
        # Only once the client was told to send the data is a reply owed per recipient;
        # a refused DATA command (no recipients, bad syntax) gets its single reply.
        if self._data_recipients and text.startswith("354"):
            self._replies_due = self._data_recipients


def per_recipient(reply: str, recipients: int) -> str:
    """The reply lines after DATA: as given when one per recipient, else the one repeated."""
    lines = reply.split("\r\n")
    if len(lines) == recipients:
        return reply
    return "\r\n".join([lines[0]] * recipients)
