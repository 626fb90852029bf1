"""Query Entities end to end (clauses 6.4.3.2, 6.23, 4.9, 4.10, 4.17, 4.19)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import link

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


@pytest.fixture(scope="module")
def city(broker_server: Any) -> dict[str, Any]:
    """A tenant of its own with sensors, stations and a bus, created in one batch."""
    tenant = "q" + uuid.uuid4().hex[:8]
    sensors = [
        {
            "id": f"urn:ngsi-ld:Sensor:{i}",
            "type": "Sensor",
            "temperature": {"type": "Property", "value": 10 + i * 5, "observedAt": f"2026-11-2{i}T12:00:00Z"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.83 + i * 0.01, 45.76]}},
            "address": {"type": "Property", "value": {"city": "Lyon" if i < 3 else "Paris"}},
            "station": {"type": "Relationship", "object": f"urn:ngsi-ld:Station:{i % 2}"},
            "scope": f"/France/{'Lyon' if i < 3 else 'Paris'}/Sensors",
        }
        for i in range(5)
    ]
    stations = [
        {"id": f"urn:ngsi-ld:Station:{i}", "type": "Station", "humidity": {"type": "Property", "value": 40 + i * 20}}
        for i in range(2)
    ]
    with httpx.Client(base_url=broker_server.url, headers={"NGSILD-Tenant": tenant}) as http:
        r = http.post(f"{BASE}/entityOperations/create", json=sensors + stations)
        assert r.status_code == 201, r.text
    return {"tenant": tenant}


@pytest.fixture
def q(http: httpx.Client, city: dict[str, Any]) -> Any:
    def run(**params: Any) -> httpx.Response:
        return http.get(f"{BASE}/entities", params=params, headers={"NGSILD-Tenant": city["tenant"]})

    return run


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"].rsplit(":", 1)[1] for e in response.json()]


def test_type_and_q(q: Any) -> None:
    assert ids(q(type="Sensor")) == ["0", "1", "2", "3", "4"]
    assert ids(q(type="Sensor", q="temperature>15;temperature<=25")) == ["2", "3"]
    assert ids(q(type="Sensor", q="temperature==10|temperature==30")) == ["0", "4"]
    assert ids(q(type="Sensor", q="temperature==20..30")) == ["2", "3", "4"]
    assert ids(q(type="Sensor", q='address[city]=="Paris"')) == ["3", "4"]
    assert ids(q(type="Sensor", q="temperature.observedAt>=2026-11-23T00:00:00Z")) == ["3", "4"]
    assert ids(q(type="Station,Sensor", q="humidity")) == ["0", "1"]
    assert ids(q(q="station==urn:ngsi-ld:Station:1")) == ["1", "3"]


def test_linked_entity_q(q: Any) -> None:
    assert ids(q(type="Sensor", q="station{humidity}==60")) == ["1", "3"]


def test_geo_near_and_within(q: Any) -> None:
    near = q(type="Sensor", georel="near;maxDistance==1000", geometry="Point", coordinates="[4.83,45.76]")
    assert ids(near) == ["0", "1"]
    far = q(type="Sensor", georel="near;minDistance==2000", geometry="Point", coordinates="[4.83,45.76]")
    assert ids(far) == ["3", "4"]
    within = q(
        type="Sensor",
        georel="within",
        geometry="Polygon",
        coordinates="[[[4.825,45.7],[4.855,45.7],[4.855,45.8],[4.825,45.8],[4.825,45.7]]]",
    )
    assert ids(within) == ["0", "1", "2"]


def test_scope_query(q: Any) -> None:
    assert ids(q(type="Sensor", scopeQ="/France/Paris/#")) == ["3", "4"]
    assert ids(q(type="Sensor", scopeQ="/France/+/Sensors")) == ["0", "1", "2", "3", "4"]


def test_paging_count_and_links(q: Any) -> None:
    r = q(type="Sensor", limit=2, offset=2, count="true")
    assert ids(r) == ["2", "3"]
    assert r.headers["NGSILD-Results-Count"] == "5"
    links = r.headers.get_list("link")
    assert any('rel="next"' in link_ and "offset=4" in link_ for link_ in links)
    assert any('rel="prev"' in link_ and "offset=0" in link_ for link_ in links)
    assert ids(q(type="Sensor", limit=0, count="true")) == []
    r = q(type="Sensor", limit=100000)
    assert r.status_code == 403 and r.json()["type"] == ERR + "TooManyResults"


def test_order_by(q: Any) -> None:
    assert ids(q(type="Sensor", orderBy="temperature;desc", limit=3, local="true")) == ["4", "3", "2"]
    # 5.7.2.4 refuses orderBy only for an execution not limited to the local scope (record 0101)
    assert ids(q(type="Sensor", orderBy="temperature;desc", limit=3)) == ["4", "3", "2"]


def test_projection(q: Any) -> None:
    body = q(type="Sensor", pick="id,temperature", limit=1).json()
    assert body == [
        {
            "id": "urn:ngsi-ld:Sensor:0",
            "temperature": {"type": "Property", "value": 10, "observedAt": "2026-11-20T12:00:00Z"},
        }
    ]
    body = q(type="Sensor", omit="location,address,station,temperature", limit=1).json()
    assert body == [{"id": "urn:ngsi-ld:Sensor:0", "type": "Sensor", "scope": "/France/Lyon/Sensors"}]
    kv = q(type="Sensor", attrs="temperature", options="keyValues", limit=1).json()
    assert kv == [{"id": "urn:ngsi-ld:Sensor:0", "type": "Sensor", "scope": "/France/Lyon/Sensors", "temperature": 10}]


def test_query_needs_a_selector_and_valid_syntax(q: Any) -> None:
    r = q()
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    assert q(local="true").status_code == 200
    # clause 5.7.2.3: ids or an id pattern restrict a query that is executed locally, as every query is in Agora
    # (record 0100); pick/omit as in clause 4.21 (record 0102)
    assert ids(q(id="urn:ngsi-ld:Sensor:1,urn:ngsi-ld:Station:0")) == ["1", "0"]
    assert ids(q(idPattern="^urn:ngsi-ld:Station:")) == ["0", "1"]
    for bad in ({"pick": "id,temperature", "omit": "temperature"}, {"attrs": "temperature", "omit": "location"}):
        r = q(type="Sensor", **bad)
        assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData", bad
    for name in ("tem<perature", "a=b", "a;b", "a(b)"):
        for param in ("pick", "omit"):
            r = q(type="Sensor", **{param: name})
            assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData", (param, name)
    assert (
        q(type="Sensor", pick="id|temperature", limit=1).json()
        == q(type="Sensor", pick="id,temperature", limit=1).json()
    )
    r = q(type="Sensor", q="temperature>>3")
    assert r.status_code == 400 and "temperature>>3" in r.json()["detail"]
    assert q(type="Sensor", georel="near", geometry="Point", coordinates="[1,2]").status_code == 400
    assert q(type="(A;").status_code == 400


def test_post_query(http: httpx.Client, city: dict[str, Any]) -> None:
    headers = {"NGSILD-Tenant": city["tenant"]}
    body = {
        "type": "Query",
        "entities": [{"type": "Sensor"}],
        "q": "temperature>=20",
        "geoQ": {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [4.83, 45.76]},
    }
    r = http.post(f"{BASE}/entityOperations/query", json=body, headers=headers, params={"count": "true"})
    assert ids(r) == ["2"] and r.headers["NGSILD-Results-Count"] == "1"
    body = {
        "type": "Query",
        "entities": [{"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"}, {"type": "Station"}],
        "attrs": ["humidity", "temperature"],
    }
    r = http.post(f"{BASE}/entityOperations/query", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Station:0", "urn:ngsi-ld:Station:1"]
    r = http.post(f"{BASE}/entityOperations/query", json={"type": "Nope"}, headers=headers)
    assert r.status_code == 400


def test_query_through_a_user_context(http: httpx.Client, context_server: str) -> None:
    eid = f"urn:ngsi-ld:Vehicle:{uuid.uuid4().hex[:8]}"
    ctx = link(context_server + "/a.jsonld")
    http.post(f"{BASE}/entities", json={"id": eid, "type": "Vehicle", "speed": 42}, headers=ctx)
    r = http.get(f"{BASE}/entities", params={"type": "Vehicle", "q": "speed==42"}, headers=ctx)
    assert eid in [e["id"] for e in r.json()]
    r = http.get(f"{BASE}/entities", params={"type": "Vehicle", "q": "speed==42"})
    assert eid not in [e["id"] for e in r.json()]


def test_geojson_output(q: Any, http: httpx.Client, city: dict[str, Any]) -> None:
    headers = {"NGSILD-Tenant": city["tenant"], "Accept": "application/geo+json"}
    r = http.get(f"{BASE}/entities", params={"type": "Sensor", "limit": 2}, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and "@context" in body
    first = body["features"][0]
    assert first["type"] == "Feature" and first["id"] == "urn:ngsi-ld:Sensor:0"
    assert first["geometry"] == {"type": "Point", "coordinates": [4.83, 45.76]}
    assert first["properties"]["type"] == "Sensor" and "temperature" in first["properties"]
    one = http.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:1", headers={**headers, "Prefer": "body=json"})
    assert one.json()["type"] == "Feature" and "@context" not in one.json() and "link" in one.headers
    none = http.get(f"{BASE}/entities/urn:ngsi-ld:Station:1", params={"geometryProperty": "nowhere"}, headers=headers)
    assert none.json()["geometry"] is None
