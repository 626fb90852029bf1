"""Bad input of every kind gets a precise NGSI-LD error, never a 500 (hypothesis against the in-process app)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings
from broker.temporal.aggregate import METHODS

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
                "timerel",
                "timeAt",
                "lastN",
                "aggrMethods",
                "x",
            ]
        ),
        st.text(max_size=12),
        max_size=4,
    ),
    path=st.sampled_from(
        [
            "/entities",
            "/entities/urn:ngsi-ld:T:1",
            "/entities/urn:ngsi-ld:T:1/attrs/speed",
            "/temporal/entities",
            "/temporal/entities/urn:ngsi-ld:T:1",
            "/temporal/entities/urn:ngsi-ld:T:1/attrs/speed",
            "/temporal/entities/urn:ngsi-ld:T:1/attrs/speed/urn:ngsi-ld:instance:1",
        ]
    ),
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


# -- the temporal API (clauses 6.18 to 6.22, 6.24) -----------------------------------------------------------------
T = f"{BASE}/temporal/entities"
HISTORY = "urn:ngsi-ld:TS:1"
# Any DateTime of years 1 to 9999, in UTC or at the widest offsets (so that some fall outside years 1 to 9999 in
# UTC), and text that is not one.
instants = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]),
    ).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.sampled_from(["2026-03-01T00:00:00Z", "2026-03-01T00:00:00", "2026-03-01", "noon", ""]),
)
durations = st.one_of(
    st.from_regex(
        r"\AP(\d{1,5}Y)?(\d{1,6}M)?(\d{1,4}W)?(\d{1,12}D)?(T(\d{1,3}H)?(\d{1,3}M)?(\d{1,25}(\.\d{1,3})?S)?)?\Z"
    ),
    st.text(max_size=6),
)
temporal_attrs = st.sampled_from(["temperature", "status", "owner", "name", "temperature,status", "nope", "", "a{b}"])
# Mostly well-formed temporal queries and representations (so that requests get past the checks to the reading
# and the rendering), some ill-formed ones.
time_queries = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"timerel": st.sampled_from(["before", "after"]), "timeAt": instants}),
    st.fixed_dictionaries({"timerel": st.just("between"), "timeAt": instants, "endTimeAt": instants}),
    st.fixed_dictionaries(
        {},
        optional={
            "timerel": st.sampled_from(["before", "after", "between", "during"]),
            "timeAt": instants,
            "endTimeAt": instants,
        },
    ),
)
aggregations = st.fixed_dictionaries(
    {
        "format": st.just("aggregatedValues"),
        "aggrMethods": st.lists(st.sampled_from([*METHODS, "median"]), min_size=1, max_size=3).map(",".join),
    },
    optional={"aggrPeriodDuration": durations},
)
representations = st.one_of(
    st.just({}),
    aggregations,
    st.fixed_dictionaries({"format": st.sampled_from(["normalized", "temporalValues", "simplified", "concise"])}),
    st.fixed_dictionaries(
        {"options": st.sampled_from(["sysAttrs", "temporalValues", "aggregatedValues,sysAttrs", "keyValues", "x"])}
    ),
)
view_params = st.fixed_dictionaries(
    {},
    optional={
        "timeproperty": st.sampled_from(["observedAt", "createdAt", "modifiedAt", "deletedAt", "seenAt"]),
        "lastN": st.sampled_from(["1", "2", "1000000000", "0", "x"]),
        "attrs": temporal_attrs,
        "pick": temporal_attrs,
        "omit": temporal_attrs,
        "datasetId": st.sampled_from(["urn:ds:a", "@none", "urn:ds:a,@none", "bad id", ""]),
        "options": st.sampled_from(["sysAttrs", "temporalValues"]),
        "lang": st.sampled_from(["en", "fr", "*", "en,fr;q=0.5", "", "@none", "e n"]),
    },
)
temporal_params = st.tuples(time_queries, representations, view_params).map(
    lambda parts: {k: v for part in parts for k, v in part.items()}
)
query_params = st.fixed_dictionaries(
    {},
    optional={
        "q": st.sampled_from(["temperature>1", 'status=="ok"', "owner==urn:p:1", "(", "temperature>"]),
        "limit": st.sampled_from(["0", "1", "2", "x"]),
        "offset": st.sampled_from(["0", "1", "x"]),
        "count": st.sampled_from(["true", "false", "x"]),
    },
)


def _instance(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


@pytest.fixture(scope="module")
def history(api: TestClient) -> str:
    """One temporal entity whose history holds every kind of value, datasetIds, and instants at the ends of the
    DateTime range as observedAt; written with offsets that take them past it in UTC they are refused as observedAt
    (test_temporal_http.py) and kept here as string values."""
    edges = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"]
    past_the_range = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-14:00"]
    body = {
        "id": HISTORY,
        "type": "TS",
        "temperature": [
            *(_instance(n, f"2026-03-01T{n:02d}:00:00Z") for n in range(4)),
            *(_instance(n, at) for n, at in enumerate(edges)),
            _instance(7.5, "2026-03-01T01:00:00Z", datasetId="urn:ds:a"),
            {"type": "Property", "value": 3},
        ],
        "status": [
            _instance(v, f"2026-03-0{n + 1}T00:00:00Z")
            for n, v in enumerate(["ok", "alarm", *edges, *past_the_range, True])
        ],
        "owner": [{"type": "Relationship", "object": f"urn:p:{n}", "observedAt": at} for n, at in enumerate(edges)],
        "name": [
            {
                "type": "LanguageProperty",
                "languageMap": {"en": "one", "fr": "un"},
                "observedAt": "2026-03-01T00:00:00Z",
            },
            {"type": "LanguageProperty", "languageMap": {"@none": "x"}, "observedAt": "2026-03-02T00:00:00Z"},
        ],
        "tags": [_instance(["a", "b"], "2026-03-01T00:00:00Z"), _instance([], "2026-03-02T00:00:00Z")],
    }
    response = api.post(T, json=body)
    assert response.status_code in (201, 204), response.text
    return HISTORY


@FUZZ
@given(params=temporal_params)
def test_temporal_retrieval_never_fails_with_500(api: TestClient, history: str, params: dict[str, str]) -> None:
    _check(api.get(f"{T}/{history}", params=params))


@FUZZ
@given(
    params=st.tuples(temporal_params, query_params).map(lambda parts: {**parts[0], **parts[1]}),
    selector=st.sampled_from([{"type": "TS"}, {"id": HISTORY}, {"idPattern": ".*"}]),
)
def test_temporal_queries_never_fail_with_500(
    api: TestClient, history: str, params: dict[str, str], selector: dict[str, str]
) -> None:
    _check(api.get(T, params={**selector, **params}))
    time = {k: params.pop(k) for k in ("timerel", "timeAt", "endTimeAt", "timeproperty") if k in params}
    body: dict[str, Any] = {"type": "Query", "entities": [selector], "temporalQ": time}
    for member in ("q", "attrs", "pick", "omit"):
        if member in params:
            body[member] = params.pop(member)
    _check(api.post(f"{BASE}/temporal/entityOperations/query", json=body, params=params))


temporal_entities = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from([HISTORY, "urn:ngsi-ld:TS:2", "bad", 5]),
        "type": st.sampled_from(["TS", ["TS", "U"], [], 3]),
        "scope": st.sampled_from(["/a/b", "x"]),
    },
).flatmap(
    lambda head: st.dictionaries(attr_names, st.one_of(attribute, st.lists(attribute, max_size=3)), max_size=3).map(
        lambda attrs: {**head, **attrs}
    )
)


@FUZZ
@given(
    body=st.one_of(temporal_entities, json_values),
    target=st.sampled_from(["", f"/{HISTORY}/attrs", f"/{HISTORY}/attrs/speed/urn:ngsi-ld:instance:1", "/bad/attrs"]),
)
def test_temporal_writes_never_fail_with_500(api: TestClient, history: str, body: Any, target: str) -> None:
    method = "PATCH" if target.count("/") == 4 else "POST"
    _check(api.request(method, T + target, json=body))


well_formed_queries = st.fixed_dictionaries(
    {
        "type": st.just("Query"),
        "entities": st.sampled_from([[{"type": "TS"}], [{"id": HISTORY}], [{"type": "TS", "idPattern": ".*"}]]),
        "temporalQ": st.one_of(
            st.fixed_dictionaries({"timerel": st.sampled_from(["before", "after"]), "timeAt": instants}),
            st.fixed_dictionaries({"timerel": st.just("between"), "timeAt": instants, "endTimeAt": instants}),
        ),
    },
    optional={
        "attrs": st.sampled_from([["temperature"], ["status", "owner"], "name"]),
        "q": st.sampled_from(["temperature>1", 'status=="ok"']),
        "lang": st.sampled_from(["en", "*"]),
    },
)
query_bodies = st.one_of(
    json_values,
    well_formed_queries,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["Query", "Query", "X"])},
        optional={
            "entities": st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "type": st.sampled_from(["TS", "a=b", ""]),
                            "id": st.sampled_from([HISTORY, "bad", 3]),
                            "idPattern": st.sampled_from([".*", "("]),
                        },
                    ),
                    max_size=2,
                ),
                json_values,
            ),
            "temporalQ": st.one_of(time_queries, json_values),
            "attrs": st.one_of(temporal_attrs, st.lists(st.sampled_from(["temperature", "", "a b"]), max_size=2)),
            "pick": temporal_attrs,
            "q": st.one_of(st.sampled_from(["temperature>1", "(", 'status=="ok"']), json_values),
            "geoQ": st.one_of(
                st.just({"geometry": "Point", "coordinates": [8.6, 49.4], "georel": "near;maxDistance==10"}),
                json_values,
            ),
            "scopeQ": st.sampled_from(["/a", "(", ""]),
            "lang": st.sampled_from(["en", "*", "", 3]),
            "local": st.sampled_from([True, "yes"]),
            "csf": st.just("x"),
        },
    ),
)


@FUZZ
@given(body=query_bodies, params=representations)
def test_temporal_query_bodies_never_fail_with_500(
    api: TestClient, history: str, body: Any, params: dict[str, str]
) -> None:
    _check(api.post(f"{BASE}/temporal/entityOperations/query", json=body, params=params))


path_segments = st.lists(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12).map(lambda s: quote(s, safe="")),
    min_size=1,
    max_size=4,
) | st.lists(st.sampled_from(["%2F", "%2f", "%25", "%", "%ZZ", "%FF", "%C3", "..", "a%2Fb%252F"]), min_size=1)


@FUZZ
@given(
    segments=path_segments,
    prefix=st.sampled_from(["/entities/", "/entities/urn:ngsi-ld:T:1/attrs/", "/temporal/entities/", "/types/"]),
    method=st.sampled_from(["GET", "PATCH", "DELETE"]),
)
def test_percent_encoded_paths_never_fail(api: TestClient, segments: list[str], prefix: str, method: str) -> None:
    """Encoded slashes, percents and broken escapes in the path (broker/http/paths.py): a 4xx, never a 500."""
    path = BASE + prefix + "/".join(segments)
    body = b'{"value": 1}' if method == "PATCH" else None
    _check(api.request(method, path, content=body, headers={"Content-Type": "application/json"}))
