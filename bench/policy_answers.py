"""How long Postfix waits on the policy service, against an answer that asks nothing.

Runs `serve`'s Service in this process on a fresh SQLite store and asks its policy service
over one kept connection, as Postfix's smtpd does. The baseline is a request the service
answers without looking (not at RCPT); then an address of another domain (judged off the
event loop, no store), a referrer writing to the referral address, and a stranger writing
there (one store query, then REJECT). Prints microseconds per answer and the ratio to the
baseline.

    python bench/policy_answers.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.edge.app import Service
from service.settings import Settings

REFERRER = "ada@referrer.example"
CASES = {
    "not at RCPT (baseline)": ("MAIL", REFERRER, "refer@intro.example.org"),
    "another domain": ("RCPT", "mallory@elsewhere.example", "bob@elsewhere.example"),
    "referrer to the referral address": ("RCPT", REFERRER, "refer@intro.example.org"),
    "stranger to the referral address": (
        "RCPT",
        "mallory@elsewhere.example",
        "refer@intro.example.org",
    ),
}


def request(state: str, sender: str, recipient: str) -> bytes:
    return (
        f"request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\n"
        f"client_address=192.0.2.7\nsender={sender}\nrecipient={recipient}\n\n"
    ).encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def per_answer(port: int, payload: bytes, requests: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        for _ in range(requests):
            writer.write(payload)
            await writer.drain()
            await reader.readuntil(b"\n\n")
        return (time.perf_counter() - started) / requests
    finally:
        writer.close()


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = (
            Settings()
            .replace("service", domain="intro.example.org", data_dir=folder)
            .replace("inbound", port=0)
            .replace("web", port=0)
            .replace("outbound", maildir=f"{folder}/outbox")
            .replace("database", url=f"sqlite:///{folder}/care-intro.db")
            .replace("security", allowed_referrers=(REFERRER,))
            .replace("policy", port=free_port())
        )
        service = Service(settings)
        await service.start()
        try:
            results = {}
            for name, case in CASES.items():
                await per_answer(settings.policy.port, request(*case), 20)  # warm up
                results[name] = await per_answer(settings.policy.port, request(*case), requests)
        finally:
            await service.stop()
    baseline = results["not at RCPT (baseline)"]
    for name, seconds in results.items():
        print(f"{name:36} {seconds * 1e6:8.0f} µs/answer  ratio {seconds / baseline:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
