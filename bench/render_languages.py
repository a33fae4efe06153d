"""What writing a mail costs in each language, against English measured in the same run.

Renders and builds the consent question (text, HTML, headers, Babel dates) in each of the
six languages, many times over, and prints microseconds per mail and the ratio to English.

    python bench/render_languages.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.reading.addresses import Mailbox
from service.settings import LANGUAGES
from service.writing.compose import build_message
from tests.test_compose import CONTEXTS, NOW, TEMPLATES

SENDER = Mailbox("Introductions", "refer@intro.example.org")
TO = [Mailbox("Jane Roe", "jane@acme.example")]


def per_mail(language: str, rounds: int) -> float:
    context = {**CONTEXTS["consent_request"], "sender_name": "Introductions"}
    context["timezone"] = "Europe/Berlin"
    TEMPLATES.render_mail("consent_request", language, context)  # warm the caches
    started = time.perf_counter()
    for _ in range(rounds):
        rendered = TEMPLATES.render_mail("consent_request", language, context)
        build_message(
            sender=SENDER,
            to=TO,
            rendered=rendered,
            message_id="<x@intro.example.org>",
            date=NOW,
            language=language,
        )
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    baseline = per_mail("en", args.rounds)
    print(f"consent question, {args.rounds} mails per language")
    for language in LANGUAGES:
        cost = baseline if language == "en" else per_mail(language, args.rounds)
        print(f"  {language}  {cost:8.1f} µs per mail   ratio to en {cost / baseline:.2f}")


if __name__ == "__main__":
    main()
