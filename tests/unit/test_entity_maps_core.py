"""Entity maps in the core (decision records 0014, 0015, 0019): paging by map position with the filters checked
again, a new map for an unknown one, lifetimes, and what an update fragment may say. Over the memory store."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.caller import Caller
from broker.core.entity_maps import MAX_LIFETIME_S, EntityMaps, MapRequest, document
from broker.core.errors import BadRequestData, ResourceNotFound
from broker.core.query import Paging, Queries
from broker.ld.termmap import TermMap
from broker.query import Query
from broker.query.q import parse_q
from broker.query.types import TypeName
from broker.store.base import WritePlan, now_micros
from broker.store.memory import MemoryStore

T = "https://example.org/Car"
SPEED = "https://example.org/speed"
CALLER = Caller(tenant="")
pytestmark = pytest.mark.asyncio


def car(n: int, speed: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Car:{n}",
        "type": [T],
        "attrs": {SPEED: [{"type": "Property", "value": speed}]},
    }


async def put(store: MemoryStore, *entities: dict[str, Any]) -> None:
    ids = [e["id"] for e in entities]
    await store.write("", ids, lambda _: WritePlan({e["id"]: e for e in entities}), create_tenant=True)


async def remove(store: MemoryStore, entity_id: str) -> None:
    await store.write("", [entity_id], lambda _: WritePlan({entity_id: None}))


@pytest.fixture
def maps() -> EntityMaps:
    store = MemoryStore()
    return EntityMaps(store, Queries(store, max_limit=100, batch_size=3))


async def test_pages_follow_map_positions(maps: EntityMaps) -> None:
    store = maps.store
    assert isinstance(store, MemoryStore)
    await put(store, *(car(n, n) for n in range(8)))
    query = [Query(types=TypeName(T))]
    page, map_id, created = await maps.query(CALLER, query, Paging(3, 0), None, MapRequest(wanted=True))
    assert created and [e["id"][-1] for e in page.entities] == ["0", "1", "2"] and page.next_offset == 3
    await remove(store, "urn:ngsi-ld:Car:4")
    await put(store, car(9, 9))
    page, same, created = await maps.query(CALLER, query, Paging(3, 3), None, MapRequest(map_id=map_id))
    assert same == map_id and not created
    assert [e["id"][-1] for e in page.entities] == ["3", "5", "6"] and page.next_offset == 7 and page.more
    page, _, _ = await maps.query(CALLER, query, Paging(3, 7), None, MapRequest(map_id=map_id), count=True)
    assert [e["id"][-1] for e in page.entities] == ["7"] and not page.more and page.count == 7


async def test_filters_are_checked_again(maps: EntityMaps) -> None:
    store = maps.store
    assert isinstance(store, MemoryStore)
    await put(store, *(car(n, n) for n in range(4)))
    tm = TermMap.build({"speed": SPEED}, {})
    query = [Query(types=TypeName(T), q=parse_q("speed>=1", tm))]
    page, map_id, _ = await maps.query(CALLER, query, Paging(10, 0), None, MapRequest(wanted=True))
    assert len(page.entities) == 3
    await put(store, car(2, 0))
    page, _, _ = await maps.query(CALLER, query, Paging(10, 0), None, MapRequest(map_id=map_id))
    assert [e["id"][-1] for e in page.entities] == ["1", "3"]


async def test_unknown_map_is_replaced(maps: EntityMaps) -> None:
    page, map_id, created = await maps.query(
        CALLER, [Query(types=TypeName(T))], Paging(), None, MapRequest(map_id="urn:ngsi-ld:EntityMap:gone")
    )
    assert created and map_id != "urn:ngsi-ld:EntityMap:gone" and page.entities == []


async def test_lifetime(maps: EntityMaps) -> None:
    short = await maps.create(CALLER, [Query(types=TypeName(T))], None, "PT10M")
    assert 590e6 < short.expires_at - now_micros() <= 600e6
    long = await maps.create(CALLER, [Query(types=TypeName(T))], None, "P1Y")
    assert long.expires_at - now_micros() <= MAX_LIFETIME_S * 1e6
    for bad in ("PT0S", "ten minutes"):
        with pytest.raises(BadRequestData):
            await maps.create(CALLER, [Query(types=TypeName(T))], None, bad)
    assert document(short)["entityMap"] == {} and document(short)["type"] == "EntityMap"


@pytest.mark.parametrize(
    "fragment",
    [
        {"expiresAt": "2099-01-01T00:00:00Z", "id": "urn:other"},
        {"expiresAt": "2099-01-01T00:00:00Z", "type": "Other"},
        {"expiresAt": "2099-01-01T00:00:00Z", "size": 3},
        {"entityMap": {}},
        {"expiresAt": "not a date"},
        "2099-01-01T00:00:00Z",
    ],
)
async def test_bad_fragments(maps: EntityMaps, fragment: Any) -> None:
    record = await maps.create(CALLER, [Query(types=TypeName(T))], None, None)
    with pytest.raises(BadRequestData):
        await maps.update(CALLER, record.id, fragment)


async def test_update_ignores_output_only_members_and_caps_expiry(maps: EntityMaps) -> None:
    record = await maps.create(CALLER, [Query(types=TypeName(T))], None, None)
    fragment = {"id": record.id, "type": "EntityMap", "expiresAt": "2099-01-01T00:00:00Z", "entityMap": {"x": []}}
    await maps.update(CALLER, record.id, fragment)
    updated = await maps.retrieve(CALLER, record.id)
    assert updated.ids == record.ids and updated.expires_at <= now_micros() + MAX_LIFETIME_S * 1_000_000
    await maps.update(CALLER, record.id, {"expiresAt": "2000-01-01T00:00:00Z"})
    with pytest.raises(ResourceNotFound):
        await maps.retrieve(CALLER, record.id)
    with pytest.raises(BadRequestData):
        await maps.delete(CALLER, "no uri")
