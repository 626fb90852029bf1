"""The aggregated temporal representation (clause 4.5.19; parameters of 6.18 and 6.19): every aggregation method,
the [value, start, end] triples, the periods of aggrPeriodDuration, and the errors. The temporal API is an optional
feature ("not implemented" without it)."""

from __future__ import annotations

import math
from typing import Any

from conformance.cases._temporal import DAY, DAY_END, DAY_START, TIMES, create, instant, observed, problem, retrieve
from conformance.kit import Kit, case


def _aggregated(k: Kit, entity_id: str, methods: str, attr: str = "temperature", **params: str) -> dict[str, Any]:
    query = {**DAY, "format": "aggregatedValues", "aggrMethods": methods, **params}
    member = retrieve(k, entity_id, query).get(attr)
    k.expect(isinstance(member, dict), f"{attr} is {member!r:.200}, expected an object of aggregation methods")
    return dict(member)


def _whole_day(k: Kit, member: dict[str, Any], method: str) -> Any:
    """The value of `method` over the one period of the whole range, its bounds checked (timeAt, endTimeAt)."""
    rows: Any = member.get(method)
    k.expect(isinstance(rows, list) and len(rows) == 1, f"{method} is {rows!r:.200}, expected one period")
    row = rows[0]
    k.expect(isinstance(row, list) and len(row) == 3, f"{method} period is {row!r:.200}, expected [value, start, end]")
    k.expect(instant(k, row[1]) == instant(k, DAY_START), f"the period starts at {row[1]}, expected timeAt {DAY_START}")
    k.expect(instant(k, row[2]) == instant(k, DAY_END), f"the period ends at {row[2]}, expected endTimeAt {DAY_END}")
    return row[0]


def _method_case(method: str, expected: Any, what: str) -> None:
    def check(k: Kit) -> None:
        body = create(k)  # temperature 20, 21, 22
        value = _whole_day(k, _aggregated(k, body["id"], method), method)
        ok = any(_close(value, e) for e in (expected if isinstance(expected, tuple) else (expected,)))
        k.expect(ok, f"{method} of 20, 21, 22 is {value!r}, expected {expected!r}")

    check.__name__ = f"aggregation_{method}"
    check.__qualname__ = check.__name__
    check.__module__ = __name__
    case(
        "4.5.19",
        f"aggrMethods={method} over the Property values 20, 21 and 22 gives {what}.",
        feature="temporal",
        also=("5.7.3", "6.19"),
    )(check)


