"""The letter writer: a process of its own that writes a share of a busy tick's letters.

What it writes must be what the service would have written, signed with the service's keys
on the service's clock; and when it dies or hangs, the service writes those letters itself:
none lost, none sent twice.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from service.clock import FixedClock
from service.evaluation import surveys
from service.model import Answer
from service.referral import deadlines
from service.tokens import Purpose
from service.writing import writer as writing
from service.writing.context import Context, make_context
from service.writing.writer import FEWEST, SHARE, Writer
from store import queries
from store.models import Party
from store.records import OutgoingMail, ReferralRecord
from tests.conftest import InProcess, eventually, make_settings
from tests.helpers import NOW, OUR_LINKS, breaking_one_template
from tests.test_deadlines import expire_at, links, open_one, queued_at, remind_at, say
from tests.test_evaluation import due, introduce

# Enough due items of a kind that a batch gives the writer its share.
MANY = FEWEST + 6
# Spawning imports the service and loads its templates: about a second here, more when busy.
READY_SECONDS = 60


@contextmanager
def letter_writer(ctx: Context) -> Iterator[Writer]:
    """A writer for `ctx`'s settings and templates, listening."""
    writer = Writer(ctx.settings, ctx.templates.root, make_context)
    try:
        assert writer.ready(READY_SECONDS), "the letter writer did not start"
        yield writer
    finally:
        writer.close()


def said(message: EmailMessage) -> str:
    """What a mail says, headers and parts, without what is random in every mail: its
    Message-ID, its boundary (in the multipart's Content-Type), and our links' tokens."""
    headers = [
        (k, str(v))
        for k, v in message.items()
        if k.lower() != "message-id" and not str(v).startswith("multipart/")
    ]
    parts = [
        (p.get_content_type(), p.get_content()) for p in message.walk() if not p.is_multipart()
    ]
    return OUR_LINKS.sub("<link>", repr((headers, parts)))


def read(mails: list[OutgoingMail]) -> list[EmailMessage]:
    return [email.message_from_bytes(m.raw, policy=email.policy.default) for m in mails]


def gone(pid: int) -> bool:
    """The process has exited: no such process, or one only its parent has yet to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_writer_writes_a_share_of_a_busy_ticks_reminders_as_the_service_would(ctx):
    referrals = [open_one(ctx, need=f"Books for bakery number {n}") for n in range(MANY)]
    at = remind_at(ctx)
    as_read = [queries.referral_by_id(r.id) for r in referrals]
    with letter_writer(ctx) as writer:
        assert deadlines.send_reminders(replace(ctx, writer=writer), at) == 2 * MANY
        assert writer.written == int(MANY * SHARE)
    queued = queued_at(at)
    written_here = [m for r in as_read for m in read(deadlines._reminders(ctx, r, at))]
    assert Counter(said(m) for _, m in queued) == Counter(said(m) for m in written_here)
    # Signed with the service's keys on its clock: each link opens the question of the
    # party the mail went to, about that party's referral; each question is asked once.
    asked = {p.ask_key: (p.email, r.need) for r in as_read for p in r.parties}
    opened = []
    for _, message in queued:
        [key] = {key for _, key, _ in links(ctx, message)}
        email_, need = asked[key]
        assert [a.addr_spec for a in message["To"].addresses] == [email_]
        assert need + "\n" in message.get_body(("plain",)).get_content()
        opened.append(key)
    assert sorted(opened) == sorted(asked)


def test_the_writer_writes_expiries_and_surveys_as_the_service_would(ctx):
    expiring = [open_one(ctx) for _ in range(MANY)]
    for referral in expiring:
        say(ctx, referral, "provider", Answer.YES, NOW)
    introduced = [introduce(ctx) for _ in range(MANY // 2)]
    expired_at, surveyed_at = expire_at(ctx), due(ctx)
    as_read = [queries.referral_by_id(r.id) for r in expiring]
    expected = [m for r in as_read for m in read(deadlines._expiry_letters(ctx, r, expired_at))]
    with letter_writer(ctx) as writer:
        served = replace(ctx, writer=writer)
        assert deadlines.expire_due(served, expired_at) == MANY
        after_expiries = writer.written
        assert after_expiries == int(MANY * SHARE)
        assert surveys.send_due(served, surveyed_at) == 2 * len(introduced)
        assert writer.written - after_expiries == int(2 * len(introduced) * SHARE)
    assert Counter(said(m) for _, m in queued_at(expired_at)) == Counter(map(said, expected))
    sent = queued_at(surveyed_at)
    assert Counter(p for p, _ in sent) == {"survey": 2 * len(introduced)}
    keys = {s.survey_key for r in introduced for s in queries.surveys_of(r.id)}
    opened = set()
    for _, message in sent:
        text = message.get_body(("plain",)).get_content()
        [token] = set(re.findall(r"/s/([A-Za-z0-9_.\-]+)", text))
        opened.add(ctx.tokens.read(Purpose.SURVEY, token))
    assert opened == keys


def test_a_letter_the_writer_cannot_write_is_written_here_and_reported_alone(ctx, tmp_path):
    """A broken template fails in the writer as it would here: that item alone goes without
    its letter, as when the service wrote it; the rest of the batch goes as written."""
    broken = breaking_one_template(ctx, tmp_path, "de/mail/consent_reminder.txt", NOW)
    referrals = [open_one(ctx) for _ in range(MANY)]
    german = referrals[0]  # first in the batch: in the writer's share
    Party.update(language="de").where(Party.referral == german.id).execute()
    at = remind_at(ctx)
    with letter_writer(broken) as writer:
        reminded = deadlines.send_reminders(replace(broken, writer=writer), at)
        assert writer.written == int(MANY * SHARE) - 1
    assert reminded == 2 * (MANY - 1)
    queued = queued_at(at)
    assert len(queued) == 2 * (MANY - 1)
    recipients = Counter(a.addr_spec for _, m in queued for a in m["To"].addresses)
    assert all(count == MANY - 1 for count in recipients.values())  # nobody twice


# The test's process id and a file the writer touches when it meets the fault: the writer,
# a process of its own, imports this module afresh, and reads them from its environment.
FAULT = "CARE_INTRO_TEST_WRITER_FAULT"


def _in_the_writer() -> bool:
    test_pid, marker = os.environ[FAULT].split(":", 1)
    if os.getpid() == int(test_pid):
        return False
    Path(marker).touch()
    return True


def _writes_here_dies_there(ctx: Context, referral: ReferralRecord, now) -> list[OutgoingMail]:
    """The reminders, in the test's process; in the writer, the process dies."""
    if _in_the_writer():
        os._exit(9)
    return _REMINDERS(ctx, referral, now)


