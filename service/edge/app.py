"""`serve`: the SMTP listener, the pages, the scheduler and the outbox worker in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import schedule
from aiohttp import web

from service.clock import Clock, SystemClock
from service.delivery import transports
from service.delivery.outbox import Outbox, Transport
from service.edge import jobs
from service.edge.group_commit import GroupCommit
from service.edge.health import Health, Runs
from service.edge.letter_writer import LetterWriter, usable_cores
from service.edge.metrics import Metrics, metrics_app
from service.edge.pacing import Arrivals
from service.edge.pages import make_app
from service.edge.policy import PolicyServer, decider
from service.edge.smtp import InboundHandler, smtp_factory
from service.intake import pipeline
from service.settings import Settings
from service.writing.context import Context, make_context
from store import db

log = logging.getLogger(__name__)

T = TypeVar("T")

# Catch-up intervals: the work is kicked the moment it arrives; these only make sure that
# what a crash or another instance left behind is picked up soon.
INTAKE_EVERY_SECONDS = 10
OUTBOX_EVERY_SECONDS = 5
# Reminders, expiry, surveys and the digest are due in days or hours; a minute late is on time.
DEADLINES_EVERY_SECONDS = 60
# Claims of processes on this host that ended (a `tick` killed by cron's timeout) go back
# this soon, rather than after their lease.
RELEASE_EVERY_SECONDS = 60
STOP_GRACE_SECONDS = 30
# Groups of inbound mail committed at once on PostgreSQL; the SMTP edge's pool has a thread
# for each and one for the policy service, so Postfix's questions never wait behind them.
GROUP_WRITERS_POSTGRESQL = 2
# How long one thread may hold the GIL while another waits for it (Python's default: 5 ms).
# A store thread gives the GIL up for every database call and must have it back to go on;
# an event loop busy answering sixteen sessions kept it for up to the whole interval, so a
# group's commit returned and its sessions still waited. Under the SMTP bench's load the
# median group commit went from 4.2 to 2.7 ms. A shorter turn costs a few microseconds
# per switch, and only while two threads want the GIL at once.
SWITCH_INTERVAL_SECONDS = 0.0005


class Kicker:
    """Runs one job, never twice at once; a kick while it runs makes it run once more after."""

    def __init__(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.job = job
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._closed = False

    def kick(self) -> None:
        if self._closed:
            return  # stopping: what is left is in the store for the next start
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self.job()
            except db.DatabaseUnavailable as exc:
                # An outage, not a fault of ours: one line, and the next kick tries again.
                log.warning("%s waits for the database: %s", self.name, exc)
            except Exception as exc:
                if not db.is_full(exc):
                    log.exception("%s failed; it runs again on the next kick", self.name)
                else:  # the operator's to fix; a traceback per kick would only bury it
                    log.warning("%s waits for room: the store is full", self.name)
            if not self._again:
                return

    async def settle(self) -> None:
        """Kick, and return once no run is under way: the job has run on everything that was
        there when asked (a caller that must see it done, like a test)."""
        self.kick()
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Take no more kicks and let the run under way finish."""
        self._closed = True
        if self._task is not None:
            await self._task


