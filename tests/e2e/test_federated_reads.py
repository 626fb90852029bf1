"""Distributed reads (clauses 4.3.6.7, 5.7.1.4, 5.7.2.4, 6.3.17; records 0182-0186): a city broker in process
asks a second Agora (the water utility, its own store, served by uvicorn on a loopback port) and a plain
Starlette context source that misbehaves on purpose (500, garbage, a hang); every answer merges local and remote
entities, and a failing source only adds an NGSILD-Warning."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings

BASE = "/ngsi-ld/v1"
CITY_ID = "urn:ngsi-ld:ContextSource:city"


@dataclass
class Federation:
    city: TestClient
    water: httpx.Client
    water_url: str
    plain_url: str


class _Served:
    """An ASGI app under uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _plain_source() -> Starlette:
    """A context source that is not Agora: /ok answers one entity, /fail 500, /garbage HTML, /hang nothing."""

    async def entities(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind == "fail":
            return JSONResponse({"title": "boom"}, status_code=500)
        if kind == "garbage":
            return Response(b"<html>no</html>", media_type="text/html")
        if kind == "invalid":
            return JSONResponse([{"id": "not a uri", "type": "Pipe"}])
        if kind == "hang":
            await asyncio.sleep(1)
        wanted = request.query_params.get("type", "Pipe")
        return JSONResponse([{"id": "urn:ngsi-ld:Pipe:plain", "type": wanted, "d": {"type": "Property", "value": 3}}])

    return Starlette(routes=[Route("/{kind}/ngsi-ld/v1/entities", entities)])


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    tmp: Path = tmp_path_factory.mktemp("federated-reads")
    water_app = create_app(Settings(store=f"sqlite:///{tmp / 'water.db'}", source_id="urn:ngsi-ld:ContextSource:w"))
    city_app = create_app(Settings(store=f"sqlite:///{tmp / 'city.db'}", source_id=CITY_ID))
    with ExitStack() as stack:
        water_url = stack.enter_context(_Served(water_app))
        plain_url = stack.enter_context(_Served(_plain_source()))
        city = stack.enter_context(TestClient(city_app))
        water = stack.enter_context(httpx.Client(base_url=water_url + BASE, timeout=10))
        yield Federation(city, water, water_url, plain_url)


def _kind() -> str:
    return f"Pipe{uuid.uuid4().hex[:8]}"


def _register(fed: Federation, kind: str, endpoint: str, **members: Any) -> str:
    reg_id = f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4().hex}"
    body = {"id": reg_id, "type": "ContextSourceRegistration", "information": [{"entities": [{"type": kind}]}]}
    r = fed.city.post(f"{BASE}/csourceRegistrations", json={**body, "endpoint": endpoint, **members})
    assert r.status_code == 201, r.text
    return reg_id


