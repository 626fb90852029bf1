"""What only the Redis backend promises (decision record 0040): URL forms, data spread over a cluster's masters,
no lost update between store objects writing at once (one entity, and batches over several shards), the
notifier's lease, context change events, and temporal history that agrees with the memory reference."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis

from broker.core.model import Entity
from broker.store import _common as common
from broker.store import open_store
from broker.store.base import (
    DEFAULT_TENANT,
    ContextRecord,
    EntityFilter,
    InstanceQuery,
    Store,
    TemporalInstance,
    WritePlan,
)
from broker.store.memory import MemoryStore
from broker.store.redis import LEASE_MS, SLOTS, RedisStore, shard_tags
from broker.store.redis_client import parse_url
from tests.contract.contract_helpers import EX, entity
from tests.support import redis_servers
from tests.support.redis_servers import RedisClusterServers, RedisServer, running_redis


@pytest.mark.parametrize(
    ("url", "cluster", "nodes", "prefix", "shards"),
    [
        ("redis://127.0.0.1:6380/2", False, (("127.0.0.1", 6380),), "agora", 1),
        ("rediss://user:pw@h:7000/0?prefix=city&shards=4", False, (("h", 7000),), "city", 4),
        ("redis+cluster://a:7000,b:7001", True, (("a", 7000), ("b", 7001)), "agora", 16),
        ("redis+cluster://a:7000?shards=64", True, (("a", 7000),), "agora", 64),
        ("rediss://h:7000/0?tls_ca=/etc/ca.pem&tls_cert=c.pem&tls_key=k.pem", False, (("h", 7000),), "agora", 1),
    ],
)
def test_parse_url(url: str, cluster: bool, nodes: tuple[tuple[str, int], ...], prefix: str, shards: int) -> None:
    parsed = parse_url(url)
    assert (parsed.cluster, parsed.nodes, parsed.prefix, parsed.shards) == (cluster, nodes, prefix, shards)
    assert isinstance(open_store(url), RedisStore)


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://a",  # no port
        "redis://h:1/0?sharsd=3",  # misspelt option: never silently fall back to the default
        "redis://h:1/0?shards=0",
        "redis://h:1/0?timeout=0",  # a command must be given some time
        "redis://h:1/0?timeout=soon",
        "redis://h:1/0?timeout=inf",
        "redis+cluster://a:7000?timeout=-1",
        "redis://h:1/0?prefix={x}",  # braces would break the hash tags
        "redis:///0",
        "redis://h:1/0?tls_ca=/etc/ca.pem",  # TLS files without TLS: a mistake, not silently plain text
        "rediss://h:1/0?tls_ca=",
        "redis+cluster://a:7000?tls_ca=/etc/ca.pem",
    ],
)
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_timeout_option() -> None:
    """How long a command may wait for Redis before the request answers 503 (decision record 0084)."""
    assert parse_url("redis://h:1/0").timeout == 10.0
    assert parse_url("redis://h:1/0?timeout=2.5").timeout == 2.5
    assert parse_url("rediss+cluster://a:7000,b:7001?timeout=30").timeout == 30.0


def test_shard_tags_spread_over_equal_slot_ranges() -> None:
    for shards in (1, 3, 16, 100):
        tags = shard_tags("agora", shards)
        slots = [redis.crc.key_slot(t.encode()) for t in tags]
        assert all(n * SLOTS // shards <= slot < (n + 1) * SLOTS // shards for n, slot in enumerate(slots))


@pytest_asyncio.fixture(params=["redis_server", "redis_cluster"])
async def two(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, Store]]:
    """Two store objects on one freshly emptied Redis (as two broker processes would have)."""
    server: RedisServer | RedisClusterServers = request.getfixturevalue(request.param)
    server.flush()
    stores = [open_store(server.url), open_store(server.url)]
    for store in stores:
        await store.open()
    yield stores[0], stores[1]
    for store in stores:
        await store.close()


def increment(*ids: str) -> Any:
    def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
        out = {}
        for eid in ids:
            now = current[eid]
            assert now is not None
            now["attrs"][EX + "n"][0]["value"] += 1
            out[eid] = now
        return WritePlan(out)

    return plan


async def test_no_update_is_lost_between_store_objects(two: tuple[Store, Store]) -> None:
    a, b = two
    ids = [f"urn:e:{n}" for n in range(6)]  # over several shards on a cluster: batches lock them
    await a.write(DEFAULT_TENANT, ids, lambda _: WritePlan({eid: entity(eid, n=0) for eid in ids}))
    single = [s.write(DEFAULT_TENANT, [ids[0]], increment(ids[0])) for s in (a, b) for _ in range(40)]
    batches = [
        s.write(DEFAULT_TENANT, ids[::-1] if s is b else ids, increment(*ids)) for s in (a, b) for _ in range(15)
    ]
    await asyncio.gather(*single, *batches)
    got = await b.get(DEFAULT_TENANT, ids)
    assert got[ids[0]]["attrs"][EX + "n"][0]["value"] == 80 + 30
    assert {got[eid]["attrs"][EX + "n"][0]["value"] for eid in ids[1:]} == {30}
    changes = await a.changes_since(0, limit=10_000)
    assert len(changes) == 6 + 80 + 30 * 6  # every committed change once in the feed, numbered 1..n
    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))


async def test_data_spreads_over_every_master(redis_cluster: RedisClusterServers) -> None:
    redis_cluster.flush()
    store = open_store(redis_cluster.url)
    await store.open()
    try:
        for n in range(64):
            await store.write(
                "t", [f"urn:e:{n}"], lambda _, n=n: WritePlan({f"urn:e:{n}": entity(f"urn:e:{n}")}), create_tenant=True
            )  # type: ignore[misc]
    finally:
        await store.close()
    for node in redis_cluster.nodes:
        with redis.Redis(port=node.port) as client:
            assert client.dbsize() > 3, f"node {node.port} holds almost nothing"


async def test_lease_moves_to_another_process_once_it_expires(two: tuple[Store, Store]) -> None:
    a, b = two
    assert await a.try_lead("n") and await a.try_lead("n")
    assert not await b.try_lead("n")
    assert isinstance(a, RedisStore)
    await a._redis.delete(a._lease_key("n"))  # as if a had not renewed it within LEASE_MS
    assert await b.try_lead("n")
    assert not await a.try_lead("n")  # a learns that it no longer leads
    assert LEASE_MS <= 10_000  # a dead leader is replaced within seconds


async def test_context_changes_reach_every_watcher(two: tuple[Store, Store]) -> None:
    a, b = two
    seen: list[tuple[str, str]] = []
    b.watch_contexts(lambda cid, url: seen.append((cid, url)))
    await asyncio.sleep(0.1)  # the watcher starts from the newest entry
    body = {"@context": {"x": EX + "x"}}
    await a.put_context(ContextRecord("c1", "http://h/c1", "Hosted", body, "2026-01-01T00:00:00Z"))
    assert await a.delete_context("c1")
    assert not await a.delete_context("c1")  # nothing deleted, nothing announced
    for _ in range(100):
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.02)
    assert seen == [("c1", "http://h/c1"), ("c1", "http://h/c1")]


# -- temporal history against the memory reference ------------------------------------------------------------
def _random_entity(rng: random.Random, eid: str) -> Entity:
    values = {f"a{k}": rng.randint(0, 3) for k in range(3) if rng.random() < 0.7}
    made = entity(eid, **values)
    for attr in made["attrs"].values():
        attr[0]["observedAt"] = f"2026-01-0{rng.randint(1, 9)}T00:00:00.000000Z"
    return made


def _comparable(history: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    """Instance ids are random per store and modifiedAt/deletedAt are clock readings: compare the rest."""
    drop = {"modifiedAt", "deletedAt", "createdAt"}
    return {
        eid: {
            attr: [{k: v for k, v in i.body.items() if k not in drop} for i in insts] for attr, insts in attrs.items()
        }
        for eid, attrs in history.items()
    }


async def test_temporal_history_agrees_with_the_memory_store(two: tuple[Store, Store]) -> None:
    store, _ = two
    reference = MemoryStore()
    rng = random.Random(6)
    ids = [f"urn:v:{n}" for n in range(5)]
    for _ in range(60):
        eid = rng.choice(ids)
        new = None if rng.random() < 0.15 else _random_entity(rng, eid)
        for s in (store, reference):
            await s.write("city", [eid], lambda _, new=new, eid=eid: WritePlan({eid: new}), create_tenant=True)  # type: ignore[misc]
    for query in (
        InstanceQuery(),
        InstanceQuery(per_attr=2, newest_first=True),
        InstanceQuery(start=1767484800000000, timeproperty="observedAt"),  # from 2026-01-04
    ):
        assert _comparable(await store.temporal_instances("city", ids, query)) == _comparable(
            await reference.temporal_instances("city", ids, query)
        )
    flt = EntityFilter(types=frozenset({EX + "Vehicle"}))
    assert [r.id for r in await store.temporal_entities("city", flt)] == [
        r.id for r in await reference.temporal_entities("city", flt)
    ]
    for s in (store, reference):
        assert await s.temporal_delete_attr("city", ids[0], EX + "a0", None) >= 0
        await s.temporal_retain(None, 1)
    assert _comparable(await store.temporal_instances("city", ids, InstanceQuery())) == _comparable(
        await reference.temporal_instances("city", ids, InstanceQuery())
    )


async def test_paged_scans_hand_out_every_match_once_in_id_order(two: tuple[Store, Store]) -> None:
    store, _ = two
    rng = random.Random(7)
    types = [EX + "Vehicle", EX + "Sensor", EX + "Parking"]
    made = [entity(f"urn:e:{rng.randrange(10**6):06d}", *rng.sample(types, rng.randint(1, 2))) for _ in range(150)]
    await store.write(DEFAULT_TENANT, [e["id"] for e in made], lambda _: WritePlan({e["id"]: e for e in made}))
    for flt in (
        EntityFilter(),
        EntityFilter(types=frozenset(types[:2])),
        EntityFilter(types=frozenset(types[2:]), id_pattern="[13579]$"),
    ):
        expected = await store.find_ids(DEFAULT_TENANT, flt)
        assert expected == sorted({e["id"] for e in made if common.matches(e, flt)})
        for size in (1, 3, 64, 1000):
            paged = [e["id"] async for batch in store.scan_batches(DEFAULT_TENANT, flt, size) for e in batch]
            assert paged == expected, (flt, size)


def test_a_missing_redis_server_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(redis_servers, "REDIS_SERVER", Path("/nonexistent/redis-server"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find there either
    with pytest.raises(pytest.fail.Exception, match="redis-server is missing"), running_redis(tmp_path):
        pass


async def test_point_index_narrows_box_queries_and_misses_nothing(two: tuple[Store, Store]) -> None:
    store, _ = two
    rng = random.Random(40)
    loc = EX + "location"

    def located(n: int) -> Entity:
        made = entity(f"urn:p:{n:03d}")
        lon, lat = 2.25 + rng.random() * 0.2, 48.8 + rng.random() * 0.1  # Paris
        if n % 10 == 0:  # now and then a polygon, kept in the box index
            ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat]]
            made["attrs"][loc] = [{"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [ring]}}]
        else:
            made["attrs"][loc] = [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}]
        return made

    made = [located(n) for n in range(200)]
    await store.write(DEFAULT_TENANT, [e["id"] for e in made], lambda _: WritePlan({e["id"]: e for e in made}))
    boxes = {e["id"]: box for e in made for _, box in common.geo_boxes(e)}
    for _ in range(20):
        lon, lat = 2.25 + rng.random() * 0.2, 48.8 + rng.random() * 0.1
        query = (lon, lat, lon + 0.02, lat + 0.01)
        found = set(await store.find_ids(DEFAULT_TENANT, EntityFilter(bbox=(loc, (query,)))))
        inside = {
            eid
            for eid, b in boxes.items()
            if b[0] <= query[2] and b[2] >= query[0] and b[1] <= query[3] and b[3] >= query[1]
        }
        assert found == inside  # nothing dropped, and the boxes and points outside are left out


# -- the write path: versions and compact change events (decision record 0042) ----------------------------------------
def _mutated(rng: random.Random, current: Entity | None, eid: str) -> Entity | None:
    """A random next state: a value changed, an attribute added or removed, the types or scope changed, the
    entity deleted or created again."""
    if current is None:
        return entity(eid, n=rng.randint(0, 9), big="x" * rng.randint(0, 400))
    if rng.random() < 0.1:
        return None
    new: Entity = common.clone(current)
    choice = rng.randrange(5)
    if choice == 0:
        new["attrs"][EX + "n"] = [{"type": "Property", "value": rng.randint(0, 9)}]
    elif choice == 1:
        new["attrs"][EX + f"a{rng.randrange(3)}"] = [{"type": "Property", "value": rng.random()}]
    elif choice == 2 and new["attrs"]:
        del new["attrs"][rng.choice(sorted(new["attrs"]))]
    elif choice == 3:
        new["type"] = rng.choice([[EX + "Vehicle"], [EX + "Vehicle", EX + "Car"]])
    elif "scope" in new:
        del new["scope"]
    else:
        new["scope"] = ["/a"]
    new["modifiedAt"] = f"2026-01-01T00:00:{rng.randrange(60):02d}.000000Z"
    return new


async def test_change_events_carry_the_exact_states(two: tuple[Store, Store]) -> None:
    """A change event stores `before` as what to undo on `after` when that is smaller: every event must still give
    both states exactly as the memory store's feed does, over creations, updates, deletions and re-creations."""
    store, other = two
    reference = MemoryStore()
    rng = random.Random(42)
    ids = [f"urn:c:{n}" for n in range(4)]
    state: dict[str, Entity | None] = dict.fromkeys(ids)
    for _ in range(120):
        eid = rng.choice(ids)
        new = _mutated(rng, state[eid], eid)
        if new is None and state[eid] is None:
            continue
        state[eid] = new
        for s in (store, reference):
            await s.write(DEFAULT_TENANT, [eid], lambda _, new=new, eid=eid: WritePlan({eid: new}))  # type: ignore[misc]
    got, expected = await other.changes_since(0, 1000), await reference.changes_since(0, 1000)
    assert [(c.entity_id, c.before, c.after) for c in got] == [(c.entity_id, c.before, c.after) for c in expected]
    assert isinstance(store, RedisStore)
    stored = [fields[b"b"] for _, fields in await store._redis.xrange(store._gkey("changes"))]
    assert any(b.startswith(b"~") for b in stored) and any(b.startswith(b"{") for b in stored)  # both forms met


