"""The Store contract (broker/store/base.py), run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from broker.core.errors import AlreadyExists, NonexistentTenant, ResourceNotFound
from broker.core.model import Entity
from broker.store import open_store
from broker.store.base import DEFAULT_TENANT, Change, ContextRecord, EntityFilter, Store, WritePlan
from tests.contract.contract_helpers import (
    EX,
    T_PARKING,
    T_SENSOR,
    T_VEHICLE,
    Boom,
    Reopen,
    create_only,
    delete,
    entity,
    failing_after,
    put,
    replace_existing,
    write_entities,
)

A, B, C = "urn:ngsi-ld:Vehicle:A", "urn:ngsi-ld:Vehicle:B", "urn:ngsi-ld:Vehicle:C"


async def all_changes(store: Store) -> list[Change]:
    return await store.changes_since(0, limit=1_000_000)


async def snapshot(store: Store, tenant: str = DEFAULT_TENANT) -> list[Entity]:
    return await store.scan(tenant, EntityFilter())


# -- create / read / replace / delete -------------------------------------------------------------------------


async def test_create_then_get(store: Store) -> None:
    a = entity(A, speed=10)
    await store.write(DEFAULT_TENANT, [A], create_only(a))
    assert await store.get(DEFAULT_TENANT, [A]) == {A: a}


async def test_get_leaves_out_missing_ids(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A))
    assert set(await store.get(DEFAULT_TENANT, [A, B, A])) == {A}
    assert await store.get(DEFAULT_TENANT, []) == {}


async def test_fn_sees_current_state_of_every_requested_id(store: Store) -> None:
    a = entity(A, speed=1)
    await write_entities(store, DEFAULT_TENANT, a)
    seen: list[dict[str, Entity | None]] = []

    def look(current: Mapping[str, Entity | None]) -> WritePlan[None]:
        seen.append(dict(current))
        return WritePlan()

    await store.write(DEFAULT_TENANT, [A, B, A], look)
    assert seen == [{A: a, B: None}]


async def test_write_returns_the_plan_result(store: Store) -> None:
    assert await store.write(DEFAULT_TENANT, [A], put(entity(A), result={"created": [A]})) == {"created": [A]}
    assert await store.write(DEFAULT_TENANT, [A], lambda _c: WritePlan[str]()) is None


async def test_create_of_existing_raises_and_keeps_original(store: Store) -> None:
    original = entity(A, speed=1)
    await store.write(DEFAULT_TENANT, [A], create_only(original))
    with pytest.raises(AlreadyExists):
        await store.write(DEFAULT_TENANT, [A], create_only(entity(A, speed=2)))
    assert await store.get(DEFAULT_TENANT, [A]) == {A: original}


async def test_replace(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, T_VEHICLE, speed=1))
    replaced = entity(A, T_SENSOR, temperature=20.5)
    await store.write(DEFAULT_TENANT, [A], replace_existing(replaced))
    assert await store.get(DEFAULT_TENANT, [A]) == {A: replaced}
    # The type index follows the replacement.
    assert await store.find_ids(DEFAULT_TENANT, EntityFilter(types=frozenset({T_VEHICLE}))) == []
    assert await store.find_ids(DEFAULT_TENANT, EntityFilter(types=frozenset({T_SENSOR}))) == [A]


async def test_replace_of_missing_raises(store: Store) -> None:
    with pytest.raises(ResourceNotFound):
        await store.write(DEFAULT_TENANT, [A], replace_existing(entity(A)))
    assert await snapshot(store) == []


async def test_delete(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A), entity(B))
    await store.write(DEFAULT_TENANT, [A], delete(A))
    assert await store.get(DEFAULT_TENANT, [A, B]) == {B: entity(B)}
    assert await store.find_ids(DEFAULT_TENANT, EntityFilter(types=frozenset({T_VEHICLE}))) == [B]


async def test_delete_then_recreate(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=1))
    await store.write(DEFAULT_TENANT, [A], delete(A))
    await store.write(DEFAULT_TENANT, [A], create_only(entity(A, T_PARKING, spots=3)))
    assert await store.get(DEFAULT_TENANT, [A]) == {A: entity(A, T_PARKING, spots=3)}
    assert await store.find_ids(DEFAULT_TENANT, EntityFilter(types=frozenset({T_PARKING}))) == [A]


async def test_deleting_a_missing_entity_is_a_noop(store: Store) -> None:
    await store.write(DEFAULT_TENANT, [A], delete(A))
    assert await snapshot(store) == []
    assert await all_changes(store) == []


# -- atomicity ------------------------------------------------------------------------------------------------


async def test_multi_id_write_is_applied_together(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A), entity(C))
    plan = WritePlan[None]({A: entity(A, speed=5), B: entity(B), C: None})
    await store.write(DEFAULT_TENANT, [A, B, C], lambda _c: plan)
    assert await snapshot(store) == [entity(A, speed=5), entity(B)]


async def test_fn_raising_writes_nothing(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=1), entity(C))
    before_entities, before_changes = await snapshot(store), await all_changes(store)
    batch = put(entity(A, speed=2), entity(B), entity(C, speed=3))
    with pytest.raises(Boom):
        await store.write(DEFAULT_TENANT, [A, B, C], failing_after(batch))
    with pytest.raises(Boom):
        await store.write(DEFAULT_TENANT, [A, C], failing_after(delete(A, C)))
    assert await snapshot(store) == before_entities
    assert await all_changes(store) == before_changes


async def test_store_usable_after_failed_write(store: Store) -> None:
    with pytest.raises(Boom):
        await store.write(DEFAULT_TENANT, [A], failing_after(put(entity(A))))
    await store.write(DEFAULT_TENANT, [A], put(entity(A)))
    assert await store.find_ids(DEFAULT_TENANT, EntityFilter()) == [A]


async def test_concurrent_writes_each_stand_or_fall_alone(store: Store) -> None:
    """Writes started in the same turn of the event loop (a backend may commit them together) are each atomic:
    one that fails half-way, after writing one of its entities, leaves no trace, and the others all stand."""
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=1))
    outcomes = await asyncio.gather(
        store.write(DEFAULT_TENANT, [A], replace_existing(entity(A, speed=2)), create_tenant=True),
        store.write(DEFAULT_TENANT, [B, C], put(entity(B), entity(C, speed={1, 2}))),  # C is not JSON
        store.write(DEFAULT_TENANT, [A], create_only(entity(A))),  # A exists
        store.write(DEFAULT_TENANT, [C], put(entity(C, speed=3), result="c")),
        return_exceptions=True,
    )
    assert outcomes[0] is None and outcomes[3] == "c"
    assert isinstance(outcomes[1], TypeError) and isinstance(outcomes[2], AlreadyExists)
    assert await snapshot(store) == [entity(A, speed=2), entity(C, speed=3)]
    # One change each for the two that stood, and none for the others. Their order is the order they committed in,
    # which concurrent writes of different entities do not promise: on Redis Cluster the write of A may be tried
    # again after the refused create of A touched the same key, and commit after C.
    changes = (await all_changes(store))[1:]
    assert sorted(((c.entity_id, c.after) for c in changes), key=lambda change: change[0]) == [
        (A, entity(A, speed=2)),
        (C, entity(C, speed=3)),
    ]


async def test_concurrent_writes_of_one_entity_build_on_each_other(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=0))

    def increment(current: Mapping[str, Entity | None]) -> WritePlan[int]:
        now = current[A]
        assert now is not None
        speed = now["attrs"][f"{EX}speed"][0]["value"] + 1
        return WritePlan({A: entity(A, speed=speed)}, speed)

    results = await asyncio.gather(*(store.write(DEFAULT_TENANT, [A], increment) for _ in range(10)))
    assert sorted(results) == list(range(1, 11))
    assert await store.get(DEFAULT_TENANT, [A]) == {A: entity(A, speed=10)}


async def test_writing_an_id_not_given_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="not given"):
        await store.write(DEFAULT_TENANT, [A], put(entity(A), entity(B)))
    assert await snapshot(store) == []
    assert await all_changes(store) == []


async def test_entity_id_must_match_its_key(store: Store) -> None:
    with pytest.raises(ValueError, match="has id"):
        await store.write(DEFAULT_TENANT, [A], lambda _c: WritePlan({A: entity(B)}))
    assert await snapshot(store) == []


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({1, 2}, TypeError),  # not JSON
        (float("nan"), ValueError),  # JSON has no NaN or infinities: refused rather than turned into null
        ([1.0, {"deep": float("-inf")}], ValueError),
    ],
)
async def test_unstorable_value_writes_nothing(store: Store, value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        await store.write(DEFAULT_TENANT, [A, B], put(entity(A), entity(B, speed=value)))
    assert await snapshot(store) == []
    assert await all_changes(store) == []


async def test_null_values_are_stored(store: Store) -> None:
    a = entity(A, speed=None, data={"k": [None, 1.5, float(2**53)]})
    await write_entities(store, DEFAULT_TENANT, a)
    assert await store.get(DEFAULT_TENANT, [A]) == {A: a}


# -- tenants --------------------------------------------------------------------------------------------------


async def test_default_tenant_always_exists(store: Store) -> None:
    assert await store.tenant_exists(DEFAULT_TENANT)
    assert await store.list_tenants() == [DEFAULT_TENANT]


async def test_unknown_tenant_raises_and_fn_is_not_called(store: Store) -> None:
    calls: list[object] = []

    def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
        calls.append(current)
        return WritePlan({A: entity(A)})

    with pytest.raises(NonexistentTenant):
        await store.write("cityA", [A], plan)
    assert calls == []
    assert not await store.tenant_exists("cityA")
    assert await store.get("cityA", [A]) == {}


async def test_create_tenant(store: Store) -> None:
    await store.write("cityA", [A], put(entity(A)), create_tenant=True)
    assert await store.tenant_exists("cityA")
    assert await store.get("cityA", [A]) == {A: entity(A)}
    # Once created, the tenant takes writes without create_tenant.
    await store.write("cityA", [B], put(entity(B)))
    assert await store.find_ids("cityA", EntityFilter()) == [A, B]


async def test_tenant_not_created_when_nothing_is_written(store: Store) -> None:
    with pytest.raises(Boom):
        await store.write("cityA", [A], failing_after(put(entity(A))), create_tenant=True)
    await store.write("cityB", [A], lambda _c: WritePlan(), create_tenant=True)
    await store.write("cityC", [A], delete(A), create_tenant=True)
    assert await store.list_tenants() == [DEFAULT_TENANT]


async def test_tenants_are_isolated(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=0))
    await write_entities(store, "cityA", entity(A, speed=1), entity(B))
    await write_entities(store, "cityB", entity(C))
    assert await store.get(DEFAULT_TENANT, [A, B, C]) == {A: entity(A, speed=0)}
    assert await store.get("cityA", [A, B, C]) == {A: entity(A, speed=1), B: entity(B)}
    assert await store.find_ids("cityB", EntityFilter(types=frozenset({T_VEHICLE}))) == [C]
    await store.write("cityA", [A], delete(A))
    assert await store.get(DEFAULT_TENANT, [A]) == {A: entity(A, speed=0)}
    seen: list[Entity | None] = []

    def look(current: Mapping[str, Entity | None]) -> WritePlan[None]:
        seen.append(current[A])
        return WritePlan()

    await store.write("cityB", [A], look)
    assert seen == [None]


async def test_list_tenants(store: Store) -> None:
    for tenant in ["zeta", "alpha", "mid"]:
        await write_entities(store, tenant, entity(A))
    await store.write("alpha", [A], delete(A))  # an emptied tenant still exists
    assert await store.list_tenants() == [DEFAULT_TENANT, "alpha", "mid", "zeta"]
    assert await store.tenant_exists("alpha")


async def test_reads_of_unknown_tenant_are_empty(store: Store) -> None:
    assert await store.find_ids("nobody", EntityFilter()) == []
    assert await store.scan("nobody", EntityFilter()) == []


# -- find_ids / scan ------------------------------------------------------------------------------------------

IDS = [
    "urn:ngsi-ld:Vehicle:B",
    "urn:ngsi-ld:Vehicle:A",
    "urn:ngsi-ld:Vehicle:a",
    "urn:ngsi-ld:OffStreetParking:P1",
    "urn:ngsi-ld:OffStreetParking:P10",
    "urn:ngsi-ld:Sensor:ß-Ünicode",
    "urn:ngsi-ld:Sensor:x.y",
]


@pytest_asyncio.fixture
async def populated(store: Store) -> Store:
    """IDS written in a shuffled order; each entity's type follows its id, the two Sensors have two types."""
    kinds = {"Vehicle": [T_VEHICLE], "OffStreetParking": [T_PARKING], "Sensor": [T_SENSOR, T_VEHICLE]}
    for eid in IDS:
        await write_entities(store, DEFAULT_TENANT, entity(eid, *kinds[eid.split(":")[2]], n=eid))
    await write_entities(store, "other", entity("urn:ngsi-ld:Vehicle:Z"))
    return store


