"""The temporal routes answer what the served OpenAPI document says, at the ends of the DateTime range too.

Responses of every representation (normalized, temporalValues, aggregatedValues; one entity, a query, 206 pages)
are validated against the schemas `broker/http/openapi/ngsi-ld-agora.json` gives for them, and the instants the
broker writes must be RFC 3339 DateTimes. The rest are regressions of the 500s that tests/property/test_http_fuzz.py
found: aggregation periods past year 9999, DateTimes whose offset takes them outside years 1 to 9999 in UTC, and
aggrPeriodDuration values too large for the store's integers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft4Validator, FormatChecker
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.http.openapi import document_bytes
from broker.settings import Settings
from broker.temporal.aggregate import Periods
from broker.temporal.times import Duration, from_micros, micros_or_none, to_micros

BASE = "/ngsi-ld/v1"
T = f"{BASE}/temporal/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
# RFC 3339 date-time (OpenAPI `format: date-time`): a four-digit year, a time zone.
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
LAST = "9999-12-31T23:59:59.999999Z"
LIMIT = 4  # the instance limit of the broker under test: more instances give 206


def at(hour: int, day: int = 1) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00Z"


def prop(value: Any, observed: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": observed, **extra}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(document_bytes())
    return doc


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("temporal-http") / "agora.db"
    settings = Settings(store=f"sqlite:///{path}", temporal_instance_limit=LIMIT)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def sensor(api: TestClient) -> str:
    """A temporal entity with every kind of attribute, two datasets, more instances than the limit, and instants
    at both ends of the DateTime range."""
    eid = "urn:ngsi-ld:Sensor:edges"
    body = {
        "id": eid,
        "type": "Sensor",
        "temperature": [prop(n, at(n)) for n in range(6)] + [prop(9, at(1), datasetId="urn:ds:b")],
        "status": [prop("ok", at(1)), prop("alarm", at(2))],
        "owner": [{"type": "Relationship", "object": "urn:p:1", "observedAt": at(1)}],
        "name": {"type": "LanguageProperty", "languageMap": {"en": "one"}, "observedAt": at(1)},
        "edge": [prop(1, "0001-01-01T00:00:00Z"), prop(2, LAST)],
    }
    r = api.post(T, json=body)
    assert r.status_code == 201, r.text
    return eid


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft4Validator:
    """A validator of `schema` whose `#/components/...` references resolve in the document."""
    checker = FormatChecker()
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(DATETIME.match(value)))
    return Draft4Validator({"components": document["components"], "allOf": [schema]}, format_checker=checker)


def _assert_valid(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(document, schema).iter_errors(instance)]
    assert errors == [], errors[:5]


def _response(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    response: dict[str, Any] = document["paths"][path][method]["responses"][str(status)]
    return response


def _check_answer(document: dict[str, Any], path: str, method: str, r: Any, representation: str) -> None:
    """Status, body and headers as the document describes them; the representation's own schema too."""
    assert r.status_code in (200, 206), r.text
    described = _response(document, path, method, r.status_code)
    media = r.headers["content-type"].split(";")[0]
    _assert_valid(document, described["content"][media]["schema"], r.json())
    items = r.json() if isinstance(r.json(), list) else [r.json()]
    for item in items:
        _assert_valid(document, {"$ref": f"#/components/schemas/{representation}"}, item)
    for name, header in described["headers"].items():
        if name in r.headers:
            schema = document["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]["schema"]
            if "pattern" in schema:
                assert re.match(schema["pattern"], r.headers[name]), (name, r.headers[name])
    if r.status_code == 206:
        assert "Content-Range" in r.headers


REPRESENTATIONS = [
    ({}, "EntityTemporal"),
    ({"options": "sysAttrs"}, "EntityTemporal"),
    ({"lastN": "2"}, "EntityTemporal"),
    ({"lang": "en"}, "EntityTemporal"),
    ({"format": "temporalValues"}, "EntityTemporal.temporalValues"),
    ({"format": "temporalValues", "lang": "fr"}, "EntityTemporal.temporalValues"),
    ({"options": "temporalValues", "datasetId": "urn:ds:b,@none"}, "EntityTemporal.temporalValues"),
    ({"format": "aggregatedValues", "aggrMethods": "avg,min,max,totalCount"}, "EntityTemporal.aggregatedValues"),
    (
        {"format": "aggregatedValues", "aggrMethods": "sum,distinctCount,stddev", "aggrPeriodDuration": "P1000Y"},
        "EntityTemporal.aggregatedValues",
    ),
    (
        {"format": "aggregatedValues", "aggrMethods": "sumsq,avg", "aggrPeriodDuration": "P7M"},
        "EntityTemporal.aggregatedValues",
    ),
]


@pytest.mark.parametrize(("params", "representation"), REPRESENTATIONS)
def test_retrieval_answers_as_documented(
    api: TestClient, document: dict[str, Any], sensor: str, params: dict[str, str], representation: str
) -> None:
    for accept in ("application/json", "application/ld+json"):
        r = api.get(f"{T}/{sensor}", params=params, headers={"Accept": accept})
        _check_answer(document, "/temporal/entities/{entityId}", "get", r, representation)


@pytest.mark.parametrize(("params", "representation"), REPRESENTATIONS)
def test_queries_answer_as_documented(
    api: TestClient, document: dict[str, Any], sensor: str, params: dict[str, str], representation: str
) -> None:
    window = {"timerel": "after", "timeAt": "0001-01-01T00:00:00Z"}
    r = api.get(T, params={"type": "Sensor", "count": "true", **window, **params})
    _check_answer(document, "/temporal/entities", "get", r, representation)
    assert [e["id"] for e in r.json()] == [sensor]
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "temporalQ": window}
    r = api.post(f"{BASE}/temporal/entityOperations/query", json=body, params=params)
    _check_answer(document, "/temporal/entityOperations/query", "post", r, representation)


