"""The temporal API end to end against a real server (clauses 6.18 to 6.22, 6.24; 4.5.7-4.5.9, 4.5.19, 4.11)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import BrokerProcess, running_broker

BASE = "/ngsi-ld/v1"
T = f"{BASE}/temporal/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def uid(kind: str = "Sensor") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:12]}"


def temp(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


def hour(h: int) -> str:
    return f"2026-03-01T{h:02d}:00:00Z"


@pytest.fixture
def tenant_http(broker_server: BrokerProcess) -> Iterator[httpx.Client]:
    """A client in a tenant of its own, so that type queries see only this test's entities."""
    tenant = "t" + uuid.uuid4().hex[:10]
    with httpx.Client(base_url=broker_server.url, timeout=10, headers={"NGSILD-Tenant": tenant}) as c:
        yield c


def error_type(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix(ERR)


def create_history(http: httpx.Client, eid: str, values: list[float], start_hour: int = 0) -> None:
    r = http.post(
        f"{BASE}/entities", json={"id": eid, "type": "Sensor", "temperature": temp(values[0], hour(start_hour))}
    )
    assert r.status_code == 201, r.text
    for n, v in enumerate(values[1:], start=1):
        r = http.patch(f"{BASE}/entities/{eid}/attrs", json={"temperature": temp(v, hour(start_hour + n))})
        assert r.status_code == 204, r.text


# -- history recorded from the entity API ------------------------------------------------------------------------
def test_entity_writes_become_temporal_instances(tenant_http: httpx.Client) -> None:
    eid = uid()
    create_history(tenant_http, eid, [10, 11, 12])
    r = tenant_http.get(f"{T}/{eid}")
    assert r.status_code == 200, r.text
    instances = r.json()["temperature"]
    assert [i["value"] for i in instances] == [10, 11, 12]
    assert [i["observedAt"] for i in instances] == [hour(0), hour(1), hour(2)]
    assert len({i["instanceId"] for i in instances}) == 3
    assert all("createdAt" not in i for i in instances)
    with_sys = tenant_http.get(f"{T}/{eid}", params={"options": "sysAttrs"}).json()
    assert all("createdAt" in i and "modifiedAt" in i for i in with_sys["temperature"])
    assert "createdAt" in with_sys


def test_unchanged_attributes_record_nothing_new(tenant_http: httpx.Client) -> None:
    eid = uid()
    body = {"id": eid, "type": "Sensor", "a": temp(1, hour(0)), "b": {"type": "Property", "value": "x"}}
    assert tenant_http.post(f"{BASE}/entities", json=body).status_code == 201
    assert tenant_http.patch(f"{BASE}/entities/{eid}/attrs", json={"a": temp(2, hour(1))}).status_code == 204
    doc = tenant_http.get(f"{T}/{eid}").json()
    assert len(doc["a"]) == 2
    assert isinstance(doc["b"], dict) and doc["b"]["value"] == "x"  # one instance: an object, not an array


def test_deleted_attribute_and_entity_leave_deletion_instances(tenant_http: httpx.Client) -> None:
    eid = uid()
    body = {"id": eid, "type": "Sensor", "a": temp(1, hour(0)), "b": {"type": "Relationship", "object": "urn:x:1"}}
    assert tenant_http.post(f"{BASE}/entities", json=body).status_code == 201
    assert tenant_http.delete(f"{BASE}/entities/{eid}/attrs/a").status_code == 204
    assert tenant_http.delete(f"{BASE}/entities/{eid}").status_code == 204
    doc = tenant_http.get(f"{T}/{eid}").json()
    assert doc["a"][-1]["value"] == "urn:ngsi-ld:null" and "deletedAt" in doc["a"][-1]
    assert doc["b"][-1]["object"] == "urn:ngsi-ld:null" and "deletedAt" in doc["b"][-1]
    deleted = tenant_http.get(
        f"{T}/{eid}", params={"timerel": "after", "timeAt": "2000-01-01T00:00:00Z", "timeproperty": "deletedAt"}
    ).json()
    assert {k for k in deleted if k not in ("id", "type")} == {"a", "b"}


# -- Create or Update Temporal Evolution (6.18.3.1), Add attributes (6.20) -----------------------------------------
def test_upsert_creates_then_adds(tenant_http: httpx.Client) -> None:
    eid = uid()
    body = {"id": eid, "type": "Sensor", "temperature": [temp(1, hour(1)), temp(2, hour(2))]}
    r = tenant_http.post(T, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"{T}/{eid}"
    r = tenant_http.post(T, json={"id": eid, "type": "Sensor", "temperature": temp(0, hour(0))})
    assert r.status_code == 204, r.text
    values = [i["value"] for i in tenant_http.get(f"{T}/{eid}").json()["temperature"]]
    assert values == [0, 1, 2]  # ordered by observedAt, not by arrival
    # the temporal entity exists without a current entity
    assert tenant_http.get(f"{BASE}/entities/{eid}").status_code == 404


def test_add_attributes(tenant_http: httpx.Client) -> None:
    eid = uid()
    assert tenant_http.post(T, json={"id": eid, "type": "Sensor", "temperature": temp(1, hour(1))}).status_code == 201
    r = tenant_http.post(f"{T}/{eid}/attrs", json={"humidity": [temp(50, hour(1)), temp(55, hour(2))]})
    assert r.status_code == 204, r.text
    doc = tenant_http.get(f"{T}/{eid}").json()
    assert [i["value"] for i in doc["humidity"]] == [50, 55]
    missing = tenant_http.post(f"{T}/{uid()}/attrs", json={"humidity": temp(1, hour(1))})
    assert missing.status_code == 404 and error_type(missing) == "ResourceNotFound"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"type": "Sensor", "t": {"type": "Property", "value": 1}},  # no id
        {"id": "not a uri", "type": "Sensor"},
        {"id": "urn:x:1"},  # no type on creation
        {"id": "urn:x:1", "type": "Sensor", "t": []},
        {"id": "urn:x:1", "type": "Sensor", "t": [1, 2]},
        {"id": "urn:x:1", "type": "Sensor", "t": {"type": "Property"}},
        {"id": "urn:x:1", "type": "Sensor", "t": {"type": "Property", "value": 1, "observedAt": "yesterday"}},
    ],
)
def test_bad_temporal_entities_are_refused(tenant_http: httpx.Client, body: Any) -> None:
    r = tenant_http.post(T, json=body)
    assert r.status_code == 400, r.text
    assert error_type(r) == "BadRequestData"


