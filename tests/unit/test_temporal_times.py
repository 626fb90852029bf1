"""Instants, durations and aggregation periods of the temporal API (clauses 4.11, 4.5.19.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.core.errors import BadRequestData
from broker.core.temporal import TimeQuery, parse_time_query
from broker.temporal.aggregate import Periods, apply
from broker.temporal.history import instances_of_change
from broker.temporal.times import (
    Duration,
    _from_micros_datetime,
    display_instant,
    from_micros,
    parse_duration,
    to_micros,
)


@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("PT1H", 0, 3600),
        ("P1D", 0, 86400),
        ("P1W", 0, 7 * 86400),
        ("P1Y2M", 14, 0),
        ("P3Y6M4DT12H30M5S", 42, 4 * 86400 + 12 * 3600 + 30 * 60 + 5),
        ("PT0.5S", 0, 0.5),
        ("PT0S", 0, 0),
        ("P0D", 0, 0),
    ],
)
def test_durations(text: str, months: int, seconds: float) -> None:
    assert parse_duration(text) == Duration(months, round(seconds * 1_000_000))


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "P1H", "PT1D", "P-1D", "P1DT", "PT1H2", "P1.5D"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_duration(text)


def test_instants_compare_across_offsets_and_precisions() -> None:
    assert to_micros("2026-01-01T01:00:00+01:00") == to_micros("2026-01-01T00:00:00Z")
    assert to_micros("2026-01-01T00:00:00.000Z") == to_micros("2026-01-01T00:00:00Z")
    assert from_micros(to_micros("2026-01-01T00:00:00.5Z")) == "2026-01-01T00:00:00.500000Z"


def test_time_query_bounds() -> None:
    q = parse_time_query(
        {"timerel": "between", "timeAt": "2026-01-01T00:00:00Z", "endTimeAt": "2026-01-02T00:00:00Z"}, required=True
    )
    assert q.bounds() == (to_micros("2026-01-01T00:00:00Z"), to_micros("2026-01-02T00:00:00Z"))
    assert TimeQuery("before", "2026-01-01T00:00:00Z").bounds() == (None, to_micros("2026-01-01T00:00:00Z"))
    assert parse_time_query({}, required=False).bounds() == (None, None)
    with pytest.raises(BadRequestData):
        parse_time_query({}, required=True)


def test_calendar_month_periods() -> None:
    periods = Periods(to_micros("2026-01-31T00:00:00Z"), Duration(months=1))
    # period k starts k calendar months after January 31: February 28 (clamped), then March 31
    assert periods.index(to_micros("2026-02-27T00:00:00Z")) == 0
    assert periods.index(to_micros("2026-02-28T00:00:00Z")) == 1
    assert periods.index(to_micros("2026-03-30T00:00:00Z")) == 1
    assert periods.index(to_micros("2026-03-31T00:00:00Z")) == 2
    start, end = periods.bounds(1, 0)
    assert (start[:10], end[:10]) == ("2026-02-28", "2026-03-31")


@pytest.mark.parametrize(
    ("method", "values", "expected"),
    [
        ("avg", [[1, 2], [1, 2, 3, 4]], 3.0),  # average size of arrays
        ("max", ["a", "b"], "b"),
        ("min", ["2026-01-02T00:00:00Z", "2026-01-01T12:00:00+01:00"], "2026-01-01T12:00:00+01:00"),
        ("avg", ["2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z"], "2026-01-01T01:00:00Z"),
        ("sum", [True, False, True], 2.0),
        ("distinctCount", [{"a": 1}, {"a": 1}, {"a": 2}], 2),
        ("distinctCount", [2, 2.0, True], 2),
        ("stddev", ["x"], None),
        ("sum", [{"a": 1}], None),
    ],
)
def test_aggregation_methods_per_kind_of_value(method: str, values: list[object], expected: object) -> None:
    assert apply(method, values) == expected


def test_history_of_a_change() -> None:
    before = {
        "id": "urn:a",
        "type": ["T"],
        "attrs": {"p": [{"type": "Property", "value": 1}], "q": [{"type": "Property", "value": 2}]},
    }
    after = {
        "id": "urn:a",
        "type": ["T"],
        "attrs": {"p": [{"type": "Property", "value": 1}], "r": [{"type": "Relationship", "object": "urn:b"}]},
    }
    recorded = instances_of_change(before, after, "2026-01-01T00:00:00Z")
    assert [(i.attr, i.body.get("value", i.body.get("object"))) for i in recorded] == [
        ("r", "urn:b"),
        ("q", "urn:ngsi-ld:null"),
    ]
    assert recorded[1].body["deletedAt"] == "2026-01-01T00:00:00Z"
    assert len({i.instance_id for i in recorded}) == 2


@given(st.integers(min_value=to_micros("0001-01-01T00:00:00Z"), max_value=to_micros("9999-12-31T23:59:59.999999Z")))
def test_from_micros_fast_path_equals_the_datetime_one(micros: int) -> None:
    assert from_micros(micros) == _from_micros_datetime(micros)
    assert to_micros(from_micros(micros)) == micros


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("2018-08-01T12:04:00Z", "2018-08-01T12:04:00Z"),
        ("2018-08-01T12:04:00.500Z", "2018-08-01T12:04:00.5Z"),
        ("2018-08-01T12:04:00.000001Z", "2018-08-01T12:04:00.000001Z"),
        ("2018-08-01T14:04:00+02:00", "2018-08-01T12:04:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
    ],
)
def test_computed_instants_are_written_without_a_zero_fraction(text: str, shown: str) -> None:
    """Record 0122: aggregation bounds and Content-Range ends read as clients write DateTimes (annex C.5.14)."""
    assert display_instant(to_micros(text)) == shown