class Service:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.transport = transport or transports.from_settings(settings)
        # Peewee keeps one connection per thread: small fixed pools bound them, and keep
        # blocking store calls off the event loop that serves every SMTP and HTTP client.
        # The SMTP edge has a pool of its own, so a message is stored while batch work
        # (intake, deadlines, the outbox) keeps the other busy: no SMTP reply waits on it.
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store")
        self.smtp_executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="smtp-store")
        self.runs = Runs()
        self.metrics = Metrics(self.run_db)
        self.sender = Outbox(
            self.transport,
            self.run_db,
            self.clock,
            connections=settings.outbound.connections,
            observe=self.metrics.attempted,
        )
        self.ctx: Context | None = None
        self.letter_writer: LetterWriter | None = None
        self.group: GroupCommit | None = None
        self.smtp_server: asyncio.base_events.Server | None = None
        self.policy: PolicyServer | None = None
        self.web_runner: web.AppRunner | None = None
        self.metrics_runner: web.AppRunner | None = None
        self.scheduler = schedule.Scheduler()
        self._scheduler_task: asyncio.Task[None] | None = None
        self.intake = Kicker("intake", self._intake)
        self.arrivals = Arrivals()
        self.outbox = Kicker("outbox", self._outbox)
        self.deadlines = Kicker("deadlines", self._deadlines)
        self.failures = Kicker("failures", self._failures)
        self.claims = Kicker("claims", self.sender.release_dead)
        self.smtp_port = 0
        self.web_port = 0
        self.metrics_port = 0

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run_smtp_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.smtp_executor, fn, *args)

    async def start(self) -> None:
        database = self.settings.database
        await self.run_db(db.bind, database.url, database.quota_mb)
        at_risk = await self.run_db(db.commits_at_risk)
        if at_risk:
            log.warning(
                "%s: a message answered 250 can be lost if the database server crashes; "
                "accepted mail is kept only with fsync, synchronous_commit and "
                "full_page_writes on",
                at_risk,
            )
        # What a killed predecessor on this host held goes out now, not when its lease ends.
        await self.sender.release_dead()
        self.ctx = make_context(self.settings, self.clock)
        if usable_cores() >= 2:
            # A busy tick's letters, a share of them on another core; started at the first
            # batch big enough to need it, so a quiet service runs no second process.
            self.letter_writer = LetterWriter(self.ctx)
            self.ctx = replace(self.ctx, writer=self.letter_writer)
        loop = asyncio.get_running_loop()

        writers = GROUP_WRITERS_POSTGRESQL if db.is_postgresql() else 1
        self.group = GroupCommit(self.settings, self.clock, self.run_smtp_db, writers)
        handler = InboundHandler(self.settings, self.group, self._stored)
        handler.on_answer = self.metrics.answered
        inbound = self.settings.inbound
        self.smtp_server = await loop.create_server(
            smtp_factory(handler, self.settings), host=inbound.host, port=inbound.port
        )
        self.smtp_port = self.smtp_server.sockets[0].getsockname()[1]

        app = make_app(self.ctx, self.clock, self.run_db, self.outbox.kick)
        health = Health(self.clock, self.run_db, self.runs, self.settings.health)
        app.router.add_get("/healthz", health.handle)
        metrics = self.settings.metrics
        if not metrics.port:
            app.router.add_get("/metrics", self.metrics.handle)
        self.web_runner = web.AppRunner(app, access_log=None)
        await self.web_runner.setup()
        site = web.TCPSite(self.web_runner, self.settings.web.host, self.settings.web.port)
        await site.start()
        self.web_port = self.web_runner.addresses[0][1]
        if metrics.port:
            self.metrics_runner = web.AppRunner(metrics_app(self.metrics), access_log=None)
            await self.metrics_runner.setup()
            await web.TCPSite(self.metrics_runner, metrics.host, metrics.port).start()
            self.metrics_port = self.metrics_runner.addresses[0][1]
        else:
            self.metrics_port = self.web_port

        policy = self.settings.policy
        if policy.port:
            # Postfix waits on these in its dialogue: the SMTP edge's pool, not batch work's.
            self.policy = PolicyServer(decider(self.settings, self.run_smtp_db))
            await self.policy.start(policy.host, policy.port)

        self.scheduler.every(INTAKE_EVERY_SECONDS).seconds.do(self.intake.kick)
        self.scheduler.every(OUTBOX_EVERY_SECONDS).seconds.do(self.outbox.kick)
        self.scheduler.every(DEADLINES_EVERY_SECONDS).seconds.do(self.deadlines.kick)
        # Failures are kicked by the outbox run that met them; this finds those a crash left.
        self.scheduler.every(DEADLINES_EVERY_SECONDS).seconds.do(self.failures.kick)
        self.scheduler.every(RELEASE_EVERY_SECONDS).seconds.do(self.claims.kick)
        self._scheduler_task = loop.create_task(self._run_scheduler(), name="scheduler")
        # Whatever a previous run stored but did not finish is due now.
        self.intake.kick()
        self.outbox.kick()
        self.deadlines.kick()
        self.failures.kick()
        log.info(
            "care-intro serving: %s %s:%d for %s, pages %s:%d, outbound %s%s",
            inbound.protocol.upper(),
            inbound.host,
            self.smtp_port,
            self.settings.referral_mailbox,
            self.settings.web.host,
            self.web_port,
            self.settings.outbound.transport,
            f", policy {policy.host}:{self.policy.port}" if self.policy else "",
        )

    async def stop(self) -> None:
        # A start that failed before listening has said why already; "stopped" would only
        # add a second line to the one an operator has to read.
        started = self.smtp_server is not None
        if self.smtp_server is not None:
            self.smtp_server.close()
            await self.smtp_server.wait_closed()
        if self.policy is not None:
            await self.policy.stop()
        if self.web_runner is not None:
            await self.web_runner.cleanup()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler_task
        try:
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                await self.intake.close()
                await self.deadlines.close()
                await self.claims.close()
                await self.outbox.close()
                await self.failures.close()
        except TimeoutError:
            log.warning("stopped before the workers finished; leases and the store resume them")
        if self.group is not None:
            await self.group.close()
        await self.transport.close()
        await self.metrics.settle()
        # Store calls still under way (an SMTP DATA being stored) finish before we go.
        await asyncio.to_thread(self.executor.shutdown, True)
        await asyncio.to_thread(self.smtp_executor.shutdown, True)
        if self.letter_writer is not None:
            self.letter_writer.close()
        db.close()
        if started:
            log.info("care-intro stopped")

    async def _run_scheduler(self) -> None:
        while True:
            self.scheduler.run_pending()
            idle = self.scheduler.idle_seconds
            await asyncio.sleep(min(max(idle or 1.0, 0.05), 1.0))

    def _stored(self) -> None:
        self.arrivals.arrived(asyncio.get_running_loop().time())
        self.intake.kick()

    async def _intake(self) -> None:
        """A batch at a time until nothing is left, each when the edge is quiet or has had
        its turn (see `edge.pacing`)."""
        assert self.ctx is not None
        loop = asyncio.get_running_loop()
        while True:
            pause = self.arrivals.pause(loop.time())
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            started = loop.time()
            done = await self.run_db(
                pipeline.process_pending, self.ctx, self.clock.now(), pipeline.BATCH
            )
            if done:
                self.outbox.kick()
            if done < pipeline.BATCH:
                self.arrivals.drained()
                return
            rest = self.arrivals.rest(loop.time(), loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _deadlines(self) -> None:
        assert self.ctx is not None
        due = await jobs.run_deadlines(self.ctx, self.clock.now(), self.run_db)
        self.runs.succeeded("deadlines", self.clock.now())
        if due:
            self.outbox.kick()

    async def _outbox(self) -> None:
        report = await self.sender.deliver_due()
        self.runs.succeeded("outbox", self.clock.now())
        if report.failed:
            self.failures.kick()
        if report.more:
            # A backlog longer than one run (after the relay was away): the rest goes now,
            # not at the next scheduled kick, seconds later. A run stays bounded, so a stop
            # waits for one run, never for the whole backlog.
            self.outbox.kick()

    async def _failures(self) -> None:
        assert self.ctx is not None
        if await jobs.settle_failures(self.ctx, self.clock.now(), self.run_db):
            self.outbox.kick()


async def serve_until(settings: Settings, stop: asyncio.Event) -> None:
    """The life of `serve`: the process is ours, and so is its GIL's switch interval."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    service = Service(settings)
    try:
        await service.start()
        await stop.wait()
    finally:
        # Also after a start that failed half-way (a port taken): close what did open.
        await service.stop()
