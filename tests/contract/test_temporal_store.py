"""The temporal part of the Store contract (broker/store/base.py), on every backend: history recorded with each
write, direct additions, selection by time, datasetId and lastN, corrections, deletion, retention."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.errors import ResourceNotFound
from broker.store.base import (
    ALL_DATASETS,
    DEFAULT_TENANT,
    EntityFilter,
    HistoryPolicy,
    InstanceQuery,
    Store,
    TemporalInstance,
)
from broker.temporal.history import make_instance
from broker.temporal.times import to_micros
from tests.contract.contract_helpers import EX, T_SENSOR, T_VEHICLE, Boom, delete, entity, failing_after, put

A, B = "urn:ngsi-ld:Sensor:A", "urn:ngsi-ld:Sensor:B"
SPEED, FLOW = EX + "speed", EX + "flow"


def at(hour: int, minute: int = 0) -> str:
    return f"2026-05-01T{hour:02d}:{minute:02d}:00Z"


def observed(value: Any, hour: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Property",
        "value": value,
        "observedAt": at(hour),
        "createdAt": at(hour),
        "modifiedAt": at(hour),
        **extra,
    }


def values(history: dict[str, dict[str, list[TemporalInstance]]], eid: str = A, attr: str = SPEED) -> list[Any]:
    return [i.body.get("value") for i in history.get(eid, {}).get(attr, [])]


async def add(store: Store, eid: str, *bodies: dict[str, Any], attr: str = SPEED, create: bool = True) -> bool:
    instances = [make_instance(attr, b) for b in bodies]
    return await store.temporal_add(DEFAULT_TENANT, eid, {"type": [T_SENSOR]}, instances, create=create)


async def read(store: Store, eid: str = A, **query: Any) -> dict[str, dict[str, list[TemporalInstance]]]:
    return await store.temporal_instances(DEFAULT_TENANT, [eid], InstanceQuery(**query))


async def test_writes_record_history_in_the_same_transaction(store: Store) -> None:
    v1 = entity(A, T_SENSOR, speed=1)
    await store.write(DEFAULT_TENANT, [A], put(v1), create_tenant=True)
    v2 = entity(A, T_SENSOR, speed=2)
    v2["attrs"][SPEED][0]["modifiedAt"] = "2026-05-01T00:00:01Z"
    await store.write(DEFAULT_TENANT, [A], put(v2))
    await store.write(DEFAULT_TENANT, [A], put(v2))  # unchanged: nothing new
    with pytest.raises(Boom):
        await store.write(DEFAULT_TENANT, [A], failing_after(put(entity(A, T_SENSOR, speed=99))))
    history = await read(store)
    assert values(history, A) == [1, 2]
    records = await store.temporal_entities(DEFAULT_TENANT, EntityFilter())
    assert [(r.id, r.type) for r in records] == [(A, [T_SENSOR])]


async def test_deleting_an_entity_records_deletions_or_drops_history(store: Store) -> None:
    await store.write(DEFAULT_TENANT, [A, B], put(entity(A, speed=1), entity(B, speed=2)), create_tenant=True)
    await store.write(DEFAULT_TENANT, [A], delete(A))
    deleted = (await read(store))[A][SPEED]
    assert deleted[-1].body["value"] == "urn:ngsi-ld:null" and "deletedAt" in deleted[-1].body
    store.history = HistoryPolicy(record=True, keep_on_delete=False)
    try:
        await store.write(DEFAULT_TENANT, [B], delete(B))
    finally:
        store.history = HistoryPolicy()
    assert await read(store, B) == {}
    assert [r.id for r in await store.temporal_entities(DEFAULT_TENANT, EntityFilter())] == [A]


_KINDS: list[tuple[str, str, Any, Any]] = [
    ("Property", "value", 1, "urn:ngsi-ld:null"),
    ("Relationship", "object", "urn:ngsi-ld:Sensor:X", "urn:ngsi-ld:null"),
    ("LanguageProperty", "languageMap", {"en": "on"}, {"@none": "urn:ngsi-ld:null"}),
    ("ListProperty", "valueList", [1, 2], ["urn:ngsi-ld:null"]),
    ("ListRelationship", "objectList", [{"object": "urn:ngsi-ld:Sensor:X"}], ["urn:ngsi-ld:null"]),
    ("JsonProperty", "json", {"a": 1}, "urn:ngsi-ld:null"),
    ("VocabProperty", "vocab", EX + "on", "urn:ngsi-ld:null"),
]


async def test_a_deleted_attribute_is_recorded_with_the_null_of_its_type(store: Store) -> None:
    """Clauses 4.5.7, 4.5.8, 4.6.5, 4.5.21.2, 4.5.22.2: the deletion instance keeps the attribute's type and has the
    NGSI-LD Null that type encodes a deletion with, and deletedAt."""
    live = entity(A)
    live["attrs"] = {EX + kind: [{"type": kind, member: content}] for kind, member, content, _ in _KINDS}
    await store.write(DEFAULT_TENANT, [A], put(live), create_tenant=True)
    await store.write(DEFAULT_TENANT, [A], delete(A))
    history = (await read(store))[A]
    for kind, member, _, null in _KINDS:
        last = history[EX + kind][-1].body
        assert (last["type"], last[member]) == (kind, null), kind
        assert "deletedAt" in last, kind


async def test_history_off_records_nothing(store: Store) -> None:
    store.history = HistoryPolicy(record=False)
    try:
        await store.write(DEFAULT_TENANT, [A], put(entity(A, speed=1)), create_tenant=True)
    finally:
        store.history = HistoryPolicy()
    assert await store.temporal_entities(DEFAULT_TENANT, EntityFilter()) == []


async def test_add_creates_or_requires_the_temporal_entity(store: Store) -> None:
    assert await add(store, A, observed(1, 1)) is True
    assert await add(store, A, observed(2, 2), create=False) is False
    with pytest.raises(ResourceNotFound):
        await add(store, B, observed(1, 1), create=False)
    assert values(await read(store), A) == [1, 2]
    await store.temporal_add(DEFAULT_TENANT, A, {"type": [T_VEHICLE]}, [], create=False)
    (record,) = await store.temporal_entities(DEFAULT_TENANT, EntityFilter())
    assert sorted(record.type) == sorted([T_SENSOR, T_VEHICLE])  # types accumulate (clause 5.6.11.4)


async def test_add_in_another_tenant_creates_it(store: Store) -> None:
    await store.temporal_add("city", A, {"type": [T_SENSOR]}, [make_instance(SPEED, observed(1, 1))], create=True)
    assert await store.tenant_exists("city")
    assert values(await store.temporal_instances("city", [A], InstanceQuery()), A) == [1]
    assert await read(store) == {}


async def test_time_bounds_are_inclusive_start_exclusive_end(store: Store) -> None:
    await add(store, A, *[observed(h, h) for h in (3, 1, 4, 2, 0)])
    assert values(await read(store)) == [0, 1, 2, 3, 4]  # oldest first, whatever the arrival order
    assert values(await read(store, start=to_micros(at(1)), end=to_micros(at(3)))) == [1, 2]
    assert values(await read(store, end=to_micros(at(1)))) == [0]
    assert values(await read(store, start=to_micros("2026-05-01T04:00:00+01:00"))) == [3, 4]


async def test_instances_without_the_time_property_do_not_match_a_bound(store: Store) -> None:
    await add(store, A, observed(1, 1), {"type": "Property", "value": 2, "modifiedAt": at(2)})
    assert values(await read(store)) == [1, 2]
    assert values(await read(store, start=to_micros(at(0)))) == [1]
    assert values(await read(store, timeproperty="modifiedAt", start=to_micros(at(2)))) == [2]


async def test_last_n_and_per_attr(store: Store) -> None:
    await add(store, A, *[observed(h, h) for h in range(6)])
    assert values(await read(store, per_attr=2, newest_first=True)) == [4, 5]
    assert values(await read(store, per_attr=2)) == [0, 1]
    assert values(await read(store, per_attr=2, newest_first=True, end=to_micros(at(3)))) == [1, 2]


async def test_datasets_and_attrs(store: Store) -> None:
    await add(store, A, observed(1, 1), observed(2, 1, datasetId="urn:ds:x"), attr=FLOW)
    await add(store, A, observed(3, 1))
    assert values(await read(store, datasets=frozenset({None})), A, FLOW) == [1]
    assert values(await read(store, datasets=frozenset({"urn:ds:x"})), A, FLOW) == [2]
    history = await read(store, attrs=frozenset({SPEED}))
    assert list(history[A]) == [SPEED]


async def test_temporal_entities_filter(store: Store) -> None:
    await add(store, B, observed(1, 1))
    await store.temporal_add(
        DEFAULT_TENANT, A, {"type": [T_VEHICLE]}, [make_instance(SPEED, observed(1, 1))], create=True
    )
    assert [r.id for r in await store.temporal_entities(DEFAULT_TENANT, EntityFilter())] == [A, B]
    by_type = await store.temporal_entities(DEFAULT_TENANT, EntityFilter(types=frozenset({T_SENSOR})))
    assert [r.id for r in by_type] == [B]
    assert [r.id for r in await store.temporal_entities(DEFAULT_TENANT, EntityFilter(id_pattern=":A$"))] == [A]
    assert [r.id for r in await store.temporal_entities(DEFAULT_TENANT, EntityFilter(ids=frozenset({B})))] == [B]


async def test_corrections(store: Store) -> None:
    await add(store, A, observed(1, 1), observed(2, 2), observed(3, 3, datasetId="urn:ds:x"))
    first, second, _third = (await read(store))[A][SPEED]
    fixed = TemporalInstance(SPEED, first.instance_id, observed(10, 1))
    assert await store.temporal_replace_instance(DEFAULT_TENANT, A, fixed)
    assert not await store.temporal_replace_instance(
        DEFAULT_TENANT, A, TemporalInstance(SPEED, "urn:x", observed(1, 1))
    )
    assert values(await read(store)) == [10, 2, 3]
    assert await store.temporal_delete_instance(DEFAULT_TENANT, A, SPEED, second.instance_id)
    assert not await store.temporal_delete_instance(DEFAULT_TENANT, A, SPEED, second.instance_id)
    assert values(await read(store)) == [10, 3]
    assert await store.temporal_delete_attr(DEFAULT_TENANT, A, SPEED, "urn:ds:x") == 1
    assert await store.temporal_delete_attr(DEFAULT_TENANT, A, SPEED, "urn:ds:x") == 0
    await add(store, A, observed(4, 4, datasetId="urn:ds:y"))
    assert await store.temporal_delete_attr(DEFAULT_TENANT, A, SPEED, ALL_DATASETS) == 2
    assert await read(store) == {}
    assert await store.temporal_delete(DEFAULT_TENANT, A)
    assert not await store.temporal_delete(DEFAULT_TENANT, A)


async def test_retention(store: Store) -> None:
    await add(store, A, *[observed(h, h) for h in range(5)])
    await add(store, B, *[observed(h, h) for h in range(3)])
    assert await store.temporal_retain(None, 2) == 4
    assert values(await read(store)) == [3, 4]
    assert await store.temporal_retain(to_micros(at(4)), None) == 3  # A's 3, B's 1 and 2 are older than 04:00
    assert values(await read(store)) == [4]
    assert await read(store, B) == {}


async def test_numeric_buckets_agree_with_the_instances(store: Store) -> None:
    await add(store, A, *[observed(float(h), h) for h in range(6)])
    rows = await store.temporal_numeric_buckets(
        DEFAULT_TENANT, A, SPEED, InstanceQuery(), to_micros(at(0)), 7_200_000_000
    )
    if rows is None:  # optional fast path: a backend without it leaves aggregation to the reference
        return
    assert [(k, n, s, mn, mx) for k, n, s, _, mn, mx, _ in rows] == [
        (0, 2, 1.0, 0.0, 1.0),
        (1, 2, 5.0, 2.0, 3.0),
        (2, 2, 9.0, 4.0, 5.0),
    ]
    await add(store, A, {"type": "Property", "value": "text", "observedAt": at(7), "modifiedAt": at(7)})
    assert (
        await store.temporal_numeric_buckets(DEFAULT_TENANT, A, SPEED, InstanceQuery(), to_micros(at(0)), 3600) is None
    )
