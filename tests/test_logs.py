"""Warnings and errors name no person's address, whatever text reached them."""

from __future__ import annotations

import logging
import subprocess
import sys

from service.edge.logs import MaskingFormatter


def _line(formatter: MaskingFormatter, level: int, message: str, *args: object) -> str:
    record = logging.LogRecord("service.test", level, __file__, 1, message, args, None)
    return formatter.format(record)


def test_warnings_and_errors_mask_every_address_but_our_own():
    formatter = MaskingFormatter()
    formatter.keep_domain("intro.example.org")
    line = _line(
        formatter,
        logging.WARNING,
        "mail %s to %s refused: %s",
        "<q.1@intro.example.org>",
        "Ada.Lovelace+work@Example.COM",
        "550 5.1.1 <bob@mail.example.net>: unknown; also bounces.x@intro.example.org",
    )
    assert "Ada.Lovelace" not in line and "bob@" not in line
    assert line.count("[address]") == 2
    assert "<q.1@intro.example.org>" in line and "bounces.x@intro.example.org" in line


def test_a_traceback_is_masked_too():
    formatter = MaskingFormatter()
    try:
        raise ValueError("no mailbox for carol@example.com")
    except ValueError:
        record = logging.LogRecord(
            "service.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = formatter.format(record)
    assert "Traceback" in line and "carol@" not in line and "[address]" in line


def test_information_keeps_its_detail():
    line = _line(MaskingFormatter(), logging.INFO, "asked %s", "dan@example.com")
    assert "dan@example.com" in line


def test_the_command_line_logs_through_it(tmp_path, store_url):
    # A real command's run, with an error that names a person and one that names our own
    # Message-ID, as the operator reads them on stderr.
    from tests.conftest import make_settings, write_config

    config = write_config(tmp_path / "care-intro.toml", make_settings(tmp_path, store_url))
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_STATUS, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "cannot reach [address]" in done.stderr and "erin@" not in done.stderr
    assert "<m.1@intro.example.org>" in done.stderr


# `status` whose run logs an error: the entry point's own logging does the rest.
_FAILING_STATUS = """
import logging, sys
from service.edge import cli

def status(args):
    cli._settings(args)
    log = logging.getLogger("service.x")
    log.error("cannot reach %s for %s", "erin@example.com", "<m.1@intro.example.org>")
    return 0

cli._status = status
sys.exit(cli.main(["status", "--config", sys.argv[1]]))
"""
