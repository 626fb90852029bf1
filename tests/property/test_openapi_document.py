"""The served OpenAPI document describes exactly the routes and query parameters of the broker.

The route walk makes the document fail the build when a route is added or removed without it; the parameter
probes do the same for query parameters (documented ones are accepted, others refused or 422 not-yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.http.openapi import MEDIA_TYPE, document_bytes
from broker.settings import Settings

BASE = "/ngsi-ld/v1"
# The operations endpoints, outside the NGSI-LD base (record 0240).
ROOT_PATHS = (
    "/health",
    "/ready",
    "/metrics",
    # the open data catalogue (record 0340) and its distributions, also outside the base
    "/catalog",
    "/catalog/context.jsonld",
    "/catalog/datasets/{dataset_id}/data.{format}",
)
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Names the broker may recognise somewhere (clause 6 of V1.9.1); each is probed on every operation.
NGSI_LD_PARAMS = {
    "q",
    "scopeQ",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "geometryProperty",
    "csf",
    "orderBy",
    "collation",
    "join",
    "joinLevel",
    "entityMap",
    "containedBy",
    "limit",
    "offset",
    "count",
    "details",
    "kind",
    "reload",
    "noSuchParameter",
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("openapi") / "agora.db"
    with TestClient(create_app(Settings(store=f"sqlite:///{path}")), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def document(api: TestClient) -> dict[str, Any]:
    response = api.get(f"{BASE}/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    doc: dict[str, Any] = response.json()
    return doc


def _template(path: str) -> str:
    """`/entities/{entity_id}` and `/entities/{entityId}` (and `{context_id:path}`) compare equal."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _base(item: dict[str, Any]) -> str:
    """Where a path of the document is served: under /ngsi-ld/v1, unless its path item names its own server (the
    operations endpoints /health, /ready, /metrics are at the root, record 0240)."""
    servers = item.get("servers")
    return servers[0]["url"].rstrip("/") if servers else BASE


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (_base(item) + _template(path), method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def _routes(api: TestClient) -> set[tuple[str, str]]:
    found = set()
    for route in api.app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route), route
        if not route.include_in_schema:  # an error or a redirect for a malformed path (an empty entity id), the
            continue  # web console's page and files (record 0400): no API resources
        assert route.path.startswith(BASE) or route.path in ("/openapi.json", *ROOT_PATHS), route.path
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                path = route.path if route.path in ROOT_PATHS else BASE + route.path.removeprefix(BASE)
                found.add((_template(path), method))
    return found


def test_the_document_is_openapi_3_served_at_both_urls(api: TestClient, document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": BASE}]
    assert "BSD-3-Clause" in document["info"]["description"]
    assert document["info"]["license"]["name"] == "BSD-3-Clause"
    alias = api.get("/openapi.json")
    assert alias.status_code == 200
    assert alias.content == api.get(f"{BASE}/openapi.json").content == document_bytes()


def test_the_document_describes_every_route_and_no_other(api: TestClient, document: dict[str, Any]) -> None:
    routes = _routes(api)
    operations = _operations(document)
    assert routes - operations == set(), "routes missing from broker/http/openapi/ngsi-ld-agora.json"
    assert operations - routes == set(), "operations the broker does not serve"


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for ref in set(walk(document)):
        assert ref.startswith("#/components/"), ref
        _, _, kind, name = ref.split("/", 3)
        assert name in document["components"][kind], ref


def _parameters(document: dict[str, Any], operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for param in operation.get("parameters", []):
        if "$ref" in param:
            param = document["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        yield param


def _query_params(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    return {param["name"] for param in _parameters(document, operation) if param["in"] == "query"}


def test_every_path_parameter_has_an_example(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for param in _parameters(document, operation):
                if param["in"] == "path":
                    assert "example" in param, f"{method.upper()} {path}: {param['name']}"


def _operation_ids() -> list[Any]:
    doc = orjson.loads(document_bytes())
    return [
        pytest.param(path, method.upper(), operation, id=f"{method.upper()} {path}")
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS and path not in STREAMS
    ]


# An accepted request opens a stream that stays open: its parameters are checked in tests/unit/test_console.py.
STREAMS = frozenset({"/agora/changes/stream"})


@pytest.mark.parametrize(("path", "method", "operation"), _operation_ids())
def test_query_parameters_are_exactly_the_documented_ones(
    api: TestClient, document: dict[str, Any], path: str, method: str, operation: dict[str, Any]
) -> None:
    """Each documented parameter is accepted; any other is refused (400), or 422 if the description names it."""
    examples = {p["name"]: p["example"] for p in _parameters(document, operation) if p["in"] == "path"}
    url = _base(document["paths"][path]) + path.format(**examples)
    documented = _query_params(document, operation)
    wrong = []
    for name in sorted(documented | NGSI_LD_PARAMS):
        response = api.request(method, url, params={name: "1"})
        assert response.status_code < 500 or response.status_code == 504, response.text
        detail = response.json().get("detail", "") if response.status_code >= 400 else ""
        refused = response.status_code == 400 and "unknown query parameter" in detail
        not_yet = response.status_code == 422 and name in detail and name in operation.get("description", "")
        if name in documented and refused:
            wrong.append(f"refuses its documented parameter {name}")
        elif name not in documented and not (refused or not_yet):
            wrong.append(f"accepts {name}, which the document does not list ({response.status_code} {detail})")
    assert wrong == [], f"{method} {path}: " + "; ".join(wrong)