# -- Retrieve (6.19.3.1) ------------------------------------------------------------------------------------------
def test_retrieve_time_window_lastn_and_attrs(tenant_http: httpx.Client) -> None:
    eid = uid()
    create_history(tenant_http, eid, [10, 11, 12, 13, 14])

    def values(**params: str) -> list[Any]:
        r = tenant_http.get(f"{T}/{eid}", params=params)
        assert r.status_code == 200, r.text
        found = r.json().get("temperature", [])
        return [i["value"] for i in (found if isinstance(found, list) else [found])]

    assert values(timerel="before", timeAt=hour(2)) == [10, 11]  # exclusive bound
    assert values(timerel="after", timeAt=hour(3)) == [13, 14]  # inclusive bound
    assert values(timerel="between", timeAt=hour(1), endTimeAt=hour(3)) == [11, 12]
    assert values(lastN="2") == [13, 14]
    assert values(timerel="before", timeAt=hour(4), lastN="2") == [12, 13]
    assert values(timerel="after", timeAt=hour(9)) == []
    assert values(attrs="humidity") == []
    assert values(pick="temperature") == [10, 11, 12, 13, 14]


def test_retrieve_unknown_entity_is_404(tenant_http: httpx.Client) -> None:
    tenant_http.post(T, json={"id": uid(), "type": "Sensor", "t": temp(1, hour(0))})
    r = tenant_http.get(f"{T}/{uid()}")
    assert r.status_code == 404 and error_type(r) == "ResourceNotFound"


