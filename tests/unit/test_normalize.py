"""Input validation and concise/normalized parsing (clauses 4.5, 4.6.2, 5.5.4)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.errors import BadRequestData
from broker.core.normalize import PATCH, Rules, is_null_instance, is_uri, parse_attribute, parse_entity


@pytest.mark.parametrize("value", ["urn:ngsi-ld:Vehicle:A", "https://example.org/x#y", "urn:a:b:c"])
def test_uris(value: str) -> None:
    assert is_uri(value)


@pytest.mark.parametrize("value", ["", "abc", "urn x", "1urn:a", "http://a b", None, 3, "urn:<x>"])
def test_not_uris(value: Any) -> None:
    assert not is_uri(value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, {"type": "Property", "value": 5}),
        ("x", {"type": "Property", "value": "x"}),
        ({"value": {"a": 1}}, {"type": "Property", "value": {"a": 1}}),
        ({"object": "urn:a:b"}, {"type": "Relationship", "object": "urn:a:b"}),
        (
            {"type": "Point", "coordinates": [1, 2]},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        ),
        (
            {"value": {"type": "Point", "coordinates": [1, 2]}},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        ),
        ({"languageMap": {"en": "x"}}, {"type": "LanguageProperty", "languageMap": {"en": "x"}}),
        ({"vocab": "v"}, {"type": "VocabProperty", "vocab": "v"}),
        ({"json": {"k": None}}, {"type": "JsonProperty", "json": {"k": None}}),
        ({"valueList": [1, "a"]}, {"type": "ListProperty", "valueList": [1, "a"]}),
        ({"objectList": ["urn:a:1"]}, {"type": "ListRelationship", "objectList": ["urn:a:1"]}),
        ([1, 2], {"type": "Property", "value": [1, 2]}),
        ({"some": "object"}, {"type": "Property", "value": {"some": "object"}}),
    ],
)
def test_concise_inference(raw: Any, expected: dict[str, Any]) -> None:
    assert parse_attribute(raw, "a", Rules()) == [expected]


def test_sub_attributes_parse_recursively() -> None:
    out = parse_attribute({"value": 1, "accuracy": {"value": 0.5, "by": {"object": "urn:x:1"}}}, "a", Rules())
    assert out == [
        {
            "type": "Property",
            "value": 1,
            "accuracy": [{"type": "Property", "value": 0.5, "by": [{"type": "Relationship", "object": "urn:x:1"}]}],
        }
    ]


def test_system_attributes_in_input_are_ignored() -> None:
    doc = parse_entity({"id": "urn:a:1", "type": "T", "createdAt": "x", "p": {"value": 1, "modifiedAt": "y"}})
    assert doc == {"id": "urn:a:1", "type": ["T"], "p": [{"type": "Property", "value": 1}]}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"id": "urn:a:1"},
        {"type": "T"},
        {"id": "urn:a:1", "type": []},
        {"id": "urn:a:1", "type": "T", "scope": "no-slash"},
        {"id": "urn:a:1", "type": "T", "a(b)": 1},
        {"id": "urn:a:1", "type": "T", "value": 1},
        {"id": "urn:a:1", "type": "T", "p": None},
        {"id": "urn:a:1", "type": "T", "p": {"type": "Property", "value": None}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "Nonsense", "value": 1}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "Property", "value": 1, "datasetId": "x y"}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "Property", "value": 1, "unitCode": 5}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "LanguageProperty", "languageMap": {"en": 1}}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "ListProperty", "valueList": 1}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "Property", "value": 1, "object": "urn:x:1"}},
        {"id": "urn:a:1", "type": "T", "p": {"type": "Property", "value": {"@context": {}}}},
        {
            "id": "urn:a:1",
            "type": "T",
            "g": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 1]]]}},
        },
        {
            "id": "urn:a:1",
            "type": "T",
            "g": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [[0, 0]]}},
        },
        {"id": "urn:a:1", "type": "T", "g": {"type": "GeoProperty", "value": "POINT(1 2)"}},
    ],
)
def test_bad_entities_are_bad_request_data(body: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_entity(body)


def test_nulls_only_where_allowed() -> None:
    with pytest.raises(BadRequestData):
        parse_entity({"id": "urn:a:1", "type": "T", "p": "urn:ngsi-ld:null"})
    doc = parse_entity(
        {"p": "urn:ngsi-ld:null", "r": {"object": "urn:ngsi-ld:null"}, "q": None},
        PATCH,
        require_id=False,
        require_type=False,
    )
    assert all(is_null_instance(doc[k][0]) for k in ("p", "r", "q"))


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-13-01T00:00:00Z", "yesterday", 5]
)
def test_datetimes_outside_the_utc_range_or_malformed_are_refused(value: object) -> None:
    from broker.core.normalize import check_datetime

    with pytest.raises(BadRequestData):
        check_datetime(value, "observedAt")


def test_early_years_are_written_with_four_digits() -> None:
    from broker.core.subscriptions import _utc

    assert _utc("0999-01-01T00:00:00Z") == "0999-01-01T00:00:00.000000Z"
