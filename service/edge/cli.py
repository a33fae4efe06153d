"""The `care-intro` command: wiring only — load settings, open the store, run one command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from service import __version__
from service.clock import Clock, FixedClock, SystemClock, parse_day_or_moment, parse_moment
from service.delivery import transports
from service.edge import console, evidence_text, jobs, logs
from service.errors import CareIntroError, ConfigError
from service.evaluation import report
from service.intake import receiving
from service.model import Channel
from service.reading.addresses import is_allowed, parse_mailbox
from service.reading.authorization import author_of
from service.reading.limits import header_excess, limits_of
from service.reading.routing import route
from service.referral import erasure, subject_access
from service.settings import LANGUAGES, Settings, load, read, warnings_of
from service.writing.compose import Templates
from service.writing.context import make_context
from service.writing.signing import load_signer
from store import backup, db, queries, referrers

log = logging.getLogger("care-intro")

# sysexits(3): what an MTA's pipe transport understands (75 = try again later, 77 = bounce).
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_NOUSER = 67
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78


class Failure(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(config_first(sys.argv[1:] if argv is None else list(argv)))
    # Until the settings are read: they may name another level and format (see _settings).
    args.logging = logs.install(logging.INFO if args.command == "serve" else logging.WARNING)
    # aiosmtpd logs every SMTP command at INFO; our handler logs what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        code = int(args.run(args) or 0)
        # Flushed here, not at exit, so that a reader gone away (`| head`) is handled below.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_gone()
    except Failure as exc:
        print(f"care-intro: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"care-intro: {problem}", file=sys.stderr)
        return EX_CONFIG
    except db.DatabaseUnavailable as exc:
        # PostgreSQL restarting or not up yet: an init system or MTA tries again later.
        print(f"care-intro: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except CareIntroError as exc:
        print(f"care-intro: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.debug("unexpected failure", exc_info=True)
        print(f"care-intro: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EX_SOFTWARE


def config_first(argv: list[str]) -> list[str]:
    """The arguments with `--config PATH` moved right after the command, so that it may
    stand anywhere, even between a command's positional arguments (`quarantine show
    --config FILE 24`), which argparse alone refuses."""
    commands = [i for i, arg in enumerate(argv) if not arg.startswith("-")]
    if not commands:
        return argv
    command = commands[0]
    rest, moved = [], []
    tail = argv[command + 1 :]
    i = 0
    while i < len(tail):
        if tail[i] == "--config" and i + 1 < len(tail):
            moved += tail[i : i + 2]
            i += 2
            continue
        if tail[i].startswith("--config="):
            moved.append(tail[i])
        else:
            rest.append(tail[i])
        i += 1
    return [*argv[: command + 1], *moved, *rest]


def _reader_gone() -> int:
    """Quiet, like a Unix tool whose reader left: SIGPIPE's status, no traceback."""
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


class _Parser(argparse.ArgumentParser):
    """argparse, with its mistakes said as every other error here is: one line on stderr,
    and 64 (EX_USAGE), which an MTA's pipe transport reads as this command's fault; its
    own is a usage block and 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("care-intro").strip()
        where = f"{command}: " if command else ""
        print(f"care-intro: {where}{message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EX_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="care-intro", description="Double opt-in introductions by email.")
    parser.add_argument("--version", action="version", version=f"care-intro {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, run: object) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            metavar="PATH",
            help="configuration file (default: $CARE_INTRO_CONFIG, else config/care-intro.toml)",
        )
        sub.set_defaults(run=run)
        return sub

    command("serve", "SMTP listener, pages, scheduler and outbox worker in one process", _serve)
    command("check-config", "every configuration problem, one line each", _check_config)
    referrers_cmd = command(
        "referrers", "who may refer, beside the configuration: add, remove, list", _referrers
    )
    referrers_cmd.add_argument("action", choices=("add", "remove", "list"))
    referrers_cmd.add_argument("address", nargs="?", metavar="ADDRESS")
    referrers_cmd.add_argument("--name", default="", help="their name, for the list")
    demo = command("demo", "run one full introduction locally and show what everyone got", _demo)
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's data in DIR")
    submit = command("submit", "process one message as if it had arrived by SMTP", _submit)
    submit.add_argument(
        "file",
        metavar="FILE.eml",
        nargs="?",
        help="the message, or - for standard input (the default when it is not a terminal)",
    )
    submit.add_argument("--sender", help="envelope sender (default: the From address)")
    submit.add_argument("--recipient", help="envelope recipient (default: the referral address)")
    tick = command("tick", "run every job due at a moment once, then exit", _tick)
    tick.add_argument("--at", metavar="ISO-8601", help="the moment (default: now)")
    status = command("status", "one referral's history; without REF, counts by state", _status)
    status.add_argument("ref", metavar="REF", nargs="?")
    quarantine = command(
        "quarantine", "messages that could not be understood: list, show ID, retry ID", _quarantine
    )
    quarantine.add_argument("action", choices=("list", "show", "retry"))
    quarantine.add_argument("id", nargs="?", type=int, metavar="ID")
    report_cmd = command(
        "report", "the funnel, decline reasons, people, value closed and the radar", _report
    )
    report_cmd.add_argument("--referrer", metavar="ADDR", help="only this referrer's referrals")
    report_cmd.add_argument(
        "--since", metavar="DATE", help="only referrals requested since (2026-01-01, or ISO-8601)"
    )
    report_cmd.add_argument("--format", choices=report.FORMATS, default="text")
    report_cmd.add_argument(
        "--language",
        choices=LANGUAGES,
        help="the language of the text report (default: service.default_language)",
    )
    export = command("export", "everything held about one person, as JSON", _export)
    export.add_argument("address", metavar="ADDRESS")
    evidence = command("evidence", "what each party was shown and what they answered", _evidence)
    evidence.add_argument("ref", metavar="REF")
    forget_cmd = command(
        "forget", "erase a person: their address, name and every mail that carries them", _forget
    )
    forget_cmd.add_argument("address", metavar="ADDRESS")
    backup_cmd = command(
        "backup", "copy the SQLite store to PATH while serve runs (SQLite's online backup)", _backup
    )
    backup_cmd.add_argument("path", metavar="PATH", help="the copy; written whole, then renamed")
    backup_cmd.add_argument("--force", action="store_true", help="replace PATH if it exists")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load(args.config)
    installed = getattr(args, "logging", None)
    if installed is not None:
        # One-shot commands stay quiet below WARNING: cron mails whatever they print.
        floor = logging.NOTSET if args.command == "serve" else logging.WARNING
        installed.apply(settings.logging, settings.service.domain, floor)
    return settings


def _check_config(args: argparse.Namespace) -> int:
    settings, problems = read(args.config)
    if settings is not None and not any(p.startswith("database.url") for p in problems):
        # Only a usable URL is worth trying; a bad one is already among the problems.
        unreachable = db.probe(settings.database.url)
        if unreachable:
            problems.append(f"database.url: {unreachable}")
    if settings is not None:
        problems.extend(_files_problems(settings))
    if problems:
        raise ConfigError(*problems)
    for warning in warnings_of(settings) if settings is not None else []:
        print(f"warning: {warning}", file=sys.stderr)
    print("configuration OK")
    return 0


def _files_problems(settings: Settings) -> list[str]:
    """What `serve` would refuse at start in the files the settings name: the DKIM key and
    the relay's CA file, read as serve reads them."""
    problems = []
    out = settings.outbound
    checks = [lambda: load_signer(out)]
    if out.tls_ca_file:
        checks.append(lambda: transports.relay_tls_context(out.tls_verify, out.tls_ca_file))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            problems.extend(str(exc).splitlines())
    return problems


def _referrers(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.action != "list" and not args.address:
        raise Failure(f"referrers {args.action} needs an ADDRESS", EX_USAGE)
    address = _address(args.address) if args.address else None
    _open_store(settings)
    if args.action == "list":
        print(
            console.referrers_list(settings.security.allowed_referrers, settings.service.timezone),
            end="",
        )
        return 0
    assert address is not None
    if args.action == "add":
        added = referrers.add(address, args.name.strip(), SystemClock().now())
        print(f"{address}: {'added' if added else 'already allowed'}")
        return 0
    if not referrers.remove(address):
        configured = is_allowed(address, settings.security.allowed_referrers)
        why = "; the configuration allows it" if configured else ""
        raise Failure(f"{address} is not among the referrers in the store{why}", 1)
    print(f"{address}: removed")
    return 0


def _address(given: str) -> str:
    """A bare address from the command line, or exit 64 (EX_USAGE) saying it is not one."""
    mailbox = parse_mailbox(given)
    if mailbox is None or mailbox.name:
        raise Failure(f"not an address: {given}", EX_USAGE)
    return mailbox.address


def _open_store(settings: Settings) -> None:
    try:
        db.bind(settings.database.url, settings.database.quota_mb)
    except db.DatabaseUnavailable:
        raise
    except Exception as exc:
        raise Failure(f"cannot open the database: {exc}", EX_TEMPFAIL) from exc


def _serve(args: argparse.Namespace) -> int:
    from service.edge.app import serve_until

    settings = _settings(args)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_until(settings, stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        raise Failure(f"cannot start: {exc}", EX_TEMPFAIL) from exc
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.edge.demo import run_demo

    return run_demo(Path(args.keep) if args.keep else None)


def _tick(args: argparse.Namespace) -> int:
    settings = _settings(args)
    clock: Clock = SystemClock()
    if args.at:
        try:
            clock = FixedClock(parse_moment(args.at))
        except ValueError as exc:
            raise Failure(str(exc), EX_USAGE) from exc
    _open_store(settings)
    ctx = make_context(settings, clock)
    done = asyncio.run(jobs.run_due(ctx, transports.from_settings(settings), clock.now()))
    print(done)
    return 0


def _submit(args: argparse.Namespace) -> int:
    # An MTA pipes the message in (`submit --config c.toml < x.eml`); a person at a prompt
    # who gave no file would otherwise wait on a read that never ends.
    if args.file is None and (sys.stdin is None or sys.stdin.isatty()):
        raise Failure("submit needs FILE.eml, or the message on standard input", EX_USAGE)
    settings = _settings(args)
    raw = _read_message(args.file or "-")
    excess = header_excess(raw, limits_of(settings))
    if excess is not None:
        raise Failure(excess.text, EX_DATAERR)
    headers = receiving.headers_of(raw)
    recipient = args.recipient or settings.referral_mailbox
    if route(recipient, settings) is None:
        raise Failure(f"<{recipient}>: no such mailbox here", EX_NOUSER)
    if args.sender is not None:
        sender = args.sender
    else:
        # Read as admission reads it, so the sender taken is the author it judges.
        author = author_of(headers)
        sender = author.address if author else ""
        if not sender:
            raise Failure("the message has no usable From address; give --sender", EX_DATAERR)
    _open_store(settings)
    refused = receiving.admission(sender, [recipient], headers, settings)
    if refused:
        raise Failure(refused, EX_NOPERM)
    clock = SystemClock()
    try:
        received = receiving.receive(raw, sender, [recipient], Channel.CLI, clock.now(), headers)
    except Exception as exc:
        # Not stored: the MTA must keep the message and try again (a retry is deduplicated).
        raise Failure(f"could not store the message: {exc}", EX_TEMPFAIL) from exc
    if received.duplicate:
        print(f"already received {received.message_id}; nothing to do")
        return 0
    assert received.inbound_id is not None
    ctx = make_context(settings, clock)
    try:
        done = asyncio.run(jobs.run_due(ctx, transports.from_settings(settings), clock.now()))
    except Exception as exc:
        # Stored, so accepted: a failure now would make the MTA bounce a message that the
        # next tick or `serve` still handles, and a resend would make it twice.
        log.debug("handling a stored message failed", exc_info=True)
        log.warning("stored; its handling waits for the next tick: %s", exc)
        print(console.inbound_line(received.inbound_id))
        return 0
    print(console.inbound_line(received.inbound_id))
    log.info("%s", done)
    return 0


def _read_message(name: str) -> bytes:
    shown = "standard input" if name == "-" else name
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise Failure(f"cannot read {shown}: {exc.strerror}", EX_NOINPUT) from exc
    if not raw.strip():
        raise Failure(f"{shown} is empty", EX_DATAERR)
    return raw


def _backup(args: argparse.Namespace) -> int:
    settings = _settings(args)
    target = Path(args.path)
    try:
        pages = backup.backup(settings.database.url, target, args.force)
    except backup.BackupRefused as exc:
        raise Failure(str(exc)) from exc
    except OSError as exc:
        raise Failure(f"could not back up to {target}: {exc}") from exc
    print(f"backed up {pages} pages to {target}")
    return 0


def _forget(args: argparse.Namespace) -> int:
    settings = _settings(args)
    address = _address(args.address)
    _open_store(settings)
    clock = SystemClock()
    done = erasure.forget(make_context(settings, clock), address, Channel.CLI, clock.now())
    for kind, count in dataclasses.asdict(done).items():
        print(f"{kind.replace('_', ' ')}: {count}")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _open_store(settings)
    if args.ref is None:
        print(console.summary(timezone=settings.service.timezone), end="")
        return 0
    text = console.status(args.ref, settings.service.timezone)
    if text is None:
        raise Failure(f"no referral {args.ref}", EX_NOINPUT)
    print(text, end="")
    return 0


def _export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    address = _address(args.address)
    _open_store(settings)
    held = subject_access.export(address, SystemClock().now())
    print(json.dumps(held, ensure_ascii=False, indent=2))
    return 0


def _evidence(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _open_store(settings)
    found = subject_access.evidence(args.ref)
    if found is None:
        raise Failure(f"no referral {args.ref}", EX_NOINPUT)
    print(evidence_text.render(args.ref, found, settings.service.timezone), end="")
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.action != "list" and args.id is None:
        raise Failure(f"quarantine {args.action} needs the message's ID", EX_USAGE)
    _open_store(settings)
    if args.action == "list":
        print(console.quarantine_list(settings.service.timezone), end="")
        return 0
    if args.action == "show":
        shown = console.quarantine_show(args.id, limits_of(settings), settings.service.timezone)
        if shown is None:
            raise Failure(f"no message {args.id}", EX_NOINPUT)
        print(shown, end="")
        return 0
    if not queries.requeue_inbound(args.id):
        raise Failure(f"message {args.id} is not in quarantine", EX_NOINPUT)
    clock = SystemClock()
    ctx = make_context(settings, clock)
    asyncio.run(jobs.run_due(ctx, transports.from_settings(settings), clock.now()))
    print(console.inbound_line(args.id))
    return 0


def _report(args: argparse.Namespace) -> int:
    settings = _settings(args)
    since = None
    if args.since:
        try:
            since = parse_day_or_moment(args.since, settings.service.timezone)
        except ValueError as exc:
            raise Failure(f"--since: {exc}", EX_USAGE) from exc
    referrer = parse_mailbox(args.referrer) if args.referrer else None
    if args.referrer and referrer is None:
        raise Failure(f"--referrer: not an address: {args.referrer}", EX_USAGE)
    _open_store(settings)
    found = report.figures_for(referrer.address if referrer else None, since, SystemClock().now())
    language = args.language or settings.service.default_language
    text = report.render(found, args.format, Templates(), language, settings.service.timezone)
    print(text, end="")
    return 0