@pytest.mark.parametrize(
    "params",
    [
        {"timerel": "during", "timeAt": hour(1)},
        {"timerel": "before"},
        {"timerel": "between", "timeAt": hour(1)},
        {"timerel": "between", "timeAt": hour(3), "endTimeAt": hour(1)},
        {"timerel": "after", "timeAt": "noon"},
        {"timeAt": hour(1)},
        {"timeproperty": "seenAt"},
        {"lastN": "0"},
        {"lastN": "x"},
        {"format": "aggregatedValues"},
        {"format": "aggregatedValues", "aggrMethods": "median"},
        {"format": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "1 hour"},
        {"aggrMethods": "avg"},
        {"options": "temporalValues,aggregatedValues"},
        {"pick": "rel{a}"},
        {"unknown": "1"},
    ],
)
def test_bad_temporal_parameters(tenant_http: httpx.Client, params: dict[str, str]) -> None:
    eid = uid()
    tenant_http.post(T, json={"id": eid, "type": "Sensor", "t": temp(1, hour(0))})
    r = tenant_http.get(f"{T}/{eid}", params=params)
    assert r.status_code == 400, (params, r.text)
    # a parameter the operation does not take is InvalidRequest (clause 6.3.2 table, commit 7319bf2)
    assert error_type(r) == ("InvalidRequest" if "unknown" in params else "BadRequestData")


def test_simplified_representation(tenant_http: httpx.Client) -> None:
    eid = uid()
    body = {
        "id": eid,
        "type": "Sensor",
        "temperature": [temp(1, hour(1)), temp(2, hour(2))],
        "owner": [{"type": "Relationship", "object": "urn:p:1", "observedAt": hour(1)}],
        "name": [{"type": "LanguageProperty", "languageMap": {"en": "one"}, "observedAt": hour(1)}],
        "flow": [temp(5, hour(1), datasetId="urn:ds:a"), temp(6, hour(1), datasetId="urn:ds:b")],
    }
    assert tenant_http.post(T, json=body).status_code == 201
    for params in ({"format": "temporalValues"}, {"options": "temporalValues"}, {"format": "simplified"}):
        doc = tenant_http.get(f"{T}/{eid}", params=params).json()
        assert doc["temperature"] == {"type": "Property", "values": [[1, hour(1)], [2, hour(2)]]}
        assert doc["owner"] == {"type": "Relationship", "objects": [["urn:p:1", hour(1)]]}
        assert doc["name"] == {"type": "LanguageProperty", "languageMaps": [[{"languageMap": {"en": "one"}}, hour(1)]]}
        assert sorted(doc["flow"], key=lambda g: g["datasetId"]) == [
            {"type": "Property", "values": [[5, hour(1)]], "datasetId": "urn:ds:a"},
            {"type": "Property", "values": [[6, hour(1)]], "datasetId": "urn:ds:b"},
        ]


def test_aggregated_representation(tenant_http: httpx.Client) -> None:
    eid = uid()
    create_history(tenant_http, eid, [1, 2, 3, 4, 5, 6])
    r = tenant_http.get(
        f"{T}/{eid}",
        params={
            "format": "aggregatedValues",
            "aggrMethods": "totalCount,sum,avg,min,max,sumsq,distinctCount,stddev",
            "aggrPeriodDuration": "PT2H",
            "timerel": "between",
            "timeAt": hour(0),
            "endTimeAt": hour(6),
        },
    )
    assert r.status_code == 200, r.text
    agg = r.json()["temperature"]
    assert agg["type"] == "Property"
    assert [row[0] for row in agg["totalCount"]] == [2, 2, 2]
    assert [row[0] for row in agg["sum"]] == [3, 7, 11]
    assert [row[0] for row in agg["avg"]] == [1.5, 3.5, 5.5]
    assert [row[0] for row in agg["min"]] == [1, 3, 5]
    assert [row[0] for row in agg["max"]] == [2, 4, 6]
    assert [row[0] for row in agg["sumsq"]] == [5, 25, 61]
    assert [row[0] for row in agg["stddev"]] == [0.5, 0.5, 0.5]
    assert [row[1][:13] for row in agg["sum"]] == ["2026-03-01T00", "2026-03-01T02", "2026-03-01T04"]
    assert [row[2][:13] for row in agg["sum"]] == ["2026-03-01T02", "2026-03-01T04", "2026-03-01T06"]
    whole = tenant_http.get(
        f"{T}/{eid}", params={"format": "aggregatedValues", "aggrMethods": "max,min", "aggrPeriodDuration": "PT0S"}
    ).json()["temperature"]
    assert [row[0] for row in whole["max"]] == [6] and [row[0] for row in whole["min"]] == [1]


