"""Where the outbox hands mail: an SMTP relay, or a local maildir (the embedded default)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import ssl
from pathlib import Path

from service.delivery.outbox import SEND_LIMIT_SECONDS, Transport
from service.delivery.smtp_client import (
    Broken,
    LoginRefused,
    RecipientsRefused,
    Refused,
    SenderRefused,
    SmtpConnection,
    Unsendable,
)
from service.errors import ConfigError, DeliveryError
from service.settings import Settings
from store.records import OutboxItem

# A kept connection used this recently is taken as open; an older one is asked first.
FRESH_SECONDS = 2.0
# After the relay refused our login or our sender for good, mails wait this long before it
# is asked again.
LOGIN_PAUSE_SECONDS = 60.0


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
        domain: str = "",
    ) -> None:
        self.host, self.port = host, port
        # EHLO's name where this host has no fully qualified one: the service's own domain.
        self.domain = domain
        # "implicit": TLS from the first byte (port 465); "starttls": upgraded after EHLO.
        self.tls = tls
        self.tls_context = tls_context
        self.username, self.password = username, password
        # The whole send, every step included, ends within `timeout`; one command within
        # a part of it, so a relay that stalls on one step is given up on early.
        self.timeout = timeout
        self.connections = max(connections, 1)
        self._idle: list[tuple[SmtpConnection, float]] = []
        self._helo_name = ""
        # Until when a refused login (or sender) is taken as still refused, and what the
        # relay said.
        self._refusing: tuple[float, str] | None = None

    async def send(self, item: OutboxItem) -> str:
        now = asyncio.get_running_loop().time()
        if self._refusing is not None and now < self._refusing[0]:
            # Asked again at once, the relay would only refuse again, once per mail: a
            # queue of them looks like password guessing to fail2ban or Postfix's anvil.
            raise DeliveryError(self._refusing[1], permanent=False, ours=True)
        try:
            async with asyncio.timeout(self.timeout):
                connection = await self._checkout()
                try:
                    refused = await connection.send(
                        item.envelope_from, list(item.recipients), item.raw
                    )
                finally:
                    self._checkin(connection)
        except RecipientsRefused as exc:
            codes = [reply.code for reply in exc.refused.values()]
            raise DeliveryError(
                f"every recipient refused: {exc}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except SenderRefused as exc:
            # MAIL FROM is about us (our sender address, our account), never about whom the
            # mail is for: like a refused login, the operator's to fix, so the mail waits.
            said = f"the relay refused our sender: {exc.reply}"
            if exc.reply.code >= 500:
                # For good, until fixed: the waiting mails need not each hear it again. A
                # 4xx (or a 421, the relay closing) may be over by the next mail.
                self._refusing = (now + LOGIN_PAUSE_SECONDS, said)
            raise DeliveryError(said, permanent=False, ours=True) from exc
        except Refused as exc:
            raise DeliveryError(f"relay said {exc.reply}", permanent=exc.reply.code >= 500) from exc
        except Unsendable as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        except LoginRefused as exc:
            self._refusing = (now + LOGIN_PAUSE_SECONDS, str(exc))
            raise DeliveryError(str(exc), permanent=False, ours=True) from exc
        except (Broken, TimeoutError, OSError) as exc:
            # Our relay, not the recipient's server: an outage of ours says nothing of the
            # mail, so it waits for the relay however long that takes.
            said = str(exc) or type(exc).__name__
            raise DeliveryError(f"relay unreachable: {said}", permanent=False, ours=True) from exc
        # Some recipients taken, some refused: the mail went; sending it again would
        # give the accepted ones a second copy. Note who was refused and move on.
        return "; ".join(f"refused {r}: {reply}" for r, reply in refused.items())

    async def _checkout(self) -> SmtpConnection:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection, since = self._idle.pop()
            if not connection.is_open:
                continue
            if now - since < FRESH_SECONDS:
                return connection
            # Idle a while: the relay may have closed it (Postfix does after 5 minutes).
            # Asking costs a round trip only when the outbox was quiet, never under load.
            try:
                await connection.noop()
                return connection
            except Broken:
                pass
        if not self._helo_name:
            # Looking this host's name up may ask DNS: once, off the event loop.
            self._helo_name = helo_name(await asyncio.to_thread(socket.getfqdn), self.domain)
        return await SmtpConnection.open(
            self.host,
            self.port,
            helo_name=self._helo_name,
            tls=self.tls,
            tls_context=self.tls_context,
            username=self.username,
            password=self.password,
            reply_seconds=self.timeout / 2,
        )

    def _checkin(self, connection: SmtpConnection) -> None:
        if connection.is_open and len(self._idle) < self.connections:
            self._idle.append((connection, asyncio.get_running_loop().time()))
        else:
            connection.close()

    async def close(self) -> None:
        """Say QUIT on every kept connection."""
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await connection.quit()


def helo_name(fqdn: str, domain: str) -> str:
    """What EHLO names us: this host's fully qualified name, else the service's domain.

    A container's name is often "localhost" or a bare id, and a relay that checks EHLO
    (Postfix's reject_non_fqdn_helo_hostname, a provider's smarthost) refuses those.
    """
    try:
        own = domain.encode("idna").decode("ascii")
    except UnicodeError:
        own = ""
    for name in (fqdn, own):
        if name.isascii() and "." in name.strip(".") and not name.startswith("localhost"):
            return name
    return fqdn if fqdn.isascii() and fqdn else "localhost"


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
            domain=settings.service.domain,
        )
    return Maildir(Path(out.maildir))
