"""Retention of temporal history (issue 5): a background task that removes instances older than a maximum age
and beyond a maximum count per attribute. Each store pass runs in short transactions, so writes never wait for
more than one batch; with several broker processes only the leader of "retention" prunes."""

from __future__ import annotations

import asyncio
import logging
import time

from broker.background import stop_tasks
from broker.notify.outage import Outage
from broker.settings import Settings
from broker.store.base import Store

log = logging.getLogger("agora.retention")


class Retention:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.max_age = settings.history_max_age
        self.max_count = settings.history_max_count
        self.interval = settings.history_retention_interval
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(store, "retention")

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 or self.max_count > 0

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="agora-retention")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None

    async def run_once(self) -> int:
        older_than = int((time.time() - self.max_age) * 1_000_000) if self.max_age > 0 else None
        return await self.store.temporal_retain(older_than, self.max_count or None)

    async def _run(self) -> None:
        while True:
            try:
                if await self.store.try_lead("retention"):
                    removed = await self.run_once()
                    if removed:
                        log.info("retention removed %d temporal instances", removed)
                self._outage.ok()
            except Exception as exc:  # a failed pass is retried at the next interval; the broker keeps serving
                # A store outage is logged once, when it begins (decision record 0047); anything else is a bug.
                self._outage.failed(exc, "a retention pass")
            await asyncio.sleep(self.interval)