@pytest.mark.parametrize(
    ("params", "representation"),
    [
        ({"pick": "status"}, "EntityTemporal"),
        ({"omit": "id,type", "format": "temporalValues"}, "EntityTemporal.temporalValues"),
        ({"pick": "owner", "omit": "owner"}, "EntityTemporal"),
    ],
)
def test_projections_answer_as_documented(
    api: TestClient, document: dict[str, Any], sensor: str, params: dict[str, str], representation: str
) -> None:
    """pick and omit may leave id and type out (decision 0011): the documented answer does not require them."""
    r = api.get(f"{T}/{sensor}", params=params)
    _check_answer(document, "/temporal/entities/{entityId}", "get", r, representation)
    assert not {"id", "type"} <= set(r.json())  # at least one of them is left out


def test_a_cut_answer_is_206_with_a_content_range(api: TestClient, document: dict[str, Any], sensor: str) -> None:
    r = api.get(f"{T}/{sensor}", params={"attrs": "temperature"})
    assert r.status_code == 206, r.text
    _check_answer(document, "/temporal/entities/{entityId}", "get", r, "EntityTemporal")
    # 7 instances (hours 0 to 5, one more at hour 1 in dataset urn:ds:b), 4 at most: hours 0 to 2, the range enclosed
    assert r.headers["Content-Range"] == "date-time 2026-03-01T00:00:00Z-2026-03-01T02:00:00Z/*"
    assert len(r.json()["temperature"]) == LIMIT


def test_aggregation_periods_start_in_year_1_and_stop_at_year_9999(api: TestClient, sensor: str) -> None:
    """The periods over instants at both ends of the range: a zero period ends after the last instant, which
    cannot be written, and one of 1000 years or 7 months would end after year 9999: they end at the last instant
    a DateTime can write (these answered 500). Years before 1000 are written with four digits."""
    for duration, first_end in (("PT0S", LAST), ("P1000Y", "1001-01-01T00:00:00Z"), ("P7M", "0001-08-01")):
        r = api.get(
            f"{T}/{sensor}",
            params={
                "format": "aggregatedValues",
                "aggrMethods": "sum",
                "aggrPeriodDuration": duration,
                "attrs": "edge",
            },
        )
        assert r.status_code == 200, (duration, r.text)
        rows = r.json()["edge"]["sum"]
        assert rows[0][1] == "0001-01-01T00:00:00Z", (duration, rows)
        assert rows[0][2].startswith(first_end), (duration, rows)
        assert rows[-1][2] == LAST, (duration, rows)
        assert sum(row[0] for row in rows) == 3


