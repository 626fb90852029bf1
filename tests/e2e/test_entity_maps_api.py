"""Entity maps and ordering over HTTP, on every store backend, each behind two real `agora serve` processes sharing
it (one for memory://, which is process-local): clauses 5.14, 6.32, 6.34 (entity maps), 5.5.9.3 (paging with an
entity map), 4.23 and 5.7.2.4 (orderBy, collation), 4.9 (csf). Decision records 0014 to 0019."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
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
    tmp: Path = tmp_path_factory.mktemp(f"maps-{request.param}")
    with ExitStack() as stack:
        url = store_url_for(request.param, tmp, stack)
        first = stack.enter_context(running_broker(url, tmp))
        second = first if request.param == "memory" else stack.enter_context(running_broker(url, tmp))
        a = stack.enter_context(httpx.Client(base_url=first.url + BASE, timeout=30))
        b = stack.enter_context(httpx.Client(base_url=second.url + BASE, timeout=30))
        yield Brokers(a, b)


def fleet(http: httpx.Client, n: int, **extra: Any) -> str:
    """n vehicles of a fresh type, with speeds n-1 .. 0 (so id order is the reverse of speed order)."""
    kind = f"Car{uuid.uuid4().hex[:8]}"
    batch = [
        {"id": f"urn:ngsi-ld:{kind}:{i:03d}", "type": kind, "speed": {"type": "Property", "value": n - 1 - i}, **extra}
        for i in range(n)
    ]
    r = http.post("/entityOperations/create", json=batch)
    assert r.status_code == 201, r.text
    return kind


def short(response: httpx.Response) -> list[int]:
    assert response.status_code in (200, 201), response.text
    return [int(e["id"].rsplit(":", 1)[1]) for e in response.json()]


def map_path(response: httpx.Response) -> str:
    location = response.headers["NGSILD-EntityMap"]
    assert location.startswith(f"{BASE}/entityMaps/urn:ngsi-ld:EntityMap:"), location
    return location.removeprefix(BASE)


def next_link(response: httpx.Response) -> str | None:
    for link in response.headers.get_list("link"):
        if 'rel="next"' in link:
            return link[1 : link.index(">")].removeprefix(BASE)
    return None


def test_paging_with_an_entity_map_is_stable(brokers: Brokers) -> None:
    """The first page makes the map (201); later pages read it (200), on another process too, and neither a
    created nor a deleted entity shifts them; the next link points after the last position read."""
    kind = fleet(brokers.a, 10)
    first = brokers.a.get("/entities", params={"type": kind, "limit": 4, "entityMap": "true"})
    assert first.status_code == 201 and short(first) == [0, 1, 2, 3]
    header = {"NGSILD-EntityMap": first.headers["NGSILD-EntityMap"]}
    brokers.a.delete(f"/entities/urn:ngsi-ld:{kind}:001").raise_for_status()
    brokers.a.delete(f"/entities/urn:ngsi-ld:{kind}:005").raise_for_status()
    created = {"id": f"urn:ngsi-ld:{kind}:000a", "type": kind, "speed": {"type": "Property", "value": 1}}
    assert brokers.a.post("/entities", json=created).status_code == 201
    second = brokers.b.get("/entities", params={"type": kind, "limit": 4, "offset": 4}, headers=header)
    assert second.status_code == 200 and second.headers["NGSILD-EntityMap"] == header["NGSILD-EntityMap"]
    assert short(second) == [4, 6, 7, 8]  # 5 is gone: the page is filled from the positions after it
    follow = next_link(second)
    assert follow is not None and "offset=9" in follow
    third = brokers.b.get(follow, headers=header)
    assert short(third) == [9] and next_link(third) is None
    # Without the map the same query sees the new entity and no longer the deleted ones.
    assert "000a" in {e["id"].rsplit(":", 1)[1] for e in brokers.a.get("/entities", params={"type": kind}).json()}


def test_filters_are_checked_again_and_count(brokers: Brokers) -> None:
    kind = fleet(brokers.a, 6)
    made = brokers.a.get("/entities", params={"type": kind, "q": "speed>=1", "limit": 2, "entityMap": "true"})
    assert short(made) == [0, 1]
    header = {"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]}
    patch = {"speed": {"type": "Property", "value": 0}}
    assert brokers.a.patch(f"/entities/urn:ngsi-ld:{kind}:002/attrs", json=patch).status_code == 204
    again = brokers.b.get(
        "/entities", params={"type": kind, "q": "speed>=1", "limit": 2, "offset": 2, "count": "true"}, headers=header
    )
    assert short(again) == [3, 4]  # 2 no longer matches; 5 (speed 0) never was in the map
    assert again.headers["NGSILD-Results-Count"] == "4"


def test_post_query_with_an_entity_map(brokers: Brokers) -> None:
    kind = fleet(brokers.a, 5)
    query = {"type": "Query", "entities": [{"type": kind}], "q": "speed<4"}
    made = brokers.a.post("/entityOperations/query", params={"limit": 2, "entityMap": "true"}, json=query)
    assert made.status_code == 201 and short(made) == [1, 2]
    header = {"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]}
    rest = brokers.b.post("/entityOperations/query", params={"limit": 2, "offset": 2}, json=query, headers=header)
    assert rest.status_code == 200 and short(rest) == [3, 4]


def test_entity_map_resource(brokers: Brokers) -> None:
    kind = fleet(brokers.a, 3)
    made = brokers.a.get("/entityMaps", params={"type": kind, "orderBy": "speed", "local": "true"})
    assert made.status_code == 201, made.text
    body = made.json()
    path = map_path(made)
    assert body["type"] == "EntityMap" and path.endswith(body["id"])
    assert list(body["entityMap"]) == [f"urn:ngsi-ld:{kind}:{i:03d}" for i in (2, 1, 0)]
    assert all(v == ["@none"] for v in body["entityMap"].values())
    got = brokers.b.get(path)
    assert got.status_code == 200 and got.json() == body
    assert brokers.b.patch(path, json={"expiresAt": "2099-01-01T00:00:00Z", "entityMap": {}}).status_code == 204
    later = brokers.a.get(path).json()
    assert later["expiresAt"] > body["expiresAt"] and later["entityMap"] == body["entityMap"]
    posted = brokers.b.post("/entityMaps", json={"type": "Query", "entities": [{"type": kind}], "q": "speed==1"})
    assert posted.status_code == 201 and list(posted.json()["entityMap"]) == [f"urn:ngsi-ld:{kind}:001"]
    assert brokers.a.delete(path).status_code == 204
    gone = brokers.b.get(path)
    assert gone.status_code == 404 and gone.json()["type"] == ERR + "ResourceNotFound"
    assert brokers.b.delete(path).status_code == 404
    assert brokers.b.patch(path, json={"expiresAt": "2099-01-01T00:00:00Z"}).status_code == 404


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("DELETE", None), ("PATCH", {"expiresAt": "2099-01-01T00:00:00Z"})],
)
def test_a_bad_map_id_is_bad_request_data(brokers: Brokers, method: str, body: Any) -> None:
    r = brokers.a.request(method, "/entityMaps/not-a-uri", json=body)
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"


@pytest.mark.parametrize(
    "fragment",
    [[], {"expiresAt": "tomorrow"}, {"expiresAt": 3}, {"color": "red", "expiresAt": "2099-01-01T00:00:00Z"}, {}],
)
def test_a_bad_fragment_is_bad_request_data(brokers: Brokers, fragment: Any) -> None:
    made = brokers.a.get("/entityMaps", params={"type": "Anything"})
    r = brokers.a.patch(map_path(made), json=fragment)
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData", r.text


def test_expiry_and_unknown_maps(brokers: Brokers) -> None:
    """An expired map is gone (404); a query naming an unknown or expired map gets a new one (clause 5.7.2.4)."""
    kind = fleet(brokers.a, 3)
    made = brokers.a.get("/entities", params={"type": kind, "entityMap": "true", "entityMapLifetime": "PT1S"})
    assert made.status_code == 201
    time.sleep(1.2)
    assert brokers.b.get(map_path(made)).status_code == 404
    header = {"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]}
    again = brokers.b.get("/entities", params={"type": kind}, headers=header)
    assert again.status_code == 201 and short(again) == [0, 1, 2]
    assert again.headers["NGSILD-EntityMap"] != header["NGSILD-EntityMap"]
    bad = brokers.a.get("/entities", params={"type": kind}, headers={"NGSILD-EntityMap": "no uri"})
    assert bad.status_code == 400 and bad.json()["type"] == ERR + "BadRequestData"
    wrong = brokers.a.get("/entities", params={"type": kind, "entityMap": "true", "entityMapLifetime": "soon"})
    assert wrong.status_code == 400


def test_order_by_on_every_backend(brokers: Brokers) -> None:
    kind = fleet(brokers.a, 5)
    up = brokers.b.get("/entities", params={"type": kind, "orderBy": "speed", "local": "true"})
    assert short(up) == [4, 3, 2, 1, 0]
    down = brokers.b.get("/entities", params={"type": kind, "orderBy": "speed;desc", "local": "true", "limit": 2})
    assert short(down) == [0, 1]
    page = brokers.b.get(next_link(down) or "")
    assert short(page) == [2, 3]
    query = {"type": "Query", "entities": [{"type": kind}], "orderBy": "speed", "local": True}
    assert short(brokers.a.post("/entityOperations/query", json=query)) == [4, 3, 2, 1, 0]
    # 5.7.2.4 refuses orderBy only when the execution is not limited to the local scope: in Agora, which holds no
    # registrations, it always is (record 0101, revising 0018)
    assert short(brokers.a.get("/entities", params={"type": kind, "orderBy": "speed"})) == [4, 3, 2, 1, 0]


def test_collation_orders_strings(brokers: Brokers) -> None:
    kind = f"Word{uuid.uuid4().hex[:8]}"
    words = ["beta", "Alpha", "alpha", "Émile", "zeta", "emile"]
    batch = [
        {"id": f"urn:ngsi-ld:{kind}:{i}", "type": kind, "w": {"type": "Property", "value": w}}
        for i, w in enumerate(words)
    ]
    assert brokers.a.post("/entityOperations/create", json=batch).status_code == 201

    def ordered(**params: str) -> list[str]:
        r = brokers.b.get("/entities", params={"type": kind, "orderBy": "w", "local": "true", **params})
        assert r.status_code == 200, r.text
        return [e["w"]["value"] for e in r.json()]

    # ICU root collation by default: case and accents come after the letters, not by code point.
    assert ordered() == ["alpha", "Alpha", "beta", "emile", "Émile", "zeta"]
    assert ordered(collation="und-x-icu") == ordered()
    assert ordered(collation="en-u-ks-level1") == ["Alpha", "alpha", "beta", "Émile", "emile", "zeta"]
    for tag, status, problem in (("sv", 422, "OperationNotSupported"), ("not a tag!", 400, "BadRequestData")):
        r = brokers.b.get("/entities", params={"type": kind, "orderBy": "w", "local": "true", "collation": tag})
        assert r.status_code == status and r.json()["type"] == ERR + problem


def test_csf_selects_no_context_source(brokers: Brokers) -> None:
    kind = fleet(brokers.a, 2)
    assert short(brokers.b.get("/entities", params={"type": kind, "csf": 'endpoint=="x"'})) == [0, 1]
    bad = brokers.b.get("/entities", params={"type": kind, "csf": "a=="})
    assert bad.status_code == 400 and "csf" in bad.json()["detail"]


def test_purge_with_an_entity_map(brokers: Brokers) -> None:
    """DELETE /entities with the NGSILD-EntityMap header purges only the map's entities (Table 6.4.3.3-2)."""
    kind = fleet(brokers.a, 4)
    made = brokers.a.get("/entities", params={"type": kind, "q": "speed>=2", "entityMap": "true"})
    assert short(made) == [0, 1]
    header = {"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]}
    late = {"id": f"urn:ngsi-ld:{kind}:009", "type": kind, "speed": {"type": "Property", "value": 7}}
    assert brokers.a.post("/entities", json=late).status_code == 201
    purged = brokers.b.delete("/entities", params={"type": kind, "q": "speed>=2", "csf": "a==1"}, headers=header)
    assert purged.status_code == 204 and purged.headers["NGSILD-EntityMap"] == header["NGSILD-EntityMap"]
    assert short(brokers.a.get("/entities", params={"type": kind})) == [2, 3, 9]
    unknown = {"NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:unknown"}
    gone = brokers.b.delete("/entities", params={"type": kind}, headers=unknown)
    assert gone.status_code == 404 and gone.json()["type"] == ERR + "ResourceNotFound"
    assert short(brokers.a.get("/entities", params={"type": kind})) == [2, 3, 9]
