"""Retention by age on Redis reads only what it must (decision record 0049): the tail of a list since the last pass
and its head up to the first instance surely young enough, thanks to the list's order record. A property test holds
it to the old behaviour (the memory store, which is the reference, and SQLite) on random histories: times out of
order, equal, missing, corrected; lists deleted and recorded anew; passes by age, by count and both; on a real
redis-server."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import broker.store.redis as redis_store
from broker.store import open_store
from broker.store.base import DEFAULT_TENANT, InstanceQuery, Store, TemporalInstance
from broker.store.memory import MemoryStore
from broker.store.redis import RedisStore
from broker.temporal.times import from_micros
from tests.contract.contract_helpers import EX
from tests.support.redis_servers import RedisServer

IDS = ["urn:ngsi-ld:Sensor:r0", "urn:ngsi-ld:Sensor:r1"]
ATTRS = [EX + "speed", EX + "flow"]
BASE = 1_777_593_600_000_000  # 2026-05-01T00:00Z
MINUTE = 60_000_000
_prefixes = itertools.count()

# Times are minutes around a clock that each addition moves on, as recording time does: mostly in order, sometimes
# a little late or early, now and then far off. An instance's time: ("at", minutes from the clock) for modifiedAt,
# ("created", ...) for createdAt only, or None for neither (time 0).
times = st.one_of(
    st.tuples(st.just("at"), st.integers(-2, 2)),
    st.tuples(st.just("at"), st.integers(-40, 40)),
    st.tuples(st.just("created"), st.integers(-2, 2)),
    st.none(),
)
additions = st.lists(st.tuples(st.integers(0, 1), times), min_size=1, max_size=8)
steps = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 1), additions),
    st.tuples(st.just("add"), st.integers(0, 1), additions),
    st.tuples(st.just("retain"), st.integers(-1, 12), st.none()),  # minutes before the clock
    st.tuples(st.just("retain"), st.integers(-1, 12), st.none()),
    st.tuples(st.just("retain"), st.one_of(st.integers(-1, 12), st.none()), st.integers(0, 4)),
    st.tuples(st.just("correct"), st.integers(0, 1), st.integers(0, 30), times),
    st.tuples(st.just("delete"), st.integers(0, 1), st.integers(0, 30)),
    st.tuples(st.just("drop"), st.integers(0, 1)),
)


def _body(time: Any, value: int, clock: int) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "Property", "value": value}
    if time is not None and time[0] == "at":
        body["modifiedAt"] = from_micros(BASE + (clock + time[1]) * MINUTE)
        body["createdAt"] = from_micros(BASE)
    elif time is not None:
        body["createdAt"] = from_micros(BASE + (clock + time[1]) * MINUTE)
    return body


class Scenario:
    """The same steps on Redis, memory and SQLite, and a model of each Redis list in recording order."""

    def __init__(self, stores: list[Store]) -> None:
        self.stores = stores
        self.model: dict[str, list[TemporalInstance]] = {eid: [] for eid in IDS}
        self.serial = itertools.count()
        self.clock = 60

    async def run(self, step: tuple[Any, ...]) -> None:
        kind, *args = step
        await getattr(self, kind)(*args)

    async def add(self, e: int, made: list[tuple[int, Any]]) -> None:
        eid = IDS[e]
        self.clock += 1
        instances = [
            TemporalInstance(ATTRS[a], f"urn:i:{n}", _body(time, n, self.clock))
            for (a, time), n in zip(made, self.serial, strict=False)
        ]
        for store in self.stores:
            await store.temporal_add(DEFAULT_TENANT, eid, {"type": [EX + "Sensor"]}, instances, create=True)
        self.model[eid] += instances

    async def retain(self, back: int | None, count: int | None) -> None:
        older_than = None if back is None else BASE + (self.clock - back) * MINUTE
        removed = [await store.temporal_retain(older_than, count) for store in self.stores]
        assert removed[0] == removed[1] == removed[2], removed
        reference = self.stores[1]
        for eid in IDS:
            left = await reference.temporal_instances(DEFAULT_TENANT, [eid], InstanceQuery())
            ids = {i.instance_id for attr in left.get(eid, {}).values() for i in attr}
            self.model[eid] = [i for i in self.model[eid] if i.instance_id in ids]
        await self.same()

    async def correct(self, e: int, k: int, time: Any) -> None:
        eid = IDS[e]
        if k < len(self.model[eid]):
            old = self.model[eid][k]
            new = TemporalInstance(old.attr, old.instance_id, _body(time, -1, self.clock))
            for store in self.stores:
                assert await store.temporal_replace_instance(DEFAULT_TENANT, eid, new)
            self.model[eid][k] = new

    async def delete(self, e: int, k: int) -> None:
        eid = IDS[e]
        if k < len(self.model[eid]):
            old = self.model[eid].pop(k)
            for store in self.stores:
                assert await store.temporal_delete_instance(DEFAULT_TENANT, eid, old.attr, old.instance_id)

    async def drop(self, e: int) -> None:
        for store in self.stores:
            await store.temporal_delete(DEFAULT_TENANT, IDS[e])
        self.model[IDS[e]] = []

    async def same(self) -> None:
        redis, memory, sqlite = self.stores
        assert isinstance(redis, RedisStore)
        for eid in IDS:
            shard = redis.shard_of(DEFAULT_TENANT, eid)
            stored = await redis._redis.lrange(redis._key(shard, "ti", DEFAULT_TENANT, eid), 0, -1)
            assert [redis_store._instance(raw) for raw in stored] == self.model[eid]  # same instances, same order
        everything = InstanceQuery()
        expected = await memory.temporal_instances(DEFAULT_TENANT, IDS, everything)
        assert await redis.temporal_instances(DEFAULT_TENANT, IDS, everything) == expected
        got = await sqlite.temporal_instances(DEFAULT_TENANT, IDS, everything)
        assert _ids(got) == _ids(expected)


def _ids(history: dict[str, dict[str, list[TemporalInstance]]]) -> dict[str, dict[str, list[str]]]:
    return {
        eid: {a: sorted(i.instance_id for i in attr) for a, attr in attrs.items()} for eid, attrs in history.items()
    }


async def _scenario(server: RedisServer, directory: Path, plan: list[tuple[Any, ...]]) -> None:
    stores = [
        open_store(f"{server.url}?prefix=ret{next(_prefixes)}"),
        MemoryStore(),
        open_store(f"sqlite:///{directory / 'store.db'}"),
    ]
    for store in stores:
        await store.open()
    try:
        scenario = Scenario(stores)
        for step in plan:
            await scenario.run(step)
        await scenario.retain(5, None)  # a last pass by age, after whatever came before
    finally:
        for store in stores:
            await store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(steps, min_size=4, max_size=30))
def test_retention_by_age_reads_little_and_removes_what_the_reference_removes(
    redis_server: RedisServer, plan: list[tuple[Any, ...]]
) -> None:
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as directory:
        # Pages of 2 to 4 and 2 removals one by one: every way of reading and editing a list is taken.
        patch.setattr(redis_store, "RETAIN_PAGE", 2)
        patch.setattr(redis_store, "RETAIN_PAGE_MAX", 4)
        patch.setattr(redis_store, "SCATTERED_REMOVALS", 2)
        asyncio.run(_scenario(redis_server, Path(directory), plan))


async def _pair(server: RedisServer) -> tuple[RedisStore, MemoryStore]:
    redis = open_store(f"{server.url}?prefix=ret{next(_prefixes)}")
    assert isinstance(redis, RedisStore)
    await redis.open()
    return redis, MemoryStore()


async def _add(stores: tuple[Store, ...], eid: str, minutes: list[int], first: int = 0) -> list[TemporalInstance]:
    made = [
        TemporalInstance(ATTRS[0], f"urn:i:{eid}:{first + n}", _body(("at", m), n, 0)) for n, m in enumerate(minutes)
    ]
    for store in stores:
        await store.temporal_add(DEFAULT_TENANT, eid, {"type": [EX + "Sensor"]}, made, create=True)
    return made


async def _retain_both(redis: RedisStore, memory: MemoryStore, minute: int) -> None:
    older_than = BASE + minute * MINUTE
    assert await redis.temporal_retain(older_than, None) == await memory.temporal_retain(older_than, None)
    everything = InstanceQuery()
    assert await redis.temporal_instances(DEFAULT_TENANT, IDS, everything) == await memory.temporal_instances(
        DEFAULT_TENANT, IDS, everything
    )


async def test_a_correction_makes_retention_read_the_whole_list_again(redis_server: RedisServer) -> None:
    """A correction moves an instance's modifiedAt: the order record made before it must not be trusted."""
    redis, memory = await _pair(redis_server)
    try:
        made = await _add((redis, memory), IDS[0], list(range(1, 11)))
        await _retain_both(redis, memory, 0)  # nothing old: the order record is made (in order, from minute 1)
        moved = TemporalInstance(made[0].attr, made[0].instance_id, _body(("at", 20), 0, 0))
        for store in (redis, memory):
            assert await store.temporal_replace_instance(DEFAULT_TENANT, IDS[0], moved)
        await _retain_both(redis, memory, 5)  # minutes 2, 3 and 4 go, behind the corrected first instance
        assert len((await memory.temporal_instances(DEFAULT_TENANT, IDS, InstanceQuery()))[IDS[0]][ATTRS[0]]) == 7
    finally:
        await redis.close()


