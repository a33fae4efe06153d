"""Header bombs against a running `care-intro serve`: each is answered, and costs little.

Each test starts the real service, sends one normal request to warm it up, reads the
process's peak resident memory (VmHWM), sends one hostile message over SMTP, and checks
the reply, that the service still answers and still takes mail, and that the peak grew by
less than 100 MB. Before the caps, the first bomb here took `serve` to 12 GB.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import db, queries
from tests.conftest import (
    REFERRER,
    ServeProcess,
    eventually,
    make_settings,
    wire_fixture,
)
from tests.helpers import RCPT, inbound_counts

MB = 1024 * 1024
HEAD = b"To: refer@intro.example.org\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n"
BODY = b"\r\nProvider: Jane Roe <jane@acme.example>\r\nNeed: bookkeeping\r\n"


def peak_memory(process: ServeProcess) -> int:
    assert process.proc is not None
    status = Path(f"/proc/{process.proc.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def folded(name: bytes, words: int, word: bytes = b"=?utf-8?q?a?=") -> bytes:
    """A header of many words, one per line, so no line is longer than SMTP allows."""
    return name + b":" + b"".join(b" " + word + b"\r\n" for _ in range(words))


def deep_mime(levels: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(levels)
    )
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(levels)))
    return (
        b"From: Mailer-Daemon <mailer-daemon@mx.example>\r\n"
        + HEAD
        + b"Subject: deep\r\nMessage-ID: <deep.1@mx.example>\r\nMIME-Version: 1.0\r\n"
        + opening
        + b"Content-Type: text/plain\r\n\r\nhello\r\n"
        + closing
    )


@pytest.fixture
def serve(tmp_path: Path, sqlite_url: str) -> Iterator[ServeProcess]:
    settings = make_settings(tmp_path, sqlite_url)
    process = ServeProcess.in_folder(tmp_path, settings).start()
    with smtplib.SMTP("127.0.0.1", settings.inbound.port, timeout=30) as smtp:
        smtp.sendmail(REFERRER, [RCPT], wire_fixture("request_thunderbird_labelled_lines.eml"))
    eventually(lambda: inbound_counts() == {"processed": 1}, "the warm-up request", 30)
    yield process
    if process.proc is not None and process.proc.poll() is None:
        assert process.stop() == 0, (tmp_path / "serve.log").read_text()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "RecursionError" not in log, log


def send(process: ServeProcess, sender: str, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", process.settings.inbound.port, timeout=60) as smtp:
        smtp.ehlo()
        smtp.mail(sender)
        smtp.rcpt(RCPT)
        return smtp.data(raw)


def still_answers(process: ServeProcess) -> None:
    with smtplib.SMTP("127.0.0.1", process.settings.inbound.port, timeout=30) as smtp:
        assert smtp.noop()[0] == 250
    raw = wire_fixture("request_thunderbird_labelled_lines.eml").replace(
        b"Message-ID: <", b"Message-ID: <after-the-bomb.", 1
    )
    assert send(process, REFERRER, raw)[0] == 250


BOMBS = {
    # 281 KB: 20,000 adjacent encoded words, with the null sender that skips the sender check.
    "from-20000-encoded-words": (
        "",
        folded(b"From", 20000) + b" <mallory@elsewhere.example>\r\n" + HEAD + BODY,
        (552, b"5.3.4 Message header is too large: more than 65536 bytes"),
    ),
    "from-1000-encoded-words": (
        "",
        folded(b"From", 1000) + b" <mallory@elsewhere.example>\r\n" + HEAD + BODY,
        (554, b"5.6.0 Header field From has too many encoded words: more than 200"),
    ),
    "subject-1000-encoded-words": (
        REFERRER,
        b"From: Ada <ada@referrer.example>\r\n" + folded(b"Subject", 1000) + HEAD + BODY,
        (554, b"5.6.0 Header field Subject has too many encoded words: more than 200"),
    ),
    # Quoted strings: the stdlib's address parser's memory grows quadratically on them.
    "from-6000-quoted-strings": (
        "",
        folded(b"From", 6000, b'"x"') + b" <mallory@elsewhere.example>\r\n" + HEAD + BODY,
        (552, b"5.3.4 Header field From is too long: more than 16384 bytes"),
    ),
    "header-block-2-mb": (
        REFERRER,
        b"From: Ada <ada@referrer.example>\r\n"
        + folded(b"X-Filler", 40000, b"x" * 50)
        + HEAD
        + BODY,
        (552, b"5.3.4 Message header is too large: more than 65536 bytes"),
    ),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_header_bomb_is_refused_in_the_dialogue(serve, name):
    sender, raw, reply = BOMBS[name]
    before = peak_memory(serve)
    assert send(serve, sender, raw) == reply
    still_answers(serve)
    after = peak_memory(serve)
    print(f"\n{name}: {len(raw)} bytes, VmHWM {before / MB:.1f} -> {after / MB:.1f} MB")
    assert after - before < 100 * MB
    eventually(lambda: inbound_counts() == {"processed": 2}, "the message after the bomb", 30)


def test_a_thousand_levels_of_mime_are_kept_in_quarantine_and_can_be_shown(serve, tmp_path):
    """Depth shows only past the header block: accepted, then quarantined by intake."""
    raw = deep_mime(1000)
    before = peak_memory(serve)
    code, text = send(serve, "", raw)
    assert code == 250 and text.startswith(b"2.0.0 OK: queued as"), text
    eventually(lambda: inbound_counts().get("quarantined") == 1, "the deep message in quarantine")
    still_answers(serve)
    after = peak_memory(serve)
    print(f"\nmime-1000-deep: {len(raw)} bytes, VmHWM {before / MB:.1f} -> {after / MB:.1f} MB")
    assert after - before < 100 * MB
    [record] = queries.quarantined()
    assert record.note == "The message nests more than 50 levels"
    command = ["quarantine", "show", str(record.id), "--config", str(serve.config)]
    shown = subprocess.run(
        [sys.executable, "-m", "service", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Subject: deep" in shown.stdout
    assert "(the body is not shown: the message nests more than 50 levels)" in shown.stdout
    db.close()