def expected(ids: list[str]) -> list[str]:
    return sorted(ids)


@pytest.mark.parametrize(
    ("flt", "ids"),
    [
        (EntityFilter(), IDS),
        (EntityFilter(types=frozenset({T_PARKING})), IDS[3:5]),
        (EntityFilter(types=frozenset({T_VEHICLE})), IDS[:3] + IDS[5:]),
        (EntityFilter(types=frozenset({T_PARKING, T_SENSOR})), IDS[3:]),
        (EntityFilter(types=frozenset({EX + "Nothing"})), []),
        (EntityFilter(types=frozenset()), []),
        (EntityFilter(ids=frozenset({IDS[0], IDS[3], "urn:missing"})), [IDS[0], IDS[3]]),
        (EntityFilter(ids=frozenset()), []),
        (EntityFilter(id_pattern="Parking"), IDS[3:5]),  # matches anywhere, not only at the start
        (EntityFilter(id_pattern="P1$"), [IDS[3]]),
        (EntityFilter(id_pattern="^urn:ngsi-ld:Vehicle:[A-Z]$"), IDS[:2]),
        (EntityFilter(id_pattern="x\\.y"), [IDS[6]]),
        (EntityFilter(id_pattern="ß"), [IDS[5]]),
        (EntityFilter(id_pattern=".*"), IDS),
        (EntityFilter(types=frozenset({T_VEHICLE}), id_pattern="Sensor"), IDS[5:]),
        (EntityFilter(types=frozenset({T_VEHICLE}), ids=frozenset(IDS[1:4]), id_pattern=":[AaP]"), IDS[1:3]),
    ],
)
async def test_find_ids_and_scan(populated: Store, flt: EntityFilter, ids: list[str]) -> None:
    found = await populated.find_ids(DEFAULT_TENANT, flt)
    assert found == expected(ids)
    assert [e["id"] for e in await populated.scan(DEFAULT_TENANT, flt)] == found


