"""Distributed writes (clauses 4.3.6.2, 4.3.6.3, 5.6.x, 6.3; records 0191-0196) against a real context source on
loopback that records what it receives: which attributes go where, 207 with each failed source, local=true, an
entity held only by a source."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings
from tests.support.context_server import serve_contexts
from tests.support.recording_source import RecordingSource, running_source
from tests.support.servers import BrokerProcess

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
KIND = "Junction"


@pytest.fixture(scope="module")
def source() -> Iterator[RecordingSource]:
    with running_source() as src:
        yield src


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("distributed-writes")
    app = create_app(Settings(store=f"sqlite:///{tmp / 'agora.db'}", context_timeout=2.0))
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def _id() -> str:
    return f"urn:ngsi-ld:{KIND}:{uuid.uuid4().hex[:10]}"


def register(
    client: TestClient, endpoint: str, mode: str, entity: dict[str, Any], names: list[str] | None, ops: list[str]
) -> str:
    info: dict[str, Any] = {"entities": [{"type": KIND, **entity}]}
    if names:
        info["propertyNames"] = names
    reg_id = f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4().hex}"
    body = {"id": reg_id, "type": "ContextSourceRegistration", "information": [info], "endpoint": endpoint}
    r = client.post(f"{BASE}/csourceRegistrations", json=body | {"mode": mode, "operations": ops})
    assert r.status_code == 201, r.text
    return reg_id


def create(client: TestClient, entity_id: str, **attrs: Any) -> None:
    body = {"id": entity_id, "type": KIND, **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}
    assert client.post(f"{BASE}/entities", json=body).status_code == 201


def stored(client: TestClient, entity_id: str) -> dict[str, Any]:
    r = client.get(f"{BASE}/entities/{entity_id}", params={"local": "true"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def props(**attrs: Any) -> dict[str, Any]:
    return {k: {"type": "Property", "value": v} for k, v in attrs.items()}


def test_patch_attrs_exclusive_goes_to_its_source_inclusive_gets_a_copy(
    client: TestClient, source: RecordingSource
) -> None:
    eid = _id()
    create(client, eid, name="J1", head=3)
    ex = register(client, f"{source.url}/ex1", "exclusive", {"id": eid}, ["pressure"], ["updateOps"])
    register(client, f"{source.url}/inc1", "inclusive", {"id": eid}, None, ["updateOps"])
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=4.5, head=4))
    assert r.status_code == 204, r.text
    [sent] = source.at("/ex1")
    assert (sent.method, sent.path) == ("PATCH", f"/ex1{BASE}/entities/{eid}/attrs")
    assert sent.body == {VOCAB + "pressure": {"type": "Property", "value": 4.5}}
    assert "1.1 " in sent.headers["via"]
    [copy] = source.at("/inc1")
    assert copy.body == {VOCAB + "head": {"type": "Property", "value": 4}}
    here = stored(client, eid)
    assert here["head"]["value"] == 4 and "pressure" not in here  # the exclusive attribute is never held here
    assert ex  # the registration the exclusive part went to


def test_a_failing_source_gives_207_and_the_local_part_stands(client: TestClient, source: RecordingSource) -> None:
    eid = _id()
    create(client, eid, head=1)
    source.answers["/ex2"] = (500, {"type": ERR + "InternalError", "title": "boom", "detail": "disk full"})
    ex = register(client, f"{source.url}/ex2", "exclusive", {"id": eid}, ["pressure"], ["updateOps"])
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=2, head=2))
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["updated"] == [VOCAB + "head"]
    assert body["notUpdated"] == [{"attributeName": VOCAB + "pressure", "reason": "disk full", "registrationId": ex}]
    assert r.headers["NGSILD-Warning"].startswith(f'199 {source.url.removeprefix("http://")} "registration {ex}: 500')
    assert stored(client, eid)["head"]["value"] == 2


def test_local_true_skips_every_registration(client: TestClient, source: RecordingSource) -> None:
    eid = _id()
    create(client, eid, head=1)
    register(client, f"{source.url}/ex3", "exclusive", {"id": eid}, ["pressure"], ["updateOps"])
    r = client.patch(f"{BASE}/entities/{eid}/attrs", params={"local": "true"}, json=props(pressure=7))
    assert r.status_code == 204, r.text
    assert source.at("/ex3") == [] and stored(client, eid)["pressure"]["value"] == 7


def test_an_entity_only_a_source_holds_is_written_there(client: TestClient, source: RecordingSource) -> None:
    eid, unknown = _id(), _id()
    register(client, f"{source.url}/rd4", "redirect", {"id": eid}, None, ["redirectionOps"])
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=1))
    assert r.status_code == 204, r.text
    assert [s.path for s in source.at("/rd4")] == [f"/rd4{BASE}/entities/{eid}/attrs"]
    r = client.patch(f"{BASE}/entities/{unknown}/attrs", json=props(pressure=1))
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"
    register(client, f"{source.url}/inc4", "inclusive", {"id": unknown}, None, ["updateOps"])
    r = client.patch(f"{BASE}/entities/{unknown}/attrs", json=props(pressure=1, head=2))
    assert r.status_code == 204, r.text  # not held here, but the inclusive source took both attributes
    assert len(source.at("/inc4")) == 1


def test_a_proxied_registration_without_the_operation_is_a_conflict(
    client: TestClient, source: RecordingSource
) -> None:
    eid = _id()
    create(client, eid, head=1)
    register(client, f"{source.url}/ex5", "exclusive", {"id": eid}, ["pressure"], ["retrieveOps"])
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=3))
    assert r.status_code == 409 and r.json()["type"] == ERR + "Conflict", r.text
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=3, head=5))
    assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == VOCAB + "pressure"
    assert source.at("/ex5") == [] and "pressure" not in stored(client, eid)


def test_create_sends_the_exclusive_attributes_to_their_source(client: TestClient, source: RecordingSource) -> None:
    eid = _id()
    register(client, f"{source.url}/ex6", "exclusive", {"id": eid}, ["pressure"], ["createEntity"])
    r = client.post(f"{BASE}/entities", json={"id": eid, "type": KIND, **props(pressure=1, head=2)})
    assert r.status_code == 201 and r.headers["Location"].endswith(eid), r.text
    [sent] = source.at("/ex6")
    assert (sent.method, sent.path) == ("POST", f"/ex6{BASE}/entities")
    assert sent.body == {"id": eid, "type": VOCAB + KIND, VOCAB + "pressure": {"type": "Property", "value": 1}}
    here = stored(client, eid)
    assert here["head"]["value"] == 2 and "pressure" not in here


def test_merge_replace_and_attribute_operations_reach_the_source(client: TestClient, source: RecordingSource) -> None:
    eid = _id()
    create(client, eid, head=1)
    ops = ["mergeEntity", "replaceEntity", "updateAttrs", "replaceAttrs", "deleteAttrs"]
    register(client, f"{source.url}/ex7", "exclusive", {"id": eid}, ["pressure"], ops)
    pressure = VOCAB + "pressure"
    assert client.patch(f"{BASE}/entities/{eid}", json=props(pressure=1, head=2)).status_code == 204
    assert client.patch(f"{BASE}/entities/{eid}/attrs/pressure", json={"value": 2}).status_code == 204
    assert client.put(f"{BASE}/entities/{eid}/attrs/pressure", json={"type": "Property", "value": 3}).status_code == 204
    assert client.delete(f"{BASE}/entities/{eid}/attrs/pressure", params={"deleteAll": "true"}).status_code == 204
    assert client.put(f"{BASE}/entities/{eid}", json={"type": KIND, **props(pressure=4, head=5)}).status_code == 204
    got = [(s.method, s.path.removeprefix(f"/ex7{BASE}/entities/{eid}"), s.body, s.params) for s in source.at("/ex7")]
    assert got == [
        ("PATCH", "", {pressure: {"type": "Property", "value": 1}}, {}),
        ("PATCH", f"/attrs/{pressure}", {"value": 2}, {}),
        ("PUT", f"/attrs/{pressure}", {"type": "Property", "value": 3}, {}),
        ("DELETE", f"/attrs/{pressure}", None, {"deleteAll": "true"}),
        ("PUT", "", {"id": eid, "type": VOCAB + KIND, pressure: {"type": "Property", "value": 4}}, {}),
    ]
    here = stored(client, eid)
    assert here["head"]["value"] == 5 and "pressure" not in here


def test_delete_entity_goes_to_every_source_holding_it_and_207_names_the_failed_one(
    client: TestClient, source: RecordingSource
) -> None:
    eid = _id()
    create(client, eid, head=1)
    register(client, f"{source.url}/rd8", "redirect", {"id": eid}, ["pressure"], ["deleteEntity"])
    source.answers["/inc8"] = (404, {"type": ERR + "ResourceNotFound", "title": "gone", "detail": "no such entity"})
    inc = register(client, f"{source.url}/inc8", "inclusive", {"id": eid}, None, ["deleteEntity"])
    r = client.delete(f"{BASE}/entities/{eid}")
    assert r.status_code == 207, r.text
    assert r.json() == {
        "success": [eid],
        "errors": [
            {
                "entityId": eid,
                "registrationId": inc,
                "error": {"type": ERR + "ResourceNotFound", "title": "gone", "detail": "no such entity"},
            }
        ],
    }
    assert [s.method for s in source.at("/rd8")] == ["DELETE"]
    assert client.get(f"{BASE}/entities/{eid}", params={"local": "true"}).status_code == 404


def test_batch_upsert_sends_each_source_its_share_in_one_request(client: TestClient, source: RecordingSource) -> None:
    e1, e2 = _id(), _id()
    register(client, f"{source.url}/ex9", "exclusive", {"id": e1}, ["pressure"], ["upsertBatch"])
    batch = [{"id": e, "type": KIND, **props(pressure=1, head=2)} for e in (e1, e2)]
    r = client.post(f"{BASE}/entityOperations/upsert", json=batch)
    assert r.status_code == 201 and sorted(r.json()) == sorted([e1, e2]), r.text
    [sent] = source.at("/ex9")
    assert (sent.method, sent.path) == ("POST", f"/ex9{BASE}/entityOperations/upsert")
    assert sent.body == [{"id": e1, "type": VOCAB + KIND, VOCAB + "pressure": {"type": "Property", "value": 1}}]
    assert "pressure" not in stored(client, e1) and stored(client, e2)["pressure"]["value"] == 1


def test_batch_upsert_falls_back_on_create_then_replace(client: TestClient, source: RecordingSource) -> None:
    eid = _id()
    source.answers[f"POST /up10{BASE}/entities"] = (409, {"type": ERR + "AlreadyExists", "title": "exists"})
    register(client, f"{source.url}/up10", "redirect", {"id": eid}, None, ["createEntity", "replaceEntity"])
    r = client.post(f"{BASE}/entityOperations/upsert", json=[{"id": eid, "type": KIND, **props(pressure=1)}])
    assert r.status_code == 204, r.text  # replaced at the source: nothing was created
    assert [(s.method, s.path) for s in source.at("/up10")] == [
        ("POST", f"/up10{BASE}/entities"),
        ("PUT", f"/up10{BASE}/entities/{eid}"),
    ]
    assert client.get(f"{BASE}/entities/{eid}", params={"local": "true"}).status_code == 404


def test_batch_delete_and_update_report_each_failed_source(client: TestClient, source: RecordingSource) -> None:
    e1, e2 = _id(), _id()
    create(client, e1, head=1)
    create(client, e2, head=1)
    source.answers["/bad11"] = (503, None)
    bad = register(client, f"{source.url}/bad11", "inclusive", {"id": e1}, None, ["deleteBatch"])
    ro = register(client, f"{source.url}/ro11", "exclusive", {"id": e2}, ["pressure"], ["retrieveOps"])
    r = client.post(f"{BASE}/entityOperations/update", json=[{"id": e2, **props(pressure=5, head=6)}])
    assert r.status_code == 207, r.text
    [error] = r.json()["errors"]
    assert (error["entityId"], error["registrationId"], error["error"]["type"]) == (e2, ro, ERR + "Conflict")
    assert r.json()["success"] == [e2] and stored(client, e2)["head"]["value"] == 6
    r = client.post(f"{BASE}/entityOperations/delete", json=[e1, e2])
    assert r.status_code == 207, r.text
    got = sorted((e["entityId"], e["registrationId"], e["error"]["status"]) for e in r.json()["errors"])
    assert got == sorted([(e1, bad, 503), (e2, ro, 409)])  # the exclusive source offers no delete: Conflict
    assert sorted(r.json()["success"]) == sorted([e1, e2]) and "NGSILD-Warning" in r.headers
    assert [s.body for s in source.at("/bad11")] == [[e1]]


def test_purge_goes_to_the_registrations_matching_the_query(client: TestClient, source: RecordingSource) -> None:
    valve = "Valve"
    eid = f"urn:ngsi-ld:{valve}:{uuid.uuid4().hex[:10]}"
    body = {"id": eid, "type": valve, **props(head=1, pressure=2)}
    assert client.post(f"{BASE}/entities", json=body).status_code == 201
    info = {"entities": [{"type": valve}]}
    reg = {"type": "ContextSourceRegistration", "information": [info], "operations": ["purgeEntity"]}
    r = client.post(f"{BASE}/csourceRegistrations", json=reg | {"endpoint": f"{source.url}/pg12"})
    assert r.status_code == 201, r.text
    ex = {"entities": [{"type": valve, "id": eid}], "propertyNames": ["pressure"]}
    exclusive = reg | {"information": [ex], "mode": "exclusive", "operations": ["retrieveOps"]}
    r = client.post(f"{BASE}/csourceRegistrations", json=exclusive | {"endpoint": f"{source.url}/ro12"})
    assert r.status_code == 201, r.text
    r = client.delete(f"{BASE}/entities", params={"type": valve, "drop": "head"})
    assert r.status_code == 204, r.text  # the exclusive registration holds no `head`: not concerned
    [sent] = source.at("/pg12")
    assert (sent.method, sent.path) == ("DELETE", f"/pg12{BASE}/entities")
    assert sent.params == {"type": VOCAB + valve, "drop": VOCAB + "head"}
    assert "head" not in stored(client, eid)
    r = client.delete(f"{BASE}/entities", params={"type": valve})
    assert r.status_code == 207, r.text
    [error] = r.json()["errors"]
    assert r.json()["success"] == [eid] and error["error"]["type"] == ERR + "Conflict"
    assert len(source.at("/pg12")) == 2 and source.at("/ro12") == []
    assert client.get(f"{BASE}/entities/{eid}", params={"local": "true"}).status_code == 404


def test_another_agora_as_the_exclusive_source_stores_what_it_is_sent(
    client: TestClient, http: httpx.Client, broker_server: BrokerProcess
) -> None:
    """The wire form (record 0191) read by a real broker: full IRIs in bodies and paths, batch and single ops."""
    eid = _id()
    held = {"id": eid, "type": KIND, **props(pressure=1, flow=2)}
    assert http.post(f"{BASE}/entities", json=held).status_code == 201  # the water utility's own broker
    ops = ["updateOps", "deleteAttrs", "upsertBatch", "mergeEntity"]
    register(client, broker_server.url, "exclusive", {"id": eid}, ["pressure", "flow"], ops)
    assert client.patch(f"{BASE}/entities/{eid}/attrs/pressure", json={"value": 5}).status_code == 204
    assert client.patch(f"{BASE}/entities/{eid}", json=props(flow=7)).status_code == 204
    r = client.post(
        f"{BASE}/entityOperations/upsert",
        params={"options": "update"},
        json=[{"id": eid, "type": KIND, **props(pressure=6)}],
    )
    assert r.status_code == 204, r.text
    there = http.get(f"{BASE}/entities/{eid}").json()
    assert (there["pressure"]["value"], there["flow"]["value"]) == (6, 7)
    assert client.delete(f"{BASE}/entities/{eid}/attrs/flow").status_code == 204
    assert "flow" not in http.get(f"{BASE}/entities/{eid}").json()
    assert client.get(f"{BASE}/entities/{eid}", params={"local": "true"}).status_code == 404


def test_batch_writes_without_types_reach_the_agora_that_holds_the_entities_by_type(
    client: TestClient, http: httpx.Client, broker_server: BrokerProcess
) -> None:
    """A batch update, merge or delete names no types: each entity held only by a source registered by type is
    routed as its single-entity write would be (records 0195, 0471), through a real second Agora; an entity of
    another type there is neither written nor deleted (4.3.6.1)."""
    kind, other = f"Pipe{uuid.uuid4().hex[:8]}", f"Pump{uuid.uuid4().hex[:8]}"
    a, b, c = (f"urn:ngsi-ld:{kind}:{n}" for n in "abc")
    stray = f"urn:ngsi-ld:{other}:x"
    for eid, t in ((a, kind), (b, kind), (c, kind), (stray, other)):
        assert http.post(f"{BASE}/entities", json={"id": eid, "type": t, **props(pressure=1)}).status_code == 201
    info = {"entities": [{"type": kind}]}
    reg = {"type": "ContextSourceRegistration", "information": [info], "mode": "redirect"}
    r = client.post(
        f"{BASE}/csourceRegistrations",
        json=reg | {"endpoint": broker_server.url, "operations": ["redirectionOps", "deleteBatch"]},
    )
    assert r.status_code == 201, r.text
    r = client.post(f"{BASE}/entityOperations/update", json=[{"id": a, **props(pressure=5)}])
    assert r.status_code == 204, r.text
    r = client.post(f"{BASE}/entityOperations/merge", json=[{"id": b, **props(flow=3)}, {"id": stray, **props(flow=3)}])
    assert r.status_code == 207, r.text
    assert r.json()["success"] == [b] and [e["entityId"] for e in r.json()["errors"]] == [stray]
    assert http.get(f"{BASE}/entities/{a}").json()["pressure"]["value"] == 5
    assert http.get(f"{BASE}/entities/{b}").json()["flow"]["value"] == 3
    assert "flow" not in http.get(f"{BASE}/entities/{stray}").json()
    r = client.post(f"{BASE}/entityOperations/delete", json=[a, b, stray])
    assert r.status_code == 207, r.text
    [error] = r.json()["errors"]
    assert sorted(r.json()["success"]) == sorted([a, b]) and error["entityId"] == stray, r.text
    assert error["error"]["type"] == ERR + "ResourceNotFound"
    assert [http.get(f"{BASE}/entities/{e}").status_code for e in (a, b, c, stray)] == [404, 404, 200, 200]
    assert all(client.get(f"{BASE}/entities/{e}", params={"local": "true"}).status_code == 404 for e in (a, b, c))
    for eid in (c, stray):
        http.delete(f"{BASE}/entities/{eid}")


def test_a_write_carries_the_request_headers_its_registration_asks_for(
    client: TestClient, source: RecordingSource
) -> None:
    eid = _id()
    info = {"entities": [{"type": KIND, "id": eid}]}
    reg = {"type": "ContextSourceRegistration", "information": [info], "mode": "redirect", "operations": ["updateOps"]}
    csi = [{"key": "X-Operator", "value": "urn:ngsi-ld:request"}]
    r = client.post(
        f"{BASE}/csourceRegistrations", json=reg | {"endpoint": f"{source.url}/h13", "contextSourceInfo": csi}
    )
    assert r.status_code == 201, r.text
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=1), headers={"X-Operator": "night shift"})
    assert r.status_code == 204, r.text
    [sent] = source.at("/h13")
    assert sent.headers["x-operator"] == "night shift"


#: A context source that speaks only its own terms: its @context names the Junction type and the pressure attribute
#: (the client's, under the core @context) in German (clause 4.3.6.6, record 0470).
OWN_TERMS = {
    "@context": {
        "Knoten": VOCAB + KIND,
        "Schieber": VOCAB + "Valve",
        "druck": VOCAB + "pressure",
        "hoehe": VOCAB + "head",
    }
}


@pytest.fixture(scope="module")
def own_context() -> Iterator[str]:
    with serve_contexts({"/own.jsonld": OWN_TERMS}) as url:
        yield url + "/own.jsonld"


def test_a_source_with_its_own_context_receives_its_own_terms(
    client: TestClient, source: RecordingSource, own_context: str
) -> None:
    """4.3.6.6: with a jsonldContext the broker compacts "both payload and query parameters" with it and forwards
    with that @context: bodies, the attribute in a path and batches carry the source's short terms."""
    eid = _id()
    info = {"entities": [{"type": KIND, "id": eid}], "propertyNames": ["pressure"]}
    ops = ["createEntity", "updateOps", "mergeEntity", "upsertBatch"]
    reg = {"type": "ContextSourceRegistration", "information": [info], "mode": "exclusive", "operations": ops}
    csi = [{"key": "jsonldContext", "value": own_context}]
    r = client.post(
        f"{BASE}/csourceRegistrations", json=reg | {"endpoint": f"{source.url}/own14", "contextSourceInfo": csi}
    )
    assert r.status_code == 201, r.text
    r = client.post(f"{BASE}/entities", json={"id": eid, "type": KIND, **props(pressure=1, head=2)})
    assert r.status_code == 201, r.text
    assert client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=2)).status_code == 204
    assert client.patch(f"{BASE}/entities/{eid}/attrs/pressure", json={"value": 3}).status_code == 204
    r = client.post(f"{BASE}/entityOperations/upsert", json=[{"id": eid, "type": KIND, **props(pressure=4)}])
    assert r.status_code in (201, 204), r.text
    sent = source.at("/own14")
    got = [(s.method, s.path.removeprefix(f"/own14{BASE}"), s.body) for s in sent]
    druck = {"type": "Property", "value": 1}
    assert got == [
        ("POST", "/entities", {"id": eid, "type": "Knoten", "druck": druck}),
        ("PATCH", f"/entities/{eid}/attrs", {"druck": {"type": "Property", "value": 2}}),
        ("PATCH", f"/entities/{eid}/attrs/druck", {"value": 3}),
        (
            "POST",
            "/entityOperations/upsert",
            [{"id": eid, "type": "Knoten", "druck": {"type": "Property", "value": 4}}],
        ),
    ]
    assert all(f"<{own_context}>" in s.headers["link"] for s in sent)
    assert all(s.headers["content-type"] == "application/json" for s in sent if s.body is not None)
    assert stored(client, eid)["head"]["value"] == 2 and "pressure" not in stored(client, eid)


