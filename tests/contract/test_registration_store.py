"""Context source registrations in the Store contract (clauses 5.9, 6.8, 6.9), run against every backend in
conftest.BACKENDS: an id is created once per tenant, a replacement needs an existing registration, a
registration belongs to one tenant, every change moves the version, and another store object on the same URL
(another broker process) sees the same registrations and the same version."""

from __future__ import annotations

import asyncio

from broker.store.base import DEFAULT_TENANT, RegistrationRecord, Store
from tests.contract.contract_helpers import Reopen

REG = "urn:ngsi-ld:ContextSourceRegistration:a"
VEHICLE = "https://uri.etsi.org/ngsi-ld/default-context/Vehicle"


def body(endpoint: str = "http://a.example/ngsi-ld", reg_id: str = REG) -> dict[str, object]:
    return {
        "id": reg_id,
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": VEHICLE}]}],
        "endpoint": endpoint,
    }


async def test_create_then_get(store: Store) -> None:
    assert await store.create_registration(DEFAULT_TENANT, REG, body())
    assert await store.get_registration(DEFAULT_TENANT, REG) == RegistrationRecord(DEFAULT_TENANT, REG, body())


async def test_create_twice_keeps_the_first(store: Store) -> None:
    assert await store.create_registration(DEFAULT_TENANT, REG, body("http://first.example"))
    assert not await store.create_registration(DEFAULT_TENANT, REG, body("http://second.example"))
    found = await store.get_registration(DEFAULT_TENANT, REG)
    assert found is not None and found.body["endpoint"] == "http://first.example"


async def test_replace_needs_an_existing_registration(store: Store) -> None:
    assert not await store.replace_registration(DEFAULT_TENANT, REG, body())
    assert await store.get_registration(DEFAULT_TENANT, REG) is None
    await store.create_registration(DEFAULT_TENANT, REG, body())
    assert await store.replace_registration(DEFAULT_TENANT, REG, body("http://moved.example"))
    found = await store.get_registration(DEFAULT_TENANT, REG)
    assert found is not None and found.body["endpoint"] == "http://moved.example"


async def test_registrations_belong_to_their_tenant(store: Store) -> None:
    await store.create_registration("city", REG, body())
    assert await store.get_registration(DEFAULT_TENANT, REG) is None
    assert await store.create_registration(DEFAULT_TENANT, REG, body())
    assert [r.tenant for r in await store.list_registrations()] == [DEFAULT_TENANT, "city"]
    assert [r.id for r in await store.list_registrations("city")] == [REG]
    assert await store.delete_registration("city", REG)
    assert await store.list_registrations("city") == []
    assert await store.get_registration(DEFAULT_TENANT, REG) is not None


async def test_list_is_in_id_order(store: Store) -> None:
    for name in ("c", "a", "b"):
        reg_id = f"urn:ngsi-ld:ContextSourceRegistration:{name}"
        await store.create_registration(DEFAULT_TENANT, reg_id, body(reg_id=reg_id))
    assert [r.id.rsplit(":", 1)[1] for r in await store.list_registrations(DEFAULT_TENANT)] == ["a", "b", "c"]


async def test_delete(store: Store) -> None:
    assert not await store.delete_registration(DEFAULT_TENANT, REG)
    await store.create_registration(DEFAULT_TENANT, REG, body())
    assert await store.delete_registration(DEFAULT_TENANT, REG)
    assert await store.get_registration(DEFAULT_TENANT, REG) is None
    assert not await store.replace_registration(DEFAULT_TENANT, REG, body())
    assert await store.list_registrations() == []


async def test_every_change_moves_the_version_and_a_refused_one_does_not(store: Store) -> None:
    seen = [await store.registrations_version()]
    await store.create_registration(DEFAULT_TENANT, REG, body())
    seen.append(await store.registrations_version())
    await store.create_registration(DEFAULT_TENANT, REG, body())  # refused: the id exists
    seen.append(await store.registrations_version())
    await store.replace_registration(DEFAULT_TENANT, REG, body("http://b.example"))
    seen.append(await store.registrations_version())
    await store.delete_registration(DEFAULT_TENANT, REG)
    seen.append(await store.registrations_version())
    await store.delete_registration(DEFAULT_TENANT, REG)  # nothing to delete
    seen.append(await store.registrations_version())
    assert seen[1] != seen[0] and seen[2] == seen[1]
    assert seen[3] != seen[2] and seen[4] != seen[3] and seen[5] == seen[4]
    assert len(set(seen[:2] + seen[3:5])) == 4


async def test_concurrent_creates_of_one_id_succeed_once(store: Store) -> None:
    outcomes = await asyncio.gather(
        *(store.create_registration(DEFAULT_TENANT, REG, body(f"http://{n}.example")) for n in range(8))
    )
    assert sorted(outcomes) == [False] * 7 + [True]


async def test_another_store_object_sees_the_registrations(store: Store, reopen: Reopen) -> None:
    await store.create_registration(DEFAULT_TENANT, REG, body())
    other = await reopen()
    assert await other.get_registration(DEFAULT_TENANT, REG) == RegistrationRecord(DEFAULT_TENANT, REG, body())
    assert await other.registrations_version() == await store.registrations_version()
    assert await other.delete_registration(DEFAULT_TENANT, REG)
    assert await store.get_registration(DEFAULT_TENANT, REG) is None