@pytest.mark.parametrize("duration", ["P99999Y", "P999999999D", "PT99999999999999999999S", "P1000000000000M"])
def test_aggregation_periods_longer_than_the_datetime_range_are_refused(
    api: TestClient, sensor: str, duration: str
) -> None:
    params = {"format": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": duration}
    for window in ({}, {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}):
        r = api.get(f"{T}/{sensor}", params={**params, **window})
        assert r.status_code == 400, (duration, r.text)
        assert r.json()["type"] == ERR + "BadRequestData"


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-14:00"])
def test_datetimes_outside_years_1_to_9999_in_utc(api: TestClient, instant: str) -> None:
    """Such a DateTime names no instant the broker can write: refused in a temporal query and as an observedAt
    (400); stored as a value, it is a string that no reader may fail on (were 500)."""
    r = api.get(T, params={"type": "Sensor", "timerel": "before", "timeAt": instant})
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData", r.text
    eid = f"urn:ngsi-ld:Odd:{instant[:4]}"
    refused = api.post(T, json={"id": eid, "type": "Odd", "t": [prop(1, instant)]})
    assert refused.status_code == 400 and refused.json()["type"] == ERR + "BadRequestData", refused.text
    body = {"id": eid, "type": "Odd", "t": [prop(2, at(1))], "when": [prop(instant, at(2))]}
    assert api.post(T, json=body).status_code == 201
    for params in (
        {},
        {"format": "temporalValues"},
        {"format": "aggregatedValues", "aggrMethods": "avg,min,max"},
        {"format": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "P1M"},
        {"lastN": "1"},
    ):
        r = api.get(f"{T}/{eid}", params=params)
        assert r.status_code == 200, (params, r.text)
    doc = api.get(f"{T}/{eid}", params={"format": "aggregatedValues", "aggrMethods": "avg,max"}).json()
    assert doc["when"]["avg"][0][0] is None  # not a DateTime: no average
    assert doc["when"]["max"][0][0] == instant  # compared as text


def test_instants_are_written_as_rfc3339_datetimes() -> None:
    for text in ("0001-01-01T00:00:00Z", "0999-05-06T07:08:09.5Z", "2026-03-01T00:00:00+01:00", LAST):
        written = from_micros(to_micros(text))
        assert DATETIME.match(written), written
        assert to_micros(written) == to_micros(text)
    assert micros_or_none("0001-01-01T00:00:00+01:00") is None
    assert micros_or_none("9999-12-31T23:00:00-14:00") is None


def test_periods_past_year_9999_end_at_the_last_instant() -> None:
    last = to_micros(LAST)
    for duration in (Duration(months=1), Duration(micros=86_400_000_000), Duration()):
        periods = Periods(to_micros("9999-12-15T00:00:00Z"), duration)
        k = periods.index(last)
        assert periods.bounds(k, last)[1] == LAST


def test_simplified_pairs_carry_the_instant_of_the_timeproperty(api: TestClient) -> None:
    """Clause 4.5.9: each value is paired with its instant. Instances without observedAt (written through the entity
    API) are paired with their modifiedAt, and timeproperty=createdAt or modifiedAt pairs with those, with or
    without sysAttrs (the pairs held null without sysAttrs)."""
    eid = "urn:ngsi-ld:Sensor:plain"
    assert api.post(f"{BASE}/entities", json={"id": eid, "type": "Plain", "a": 1}).status_code == 201
    assert api.patch(f"{BASE}/entities/{eid}/attrs", json={"a": 2}).status_code == 204
    full = api.get(f"{T}/{eid}", params={"options": "sysAttrs"}).json()["a"]
    window = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
    for prop_name, params in (("modifiedAt", {}), ("createdAt", window), ("modifiedAt", window)):
        if params:
            params = {**params, "timeproperty": prop_name}
        r = api.get(f"{T}/{eid}", params={"format": "temporalValues", **params})
        assert r.status_code == 200, r.text
        assert r.json()["a"]["values"] == [[i["value"], i[prop_name]] for i in full], (prop_name, params)
        assert all(DATETIME.match(instant) for _, instant in r.json()["a"]["values"])
