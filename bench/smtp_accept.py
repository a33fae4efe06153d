"""How fast `serve` accepts mail over SMTP, against a bare aiosmtpd Sink on the same machine.

Starts three processes: a bare aiosmtpd Sink (the baseline, it stores nothing), a second
Sink as the relay that `serve`'s outbox delivers to, and `care-intro serve` itself on a fresh
store (SQLite, or the PostgreSQL database given with --database-url, which must be one you
may fill). A load client keeps `--sessions` connections open and sends distinct, valid
requests from an allowed referrer, each with its own Message-ID and its own two people, so
none is kept once as a repeat; intake and the outbox work on them meanwhile, as in
production. Rounds alternate between the baseline and the service. Prints messages per
second for each and the ratio of the medians.

    python bench/smtp_accept.py [--messages 2000] [--sessions 16] [--rounds 3]
                                [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERRER = "ada@referrer.example"
RECIPIENT = "refer@intro.example.org"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"serve exited early:\n{log.read_text() if log else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def run_sink(port: int) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        time.sleep(3600)
    finally:
        controller.stop()


def request(n: int, tag: str) -> bytes:
    return (
        f"From: Ada Lovelace <{REFERRER}>\r\n"
        f"To: {RECIPIENT}\r\n"
        f"Subject: Intro {n}: bookkeeping\r\n"
        f"Message-ID: <bench-{tag}-{n}@referrer.example>\r\n"
        "Date: Mon, 16 Nov 2026 09:14:01 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "\r\n"
        f"Provider: Jane Roe <jane-{tag}-{n}@acme.example>\r\n"
        f"Prospect: Bob Smith <bob-{tag}-{n}@bakery.example>\r\n"
        "Need: bookkeeping for a 5-person bakery before the tax deadline in March\r\n"
    ).encode()


class Session:
    """A minimal SMTP client on one kept connection: the client costs little, so the
    figures are the servers'."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Session:
        session = cls(*await asyncio.open_connection("127.0.0.1", port))
        await session.reply()  # the greeting
        await session.command(b"EHLO bench.example")
        return session

    async def reply(self) -> bytes:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("the server hung up")
            if line[3:4] != b"-":
                return line

    async def command(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def send(self, raw: bytes) -> bytes:
        await self.command(f"MAIL FROM:<{REFERRER}>".encode())
        await self.command(f"RCPT TO:<{RECIPIENT}>".encode())
        await self.command(b"DATA")
        self.writer.write(raw + b".\r\n")
        return await self.reply()

    async def close(self) -> None:
        await self.command(b"QUIT")
        self.writer.close()


async def load(port: int, messages: list[bytes], sessions: int) -> tuple[float, int]:
    """Messages per second over `sessions` kept connections, and how many were not 250."""
    todo = list(messages)
    refused = 0
    opened = await asyncio.gather(*(Session.open(port) for _ in range(sessions)))

    async def client(session: Session) -> None:
        nonlocal refused
        while todo:
            answer = await session.send(todo.pop())
            refused += not answer.startswith(b"250")
        await session.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(s) for s in opened))
    return len(messages) / (time.perf_counter() - started), refused


def write_config(folder: Path, database_url: str, smtp_port: int, relay_port: int) -> Path:
    config = folder / "care-intro.toml"
    config.write_text(
        "[service]\n"
        'domain = "intro.example.org"\n'
        f'data_dir = "{folder / "data"}"\n'
        f"[inbound]\nport = {smtp_port}\n"
        f"[web]\nport = {free_port()}\n"
        f'[outbound]\ntransport = "smtp"\nport = {relay_port}\n'
        "daily_limit_per_address = 1000\n"
        f'[database]\nurl = "{database_url}"\n'
        f'[security]\nsecret_keys = ["{secrets.token_hex(32)}"]\n'
        f'allowed_referrers = ["{REFERRER}"]\n'
        '[privacy]\ncontroller = "Bench Ltd"\ncontact = "privacy@intro.example.org"\n'
        '[logging]\nlevel = "WARNING"\n'
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="per round and server")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: a new SQLite store")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database_url = args.database_url or f"sqlite:///{folder / 'store.db'}"
        baseline_port, relay_port, smtp_port = free_port(), free_port(), free_port()
        sinks = [
            multiprocessing.Process(target=run_sink, args=(port,), daemon=True)
            for port in (baseline_port, relay_port)
        ]
        for sink in sinks:
            sink.start()
        log = folder / "serve.log"
        config = write_config(folder, database_url, smtp_port, relay_port)
        with open(log, "ab") as out:
            serve = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        try:
            for port in (baseline_port, relay_port):
                wait_listening(port, None, None)
            wait_listening(smtp_port, serve, log)
            rates: dict[str, list[float]] = {"bare aiosmtpd Sink": [], "care-intro serve": []}
            refused = 0
            run = secrets.token_hex(4)
            for n in range(args.rounds):
                for name, port in (
                    ("bare aiosmtpd Sink", baseline_port),
                    ("care-intro serve", smtp_port),
                ):
                    tag = f"{run}-{n}-{port}"
                    batch = [request(i, tag) for i in range(args.messages)]
                    rate, not_accepted = asyncio.run(load(port, batch, args.sessions))
                    rates[name].append(rate)
                    refused += not_accepted if port == smtp_port else 0
        finally:
            serve.terminate()
            serve.wait(60)
            for sink in sinks:
                sink.terminate()

    store = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    print(f"{args.messages} messages per round, {args.sessions} sessions, {store}")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        each = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {name:<20} {medians[name]:>8,.0f} msg/s  (rounds: {each})")
    print(f"  not answered 250 by serve: {refused}")
    ratio = medians["care-intro serve"] / medians["bare aiosmtpd Sink"]
    print(f"ratio serve / bare Sink: {ratio:.2f}")


if __name__ == "__main__":
    main()
