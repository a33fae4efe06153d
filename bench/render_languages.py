"""What writing a mail costs in each language, against English measured in the same run.

Writes the consent question the way the workflow does (letters.consent_request: redaction,
link tokens, text and HTML templates, Babel dates, headers, the final bytes) for a party
of each of the six languages, many times over, and prints microseconds per mail and the
ratio to English.

    python bench/render_languages.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.clock import FixedClock
from service.model import Role, State
from service.settings import LANGUAGES, Settings
from service.writing import letters
from service.writing.context import make_context
from store.records import PartyRecord, ReferralRecord

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _party(id_: int, role: Role, name: str, email: str, language: str) -> PartyRecord:
    return PartyRecord(
        id=id_,
        role=role,
        name=name,
        email=email,
        phone="+49 30 1234567",
        prefers="phone",
        best_time="weekday mornings",
        booking="https://cal.example/jane",
        language=language,
        ask_key=f"ask-{id_}",
        answer=None,
        answered_at=None,
        answer_channel=None,
        reply_key=f"{id_:016d}",
        timezone="Europe/Berlin",
    )


REFERRAL = ReferralRecord(
    id=1,
    ref="R-BNCH-0001",
    state=State.ASKING,
    referrer_email="ada@referrer.example",
    referrer_name="Ada Lovelace",
    need="Bookkeeping for a 5-person bakery before the tax deadline in March; Bob Smith "
    "can be reached at bob@bakery.example or +49 30 7654321.",
    budget="400 EUR/month",
    follow_up_days=None,
    language="en",
    subject="Bookkeeping for Bob",
    request_message_id="<request@referrer.example>",
    created_at=NOW,
    updated_at=NOW,
    expires_at=NOW + timedelta(days=14),
    introduced_at=None,
    parties=(
        _party(1, Role.PROVIDER, "Jane Roe", "jane@acme.example", "en"),
        _party(2, Role.PROSPECT, "Bob Smith", "bob@bakery.example", "en"),
    ),
)


def per_mail(language: str, rounds: int) -> float:
    settings = (
        Settings()
        .replace("service", domain="intro.example.org", timezone="Europe/Berlin")
        .replace("security", secret_keys=("bench-key",))
    )
    ctx = make_context(settings, FixedClock(NOW))
    provider = replace(REFERRAL.party(Role.PROVIDER), language=language)
    referral = replace(REFERRAL, parties=(provider, REFERRAL.party(Role.PROSPECT)))
    letters.consent_request(ctx, referral, provider, NOW)  # warm the caches
    started = time.perf_counter()
    for _ in range(rounds):
        letters.consent_request(ctx, referral, provider, NOW)
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
