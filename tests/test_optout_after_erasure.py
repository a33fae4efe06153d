""" "Never contact me again" from an old mail, after its person was erased by `care-intro forget`
or by retention: the keyed hash left on the erased rows still stops them, and a link whose
address went without a hash (an earlier release's erasure) says so instead of "Done"."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import queries, suppressions
from store.db import database
from tests.conftest import REFERRER, eventually, wire_fixture, write_config
from tests.helpers import PROSPECT, PROVIDER, parse, request_referral, send, text_of, web

DONE = "we will not contact you again"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, on the store the running service uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARE_INTRO_")}
    done = subprocess.run(
        [sys.executable, "-m", "service", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def at(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


@pytest.fixture
def config(running, tmp_path: Path) -> Path:
    return write_config(tmp_path / "cli.toml", running.settings)


def mail_optout(delivery) -> str:
    match = re.search(r"(http://\S+/u/[A-Za-z0-9_.\-]+)", text_of(delivery))
    assert match, "a mail without a way to opt out"
    return match.group(1)


def page_optout(consent_link: str) -> str:
    match = re.search(
        r'href="(http://\S+/u/[^"]+)">Never contact me again', web.get(consent_link).text
    )
    assert match, "a consent page without a way to opt out"
    return match.group(1)


@pytest.fixture
def old_links(running, sink) -> dict[str, str]:
    """The prospect's two opt-out links from their first question: the mail's and the page's."""
    links = request_referral(running.service.smtp_port, sink)
    eventually(lambda: queries.outbox_counts() == {"sent": 3}, "the outbox to settle")
    [question] = sink.to(PROSPECT)
    return {"mail": mail_optout(question), "page": page_optout(links[PROSPECT])}


def prospect_rows() -> list[tuple[str, str | None]]:
    return database.execute_sql(
        "SELECT email, erased_hash FROM party WHERE role = 'prospect' ORDER BY id"
    ).fetchall()


def suppressed(config: Path) -> bool:
    return json.loads(cli(config, "export", PROSPECT).stdout)["suppressed"]


def ask_again_and_see_nothing_reach_them(running, sink, config: Path) -> None:
    """A new request naming them: the referrer gets the receipt and, later, the same "Not
    introduced" as for any no without reason (README, "Opt-outs stay private"); they get
    nothing."""
    before = len(sink.deliveries)
    again = wire_fixture("request_thunderbird_labelled_lines.eml").replace(
        b"Message-ID: <", b"Message-ID: <after-erasure.", 1
    )
    send(running.service.smtp_port, again)
    later = sink.wait_for(before + 2)[before:]
    assert sorted(d.rcpt_tos for d in later) == [(REFERRER,), (PROVIDER,)]
    assert parse(next(d for d in later if d.rcpt_tos == (REFERRER,)))["Subject"].startswith(
        "Received: "
    )
    # Past the latest moment the tick ends a withheld request.
    cli(config, "tick", "--at", at(2.1))
    told = sink.wait_for(before + 4)[before + 2 :]
    to_referrer = [parse(d)["Subject"] for d in told if d.rcpt_tos == (REFERRER,)]
    assert len(to_referrer) == 1 and to_referrer[0].startswith("Not introduced")
    assert [d for d in sink.deliveries[before:] if PROSPECT in d.rcpt_tos] == []


@pytest.mark.parametrize("where", ["mail", "page"])
def test_after_forget_their_old_link_still_stops_them(running, sink, config, old_links, where):
    cli(config, "forget", PROSPECT)
    [(email, kept)] = prospect_rows()
    assert email.startswith("erased-") and kept == suppressions.address_hash(PROSPECT)
    assert not suppressed(config), "forgetting someone is not their stop"

    done = web.post(old_links[where])

    assert done.status_code == 200 and DONE in done.text
    assert suppressed(config)
    ask_again_and_see_nothing_reach_them(running, sink, config)


def test_after_retention_their_old_link_still_stops_them(running, sink, config, old_links):
    cli(config, "tick", "--at", at(20))  # the question expires
    ticked = cli(config, "tick", "--at", at(20 + 731))
    assert "let go of" in ticked.stdout
    [(email, kept)] = prospect_rows()
    assert email.startswith("erased-") and kept == suppressions.address_hash(PROSPECT)

    done = web.post(old_links["mail"])

    assert done.status_code == 200 and DONE in done.text
    assert suppressed(config)
    ask_again_and_see_nothing_reach_them(running, sink, config)


def test_an_old_link_closes_what_is_open_for_them_under_a_newer_request(
    running, sink, config, old_links
):
    cli(config, "tick", "--at", at(20))
    cli(config, "tick", "--at", at(20 + 731))
    # Retention let the old referral's people go; a newer one asks them again.
    before = len(sink.deliveries)
    again = wire_fixture("request_thunderbird_labelled_lines.eml").replace(
        b"Message-ID: <", b"Message-ID: <newer.", 1
    )
    send(running.service.smtp_port, again)
    sink.wait_for(before + 3)
    assert queries.recent_referrals()[0].state == "asking"

    done = web.post(old_links["mail"])

    assert done.status_code == 200 and DONE in done.text
    newest = eventually(
        lambda: [r for r in queries.recent_referrals()[:1] if r.state == "declined"], "closed"
    )[0]
    assert newest.party("prospect").answer == "no"
    # Their address goes from the newer referral too, now that nothing open needs it.
    assert all(email.startswith("erased-") for email, _ in prospect_rows())


def test_a_link_erased_without_its_hash_says_so_instead_of_done(running, sink, config, old_links):
    cli(config, "forget", PROSPECT)
    # As an earlier release left it: the placeholder, and nothing to know the person by.
    database.execute_sql("UPDATE party SET erased_hash = NULL")
    database.execute_sql("UPDATE outbox_mail SET erased_hash = NULL")

    done = web.post(old_links["mail"])

    assert done.status_code == 200
    assert "We no longer hold this address" in done.text and DONE not in done.text
    assert database.execute_sql("SELECT COUNT(*) FROM suppression").fetchone()[0] == 0