async def test_entities_stored_without_a_version_are_still_written_safely(two: tuple[Store, Store]) -> None:
    """Entities written before versions existed have none: concurrent writers must still lose no update, and a
    writer that read one must not bring it back once deleted."""
    a, b = two
    assert isinstance(a, RedisStore)
    eid = "urn:legacy:1"
    await a.write(DEFAULT_TENANT, [eid], lambda _: WritePlan({eid: entity(eid, n=0)}))
    versions = a._key(a.shard_of(DEFAULT_TENANT, eid), "v", DEFAULT_TENANT)
    assert await a._redis.hdel(versions, eid) == 1  # as an older broker left it
    await asyncio.gather(*(s.write(DEFAULT_TENANT, [eid], increment(eid)) for s in (a, b) for _ in range(20)))
    assert (await b.get(DEFAULT_TENANT, [eid]))[eid]["attrs"][EX + "n"][0]["value"] == 40

    await a._redis.hdel(versions, eid)
    read = await a._read_for_write(DEFAULT_TENANT, [eid])
    await b.write(DEFAULT_TENANT, [eid], lambda _: WritePlan({eid: None}))  # deleted after `a` read it
    _, events = a._plan(DEFAULT_TENANT, [eid], read.bodies, increment(eid))
    script = a._commit_script(DEFAULT_TENANT, events, read, token="", stamp=a._stamp())
    assert not await a._apply(keys=script.keys.keys, args=script.argv())  # refused: nothing resurrected
    assert await b.get(DEFAULT_TENANT, [eid]) == {}


