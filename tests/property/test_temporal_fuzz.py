"""Temporal queries and temporal entity maps never answer 500 (hypothesis against the in-process app): every query
parameter of GET /temporal/entities (Table 6.18.3.2-1, orderBy and collation too) and GET /temporal/entityMaps
(6.35.3.1), the entity map parameters and header, q and geo-queries whose instances are filtered one by one
(decision record 0071).

The history, the app and the representation strategies are those of tests/property/test_http_fuzz.py (its `api`
and `history` fixtures are imported by name, which is how pytest finds them, hence F811 on the tests' arguments)."""

# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.property.test_http_fuzz import (  # noqa: F401 - api and history are fixtures used by name
    FUZZ,
    HISTORY,
    T,
    _check,
    api,
    history,
    temporal_params,
)

BASE = "/ngsi-ld/v1"
selection = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["TS", "TS,U", "TS;U", "*", "", "(TS|U)", "a b"]),
        "id": st.sampled_from([HISTORY, f"{HISTORY},urn:ngsi-ld:TS:2", "bad id", ""]),
        "idPattern": st.sampled_from([".*", "TS:1$", "(", ""]),
        "q": st.sampled_from(
            [
                "temperature>1",
                'temperature==0..2;status=="ok"',
                'temperature<2|name=="one"',
                "status~=a.*",
                "temperature.observedAt>=2026-03-01T01:00:00Z",
                'tags[0]=="a"',
                "owner{name}==1",
                "owner==urn:p:1",
                "nope",
                "(",
                "temperature>",
            ]
        ),
        "scopeQ": st.sampled_from(["/a", "/a/#", "(", ""]),
        "georel": st.sampled_from(["near;maxDistance==2000", "within", "intersects", "far"]),
        "geometry": st.sampled_from(["Point", "Polygon", "Blob"]),
        "coordinates": st.sampled_from(["[4.85,45.75]", "[[[0,0],[1,0],[1,1],[0,0]]]", "[x]"]),
        "geoproperty": st.sampled_from(["location", "temperature", "a{b}"]),
        "expandValues": st.sampled_from(["status", "", "a b"]),
        "local": st.sampled_from(["true", "false", "x"]),
        "limit": st.sampled_from(["0", "1", "2", "x", "-1"]),
        "offset": st.sampled_from(["0", "1", "5", "x"]),
        "count": st.sampled_from(["true", "false"]),
        "entityMap": st.sampled_from(["true", "false", "x"]),
        "entityMapLifetime": st.sampled_from(["PT1M", "PT0S", "P1M", "x", ""]),
        "orderBy": st.sampled_from(["id", "id;desc", "id;", "temperature", "", "id,id"]),
        "collation": st.sampled_from(["und", "en-u-ks-level1", "sv", "x y", ""]),
        "csf": st.sampled_from(["a==1", "(", ""]),
        "jsonKeys": st.sampled_from(["status", "", "@id"]),
        "splitEntities": st.sampled_from(["true", "false", "x"]),
    },
)
map_headers = st.sampled_from(
    [
        {},
        {"NGSILD-EntityMap": "urn:ngsi-ld:EntityMap:gone"},
        {"NGSILD-EntityMap": "not a uri"},
        {"NGSILD-EntityMap": ""},
    ]
)


@FUZZ
@given(params=st.tuples(temporal_params, selection).map(lambda p: {**p[0], **p[1]}), headers=map_headers)
def test_temporal_queries_and_maps_never_fail_with_500(
    api: TestClient, history: str, params: dict[str, str], headers: dict[str, str]
) -> None:
    _check(api.get(T, params=params, headers=headers))
    _check(api.get(f"{BASE}/temporal/entityMaps", params=params))


@FUZZ
@given(params=temporal_params, selector=st.sampled_from([{"type": "TS"}, {"id": HISTORY}]), extra=selection)
def test_temporal_post_queries_and_maps_never_fail_with_500(
    api: TestClient, history: str, params: dict[str, str], selector: dict[str, str], extra: dict[str, str]
) -> None:
    time = {k: params.pop(k) for k in ("timerel", "timeAt", "endTimeAt", "timeproperty") if k in params}
    body: dict[str, Any] = {"type": "Query", "entities": [selector], "temporalQ": time}
    for member in ("q", "scopeQ", "orderBy", "csf"):
        if member in extra:
            body[member] = extra[member]
    url = {k: v for k, v in params.items() if k not in ("attrs", "pick", "omit")}
    for member in ("entityMap", "entityMapLifetime", "limit", "count"):
        if member in extra:
            url[member] = extra[member]
    _check(api.post(f"{BASE}/temporal/entityOperations/query", json=body, params=url))
    _check(api.post(f"{BASE}/temporal/entityMaps", json=body, params=url))


def test_a_map_made_by_a_query_pages_it(api: TestClient, history: str) -> None:
    """The happy path the fuzzing goes around: a map of the one history, then its page through the header."""
    window = {"type": "TS", "timerel": "after", "timeAt": "2026-03-01T00:00:00Z", "q": "temperature>=2"}
    made = api.get(f"{BASE}/temporal/entityMaps", params=window)
    assert made.status_code == 201, made.text
    page = api.get(T, params=window, headers={"NGSILD-EntityMap": made.headers["NGSILD-EntityMap"]})
    assert page.status_code == 200, page.text
    (doc,) = page.json()
    assert [i["value"] for i in doc["temperature"]] == [7.5, 2, 3]  # 7.5: dataset urn:ds:a
