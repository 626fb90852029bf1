"""Schema-driven fuzzing: schemathesis generates requests from the served OpenAPI document, against the in-process app.

Every answer must be a non-5xx (the one 5xx bad input may cause is 504 LdContextNotAvailable, an @context that
cannot be fetched) and every error a ProblemDetails (type, title, status, detail); the answers of the temporal
routes must also have the status and headers the document gives them, and a body valid under the schema the
served document (not the bounded copy) gives it. Valid and invalid requests
(15 + 5 examples per operation), derandomized, no example database.

The requests are generated from a bounded copy of the document (see `_bounded`): the official Entity schemas
nest attributes recursively under `oneOf`, which Hypothesis turns into slow, mostly rejected generation.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft4Validator, FormatChecker
from schemathesis.checks import not_a_server_error, response_headers_conformance, status_code_conformance
from schemathesis.config import SchemathesisConfig
from starlette.applications import Starlette
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.http.openapi import document_bytes
from broker.ld.core import CORE_CONTEXT_URL
from broker.settings import Settings

BASE = "http://testserver/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
NAME = "^[A-Za-z][A-Za-z0-9]{0,8}$"
# RFC 3339 date-time (OpenAPI `format: date-time`): a four-digit year, a time zone.
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
NOTIFY_URL = "http://127.0.0.1:9/notify"  # the discard port: nothing listens there
ATTRIBUTES = ("Property", "Relationship", "GeoProperty", "LanguageProperty", "VocabularyProperty")


def _bounded(document: dict[str, Any], *, plain_names: bool) -> dict[str, Any]:
    """The document with `oneOf` read as `anyOf`, one level of sub-attributes, small arrays, objects and values,
    the core @context and a dead local notification endpoint only and, for valid requests, plain entity type and
    attribute names and a closed Subscription object (Agora refuses unknown members)."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {("anyOf" if key == "oneOf" else key): walk(value) for key, value in node.items()}
        if out.get("type") == "array":
            out.setdefault("maxItems", 3)
        if out.get("type") == "object":
            out.setdefault("maxProperties", 6)
        return out

    doc = copy.deepcopy(document)
    schemas = doc["components"]["schemas"]
    schemas["AnyValue"] = {
        "anyOf": [
            {"type": "string"},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {"type": "string"}},
        ]
    }
    schemas["SubAttribute"] = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["Property", "Relationship"]},
            "value": {"type": "string"},
            "object": {"type": "string"},
        },
    }
    # No @context but the core one (built in), no notification endpoint but a closed local port: fuzzing must not
    # make the broker fetch or post to random URLs.
    schemas["LdContext"] = {"type": "string", "enum": [CORE_CONTEXT_URL]}
    schemas["Subscription.Common"]["properties"]["jsonldContext"] = schemas["LdContext"]
    schemas["Endpoint"]["properties"]["uri"] = {"type": "string", "enum": [NOTIFY_URL]}
    if plain_names:  # so that valid requests get past the first checks (negative mode cannot negate these)
        for name in ("Entity", "EntityTemporal"):
            schemas[name]["properties"]["type"] = {"type": "string", "pattern": NAME}
        for name in ("Entity", "EntityTemporal", *ATTRIBUTES):
            schemas[name]["propertyNames"] = {"pattern": NAME}
        # Agora refuses unknown members of a subscription: one closed object instead of the allOf/oneOf family.
        members = dict(schemas["Subscription.Common"]["properties"])
        for kind in ("Subscription.OnChange", "Subscription.Periodic"):
            members.update(schemas[kind]["allOf"][1]["properties"])
        for unsupported in ("createdAt", "modifiedAt", "deletedAt", "status", "temporalQ"):
            members.pop(unsupported, None)
        members["watchedAttributes"]["items"] = {"type": "string", "pattern": NAME}
        selector = schemas["EntitySelector"]
        selector["properties"]["type"] = {"type": "string", "pattern": NAME}
        selector.update(additionalProperties=False, required=["type"])
        schemas["Subscription"] = {
            "type": "object",
            "properties": {**members, "@context": schemas["LdContext"]},
            "additionalProperties": False,
            "anyOf": [{"required": ["entities"]}, {"required": ["watchedAttributes"]}],
        }
        for name in ("Endpoint", "NotificationParams"):
            schemas[name]["additionalProperties"] = False
    for name in ATTRIBUTES:
        schemas[name]["additionalProperties"] = {"$ref": "#/components/schemas/SubAttribute"}
    return walk(doc)  # type: ignore[no-any-return]