# -- rediss:// (decision record 0043) ------------------------------------------------------------------------------
def test_tls_files_become_redis_py_arguments() -> None:
    parsed = parse_url("rediss://h:7000/0?tls_ca=/etc/ca.pem&tls_cert=c.pem&tls_key=k.pem&prefix=p")
    assert dict(parsed.tls) == {"tls_ca": "/etc/ca.pem", "tls_cert": "c.pem", "tls_key": "k.pem"}
    assert parsed.client_url == "rediss://h:7000/0" and parsed.prefix == "p"


async def test_tls_store_talks_to_a_tls_only_server(redis_tls_server: RedisServer) -> None:
    redis_tls_server.flush()
    assert redis_tls_server.url.startswith("rediss://")
    store = open_store(redis_tls_server.url)
    await store.open()
    try:
        await store.write(DEFAULT_TENANT, ["urn:tls:1"], lambda _: WritePlan({"urn:tls:1": entity("urn:tls:1")}))
        assert list(await store.get(DEFAULT_TENANT, ["urn:tls:1"])) == ["urn:tls:1"]
        assert [c.entity_id for c in await store.changes_since(0)] == ["urn:tls:1"]
    finally:
        await store.close()
    with redis_tls_server.client() as client:
        assert client.connection_pool.connection_class is redis.SSLConnection
        assert client.hexists("agora:{agora-0-0}:e:", "urn:tls:1")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("untrusted CA", redis.exceptions.ConnectionError, "CERTIFICATE_VERIFY_FAILED"),
        # The server wants one: its TLS alert says so, unless the connection is reset before the client reads it.
        ("no client certificate", redis.exceptions.ConnectionError, "CERTIFICATE_REQUIRED|reset by peer"),
        ("plain text", redis.exceptions.ConnectionError, None),  # redis:// to a TLS-only port
        ("missing CA file", ValueError, "nowhere.pem' [(]tls_ca[)] does not exist"),
    ],
)
async def test_tls_store_refuses_what_it_cannot_trust(
    redis_tls_server: RedisServer, tmp_path: Path, change: str, error: type[Exception], message: str | None
) -> None:
    url = redis_tls_server.url
    if change == "untrusted CA":
        other = redis_servers.make_tls_files(tmp_path / "other")
        url = redis_servers.with_option(url, "tls_ca", str(other.ca))
    elif change == "no client certificate":
        url = redis_servers.with_option(redis_servers.with_option(url, "tls_cert", None), "tls_key", None)
    elif change == "plain text":
        url = "redis://" + url.partition("://")[2].partition("?")[0]
    else:
        url = redis_servers.with_option(url, "tls_ca", str(tmp_path / "nowhere.pem"))
    store = open_store(url)
    try:
        with pytest.raises(error, match=message):
            await asyncio.wait_for(store.open(), 30)
    finally:
        await store.close()