async def test_scan_returns_whole_entities_in_id_order(populated: Store) -> None:
    scanned = await populated.scan(DEFAULT_TENANT, EntityFilter(types=frozenset({T_PARKING})))
    assert scanned == [entity(eid, T_PARKING, n=eid) for eid in sorted(IDS[3:5])]


async def test_id_order_is_code_point_order(populated: Store) -> None:
    found = await populated.find_ids(DEFAULT_TENANT, EntityFilter())
    assert found == sorted(IDS)
    assert found.index("urn:ngsi-ld:Vehicle:B") < found.index("urn:ngsi-ld:Vehicle:a")  # upper case first


async def test_invalid_id_pattern_raises_re_error(populated: Store) -> None:
    with pytest.raises(re.error):
        await populated.find_ids(DEFAULT_TENANT, EntityFilter(id_pattern="("))


# -- change feed ----------------------------------------------------------------------------------------------


def transitions(changes: list[Change]) -> list[tuple[str, str, Any, Any]]:
    return [(c.tenant, c.entity_id, c.before, c.after) for c in changes]


async def test_change_feed_records_every_transition_in_order(store: Store) -> None:
    a1, a2, b = entity(A, speed=1), entity(A, speed=2), entity(B)
    await store.write(DEFAULT_TENANT, [A], create_only(a1))
    await store.write("cityA", [B, A], put(b, entity(A)), create_tenant=True)
    await store.write(DEFAULT_TENANT, [A], replace_existing(a2))
    with pytest.raises(Boom):
        await store.write(DEFAULT_TENANT, [A], failing_after(delete(A)))
    await store.write(DEFAULT_TENANT, [A, B], delete(A, B))  # B does not exist here: no event for it
    changes = await all_changes(store)
    assert transitions(changes) == [
        ("", A, None, a1),
        ("cityA", B, None, b),
        ("cityA", A, None, entity(A)),
        ("", A, a1, a2),
        ("", A, a2, None),
    ]
    seqs = [c.seq for c in changes]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1
    assert all(isinstance(c.at, str) and c.at for c in changes)
    assert changes[1].at == changes[2].at  # one write, one timestamp


