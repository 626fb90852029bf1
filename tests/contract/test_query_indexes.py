"""The query hints of EntityFilter (attr_ranges, bbox) only narrow, and the indexes behind them follow every write.

Each probe checks that Queries selects what the reference evaluator selects, and what the store lets through for
the query's hints: a superset of the matches on every backend, and on SQLite exactly the entities with a fitting
index row, so that a stale row (an extra candidate the evaluator would hide) shows as well as a missing one."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from broker.core.batch import Batch
from broker.core.caller import Caller
from broker.core.entities import Entities
from broker.core.query import Queries, prefilter
from broker.ld.termmap import core_termmap
from broker.query import matches, parse_query
from broker.store.base import EntityFilter, Store
from broker.store.sqlite import SqliteStore

TM, CALLER = core_termmap(), Caller()
E1, E2 = "urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2"


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def number(value: float, dataset: str | None = None) -> dict[str, Any]:
    return {"type": "Property", "value": value} | ({"datasetId": dataset} if dataset else {})


def within(lon: float, lat: float) -> dict[str, str]:
    ring = [[lon - 1, lat - 1], [lon + 1, lat - 1], [lon + 1, lat + 1], [lon - 1, lat + 1], [lon - 1, lat - 1]]
    return {"georel": "within", "geometry": "Polygon", "coordinates": json.dumps([ring])}


def near(lon: float, lat: float, metres: int) -> dict[str, str]:
    return {"georel": f"near;maxDistance=={metres}", "geometry": "Point", "coordinates": json.dumps([lon, lat])}


async def check(store: Store, params: dict[str, str], expected: list[str]) -> None:
    query = parse_query(params, TM)
    everything = await store.scan(CALLER.tenant, EntityFilter())
    assert [e["id"] for e in everything if matches(e, query)] == expected
    assert [e["id"] for e in await Queries(store).select(CALLER, [query])] == expected
    narrowed = await store.find_ids(CALLER.tenant, prefilter(query))
    if isinstance(store, SqliteStore):
        assert narrowed == expected
    else:
        assert set(expected) <= set(narrowed)


async def test_query_indexes_follow_updates_deletions_replace_and_batch_upsert(store: Store) -> None:
    entities, batch = Entities(store), Batch(store)
    await entities.create(
        CALLER, TM, {"id": E1, "type": "T", "a": [number(1), number(7, "urn:ds:1")], "location": point(10, 10)}
    )
    await entities.create(CALLER, TM, {"id": E2, "type": "T", "a": number(3), "location": point(20, 20)})
    await check(store, {"q": "a>=5"}, [E1])
    await check(store, {"q": "a<=2"}, [E1])
    await check(store, {"q": "a==3"}, [E2])
    await check(store, within(10, 10), [E1])
    await check(store, near(20, 20, 5000), [E2])

    await entities.update_attrs(CALLER, TM, E1, {"a": number(4)})  # the default instance: 1 becomes 4
    await check(store, {"q": "a<=2"}, [])
    await check(store, {"q": "a>=5"}, [E1])

    await entities.delete_attr(CALLER, TM, E1, "a", "urn:ds:1", False)
    await check(store, {"q": "a>=5"}, [])
    await check(store, {"q": "a==4"}, [E1])

    await entities.delete_attr(CALLER, TM, E1, "location", None, False)
    await check(store, within(10, 10), [])

    await entities.replace(CALLER, TM, E1, {"id": E1, "type": "T", "b": number(9), "location": point(30, 30)})
    await check(store, {"q": "a==4"}, [])
    await check(store, {"q": "b>=9"}, [E1])
    await check(store, within(30, 30), [E1])

    replaced = [
        {"id": E1, "type": "T", "a": number(8)},
        {"id": E2, "type": "T", "a": number(6), "location": point(10, 10)},
    ]
    await batch.upsert(CALLER, TM, replaced, update=False)
    await check(store, {"q": "a>=5"}, [E1, E2])
    await check(store, {"q": "b>=9"}, [])
    await check(store, {"q": "a==3"}, [])
    await check(store, within(10, 10), [E2])
    await check(store, within(30, 30), [])
    await check(store, near(20, 20, 5000), [])

    await batch.upsert(CALLER, TM, [{"id": E2, "type": "T", "a": number(0)}], update=True)
    await check(store, {"q": "a>=5"}, [E1])
    await check(store, {"q": "a<=2"}, [E2])
    await check(store, near(10, 10, 5000), [E2])

    await entities.delete(CALLER, E1)
    await check(store, {"q": "a>=5"}, [])
    await check(store, {"q": "a<=2"}, [E2])


async def test_numbers_beyond_double_precision_are_not_lost(store: Store) -> None:
    # 2**53 + 1 is stored as the double 2**53: the index must compare it non-strictly to keep the match.
    await Entities(store).create(CALLER, TM, {"id": E1, "type": "T", "a": number(2**53 + 1)})
    await check(store, {"q": "a>9007199254740992"}, [E1])
    await check(store, {"q": "a<9007199254740994"}, [E1])


async def test_hints_only_narrow_across_the_antimeridian_and_at_the_poles(store: Store) -> None:
    entities = Entities(store)
    await entities.create(CALLER, TM, {"id": E1, "type": "T", "location": point(-179.99, 10)})
    await entities.create(CALLER, TM, {"id": E2, "type": "T", "location": point(100, 89.99)})
    await check(store, near(179.99, 10, 5000), [E1])
    await check(store, near(-80, 89.99, 5000), [E2])


async def test_an_existing_file_gets_its_query_indexes_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    await store.open()
    await Entities(store).create(CALLER, TM, {"id": E1, "type": "T", "a": number(7), "location": point(10, 10)})
    await store.close()
    with sqlite3.connect(path) as conn:  # a file written before the indexes existed
        conn.executescript("DROP TABLE attr_numbers; DROP TABLE geo_boxes; DROP TABLE geo_box_owners;")
    for _ in range(2):
        store = SqliteStore(path)
        await store.open()
        await check(store, {"q": "a>=5"}, [E1])
        await check(store, within(10, 10), [E1])
        await store.close()
