"""Where the outbox hands mail: an SMTP relay, or a local maildir (the embedded default)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from pathlib import Path

import aiosmtplib

from service.delivery.outbox import Transport
from service.errors import DeliveryError
from service.settings import Settings
from store.records import OutboxItem


class SmtpRelay:
    """Hands each mail to a relay over SMTP, with the service as the envelope sender."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout: float = 60,
    ) -> None:
        self.host, self.port = host, port
        self.starttls = starttls
        self.username, self.password = username or None, password or None
        self.timeout = timeout

    async def send(self, item: OutboxItem) -> str:
        try:
            refused, _ = await aiosmtplib.send(
                item.raw,
                sender=item.envelope_from,
                recipients=list(item.recipients),
                hostname=self.host,
                port=self.port,
                start_tls=self.starttls,
                username=self.username,
                password=self.password,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(
                f"every recipient refused: {detail}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"relay said {exc.code} {exc.message}", permanent=exc.code >= 500
            ) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"relay unreachable: {exc}", permanent=False) from exc
        # Some recipients taken, some refused: the mail went; sending it again would
        # give the accepted ones a second copy. Note who was refused and move on.
        return "; ".join(f"refused {r}: {resp.code} {resp.message}" for r, resp in refused.items())


class Maildir:
    """Writes each mail as one file in a maildir's new/, atomically and idempotently.

    The file name comes from the Message-ID, so a retry replaces the same file instead of
    adding a second copy. Return-Path and Delivered-To record the envelope, as a local
    delivery agent would.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")

    async def send(self, item: OutboxItem) -> str:
        await asyncio.to_thread(self.write, item)
        return ""

    def write(self, item: OutboxItem) -> Path:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(item.message_id.encode()).hexdigest()[:20]
        name = f"{int(item.created_at.timestamp())}.{digest}.{self.host}"
        envelope = [f"Return-Path: <{item.envelope_from}>"]
        envelope += [f"Delivered-To: {r}" for r in item.recipients]
        data = ("\n".join(envelope) + "\n").encode() + item.raw
        draft, final = self.root / "tmp" / name, self.root / "new" / name
        try:
            with open(draft, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(draft, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            raise DeliveryError(f"cannot write {final}: {exc}", permanent=False) from exc
        return final


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def from_settings(settings: Settings) -> Transport:
    out = settings.outbound
    if out.transport == "smtp":
        return SmtpRelay(
            out.host, out.port, starttls=out.starttls, username=out.username, password=out.password
        )
    return Maildir(Path(out.maildir))