async def test_changes_since_and_limit(store: Store) -> None:
    for i in range(10):
        await store.write(DEFAULT_TENANT, [A], put(entity(A, i=i)))
    changes = await all_changes(store)
    assert len(changes) == 10
    assert await store.changes_since(changes[3].seq) == changes[4:]
    assert await store.changes_since(changes[3].seq, limit=2) == changes[4:6]
    assert await store.changes_since(changes[-1].seq) == []
    assert await store.changes_since(0, limit=0) == []


async def test_change_feed_is_durable_across_reopen(store: Store, reopen: Reopen) -> None:
    await store.write(DEFAULT_TENANT, [A], put(entity(A)))
    await store.write("cityA", [B], put(entity(B)), create_tenant=True)
    expected_changes = await all_changes(store)
    await store.close()
    again = await reopen()
    assert await all_changes(again) == expected_changes
    assert await again.list_tenants() == [DEFAULT_TENANT, "cityA"]
    assert await again.get("cityA", [B]) == {B: entity(B)}
    # Sequence numbers keep growing after a reopen.
    await again.write(DEFAULT_TENANT, [A], delete(A))
    assert (await all_changes(again))[-1].seq > expected_changes[-1].seq


# -- deep-copy isolation --------------------------------------------------------------------------------------


async def test_mutating_returned_entities_does_not_change_the_store(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=1))
    got = (await store.get(DEFAULT_TENANT, [A]))[A]
    got["attrs"][EX + "speed"][0]["value"] = 99
    got["type"].append(T_SENSOR)
    (await store.scan(DEFAULT_TENANT, EntityFilter()))[0]["attrs"].clear()
    change = (await all_changes(store))[0]
    assert change.after is not None
    change.after["attrs"].clear()
    assert await store.get(DEFAULT_TENANT, [A]) == {A: entity(A, speed=1)}
    assert (await all_changes(store))[0].after == entity(A, speed=1)