def test_a_source_whose_context_cannot_be_had_is_not_written_to(
    client: TestClient, source: RecordingSource, own_context: str
) -> None:
    eid = _id()
    create(client, eid, head=1)
    info = {"entities": [{"type": KIND, "id": eid}], "propertyNames": ["pressure"]}
    reg = {"type": "ContextSourceRegistration", "information": [info], "mode": "exclusive", "operations": ["updateOps"]}
    missing = own_context.replace("own.jsonld", "missing.jsonld")
    csi = [{"key": "jsonldContext", "value": missing}]
    r = client.post(
        f"{BASE}/csourceRegistrations", json=reg | {"endpoint": f"{source.url}/own15", "contextSourceInfo": csi}
    )
    assert r.status_code == 201, r.text
    r = client.patch(f"{BASE}/entities/{eid}/attrs", json=props(pressure=2, head=3))
    assert r.status_code == 207, r.text
    [failed] = r.json()["notUpdated"]
    assert failed["attributeName"] == VOCAB + "pressure" and "missing.jsonld" in failed["reason"]
    assert r.headers["NGSILD-Warning"].startswith("199 ") and source.at("/own15") == []
    assert stored(client, eid)["head"]["value"] == 3


def test_an_entity_a_source_holds_by_type_is_found_and_written_without_a_type(
    client: TestClient, source: RecordingSource
) -> None:
    """5.12: without a type selector a registration by type alone matches any id; 4.3.6.1: the source is still asked
    with its registered types only, and an entity of another type is never taken from it nor written to it: the
    broker learns the types by a Retrieve Entity first (record 0471)."""
    kind = f"Tank{uuid.uuid4().hex[:8]}"
    tank, other = f"urn:ngsi-ld:{kind}:t1", f"urn:ngsi-ld:Pump:{uuid.uuid4().hex[:8]}"
    base = f"/tp16{BASE}/entities"
    source.answers[f"GET {base}/{tank}"] = (200, {"id": tank, "type": kind, **props(level=3)})
    source.answers[f"GET {base}/{other}"] = (200, {"id": other, "type": "Pump", **props(level=9)})
    info = {"entities": [{"type": kind}]}
    reg = {"type": "ContextSourceRegistration", "information": [info], "mode": "redirect"}
    r = client.post(
        f"{BASE}/csourceRegistrations", json=reg | {"endpoint": f"{source.url}/tp16", "operations": ["redirectionOps"]}
    )
    assert r.status_code == 201, r.text
    r = client.get(f"{BASE}/entities/{tank}")
    assert r.status_code == 200 and r.json()["level"]["value"] == 3, r.text
    [asked] = source.at(f"{base}/{tank}")
    assert asked.params["type"] == kind  # the registered type, though the client named none
    assert client.get(f"{BASE}/entities/{other}").status_code == 404  # a Pump is not what it registered
    assert client.patch(f"{BASE}/entities/{tank}/attrs", json=props(level=4)).status_code == 204
    r = client.patch(f"{BASE}/entities/{other}/attrs", json=props(level=1))
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound", r.text
    assert client.delete(f"{BASE}/entities/{tank}").status_code == 204
    writes = [
        (s.method, s.path.removeprefix(base)) for s in source.received if s.path.startswith(base) and s.method != "GET"
    ]
    assert writes == [("PATCH", f"/{tank}/attrs"), ("DELETE", f"/{tank}")]  # nothing sent for the Pump


