"""Retention of temporal history (issue 5): the pass the background task runs, with its settings."""

from __future__ import annotations

import asyncio
import time

from broker.settings import Settings
from broker.store.base import InstanceQuery, TemporalInstance
from broker.store.memory import MemoryStore
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
