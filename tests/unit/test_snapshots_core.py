"""Snapshots in the core (decision records 0150-0154), over the memory store: what a snapshot's content tenant holds
(whole entities, and as temporal evolution only what its temporal queries selected), expiry and its sweep, the
look-up a GDPR erasure needs, the SnapshotNotification, and the checks of the members."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.core.caller import Caller
from broker.core.errors import (
    AlreadyExists,
    BadRequestData,
    NonexistentTenant,
    OperationNotSupported,
    ResourceNotFound,
)
from broker.core.query import Queries
from broker.core.snapshots import Capture, Snapshots, is_content_tenant
from broker.core.temporal import Temporal, TimeQuery
from broker.ld.termmap import core_termmap
from broker.query import parse_query
from broker.store.base import EntityFilter, InstanceQuery, WritePlan
from broker.store.memory import MemoryStore

VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
CAR = VOCAB + "Car"
SPEED = VOCAB + "speed"
CALLER = Caller(tenant="")
pytestmark = pytest.mark.asyncio


def car(n: int, speed: int, at: str = "2026-01-01T00:00:00.000000Z") -> dict[str, Any]:
    instance = {"type": "Property", "value": speed, "observedAt": at}
    return {
        "id": f"urn:ngsi-ld:Car:{n}",
        "type": [CAR],
        "createdAt": at,
        "modifiedAt": at,
        "attrs": {SPEED: [instance]},
    }


async def put(store: MemoryStore, *entities: dict[str, Any], tenant: str = "") -> None:
    states: dict[str, Any] = {e["id"]: e for e in entities}
    await store.write(tenant, list(states), lambda _: WritePlan(states), create_tenant=True)


def capture(**params: str) -> Capture:
    return Capture([parse_query({"type": "Car", **params}, core_termmap())])


def service(store: MemoryStore, sent: list[tuple[str, dict[str, Any], dict[str, str]]] | None = None) -> Snapshots:
    async def notify(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        if sent is not None:
            sent.append((url, body, headers))

    return Snapshots(store, Queries(store), Temporal(store), notify)


BODY = {"type": "Snapshot", "snapshotQueries": [{"type": "Query"}]}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


async def test_content_is_whole_entities_in_a_tenant_of_its_own(store: MemoryStore) -> None:
    await put(store, car(1, 80), car(2, 20))
    record = await service(store).create(CALLER, BODY, [capture(q="speed>50")], [])
    assert is_content_tenant(record.content) and record.content != ""
    held = await store.get(record.content, ["urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:2"])
    assert held == {"urn:ngsi-ld:Car:1": car(1, 80)}
    assert record.body["snapshotStatus"] == "success"
    assert record.body["snapshotQueriesDetails"] == [{"resultStatus": "success"}]


async def test_the_copy_records_no_history(store: MemoryStore) -> None:
    await put(store, car(1, 80))
    assert await store.temporal_entities("", EntityFilter())  # the live write recorded one instance
    record = await service(store).create(CALLER, BODY, [capture()], [])
    assert await store.temporal_entities(record.content, EntityFilter()) == []


async def test_temporal_queries_copy_the_instances_in_their_interval(store: MemoryStore) -> None:
    for day, speed in ((1, 10), (2, 20), (3, 30)):
        await put(store, car(1, speed, f"2026-01-0{day}T00:00:00.000000Z"))
    temporal = Capture(capture().queries, TimeQuery("after", "2026-01-02T00:00:00Z"))
    record = await service(store).create(CALLER, BODY, [], [temporal])
    history = await store.temporal_instances(record.content, ["urn:ngsi-ld:Car:1"], InstanceQuery())
    assert sorted(i.body["value"] for i in history["urn:ngsi-ld:Car:1"][SPEED]) == [20, 30]
    assert record.body["snapshotTemporalQueriesDetails"] == [{"resultStatus": "success"}]
    assert record.body["snapshotStatus"] == "success"
    assert await store.get(record.content, ["urn:ngsi-ld:Car:1"]) == {}  # no snapshotQueries: no entities


async def test_an_empty_snapshot_still_has_its_tenant(store: MemoryStore) -> None:
    record = await service(store).create(CALLER, BODY, [capture()], [])
    assert record.body["snapshotStatus"] == "empty"
    assert await store.tenant_exists(record.content)
    assert await store.find_ids(record.content, EntityFilter()) == []


async def test_a_capture_that_fails_leaves_no_snapshot(store: MemoryStore) -> None:
    with pytest.raises(NonexistentTenant):
        await service(store).create(Caller(tenant="nobody"), BODY, [capture()], [])
    assert await store.list_snapshots() == []


async def test_ids_are_unique_per_tenant(store: MemoryStore) -> None:
    await put(store, car(1, 80))
    await put(store, car(1, 80), tenant="city")
    snapshots = service(store)
    body = {**BODY, "id": "urn:ngsi-ld:Snapshot:x"}
    await snapshots.create(CALLER, body, [capture()], [])
    with pytest.raises(AlreadyExists):
        await snapshots.create(CALLER, body, [capture()], [])
    other = await snapshots.create(Caller(tenant="city"), body, [capture()], [])
    assert other.content.startswith("city")


async def test_expiry_ends_the_snapshot_and_drops_its_content(store: MemoryStore) -> None:
    await put(store, car(1, 80))
    snapshots = service(store)
    record = await snapshots.create(CALLER, {**BODY, "snapshotLifetime": "PT0.2S"}, [capture()], [])
    assert await snapshots.content_of(CALLER, record.id) == record.content
    await asyncio.sleep(0.3)
    with pytest.raises(ResourceNotFound):
        await snapshots.content_of(CALLER, record.id)
    assert await store.get_snapshot("", record.id) is None
    assert await store.find_ids(record.content, EntityFilter()) == []


async def test_purge_expired_sweeps_every_tenant(store: MemoryStore) -> None:
    await put(store, car(1, 80), tenant="city")
    snapshots = service(store)
    short = await snapshots.create(Caller(tenant="city"), {**BODY, "snapshotLifetime": "PT0.1S"}, [capture()], [])
    long = await snapshots.create(Caller(tenant="city"), BODY, [capture()], [])
    await asyncio.sleep(0.2)
    assert await snapshots.purge_expired() == 1
    assert [r.id for r in await store.list_snapshots()] == [long.id]
    assert await store.get(short.content, ["urn:ngsi-ld:Car:1"]) == {}


async def test_holding_finds_an_entity_in_every_snapshot(store: MemoryStore) -> None:
    await put(store, car(1, 80), car(2, 20))
    await put(store, car(1, 80), tenant="city")
    snapshots = service(store)
    fast = await snapshots.create(CALLER, BODY, [capture(q="speed>50")], [])
    await snapshots.create(CALLER, BODY, [capture(q="speed<50")], [])
    elsewhere = await snapshots.create(Caller(tenant="city"), BODY, [capture()], [])
    assert {r.id for r in await snapshots.holding("urn:ngsi-ld:Car:1")} == {fast.id, elsewhere.id}
    assert [r.id for r in await snapshots.holding("urn:ngsi-ld:Car:1", "")] == [fast.id]


async def test_delete_drops_the_content(store: MemoryStore) -> None:
    await put(store, car(1, 80))
    snapshots = service(store)
    record = await snapshots.create(CALLER, BODY, [capture()], [])
    await snapshots.delete(CALLER, record.id)
    assert await store.find_ids(record.content, EntityFilter()) == []
    with pytest.raises(ResourceNotFound):
        await snapshots.delete(CALLER, record.id)


async def test_clone_copies_entities_and_history(store: MemoryStore) -> None:
    for day in (1, 2):
        await put(store, car(1, day * 10, f"2026-01-0{day}T00:00:00.000000Z"))
    snapshots = service(store)
    source = await snapshots.create(CALLER, BODY, [capture()], [Capture(capture().queries, TimeQuery())])
    clone = await snapshots.clone(CALLER, source.id, {"type": "Snapshot", "snapshotPriority": 7})
    assert clone.body["snapshotPriority"] == 7 and clone.body["snapshotQueries"] == BODY["snapshotQueries"]
    assert await store.get(clone.content, ["urn:ngsi-ld:Car:1"]) == await store.get(
        source.content, ["urn:ngsi-ld:Car:1"]
    )
    ids = ["urn:ngsi-ld:Car:1"]
    copied = await store.temporal_instances(clone.content, ids, InstanceQuery())
    assert copied == await store.temporal_instances(source.content, ids, InstanceQuery())
    assert len(copied["urn:ngsi-ld:Car:1"][SPEED]) == 2


async def test_notifications_after_creation_and_update(store: MemoryStore) -> None:
    sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    snapshots = service(store, sent)
    members = {"endpoint": "http://127.0.0.1:9/n", "receiverInfo": [{"key": "X-Token", "value": "t"}]}
    record = await snapshots.create(CALLER, {**BODY, **members}, [capture()], [])
    await snapshots.update(CALLER, record.id, {"snapshotPriority": 2})
    await snapshots.drain()
    assert [(url, body["type"], body["snapshotId"], headers) for url, body, headers in sent] == [
        ("http://127.0.0.1:9/n", "SnapshotNotification", record.id, {"X-Token": "t"})
    ] * 2
    assert sent[0][1]["snapshotStatus"] == "empty" and sent[0][1]["snapshotQueriesDetails"] == [
        {"resultStatus": "empty"}
    ]


@pytest.mark.parametrize(
    "members",
    [
        {"snapshotPriority": 0},
        {"snapshotPriority": True},
        {"snapshotLifetime": "P0D"},
        {"snapshotLifetime": 60},
        {"expiresAt": "2000-01-01T00:00:00Z"},
        {"snapshotLifetime": "PT1H", "expiresAt": "2100-01-01T00:00:00Z"},
        {"receiverInfo": [{"key": "a"}]},
        {"endpoint": "not a uri"},
        {"snapshotStatus": "success"},
        {"lastUsedAt": "2026-01-01T00:00:00Z"},
        {"unknownMember": 1},
        {"type": "EntityMap"},
    ],
)
async def test_members_are_checked(store: MemoryStore, members: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        await service(store).create(CALLER, {**BODY, **members}, [capture()], [])


async def test_an_mqtt_endpoint_is_not_supported(store: MemoryStore) -> None:
    with pytest.raises(OperationNotSupported):
        await service(store).create(CALLER, {**BODY, "endpoint": "mqtt://broker/topic"}, [capture()], [])
