"""SQLite keeps its query index rows (numbers, geometry boxes) up to date by re-indexing only the attributes a
write changed. After any sequence of creates, merges, attribute deletions and entity deletions, the rows must
be exactly those a full re-index of the stored entities gives."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.core.caller import Caller
from broker.core.entities import Entities, MergeOptions
from broker.core.errors import NgsiLdError
from broker.ld.termmap import core_termmap
from broker.store import _common as common
from broker.store.base import EntityFilter
from broker.store.sqlite import SqliteStore

IDS = [f"urn:ngsi-ld:Thing:{i}" for i in range(3)]
ATTRS = ["a", "b", "c", "where"]

points = st.builds(
    lambda lon, lat: {"type": "Point", "coordinates": [lon, lat]}, st.floats(-180, 180), st.floats(-90, 90)
)
numbers = st.one_of(st.integers(-5, 5), st.floats(-10, 10, allow_nan=False), st.just("text"))


@st.composite
def attribute(draw: st.DrawFn, name: str) -> Any:
    if name == "where":
        return {"type": "GeoProperty", "value": draw(points)}
    kind = draw(st.sampled_from(["number", "list", "datasets", "geo-as-number"]))
    if kind == "list":
        return {"type": "Property", "value": draw(st.lists(numbers, max_size=3))}
    if kind == "datasets":
        return [
            {"type": "Property", "value": draw(numbers)},
            {"type": "Property", "value": draw(numbers), "datasetId": "urn:ngsi-ld:Dataset:x"},
        ]
    if kind == "geo-as-number":  # an attribute that turns from a geometry into a number and back
        return {"type": "GeoProperty", "value": draw(points)}
    return {"type": "Property", "value": draw(numbers)}


@st.composite
def fragments(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3, unique=True))
    return {name: draw(attribute(name)) for name in names}


operations = st.lists(
    st.tuples(st.sampled_from(["create", "merge", "delete_attr", "delete"]), st.sampled_from(IDS), fragments()),
    min_size=1,
    max_size=12,
)


async def _apply(ops: list[tuple[str, str, dict[str, Any]]], db: Path) -> None:
    tm, caller = core_termmap(), Caller()
    store = SqliteStore(db)
    await store.open()
    entities = Entities(store)
    for op, eid, fragment in ops:
        try:
            if op == "create":
                await entities.create(caller, tm, {"id": eid, "type": "Thing", **fragment})
            elif op == "merge":
                await entities.merge(caller, tm, eid, fragment, MergeOptions())
            elif op == "delete_attr":
                await entities.delete_attr(caller, tm, eid, next(iter(fragment)), None, delete_all=True)
            else:
                await entities.delete(caller, eid)
        except NgsiLdError as err:  # refused (a second create, a missing entity): nothing changed
            assert err.status < 500
    stored = await store.scan(caller.tenant, EntityFilter())
    await store.close()
    expected_numbers = {(e["id"], a, v) for e in stored for a, v in common.numbers(e)}
    expected_boxes = {(e["id"], a, box) for e in stored for a, box in common.geo_boxes(e)}
    with sqlite3.connect(db) as conn:
        got_numbers = set(conn.execute("SELECT id, attr, value FROM attr_numbers"))
        owners = conn.execute("SELECT box, id, attr, min_lon, min_lat, max_lon, max_lat FROM geo_box_owners")
        got_boxes = {(eid, attr, (x0, y0, x1, y1)) for _, eid, attr, x0, y0, x1, y1 in owners}
        rtree_ids = {b for (b,) in conn.execute("SELECT box FROM geo_boxes")}
        owner_ids = {b for (b,) in conn.execute("SELECT box FROM geo_box_owners")}
    assert got_numbers == expected_numbers
    assert got_boxes == expected_boxes
    assert rtree_ids == owner_ids


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_incremental_index_equals_a_full_reindex(ops: list[tuple[str, str, dict[str, Any]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_apply(ops, Path(tmp) / "a.db"))
