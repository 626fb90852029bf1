"""Snapshot records in the Store contract (clauses 5.16, 6.36-6.38), run against every backend in
conftest.BACKENDS: an id is created once per tenant, a replacement needs an existing record, a record belongs to
one tenant, and another store object on the same URL (another broker process) sees the same records. The
snapshot's captured entities live in its content tenant: the entity contract covers them."""

from __future__ import annotations

import asyncio

from broker.store.base import DEFAULT_TENANT, SnapshotRecord, Store
from tests.contract.contract_helpers import Reopen

SNAP = "urn:ngsi-ld:Snapshot:a"


def record(snapshot_id: str = SNAP, tenant: str = DEFAULT_TENANT, priority: int = 5) -> SnapshotRecord:
    body = {"id": snapshot_id, "type": "Snapshot", "snapshotPriority": priority, "snapshotQueries": [{"q": "a>1"}]}
    return SnapshotRecord(tenant, snapshot_id, f"{tenant}\x1fsnapshot\x1f{snapshot_id}", 1_900_000_000_000_000, body)


async def test_create_then_get(store: Store) -> None:
    assert await store.create_snapshot(record())
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) == record()


async def test_create_twice_keeps_the_first(store: Store) -> None:
    assert await store.create_snapshot(record(priority=2))
    assert not await store.create_snapshot(record(priority=9))
    found = await store.get_snapshot(DEFAULT_TENANT, SNAP)
    assert found is not None and found.body["snapshotPriority"] == 2


async def test_no_expiry_is_kept_as_none(store: Store) -> None:
    forever = record()
    forever.expires_at = None
    assert await store.create_snapshot(forever)
    found = await store.get_snapshot(DEFAULT_TENANT, SNAP)
    assert found is not None and found.expires_at is None


async def test_replace_needs_an_existing_record(store: Store) -> None:
    assert not await store.replace_snapshot(record())
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) is None
    await store.create_snapshot(record())
    changed = record(priority=8)
    changed.expires_at = 1_950_000_000_000_000
    assert await store.replace_snapshot(changed)
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) == changed


async def test_records_belong_to_their_tenant(store: Store) -> None:
    await store.create_snapshot(record(tenant="city"))
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) is None
    assert await store.create_snapshot(record())  # the same id in another tenant is another snapshot
    assert [r.tenant for r in await store.list_snapshots()] == [DEFAULT_TENANT, "city"]
    assert [r.id for r in await store.list_snapshots("city")] == [SNAP]
    assert await store.delete_snapshot("city", SNAP)
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) == record()


async def test_list_is_in_id_order(store: Store) -> None:
    for name in ("c", "a", "b"):
        await store.create_snapshot(record(f"urn:ngsi-ld:Snapshot:{name}"))
    assert [r.id for r in await store.list_snapshots(DEFAULT_TENANT)] == [
        "urn:ngsi-ld:Snapshot:a",
        "urn:ngsi-ld:Snapshot:b",
        "urn:ngsi-ld:Snapshot:c",
    ]


async def test_delete(store: Store) -> None:
    assert not await store.delete_snapshot(DEFAULT_TENANT, SNAP)
    await store.create_snapshot(record())
    assert await store.delete_snapshot(DEFAULT_TENANT, SNAP)
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) is None
    assert not await store.replace_snapshot(record())
    assert await store.list_snapshots() == []


async def test_concurrent_creates_of_one_id_succeed_once(store: Store) -> None:
    outcomes = await asyncio.gather(*(store.create_snapshot(record(priority=p)) for p in range(1, 9)))
    assert sorted(outcomes) == [False] * 7 + [True]


async def test_another_store_object_sees_the_records(store: Store, reopen: Reopen) -> None:
    await store.create_snapshot(record())
    other = await reopen()
    assert await other.get_snapshot(DEFAULT_TENANT, SNAP) == record()
    assert await other.delete_snapshot(DEFAULT_TENANT, SNAP)
    assert await store.get_snapshot(DEFAULT_TENANT, SNAP) is None
