"""Linked Entity Retrieval end to end: join=flat|inline|@none, joinLevel, containedBy (clause 4.5.23)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"


@pytest.fixture
def tenant(http: httpx.Client) -> dict[str, str]:
    """A line of three stops (A -> B -> C -> A, a cycle) and a bus that serves A and lists A, B."""
    headers = {"NGSILD-Tenant": "j" + uuid.uuid4().hex[:8]}
    entities: list[dict[str, Any]] = [
        {"id": "urn:ngsi-ld:Stop:A", "type": "Stop", "name": "A", "next": {"object": "urn:ngsi-ld:Stop:B"}},
        {"id": "urn:ngsi-ld:Stop:B", "type": "Stop", "name": "B", "next": {"object": "urn:ngsi-ld:Stop:C"}},
        {"id": "urn:ngsi-ld:Stop:C", "type": "Stop", "name": "C", "next": {"object": "urn:ngsi-ld:Stop:A"}},
        {
            "id": "urn:ngsi-ld:Bus:1",
            "type": "Bus",
            "at": {"object": "urn:ngsi-ld:Stop:A"},
            "route": {"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Stop:A", "urn:ngsi-ld:Stop:B"]},
        },
    ]
    assert http.post(f"{BASE}/entityOperations/create", json=entities, headers=headers).status_code == 201
    return headers


def test_inline_embeds_linked_entities(http: httpx.Client, tenant: dict[str, str]) -> None:
    doc = http.get(f"{BASE}/entities/urn:ngsi-ld:Bus:1", params={"join": "inline"}, headers=tenant).json()
    assert doc["at"]["entity"]["id"] == "urn:ngsi-ld:Stop:A"
    assert "entity" not in doc["at"]["entity"]["next"]  # joinLevel 1
    assert [e["id"] for e in doc["route"]["entityList"]] == ["urn:ngsi-ld:Stop:A", "urn:ngsi-ld:Stop:B"]
    deep = http.get(
        f"{BASE}/entities/urn:ngsi-ld:Bus:1", params={"join": "inline", "joinLevel": "2"}, headers=tenant
    ).json()
    assert deep["at"]["entity"]["next"]["entity"]["id"] == "urn:ngsi-ld:Stop:B"
    kv = http.get(
        f"{BASE}/entities/urn:ngsi-ld:Bus:1", params={"join": "inline", "options": "keyValues"}, headers=tenant
    ).json()
    assert kv["at"]["name"] == "A"


def test_flat_lists_linked_entities_once(http: httpx.Client, tenant: dict[str, str]) -> None:
    docs = http.get(
        f"{BASE}/entities/urn:ngsi-ld:Stop:A", params={"join": "flat", "joinLevel": "5"}, headers=tenant
    ).json()
    assert [d["id"] for d in docs] == ["urn:ngsi-ld:Stop:A", "urn:ngsi-ld:Stop:B", "urn:ngsi-ld:Stop:C"]
    docs = http.get(
        f"{BASE}/entities/urn:ngsi-ld:Stop:A",
        params={"join": "flat", "joinLevel": "5", "containedBy": "urn:ngsi-ld:Stop:B"},
        headers=tenant,
    ).json()
    assert [d["id"] for d in docs] == ["urn:ngsi-ld:Stop:A"]
    page = http.get(f"{BASE}/entities", params={"type": "Bus", "join": "flat"}, headers=tenant).json()
    assert [d["id"] for d in page] == ["urn:ngsi-ld:Bus:1", "urn:ngsi-ld:Stop:A", "urn:ngsi-ld:Stop:B"]


def test_join_parameters_are_checked(http: httpx.Client, tenant: dict[str, str]) -> None:
    plain = http.get(f"{BASE}/entities/urn:ngsi-ld:Bus:1", params={"join": "@none"}, headers=tenant).json()
    assert "entity" not in plain["at"]
    assert http.get(f"{BASE}/entities/urn:ngsi-ld:Bus:1", params={"join": "deep"}, headers=tenant).status_code == 400
    r = http.get(f"{BASE}/entities/urn:ngsi-ld:Bus:1", params={"join": "flat", "joinLevel": "0"}, headers=tenant)
    assert r.status_code == 400


def _get(http: httpx.Client, tenant: dict[str, str], path: str, **params: str) -> Any:
    r = http.get(f"{BASE}{path}", params=params, headers=tenant)
    assert r.status_code == 200, r.text
    return r.json()


def test_only_the_relationships_shown_are_followed(http: httpx.Client, tenant: dict[str, str]) -> None:
    """Record 0107 (clause 5.7.1.5: "If any of the returned Attributes corresponds to an annotated Relationship")."""
    docs = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="flat", omit="route")
    assert [d["id"] for d in docs] == ["urn:ngsi-ld:Bus:1", "urn:ngsi-ld:Stop:A"]
    docs = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="flat", pick="route")
    assert [d["id"] for d in docs] == ["urn:ngsi-ld:Bus:1", "urn:ngsi-ld:Stop:A", "urn:ngsi-ld:Stop:B"]
    assert docs[1] == {"id": "urn:ngsi-ld:Stop:A"}  # the projection applies to every entity of the payload
    doc = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="inline", omit="at")
    assert "at" not in doc and [e["id"] for e in doc["route"]["entityList"]] == [
        "urn:ngsi-ld:Stop:A",
        "urn:ngsi-ld:Stop:B",
    ]


def test_a_projection_inside_a_relationship_shapes_the_linked_entities(
    http: httpx.Client, tenant: dict[str, str]
) -> None:
    """Clause 4.21: pick=rel{a} keeps a in the entities rel links to; omit=rel{a} removes it there, keeping rel."""
    doc = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="inline", pick="at{name}")
    a_named = {"id": "urn:ngsi-ld:Stop:A", "name": {"type": "Property", "value": "A"}}
    assert doc == {
        "id": "urn:ngsi-ld:Bus:1",
        "at": {"type": "Relationship", "object": a_named["id"], "entity": a_named},
    }
    doc = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="inline", omit="at{name}")
    assert "name" not in doc["at"]["entity"] and "next" in doc["at"]["entity"]
    assert "name" in doc["route"]["entityList"][0]  # only under `at`
    docs = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="flat", pick="at{name},route")
    assert docs[1] == {"id": "urn:ngsi-ld:Stop:A", "name": {"type": "Property", "value": "A"}}


def test_a_projection_into_linked_entities_needs_a_deep_enough_join(http: httpx.Client, tenant: dict[str, str]) -> None:
    """Clause 5.7.1.4: without join, or deeper than joinLevel, BadRequestData."""
    url = f"{BASE}/entities/urn:ngsi-ld:Bus:1"
    for params in ({"pick": "at{name}"}, {"join": "inline", "pick": "at{next{name}}"}):
        r = http.get(url, params=params, headers=tenant)
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), params
    deep = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="inline", joinLevel="2", pick="at{next{name}}")
    assert deep["at"]["entity"]["next"]["entity"] == {
        "id": "urn:ngsi-ld:Stop:B",
        "name": {"type": "Property", "value": "B"},
    }


def test_inline_shows_each_roots_graph_and_ends_cycles(http: httpx.Client, tenant: dict[str, str]) -> None:
    """A root another root links to is still inlined under it; an entity met on the way down is not again."""
    page = _get(http, tenant, "/entities", type="Stop", join="inline")
    assert [d["next"]["entity"]["id"] for d in page] == [
        "urn:ngsi-ld:Stop:B",
        "urn:ngsi-ld:Stop:C",
        "urn:ngsi-ld:Stop:A",
    ]
    doc = _get(http, tenant, "/entities/urn:ngsi-ld:Stop:A", join="inline", joinLevel="5")
    c = doc["next"]["entity"]["next"]["entity"]
    assert c["id"] == "urn:ngsi-ld:Stop:C" and "entity" not in c["next"]  # A again: not inlined inside itself


def test_flat_lists_a_list_relationship_in_its_order(http: httpx.Client, tenant: dict[str, str]) -> None:
    body = {"route": {"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Stop:C", "urn:ngsi-ld:Stop:A"]}}
    r = http.post(f"{BASE}/entities/urn:ngsi-ld:Bus:1/attrs", json=body, headers=tenant)
    assert r.status_code == 204, r.text
    docs = _get(http, tenant, "/entities/urn:ngsi-ld:Bus:1", join="flat", pick="route")
    assert [d["id"] for d in docs] == ["urn:ngsi-ld:Bus:1", "urn:ngsi-ld:Stop:C", "urn:ngsi-ld:Stop:A"]
