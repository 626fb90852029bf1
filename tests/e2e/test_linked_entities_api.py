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