def test_whole_range_period_bounds(tenant_http: httpx.Client) -> None:
    """Record 0122: without aggrPeriodDuration one period spans the range of the temporal query, written as clients
    write DateTimes; a range without an end of its own ends at its last instance, a range without a start begins
    at its first."""
    eid = uid()
    create_history(tenant_http, eid, [1, 2, 3], start_hour=1)
    cases = (
        ({"timerel": "between", "timeAt": hour(0), "endTimeAt": hour(6)}, [6, hour(0), hour(6)]),
        ({"timerel": "after", "timeAt": hour(0)}, [6, hour(0), hour(3)]),
        ({"timerel": "before", "timeAt": hour(6)}, [6, hour(1), hour(6)]),
        ({}, [6, hour(1), hour(3)]),
    )
    for params, row in cases:
        r = tenant_http.get(f"{T}/{eid}", params={"format": "aggregatedValues", "aggrMethods": "sum", **params})
        assert r.status_code == 200, r.text
        assert r.json()["temperature"]["sum"] == [row], params


def test_aggregations_of_strings_and_relationships(tenant_http: httpx.Client) -> None:
    eid = uid()
    body = {
        "id": eid,
        "type": "Sensor",
        "status": [
            {"type": "Property", "value": "ok", "observedAt": hour(1)},
            {"type": "Property", "value": "alarm", "observedAt": hour(2)},
            {"type": "Property", "value": "ok", "observedAt": hour(3)},
        ],
        "owner": [{"type": "Relationship", "object": f"urn:p:{n % 2}", "observedAt": hour(n)} for n in range(3)],
    }
    assert tenant_http.post(T, json=body).status_code == 201
    doc = tenant_http.get(
        f"{T}/{eid}", params={"format": "aggregatedValues", "aggrMethods": "min,max,distinctCount,totalCount,avg"}
    ).json()
    assert [r[0] for r in doc["status"]["min"]] == ["alarm"]
    assert [r[0] for r in doc["status"]["max"]] == ["ok"]
    assert [r[0] for r in doc["status"]["distinctCount"]] == [2]
    assert [r[0] for r in doc["status"]["avg"]] == [None]
    assert doc["owner"]["type"] == "Relationship"
    assert [r[0] for r in doc["owner"]["distinctCount"]] == [2]
    assert [r[0] for r in doc["owner"]["totalCount"]] == [3]
    # Table 4.5.19.1-3: min and max do not apply to a Relationship's targets (null; refused when it is named).
    assert [r[0] for r in doc["owner"]["min"]] == [None] and [r[0] for r in doc["owner"]["max"]] == [None]
    named = tenant_http.get(f"{T}/{eid}", params={"format": "aggregatedValues", "aggrMethods": "max", "attrs": "owner"})
    assert named.status_code == 400 and named.json()["type"].endswith("InvalidRequest"), named.text


# -- Query (6.18.3.2, 6.24) ---------------------------------------------------------------------------------------
def test_query_by_type_and_q(tenant_http: httpx.Client) -> None:
    hot, cold = uid(), uid()
    create_history(tenant_http, hot, [20, 30, 40])
    create_history(tenant_http, cold, [0, 1, 2])
    tenant_http.post(T, json={"id": uid("Car"), "type": "Car", "temperature": temp(99, hour(1))})
    window = {"timerel": "after", "timeAt": hour(0)}
    r = tenant_http.get(T, params={"type": "Sensor", **window, "count": "true"})
    assert r.status_code == 200, r.text
    assert sorted(e["id"] for e in r.json()) == sorted([hot, cold])
    assert r.headers["NGSILD-Results-Count"] == "2"
    r = tenant_http.get(T, params={"type": "Sensor", "q": "temperature>35", **window})
    assert [e["id"] for e in r.json()] == [hot]
    # the q condition is checked against the instances in the interval only
    r = tenant_http.get(T, params={"type": "Sensor", "q": "temperature>35", "timerel": "before", "timeAt": hour(2)})
    assert r.json() == []
    r = tenant_http.get(T, params={"type": "Sensor", "timerel": "after", "timeAt": hour(5)})
    assert r.json() == []  # nothing in the interval: no entity


