"""Snapshots over HTTP, on every store backend, each behind two real `agora serve` processes sharing it (one for
memory://, which is process-local): clauses 6.36-6.38 (the resources), 5.16.1-5.16.7 (the operations), 5.2.41
(the Snapshot data type), 5.2.42 (ExecutionResultDetails), 5.5.15 (operations on a snapshot, NGSILD-Snapshot).
Decision records 0150-0154."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import running_broker, store_url_for

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
BACKENDS = ["sqlite", "memory", "redis", "redis-cluster"]


@dataclass
class Brokers:
    """A writer and a reader: two processes over one store (the same process for memory://)."""

    a: httpx.Client
    b: httpx.Client


@pytest.fixture(scope="module", params=BACKENDS)
def brokers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    tmp: Path = tmp_path_factory.mktemp(f"snapshots-{request.param}")
    with ExitStack() as stack:
        url = store_url_for(request.param, tmp, stack)
        first = stack.enter_context(running_broker(url, tmp))
        second = first if request.param == "memory" else stack.enter_context(running_broker(url, tmp))
        a = stack.enter_context(httpx.Client(base_url=first.url + BASE, timeout=30))
        b = stack.enter_context(httpx.Client(base_url=second.url + BASE, timeout=30))
        yield Brokers(a, b)


def fleet(http: httpx.Client, speeds: list[int], tenant: str | None = None) -> str:
    kind = f"Bus{uuid.uuid4().hex[:8]}"
    batch = [
        {"id": f"urn:ngsi-ld:{kind}:{i}", "type": kind, "speed": {"type": "Property", "value": s}}
        for i, s in enumerate(speeds)
    ]
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    assert http.post("/entityOperations/create", json=batch, headers=headers).status_code == 201
    return kind


def snapshot(http: httpx.Client, kind: str, q: str | None = None, **extra: Any) -> str:
    query: dict[str, Any] = {"type": "Query", "entities": [{"type": kind}]}
    if q:
        query["q"] = q
    body = {"type": "Snapshot", "snapshotQueries": [query], **extra}
    r = http.post("/snapshots", json=body)
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    assert location.startswith(f"{BASE}/snapshots/")
    return location.removeprefix(f"{BASE}/snapshots/")


def on(snapshot_id: str) -> dict[str, str]:
    return {"NGSILD-Snapshot": snapshot_id}


def test_create_captures_what_the_query_selects_and_freezes_it(brokers: Brokers) -> None:
    kind = fleet(brokers.a, [80, 30, 60])
    sid = snapshot(brokers.a, kind, "speed>50")
    status = brokers.b.get(f"/snapshots/{sid}")
    assert status.status_code == 200, status.text
    doc = status.json()
    assert doc["id"] == sid and doc["type"] == "Snapshot"
    assert doc["snapshotStatus"] == "success" and doc["snapshotPriority"] == 5
    assert doc["snapshotQueriesDetails"] == [{"resultStatus": "success"}]
    assert doc["expiresAt"] > doc["createdAt"]
    # Live data changes; the snapshot does not (5.5.15: operations apply to the snapshot's information only).
    patch = {"speed": {"type": "Property", "value": 5}}
    assert brokers.a.patch(f"/entities/urn:ngsi-ld:{kind}:0/attrs", json=patch).status_code == 204
    r = brokers.b.get("/entities", params={"type": kind}, headers=on(sid))
    assert r.status_code == 200, r.text
    assert r.headers["NGSILD-Snapshot"] == sid
    assert sorted((e["id"], e["speed"]["value"]) for e in r.json()) == [
        (f"urn:ngsi-ld:{kind}:0", 80),
        (f"urn:ngsi-ld:{kind}:2", 60),
    ]
    one = brokers.a.get(f"/entities/urn:ngsi-ld:{kind}:1", headers=on(sid))
    assert one.status_code == 404  # not selected by speed>50
    live = brokers.a.get("/entities", params={"type": kind})
    assert len(live.json()) == 3


def test_writes_on_a_snapshot_stay_in_it(brokers: Brokers) -> None:
    kind = fleet(brokers.a, [1, 2])
    sid = snapshot(brokers.a, kind)
    what_if = {"speed": {"type": "Property", "value": 99}}
    r = brokers.b.patch(f"/entities/urn:ngsi-ld:{kind}:0/attrs", json=what_if, headers=on(sid))
    assert r.status_code == 204, r.text
    assert brokers.a.get(f"/entities/urn:ngsi-ld:{kind}:0", headers=on(sid)).json()["speed"]["value"] == 99
    assert brokers.a.get(f"/entities/urn:ngsi-ld:{kind}:0").json()["speed"]["value"] == 1


def test_an_empty_snapshot_answers_empty_lists(brokers: Brokers) -> None:
    sid = snapshot(brokers.a, f"Nothing{uuid.uuid4().hex[:6]}")
    doc = brokers.b.get(f"/snapshots/{sid}").json()
    assert doc["snapshotStatus"] == "empty" and doc["snapshotQueriesDetails"] == [{"resultStatus": "empty"}]
    r = brokers.b.get("/entities", params={"type": "Anything"}, headers=on(sid))
    assert r.status_code == 200 and r.json() == []


def test_temporal_queries_capture_the_evolution(brokers: Brokers) -> None:
    kind = f"Meter{uuid.uuid4().hex[:6]}"
    eid = f"urn:ngsi-ld:{kind}:1"
    for n, at in enumerate(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]):
        body = {"id": eid, "type": kind, "power": {"type": "Property", "value": n, "observedAt": at}}
        assert brokers.a.post("/entityOperations/upsert", json=[body]).status_code in (201, 204)
    query = {
        "type": "Query",
        "entities": [{"type": kind}],
        "temporalQ": {"timerel": "after", "timeAt": "2026-01-02T00:00:00Z"},
    }
    r = brokers.a.post("/snapshots", json={"type": "Snapshot", "snapshotTemporalQueries": [query]})
    assert r.status_code == 201, r.text
    sid = r.headers["Location"].rsplit("/", 1)[1]
    doc = brokers.b.get(f"/snapshots/{sid}").json()
    assert doc["snapshotTemporalQueriesDetails"] == [{"resultStatus": "success"}]
    evolution = brokers.b.get(f"/temporal/entities/{eid}", headers=on(sid))
    assert evolution.status_code == 200, evolution.text
    assert sorted(i["value"] for i in evolution.json()["power"]) == [1, 2]
    # The captured evolution does not grow with the live one.
    later = {"id": eid, "type": kind, "power": {"type": "Property", "value": 7, "observedAt": "2026-01-04T00:00:00Z"}}
    assert brokers.a.post("/entityOperations/upsert", json=[later]).status_code in (201, 204)
    evolution = brokers.a.get(f"/temporal/entities/{eid}", headers=on(sid))
    assert sorted(i["value"] for i in evolution.json()["power"]) == [1, 2]