def test_a_write_without_a_type_names_the_source_that_failed_the_type_look_up(
    client: TestClient, source: RecordingSource
) -> None:
    """6.3.17: a source that could not be asked is named in an NGSILD-Warning, here the one asked a write's entity
    types (record 0471): on the 404 when nobody else holds the entity, and on the 204 when another source took it."""
    kind = f"Tank{uuid.uuid4().hex[:8]}"
    tank, ghost = f"urn:ngsi-ld:{kind}:held", f"urn:ngsi-ld:{kind}:nowhere"
    source.answers["/tw18/"] = (500, {"type": ERR + "InternalError", "title": "down"})
    reg = {"type": "ContextSourceRegistration", "mode": "redirect", "operations": ["redirectionOps"]}
    r = client.post(
        f"{BASE}/csourceRegistrations",
        json=reg | {"information": [{"entities": [{"type": kind}]}], "endpoint": f"{source.url}/tw18"},
    )
    assert r.status_code == 201, r.text
    failing = r.headers["Location"].rsplit("/", 1)[-1]
    by_id = register(client, f"{source.url}/tw18b", "redirect", {"id": tank, "type": kind}, None, ["updateOps"])
    for r in (
        client.patch(f"{BASE}/entities/{ghost}/attrs", json=props(level=1)),
        client.delete(f"{BASE}/entities/{ghost}"),
    ):
        assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound", r.text
        assert failing in r.headers.get("NGSILD-Warning", ""), r.headers
    r = client.post(f"{BASE}/entityOperations/delete", json=[ghost])  # a batch looks its entities up the same way
    assert r.status_code == 207 and r.json()["errors"][0]["error"]["type"] == ERR + "ResourceNotFound", r.text
    assert failing in " ".join(r.headers.get_list("NGSILD-Warning")), r.headers
    r = client.patch(f"{BASE}/entities/{tank}/attrs", json=props(level=2))
    assert r.status_code == 204, r.text
    warned = r.headers.get_list("NGSILD-Warning")  # other tests' registrations by type are asked too
    assert all(re.match(r'^\d{3} \S+ ".*"$', w) for w in warned), warned
    assert [w for w in warned if failing in w] and not [w for w in warned if by_id in w], warned
    assert [s.method for s in source.at("/tw18b")] == ["PATCH"]
    assert {s.method for s in source.at("/tw18/")} == {"GET"}  # asked the types only, never written to


def test_a_purge_reaches_a_source_in_its_own_terms(
    client: TestClient, source: RecordingSource, own_context: str
) -> None:
    """4.3.6.6's compaction covers the query parameters of a purge: type, drop and the names in q."""
    info = {"entities": [{"type": "Valve"}]}
    reg = {"type": "ContextSourceRegistration", "information": [info], "operations": ["purgeEntity"]}
    csi = [{"key": "jsonldContext", "value": own_context}]
    r = client.post(
        f"{BASE}/csourceRegistrations", json=reg | {"endpoint": f"{source.url}/own17", "contextSourceInfo": csi}
    )
    assert r.status_code == 201, r.text
    r = client.delete(f"{BASE}/entities", params={"type": "Valve", "drop": "head", "q": "head>0"})
    assert r.status_code == 204, r.text
    [sent] = source.at("/own17")
    assert (sent.params["type"], sent.params["drop"], sent.params["q"]) == ("Schieber", "hoehe", "hoehe>0")
    assert f"<{own_context}>" in sent.headers["link"]