def _writes_here_hangs_there(ctx: Context, referral: ReferralRecord, now) -> list[OutgoingMail]:
    if _in_the_writer():
        time.sleep(3600)
    return _REMINDERS(ctx, referral, now)


_REMINDERS = deadlines._reminders


@pytest.mark.parametrize("fault", [_writes_here_dies_there, _writes_here_hangs_there])
def test_a_writer_that_dies_or_hangs_loses_no_letter_and_is_started_again(
    ctx, monkeypatch, tmp_path, fault
):
    marker = tmp_path / "the writer met the fault"
    monkeypatch.setenv(FAULT, f"{os.getpid()}:{marker}")
    monkeypatch.setattr(deadlines, "_reminders", fault)
    monkeypatch.setattr(writing, "WAIT_SECONDS", 1.0)
    monkeypatch.setattr(writing, "WAIT_PER_RECORD_SECONDS", 0.0)
    referrals = [open_one(ctx) for _ in range(MANY)]
    at = remind_at(ctx)
    with letter_writer(ctx) as writer:
        first = writer.pid
        assert first is not None
        assert deadlines.send_reminders(replace(ctx, writer=writer), at) == 2 * MANY
        assert marker.exists()
        assert writer.written == 0
        eventually(lambda: gone(first), "the failed writer gone", 10)
        # The next batch big enough starts a new one; it takes its share once it listens.
        monkeypatch.setattr(deadlines, "_reminders", _REMINDERS)
        assert writer.ready(READY_SECONDS)
        assert writer.pid != first
        more = [open_one(ctx) for _ in range(MANY)]
        later = at + timedelta(minutes=1)
        assert deadlines.send_reminders(replace(ctx, writer=writer), later) == 2 * MANY
        assert writer.written == int(MANY * SHARE)
    for referral in referrals + more:
        sent = queries.outbox_for_referral(referral.id)
        assert [p for p, _, _ in sent].count("consent_reminder") == 2, referral.ref


def test_the_writer_leaves_with_the_service_that_started_it(tmp_path):
    """Killed, the service cannot close the writer: it notices and goes by itself."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from service.settings import Settings
        from service.writing.compose import Templates
        from service.writing.context import make_context
        from service.writing.writer import Writer

        settings = Settings().replace("service", data_dir={str(tmp_path / "data")!r})
        writer = Writer(settings, Templates().root, make_context)
        assert writer.ready(60)
        print(writer.pid, flush=True)
        time.sleep(3600)
        """
    )
    service = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        pid = int(service.stdout.readline())
        assert not gone(pid)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    eventually(lambda: gone(pid), "the writer gone after its service", 10)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="serve runs a writer with two cores or more")
def test_serve_has_a_writer_and_stops_it_with_itself(tmp_path, sqlite_url):
    service = InProcess(make_settings(tmp_path, sqlite_url))
    try:
        assert service.service.ctx is not None
        writer = service.service.ctx.writer
        assert writer is not None
        assert writer.pid is None  # not before a batch big enough needs it
        assert writer.ready(READY_SECONDS)
        pid = writer.pid
        assert pid is not None
    finally:
        service.stop()
    assert gone(pid)


def test_a_context_of_its_own_has_no_writer(tmp_path, sqlite_url):
    assert make_context(make_settings(tmp_path, sqlite_url), FixedClock(NOW)).writer is None
