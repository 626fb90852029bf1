"""Retention of temporal history (issue 5): the pass the background task runs, with its settings."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from broker.settings import Settings
from broker.store.base import InstanceQuery, TemporalInstance
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore
from broker.temporal.history import make_instance
from broker.temporal.retention import Retention
from broker.temporal.times import from_micros

ATTR = "https://example.org/level"


def _instance(age_seconds: float, value: int) -> TemporalInstance:
    stamp = from_micros(int((time.time() - age_seconds) * 1_000_000))
    return make_instance(ATTR, {"type": "Property", "value": value, "modifiedAt": stamp, "createdAt": stamp})


def _kept(store: MemoryStore) -> list[object]:
    found = asyncio.run(store.temporal_instances("", ["urn:a"], InstanceQuery()))
    return [i.body["value"] for i in found.get("urn:a", {}).get(ATTR, [])]


def test_max_age_and_max_count() -> None:
    store = MemoryStore()
    old = [_instance(3600 * 24 * 10, 1), _instance(3600 * 24 * 2, 2)]
    recent = [_instance(60, n) for n in (3, 4, 5)]
    asyncio.run(store.temporal_add("", "urn:a", {"type": ["T"]}, [*old, *recent], create=True))
    by_age = Retention(store, Settings(history_max_age=3600 * 24 * 3))
    assert by_age.enabled
    assert asyncio.run(by_age.run_once()) == 1
    assert _kept(store) == [2, 3, 4, 5]
    by_count = Retention(store, Settings(history_max_count=2))
    assert asyncio.run(by_count.run_once()) == 2
    assert _kept(store) == [4, 5]


def test_disabled_by_default() -> None:
    assert not Retention(MemoryStore(), Settings()).enabled


def test_a_store_outage_is_logged_once_and_the_task_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite held locked by another process's transaction past the busy timeout: the retention task logs the outage
    once (decision record 0047), not a traceback per pass, and says when the store is back."""
    path = tmp_path / "r.db"

    async def scenario() -> None:
        store = SqliteStore(path, busy_timeout_ms=20)
        await store.open()
        await store.temporal_add("", "urn:a", {"type": ["T"]}, [_instance(60, n) for n in range(3)], create=True)
        retention = Retention(store, Settings(history_max_count=1, history_retention_interval=0.02))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
        retention.start()
        await asyncio.sleep(0.4)  # many passes, every one refused
        holder.execute("ROLLBACK")
        holder.close()
        await asyncio.sleep(0.2)
        await retention.stop()
        await store.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "retention" in r.getMessage()]
    assert [m for level, m in lines if level >= logging.ERROR] == []
    assert len([m for _, m in lines if "paused" in m]) == 1, lines
    assert len([m for _, m in lines if "resumed" in m]) == 1, lines
    assert any("removed 2 temporal instances" in m for _, m in lines), lines  # the pass ran once the lock was gone
