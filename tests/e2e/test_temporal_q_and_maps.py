"""Temporal queries with q (which instances they show) and temporal entity maps, end to end on SQLite, memory and
Redis behind a real `agora serve`: clauses 5.7.4.4 (S2/S3 and "only the Attribute instances ... which meet the
temporal, query and geoquery restrictions"), 5.14.5 and 6.35 (Create EntityMap for Query Temporal Evolution),
5.5.9.3 (paging with a map), 6.18.3.2 / 6.24 (entityMap, NGSILD-EntityMap, 201), 5.7.1.4 and Table 6.5.3.1-1
(entityMap on Retrieve Entity). Decision records 0071 to 0073."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import running_broker, store_url_for

BASE = "/ngsi-ld/v1"
T = "/temporal/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
BACKENDS = ["sqlite", "memory", "redis"]


@pytest.fixture(scope="module", params=BACKENDS)
def broker_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp(f"temporal-q-{request.param}")
    with ExitStack() as stack:
        url = store_url_for(request.param, tmp, stack)
        yield stack.enter_context(running_broker(url, tmp)).url + BASE


@pytest.fixture
def http(broker_url: str) -> Iterator[httpx.Client]:
    """A client in a tenant of its own, so that type queries see only this test's entities."""
    headers = {"NGSILD-Tenant": "t" + uuid.uuid4().hex[:10]}
    with httpx.Client(base_url=broker_url, timeout=30, headers=headers) as client:
        yield client


def hour(h: int) -> str:
    return f"2026-03-01T{h:02d}:00:00Z"


def prop(value: Any, h: int) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": hour(h)}


def point(lon: float, lat: float, h: int) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}, "observedAt": hour(h)}


def sensor(http: httpx.Client, eid: str, temperatures: Sequence[float], **attrs: Any) -> None:
    body = {"id": eid, "type": "Sensor", "temperature": [prop(v, h) for h, v in enumerate(temperatures)], **attrs}
    r = http.post(T, json=body)
    assert r.status_code == 201, r.text


def values(doc: dict[str, Any], attr: str) -> list[Any]:
    shown = doc.get(attr, [])
    return [i["value"] for i in (shown if isinstance(shown, list) else [shown])]