async def test_mutating_written_or_planned_entities_does_not_change_the_store(store: Store) -> None:
    a = entity(A, speed=1)
    await store.write(DEFAULT_TENANT, [A], put(a))
    a["attrs"].clear()  # the caller keeps using its dict after the write

    def impure(current: Mapping[str, Entity | None]) -> WritePlan[None]:
        existing = current[A]
        assert existing is not None
        existing["attrs"].clear()  # a sloppy plan mutating its input must not reach the stored state
        existing["type"] = [T_SENSOR]
        return WritePlan()

    await store.write(DEFAULT_TENANT, [A], impure)
    assert await store.get(DEFAULT_TENANT, [A]) == {A: entity(A, speed=1)}
    assert await store.find_ids(DEFAULT_TENANT, EntityFilter(types=frozenset({T_VEHICLE}))) == [A]
    assert (await all_changes(store))[0].after == entity(A, speed=1)


async def test_mutating_a_plan_input_does_not_leak_into_the_change_feed(store: Store) -> None:
    await write_entities(store, DEFAULT_TENANT, entity(A, speed=1))

    def mutate_then_replace(current: Mapping[str, Entity | None]) -> WritePlan[None]:
        existing = current[A]
        assert existing is not None
        existing["attrs"].clear()
        return WritePlan({A: entity(A, speed=2)})

    await store.write(DEFAULT_TENANT, [A], mutate_then_replace)
    assert (await all_changes(store))[-1].before == entity(A, speed=1)


