"""Record handed-on mails as sent, in groups: one transaction for what finished meanwhile."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from store import queries
from store.db import RunDb

log = logging.getLogger(__name__)

# A mail that went but could not be recorded would go again once its claim ends: keep
# trying for this long (a full disk freed, a database back) before letting that happen.
PATIENCE_SECONDS = 600.0
FIRST_PAUSE_SECONDS = 0.2
LONGEST_PAUSE_SECONDS = 5.0


class SentRecorder:
    """Group commit: while one write is under way, the mails that finish wait for the next,
    so recording costs one commit per group, and no mail waits longer than two commits.

    Grouping never delays a mail's record to save work: the window in which a crash can
    send a mail twice stays "handed on, not yet recorded".
    """

    def __init__(self, run_db: RunDb) -> None:
        self.run_db = run_db
        self._waiting: list[tuple[int, str, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._moment: datetime | None = None

    async def record(self, outbox_id: int, now: datetime, note: str) -> None:
        """Return once the mail is recorded as sent; raise if it could not be, ever."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outbox_id, note, done))
        self._moment = now if self._moment is None else max(self._moment, now)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="outbox recorder")
        await done

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            moment, self._moment = self._moment, None
            assert moment is not None
            error = await self._write_group([(i, note) for i, note, _ in group], moment)
            for _, _, done in group:
                if done.cancelled():
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

    async def _write_group(self, sent: list[tuple[int, str]], moment: datetime) -> Exception | None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + PATIENCE_SECONDS
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                await self.run_db(queries.mark_sent_many, sent, moment)
                return None
            except Exception as exc:
                if loop.time() + pause > give_up:
                    log.error(
                        "could not record %d sent mail(s); they will be sent again", len(sent)
                    )
                    return exc
                log.warning(
                    "could not record %d sent mail(s) yet (%s); trying again",
                    len(sent),
                    type(exc).__name__,
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
