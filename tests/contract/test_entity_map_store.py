"""Entity maps in the Store contract (clauses 5.14, 6.32, 6.34), run against every backend in conftest.BACKENDS:
the ids of a map keep their order, a map belongs to one tenant, an expired map is gone for every method, and
another store object on the same URL (another broker process) sees the same maps."""

from __future__ import annotations

import asyncio

from broker.store.base import DEFAULT_TENANT, EntityMapRecord, Store, now_micros
from tests.contract.contract_helpers import Reopen

HOUR = 3_600_000_000
IDS = [f"urn:ngsi-ld:Vehicle:{n:04d}" for n in (7, 3, 9, 1)]  # a query's order, not id order


def live(map_id: str, ids: list[str] | None = None, **extra: object) -> EntityMapRecord:
    return EntityMapRecord(map_id, now_micros() + HOUR, list(IDS if ids is None else ids), dict(extra))


async def test_put_then_get_keeps_order_and_extra(store: Store) -> None:
    record = live("urn:ngsi-ld:EntityMap:a", linkedMaps={})
    await store.put_entity_map(DEFAULT_TENANT, record)
    assert await store.get_entity_map(DEFAULT_TENANT, record.id) == record


async def test_slices_of_ids(store: Store) -> None:
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:a"))
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", 0, 2) == IDS[:2]
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", 2, 10) == IDS[2:]
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", 4, 8) == []
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", 1, 1) == []
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:none", 0, 2) is None


async def test_empty_map(store: Store) -> None:
    record = live("urn:ngsi-ld:EntityMap:empty", [])
    await store.put_entity_map(DEFAULT_TENANT, record)
    assert await store.get_entity_map(DEFAULT_TENANT, record.id) == record
    assert await store.entity_map_ids(DEFAULT_TENANT, record.id, 0, 20) == []
    assert await store.delete_entity_map(DEFAULT_TENANT, record.id)


async def test_large_map(store: Store) -> None:
    ids = [f"urn:ngsi-ld:Thing:{n:06d}" for n in range(12_345)]
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:big", ids))
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:big", 9_990, 10_010) == ids[9_990:10_010]
    found = await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:big")
    assert found is not None and found.ids == ids


async def test_maps_belong_to_their_tenant(store: Store) -> None:
    await store.put_entity_map("t1", live("urn:ngsi-ld:EntityMap:a", ["urn:x:1"]))
    await store.put_entity_map("t2", live("urn:ngsi-ld:EntityMap:a", ["urn:x:2"]))
    one, two = (
        await store.get_entity_map("t1", "urn:ngsi-ld:EntityMap:a"),
        await store.get_entity_map("t2", "urn:ngsi-ld:EntityMap:a"),
    )
    assert one is not None and one.ids == ["urn:x:1"]
    assert two is not None and two.ids == ["urn:x:2"]
    assert await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a") is None
    assert await store.delete_entity_map("t1", "urn:ngsi-ld:EntityMap:a")
    assert await store.get_entity_map("t2", "urn:ngsi-ld:EntityMap:a") is not None


async def test_put_replaces_a_map_of_the_same_id(store: Store) -> None:
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:a"))
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:a", ["urn:x:1"]))
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", 0, 10) == ["urn:x:1"]


async def test_delete(store: Store) -> None:
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:a"))
    assert await store.delete_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a")
    assert not await store.delete_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a")
    assert await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a") is None
    assert await store.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", 0, 10) is None


async def test_expired_map_is_gone_for_every_method(store: Store) -> None:
    record = EntityMapRecord("urn:ngsi-ld:EntityMap:old", now_micros() + 150_000, list(IDS))
    await store.put_entity_map(DEFAULT_TENANT, record)
    assert await store.get_entity_map(DEFAULT_TENANT, record.id) is not None
    await asyncio.sleep(0.2)
    assert await store.get_entity_map(DEFAULT_TENANT, record.id) is None
    assert await store.entity_map_ids(DEFAULT_TENANT, record.id, 0, 10) is None
    assert not await store.set_entity_map_expiry(DEFAULT_TENANT, record.id, now_micros() + HOUR)
    assert not await store.delete_entity_map(DEFAULT_TENANT, record.id)
    await store.purge_entity_maps()
    assert await store.get_entity_map(DEFAULT_TENANT, record.id) is None


async def test_purge_removes_only_expired_maps(store: Store) -> None:
    await store.put_entity_map(DEFAULT_TENANT, EntityMapRecord("urn:ngsi-ld:EntityMap:old", now_micros() - 1, IDS))
    await store.put_entity_map("t1", EntityMapRecord("urn:ngsi-ld:EntityMap:old2", now_micros() - 1, IDS))
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:new"))
    removed = await store.purge_entity_maps()
    assert removed in (0, 2)  # a backend whose keys expire on their own has nothing left to remove
    assert await store.purge_entity_maps() == 0
    assert await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:new") is not None


async def test_set_expiry(store: Store) -> None:
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:a"))
    later = now_micros() + 2 * HOUR
    assert await store.set_entity_map_expiry(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", later)
    found = await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a")
    assert found is not None and found.expires_at == later and found.ids == IDS
    assert not await store.set_entity_map_expiry(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:none", later)
    # An expiry in the past ends the map at once.
    assert await store.set_entity_map_expiry(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a", now_micros() - 1)
    assert await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:a") is None


async def test_another_process_sees_the_maps(store: Store, reopen: Reopen) -> None:
    other = await reopen()
    await store.put_entity_map(DEFAULT_TENANT, live("urn:ngsi-ld:EntityMap:shared"))
    assert await other.entity_map_ids(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:shared", 0, 2) == IDS[:2]
    assert await other.delete_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:shared")
    assert await store.get_entity_map(DEFAULT_TENANT, "urn:ngsi-ld:EntityMap:shared") is None