# -- @context records -----------------------------------------------------------------------------------------


def record(cid: str, url: str, kind: str = "Hosted", **extra: Any) -> ContextRecord:
    body = {"@context": {"speed": EX + "speed", "nested": {"@id": EX + "n", "@type": "@id"}}}
    return ContextRecord(cid, url, kind, body, "2026-01-01T00:00:00Z", dict(extra))


async def test_contexts_crud(store: Store) -> None:
    assert await store.list_contexts() == []
    assert await store.get_context("c1") is None
    r1, r2 = record("c2", "http://h/c2"), record("c1", "http://h/c1", "Cached", hits=3, etag='"x"')
    await store.put_context(r1)
    await store.put_context(r2)
    assert await store.get_context("c1") == r2
    assert await store.list_contexts() == [r2, r1]  # id order
    assert await store.find_context_by_url("http://h/c2") == r1
    assert await store.find_context_by_url("http://h/none") is None
    replaced = record("c1", "http://h/c1-new", "ImplicitlyCreated")
    await store.put_context(replaced)
    assert await store.get_context("c1") == replaced
    assert await store.find_context_by_url("http://h/c1") is None
    assert await store.delete_context("c1") is True
    assert await store.delete_context("c1") is False
    assert await store.list_contexts() == [r1]


async def test_implicitly_created_context_keeps_its_array(store: Store) -> None:
    """An ImplicitlyCreated entry holds a subscription's @context array as written (clause 5.13.1, record 0136)."""
    array = [{"Bus": EX + "Bus"}, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"]
    implicit = ContextRecord("implicit-0a1b", "http://h/implicit-0a1b", "ImplicitlyCreated", {"@context": array}, "t")
    await store.put_context(implicit)
    assert await store.get_context("implicit-0a1b") == implicit
    assert [r.kind for r in await store.list_contexts()] == ["ImplicitlyCreated"]


async def test_find_context_by_url_prefers_lowest_id(store: Store) -> None:
    for cid in ["c3", "c1", "c2"]:
        await store.put_context(record(cid, "http://h/same"))
    found = await store.find_context_by_url("http://h/same")
    assert found is not None and found.id == "c1"


async def test_context_records_are_copies(store: Store) -> None:
    r = record("c1", "http://h/c1", note="n")
    await store.put_context(r)
    r.body["@context"].clear()
    r.extra.clear()
    got = await store.get_context("c1")
    assert got == record("c1", "http://h/c1", note="n")
    assert got is not None
    got.body.clear()
    assert await store.get_context("c1") == record("c1", "http://h/c1", note="n")


async def test_contexts_survive_reopen(store: Store, reopen: Reopen) -> None:
    await store.put_context(record("c1", "http://h/c1", n=1))
    await store.close()
    again = await reopen()
    assert await again.list_contexts() == [record("c1", "http://h/c1", n=1)]


async def test_trimmed_changes_are_gone_and_the_sequence_goes_on(store: Store) -> None:
    for n in range(5):
        await write_entities(store, DEFAULT_TENANT, entity(f"urn:ngsi-ld:Vehicle:{n}"))
    seqs = [c.seq for c in await all_changes(store)]
    assert len(seqs) == 5
    assert await store.trim_changes(seqs[2]) == 3
    assert [c.seq for c in await all_changes(store)] == seqs[3:]
    assert [c.seq for c in await store.changes_since(seqs[3], limit=10)] == seqs[4:]
    await write_entities(store, DEFAULT_TENANT, entity("urn:ngsi-ld:Vehicle:new"))
    assert (await all_changes(store))[-1].seq > seqs[-1]
    assert await store.last_seq() == (await all_changes(store))[-1].seq


async def test_the_installation_number_is_drawn_once_and_kept(store: Store, reopen: Reopen, tmp_path: Path) -> None:
    """The default source id's number (record 0199): one per store, the same for every process and after a restart,
    another for another store."""
    number = await store.installation()
    assert number > 0 and await store.installation() == number
    again = await reopen()
    assert await again.installation() == number
    other = open_store(f"sqlite:///{tmp_path}/other.db")
    await other.open()
    try:
        assert await other.installation() != number
    finally:
        await other.close()