def test_query_needs_temporal_query_and_a_selector(tenant_http: httpx.Client) -> None:
    assert error_type(tenant_http.get(T, params={"type": "Sensor"})) == "BadRequestData"
    r = tenant_http.get(T, params={"timerel": "after", "timeAt": hour(0)})
    assert r.status_code == 400 and error_type(r) == "BadRequestData"


def test_query_paging_links(tenant_http: httpx.Client) -> None:
    for _ in range(3):
        tenant_http.post(T, json={"id": uid(), "type": "Sensor", "t": temp(1, hour(1))})
    r = tenant_http.get(T, params={"type": "Sensor", "timerel": "after", "timeAt": hour(0), "limit": "2"})
    assert len(r.json()) == 2 and 'rel="next"' in r.headers["Link"]
    r = tenant_http.get(
        T, params={"type": "Sensor", "timerel": "after", "timeAt": hour(0), "limit": "2", "offset": "2"}
    )
    assert len(r.json()) == 1 and 'rel="prev"' in r.headers["Link"]


def test_post_query(tenant_http: httpx.Client) -> None:
    eid = uid()
    create_history(tenant_http, eid, [1, 2, 3])
    body = {
        "type": "Query",
        "entities": [{"type": "Sensor"}],
        "temporalQ": {"timerel": "before", "timeAt": hour(2)},
        "attrs": ["temperature"],
    }
    r = tenant_http.post(f"{BASE}/temporal/entityOperations/query", json=body, params={"format": "temporalValues"})
    assert r.status_code == 200, r.text
    assert r.json()[0]["temperature"]["values"] == [[1, hour(0)], [2, hour(1)]]
    r = tenant_http.post(f"{BASE}/temporal/entityOperations/query", json={**body, "temporalQ": {"when": "now"}})
    assert r.status_code == 400


def test_post_query_temporal_q_takes_last_n_and_aggregations(tenant_http: httpx.Client) -> None:
    """Table 5.2.21-1 (V1.9.1): a TemporalQuery has lastN, aggrMethods and aggrPeriodDuration besides the time."""
    eid = uid()
    create_history(tenant_http, eid, [1, 2, 3])
    url = f"{BASE}/temporal/entityOperations/query"
    body: dict[str, Any] = {"type": "Query", "entities": [{"type": "Sensor"}]}
    r = tenant_http.post(url, json={**body, "temporalQ": {"timerel": "after", "timeAt": hour(0), "lastN": 2}})
    assert r.status_code == 200, r.text
    assert [i["value"] for i in r.json()[0]["temperature"]] == [2, 3]
    aggregated = {"timerel": "between", "timeAt": hour(0), "endTimeAt": hour(4), "aggrMethods": ["sum", "max"]}
    r = tenant_http.post(
        url,
        json={**body, "temporalQ": {**aggregated, "aggrPeriodDuration": "PT2H"}},
        params={"format": "aggregatedValues"},
    )
    assert r.status_code == 200, r.text
    assert r.json()[0]["temperature"]["sum"] == [[3, hour(0), hour(2)], [3, hour(2), hour(4)]]
    assert [row[0] for row in r.json()[0]["temperature"]["max"]] == [2, 3]
    for bad in ({"lastN": 0}, {"lastN": "x"}, {"lastN": True}, {"aggrMethods": 3}):
        temporal_q = {"timerel": "after", "timeAt": hour(0), **bad}
        r = tenant_http.post(url, json={**body, "temporalQ": temporal_q}, params={"format": "aggregatedValues"})
        assert r.status_code == 400, (bad, r.text)
    r = tenant_http.post(
        url, json={**body, "temporalQ": {"timerel": "after", "timeAt": hour(0), "lastN": 2}}, params={"lastN": "1"}
    )
    assert r.status_code == 400, r.text


