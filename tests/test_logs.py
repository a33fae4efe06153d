"""Warnings and errors name no person's address, whatever text reached them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime

from service.edge.logs import JsonFormatter, MaskingFormatter
from tests.conftest import ServeProcess, eventually, make_settings, write_config
from tests.helpers import PROVIDER, request_referral, web


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


def test_information_is_masked_and_debugging_keeps_its_detail():
    formatter = MaskingFormatter()
    formatter.keep_domain("intro.example.org")
    info = _line(
        formatter, logging.INFO, "asked %s for %s", "dan@example.com", "<q.3@intro.example.org>"
    )
    assert info.endswith("asked [address] for <q.3@intro.example.org>")
    assert "dan@example.com" in _line(formatter, logging.DEBUG, "asked %s", "dan@example.com")


def test_the_command_line_logs_through_it(tmp_path, store_url):
    # A real command's run, with an error that names a person and one that names our own
    # Message-ID, as the operator reads them on stderr.
    from tests.conftest import make_settings

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


def test_json_lines_parse_and_mask_as_the_text_ones_do():
    formatter = JsonFormatter()
    formatter.keep_domain("intro.example.org")
    warning = json.loads(
        _line(
            formatter,
            logging.WARNING,
            "to %s about %s",
            "Eve@Example.com",
            "<q.2@intro.example.org>",
        )
    )
    assert warning["level"] == "WARNING" and warning["logger"] == "service.test"
    assert warning["message"] == "to [address] about <q.2@intro.example.org>"
    assert datetime.fromisoformat(warning["time"]).tzinfo is not None
    info = json.loads(_line(formatter, logging.INFO, 'asked "%s"', "dan@example.com"))
    assert info["message"] == 'asked "[address]"'
    debug = json.loads(_line(formatter, logging.DEBUG, 'asked "%s"', "dan@example.com"))
    assert debug["message"] == 'asked "dan@example.com"'
    try:
        raise ValueError("no mailbox for carol@example.com")
    except ValueError:
        record = logging.LogRecord(
            "service.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    error = json.loads(formatter.format(record))
    assert "Traceback" in error["exception"] and "carol@" not in error["exception"]


def test_serve_logs_json_at_the_configured_level_and_each_page_without_its_token(
    tmp_path, sqlite_url, sink
):
    settings = make_settings(tmp_path, sqlite_url, sink.port).replace(
        "logging", level="DEBUG", format="json"
    )
    serve = ServeProcess.in_folder(tmp_path, settings).start()
    try:
        links = request_referral(settings.inbound.port, sink)
        link = links[PROVIDER]
        token = link.rsplit("/", 1)[1]
        assert web.get(link).status_code == 200
        assert web.get(f"{settings.service.public_url}/c/{token}x/more").status_code == 404
        eventually(lambda: "/c/{token} 200" in serve.log.read_text(), "the page's line")
    finally:
        assert serve.stop() == 0
    lines = [json.loads(line) for line in serve.log.read_text().splitlines() if line]
    pages = [line["message"] for line in lines if line["logger"] == "care-intro.pages"]
    assert any(p.startswith("GET /c/{token} 200 ") and p.endswith(" ms") for p in pages)
    assert any(p.startswith("GET (no route) 404 ") for p in pages)
    assert token not in serve.log.read_text()
    # DEBUG took effect: the service's own debug lines are there, not just INFO and up.
    assert any(line["level"] == "DEBUG" for line in lines)
