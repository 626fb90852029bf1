"""The access policies through the HTTP API (records 0220-0224): the admin API, what two callers with different
policies see and may change, 403 ProblemDetails, counts that do not leak, and the audit log of it all. Callers
are API keys (broker.auth.apikeys) in a broker that requires authentication."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from broker.auth.apikeys import new_key
from broker.cli import main
from broker.http.app import create_app
from broker.settings import Settings
from broker.store import open_store

ENTITIES = "/ngsi-ld/v1/entities"
POLICIES = "/ngsi-ld/v1/agora/policies"
V = "https://uri.etsi.org/ngsi-ld/default-context/"


def make_keys(url: str, **roles: str) -> dict[str, dict[str, str]]:
    async def made() -> dict[str, dict[str, str]]:
        store = open_store(url)
        await store.open()
        keys = {}
        for name, role in roles.items():
            record, key = new_key(name, (role,), None)
            await store.create_api_key(record)
            keys[name] = {"X-API-Key": key}
        await store.close()
        return keys

    return asyncio.run(made())


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], str]]:
    url = f"sqlite:///{tmp_path}/agora.db"
    keys = make_keys(url, admin="admin", operator="water-operator", provider="provider")
    with TestClient(create_app(Settings(store=url, auth="required"))) as client:
        yield client, keys, url


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


RULES = [
    {"id": "operator-pipes", "roles": ["water-operator"], "actions": ["read", "write"], "types": ["Pipe"]},
    {
        "id": "operator-no-secret",
        "effect": "deny",
        "roles": ["water-operator"],
        "actions": ["read"],
        "attrs": ["secret"],
    },
    {"id": "provider-pressure", "roles": ["provider"], "actions": ["read"], "types": ["Pipe"], "attrs": ["pressure"]},
]


def seed(client: TestClient, admin: dict[str, str]) -> None:
    assert client.post(POLICIES, json=RULES, headers=admin).status_code == 201
    for eid, etype in (("urn:p:1", "Pipe"), ("urn:p:2", "Pipe"), ("urn:m:1", "Pump")):
        body = {"id": eid, "type": etype, "pressure": prop(3), "secret": prop("s"), "email": prop("a@b.example")}
        assert client.post(ENTITIES, json=body, headers=admin).status_code == 201


def test_each_caller_sees_what_its_policy_allows(broker: tuple[TestClient, Any, str]) -> None:
    client, keys, _ = broker
    seed(client, keys["admin"])
    query = {"type": "Pipe,Pump", "count": "true"}
    seen = client.get(ENTITIES, params=query, headers=keys["operator"])
    assert seen.status_code == 200 and seen.headers["NGSILD-Results-Count"] == "2"
    assert {e["id"] for e in seen.json()} == {"urn:p:1", "urn:p:2"}
    assert all(set(e) == {"id", "type", "pressure"} for e in seen.json())  # secret denied, email personal
    provider = client.get(ENTITIES, params={**query, "q": "secret==%22s%22"}, headers=keys["provider"])
    assert provider.json() == [] and provider.headers["NGSILD-Results-Count"] == "0"  # q never sees hidden data
    assert client.get(ENTITIES + "/urn:m:1", headers=keys["operator"]).status_code == 404
    assert [t for t in client.get("/ngsi-ld/v1/types", headers=keys["provider"]).json()["typeList"]] == ["Pipe"]
    attrs = client.get("/ngsi-ld/v1/attributes", headers=keys["provider"]).json()["attributeList"]
    assert attrs == ["pressure"]


def test_writes_out_of_reach_are_403_and_change_nothing(broker: tuple[TestClient, Any, str]) -> None:
    client, keys, _ = broker
    seed(client, keys["admin"])
    patch = {"pressure": prop(9)}
    assert client.patch(ENTITIES + "/urn:p:1/attrs", json=patch, headers=keys["operator"]).status_code == 204
    refused = client.patch(ENTITIES + "/urn:p:1/attrs", json=patch, headers=keys["provider"])
    assert refused.status_code == 403 and refused.headers["Content-Type"] == "application/json"
    assert refused.json()["title"] == "Forbidden" and refused.json()["status"] == 403
    assert "access policies" in refused.json()["detail"]
    pump = client.patch(ENTITIES + "/urn:m:1/attrs", json=patch, headers=keys["operator"])
    assert pump.status_code == 403
    batch = [{"id": "urn:p:1", "type": "Pipe", "pressure": prop(1)}, {"id": "urn:m:1", "type": "Pump"}]
    result = client.post("/ngsi-ld/v1/entityOperations/upsert?options=update", json=batch, headers=keys["operator"])
    assert result.status_code == 207
    assert [e["entityId"] for e in result.json()["errors"]] == ["urn:m:1"] and result.json()["success"] == ["urn:p:1"]
    admin_view = client.get(ENTITIES + "/urn:m:1", headers=keys["admin"]).json()
    assert admin_view["pressure"]["value"] == 3 and admin_view["email"]["value"] == "a@b.example"
    assert client.post(POLICIES, json=RULES[0], headers=keys["operator"]).status_code == 403
    assert client.get("/ngsi-ld/v1/csourceRegistrations", headers=keys["operator"]).status_code == 403
    assert client.get("/ngsi-ld/v1/csourceRegistrations", headers=keys["admin"]).status_code == 200


def test_the_admin_api_and_the_audit_log(broker: tuple[TestClient, Any, str]) -> None:
    client, keys, url = broker
    seed(client, keys["admin"])
    listed = client.get(POLICIES, headers=keys["admin"]).json()
    assert [r["id"] for r in listed] == ["operator-no-secret", "operator-pipes", "provider-pressure"]
    assert client.get(POLICIES + "/operator-pipes", headers=keys["admin"]).json()["types"] == [V + "Pipe"]
    assert client.post(POLICIES, json=RULES[0], headers=keys["admin"]).status_code == 204  # replaced
    bad = client.post(POLICIES, json={"id": "x", "actions": ["fly"]}, headers=keys["admin"])
    assert bad.status_code == 400 and "actions" in bad.json()["detail"]
    assert client.delete(POLICIES + "/provider-pressure", headers=keys["admin"]).status_code == 204
    assert client.delete(POLICIES + "/provider-pressure", headers=keys["admin"]).status_code == 404
    assert client.get(ENTITIES, params={"type": "Pipe"}, headers=keys["provider"]).json() == []  # at once
    client.patch(ENTITIES + "/urn:p:1/attrs", json={"pressure": prop(1)}, headers=keys["provider"])
    refused = audit_until(client, keys["admin"], {"outcome": "refused", "entityId": "urn:p:1"})
    assert refused[0]["status"] == 403 and refused[0]["subject"].startswith("apikey:")
    assert refused[0]["operation"] == "PATCH /ngsi-ld/v1/entities/urn:p:1/attrs"
    assert "a@b.example" not in json.dumps(client.get("/ngsi-ld/v1/agora/audit", headers=keys["admin"]).json())
    assert client.get("/ngsi-ld/v1/agora/audit", headers=keys["operator"]).status_code == 403
    since = {"since": refused[0]["at"].replace(".", ",")[:19] + "Z"}  # whole seconds: the record is within it
    assert client.get("/ngsi-ld/v1/agora/audit", params=since, headers=keys["admin"]).json()
    bad = client.get("/ngsi-ld/v1/agora/audit", params={"since": "yesterday"}, headers=keys["admin"])
    assert bad.status_code == 400 and "since" in bad.json()["detail"]
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["audit", "--store", url, "--outcome", "refused", "--limit", "50"]) == 0
    assert any(json.loads(line)["status"] == 403 for line in out.getvalue().splitlines())


def audit_until(client: TestClient, admin: dict[str, str], params: dict[str, str]) -> list[dict[str, Any]]:
    """The audit records `params` select, once the broker flushed them (it does so a few times a second)."""
    deadline = time.monotonic() + 10
    while True:
        found = client.get("/ngsi-ld/v1/agora/audit", params=params, headers=admin).json()
        if found or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.1)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_agora_policy_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/agora.db"
    rule = {"id": "r1", "roles": ["reader"], "actions": ["read"], "types": ["Pipe"]}
    assert run_cli("policy", "--store", url, "add", json.dumps(rule))[0] == 0
    (tmp_path / "p.yaml").write_text(
        "'@context': {Conduite: 'https://example.org/Pipe'}\n"
        "rules:\n  - {id: r2, effect: deny, subjects: [mallory], actions: [write], types: [Conduite]}\n"
    )
    assert run_cli("policy", "--store", url, "load", str(tmp_path / "p.yaml"))[0] == 0
    (tmp_path / "p.toml").write_text('[[rules]]\nid = "r3"\nactions = ["admin"]\ngroups = ["/city/it"]\n')
    assert run_cli("policy", "--store", url, "load", str(tmp_path / "p.toml"))[0] == 0
    code, listed, _ = run_cli("policy", "--store", url, "list")
    rules = [json.loads(line) for line in listed.splitlines()]
    assert [r["id"] for r in rules] == ["r1", "r2", "r3"]
    assert rules[0]["types"] == [V + "Pipe"] and rules[1]["types"] == ["https://example.org/Pipe"]
    assert run_cli("policy", "--store", url, "remove", "r1")[0] == 0
    assert run_cli("policy", "--store", url, "remove", "r1")[0] == 1
    code, _, err = run_cli("policy", "--store", url, "add", '{"id": "bad", "actions": []}')
    assert code == 2 and "actions" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "broken.json").write_text('{"rules": 3}')
    assert run_cli("policy", "--store", url, "load", str(tmp_path / "broken.json"))[0] == 2


def test_the_temporal_api_and_snapshots_follow_the_policies(broker: tuple[TestClient, Any, str]) -> None:
    client, keys, _ = broker
    seed(client, keys["admin"])
    history = {
        "id": "history",
        "roles": ["provider"],
        "actions": ["temporal"],
        "types": ["Pipe"],
        "attrs": ["pressure"],
    }
    assert client.post(POLICIES, json=history, headers=keys["admin"]).status_code == 201
    temporal = "/ngsi-ld/v1/temporal/entities"
    since = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z", "timeproperty": "modifiedAt"}
    query = {**since, "type": "Pipe,Pump", "count": "true"}
    seen = client.get(temporal, params=query, headers=keys["provider"])
    assert {e["id"] for e in seen.json()} == {"urn:p:1", "urn:p:2"} and seen.headers["NGSILD-Results-Count"] == "2"
    assert all(set(e) == {"id", "type", "pressure"} for e in seen.json())
    assert client.get(temporal + "/urn:m:1", headers=keys["provider"]).status_code == 404
    assert client.get(temporal, params=query, headers=keys["operator"]).json() == []  # no temporal rule
    write = {"id": "urn:p:1", "type": "Pipe", "pressure": [prop(4)]}
    assert client.post(temporal, json=write, headers=keys["provider"]).status_code == 403
    assert client.post(temporal, json=write, headers=keys["operator"]).status_code == 204
    snapshot = {"type": "Snapshot", "snapshotQueries": [{"type": "Query", "entities": [{"type": "Pipe"}]}]}
    assert client.post("/ngsi-ld/v1/snapshots", json=snapshot, headers=keys["operator"]).status_code == 403