def query(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    r = http.get(T, params={"type": "Sensor", "timerel": "after", "timeAt": hour(0), **params})
    assert r.status_code == 200, r.text
    docs: list[dict[str, Any]] = r.json()
    return docs


def error_type(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix(ERR)


def map_path(response: httpx.Response) -> str:
    header = response.headers["NGSILD-EntityMap"]
    assert header.startswith(f"{BASE}/entityMaps/urn:ngsi-ld:EntityMap:")
    return header.removeprefix(BASE)


# -- q on temporal queries (5.7.4.4, record 0071) -------------------------------------------------------------------
def test_q_shows_only_the_instances_that_meet_it(http: httpx.Client) -> None:
    eid = "urn:ngsi-ld:Sensor:q1"
    sensor(http, eid, [20, 30, 40, 50], humidity=[prop(h + 1, h) for h in range(4)])
    (doc,) = query(http, q="temperature>35")
    assert values(doc, "temperature") == [40, 50]
    assert values(doc, "humidity") == [1, 2, 3, 4]  # not named by q: every instance in the interval
    (doc,) = query(http, q="temperature>35;humidity<4")
    assert values(doc, "temperature") == [40, 50] and values(doc, "humidity") == [1, 2, 3]
    (doc,) = query(http, q="temperature==20,50")
    assert values(doc, "temperature") == [20, 50]
    # an OR met by another attribute: every temperature instance meets the query (it holds with any of them)
    (doc,) = query(http, q="temperature>100|humidity==4")
    assert values(doc, "temperature") == [20, 30, 40, 50] and values(doc, "humidity") == [4]
    assert query(http, q="temperature>100") == []


def test_q_is_evaluated_on_the_whole_interval_before_lastn_and_projection(http: httpx.Client) -> None:
    eid = "urn:ngsi-ld:Sensor:q2"
    sensor(http, eid, [20, 30, 40, 50], humidity=[prop(h + 1, h) for h in range(4)])
    # the last instance (50) does not meet q: lastN counts the instances that do
    (doc,) = query(http, q="temperature<35", lastN="1")
    assert values(doc, "temperature") == [30]
    # q names an attribute the projection leaves out: the entity is still selected by it
    (doc,) = query(http, q="temperature>35", pick="id,humidity")
    assert "temperature" not in doc and values(doc, "humidity") == [1, 2, 3, 4]
    r = http.get(
        T,
        params={
            "type": "Sensor",
            "timerel": "after",
            "timeAt": hour(0),
            "q": "temperature>25",
            "format": "temporalValues",
            "attrs": "temperature",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()[0]["temperature"]["values"] == [[30, hour(1)], [40, hour(2)], [50, hour(3)]]


def test_q_restricts_aggregations(http: httpx.Client) -> None:
    sensor(http, "urn:ngsi-ld:Sensor:q3", [20, 30, 40, 50])
    (doc,) = query(http, q="temperature>=30", format="aggregatedValues", aggrMethods="min,max,totalCount")
    methods = doc["temperature"]
    assert methods["min"][0][0] == 30 and methods["max"][0][0] == 50 and methods["totalCount"][0][0] == 3


def test_geo_query_shows_only_the_geoproperty_instances_inside(http: httpx.Client) -> None:
    lyon, paris = (4.85, 45.75), (2.35, 48.85)
    sensor(http, "urn:ngsi-ld:Sensor:q4", [1, 2, 3], location=[point(*lyon, 0), point(*paris, 1), point(*lyon, 2)])
    geo = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": "[4.85,45.751]"}
    (doc,) = query(http, **geo)
    assert [i["observedAt"] for i in doc["location"]] == [hour(0), hour(2)]
    assert values(doc, "temperature") == [1, 2, 3]


def test_linked_entity_conditions_are_refused(http: httpx.Client) -> None:
    sensor(http, "urn:ngsi-ld:Sensor:q5", [1])
    r = http.get(T, params={"type": "Sensor", "timerel": "after", "timeAt": hour(0), "q": "owner{name}==1"})
    assert r.status_code == 400 and error_type(r) == "BadRequestData"


# -- temporal entity maps (5.14.5, 6.35, 5.5.9.3) -------------------------------------------------------------------
def test_create_temporal_entity_map_by_get_and_post(http: httpx.Client) -> None:
    for n, temps in enumerate(([10, 40], [10, 11], [50])):
        sensor(http, f"urn:ngsi-ld:Sensor:m{n}", temps)
    params = {"type": "Sensor", "timerel": "after", "timeAt": hour(0), "q": "temperature>35", "limit": "1"}
    r = http.get("/temporal/entityMaps", params=params)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["type"] == "EntityMap" and doc["id"] == map_path(r).removeprefix("/entityMaps/")
    assert doc["entityMap"] == {"urn:ngsi-ld:Sensor:m0": ["@none"], "urn:ngsi-ld:Sensor:m2": ["@none"]}
    assert http.get(map_path(r)).json()["entityMap"] == doc["entityMap"]
    body = {
        "type": "Query",
        "entities": [{"type": "Sensor"}],
        "q": "temperature<11",
        "temporalQ": {"timerel": "before", "timeAt": hour(5)},
    }
    r = http.post("/temporal/entityMaps", json=body, params={"entityMapLifetime": "PT1M"})
    assert r.status_code == 201, r.text
    assert sorted(r.json()["entityMap"]) == ["urn:ngsi-ld:Sensor:m0", "urn:ngsi-ld:Sensor:m1"]
    # a temporal query is required (5.14.5.4), and a selector
    assert error_type(http.get("/temporal/entityMaps", params={"type": "Sensor"})) == "BadRequestData"
    r = http.get("/temporal/entityMaps", params={"timerel": "after", "timeAt": hour(0)})
    assert r.status_code == 400


def test_paging_a_temporal_query_through_its_entity_map(http: httpx.Client) -> None:
    for n in range(5):
        sensor(http, f"urn:ngsi-ld:Sensor:p{n}", [n])
    window = {"type": "Sensor", "timerel": "after", "timeAt": hour(0), "limit": "2"}
    r = http.get(T, params={**window, "entityMap": "true", "count": "true"})
    assert r.status_code == 201, r.text
    assert [d["id"] for d in r.json()] == ["urn:ngsi-ld:Sensor:p0", "urn:ngsi-ld:Sensor:p1"]
    assert r.headers["NGSILD-Results-Count"] == "5"
    path = map_path(r)
    header = {"NGSILD-EntityMap": r.headers["NGSILD-EntityMap"]}
    # after the map: a new entity never appears, a deleted one is passed over, the page filled after it
    sensor(http, "urn:ngsi-ld:Sensor:p00", [9])
    assert http.delete(f"{T}/urn:ngsi-ld:Sensor:p2").status_code == 204
    r = http.get(T, params={**window, "offset": "2"}, headers=header)
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()] == ["urn:ngsi-ld:Sensor:p3", "urn:ngsi-ld:Sensor:p4"]
    assert r.headers["NGSILD-EntityMap"] == header["NGSILD-EntityMap"]
    assert len(http.get(path).json()["entityMap"]) == 5  # the map itself is unchanged
    # an unknown map is replaced by a new one made from this query (201)
    r = http.get(T, params=window, headers={"NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:gone"})
    assert r.status_code == 201 and map_path(r) != path
    assert [d["id"] for d in r.json()] == ["urn:ngsi-ld:Sensor:p0", "urn:ngsi-ld:Sensor:p00"]


def test_post_temporal_query_with_an_entity_map(http: httpx.Client) -> None:
    sensor(http, "urn:ngsi-ld:Sensor:pq", [1, 2])
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "temporalQ": {"timerel": "after", "timeAt": hour(1)}}
    r = http.post("/temporal/entityOperations/query", json=body, params={"entityMap": "true"})
    assert r.status_code == 201, r.text
    assert values(r.json()[0], "temperature") == [2]
    r = http.post("/temporal/entityOperations/query", json=body, headers={"NGSILD-EntityMap": map_path(r)})
    assert r.status_code == 200 and [d["id"] for d in r.json()] == ["urn:ngsi-ld:Sensor:pq"]


# -- entityMap on Retrieve Entity (5.7.1.4, Table 6.5.3.1-1, record 0073) -------------------------------------------
def test_retrieve_entity_names_the_entity_map_it_used(http: httpx.Client) -> None:
    eid = "urn:ngsi-ld:Sensor:r1"
    assert http.post("/entities", json={"id": eid, "type": "Sensor"}).status_code == 201
    r = http.get(f"/entities/{eid}")
    assert r.status_code == 200 and "NGSILD-EntityMap" not in r.headers
    r = http.get(f"/entities/{eid}", params={"entityMap": "true", "entityMapLifetime": "PT5M"})
    assert r.status_code == 200 and r.json()["id"] == eid
    path = map_path(r)
    assert http.get(path).json()["entityMap"] == {eid: ["@none"]}
    r = http.get(f"/entities/{eid}", headers={"NGSILD-EntityMap": r.headers["NGSILD-EntityMap"]})
    assert r.status_code == 200 and map_path(r) == path
    r = http.get(f"/entities/{eid}", headers={"NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:gone"})
    assert r.status_code == 200 and map_path(r) != path
    r = http.get(f"/entities/{eid}", headers={"Accept": "application/geo+json"}, params={"entityMap": "true"})
    assert r.status_code == 200 and "NGSILD-EntityMap" in r.headers
    r = http.get("/entities/urn:ngsi-ld:Sensor:none", params={"entityMap": "true"})
    assert r.status_code == 404
    r = http.get(f"/entities/{eid}", headers={"NGSILD-EntityMap": "not a uri"})
    assert r.status_code == 400 and error_type(r) == "BadRequestData"


# -- projections naming attributes an entity never had (5.7.3.4, 5.7.4.4 S1) ----------------------------------------
def test_projection_of_attributes_an_entity_never_had(http: httpx.Client) -> None:
    eid = "urn:ngsi-ld:Sensor:never"
    sensor(http, eid, [1, 2])
    # a query keeps only the entities with an instance of a projected attribute in the interval (S1)
    assert query(http, attrs="nope") == [] and query(http, pick="id,nope") == []
    (doc,) = query(http, pick="nope,temperature")
    assert values(doc, "temperature") == [1, 2] and "nope" not in doc
    # Retrieve answers the entity it knows, without attributes (5.7.3.4 raises ResourceNotFound only for an
    # unknown entity)
    r = http.get(f"{T}/{eid}", params={"attrs": "nope"})
    assert r.status_code == 200 and r.json() == {"id": eid, "type": "Sensor"}
    r = http.get(f"{T}/{eid}", params={"attrs": "nope", "format": "aggregatedValues", "aggrMethods": "max"})
    assert r.status_code == 200 and r.json() == {"id": eid, "type": "Sensor"}


# -- orderBy, collation, csf, jsonKeys, splitEntities (Table 6.18.3.2-1, 5.7.4.4, record 0074) ----------------------
def test_order_by_id_and_the_other_query_parameters(http: httpx.Client) -> None:
    for name in ("b", "a", "C"):
        sensor(http, f"urn:ngsi-ld:Sensor:o{name}", [1])

    def ids(**params: str) -> list[str]:
        return [d["id"].rsplit(":", 1)[1] for d in query(http, **params)]

    assert ids() == ["oC", "oa", "ob"]  # without orderBy: the store's id order
    assert ids(orderBy="id", local="true") == ["oa", "ob", "oC"]  # root collation: case after letters
    assert ids(orderBy="id;desc", local="true", limit="2") == ["oC", "ob"]
    assert ids(orderBy="id;desc", local="true", offset="2") == ["oa"]
    assert ids(orderBy="id", local="true", collation="en-u-ks-level1") == ["oa", "ob", "oC"]
    r = http.get(T, params={"type": "Sensor", "timerel": "after", "timeAt": hour(0), "collation": "sv"})
    assert r.status_code == 422  # a tailored collation Agora cannot give (record 0016)
    window = {"type": "Sensor", "timerel": "after", "timeAt": hour(0)}
    # 5.7.4.4 refuses orderBy only for an execution not limited to the local scope: never, here (record 0101)
    assert ids(orderBy="id") == ["oa", "ob", "oC"]
    for bad in ({"orderBy": "temperature", "local": "true"}, {"orderBy": "id;up", "local": "true"}):
        r = http.get(T, params={**window, **bad})
        assert r.status_code == 400 and error_type(r) == "BadRequestData", bad
    assert error_type(http.get(T, params={**window, "collation": "x y"})) == "BadRequestData"
    assert ids(csf="endpoint==1", jsonKeys="temperature", splitEntities="false") == ["oC", "oa", "ob"]
    assert http.get(T, params={**window, "splitEntities": "maybe"}).status_code == 400
    # a map keeps the order of the query that made it
    r = http.get("/temporal/entityMaps", params={**window, "orderBy": "id;desc", "local": "true"})
    assert r.status_code == 201 and [i.rsplit(":", 1)[1] for i in r.json()["entityMap"]] == ["oC", "ob", "oa"]


# -- aggregation methods that do not apply to a named attribute (5.7.4.4, record 0075) ------------------------------
def test_aggregating_a_named_attribute_a_method_does_not_apply_to(http: httpx.Client) -> None:
    eid = "urn:ngsi-ld:Sensor:agg"
    sensor(http, eid, [1, 2], status=[prop("ok", 0), prop("alarm", 1)])
    aggregated = {"format": "aggregatedValues", "timerel": "after", "timeAt": hour(0)}
    for params in ({"attrs": "status"}, {"pick": "id,status,temperature"}):
        r = http.get(f"{T}/{eid}", params={**aggregated, **params, "aggrMethods": "max,avg"})
        assert r.status_code == 400 and error_type(r) == "InvalidRequest", r.text
        r = http.get(T, params={"type": "Sensor", **aggregated, **params, "aggrMethods": "avg"})
        assert r.status_code == 400 and error_type(r) == "InvalidRequest", r.text
    r = http.get(f"{T}/{eid}", params={**aggregated, "attrs": "status", "aggrMethods": "max,distinctCount"})
    assert r.status_code == 200 and r.json()["status"]["max"][0][0] == "ok"
    r = http.get(f"{T}/{eid}", params={**aggregated, "attrs": "temperature", "aggrMethods": "avg"})
    assert r.status_code == 200 and r.json()["temperature"]["avg"][0][0] == 1.5
    # not named: the method gives null for that attribute (record 0070)
    r = http.get(f"{T}/{eid}", params={**aggregated, "aggrMethods": "avg"})
    assert r.status_code == 200 and r.json()["status"]["avg"][0][0] is None
