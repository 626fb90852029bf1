"""Query and retrieve readings of issue 17 end to end (clauses 5.7.1, 5.7.2, 5.7.4, 6.3.2, 4.10, 4.15, 4.21):
decision records 0100 to 0106."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


@pytest.fixture
def h(http: httpx.Client) -> dict[str, str]:
    """A tenant of its own, with two sensors."""
    tenant = "r" + uuid.uuid4().hex[:8]
    headers = {"NGSILD-Tenant": tenant}
    sensors = [
        {
            "id": f"urn:ngsi-ld:Sensor:{i}",
            "type": "Sensor",
            "temperature": {"type": "Property", "value": 10 + i, "observedAt": "2026-11-20T12:00:00Z"},
        }
        for i in range(2)
    ]
    r = http.post(f"{BASE}/entityOperations/create", json=sensors, headers=headers)
    assert r.status_code == 201, r.text
    return headers


def problem(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return str(response.json()["type"]).removeprefix(ERR)


def test_temporal_queries_take_ids_alone(http: httpx.Client, h: dict[str, str]) -> None:
    """Record 0100: the shared selection rule, on GET /temporal/entities and its POST form (5.7.4 as 5.7.2)."""
    window = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
    r = http.get(f"{BASE}/temporal/entities", params={"id": "urn:ngsi-ld:Sensor:1", **window}, headers=h)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:1"], r.text
    r = http.get(f"{BASE}/temporal/entities", params={"idPattern": ".*:Sensor:0$", **window}, headers=h)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:0"], r.text
    body: dict[str, Any] = {"type": "Query", "entities": [{"id": "urn:ngsi-ld:Sensor:0"}]}
    r = http.post(f"{BASE}/entityOperations/query", json=body, headers=h)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:0"], r.text
    body["temporalQ"] = window
    r = http.post(f"{BASE}/temporal/entityOperations/query", json=body, headers=h)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:0"], r.text
    assert problem(http.get(f"{BASE}/entities", headers=h)) == "BadRequestData"  # nothing at all: too wide


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/entities", {"type": "Sensor", "frobnicate": "1"}),
        ("GET", "/entities", {"type": "Sensor", "options": "noOverwrite"}),
        ("GET", "/entities/urn:ngsi-ld:Sensor:0", {"limit": "1"}),
        ("GET", "/entities/urn:ngsi-ld:Sensor:0", {"options": "count"}),
        (
            "GET",
            "/temporal/entities",
            {"type": "Sensor", "timerel": "after", "timeAt": "2000-01-01T00:00:00Z", "x": "1"},
        ),
        ("GET", "/subscriptions", {"frobnicate": "1"}),
        ("GET", "/types", {"frobnicate": "1"}),
        ("GET", "/attributes", {"": "1"}),
        ("POST", "/entityOperations/query", {"frobnicate": "1"}),
        ("DELETE", "/entities/urn:ngsi-ld:Sensor:0", {"frobnicate": "1"}),
    ],
)
def test_a_parameter_the_operation_does_not_take_is_invalid_request(
    http: httpx.Client, h: dict[str, str], method: str, path: str, params: dict[str, str]
) -> None:
    """Record 0103 (clause 6.3.2): parameters incompatible with the operation, unsupported options values."""
    body = {"type": "Query", "entities": [{"type": "Sensor"}]} if method == "POST" else None
    r = http.request(method, BASE + path, params=params, json=body, headers=h)
    assert problem(r) == "InvalidRequest"
    assert http.get(f"{BASE}/entities/urn:ngsi-ld:Sensor:0", headers=h).status_code == 200  # nothing deleted


def test_a_malformed_value_of_a_known_parameter_stays_bad_request_data(http: httpx.Client, h: dict[str, str]) -> None:
    for params in ({"type": "Sensor", "q": "temperature>>1"}, {"type": "Sensor", "limit": "-1"}, {"local": "maybe"}):
        assert problem(http.get(f"{BASE}/entities", params=params, headers=h)) == "BadRequestData", params


def test_a_retrieve_whose_projection_finds_no_attribute_is_not_found(http: httpx.Client, h: dict[str, str]) -> None:
    """Record 0105 (clause 5.7.1.4): attrs, pick naming attributes the entity lacks, omit leaving none."""
    url = f"{BASE}/entities/urn:ngsi-ld:Sensor:0"
    for params in ({"attrs": "neverSeen"}, {"pick": "neverSeen"}, {"pick": "id,neverSeen"}, {"omit": "temperature"}):
        r = http.get(url, params=params, headers=h)
        assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound", (params, r.text)
    assert http.get(url, params={"pick": "id,type"}, headers=h).json() == {
        "id": url.rsplit("/", 1)[1],
        "type": "Sensor",
    }
    assert set(http.get(url, params={"pick": "temperature,neverSeen"}, headers=h).json()) == {"id", "temperature"}
    assert http.get(url, params={"omit": "neverSeen"}, headers=h).status_code == 200
    r = http.get(f"{BASE}/attributes/neverSeen", headers=h)
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"


def test_lang_star_shows_one_language_with_its_tag(http: httpx.Client, h: dict[str, str]) -> None:
    """Record 0106 (clause 4.15): lang=* is "a string in any supported language", with the lang member."""
    names = {"type": "LanguageProperty", "languageMap": {"fr": "capteur", "@none": "sensor"}}
    r = http.post(f"{BASE}/entities/urn:ngsi-ld:Sensor:0/attrs", json={"name": names}, headers=h)
    assert r.status_code == 204, r.text
    url = f"{BASE}/entities/urn:ngsi-ld:Sensor:0"
    got = http.get(url, params={"lang": "*", "pick": "name"}, headers=h).json()
    assert got["name"] == {"type": "Property", "value": "sensor", "lang": "@none"}  # the default when present
    got = http.get(url, params={"lang": "de,*;q=0.5", "pick": "name"}, headers=h).json()
    assert got["name"] == {"type": "Property", "value": "sensor", "lang": "@none"}
    got = http.get(url, params={"lang": "en,fr;q=0.8", "pick": "name"}, headers=h).json()
    assert got["name"] == {"type": "Property", "value": "capteur", "lang": "fr"}
    assert http.get(url, params={"lang": "fr;q=x"}, headers=h).status_code == 400
    kv = http.get(url, params={"lang": "*", "pick": "name", "format": "simplified"}, headers=h).json()
    assert kv == {"id": "urn:ngsi-ld:Sensor:0", "name": "sensor"}


def test_geometry_property_needs_a_geojson_answer(http: httpx.Client, h: dict[str, str]) -> None:
    """Clauses 5.7.1.4 and 5.7.2.4: geometryProperty without Accept: application/geo+json is BadRequestData."""
    for path, params in (("/entities", {"type": "Sensor"}), ("/entities/urn:ngsi-ld:Sensor:0", {})):
        r = http.get(BASE + path, params={**params, "geometryProperty": "location"}, headers=h)
        assert problem(r) == "BadRequestData", path
        geo = {**h, "Accept": "application/geo+json"}
        assert http.get(BASE + path, params={**params, "geometryProperty": "location"}, headers=geo).status_code == 200