async def test_a_history_deleted_and_recorded_anew_is_not_read_with_the_old_order(redis_server: RedisServer) -> None:
    redis, memory = await _pair(redis_server)
    try:
        await _add((redis, memory), IDS[0], [10, 11, 12])
        await _retain_both(redis, memory, 0)
        for store in (redis, memory):
            assert await store.temporal_delete(DEFAULT_TENANT, IDS[0])
        await _add((redis, memory), IDS[0], [30, 1, 2, 40], first=3)  # longer, out of order, other instances
        await _retain_both(redis, memory, 5)
        assert len((await memory.temporal_instances(DEFAULT_TENANT, IDS, InstanceQuery()))[IDS[0]][ATTRS[0]]) == 2
    finally:
        await redis.close()


async def test_a_pass_reads_the_new_tail_and_the_expired_head_only(redis_server: RedisServer) -> None:
    """2,000 instances in order: the first pass reads the list and makes its order record; the next, after 20
    more were recorded and 20 more expired, reads a small part of it; a list deleted since leaves no record."""
    redis, memory = await _pair(redis_server)
    try:
        await _add((redis, memory), IDS[0], list(range(2000)))
        shard = redis.shard_of(DEFAULT_TENANT, IDS[0])
        listing = redis._key(shard, "ti", DEFAULT_TENANT, IDS[0])
        with redis_server.client() as client:
            size = sum(len(raw) for raw in client.lrange(listing, 0, -1))
            await _retain_both(redis, memory, 20)
            await _add((redis, memory), IDS[0], list(range(2000, 2020)), first=2000)
            before = client.info("stats")["total_net_output_bytes"]
            assert await redis.temporal_retain(BASE + 40 * MINUTE, None) == 20
            read = client.info("stats")["total_net_output_bytes"] - before  # by every client: INFO's own reply too
            assert 0 < read < size / 10, (read, size)
            assert await memory.temporal_retain(BASE + 40 * MINUTE, None) == 20
            await _retain_both(redis, memory, 40)  # the same instances left; nothing more to remove
            orders = redis._key(shard, "tr", DEFAULT_TENANT)
            assert client.hget(orders, IDS[0]) is not None
            await redis.temporal_delete(DEFAULT_TENANT, IDS[0])
            await redis.temporal_retain(BASE, None)
            assert client.hget(orders, IDS[0]) is None  # the stale record is dropped
    finally:
        await redis.close()