def _pipe(entity_id: str, kind: str, **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": kind, **attrs}


def _prop(value: Any, observed: str | None = None) -> dict[str, Any]:
    return {"type": "Property", "value": value, **({"observedAt": observed} if observed else {})}


def _ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


def test_a_query_merges_local_and_remote_entities(fed: Federation) -> None:
    kind = _kind()
    both, remote = f"urn:ngsi-ld:{kind}:a", f"urn:ngsi-ld:{kind}:b"
    older, newer = "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"
    r = fed.city.post(f"{BASE}/entities", json=_pipe(both, kind, flow=_prop(1, older), owner=_prop("city")))
    assert r.status_code == 201, r.text
    for body in (_pipe(both, kind, flow=_prop(2, newer), pressure=_prop(7)), _pipe(remote, kind, flow=_prop(5))):
        assert fed.water.post("/entities", json=body).status_code == 201
    _register(fed, kind, fed.water_url)

    r = fed.city.get(f"{BASE}/entities", params={"type": kind, "count": "true"})
    assert _ids(r) == [both, remote] and r.headers["NGSILD-Results-Count"] == "2"
    assert "NGSILD-Warning" not in r.headers
    merged = r.json()[0]
    assert merged["flow"]["value"] == 2  # 4.5.5.3: the most recent observedAt wins
    assert merged["owner"]["value"] == "city" and merged["pressure"]["value"] == 7
    assert _ids(fed.city.get(f"{BASE}/entities", params={"type": kind, "local": "true"})) == [both]
    page = fed.city.get(f"{BASE}/entities", params={"type": kind, "limit": "1", "offset": "1"})
    assert _ids(page) == [remote] and 'rel="prev"' in page.headers["Link"]
    posted = fed.city.post(f"{BASE}/entityOperations/query", json={"type": "Query", "entities": [{"type": kind}]})
    assert _ids(posted) == [both, remote]


def test_retrieve_reads_every_source_of_the_entity(fed: Federation) -> None:
    kind = _kind()
    entity_id = f"urn:ngsi-ld:{kind}:r"
    assert fed.water.post("/entities", json=_pipe(entity_id, kind, flow=_prop(9))).status_code == 201
    _register(fed, kind, fed.water_url)
    r = fed.city.get(f"{BASE}/entities/{entity_id}")
    assert r.status_code == 200, r.text
    assert r.json()["flow"]["value"] == 9 and r.json()["type"] == kind
    assert fed.city.get(f"{BASE}/entities/{entity_id}", params={"local": "true"}).status_code == 404
    assert fed.city.get(f"{BASE}/entities/urn:ngsi-ld:{kind}:none").status_code == 404


def test_failing_sources_give_warnings_and_the_rest_of_the_answer(fed: Federation) -> None:
    kind = _kind()
    local = f"urn:ngsi-ld:{kind}:local"
    assert fed.city.post(f"{BASE}/entities", json=_pipe(local, kind, d=_prop(1))).status_code == 201
    _register(fed, kind, f"{fed.plain_url}/ok")
    _register(fed, kind, f"{fed.plain_url}/fail")
    _register(fed, kind, f"{fed.plain_url}/garbage")
    _register(fed, kind, f"{fed.plain_url}/invalid")
    _register(fed, kind, f"{fed.plain_url}/hang", management={"timeout": 300})
    _register(fed, kind, "http://127.0.0.1:9")
    started = time.monotonic()
    r = fed.city.get(f"{BASE}/entities", params={"type": kind})
    assert time.monotonic() - started < 0.9  # the hanging source was cut at its 300 ms timeout
    assert _ids(r) == sorted([local, "urn:ngsi-ld:Pipe:plain"])  # the merged answer is in id order
    codes = sorted(w.split()[0] for w in r.headers.get_list("NGSILD-Warning"))
    assert codes == ["111", "111", "199", "199", "299"]  # garbage, invalid; hang, unreachable; the 500


def test_local_and_a_loop_skip_the_sources(fed: Federation) -> None:
    kind = _kind()
    _register(fed, kind, f"{fed.plain_url}/ok")
    assert _ids(fed.city.get(f"{BASE}/entities", params={"type": kind, "local": "true"})) == []
    assert "urn:ngsi-ld:Pipe:plain" not in _ids(fed.city.get(f"{BASE}/entities", params={"type": "*"}))  # local too
    looped = fed.city.get(f"{BASE}/entities", params={"type": kind}, headers={"Via": f"1.1 {CITY_ID}"})
    assert _ids(looped) == [] and looped.headers["NGSILD-Warning"].startswith("199 ")


def test_csf_chooses_the_registrations(fed: Federation) -> None:
    kind = _kind()
    _register(fed, kind, f"{fed.plain_url}/ok", registrationName="water")
    query = {"type": kind, "csf": 'registrationName=="transport"'}
    assert _ids(fed.city.get(f"{BASE}/entities", params=query)) == []
    query["csf"] = 'registrationName=="water"'
    assert _ids(fed.city.get(f"{BASE}/entities", params=query)) == ["urn:ngsi-ld:Pipe:plain"]


def test_an_entity_map_pages_across_sources(fed: Federation) -> None:
    kind = _kind()
    local_ids = [f"urn:ngsi-ld:{kind}:l{i}" for i in range(3)]
    remote_ids = [f"urn:ngsi-ld:{kind}:r{i}" for i in range(3)]
    for entity_id in local_ids:
        assert fed.city.post(f"{BASE}/entities", json=_pipe(entity_id, kind, d=_prop(1))).status_code == 201
    for entity_id in remote_ids:
        assert fed.water.post("/entities", json=_pipe(entity_id, kind, d=_prop(2))).status_code == 201
    reg_id = _register(fed, kind, fed.water_url)
    params = {"type": kind, "limit": "4", "entityMap": "true", "count": "true"}
    first = fed.city.get(f"{BASE}/entities", params=params)
    assert first.status_code == 201, first.text
    assert [e["id"] for e in first.json()] == local_ids + remote_ids[:1]
    assert first.headers["NGSILD-Results-Count"] == "6"
    map_path = first.headers["NGSILD-EntityMap"]
    # an entity created at the source after the map was made does not shift the second page
    assert fed.water.post("/entities", json=_pipe(f"urn:ngsi-ld:{kind}:a0", kind)).status_code == 201
    second = fed.city.get(
        f"{BASE}/entities", params={"type": kind, "limit": "4", "offset": "4"}, headers={"NGSILD-EntityMap": map_path}
    )
    assert [e["id"] for e in _ok(second)] == remote_ids[1:]
    document = fed.city.get(map_path).json()
    assert document["entityMap"][local_ids[0]] == ["@none"] and document["entityMap"][remote_ids[0]] == [reg_id]


def _ok(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_discovery_unites_local_and_remote_types_and_attributes(fed: Federation) -> None:
    kind, other = _kind(), _kind()
    assert fed.city.post(f"{BASE}/entities", json=_pipe(f"urn:ngsi-ld:{kind}:c", kind, d=_prop(1))).status_code == 201
    remote = _pipe(f"urn:ngsi-ld:{kind}:w", kind, d=_prop(2), flowRate=_prop(3))
    assert fed.water.post("/entities", json=remote).status_code == 201
    assert fed.water.post("/entities", json=_pipe(f"urn:ngsi-ld:{other}:w", other)).status_code == 201
    _register(fed, kind, fed.water_url)
    names = fed.city.get(f"{BASE}/types").json()["typeList"]
    assert kind in names and other not in names  # the registration offers `kind` only (4.3.6.1)
    info = fed.city.get(f"{BASE}/types/{kind}").json()
    assert info["entityCount"] == 2
    assert {d["attributeName"] for d in info["attributeDetails"]} == {"d", "flowRate"}
    assert fed.city.get(f"{BASE}/attributes/flowRate").json()["typeNames"] == [kind]
    assert fed.city.get(f"{BASE}/attributes/flowRate", params={"local": "true"}).status_code == 404


def test_temporal_reads_merge_the_history_of_the_sources(fed: Federation) -> None:
    kind = _kind()
    entity_id = f"urn:ngsi-ld:{kind}:t"
    local = _pipe(entity_id, kind, flow=_prop(1, "2026-01-01T00:00:00Z"))
    assert fed.city.post(f"{BASE}/entities", json=local).status_code == 201
    remote = _pipe(entity_id, kind, flow=_prop(2, "2026-02-01T00:00:00Z"))
    assert fed.water.post("/entities", json=remote).status_code == 201
    assert fed.water.patch(f"/entities/{entity_id}/attrs", json={"flow": _prop(3, "2026-03-01T00:00:00Z")}).is_success
    history = {"observationInterval": {"startAt": "2000-01-01T00:00:00Z"}}  # Table 5.2.9-1: a source of history
    _register(fed, kind, fed.water_url, operations=["retrieveTemporal", "queryTemporal"], **history)
    when = {"timerel": "after", "timeAt": "2025-01-01T00:00:00Z"}
    r = fed.city.get(f"{BASE}/temporal/entities/{entity_id}", params=when)
    assert r.status_code == 200, r.text
    assert [i["value"] for i in r.json()["flow"]] == [1, 2, 3]  # one history, oldest first
    last = fed.city.get(f"{BASE}/temporal/entities/{entity_id}", params={**when, "lastN": "2"}).json()
    assert [i["value"] for i in last["flow"]] == [2, 3]
    found = fed.city.get(f"{BASE}/temporal/entities", params={**when, "type": kind})
    assert [len(e["flow"]) for e in _ok(found)] == [3]
    alone = fed.city.get(f"{BASE}/temporal/entities/{entity_id}", params={**when, "local": "true"}).json()
    assert alone["flow"]["value"] == 1  # one instance: shown as an object
    # the same registration serves no current-state read (Table 5.2.9-1: it is a source of history)
    assert fed.city.get(f"{BASE}/entities/{entity_id}").json()["flow"]["value"] == 1


def test_split_entities_are_filtered_after_the_merge(fed: Federation) -> None:
    kind = _kind()
    entity_id = f"urn:ngsi-ld:{kind}:s"
    assert fed.city.post(f"{BASE}/entities", json=_pipe(entity_id, kind, flow=_prop(5))).status_code == 201
    assert fed.water.post("/entities", json=_pipe(entity_id, kind, pressure=_prop(7))).status_code == 201
    _register(fed, kind, fed.water_url)
    both = {"type": kind, "q": "flow>1;pressure>1"}
    assert _ids(fed.city.get(f"{BASE}/entities", params=both)) == []  # each side alone fails the q
    split = fed.city.get(f"{BASE}/entities", params={**both, "splitEntities": "true", "count": "true"})
    assert _ids(split) == [entity_id] and split.headers["NGSILD-Results-Count"] == "1"
    assert _ids(fed.city.get(f"{BASE}/entities", params={**both, "q": "flow>9", "splitEntities": "true"})) == []
    mapped = fed.city.get(f"{BASE}/entities", params={**both, "splitEntities": "true", "entityMap": "true"})
    assert mapped.status_code == 201 and [e["id"] for e in mapped.json()] == [entity_id]
    again = {**both, "splitEntities": "true"}
    page = fed.city.get(
        f"{BASE}/entities", params=again, headers={"NGSILD-EntityMap": mapped.headers["NGSILD-EntityMap"]}
    )
    assert _ids(page) == [entity_id]


def test_a_cascade_relays_the_warnings_of_deeper_sources(fed: Federation) -> None:
    kind = _kind()
    entity_id = f"urn:ngsi-ld:{kind}:deep"
    assert fed.water.post("/entities", json=_pipe(entity_id, kind, d=_prop(1))).status_code == 201
    body = {"type": "ContextSourceRegistration", "information": [{"entities": [{"type": kind}]}]}
    assert fed.water.post("/csourceRegistrations", json={**body, "endpoint": "http://127.0.0.1:9"}).status_code == 201
    _register(fed, kind, fed.water_url)
    r = fed.city.get(f"{BASE}/entities", params={"type": kind})
    assert _ids(r) == [entity_id]
    assert any(w.startswith("199 127.0.0.1:9 ") for w in r.headers.get_list("NGSILD-Warning"))  # the water's own


def test_a_temporal_entity_map_holds_the_sources_entities(fed: Federation) -> None:
    kind = _kind()
    here, there = f"urn:ngsi-ld:{kind}:h", f"urn:ngsi-ld:{kind}:w"
    assert fed.city.post(f"{BASE}/entities", json=_pipe(here, kind, flow=_prop(1, "2026-01-01T00:00:00Z"))).is_success
    assert fed.water.post("/entities", json=_pipe(there, kind, flow=_prop(2, "2026-02-01T00:00:00Z"))).is_success
    history = {"observationInterval": {"startAt": "2000-01-01T00:00:00Z"}}
    reg_id = _register(fed, kind, fed.water_url, operations=["queryTemporal"], **history)
    query = {"type": kind, "timerel": "after", "timeAt": "2025-01-01T00:00:00Z", "limit": "1"}
    first = fed.city.get(f"{BASE}/temporal/entities", params={**query, "entityMap": "true", "count": "true"})
    assert first.status_code == 201, first.text
    assert [e["id"] for e in first.json()] == [here] and first.headers["NGSILD-Results-Count"] == "2"
    map_path = first.headers["NGSILD-EntityMap"]
    second = fed.city.get(
        f"{BASE}/temporal/entities", params={**query, "offset": "1"}, headers={"NGSILD-EntityMap": map_path}
    )
    assert [e["id"] for e in _ok(second)] == [there]
    assert fed.city.get(map_path).json()["entityMap"] == {here: ["@none"], there: [reg_id]}
