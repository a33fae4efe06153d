"""The letter writer: a process of its own that writes a share of a busy tick's letters.

What it writes must be what the service would have written, signed with the service's keys
on the service's clock; when it dies, hangs or cannot start, the service writes those
letters itself: none lost, none sent twice, and a writer that keeps failing is left off.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from service.clock import FixedClock
from service.edge import letter_writer as writing
from service.edge.letter_writer import FEWEST, MOST_FAILURES, SHARE, LetterWriter, usable_cores
from service.evaluation import surveys
from service.keys import KEY_FILE
from service.model import Answer
from service.referral import deadlines, expiry
from service.tokens import Purpose
from service.writing.compose import Templates, templates_root
from service.writing.context import Context, make_context
from service.writing.writer import Job
from store import queries
from store.models import Party
from store.records import OutgoingMail, ReferralRecord
from tests.conftest import InProcess, eventually, make_settings
from tests.helpers import NOW, OUR_LINKS, PROVIDER, breaking_one_template
from tests.test_deadlines import expire_at, links, open_one, queued_at, remind_at, say
from tests.test_dkim import DOMAIN as DKIM_DOMAIN
from tests.test_dkim import SELECTOR, make_key, verifies
from tests.test_evaluation import due, introduce
from tests.test_tick_batches import reminders_answered_meanwhile

# Enough due items of a kind that a batch gives the writer its share, and what it takes.
MANY = FEWEST + 6
ITS_SHARE = int(MANY * SHARE)
# Starting imports the service and loads its templates: about a second here, more when busy.
READY_SECONDS = 60


@contextmanager
def letter_writer(ctx: Context) -> Iterator[LetterWriter]:
    """A writer for `ctx`, listening."""
    writer = LetterWriter(ctx)
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


def reminded(referral_id: int) -> int:
    return [p for p, _, _ in queries.outbox_for_referral(referral_id)].count("consent_reminder")


# ------------------------------------------------------------------ what it writes


def test_the_writer_writes_a_share_of_a_busy_ticks_reminders_as_the_service_would(ctx, monkeypatch):
    monkeypatch.setattr(deadlines, "_reminders", _counted)
    _CALLS.clear()
    referrals = [open_one(ctx, need=f"Books for bakery number {n}") for n in range(MANY)]
    at = remind_at(ctx)
    as_read = [queries.referral_by_id(r.id) for r in referrals]
    with letter_writer(ctx) as writer:
        assert deadlines.send_reminders(replace(ctx, writer=writer), at) == 2 * MANY
        assert writer.written == ITS_SHARE
    # The writer's share is used as it wrote it: the service wrote only the rest.
    assert _CALLS[os.getpid()] == MANY - ITS_SHARE
    queued = queued_at(at)
    expected = [m for r in as_read for m in read(_REMINDERS(ctx, r, at))]
    assert Counter(said(m) for _, m in queued) == Counter(map(said, expected))
    # Signed with the service's keys on its clock: each link opens the question of the
    # party the mail went to, about that party's referral; each question is asked once.
    asked = {p.ask_key: (p.email, r.need) for r in as_read for p in r.parties}
    opened = []
    for _, message in queued:
        [key] = {key for _, key, _ in links(ctx, message)}
        address, need = asked[key]
        assert [a.addr_spec for a in message["To"].addresses] == [address]
        assert need + "\n" in message.get_body(("plain",)).get_content()
        opened.append(key)
    assert sorted(opened) == sorted(asked)


_REMINDERS = deadlines._reminders
# Calls of the reminders' letters in this process (the writer keeps its own count).
_CALLS = Counter[int]()


def _counted(ctx: Context, referral: ReferralRecord, now: datetime) -> list[OutgoingMail]:
    _CALLS[os.getpid()] += 1
    return _REMINDERS(ctx, referral, now)


def test_the_writer_writes_expiries_and_surveys_as_the_service_would(ctx):
    expiring = [open_one(ctx) for _ in range(MANY)]
    for referral in expiring:
        say(ctx, referral, "provider", Answer.YES, NOW)
    introduced = [introduce(ctx) for _ in range(MANY // 2)]
    expired_at, surveyed_at = expire_at(ctx), due(ctx)
    as_read = [queries.referral_by_id(r.id) for r in expiring]
    expected = [m for r in as_read for m in read(expiry.letters_of(ctx, r, expired_at))]
    with letter_writer(ctx) as writer:
        served = replace(ctx, writer=writer)
        assert deadlines.expire_due(served, expired_at) == MANY
        assert writer.written == ITS_SHARE
        assert surveys.send_due(served, surveyed_at) == 2 * len(introduced)
        assert writer.written == ITS_SHARE + int(2 * len(introduced) * SHARE)
    assert Counter(said(m) for _, m in queued_at(expired_at)) == Counter(map(said, expected))
    sent = queued_at(surveyed_at)
    assert Counter(p for p, _ in sent) == {"survey": 2 * len(introduced)}
    # Each link opens the survey of the party the mail went to; each survey is sent once.
    parties = {p.id: p.email for r in introduced for p in r.parties}
    asked = {
        s.survey_key: parties[s.party_id] for r in introduced for s in queries.surveys_of(r.id)
    }
    opened = []
    for _, message in sent:
        text = message.get_body(("plain",)).get_content()
        [token] = set(re.findall(r"/s/([A-Za-z0-9_.\-]+)", text))
        key = ctx.tokens.read(Purpose.SURVEY, token)
        assert [a.addr_spec for a in message["To"].addresses] == [asked[key]]
        opened.append(key)
    assert sorted(opened) == sorted(asked)


def _stamp(token: str) -> int:
    """The moment a token says it was made (itsdangerous: payload.timestamp.signature)."""
    part = token.split(".")[1]
    return int.from_bytes(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)), "big")


def test_each_job_is_written_on_the_clock_it_comes_with(ctx):
    """Tokens read the service's clock when they are made; a stopped clock moved between
    two jobs moves their tokens with it."""
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    stamps = []
    with letter_writer(ctx) as writer:
        for moment in (at, at + timedelta(hours=5)):
            job = Job(deadlines._reminders, at, FixedClock(moment), [(referral,)])
            [written] = writer.write(job, lambda: None) or [None]
            assert written is not None
            [message, _] = read(written)
            tokens = re.findall(
                r"/c/([A-Za-z0-9_.\-]+)", message.get_body(("plain",)).get_content()
            )
            stamps.append({_stamp(t) for t in tokens})
    assert stamps == [{int(at.timestamp())}, {int((at + timedelta(hours=5)).timestamp())}]


def test_the_writer_signs_with_the_key_the_service_started_with(ctx):
    """The key file gone from disk after `serve` started: the writer, started later, does
    not make a new one of its own, whose links the service would refuse."""
    for _ in range(MANY):
        open_one(ctx)
    writer = LetterWriter(ctx)
    (Path(ctx.settings.service.data_dir) / KEY_FILE).unlink()
    try:
        assert writer.ready(READY_SECONDS)
        at = remind_at(ctx)
        assert deadlines.send_reminders(replace(ctx, writer=writer), at) == 2 * MANY
        assert writer.written == ITS_SHARE
    finally:
        writer.close()
    assert not (Path(ctx.settings.service.data_dir) / KEY_FILE).exists()
    for _, message in queued_at(at):
        assert links(ctx, message)  # each opens with the service's key


def test_a_small_batch_starts_no_writer(ctx):
    for _ in range(FEWEST - 1):
        open_one(ctx)
    writer = LetterWriter(ctx)
    try:
        at = remind_at(ctx)
        assert deadlines.send_reminders(replace(ctx, writer=writer), at) == 2 * (FEWEST - 1)
        assert writer.pid is None
    finally:
        writer.close()


def test_a_letter_the_writer_cannot_write_is_written_here_and_reported_alone(ctx, tmp_path, caplog):
    """A broken template fails in the writer as it would here: that item alone goes without
    its letter, and the log names it; the rest of the batch goes as written."""
    broken = breaking_one_template(ctx, tmp_path, "de/mail/consent_reminder.txt", NOW)
    referrals = [open_one(ctx) for _ in range(MANY)]
    german = referrals[0]  # first in the batch: in the writer's share
    Party.update(language="de").where(Party.referral == german.id).execute()
    at = remind_at(ctx)
    with letter_writer(broken) as writer, caplog.at_level(logging.ERROR):
        reminded_now = deadlines.send_reminders(replace(broken, writer=writer), at)
        assert writer.written == ITS_SHARE - 1
    assert reminded_now == 2 * (MANY - 1)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"remind of {german.ref} failed; moving on"
    ]
    assert [reminded(r.id) for r in referrals] == [0] + [2] * (MANY - 1)


# ------------------------------------------------------------------ when it fails

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


def _writes_here_stops_there(ctx: Context, referral: ReferralRecord, now) -> list[OutgoingMail]:
    """The writer stops itself (as a frozen cgroup or a debugger would): it reads and
    writes nothing more, and a send into its full socket would wait for ever."""
    if _in_the_writer():
        os.kill(os.getpid(), signal.SIGSTOP)
    return _REMINDERS(ctx, referral, now)


@pytest.mark.parametrize(
    "fault", [_writes_here_dies_there, _writes_here_hangs_there, _writes_here_stops_there]
)
def test_a_writer_that_dies_or_hangs_loses_no_letter_and_another_takes_over(
    ctx, monkeypatch, tmp_path, fault
):
    marker = tmp_path / "the writer met the fault"
    monkeypatch.setenv(FAULT, f"{os.getpid()}:{marker}")
    monkeypatch.setattr(deadlines, "_reminders", fault)
    monkeypatch.setattr(writing, "WAIT_SECONDS", 2.0)
    monkeypatch.setattr(writing, "WAIT_PER_RECORD_SECONDS", 0.0)
    referrals = [open_one(ctx) for _ in range(MANY)]
    at = remind_at(ctx)
    with letter_writer(ctx) as writer:
        first = writer.pid
        assert first is not None
        started = time.monotonic()
        assert deadlines.send_reminders(replace(ctx, writer=writer), at) == 2 * MANY
        assert time.monotonic() - started < 30  # the watchdog's 2 s, and the batch
        assert marker.exists()
        assert writer.written == 0
        assert gone(first)
        # The next batch big enough starts a new one; it takes its share once it listens.
        monkeypatch.setattr(deadlines, "_reminders", _REMINDERS)
        assert writer.ready(READY_SECONDS)
        assert writer.pid != first
        more = [open_one(ctx) for _ in range(MANY)]
        later = at + timedelta(minutes=1)
        assert deadlines.send_reminders(replace(ctx, writer=writer), later) == 2 * MANY
        assert writer.written == ITS_SHARE
    assert [reminded(r.id) for r in referrals + more] == [2] * (2 * MANY)


def _only_here() -> object:
    """A letters function from a module only this process has: the writer cannot read a job
    that names it."""
    module = types.ModuleType("care_intro_test_only_here")

    def letters(ctx, referral, now):
        return _REMINDERS(ctx, referral, now)

    letters.__module__ = module.__name__
    module.letters = letters  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    return letters


@pytest.mark.parametrize(
    "letters", [lambda ctx, referral, now: [], _only_here()], ids=["unpicklable", "unreadable"]
)
def test_a_job_the_writer_cannot_take_is_written_here(ctx, caplog, letters):
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    job = Job(letters, at, FixedClock(at), [(referral,)])
    ran = []
    with letter_writer(ctx) as writer, caplog.at_level(logging.WARNING):
        assert writer.write(job, lambda: ran.append(1)) is None
        assert ran == [1]
        assert not writer.off
        assert writer.ready(READY_SECONDS)  # and the next job finds one listening
        again = Job(deadlines._reminders, at, FixedClock(at), [(referral,)])
        [written] = writer.write(again, lambda: None) or [None]
        assert written is not None and len(written) == 2
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "the letter writer failed" in warning


def test_a_writer_that_cannot_start_is_left_off_after_a_few_tries(ctx, tmp_path, caplog):
    """Templates changed on disk since the service started: the writer would write other
    letters than the service, so it refuses; after a few tries the service stops asking."""
    root = tmp_path / "templates"
    shutil.copytree(templates_root(), root)
    started = make_context(ctx.settings, FixedClock(NOW), Templates(root))
    writer = LetterWriter(started)
    (root / "en/mail/consent_reminder.txt").write_text("{% set subject = 'Changed' %}Hi\n")
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(MOST_FAILURES):
                assert not writer.ready(READY_SECONDS)
            assert writer.off
            assert writer.share(MANY) == 0
            assert writer.pid is None
    finally:
        writer.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "changed on disk since serve started" in errors[0]
    assert "until it restarts" in errors[0]


def test_a_second_batch_meanwhile_writes_its_own_letters(ctx, monkeypatch, tmp_path):
    """One job at a time: a batch that finds the writer busy does not wait for it."""
    marker = tmp_path / "the writer met the fault"
    monkeypatch.setenv(FAULT, f"{os.getpid()}:{marker}")
    monkeypatch.setenv(GO_ON, str(tmp_path / "go on"))
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    slow = Job(_writes_here_waits_there, at, FixedClock(at), [(referral,)])
    answers: list[object] = []
    with letter_writer(ctx) as writer:
        busy = threading.Thread(target=lambda: answers.append(writer.write(slow, lambda: None)))
        busy.start()
        eventually(marker.exists, "the writer busy with the first job", 30)
        ran, second_answers = [], []
        second = Job(deadlines._reminders, at, FixedClock(at), [(referral,)])
        meanwhile = threading.Thread(
            target=lambda: second_answers.append(writer.write(second, lambda: ran.append(1)))
        )
        meanwhile.start()
        meanwhile.join(10)  # bounded: a second batch that waited would still be waiting
        assert not meanwhile.is_alive()
        assert second_answers == [None] and ran == [1]
        assert answers == []  # the first job still in the writer
        (tmp_path / "go on").touch()
        busy.join(30)
    [first] = answers
    assert isinstance(first, list) and first[0] is not None


# A file the writer waits for, in the job that keeps it busy.
GO_ON = "CARE_INTRO_TEST_WRITER_GO_ON"


def _writes_here_waits_there(ctx: Context, referral: ReferralRecord, now) -> list[OutgoingMail]:
    if _in_the_writer():
        go_on = Path(os.environ[GO_ON])
        for _ in range(600):  # bounded: a minute at most
            if go_on.exists():
                break
            time.sleep(0.1)
    return _REMINDERS(ctx, referral, now)


def test_a_stopped_writer_is_killed_at_the_deadline_even_mid_send(ctx, monkeypatch):
    """Stopped before the job, the writer reads nothing: a job bigger than its socket holds
    would wait in the send for ever without the deadline."""
    monkeypatch.setattr(writing, "WAIT_SECONDS", 2.0)
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    # Each record its own object, so the job pickles to megabytes, not one record and links.
    records = [(replace(referral, need=f"{referral.need} {n}" * 20),) for n in range(2_000)]
    ran = []
    with letter_writer(ctx) as writer:
        pid = writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        job = Job(deadlines._reminders, at, FixedClock(at), records)
        assert writer.write(job, lambda: ran.append(1)) is None
        assert ran == [1]
        assert gone(pid)


def test_the_writer_ignores_the_signals_that_stop_serve(ctx):
    """An init system's SIGTERM and a Ctrl-C reach the whole group; the writer stays until
    serve, stopping, closes its end."""
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    with letter_writer(ctx) as writer:
        pid = writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
        job = Job(deadlines._reminders, at, FixedClock(at), [(referral,)])
        [written] = writer.write(job, lambda: None) or [None]
        assert written is not None and len(written) == 2
        assert writer.pid == pid
    assert gone(pid)


def test_templates_changed_after_the_writer_started_do_not_change_its_letters(ctx, tmp_path):
    """It loads every template when it starts, as what serve started with: an upgrade that
    lands later does not reach its letters until serve restarts."""
    root = tmp_path / "templates"
    shutil.copytree(templates_root(), root)
    started = make_context(ctx.settings, FixedClock(NOW), Templates(root))
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    with letter_writer(started) as writer:
        (root / "en/mail/consent_reminder.txt").write_text("{% set subject = 'Changed' %}Hi\n")
        job = Job(deadlines._reminders, at, FixedClock(at), [(referral,)])
        [written] = writer.write(job, lambda: None) or [None]
    assert written is not None
    assert {m["Subject"] for m in read(written)} == {
        m["Subject"] for m in read(_REMINDERS(ctx, referral, at))
    }
    assert "Changed" not in {m["Subject"] for m in read(written)}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test's DKIM key")
def test_the_writers_letters_carry_the_services_dkim_signature(tmp_path, sqlite_url):
    """The DKIM key comes from serve: the writer's mail verifies against the record serve's
    operator published."""
    key, record = make_key(tmp_path)
    settings = make_settings(tmp_path, sqlite_url).replace(
        "outbound", dkim_domain=DKIM_DOMAIN, dkim_selector=SELECTOR, dkim_key_file=str(key)
    )
    ctx = make_context(settings, FixedClock(NOW))
    referral = queries.referral_by_id(open_one(ctx).id)
    at = remind_at(ctx)
    with letter_writer(ctx) as writer:
        key.unlink()  # read by serve at start; the writer never reads it
        job = Job(deadlines._reminders, at, FixedClock(at), [(referral,)])
        [written] = writer.write(job, lambda: None) or [None]
    assert written is not None and len(written) == 2
    for mail in written:
        assert mail.raw.startswith(b"DKIM-Signature:")
        assert verifies(mail.raw, record)


def test_a_letter_the_writer_wrote_is_written_again_when_an_answer_came_meanwhile(ctx):
    """Written before the lock, by the writer or here: an answer between the writing and
    the lock voids it, and the one who answered is not reminded."""
    referrals = [open_one(ctx) for _ in range(MANY)]
    answered = referrals[0]  # first in the batch: in the writer's share
    at = remind_at(ctx)
    with letter_writer(ctx) as writer:
        batch = reminders_answered_meanwhile(replace(ctx, writer=writer), answered, at)
        assert deadlines.claim_each("reminders", batch, at, MANY) == 2 * MANY - 1
        assert writer.written == ITS_SHARE
    sent = queries.outbox_for_referral(answered.id)
    assert [r for p, _, r in sent if p == "consent_reminder"] == [(PROVIDER,)]
    assert [reminded(r.id) for r in referrals[1:]] == [2] * (MANY - 1)


# ------------------------------------------------------------------ its life


def test_the_writer_leaves_with_the_service_that_started_it(tmp_path, sqlite_url):
    """Killed, the service cannot close the writer: it notices and goes by itself."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from service.clock import SystemClock
        from service.edge.letter_writer import LetterWriter
        from service.settings import Settings
        from service.writing.context import make_context

        settings = Settings().replace("service", data_dir={str(tmp_path / "data")!r})
        writer = LetterWriter(make_context(settings, SystemClock()))
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


@pytest.mark.skipif(usable_cores() < 2, reason="serve runs a writer with two cores or more")
def test_serve_has_a_writer_and_stops_it_with_itself(tmp_path, sqlite_url):
    service = InProcess(make_settings(tmp_path, sqlite_url))
    try:
        writer = service.service.letter_writer
        assert writer is not None
        assert service.service.ctx is not None and service.service.ctx.writer is writer
        assert writer.pid is None  # not before a batch big enough needs it
        assert writer.ready(READY_SECONDS)
        pid = writer.pid
        assert pid is not None
    finally:
        service.stop()
    assert not Path(f"/proc/{pid}").exists()  # gone and reaped
    assert writer.off
    assert writer.share(MANY) == 0
    assert writer.pid is None


def test_a_context_of_its_own_has_no_writer(tmp_path, sqlite_url):
    assert make_context(make_settings(tmp_path, sqlite_url), FixedClock(NOW)).writer is None


def test_a_process_pinned_to_one_core_counts_one():
    """serve runs no writer where it may use one core only, whatever the host has."""
    pinned = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from service.edge.letter_writer import usable_cores; print(usable_cores())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert float(pinned.stdout) == 1.0
