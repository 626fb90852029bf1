"""Discovery of types and attributes end to end (clauses 6.25 to 6.28)."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.helpers import link

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


def test_types_and_attributes(http: httpx.Client, context_server: str) -> None:
    tenant = {"NGSILD-Tenant": "d" + uuid.uuid4().hex[:8]}
    entities = [
        {"id": "urn:ngsi-ld:Bus:1", "type": "Bus", "speed": 1, "route": {"object": "urn:ngsi-ld:Route:1"}},
        {"id": "urn:ngsi-ld:Bus:2", "type": "Bus", "speed": [{"value": 2}, {"value": 3, "datasetId": "urn:d:1"}]},
        {"id": "urn:ngsi-ld:Stop:1", "type": "Stop", "name": "Bellecour"},
    ]
    assert http.post(f"{BASE}/entityOperations/create", json=entities, headers=tenant).status_code == 201

    r = http.get(f"{BASE}/types", headers=tenant)
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "EntityTypeList" and body["typeList"] == ["Bus", "Stop"]
    assert body["id"].startswith("urn:ngsi-ld:EntityTypeList:")

    details = http.get(f"{BASE}/types", params={"details": "true"}, headers=tenant).json()
    assert details[0] == {
        "id": DEFAULT + "Bus",
        "type": "EntityType",
        "typeName": "Bus",
        "attributeNames": ["route", "speed"],
    }

    info = http.get(f"{BASE}/types/Bus", headers=tenant).json()
    assert info["entityCount"] == 2 and info["typeName"] == "Bus"
    assert {a["attributeName"]: a["attributeTypes"] for a in info["attributeDetails"]} == {
        "route": ["Relationship"],
        "speed": ["Property"],
    }
    r = http.get(f"{BASE}/types/Nothing", headers=tenant)
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"

    attrs = http.get(f"{BASE}/attributes", headers=tenant).json()
    assert attrs["type"] == "AttributeList" and attrs["attributeList"] == ["name", "route", "speed"]
    speed = http.get(f"{BASE}/attributes/speed", headers=tenant).json()
    assert speed == {
        "id": DEFAULT + "speed",
        "type": "Attribute",
        "attributeName": "speed",
        "attributeCount": 3,
        "attributeTypes": ["Property"],
        "typeNames": ["Bus"],
    }
    assert http.get(f"{BASE}/attributes/nope", headers=tenant).status_code == 404
    assert len(http.get(f"{BASE}/attributes", params={"details": "true"}, headers=tenant).json()) == 3

    # Compacted with the request's context: a context that maps Bus elsewhere shows the full IRI.
    other = http.get(f"{BASE}/types", headers={**tenant, **link(context_server + "/a.jsonld")}).json()
    assert "Bus" in other["typeList"]
    assert http.get(f"{BASE}/types", headers={"NGSILD-Tenant": "nobody" + uuid.uuid4().hex[:6]}).status_code == 404
