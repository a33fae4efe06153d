"""The relay over TLS: implicit (port 465) and STARTTLS, against a real aiosmtpd server."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from service.delivery.outbox import Report, deliver_due
from service.delivery.transports import from_settings
from service.errors import ConfigError
from service.settings import Settings, from_mapping
from store import db, queries
from store.models import OutboxMail
from store.records import OutgoingMail
from tests.conftest import Sink, SinkHandler, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl makes the test's certificate"
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class TlsSinkHandler(SinkHandler):
    """Keeps each mail and the TLS version of the connection it came over ("" for none)."""

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        tls = server.transport.get_extra_info("ssl_object")  # type: ignore[attr-defined]
        with self.lock:
            self.versions.append(tls.version() if tls else "")
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def tls_relay(certificate: tuple[Path, Path], mode: str) -> Iterator[Sink]:
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    handler = TlsSinkHandler()
    port = free_port()
    if mode == "implicit":
        controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_side)
    else:
        # "starttls": a relay that insists on it; "offered": one that merely offers it.
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_side,
            require_starttls=mode == "starttls",
        )
    controller.start()
    try:
        yield Sink(handler, port)
    finally:
        controller.stop()


def settings_for(relay: Sink, **outbound: object) -> Settings:
    data = {"transport": "smtp", "host": "127.0.0.1", "port": relay.port, **outbound}
    return from_mapping({"outbound": data}, {})


def send_one(settings: Settings) -> Report:
    mail = OutgoingMail(
        "<tls@intro.example.org>",
        "consent_request",
        "refer@intro.example.org",
        ("jane@acme.example",),
        b"Message-ID: <tls@intro.example.org>\nSubject: over TLS\n\nHi\n",
    )
    with db.transaction():
        queries.enqueue([mail], NOW)

    async def run() -> Report:
        transport = from_settings(settings)
        try:
            return await deliver_due(transport, NOW)
        finally:
            await transport.close()

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_mail_reaches_the_relay_over_tls_it_trusts(sqlite_url, certificate, mode):
    with tls_relay(certificate, mode) as relay:
        settings = settings_for(relay, tls=mode, tls_ca_file=str(certificate[0]))
        assert send_one(settings) == Report(sent=1)
        assert [d.rcpt_tos for d in relay.deliveries] == [("jane@acme.example",)]
        [version] = relay.handler.versions
        assert version.startswith("TLSv1.")


def test_the_deprecated_starttls_key_still_upgrades(sqlite_url, certificate):
    with tls_relay(certificate, "starttls") as relay:
        settings = settings_for(relay, starttls=True, tls_ca_file=str(certificate[0]))
        assert settings.outbound.tls_mode == "starttls"
        assert send_one(settings) == Report(sent=1)
        assert relay.handler.versions[0].startswith("TLSv1.")


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_a_certificate_we_do_not_trust_is_refused_and_the_mail_kept(sqlite_url, certificate, mode):
    with tls_relay(certificate, mode) as relay:
        # The system's CAs only: the relay's self-signed certificate is nobody's.
        assert send_one(settings_for(relay, tls=mode)) == Report(retrying=1)
        assert relay.deliveries == []
        [mail] = OutboxMail.select()
        assert mail.state == "pending"
        assert "CERTIFICATE_VERIFY_FAILED" in mail.last_error


def test_without_verification_a_self_signed_relay_is_used(sqlite_url, certificate):
    with tls_relay(certificate, "implicit") as relay:
        assert send_one(settings_for(relay, tls="implicit", tls_verify=False)) == Report(sent=1)
        assert relay.handler.versions[0].startswith("TLSv1.")


def test_tls_none_never_upgrades_on_its_own(sqlite_url, certificate):
    with tls_relay(certificate, "offered") as relay:
        # "none" means none: an upgrade the operator did not ask for could fail on a
        # relay whose certificate nobody checks, and hold every mail back.
        assert send_one(settings_for(relay, tls="none")) == Report(sent=1)
        assert relay.handler.versions == [""]


@pytest.mark.parametrize(
    ("outbound", "message"),
    [
        ({"tls": "ssl"}, "outbound.tls must be one of none, starttls, implicit"),
        ({"tls": "implicit", "starttls": True}, "contradicts"),
    ],
)
def test_tls_settings_are_checked(outbound, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping({"outbound": outbound}, {})


LOGIN = {"transport": "smtp", "username": "care", "password": "secret"}


def test_a_password_is_never_sent_in_the_clear_to_a_relay_elsewhere():
    with pytest.raises(ConfigError, match=r"would cross the network to relay\.example"):
        from_mapping({"outbound": {**LOGIN, "host": "relay.example"}}, {})
    with pytest.raises(ConfigError, match="in the clear"):
        from_mapping({"outbound": {**LOGIN, "host": "192.0.2.25", "tls": "none"}}, {})


@pytest.mark.parametrize(
    "outbound",
    [
        {**LOGIN, "host": "relay.example", "tls": "starttls"},
        {**LOGIN, "host": "relay.example", "tls": "implicit"},
        {**LOGIN, "host": "relay.example", "starttls": True},
        {**LOGIN, "host": "127.0.0.1"},  # a relay on this host: nothing crosses a network
        {**LOGIN, "host": "::1"},
        {**LOGIN, "host": "localhost"},
        {**LOGIN, "host": "relay.example", "transport": "maildir"},
        {"transport": "smtp", "host": "relay.example"},  # no login, no password to keep
    ],
)
def test_a_login_is_taken_where_the_password_stays_private(outbound):
    assert from_mapping({"outbound": outbound}, {}).outbound.username == outbound.get(
        "username", ""
    )


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path):
    settings = from_mapping(
        {"outbound": {"transport": "smtp", "tls": "implicit", "tls_ca_file": str(tmp_path)}}, {}
    )
    with pytest.raises(ConfigError, match=r"outbound\.tls_ca_file .* cannot be used"):
        from_settings(settings)
