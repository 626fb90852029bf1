"""Paging with an entity map (clause 5.5.9.3, decision record 0015) while entities are created, changed and deleted
between pages: following the next pages from the first one returns every entity that stayed untouched and matching
exactly once, in the map's order, never an entity created after the map, and only entities that match when their
page is read. With limit = 0 no page is read past the first."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.core.caller import Caller
from broker.core.entities import Entities, MergeOptions
from broker.core.entity_maps import EntityMaps, MapRequest
from broker.core.query import Paging, Queries
from broker.ld.termmap import core_termmap
from broker.query import parse_query
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore

N = 30
# Between two pages: delete an entity, set its n (it may stop or start matching), or create a new one.
Change = tuple[str, int, int]
changes = st.lists(st.tuples(st.sampled_from(["delete", "set", "create"]), st.integers(0, N - 1), st.integers(0, 6)))


async def _walk(store_kind: str, limit: int, q: str, batch: int, between: list[list[Change]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "a.db") if store_kind == "sqlite" else MemoryStore()
        await store.open()
        tm, caller = core_termmap(), Caller()
        entities = Entities(store)
        for i in range(N):
            await entities.create(caller, tm, {"id": f"urn:ngsi-ld:T:{i:03d}", "type": "T", "n": i % 7})
        maps = EntityMaps(store, Queries(store, batch_size=batch))
        query = [parse_query({"type": "T", "q": q}, tm)]
        initial = [e["id"] for e in await maps.queries.select(caller, query)]
        page, map_id, created = await maps.query(caller, query, Paging(limit, 0), None, MapRequest(wanted=True))
        assert created
        seen = [e["id"] for e in page.entities]
        touched: set[str] = set()
        rounds, created_ids = iter(between), itertools.count()
        while page.more and limit:
            for kind, n, value in next(rounds, []):
                eid = f"urn:ngsi-ld:T:{n:03d}"
                touched.add(eid)
                if kind == "create":
                    new = {"id": f"urn:ngsi-ld:T:new{next(created_ids)}", "type": "T", "n": 0}
                    await entities.create(caller, tm, new)
                elif not await store.get("", [eid]):
                    continue
                elif kind == "delete":
                    await entities.delete(caller, eid)
                else:
                    await entities.merge(caller, tm, eid, {"n": value}, MergeOptions())
            assert page.next_offset is not None
            page, same, created = await maps.query(
                caller, query, Paging(limit, page.next_offset), None, MapRequest(map_id=map_id)
            )
            assert same == map_id and not created
            now = {e["id"] for e in await maps.queries.select(caller, query)}
            assert all(e["id"] in now for e in page.entities)  # checked against the query when read
            seen += [e["id"] for e in page.entities]
        await store.close()
    assert len(seen) == len(set(seen))
    assert set(seen) <= set(initial)  # nothing created after the map
    assert seen == [eid for eid in initial if eid in set(seen)]  # the map's order
    if limit:
        assert {eid for eid in initial if eid not in touched} <= set(seen)
    else:
        assert seen == []


@settings(max_examples=30, deadline=None)
@given(
    store_kind=st.sampled_from(["sqlite", "memory"]),
    limit=st.integers(0, 7),
    q=st.sampled_from(["n>=0", "n==3", "n<4"]),
    batch=st.integers(1, 40),
    between=st.lists(changes, max_size=12),
)
def test_pages_of_a_map_cover_the_untouched_entities_once(
    store_kind: str, limit: int, q: str, batch: int, between: list[list[Change]]
) -> None:
    asyncio.run(_walk(store_kind, limit, q, batch, between))