def _close(value: Any, expected: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isclose(value, expected)


_method_case("totalCount", 3, "3 (the number of updates)")
_method_case("distinctCount", 3, "3 (three distinct values)")
_method_case("sum", 63, "their sum, 63")
_method_case("avg", 21, "their average, 21")
_method_case("min", 20, "their minimum, 20")
_method_case("max", 22, "their maximum, 22")
_method_case("sumsq", 1325, "the sum of their squares, 1325")
# The clause does not say population or sample standard deviation: either is accepted.
_method_case("stddev", (math.sqrt(2 / 3), 1.0), "their standard deviation")


@case(
    "4.5.19",
    "distinctCount counts equal values once: 1, 1 and 2 have 2 distinct values in 3 updates.",
    feature="temporal",
    also=("5.7.3",),
)
def distinct_count_counts_once(k: Kit) -> None:
    body = create(
        k,
        {
            "id": k.uid("Sensor"),
            "type": k.type_name("Sensor"),
            "level": [observed(v, t) for v, t in zip((1, 1, 2), TIMES, strict=True)],
        },
    )
    member = _aggregated(k, body["id"], "distinctCount,totalCount", attr="level")
    k.expect(_whole_day(k, member, "distinctCount") == 2, f"distinctCount is {member.get('distinctCount')!r}")
    k.expect(_whole_day(k, member, "totalCount") == 3, f"totalCount is {member.get('totalCount')!r}")


@case(
    "4.5.19",
    "Several aggrMethods give one member per method on the attribute, labelled with its type Property.",
    feature="temporal",
    also=("5.7.3",),
)
def several_methods_one_member_each(k: Kit) -> None:
    body = create(k)
    member = _aggregated(k, body["id"], "min,max,totalCount")
    k.expect(member.get("type") == "Property", f"the aggregated attribute is labelled {member.get('type')!r}")
    k.expect({"min", "max", "totalCount"} <= set(member), f"the members are {sorted(member)}")


@case(
    "4.5.19",
    "aggrPeriodDuration=PT1H splits the interval into hour periods starting at timeAt, each its [value, start, end].",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def hourly_periods(k: Kit) -> None:
    body = create(k)
    params = {"timeAt": TIMES[0], "endTimeAt": "2020-01-01T13:00:00Z", "aggrPeriodDuration": "PT1H"}
    rows: Any = _aggregated(k, body["id"], "sum", **params).get("sum")
    k.expect(isinstance(rows, list) and len(rows) == 3, f"sum is {rows!r:.300}, expected three hour periods")
    got = [(r[0], instant(k, r[1]), instant(k, r[2])) for r in rows]
    ends = (*TIMES[1:], "2020-01-01T13:00:00Z")
    wanted = [(v, instant(k, s), instant(k, e)) for v, s, e in zip((20, 21, 22), TIMES, ends, strict=True)]
    k.expect(sorted(got, key=lambda r: r[1]) == wanted, f"the periods are {rows}")


@case(
    "4.5.19",
    "Without aggrPeriodDuration one period spans the whole range of the temporal query (timeAt to endTimeAt).",
    feature="temporal",
    also=("6.19",),
)
def no_period_duration_is_the_whole_range(k: Kit) -> None:
    body = create(k)
    k.expect(_whole_day(k, _aggregated(k, body["id"], "max"), "max") == 22, "max over the whole range is not 22")


@case(
    "4.5.19",
    "aggrPeriodDuration=PT0S, a zero duration, is one period over the whole range, as without the parameter.",
    feature="temporal",
    also=("6.19",),
)
def zero_period_duration_is_the_whole_range(k: Kit) -> None:
    body = create(k)
    member = _aggregated(k, body["id"], "min", aggrPeriodDuration="PT0S")
    k.expect(_whole_day(k, member, "min") == 20, "min over the whole range is not 20")


@case(
    "4.5.19",
    "A Relationship aggregates with totalCount and distinctCount of its targets, labelled Relationship.",
    feature="temporal",
    also=("5.7.3",),
)
def relationship_counts(k: Kit) -> None:
    targets = ("urn:ngsi-ld:Stop:conformance-1", "urn:ngsi-ld:Stop:conformance-2", "urn:ngsi-ld:Stop:conformance-1")
    stops = [{"type": "Relationship", "object": o, "observedAt": t} for o, t in zip(targets, TIMES, strict=True)]
    body = create(k, {"id": k.uid("Bus"), "type": k.type_name("Bus"), "atStop": stops})
    member = _aggregated(k, body["id"], "totalCount,distinctCount", attr="atStop")
    k.expect(member.get("type") == "Relationship", f"the aggregated attribute is labelled {member.get('type')!r}")
    k.expect(_whole_day(k, member, "totalCount") == 3, f"totalCount is {member.get('totalCount')!r}")
    k.expect(_whole_day(k, member, "distinctCount") == 2, f"distinctCount is {member.get('distinctCount')!r}")


@case(
    "4.5.19",
    "format=aggregatedValues without aggrMethods is a BadRequestData error (400).",
    feature="temporal",
    also=("6.19",),
)
def aggregation_without_methods_is_400(k: Kit) -> None:
    body = create(k)
    params = {**DAY, "format": "aggregatedValues"}
    problem(k, k.http.get(f"/temporal/entities/{body['id']}", params=params), 400, "BadRequestData")


@case(
    "4.5.19",
    "An aggrMethods value that is not an aggregation method is a BadRequestData error (400).",
    feature="temporal",
)
def unknown_method_is_400(k: Kit) -> None:
    body = create(k)
    params = {**DAY, "format": "aggregatedValues", "aggrMethods": "median"}
    problem(k, k.http.get(f"/temporal/entities/{body['id']}", params=params), 400, "BadRequestData")


@case(
    "4.5.19",
    "An aggrPeriodDuration that is not an ISO 8601 duration is a BadRequestData error (400).",
    feature="temporal",
)
def invalid_period_is_400(k: Kit) -> None:
    body = create(k)
    params = {**DAY, "format": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": "1 hour"}
    problem(k, k.http.get(f"/temporal/entities/{body['id']}", params=params), 400, "BadRequestData")
