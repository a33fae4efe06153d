"""DKIM: every mail `serve` sends verifies against the published key; a changed one does not."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dkim
import pytest

from service.clock import FixedClock
from service.errors import ConfigError
from service.settings import from_mapping
from service.writing.context import make_context
from store.models import OutboxMail
from tests.conftest import ServeProcess, make_settings, on_the_wire, write_config
from tests.helpers import NOW, PROVIDER, request_referral

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl makes the test's DKIM key"
)

SELECTOR = "mail2027"
DOMAIN = "intro.example.org"


def make_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh RSA key as an operator makes one, and the TXT record they would publish."""
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def verifies(data: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        # Only the name the signature points at has a key; any other lookup finds nothing.
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return bool(dkim.verify(data, dnsfunc=dns))


def signed_headers(data: bytes) -> set[str]:
    match = re.search(rb"\bh=([^;]+);", data.replace(b"\r\n ", b" "))
    assert match, "no DKIM-Signature with h="
    return {h.strip().decode().lower() for h in match.group(1).split(b":")}


@pytest.fixture
def signing_serve(tmp_path, store_url, sink):
    key, record = make_key(tmp_path)
    settings = make_settings(tmp_path, store_url, sink.port).replace(
        "outbound", dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_key_file=str(key)
    )
    process = ServeProcess.in_folder(tmp_path, settings)
    process.start()
    yield process, record
    if process.proc.poll() is None:
        assert process.stop() == 0, process.log.read_text()


def test_every_mail_serve_sends_is_signed_and_verifies(signing_serve, sink):
    process, record = signing_serve
    request_referral(process.settings.inbound.port, sink)
    deliveries = sink.wait_for(3)
    assert len(deliveries) == 3
    for delivery in deliveries:
        assert delivery.data.startswith(b"DKIM-Signature:")
        assert verifies(delivery.data, record), delivery.data[:600]
        assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe"} <= (
            signed_headers(delivery.data)
        )
    [consent] = [d for d in deliveries if PROVIDER in d.rcpt_tos]
    # A plain reply answers the question: its Reply-To is signed with the rest.
    assert "reply-to" in signed_headers(consent.data)

    # What the outbox stored is what went out: a retry would send the same signature.
    stored = {m.message_id: bytes(m.raw) for m in OutboxMail.select()}
    for delivery in deliveries:
        message_id = re.search(rb"(?im)^Message-ID: (<[^>]+>)", delivery.data).group(1).decode()
        assert on_the_wire(stored[message_id]) == delivery.data


def test_a_changed_body_or_subject_no_longer_verifies(signing_serve, sink):
    process, record = signing_serve
    request_referral(process.settings.inbound.port, sink)
    [delivery, *_] = sink.wait_for(3)
    assert verifies(delivery.data, record)
    head, body = delivery.data.split(b"\r\n\r\n", 1)
    assert not verifies(head + b"\r\n\r\n" + body.replace(b"=", b"-", 1), record)
    changed = re.sub(rb"(?m)^Subject: ", b"Subject: Re: ", head)
    assert changed != head
    assert not verifies(changed + b"\r\n\r\n" + body, record)
    # The key someone else holds does not verify our mail.
    other_folder = process.config.parent / "other"
    other_folder.mkdir()
    _, other = make_key(other_folder)
    assert not verifies(delivery.data, other)


def test_a_missing_key_file_stops_serve_before_it_listens(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url).replace(
        "outbound",
        dkim_domain=DOMAIN,
        dkim_selector=SELECTOR,
        dkim_key_file=str(tmp_path / "nowhere.pem"),
    )
    config = write_config(tmp_path / "care-intro.toml", settings)
    done = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 78, done.stderr
    assert "outbound.dkim_key_file" in done.stderr
    assert "nowhere.pem cannot be read" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_a_key_is_refused(tmp_path, sqlite_url):
    not_a_key = tmp_path / "dkim.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    settings = make_settings(tmp_path, sqlite_url).replace(
        "outbound", dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_key_file=str(not_a_key)
    )
    with pytest.raises(ConfigError, match="not an RSA private key in PEM format"):
        make_context(settings, FixedClock(NOW))


@pytest.mark.parametrize(
    ("outbound", "message"),
    [
        ({"dkim_domain": DOMAIN}, "needs outbound.dkim_selector, outbound.dkim_key_file"),
        ({"dkim_selector": SELECTOR, "dkim_key_file": "k.pem"}, "needs outbound.dkim_domain"),
        (
            {"dkim_domain": DOMAIN, "dkim_selector": "a b", "dkim_key_file": "k.pem"},
            "dkim_selector must be a DNS label",
        ),
    ],
)
def test_dkim_keys_go_together(outbound, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping({"outbound": outbound}, {})
