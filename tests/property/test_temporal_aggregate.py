"""Aggregations of the temporal API (clause 4.5.19) against a direct computation over the same instances, on the
SQLite store (its SQL fast path) and the memory store (the Python reference)."""

from __future__ import annotations

import asyncio
import math
import statistics
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.core.caller import Caller
from broker.core.temporal import Temporal, TemporalView, TimeQuery
from broker.store.base import Store
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore
from broker.temporal.history import make_instance
from broker.temporal.times import Duration, display_instant, from_micros, to_micros

ATTR = "https://example.org/load"
ORIGIN = to_micros("2026-01-01T00:00:00Z")
HOUR = 3_600_000_000
RANGE = 48 * HOUR
METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")

points = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=RANGE - 1),
        st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
    ),
    min_size=1,
    max_size=60,
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, list[Store]]]:
    loop = asyncio.new_event_loop()
    sqlite = SqliteStore(Path(tmp_path_factory.mktemp("agg")) / "a.db")
    memory = MemoryStore()
    loop.run_until_complete(sqlite.open())
    yield loop, [sqlite, memory]
    loop.run_until_complete(sqlite.close())
    loop.close()


def direct(data: list[tuple[int, float]], period: int, method: str) -> list[tuple[Any, str, str]]:
    """What the aggregation must give, computed the obvious way."""
    buckets: dict[int, list[float]] = {}
    for offset, value in data:
        buckets.setdefault(offset // period, []).append(value)
    out = []
    for k in sorted(buckets):
        xs = buckets[k]
        value: Any = {
            "totalCount": len(xs),
            "distinctCount": len(set(xs)),
            "sum": math.fsum(xs),
            "avg": math.fsum(xs) / len(xs),
            "min": min(xs),
            "max": max(xs),
            "stddev": statistics.pstdev(xs),
            "sumsq": math.fsum(x * x for x in xs),
        }[method]
        end = min(ORIGIN + (k + 1) * period, ORIGIN + RANGE)  # the last period ends with the query's range
        out.append((value, display_instant(ORIGIN + k * period), display_instant(end)))
    return out


def close(a: Any, b: Any, scale: float) -> bool:
    if isinstance(b, int) and not isinstance(b, bool):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6 * max(1.0, scale))


@settings(max_examples=60, deadline=None)
@given(
    data=points,
    hours=st.sampled_from([1, 2, 5, 24]),
    methods=st.one_of(st.just(METHODS), st.lists(st.sampled_from(METHODS), min_size=1, unique=True).map(tuple)),
)
def test_aggregations_match_a_direct_computation(
    stores: tuple[asyncio.AbstractEventLoop, list[Store]],
    data: list[tuple[int, float]],
    hours: int,
    methods: tuple[str, ...],
) -> None:
    """Every method, alone or with others (the store computes only what the asked methods need)."""
    loop, backends = stores
    period = hours * HOUR
    eid = f"urn:ngsi-ld:Meter:{uuid.uuid4().hex}"
    instances = [
        make_instance(ATTR, {"type": "Property", "value": v, "observedAt": from_micros(ORIGIN + t)}) for t, v in data
    ]
    time = TimeQuery("between", from_micros(ORIGIN), from_micros(ORIGIN + RANGE))
    view = TemporalView(time=time, representation="aggregatedValues", methods=methods, period=Duration(0, period))
    scale = max(abs(v) for _, v in data) ** 2 * len(data)
    for store in backends:
        loop.run_until_complete(
            store.temporal_add("", eid, {"type": ["https://example.org/Meter"]}, instances, create=True)
        )
        entity, _ = loop.run_until_complete(Temporal(store).retrieve(Caller(tenant=""), eid, view))
        assert entity.aggregates is not None
        ((dataset, result),) = entity.aggregates[ATTR]
        assert dataset is None
        assert set(result) == set(methods)
        for method in methods:
            expected = direct(data, period, method)
            got = [tuple(row) for row in result[method]]
            assert [(s, e) for _, s, e in got] == [(s, e) for _, s, e in expected], (type(store).__name__, method)
            for (value, _, _), (want, _, _) in zip(got, expected, strict=True):
                assert close(value, want, scale), (type(store).__name__, method, value, want)