def _schema(mode: str) -> schemathesis.BaseSchema:
    """Schemathesis over the packaged document (the bytes GET /ngsi-ld/v1/openapi.json serves), in one mode."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": 20260101,
            "generation": {"mode": mode, "deterministic": True, "database": "none"},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        }
    )
    document = _bounded(orjson.loads(document_bytes()), plain_names=mode == "positive")
    return schemathesis.openapi.from_dict(document, config=config)


# The operations endpoints (record 0240) are served outside BASE, and are no NGSI-LD resources: tests/unit covers them.
# The change feed stays open as long as its client reads (tests/e2e/test_console.py reads it).
OPERATIONS = ["/health", "/ready", "/metrics", "/agora/changes/stream"]
valid_requests = _schema("positive").exclude(path=OPERATIONS)
# Operations without any input have no invalid request.
invalid_requests = _schema("negative").exclude(path=["/info/sourceIdentity", "/openapi.json", *OPERATIONS])
# 20 requests per operation in all: 15 valid, 5 invalid; derandomized, so every run sends the same ones.
BOUNDS = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    """One broker over one SQLite file: what the requests for one operation leave is there for the next ones."""
    path: Path = tmp_path_factory.mktemp("schemathesis") / "agora.db"
    return create_app(Settings(store=f"sqlite:///{path}", context_timeout=1.0))


@pytest.fixture
def app(broker: Starlette) -> Starlette:
    """The broker, holding (again) the entity of the document's examples: a purge may have removed it.

    Schemathesis runs the app's lifespan on its first request of each test and ends it after the test.
    """
    entity = {"id": "urn:ngsi-ld:T:1", "type": "T", "speed": {"type": "Property", "value": 1}}
    with TestClient(broker) as client:
        assert client.post(f"{BASE}/entityOperations/upsert", json=[entity]).status_code in (201, 204)
    return broker


@valid_requests.parametrize()
@settings(BOUNDS, max_examples=15)
def test_valid_requests(case: Any, app: Starlette) -> None:
    _check(case, app)


@invalid_requests.parametrize()
@settings(BOUNDS, max_examples=5)
def test_invalid_requests(case: Any, app: Starlette) -> None:
    _check(case, app)


def _checks(case: Any) -> list[Any]:
    """No server error; for the temporal routes also the status and headers the document gives."""
    if case.operation.path.startswith("/temporal/"):
        return [not_a_server_error, status_code_conformance, response_headers_conformance]
    return [not_a_server_error]


@cache
def _served_schema(path: str, method: str, status: int, media: str) -> Draft4Validator | None:
    """A validator of the body the served document (not the bounded copy requests come from) gives a response."""
    document = orjson.loads(document_bytes())
    described = document["paths"][path][method.lower()]["responses"].get(str(status))
    if described is None or media not in described.get("content", {}):
        return None
    checker = FormatChecker()
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(DATETIME.match(value)))
    schema = {"components": document["components"], "allOf": [described["content"][media]["schema"]]}
    return Draft4Validator(schema, format_checker=checker)


def _conforms(case: Any, response: Any) -> None:
    """A temporal route's successful answer is what the served document says (its temporal representations are
    documented from what the broker writes)."""
    if not case.operation.path.startswith("/temporal/") or response.status_code >= 300 or not response.content:
        return
    media = response.headers.get("content-type", [""])[0].split(";")[0]
    validator = _served_schema(case.operation.path, case.operation.method, response.status_code, media)
    assert validator is not None, f"{case.operation.method} {case.operation.path}: {response.status_code} {media}"
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json())]
    assert errors == [], errors[:3]


def _check(case: Any, app: Starlette) -> None:
    """No server error (504 LdContextNotAvailable aside); every error a ProblemDetails."""
    response = case.call(app=app, base_url=BASE)
    if response.status_code == 504:
        assert response.json()["type"] == ERRORS + "LdContextNotAvailable", response.text
    else:
        case.validate_response(response, checks=_checks(case))
        _conforms(case, response)
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith("application/json"), response.headers
        problem = response.json()
        assert isinstance(problem, dict), problem
        assert set(problem) >= {"type", "title", "status", "detail"}, problem
        assert problem["status"] == response.status_code, problem
        assert problem["type"].startswith(ERRORS) or problem["type"] == "about:blank", problem
