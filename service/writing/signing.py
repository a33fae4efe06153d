"""DKIM: a signature over each finished mail, so receivers can tell it came from our domain."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from service.errors import ConfigError
from service.settings import OutboundSettings

# The headers a reader trusts or acts on; a relay that rewrote one must break the signature.
SIGNED_HEADERS = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
)
_HEADER_NAME = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)


@dataclass(frozen=True)
class Signer:
    domain: str
    selector: str
    # The private key must never reach a log line or a traceback.
    key: bytes = field(repr=False)

    def sign(self, raw: bytes) -> bytes:
        """`raw` with a DKIM-Signature header in front (relaxed/relaxed, our headers and body)."""
        present = {name.lower() for name in _HEADER_NAME.findall(_head(raw))}
        # Only the headers the mail has: naming an absent one would forbid adding it later,
        # which is not ours to decide.
        headers = [h.encode() for h in SIGNED_HEADERS if h.lower().encode() in present]
        signature = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers,
            # The stored mail uses LF line ends (the SMTP client sends CRLF); one style only.
            linesep=b"\n",
        )
        return signature + raw


def load_signer(outbound: OutboundSettings) -> Signer | None:
    """The signer the settings ask for, its key read and checked once; None when not asked."""
    if not outbound.dkim_key_file:
        return None
    path = Path(outbound.dkim_key_file)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"outbound.dkim_key_file {path} cannot be read: {exc.strerror or exc}"
        ) from None
    try:
        parse_pem_private_key(key)
    except (UnparsableKeyError, ValueError, IndexError) as exc:
        raise ConfigError(
            f"outbound.dkim_key_file {path} is not an RSA private key in PEM format ({exc})"
        ) from None
    return Signer(domain=outbound.dkim_domain, selector=outbound.dkim_selector, key=key)


def _head(raw: bytes) -> bytes:
    end = raw.find(b"\n\n")
    return raw if end < 0 else raw[: end + 1]
