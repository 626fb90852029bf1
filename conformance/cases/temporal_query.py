"""Query Temporal Evolution of Entities (clause 5.7.4; HTTP binding 6.18 and 6.24): the temporal query, lastN,
projection, representations, counting and paging of entities. The temporal API is an optional feature ("not
implemented" without it)."""

from __future__ import annotations

from typing import Any

import httpx

from conformance.cases._temporal import DAY, EVER, TIMES, create, instances, observed, sensor, values
from conformance.kit import Kit, case


def _two(k: Kit) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two temporal entities of one type: the first observed at TIMES, the second only at TIMES[2]."""
    first = create(k)
    second = {"id": k.uid("Sensor"), "type": first["type"], "temperature": [observed(5, TIMES[2])]}
    return first, create(k, second)


def _query(k: Kit, params: dict[str, str]) -> tuple[httpx.Response, dict[str, Any]]:
    response = k.http.get("/temporal/entities", params=params)
    k.not_implemented_if(response, "temporal")
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(isinstance(found, list), f"the answer is {found!r:.200}, expected a JSON array")
    return response, {str(e.get("id")): e for e in found if isinstance(e, dict)}


@case(
    "5.7.4",
    "A temporal query leaves out the entities that have no instance in the temporal interval.",
    feature="temporal",
    also=("6.18", "4.11"),
)
def entities_without_instances_in_interval_left_out(k: Kit) -> None:
    first, _ = _two(k)
    _, found = _query(k, {"type": first["type"], "timerel": "before", "timeAt": TIMES[1]})
    k.expect(list(found) == [first["id"]], f"before {TIMES[1]} the query gave {list(found)}, expected the first only")


@case(
    "5.7.4",
    "lastN in a temporal query gives, per entity and attribute, the N most recent instances of the interval.",
    feature="temporal",
    also=("6.18",),
)
def query_last_n(k: Kit) -> None:
    first, second = _two(k)
    _, found = _query(k, {"type": first["type"], "lastN": "1", **EVER})
    k.expect(set(found) == {first["id"], second["id"]}, f"the query gave {list(found)}")
    k.expect(values(k, found[first["id"]]) == [22], f"lastN=1 of the first is {values(k, found[first['id']])}")
    k.expect(values(k, found[second["id"]]) == [5], f"lastN=1 of the second is {values(k, found[second['id']])}")


@case(
    "5.7.4",
    "attrs in a temporal query keeps only the named attributes in the answered entities.",
    feature="temporal",
    also=("6.18",),
)
def query_projection(k: Kit) -> None:
    body = create(k, sensor(k, humidity=[observed(60, TIMES[0])]))
    _, found = _query(k, {"type": body["type"], "attrs": "humidity", **EVER})
    entity = found.get(body["id"], {})
    k.expect("temperature" not in entity, "attrs=humidity still gave temperature")
    k.expect([i.get("value") for i in instances(k, entity, "humidity")] == [60], f"the entity is {entity!r:.200}")


@case(
    "5.7.4",
    "count=true on a temporal query gives the number of matching entities in NGSILD-Results-Count.",
    feature="temporal",
    also=("6.18", "5.5.9"),
)
def query_count(k: Kit) -> None:
    first, _ = _two(k)
    response, _ = _query(k, {"type": first["type"], "count": "true", **EVER})
    k.expect(response.headers.get("NGSILD-Results-Count") == "2", "NGSILD-Results-Count is not 2")


@case(
    "5.7.4",
    "limit and offset page the entities of a temporal query: two pages of one entity hold both entities.",
    feature="temporal",
    also=("6.18", "5.5.9"),
)
def query_paging(k: Kit) -> None:
    first, second = _two(k)
    pages = [_query(k, {"type": first["type"], "limit": "1", "offset": str(n), **EVER})[1] for n in (0, 1)]
    k.expect([len(p) for p in pages] == [1, 1], f"the pages hold {[list(p) for p in pages]}")
    k.expect(set(pages[0]) | set(pages[1]) == {first["id"], second["id"]}, "the two pages do not hold both entities")


@case(
    "5.7.4",
    "format=temporalValues on a temporal query gives each entity's attributes as [value, time] pairs.",
    feature="temporal",
    also=("6.18", "4.5.9"),
)
def query_temporal_values(k: Kit) -> None:
    body = create(k)
    _, found = _query(k, {"type": body["type"], "format": "temporalValues", **EVER})
    member = found.get(body["id"], {}).get("temperature")
    k.expect(isinstance(member, dict), f"temperature is {member!r:.200}")
    k.expect(sorted(p[0] for p in member.get("values") or []) == [20, 21, 22], f"values are {member!r:.200}")


@case(
    "5.7.4",
    "format=aggregatedValues on a temporal query gives each entity's aggregates over the interval.",
    feature="temporal",
    also=("6.18", "4.5.19"),
)
def query_aggregated_values(k: Kit) -> None:
    first, second = _two(k)
    params = {"type": first["type"], "format": "aggregatedValues", "aggrMethods": "sum", **DAY}
    _, found = _query(k, params)
    sums = {eid: [row[0] for row in (e.get("temperature") or {}).get("sum") or []] for eid, e in found.items()}
    k.expect(sums == {first["id"]: [63], second["id"]: [5]}, f"the sums are {sums}")


@case(
    "5.7.4",
    "A POST temporal query with temporalQ between gives only the instances from timeAt up to endTimeAt.",
    feature="temporal",
    also=("6.24", "4.11"),
)
def post_query_between(k: Kit) -> None:
    body = create(k)
    query = {
        "type": "Query",
        "entities": [{"type": body["type"]}],
        "temporalQ": {"timerel": "between", "timeAt": TIMES[1], "endTimeAt": "2020-01-01T13:00:00Z"},
    }
    response = k.post("/temporal/entityOperations/query", query)
    k.not_implemented_if(response, "temporal")
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(isinstance(found, list) and len(found) == 1, f"the answer is {found!r:.200}")
    k.expect(values(k, found[0]) == [21, 22], f"the instances are {values(k, found[0])}, expected [21, 22]")


@case(
    "5.7.4",
    "timeproperty=modifiedAt in a temporal query selects instances by when the system last modified them.",
    feature="temporal",
    also=("6.18", "4.11", "4.8"),
)
def query_by_modified_at(k: Kit) -> None:
    body = create(k)  # observed in 2020, modified now
    since = {"timerel": "after", "timeAt": "2021-01-01T00:00:00Z"}
    _, by_modified = _query(k, {"type": body["type"], "timeproperty": "modifiedAt", **since})
    k.expect(body["id"] in by_modified, "the entity modified after 2021 is not in the answer")
    k.expect(sorted(values(k, by_modified[body["id"]])) == [20, 21, 22], "not every instance was modified after 2021")
    _, by_observed = _query(k, {"type": body["type"], **since})
    k.expect(not by_observed, f"observed after 2021 gave {list(by_observed)}, expected no entity")


@case(
    "5.2.21",
    "lastN in a Query body's temporalQ gives, per attribute, the last N instances of the interval.",
    feature="temporal",
    also=("6.24", "5.7.4"),
)
def post_query_temporal_q_last_n(k: Kit) -> None:
    body = create(k)
    temporal_q = {"timerel": "after", "timeAt": TIMES[0], "lastN": 2}
    query = {"type": "Query", "entities": [{"type": body["type"]}], "temporalQ": temporal_q}
    response = k.post("/temporal/entityOperations/query", query)
    k.not_implemented_if(response, "temporal")
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(isinstance(found, list) and len(found) == 1, f"the answer is {found!r:.200}")
    k.expect(values(k, found[0]) == [21, 22], f"temporalQ.lastN=2 gave {values(k, found[0])}, expected [21, 22]")
