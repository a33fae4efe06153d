"""GET /metrics: Prometheus figures under care_intro_, one registry per running service.

Counters move as things happen in this process (SMTP answers, delivery attempts, consent
delays); what the store already knows (referrals by state, answers, the outbox) is read from
it at each scrape, so every instance sharing a database reports the same totals for those.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.delivery.outbox import Report
from store import queries
from store.db import RunDb
from store.records import OutboxItem

log = logging.getLogger(__name__)

# From a request accepted to its consent questions handed on: seconds when all is well,
# hours when the relay or the outbox is in trouble.
CONSENT_DELAY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


def outcome_of_reply(reply: str) -> str:
    """An SMTP reply's class: accepted (2xx), temporary (4xx) or refused (5xx)."""
    return {"2": "accepted", "4": "temporary"}.get(reply[:1], "refused")


def outcome_of_report(report: Report) -> str:
    return "sent" if report.sent else "retrying" if report.retrying else "failed"


class StoreFigures(Collector):
    """Read from the store at each scrape (run on a store thread, never the event loop)."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "care_intro_database_up", "1 when the store answered this scrape, else 0"
        )
        try:
            referrals = queries.referral_counts()
            outbox = queries.outbox_counts()
            consents = queries.consent_answer_counts()
            surveys = queries.survey_answer_counts()
        except Exception as exc:
            log.warning("metrics: the database did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_state = GaugeMetricFamily("care_intro_referrals", "Referrals by state", labels=["state"])
        for state, count in sorted(referrals.items()):
            by_state.add_metric([state], count)
        yield by_state
        mails = GaugeMetricFamily(
            "care_intro_outbox_mails", "Mails in the outbox by state", labels=["state"]
        )
        for state in ("pending", "sent", "failed"):
            mails.add_metric([state], outbox.get(state, 0))
        yield mails
        answers = GaugeMetricFamily(
            "care_intro_consent_answers",
            "Consent answers given, by channel (link, reply) and answer",
            labels=["channel", "answer"],
        )
        for (channel, answer), count in sorted(consents.items()):
            answers.add_metric([channel, answer], count)
        yield answers
        surveyed = GaugeMetricFamily(
            "care_intro_survey_answers", "Surveys answered, by channel", labels=["channel"]
        )
        for channel, count in sorted(surveys.items()):
            surveyed.add_metric([channel], count)
        yield surveyed


class Metrics:
    def __init__(self, run_db: RunDb) -> None:
        self.run_db = run_db
        # Not the global default registry: tests and embedders run several services at once.
        self.registry = CollectorRegistry()
        self.smtp = Counter(
            "care_intro_smtp_messages",
            "Messages answered at SMTP DATA, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("accepted", "refused", "temporary"):
            self.smtp.labels(outcome)
        self.attempts = Counter(
            "care_intro_delivery_attempts",
            "Attempts to hand a mail on, by outcome (sent, retrying, failed)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("sent", "retrying", "failed"):
            self.attempts.labels(outcome)
        self.consent_delay = Histogram(
            "care_intro_consent_delay_seconds",
            "From a request accepted by SMTP to each of its consent questions handed on",
            buckets=CONSENT_DELAY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreFigures())
        # Consent mails sent and not yet timed: (outbox id, when it went).
        self._to_time: list[tuple[int, datetime]] = []
        self._timing: asyncio.Task[None] | None = None

    def answered(self, reply: str) -> None:
        self.smtp.labels(outcome_of_reply(reply)).inc()

    def attempted(self, item: OutboxItem, report: Report, now: datetime) -> None:
        self.attempts.labels(outcome_of_report(report)).inc()
        if report.sent and item.purpose == "consent_request":
            # Off the outbox's path, and together: one look-up for what went meanwhile, not
            # a store call per mail competing with the outbox's own.
            self._to_time.append((item.id, now))
            if self._timing is None or self._timing.done():
                self._timing = asyncio.get_running_loop().create_task(self._observe_delays())

    async def _observe_delays(self) -> None:
        while self._to_time:
            batch, self._to_time = self._to_time, []
            try:
                received = await self.run_db(
                    queries.requests_received_at, [outbox_id for outbox_id, _ in batch]
                )
            except Exception as exc:
                log.warning("metrics: could not time consent mails: %s", type(exc).__name__)
                continue
            for outbox_id, sent_at in batch:
                if (received_at := received.get(outbox_id)) is not None:
                    self.consent_delay.observe(max((sent_at - received_at).total_seconds(), 0))

    async def settle(self) -> None:
        """Let the look-ups under way finish, before the store threads stop."""
        if self._timing is not None:
            await asyncio.gather(self._timing, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await self.run_db(generate_latest, self.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def metrics_app(metrics: Metrics) -> web.Application:
    """/metrics alone, for `[metrics] port`: on a private address, away from the pages."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)
    return app
