"""Stopping background tasks: a task whose cancellation is swallowed on its way down is still stopped."""

from __future__ import annotations

import asyncio

from broker.background import stop_tasks


async def _swallows_one_cancellation(log: list[str]) -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:  # as a library cleanup, or a timeout racing the cancel, may do
        log.append("swallowed")
    await asyncio.sleep(3600)  # the next await of its loop: only a second cancellation ends it


async def _fails() -> None:
    raise ValueError("a bug in a background task")


def test_a_task_that_swallowed_its_cancellation_is_cancelled_again() -> None:
    async def scenario() -> tuple[list[str], list[asyncio.Task[None]]]:
        log: list[str] = []
        tasks = [asyncio.ensure_future(_swallows_one_cancellation(log)), asyncio.ensure_future(_fails())]
        await asyncio.sleep(0)
        await asyncio.wait_for(stop_tasks([*tasks, None], patience=0.05), timeout=5)
        return log, tasks

    log, tasks = asyncio.run(scenario())
    assert log == ["swallowed"]
    assert tasks[0].cancelled() and tasks[1].done()
