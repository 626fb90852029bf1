"""Bad input of every kind gets a precise NGSI-LD error, never a 500 (hypothesis against the in-process app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
attr_names = st.sampled_from(["speed", "location", "name", "a b", "@id", "type", "urn:x:y", "ü", ""])
attribute = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["Property", "Relationship", "GeoProperty", "LanguageProperty", "X"])},
        optional={
            "value": json_values,
            "object": st.sampled_from(["urn:a:b", "nope", 3]),
            "languageMap": json_values,
            "datasetId": st.sampled_from(["urn:d:1", "bad id"]),
            "observedAt": st.sampled_from(["2026-01-01T00:00:00Z", "never"]),
        },
    ),
)
entities = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2", "bad", 5]),
        "type": st.sampled_from(["T", ["T", "U"], [], 3, "a=b"]),
        "scope": st.sampled_from(["/a/b", "x", ["/a"]]),
    },
).flatmap(lambda head: st.dictionaries(attr_names, attribute, max_size=4).map(lambda attrs: {**head, **attrs}))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "agora.db"
    with TestClient(create_app(Settings(store=f"sqlite:///{path}")), raise_server_exceptions=False) as client:
        yield client


def _check(response: Any) -> None:
    """No 500; the one 5xx bad input may cause is 504, an @context that cannot be fetched (clause 6.3.2)."""
    assert response.status_code < 500 or (
        response.status_code == 504 and response.json()["type"] == ERRORS + "LdContextNotAvailable"
    ), response.text
    if response.status_code >= 400:
        problem = response.json()
        assert set(problem) >= {"type", "title", "status", "detail"}
        assert problem["type"].startswith(ERRORS) or problem["type"] == "about:blank"


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.one_of(entities, json_values))
def test_create_never_fails_with_500(api: TestClient, body: Any) -> None:
    _check(api.post(f"{BASE}/entities", json=body))


@FUZZ
@given(
    body=st.one_of(entities, json_values),
    target=st.sampled_from(["", "/attrs", "/attrs/speed"]),
    method=st.sampled_from(["PATCH", "PUT", "POST"]),
)
def test_updates_never_fail_with_500(api: TestClient, body: Any, target: str, method: str) -> None:
    api.post(f"{BASE}/entities", json={"id": "urn:ngsi-ld:T:1", "type": "T", "speed": 1})
    _check(api.request(method, f"{BASE}/entities/urn:ngsi-ld:T:1{target}", json=body))


@FUZZ
@given(
    body=st.one_of(st.lists(entities, max_size=4), json_values),
    op=st.sampled_from(["create", "upsert", "update", "merge", "delete"]),
)
def test_batches_never_fail_with_500(api: TestClient, body: Any, op: str) -> None:
    _check(api.post(f"{BASE}/entityOperations/{op}", json=body))


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "options",
                "format",
                "attrs",
                "lang",
                "id",
                "idPattern",
                "limit",
                "offset",
                "count",
                "local",
                "datasetId",
                "deleteAll",
                "x",
            ]
        ),
        st.text(max_size=12),
        max_size=4,
    ),
    path=st.sampled_from(["/entities", "/entities/urn:ngsi-ld:T:1", "/entities/urn:ngsi-ld:T:1/attrs/speed"]),
    method=st.sampled_from(["GET", "DELETE"]),
)
def test_parameters_never_fail_with_500(api: TestClient, params: dict[str, str], path: str, method: str) -> None:
    _check(api.request(method, BASE + path, params=params))


@FUZZ
@given(
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Link": st.sampled_from(
                ["<x>", '<http://127.0.0.1:1/c>; rel="http://www.w3.org/ns/json-ld#context"', "garbage"]
            ),
            "Accept": st.text(max_size=30),
            "NGSILD-Tenant": st.text(max_size=10),
            "Content-Type": st.sampled_from(["application/json", "application/ld+json", "text/plain", ""]),
        },
    ),
    body=st.binary(max_size=50),
)
def test_headers_never_fail_with_500(api: TestClient, headers: dict[str, str], body: bytes) -> None:
    safe = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
    _check(api.post(f"{BASE}/entities", content=body, headers=safe))
    _check(api.get(f"{BASE}/entities/urn:ngsi-ld:T:1", headers=safe))