# -- Delete and correct (6.19.3.2, 6.21, 6.22) --------------------------------------------------------------------
def test_delete_attribute_instances(tenant_http: httpx.Client) -> None:
    eid = uid()
    body = {
        "id": eid,
        "type": "Sensor",
        "flow": [temp(1, hour(1)), temp(2, hour(1), datasetId="urn:ds:a"), temp(3, hour(2), datasetId="urn:ds:a")],
        "t": temp(1, hour(1)),
    }
    assert tenant_http.post(T, json=body).status_code == 201
    r = tenant_http.delete(f"{T}/{eid}/attrs/flow", params={"datasetId": "urn:ds:a"})
    assert r.status_code == 204, r.text
    assert [i["value"] for i in _as_list(tenant_http.get(f"{T}/{eid}").json()["flow"])] == [1]
    assert tenant_http.delete(f"{T}/{eid}/attrs/flow", params={"datasetId": "urn:ds:a"}).status_code == 404
    assert tenant_http.delete(f"{T}/{eid}/attrs/flow", params={"deleteAll": "true"}).status_code == 204
    assert "flow" not in tenant_http.get(f"{T}/{eid}").json()
    bad = tenant_http.delete(f"{T}/{eid}/attrs/t", params={"deleteAll": "true", "datasetId": "urn:ds:a"})
    assert bad.status_code == 400


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_modify_and_delete_one_instance(tenant_http: httpx.Client) -> None:
    eid = uid()
    assert (
        tenant_http.post(T, json={"id": eid, "type": "Sensor", "t": [temp(1, hour(1)), temp(2, hour(2))]}).status_code
        == 201
    )
    first, second = tenant_http.get(f"{T}/{eid}").json()["t"]
    r = tenant_http.patch(f"{T}/{eid}/attrs/t/{first['instanceId']}", json={"t": temp(100, hour(1))})
    assert r.status_code == 204, r.text
    doc = tenant_http.get(f"{T}/{eid}").json()["t"]
    assert [(i["value"], i["instanceId"]) for i in doc] == [(100, first["instanceId"]), (2, second["instanceId"])]
    assert (
        tenant_http.patch(f"{T}/{eid}/attrs/t/urn:ngsi-ld:instance:nope", json={"t": temp(1, hour(1))}).status_code
        == 404
    )
    assert (
        tenant_http.patch(f"{T}/{eid}/attrs/t/{first['instanceId']}", json={"other": temp(1, hour(1))}).status_code
        == 400
    )
    assert tenant_http.delete(f"{T}/{eid}/attrs/t/{second['instanceId']}").status_code == 204
    assert tenant_http.delete(f"{T}/{eid}/attrs/t/{second['instanceId']}").status_code == 404
    assert [i["value"] for i in _as_list(tenant_http.get(f"{T}/{eid}").json()["t"])] == [100]


