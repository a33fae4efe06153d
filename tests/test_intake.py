"""Behind the SMTP answer: what each stored message becomes, and what the referrer is told."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from service.clock import FixedClock
from service.delivery import holder
from service.intake import pipeline, receiving
from service.model import Channel
from service.writing.compose import Templates
from service.writing.context import make_context
from store import queries
from tests.conftest import REFERRER, fixture_bytes
from tests.helpers import (
    NOW,
    arrive,
    at_once,
    inbound_counts,
    outbox_mails,
    outcome,
    watch_commits,
)


@pytest.mark.parametrize(
    "name",
    [
        "request_thunderbird_labelled_lines.eml",
        "request_gmail_multipart_quoted_printable.eml",
        "request_with_pdf_attachment.eml",
    ],
)
def test_a_good_request_becomes_a_referral(ctx, name):
    state, ref = outcome(ctx, arrive(name))
    assert state == "processed"
    referral = queries.referral_by_ref(ref)
    assert referral.state == "asking"
    assert [p for p, _, _ in queries.outbox_for_referral(referral.id)] == [
        "receipt",
        "consent_request",
        "consent_request",
    ]


def test_only_intakes_commits_return_before_the_disk_has_them(ctx, store_url, monkeypatch):
    """A request stored as the SMTP edge stores a group, worked out by intake, and its mail
    claimed by the outbox, each commit watched on its way to the store: the 250's and the
    outbox's claim wait for the disk, and so sync intake's two, which do not."""
    commits = watch_commits(monkeypatch)
    raw = fixture_bytes("request_thunderbird_labelled_lines.eml")
    offered = receiving.Offered(
        raw, REFERRER, ("refer@intro.example.org",), receiving.headers_of(raw)
    )
    [fate] = receiving.admit_and_receive_together([offered], ctx.settings, NOW)
    assert fate.received.inbound_id is not None
    pipeline.process_pending(ctx, NOW)
    assert len(queries.claim_outbox(NOW, NOW, 10)) == 3
    stored = [s for w, s in commits if ("INSERT", "inbound_message") in w]
    claimed = [s for w, s in commits if ("UPDATE", "outbox_mail") in w]
    assert stored == [True]  # the 250
    assert claimed == [True]  # before any mail leaves
    taken = [s for w, s in commits if ("UPDATE", "inbound_message") in w]
    assert taken == [False, False]  # intake's claim, and its result with the referral
    assert not any(s for w, s in commits if ("INSERT", "referral") in w)


def test_a_referrer_allowed_by_domain_pattern_is_heard(ctx):
    inbound_id = arrive("request_apple_mail_bullets_and_bold.eml", "maria@partners.example")
    assert outcome(ctx, inbound_id)[0] == "processed"


def test_a_request_without_need_gets_one_reply_naming_what_is_missing(ctx):
    inbound_id = arrive("request_outlook_windows1252_without_need.eml")
    assert outcome(ctx, inbound_id) == ("rejected", "no_need")
    assert queries.referral_counts() == {}
    [reply] = outbox_mails()
    assert reply["To"].addresses[0].addr_spec == REFERRER
    assert reply["In-Reply-To"] == (
        "<AM9PR02MB1234A1B2C3D4E5F6A7B8C9D0E1F2@AM9PR02MB1234.eurprd02.prod.outlook.com>"
    )
    text = reply.get_body(("plain",)).get_content()
    assert "Add a Need line with the exact product, service or reason for contact" in text
    assert "A good referral carries" in text
    assert "jane@acme.example" not in text.split("You can write it like this")[0]


def test_every_problem_is_in_the_one_reply(ctx):
    arrive("request_provider_is_referrer_and_bad_prospect.eml")
    pipeline.process_pending(ctx, NOW)
    [reply] = outbox_mails()
    text = reply.get_body(("plain",)).get_content()
    assert "The person who can help (Provider) is you (ada@referrer.example)" in text
    assert (
        "We could not find one valid email address for the person who needs help "
        '(Prospect) in "Bob Smith <bob at bakery dot example>"'
    ) in text


@pytest.mark.parametrize(
    ("name", "envelope_from", "note"),
    [
        (
            "dsn_postfix_user_unknown.eml",
            "",
            ("ignored", "permanent failure of no mail we know: bob@bakery.example 5.1.1"),
        ),
        (
            "auto_reply_exchange_out_of_office.eml",
            REFERRER,
            ("ignored", "automatic message: Auto-Submitted: auto-replied"),
        ),
        (
            "request_from_stranger.eml",
            "mallory@elsewhere.example",
            ("ignored", "<mallory@elsewhere.example> is not allowed to send requests here"),
        ),
    ],
    ids=["bounce-for-no-mail-of-ours", "out-of-office", "stranger"],
)
def test_what_is_not_a_request_is_kept_and_never_answered(ctx, name, envelope_from, note):
    inbound_id = arrive(name, envelope_from)
    assert outcome(ctx, inbound_id) == note
    assert outbox_mails() == []
    assert queries.inbound_by_id(inbound_id).raw == fixture_bytes(name)


def test_the_same_message_id_twice_is_one_referral(ctx):
    first = receiving.receive(
        fixture_bytes("request_thunderbird_labelled_lines.eml"),
        REFERRER,
        ["refer@intro.example.org"],
        Channel.SMTP,
        NOW,
    )
    again = receiving.receive(
        fixture_bytes("request_thunderbird_labelled_lines.eml"),
        REFERRER,
        ["refer@intro.example.org"],
        Channel.SMTP,
        NOW,
    )
    assert (first.duplicate, again.duplicate) == (False, True)
    pipeline.process_pending(ctx, NOW)
    assert queries.referral_counts() == {"asking": 1}


# A run of intake in another instance, on another host: alive as far as we can tell.
ELSEWHERE = "other-host.example/4242/77#run"


def test_a_message_another_instance_is_working_on_is_left_to_it(ctx):
    inbound_id = arrive("request_thunderbird_labelled_lines.eml")
    assert [r.id for r in queries.claim_inbound(NOW, NOW + pipeline.LEASE, 10, ELSEWHERE)] == [
        inbound_id
    ]
    assert pipeline.process_pending(ctx, NOW) == 0
    assert queries.inbound_by_id(inbound_id).state == "new"
    assert queries.referral_counts() == {}


def test_a_message_whose_claim_ran_out_is_taken_over_and_handled_once(ctx):
    """The instance that stalled past its lease comes back with its result: it must not
    stand beside the one that took the message over."""
    inbound_id = arrive("request_thunderbird_labelled_lines.eml")
    queries.claim_inbound(NOW, NOW + pipeline.LEASE, 10, ELSEWHERE)
    later = NOW + pipeline.LEASE + timedelta(seconds=1)
    assert pipeline.process_pending(ctx, later) == 1
    assert not queries.finish_claimed(inbound_id, ELSEWHERE, "processed", "R-LATE", later)
    record = queries.inbound_by_id(inbound_id)
    assert (record.state, record.note) == ("processed", queries.recent_referrals()[0].ref)
    assert queries.referral_counts() == {"asking": 1}
    queued = [m.purpose for m in queries.claim_outbox(later, later, 100)]
    assert sorted(queued) == ["consent_request", "consent_request", "receipt"]


def test_a_claim_left_by_a_process_that_is_gone_is_taken_at_once(ctx):
    """`serve` killed mid-batch: its successor on the same host (the same pid, as in a
    restarted container, but a later start) does not wait out the lease."""
    me = holder.this_process()
    predecessor = f"{holder.Holder(me.host, me.pid, 'an-earlier-start')}#run"
    inbound_id = arrive("request_thunderbird_labelled_lines.eml")
    queries.claim_inbound(NOW, NOW + pipeline.LEASE, 10, predecessor)
    assert pipeline.process_pending(ctx, NOW) == 1
    assert queries.inbound_by_id(inbound_id).state == "processed"


def test_two_instances_at_once_handle_each_message_once(ctx):
    raw = fixture_bytes("request_thunderbird_labelled_lines.eml")
    for n in range(12):
        copy = raw.replace(b"Message-ID: <", f"Message-ID: <copy{n}.".encode(), 1)
        receiving.receive(copy, REFERRER, ["refer@intro.example.org"], Channel.SMTP, NOW)
    # Small batches, so that the two take turns claiming.
    done = at_once(lambda: sum(pipeline.process_pending(ctx, NOW, limit=1) for _ in range(12)))
    assert sum(done) == 12
    assert inbound_counts() == {"processed": 12}
    assert queries.referral_counts() == {"asking": 12}
    # A receipt and two questions for each, none written twice.
    assert len({m["Message-ID"] for m in outbox_mails()}) == 36


def test_a_failure_while_processing_is_quarantined_and_contained(ctx, tmp_path: Path):
    broken = ctx.__class__(ctx.settings, ctx.tokens, Templates(tmp_path / "no-templates"))
    (tmp_path / "no-templates" / "en").mkdir(parents=True)
    bad = arrive("request_thunderbird_labelled_lines.eml")
    good = arrive("request_with_pdf_attachment.eml")
    assert pipeline.process_pending(broken, NOW) == 2
    record = queries.inbound_by_id(bad)
    assert record.state == "quarantined"
    assert record.note.startswith("internal error: TemplateNotFound")
    # Nothing half-done survives the failure: no referral, no mail.
    assert queries.referral_counts() == {}
    assert outbox_mails() == []
    assert pipeline.process_pending(ctx, NOW) == 0  # quarantine is final until someone retries
    assert queries.inbound_by_id(good).state == "quarantined"
    assert queries.requeue_inbound(bad) is True
    assert queries.requeue_inbound(bad) is False  # only from quarantine
    assert pipeline.process_pending(ctx, NOW) == 1
    assert queries.inbound_by_id(bad).state == "processed"


def test_a_message_with_nothing_to_read_is_quarantined_and_the_referrer_told_once(ctx):
    inbound_id = arrive("request_outlook_tnef_winmail_dat_only.eml")
    assert outcome(ctx, inbound_id) == ("quarantined", "no readable text (application/ms-tnef)")
    [note] = outbox_mails()
    assert note["To"].addresses[0].addr_spec == REFERRER
    assert note["Subject"] == "We could not read your request (Re: Intro Jane / Bob)"
    assert note["In-Reply-To"] == "<EXCH01-TNEF-0001@EXCH01.referrer.example>"
    assert "we have not contacted anyone" in note.get_body(("plain",)).get_content()
    assert queries.referral_counts() == {}
    assert [r.id for r in queries.quarantined()] == [inbound_id]


def test_unprompted_mail_to_one_address_is_capped_per_day(ctx, caplog):
    """Seven broken requests in a day get five replies; the next day's gets one again.

    The warning for each one held back says what and why, without the address."""
    raw = fixture_bytes("request_outlook_windows1252_without_need.eml")
    limit = ctx.settings.outbound.daily_limit_per_address
    for n in range(limit + 2):
        copy = raw.replace(b"Message-ID: <", f"Message-ID: <copy{n}.".encode(), 1)
        receiving.receive(copy, REFERRER, ["refer@intro.example.org"], Channel.SMTP, NOW)
    assert pipeline.process_pending(ctx, NOW) == limit + 2
    assert len(outbox_mails()) == limit
    assert inbound_counts() == {"rejected": limit + 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and all("@" not in w for w in warnings)
    assert warnings[0].startswith("not sending request_refused about inbound ")
    tomorrow = NOW + timedelta(days=1, seconds=1)
    late = raw.replace(b"Message-ID: <", b"Message-ID: <tomorrow.", 1)
    receiving.receive(late, REFERRER, ["refer@intro.example.org"], Channel.SMTP, tomorrow)
    pipeline.process_pending(ctx, tomorrow)
    due = queries.claim_outbox(tomorrow, tomorrow, 100)
    assert [m.purpose for m in due if m.created_at == tomorrow] == ["request_refused"]


def test_a_report_is_an_answer_capped_on_its_own_not_by_the_unprompted_limit(ctx, caplog):
    """Asked-for reports leave the unprompted allowance alone, and stop at their own cap."""
    outbound = replace(
        ctx.settings.outbound, daily_limit_per_address=1, daily_reports_per_referrer=2
    )
    ctx = make_context(replace(ctx.settings, outbound=outbound), FixedClock(NOW))
    command = fixture_bytes("command_report_apple_mail_subject.eml")
    broken = fixture_bytes("request_outlook_windows1252_without_need.eml")
    inbound = []
    for n, raw in enumerate((command, command, broken, command)):
        copy = re.sub(rb"(?im)^(Message-ID: <)", rb"\g<1>copy%d." % n, raw, count=1)
        received = receiving.receive(copy, REFERRER, ["refer@intro.example.org"], Channel.SMTP, NOW)
        inbound.append(received.inbound_id)
    assert pipeline.process_pending(ctx, NOW) == 4
    # Two reports, then the refusal the unprompted limit of one still allows; the third
    # report waits for tomorrow.
    sent = [(m.purpose, m.recipients) for m in queries.claim_outbox(NOW, NOW, 100)]
    assert sorted(sent) == [
        ("report", (REFERRER,)),
        ("report", (REFERRER,)),
        ("request_refused", (REFERRER,)),
    ]
    notes = [queries.inbound_by_id(i).note for i in inbound]
    assert notes[0] == notes[1] == "report sent"
    assert notes[3] == "report not sent: daily limit"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w for w in warnings if w.startswith("not sending a report")]
    assert all("@" not in w for w in warnings)
