"""What DKIM signing adds to writing a mail, against the same mail unsigned in the same run.

Writes the consent question as the workflow does (letters.consent_request), once with no
DKIM keys and once signing with an RSA key made for the run by openssl, and prints
microseconds per mail and the ratio of signed to unsigned.

    python bench/dkim_signing.py [--rounds 300] [--bits 2048]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from render_languages import NOW, REFERRAL

from service.clock import FixedClock
from service.model import Role
from service.settings import Settings
from service.writing import letters
from service.writing.context import make_context


def per_mail(settings: Settings, rounds: int) -> float:
    ctx = make_context(settings, FixedClock(NOW))
    provider = REFERRAL.party(Role.PROVIDER)
    letters.consent_request(ctx, REFERRAL, provider, NOW)  # warm the caches
    started = time.perf_counter()
    for _ in range(rounds):
        letters.consent_request(ctx, REFERRAL, provider, NOW)
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--bits", type=int, default=2048)
    args = parser.parse_args()
    settings = (
        Settings()
        .replace("service", domain="intro.example.org", timezone="Europe/Berlin")
        .replace("security", secret_keys=("bench-key",))
    )
    with tempfile.TemporaryDirectory() as folder:
        key = Path(folder) / "dkim.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), str(args.bits)],
            check=True,
            capture_output=True,
        )
        signing = settings.replace(
            "outbound",
            dkim_domain="intro.example.org",
            dkim_selector="bench",
            dkim_key_file=str(key),
        )
        baseline = per_mail(settings, args.rounds)
        signed = per_mail(signing, args.rounds)
    print(f"consent question, {args.rounds} mails each, RSA {args.bits} bits")
    print(f"  unsigned {baseline:8.1f} µs per mail")
    print(f"  signed   {signed:8.1f} µs per mail   ratio to unsigned {signed / baseline:.2f}")


if __name__ == "__main__":
    main()
