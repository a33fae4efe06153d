"""Where the outbox hands mail: an SMTP relay, or a local maildir (the embedded default)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import ssl
from pathlib import Path

import aiosmtplib

from service.delivery.outbox import SEND_LIMIT_SECONDS, Transport
from service.errors import ConfigError, DeliveryError
from service.settings import Settings
from store.records import OutboxItem

# A kept connection used this recently is taken as open; an older one is asked first.
FRESH_SECONDS = 2.0


class SmtpRelay:
    """Hands each mail to a relay over SMTP, with the service as the envelope sender.

    Connections are kept open between mails (up to `connections`, one per concurrent send):
    a new connection per mail costs a handshake, an EHLO and maybe TLS and a login, which
    is most of the time a small mail takes. A connection that met an error is closed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        tls_context: ssl.SSLContext | None = None,
        username: str = "",
        password: str = "",
        timeout: float = SEND_LIMIT_SECONDS,
        connections: int = 1,
    ) -> None:
        self.host, self.port = host, port
        # "implicit": TLS from the first byte (port 465); "starttls": upgraded after EHLO.
        self.tls = tls
        self.tls_context = tls_context
        self.username, self.password = username or None, password or None
        # The whole send, every step included, ends within `timeout`; one command within
        # a part of it, so a relay that stalls on one step is given up on early.
        self.timeout = timeout
        self.connections = max(connections, 1)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, item: OutboxItem) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                client = await self._checkout()
                try:
                    refused, _ = await client.sendmail(
                        item.envelope_from, list(item.recipients), item.raw
                    )
                except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
                    # A refusal: sendmail reset the envelope, the connection can go on.
                    self._checkin(client)
                    raise
                except BaseException:
                    client.close()
                    raise
                self._checkin(client)
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

    async def _checkout(self) -> aiosmtplib.SMTP:
        now = asyncio.get_running_loop().time()
        while self._idle:
            client, since = self._idle.pop()
            if not client.is_connected:
                continue
            if now - since < FRESH_SECONDS:
                return client
            # Idle a while: the relay may have closed it (Postfix does after 5 minutes).
            # Asking costs a round trip only when the outbox was quiet, never under load.
            try:
                await client.noop()
                return client
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.tls == "implicit",
            # False, not None: None would let aiosmtplib pick STARTTLS whenever offered.
            start_tls=self.tls == "starttls",
            tls_context=self.tls_context,
            username=self.username,
            password=self.password,
            timeout=self.timeout / 2,
        )
        await client.connect()
        return client

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected and len(self._idle) < self.connections:
            self._idle.append((client, asyncio.get_running_loop().time()))
        else:
            client.close()

    async def close(self) -> None:
        """Say QUIT on every kept connection."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit(timeout=5)


class Maildir:
    """Writes each mail as one file in a maildir's new/, atomically and idempotently.

    The file name comes from the Message-ID and the envelope's recipients, so a retry
    replaces the same file instead of adding a second copy, while each envelope of a mail
    sent to several (the introduction) keeps a file of its own. Return-Path and Delivered-To
    record the envelope, as a local delivery agent would.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")

    async def send(self, item: OutboxItem) -> str:
        await asyncio.to_thread(self.write, item)
        return ""

    async def close(self) -> None:
        """Nothing is kept open between mails."""

    def write(self, item: OutboxItem) -> Path:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        envelope_of = "\n".join([item.message_id, *item.recipients])
        digest = hashlib.sha256(envelope_of.encode()).hexdigest()[:20]
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


def relay_tls_context(verify: bool, ca_file: str = "") -> ssl.SSLContext:
    """How the relay's certificate is checked: the system's CAs, or the given file's."""
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"outbound.tls_ca_file {ca_file} cannot be used: {exc}") from None
    if not verify:
        # A relay on the same host or a private network, with a certificate nobody signed.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def from_settings(settings: Settings) -> Transport:
    out = settings.outbound
    if out.transport == "smtp":
        return SmtpRelay(
            out.host,
            out.port,
            tls=out.tls_mode,
            tls_context=relay_tls_context(out.tls_verify, out.tls_ca_file),
            username=out.username,
            password=out.password,
            connections=out.connections,
        )
    return Maildir(Path(out.maildir))
