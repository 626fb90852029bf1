"""An unrestricted purge writes in chunks of PURGE_CHUNK entities (record 0056): every matching entity goes, across
the chunk boundaries, and the others stay."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from broker.core import entities

API = "/ngsi-ld/v1"


def test_a_purge_over_several_chunks_deletes_every_match_and_nothing_else(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entities, "PURGE_CHUNK", 3)
    batch = [{"id": f"urn:ngsi-ld:Car:{n}", "type": "Car", "speed": {"type": "Property", "value": n}} for n in range(8)]
    batch.append({"id": "urn:ngsi-ld:Bus:1", "type": "Bus"})
    assert client.post(f"{API}/entityOperations/create", json=batch).status_code == 201
    purged = client.delete(f"{API}/entities", params={"type": "Car"})
    assert purged.status_code == 204, purged.text
    assert client.get(f"{API}/entities", params={"type": "Car"}).json() == []
    assert [e["id"] for e in client.get(f"{API}/entities", params={"type": "Bus"}).json()] == ["urn:ngsi-ld:Bus:1"]
    for n in range(8):
        assert client.get(f"{API}/entities/urn:ngsi-ld:Car:{n}").status_code == 404