def test_modify_instance_looks_up_the_target_before_reading_the_fragment(tenant_http: httpx.Client) -> None:
    """Clauses 5.6.14.4 and 6.22.3.1: an unknown entity, attribute or instance is ResourceNotFound (404) whatever
    the body holds; the body is an EntityTemporal Fragment, which may repeat the entity's id and type."""
    eid = uid()
    assert tenant_http.post(T, json={"id": eid, "type": "Sensor", "t": [temp(1, hour(1))]}).status_code == 201
    (only,) = _as_list(tenant_http.get(f"{T}/{eid}").json()["t"])
    path = f"attrs/t/{only['instanceId']}"
    for target, body in (
        (f"{T}/{uid()}/{path}", {"t": [temp(5, hour(1))]}),
        (f"{T}/{uid()}/{path}", {"other": [temp(5, hour(1))]}),
        (f"{T}/{eid}/attrs/absent/{only['instanceId']}", {"t": [temp(5, hour(1))]}),
        (f"{T}/{eid}/attrs/t/urn:ngsi-ld:instance:none", {"t": [temp(5, hour(1))]}),
    ):
        r = tenant_http.patch(target, json=body)
        assert r.status_code == 404 and error_type(r) == "ResourceNotFound", (target, r.text)
    fragment = {"id": eid, "type": "Sensor", "t": [temp(7, hour(1))]}
    assert tenant_http.patch(f"{T}/{eid}/{path}", json=fragment).status_code == 204
    assert [i["value"] for i in _as_list(tenant_http.get(f"{T}/{eid}").json()["t"])] == [7]
    for body in ({**fragment, "id": uid()}, {"t": [temp(1, hour(1)), temp(2, hour(2))]}, {"t": 3}):
        r = tenant_http.patch(f"{T}/{eid}/{path}", json=body)
        assert r.status_code == 400 and error_type(r) == "BadRequestData", (body, r.text)


def test_temporal_values_of_a_list_relationship_are_uris(tenant_http: httpx.Client) -> None:
    """Clause 4.5.9: each objectLists pair holds "an ordered array of Relationship objects (URIs)"."""
    eid = uid()
    members = {
        "type": "ListRelationship",
        "objectList": [{"object": "urn:a"}, {"object": "urn:b"}],
        "observedAt": hour(1),
    }
    assert tenant_http.post(T, json={"id": eid, "type": "Sensor", "m": [members]}).status_code == 201
    r = tenant_http.get(f"{T}/{eid}", params={"format": "temporalValues"})
    assert r.status_code == 200, r.text
    assert r.json()["m"] == {"type": "ListRelationship", "objectLists": [[["urn:a", "urn:b"], hour(1)]]}


def test_delete_temporal_entity(tenant_http: httpx.Client) -> None:
    eid = uid()
    create_history(tenant_http, eid, [1, 2])
    assert tenant_http.delete(f"{T}/{eid}").status_code == 204
    assert tenant_http.get(f"{T}/{eid}").status_code == 404
    assert tenant_http.delete(f"{T}/{eid}").status_code == 404
    # the current entity is not touched by deleting its history
    assert tenant_http.get(f"{BASE}/entities/{eid}").status_code == 200


def test_unknown_tenant(broker_server: BrokerProcess) -> None:
    with httpx.Client(base_url=broker_server.url, headers={"NGSILD-Tenant": "nobody" + uuid.uuid4().hex}) as c:
        r = c.get(f"{T}/{uid()}")
        assert r.status_code == 404 and error_type(r) == "NonexistentTenant"


# -- settings: instance limit (206), history off, history deleted with the entity ---------------------------------
@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp: Path = tmp_path_factory.mktemp("temporal-limit")
    env = {"AGORA_TEMPORAL_INSTANCE_LIMIT": "3", "AGORA_HISTORY_ON_DELETE": "delete"}
    with running_broker(f"sqlite:///{tmp / 'a.db'}", tmp, extra_env=env) as broker:
        yield broker


def test_partial_content_pages_forward_and_backward(small_limit: BrokerProcess) -> None:
    eid = uid()
    with httpx.Client(base_url=small_limit.url) as http:
        assert http.post(T, json={"id": eid, "type": "S", "t": [temp(n, hour(n)) for n in range(8)]}).status_code == 201
        r = http.get(f"{T}/{eid}", params={"timerel": "after", "timeAt": hour(0)})
        assert r.status_code == 206, r.text
        assert [i["value"] for i in r.json()["t"]] == [0, 1, 2]
        assert r.headers["Content-Range"] == "date-time 2026-03-01T00:00:00Z-2026-03-01T02:00:00Z/*"
        r = http.get(f"{T}/{eid}", params={"timerel": "after", "timeAt": hour(3)})
        assert r.status_code == 206 and [i["value"] for i in r.json()["t"]] == [3, 4, 5]
        r = http.get(f"{T}/{eid}", params={"timerel": "after", "timeAt": hour(6)})
        assert r.status_code == 200 and [i["value"] for i in r.json()["t"]] == [6, 7]
        r = http.get(f"{T}/{eid}", params={"lastN": "5"})
        assert r.status_code == 206
        assert [i["value"] for i in r.json()["t"]] == [5, 6, 7]
        assert r.headers["Content-Range"].endswith("/5")


