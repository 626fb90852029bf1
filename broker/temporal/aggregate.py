"""Aggregated temporal representation (clause 4.5.19): the reference computation, over decoded instances.

Methods per kind of value (tables 4.5.19.1-1 to -3): numbers and booleans (true = 1) take every method; strings
min and max (lexicographic); arrays avg, sum, min and max of their sizes; DateTimes avg, min and max of the
instants; every value totalCount and distinctCount; Relationships only totalCount and distinctCount. A method
that does not apply to a value gives null for its period. Instances that record a deletion take no part. stddev is
the population standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from broker.core.model import CONTENT_MEMBER
from broker.store.base import TemporalInstance
from broker.temporal.times import Duration, display_instant, micros_or_none

METHODS: Final = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Periods:
    """The aggregation periods: `duration` wide from `origin` (microseconds), clipped to `end` when known.
    A zero duration is one period over the whole range (clause 4.5.19.1)."""

    origin: int
    duration: Duration
    end: int | None = None

    def index(self, at: int) -> int:
        if self.duration.is_zero:
            return 0
        if not self.duration.months:
            return (at - self.origin) // self.duration.micros
        start = _to_datetime(self.origin)
        when = _to_datetime(at)
        k = ((when.year - start.year) * 12 + when.month - start.month) // self.duration.months
        while k > 0 and self._start(k) > at:
            k -= 1
        while self._start(k + 1) <= at:
            k += 1
        return k

    def _start(self, k: int) -> int:
        if self.duration.is_zero:
            return self.origin
        if not self.duration.months:
            return self.origin + k * self.duration.micros
        scaled = Duration(self.duration.months * k, self.duration.micros * k)
        try:
            return _to_micros(scaled.add_to(_to_datetime(self.origin)))
        except (ValueError, OverflowError):  # a start after year 9999: after every instant there can be
            return _LAST + 1

    def bounds(self, k: int, last: int) -> tuple[str, str]:
        """ISO start and end of period k; a whole-range period ends at the range end, or, when the range has none
        (timerel=after, no timerel), at the last instant it holds (decision record 0122)."""
        start = self._start(k)
        if self.duration.is_zero:
            end = self.end if self.end is not None else last
        else:
            end = self._start(k + 1)
            if self.end is not None:
                end = min(end, self.end)
        # A period that would end after year 9999 (the last instant, a long aggrPeriodDuration) ends at the last
        # instant a DateTime can write.
        return display_instant(start), display_instant(min(end, _LAST))


def _to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _to_micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_LAST: Final = _to_micros(datetime.max.replace(tzinfo=UTC))  # 9999-12-31T23:59:59.999999Z


def aggregate(
    instances: Iterable[TemporalInstance], methods: list[str], periods: Periods, timeproperty: str
) -> dict[str, list[list[Any]]]:
    """{method: [[value, periodStart, periodEnd], ...]} over the periods that hold at least one instance."""
    buckets: dict[int, list[Any]] = {}
    targets: set[int] = set()  # the periods holding Relationship instances
    last = periods.origin
    for inst in instances:
        if "deletedAt" in inst.body:
            continue
        at = micros_or_none(inst.body.get(timeproperty))
        if at is None:
            at = micros_or_none(inst.body.get("modifiedAt"))
        if at is None:
            continue
        last = max(last, at)
        kind = str(inst.body.get("type"))
        k = periods.index(at)
        buckets.setdefault(k, []).append(inst.body.get(CONTENT_MEMBER.get(kind, "value")))
        if kind in _RELATIONSHIPS:
            targets.add(k)
    out: dict[str, list[list[Any]]] = {m: [] for m in methods}
    for k in sorted(buckets):
        start, end = periods.bounds(k, last)
        for method in methods:
            # Table 4.5.19.1-3: of a Relationship's targets only the counts are defined (min/max would compare URIs).
            value = None if k in targets and method not in _COUNTS else apply(method, buckets[k])
            out[method].append([value, start, end])
    return out


_RELATIONSHIPS: Final = frozenset({"Relationship", "ListRelationship"})
_COUNTS: Final = frozenset({"totalCount", "distinctCount"})


def apply(method: str, values: list[Any]) -> Any:
    """One aggregation method over the values of one period (None where it does not apply)."""
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len({_distinct_key(v) for v in values})
    numbers = _as_numbers(values, allow_sizes=method in ("sum", "avg", "min", "max"))
    if numbers is not None:
        return _NUMERIC[method](numbers)
    if method in ("min", "max") and all(isinstance(v, str) for v in values):
        times = [micros_or_none(v) for v in values]
        if all(t is not None for t in times):  # DateTimes compare as instants
            chosen = (min if method == "min" else max)(range(len(values)), key=lambda i: times[i] or 0)
            return values[chosen]
        return min(values) if method == "min" else max(values)
    if method == "avg" and values and all(isinstance(v, str) for v in values):
        times = [micros_or_none(v) for v in values]
        if all(t is not None for t in times):
            return display_instant(round(sum(t or 0 for t in times) / len(times)))
    return None


def _distinct_key(value: Any) -> Any:
    """Values that are the same JSON value count once: 2 and 2.0 are one number, and (the note of table
    4.5.19.1-1) true counts as 1."""
    if isinstance(value, bool | int | float):
        return float(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _as_numbers(values: list[Any], *, allow_sizes: bool) -> list[float] | None:
    out: list[float] = []
    for v in values:
        if isinstance(v, bool):
            out.append(1.0 if v else 0.0)
        elif isinstance(v, int | float):
            out.append(float(v))
        elif isinstance(v, list) and allow_sizes:
            out.append(float(len(v)))
        else:
            return None
    return out if out else None


def _avg(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _stddev(xs: list[float]) -> float:
    mean = _avg(xs)
    return math.sqrt(max(0.0, sum((x - mean) ** 2 for x in xs) / len(xs)))


_NUMERIC: Final[dict[str, Callable[[list[float]], Any]]] = {
    "sum": sum,
    "avg": _avg,
    "min": min,
    "max": max,
    "stddev": _stddev,
    "sumsq": lambda xs: sum(x * x for x in xs),
}


def from_buckets(
    rows: list[tuple[int, int, float, float, float, float, int]], methods: list[str], periods: Periods, last: int
) -> dict[str, list[list[Any]]]:
    """The same answer as `aggregate`, from the per-period sums a store computed (numeric values only)."""
    out: dict[str, list[list[Any]]] = {m: [] for m in methods}
    for k, count, total, squares, low, high, distinct in rows:
        start, end = periods.bounds(k, last)
        mean = total / count
        values = {
            "totalCount": count,
            "distinctCount": distinct,
            "sum": total,
            "avg": mean,
            "min": low,
            "max": high,
            "stddev": math.sqrt(max(0.0, squares / count - mean * mean)),
            "sumsq": squares,
        }
        for method in methods:
            out[method].append([values[method], start, end])
    return out