# -- history edits send what changed, listings walk hashes in pages ------------------------------------------------
def _reading(rng: random.Random, hour: int, minute: int) -> dict[str, Any]:
    stamp = f"2026-05-01T{hour:02d}:{minute:02d}:00Z"
    body: dict[str, Any] = {"type": "Property", "value": rng.randint(0, 99), "observedAt": stamp}
    return {**body, "createdAt": stamp, "modifiedAt": stamp}


async def test_history_edits_and_retention_agree_with_the_memory_store(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edits of the instance lists (one replaced, one or many removed, a head removed by age, scattered removals
    by count) and the paged listing (HSCAN, pages forced small) give what the memory store gives."""
    import broker.store.redis as redis_store

    monkeypatch.setattr(redis_store, "SCAN_PAGE", 3)
    store, _ = two
    reference = MemoryStore()
    rng = random.Random(9)
    ids = [f"urn:h:{n:02d}" for n in range(30)]
    attrs = [EX + "speed", EX + "flow"]
    for n, eid in enumerate(ids):
        # Two readings of speed for one of flow: keeping the newest of each removes scattered instances.
        made = [
            TemporalInstance(attrs[k % 3 == 0], f"urn:i:{eid}:{k}", _reading(rng, k // 60, k % 60))
            for k in range([4, 12, 90, 150][n % 4])  # 150: more removals than are made one by one
        ]
        types = {"type": [EX + ("Vehicle" if int(eid[-2:]) % 3 else "Sensor")]}
        for s in (store, reference):
            assert await s.temporal_add("city", eid, types, made, create=True)

    async def same() -> None:
        everything = InstanceQuery()
        assert _comparable(await store.temporal_instances("city", ids, everything)) == _comparable(
            await reference.temporal_instances("city", ids, everything)
        )
        for flt in (EntityFilter(), EntityFilter(types=frozenset({EX + "Sensor"})), EntityFilter(id_pattern="1$")):
            assert [r.id for r in await store.temporal_entities("city", flt)] == [
                r.id for r in await reference.temporal_entities("city", flt)
            ]

    await same()
    assert len(await store.temporal_entities("city", EntityFilter())) == len(ids)  # every page, nothing twice
    replaced = TemporalInstance(attrs[0], f"urn:i:{ids[0]}:2", _reading(rng, 0, 2))
    for s in (store, reference):
        assert await s.temporal_replace_instance("city", ids[0], replaced)
        assert await s.temporal_delete_instance("city", ids[1], attrs[1], f"urn:i:{ids[1]}:3")
        assert await s.temporal_delete_attr("city", ids[2], attrs[1], None) > 0  # 30 of 90, one by one
        assert await s.temporal_delete_attr("city", ids[7], attrs[0], None) > 0  # 100 of 150: the list rewritten
    await same()
    cutoff = 1777593600000000 + 30 * 60_000_000  # 2026-05-01T00:30Z: the head of each list, by age
    for older_than, max_count in ((cutoff, None), (None, 20), (None, 2)):  # then scattered, every other instance
        counts = [await s.temporal_retain(older_than, max_count) for s in (store, reference)]
        assert counts[0] == counts[1] > 0
        await same()