def test_history_deleted_with_the_entity_when_configured(small_limit: BrokerProcess) -> None:
    eid = uid()
    with httpx.Client(base_url=small_limit.url) as http:
        create_history(http, eid, [1, 2])
        assert http.get(f"{T}/{eid}").status_code == 200
        assert http.delete(f"{BASE}/entities/{eid}").status_code == 204
        assert http.get(f"{T}/{eid}").status_code == 404


def test_history_off(tmp_path: Path) -> None:
    env = {"AGORA_HISTORY": "false"}
    with (
        running_broker(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, extra_env=env) as broker,
        httpx.Client(base_url=broker.url) as http,
    ):
        eid = uid()
        create_history(http, eid, [1, 2])
        assert http.get(f"{T}/{eid}").status_code == 404
        assert http.post(T, json={"id": eid, "type": "S", "t": temp(1, hour(0))}).status_code == 201
        assert len(_as_list(http.get(f"{T}/{eid}").json()["t"])) == 1


def test_lang_shows_language_properties_in_one_language(tenant_http: httpx.Client) -> None:
    eid = uid()
    names = [
        {"type": "LanguageProperty", "languageMap": {"en": "stop", "fr": "arrêt"}, "observedAt": hour(1)},
        {"type": "LanguageProperty", "languageMap": {"en": "halt", "fr": "halte"}, "observedAt": hour(2)},
    ]
    assert tenant_http.post(T, json={"id": eid, "type": "Sensor", "name": names}).status_code == 201
    doc = tenant_http.get(f"{T}/{eid}", params={"lang": "fr"}).json()
    assert [(i["type"], i["value"], i["lang"]) for i in doc["name"]] == [
        ("Property", "arrêt", "fr"),
        ("Property", "halte", "fr"),
    ]
    simple = tenant_http.get(f"{T}/{eid}", params={"lang": "en", "format": "temporalValues"}).json()
    assert simple["name"] == {"type": "Property", "values": [["stop", hour(1)], ["halt", hour(2)]]}


def test_query_with_geo_scope_id_pattern_and_omit(tenant_http: httpx.Client) -> None:
    near = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.85, 45.75]}, "observedAt": hour(1)}
    far = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}, "observedAt": hour(1)}
    lyon, paris = uid("Bus"), uid("Bus")
    for eid, where, scope in ((lyon, near, "/France/Lyon"), (paris, far, "/France/Paris")):
        body = {"id": eid, "type": "Bus", "scope": scope, "location": where, "speed": temp(30, hour(1))}
        assert tenant_http.post(T, json=body).status_code == 201
    window = {"type": "Bus", "timerel": "after", "timeAt": hour(0)}
    geo = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": "[4.85,45.751]"}

    def found(**params: str) -> list[str]:
        r = tenant_http.get(T, params={**window, **params})
        assert r.status_code == 200, r.text
        return sorted(e["id"] for e in r.json())

    assert found(**geo) == [lyon]
    assert found(scopeQ="/France/Paris") == [paris]
    assert found(idPattern=lyon.rsplit(":", 1)[1] + "$") == [lyon]
    assert found(id=paris) == [paris]
    docs = tenant_http.get(T, params={**window, "omit": "location", "id": lyon}).json()
    assert "location" not in docs[0] and "speed" in docs[0]


def test_attrs_and_pick_together_are_refused(tenant_http: httpx.Client) -> None:
    eid = uid()
    assert tenant_http.post(T, json={"id": eid, "type": "Sensor", "t": temp(1, hour(0))}).status_code == 201
    r = tenant_http.get(f"{T}/{eid}", params={"attrs": "t", "pick": "t"})
    assert r.status_code == 400 and error_type(r) == "BadRequestData"
