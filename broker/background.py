"""Stopping the broker's background tasks (the notifier and its lanes, periodic notifications, retention, the
stores' lease renewers and watchers) so that a shutdown never waits forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("agora")

#: Seconds between two cancellations of a task that is still running.
PATIENCE = 0.5


async def stop_tasks(tasks: Iterable[asyncio.Task[Any] | None], patience: float = PATIENCE) -> None:
    """Cancel the tasks and wait until every one has ended. A cancellation can be swallowed on its way down, by
    a library's cleanup that catches it or by a timeout context that fires in the same turn (seen with redis-py
    during `agora serve` shutdowns: the periodic notifier, its cancellation consumed inside a Redis call, went on
    to its next sleep and the shutdown waited for it forever). So a task still running after `patience` seconds
    is cancelled again. What the tasks raised is not raised here: they are being stopped."""
    pending = {task for task in tasks if task is not None and not task.done()}
    for task in pending:
        task.cancel()
    rounds = 0
    while pending:
        done, pending = await asyncio.wait(pending, timeout=patience)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" at exit
        for task in pending:
            task.cancel()
        rounds += 1
        if pending and rounds % 20 == 0:  # every 10 s: say what the shutdown waits for
            log.warning("still stopping %s", ", ".join(sorted(task.get_name() for task in pending)))
