"""`demo`: one full introduction over real sockets in a scratch folder, then who got what."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import shutil
import smtplib
import socket
import sys
import tempfile
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiohttp

from service.edge.app import Service
from service.errors import CareIntroError
from service.settings import Settings

REFERRER = ("Ada Lovelace", "ada@referrer.example")
PROVIDER = ("Jane Roe", "jane@acme.example")
PROSPECT = ("Bob Smith", "bob@bakery.example")
REQUEST = f"""\
Hi,

Bob runs a small bakery and needs help with his books. Jane is great at this.

Provider: {PROVIDER[0]} <{PROVIDER[1]}>
Provider prefers: email, weekday mornings
Provider booking: https://cal.example/jane
Prospect: {PROSPECT[0]} <{PROSPECT[1]}>
Prospect phone: +49 30 1234567
Prospect prefers: phone, after 4pm
Need: bookkeeping for a 5-person bakery before the tax deadline in March
Budget: 400 EUR/month

Thanks!
Ada
"""
# What the demo writes in its folder; a kept folder holding only these is the demo's own.
DEMO_FILES = frozenset(
    {"care-intro.db", "care-intro.db-wal", "care-intro.db-shm", "secret-key", "outbox"}
)
WAIT_STEPS = 200  # × 0.05 s: ten seconds at most for each step of the demo


class DemoRefused(CareIntroError):
    """The folder given to keep the demo's data is not the demo's to clear."""


def run_demo(keep: Path | None = None, out: object = None) -> int:
    stream = out or sys.stdout
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        _start_over(keep)
        return asyncio.run(_demo(keep, stream))
    with tempfile.TemporaryDirectory(prefix="care-intro-demo-") as scratch:
        return asyncio.run(_demo(Path(scratch), stream))


def _start_over(keep: Path) -> None:
    """Clear an earlier demo's store and mail from `keep` (its consent links name ports
    that are gone), but touch nothing in a folder the demo did not make."""
    foreign = sorted(p.name for p in keep.iterdir() if p.name not in DEMO_FILES)
    if foreign:
        raise DemoRefused(
            f"{keep} holds files the demo did not write ({', '.join(foreign[:3])}); "
            "give an empty or new folder"
        )
    for name in DEMO_FILES:
        path = keep / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def demo_settings(root: Path) -> Settings:
    smtp_port, web_port = _free_port(), _free_port()
    settings = Settings()
    settings = settings.replace(
        "service",
        data_dir=str(root),
        domain="intro.example.org",
        public_url=f"http://127.0.0.1:{web_port}",
    )
    settings = settings.replace("inbound", port=smtp_port)
    settings = settings.replace("web", port=web_port)
    settings = settings.replace("outbound", transport="maildir", maildir=str(root / "outbox"))
    settings = settings.replace("database", url=f"sqlite:///{root / 'care-intro.db'}")
    return settings.replace("security", allowed_referrers=(REFERRER[1],))


async def _demo(root: Path, out: object) -> int:
    settings = demo_settings(root)
    service = Service(settings)
    await service.start()
    maildir = root / "outbox" / "new"
    try:
        _say(out, f"care-intro demo in {root}")
        _say(out, f"1. {REFERRER[0]} mails a request to {settings.referral_mailbox} over SMTP")
        await asyncio.to_thread(_send_request, settings, service.smtp_port)
        consents = await _wait_for(maildir, lambda m: _purpose(m) == "consent", 2)
        _say(out, "2. each party got a private question; both click Yes on the page")
        async with aiohttp.ClientSession() as http:
            for message in consents:
                url = _yes_link(message, settings.service.public_url)
                async with http.get(url) as shown:
                    shown.raise_for_status()
                async with http.post(url.split("?")[0], data={"answer": "yes"}) as answered:
                    answered.raise_for_status()
        # One mail To both, written once per envelope: a file for each of them.
        await _wait_for(maildir, lambda m: _purpose(m) == "introduction", 2)
        _say(out, "3. both said yes: one introduction went out, To both\n")
    finally:
        await service.stop()
    _print_mailboxes(maildir, out)
    return 0


def _send_request(settings: Settings, port: int) -> None:
    message = EmailMessage()
    message["From"] = f"{REFERRER[0]} <{REFERRER[1]}>"
    message["To"] = settings.referral_mailbox
    message["Subject"] = "Introduction: Jane (bookkeeping) and Bob (bakery)"
    message["Message-ID"] = make_msgid(domain="referrer.example")
    message.set_content(REQUEST)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


async def _wait_for(maildir: Path, wanted: object, count: int) -> list[EmailMessage]:
    for _ in range(WAIT_STEPS):
        found = [m for m in _read_all(maildir) if wanted(m)]  # type: ignore[operator]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the demo waited for {count} mail(s) in {maildir} that never came")


def _read_all(maildir: Path) -> list[EmailMessage]:
    if not maildir.is_dir():
        return []
    messages = []
    for path in sorted(maildir.iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def _purpose(message: EmailMessage) -> str:
    """Which kind of mail this is, judged by what a reader sees."""
    text = _text(message)
    if "/c/" in text:
        return "consent"
    if str(message.get("Reply-To", "")).count("@") >= 2:
        return "introduction"
    return "other"


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def _yes_link(message: EmailMessage, public_url: str) -> str:
    match = re.search(re.escape(public_url) + r"/c/\S+\?answer=yes", _text(message))
    if match is None:
        raise ValueError("a consent mail without a Yes link")
    return match.group(0)


def _print_mailboxes(maildir: Path, out: object) -> None:
    by_person: dict[str, list[EmailMessage]] = {}
    for message in _read_all(maildir):
        for recipient in message.get_all("Delivered-To", []):
            by_person.setdefault(str(recipient), []).append(message)
    for person in (REFERRER[1], PROVIDER[1], PROSPECT[1]):
        received = by_person.get(person, [])
        _say(out, "=" * 72)
        _say(out, f"{person} received {len(received)} mail(s)")
        for message in received:
            _say(out, "-" * 72)
            _say(out, f"From: {message['From']}\nTo: {message['To']}")
            if message["Reply-To"]:
                _say(out, f"Reply-To: {message['Reply-To']}")
            _say(out, f"Subject: {message['Subject']}\n")
            _say(out, _text(message).rstrip())
    _say(out, "=" * 72)


def _say(out: object, text: str) -> None:
    print(text, file=out)  # type: ignore[call-overload]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
