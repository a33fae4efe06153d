"""GET /metrics over real HTTP, parsed as Prometheus parses it, after real SMTP traffic."""

from __future__ import annotations

import asyncio
import smtplib
import urllib.error
import urllib.request

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.edge.metrics import Metrics
from tests.conftest import InProcess, Sink, eventually, free_port, make_settings, wire_fixture
from tests.helpers import PROVIDER, RCPT, request_referral, web

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_figures_follow_a_request_through_the_service(running: InProcess, sink: Sink):
    port = running.service.web_port
    before = scrape(port)
    assert value(before, "care_intro_smtp_messages_total", outcome="accepted") == 0
    assert value(before, "care_intro_database_up") == 1

    links = request_referral(running.service.smtp_port, sink)
    assert web.post(links[PROVIDER], data={"answer": "yes"}).status_code == 200
    # A sender nobody allowed to refer: refused in the dialogue.
    with (
        smtplib.SMTP("127.0.0.1", running.service.smtp_port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPDataError),
    ):
        smtp.sendmail(
            "mallory@elsewhere.example",
            [RCPT],
            wire_fixture("request_thunderbird_labelled_lines.eml"),
        )

    def settled() -> Samples | None:
        samples = scrape(port)
        # Both consent questions timed, from the request's acceptance to their sending.
        done = value(samples, "care_intro_consent_delay_seconds_count") == 2
        return samples if done else None

    samples = eventually(settled, "both consent mails timed")
    assert value(samples, "care_intro_smtp_messages_total", outcome="accepted") == 1
    assert value(samples, "care_intro_smtp_messages_total", outcome="refused") == 1
    assert value(samples, "care_intro_smtp_messages_total", outcome="temporary") == 0
    assert value(samples, "care_intro_referrals", state="asking") == 1
    sent = len(sink.deliveries)
    assert value(samples, "care_intro_outbox_mails", state="sent") == sent
    assert value(samples, "care_intro_outbox_mails", state="pending") == 0
    assert value(samples, "care_intro_delivery_attempts_total", outcome="sent") == sent
    assert value(samples, "care_intro_consent_delay_seconds_bucket", le="+Inf") == 2
    assert value(samples, "care_intro_consent_answers", channel="link", answer="yes") == 1


def test_metrics_on_their_own_port(tmp_path, store_url, sink: Sink):
    settings = make_settings(tmp_path, store_url, sink.port).replace("metrics", port=free_port())
    service = InProcess(settings)
    try:
        samples = scrape(settings.metrics.port)
        assert value(samples, "care_intro_database_up") == 1
        # Not on the pages' port then: an operator keeps them apart to keep them private.
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(service.service.web_port)
        assert refused.value.code == 404
        refused.value.close()
    finally:
        service.stop()


def test_each_service_counts_in_its_own_registry(sqlite_url):
    # Two in one process (tests, an embedding program): no clash of names, no shared counts.
    first, second = Metrics(asyncio.to_thread), Metrics(asyncio.to_thread)
    first.answered("250 2.0.0 OK: queued as 1")
    second.answered("451 4.3.0 Temporary local problem, please try again later")

    def counts(metrics: Metrics) -> Samples:
        text = generate_latest(metrics.registry).decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    one, two = counts(first), counts(second)
    assert value(one, "care_intro_smtp_messages_total", outcome="accepted") == 1
    assert value(one, "care_intro_smtp_messages_total", outcome="temporary") == 0
    assert value(two, "care_intro_smtp_messages_total", outcome="accepted") == 0
    assert value(two, "care_intro_smtp_messages_total", outcome="temporary") == 1
    assert value(one, "care_intro_database_up") == 1