def test_conflicts_and_errors(brokers: Brokers) -> None:
    kind = fleet(brokers.a, [1])
    sid = f"urn:ngsi-ld:Snapshot:{uuid.uuid4().hex}"
    assert snapshot(brokers.a, kind, id=sid) == sid
    again = brokers.b.post(
        "/snapshots",
        json={"type": "Snapshot", "id": sid, "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}]},
    )
    assert again.status_code == 409 and again.json()["type"] == ERR + "AlreadyExists"
    for bad in (
        {"type": "Snapshot"},
        {"type": "NotSnapshot", "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}]},
        {
            "type": "Snapshot",
            "snapshotPriority": 11,
            "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}],
        },
        {
            "type": "Snapshot",
            "snapshotStatus": "success",
            "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}],
        },
        {
            "type": "Snapshot",
            "snapshotLifetime": "soon",
            "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}],
        },
        {"type": "Snapshot", "id": "not a uri", "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}]},
        {"type": "Snapshot", "snapshotQueries": [{"type": "Query", "q": "speed>"}]},
    ):
        r = brokers.a.post("/snapshots", json=bad)
        assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData", (bad, r.text)
    assert brokers.a.get("/snapshots/urn:ngsi-ld:Snapshot:nope").status_code == 404
    assert brokers.a.get("/snapshots/not%20a%20uri").json()["type"] == ERR + "BadRequestData"
    unknown = brokers.a.get("/entities", params={"type": kind}, headers=on("urn:ngsi-ld:Snapshot:nope"))
    assert unknown.status_code == 404 and unknown.json()["type"] == ERR + "ResourceNotFound"
    elsewhere = brokers.a.get("/subscriptions", headers=on(sid))
    assert elsewhere.status_code == 422 and elsewhere.json()["type"] == ERR + "OperationNotSupported"


def test_update_status(brokers: Brokers) -> None:
    sid = snapshot(brokers.a, fleet(brokers.a, [1]))
    r = brokers.b.patch(f"/snapshots/{sid}", json={"snapshotPriority": 9, "snapshotLifetime": "PT2H"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["snapshotPriority"] == 9 and doc["snapshotLifetime"] == "PT2H"
    assert brokers.a.get(f"/snapshots/{sid}").json()["expiresAt"] == doc["expiresAt"]
    for bad in ({"snapshotQueries": []}, {"snapshotStatus": "empty"}, {"snapshotPriority": 0}, {"id": "urn:x:other"}):
        assert brokers.a.patch(f"/snapshots/{sid}", json=bad).status_code == 400, bad
    assert brokers.a.patch("/snapshots/urn:ngsi-ld:Snapshot:nope", json={"snapshotPriority": 2}).status_code == 404


def test_expiry_ends_a_snapshot(brokers: Brokers) -> None:
    sid = snapshot(brokers.a, fleet(brokers.a, [1]), snapshotLifetime="PT1S")
    assert brokers.b.get(f"/snapshots/{sid}").status_code == 200
    time.sleep(1.2)
    assert brokers.b.get(f"/snapshots/{sid}").status_code == 404
    assert brokers.a.get("/entities", params={"type": "X"}, headers=on(sid)).status_code == 404


def test_clone_copies_the_content_and_outlives_its_source(brokers: Brokers) -> None:
    kind = fleet(brokers.a, [10, 20])
    sid = snapshot(brokers.a, kind)
    with_queries = {"type": "Snapshot", "snapshotQueries": [{"type": "Query", "entities": [{"type": kind}]}]}
    assert brokers.a.post(f"/snapshots/{sid}/clone", json=with_queries).status_code == 400
    r = brokers.b.post(f"/snapshots/{sid}/clone", json={"type": "Snapshot", "snapshotPriority": 2})
    assert r.status_code == 201, r.text
    cid = r.headers["Location"].rsplit("/", 1)[1]
    assert cid != sid
    clone = brokers.a.get(f"/snapshots/{cid}").json()
    assert clone["snapshotPriority"] == 2 and clone["snapshotQueries"] == with_queries["snapshotQueries"]
    assert brokers.a.delete(f"/snapshots/{sid}").status_code == 204
    assert brokers.a.get(f"/snapshots/{sid}").status_code == 404
    ids = [e["id"] for e in brokers.b.get("/entities", params={"type": kind}, headers=on(cid)).json()]
    assert sorted(ids) == [f"urn:ngsi-ld:{kind}:0", f"urn:ngsi-ld:{kind}:1"]
    assert brokers.a.post(f"/snapshots/{sid}/clone", json={"type": "Snapshot"}).status_code == 404
    taken = brokers.a.post(f"/snapshots/{cid}/clone", json={"type": "Snapshot", "id": cid})
    assert taken.status_code == 409


def test_purge_by_query(brokers: Brokers) -> None:
    kind = fleet(brokers.a, [1])
    low = snapshot(brokers.a, kind, snapshotPriority=2)
    high = snapshot(brokers.a, kind, snapshotPriority=8)
    assert brokers.a.delete("/snapshots").status_code == 400
    assert brokers.a.delete("/snapshots", params={"q": "speed<5"}).status_code == 400
    nothing = brokers.b.delete("/snapshots", params={"q": "snapshotPriority<2"})
    assert nothing.status_code == 404 and nothing.json()["type"] == ERR + "ResourceNotFound"
    assert brokers.b.delete("/snapshots", params={"q": "snapshotPriority<=2"}).status_code == 204
    assert brokers.a.get(f"/snapshots/{low}").status_code == 404
    assert brokers.a.get(f"/snapshots/{high}").status_code == 200


def test_snapshots_belong_to_their_tenant(brokers: Brokers) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    kind = fleet(brokers.a, [3], tenant)
    query = {"type": "Query", "entities": [{"type": kind}]}
    r = brokers.a.post(
        "/snapshots", json={"type": "Snapshot", "snapshotQueries": [query]}, headers={"NGSILD-Tenant": tenant}
    )
    assert r.status_code == 201, r.text
    sid = r.headers["Location"].rsplit("/", 1)[1]
    assert brokers.b.get(f"/snapshots/{sid}").status_code == 404
    assert brokers.b.get(f"/snapshots/{sid}", headers={"NGSILD-Tenant": tenant}).status_code == 200
    both = {"NGSILD-Tenant": tenant, **on(sid)}
    assert [e["id"] for e in brokers.b.get("/entities", params={"type": kind}, headers=both).json()] == [
        f"urn:ngsi-ld:{kind}:0"
    ]
    assert brokers.b.get("/entities", params={"type": kind}, headers=on(sid)).status_code == 404


@contextmanager
def snapshot_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], dict[str, Any]]]]]:
    """An HTTP endpoint recording (headers, body) of every POST: SnapshotNotifications have no `data` member."""
    got: list[tuple[dict[str, str], dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/snap", got
    finally:
        server.shutdown()
        server.server_close()


def _wait(got: list[Any], n: int) -> None:
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_snapshot_notifications_after_creation_and_update(brokers: Brokers) -> None:
    kind = fleet(brokers.a, [4])
    with snapshot_receiver() as (url, got):
        info = [{"key": "X-Auth-Token", "value": "abc"}]
        sid = snapshot(brokers.a, kind, endpoint=url, receiverInfo=info)
        _wait(got, 1)
        assert len(got) == 1
        headers, body = got[0]
        assert body["type"] == "SnapshotNotification" and body["snapshotId"] == sid
        assert body["snapshotStatus"] == "success" and body["snapshotQueriesDetails"] == [{"resultStatus": "success"}]
        assert body["notifiedAt"] and body["expiresAt"] == brokers.b.get(f"/snapshots/{sid}").json()["expiresAt"]
        assert headers["x-auth-token"] == "abc"
        updated = brokers.b.patch(f"/snapshots/{sid}", json={"snapshotLifetime": "PT3H"}).json()
        _wait(got, 2)
        assert len(got) == 2 and got[1][1]["expiresAt"] == updated["expiresAt"]
        # Without an endpoint (removed with urn:ngsi-ld:null) nothing more is sent.
        assert brokers.b.patch(f"/snapshots/{sid}", json={"endpoint": "urn:ngsi-ld:null"}).status_code == 200
        assert brokers.b.patch(f"/snapshots/{sid}", json={"snapshotPriority": 3}).status_code == 200
        time.sleep(0.3)
        assert len(got) == 2
