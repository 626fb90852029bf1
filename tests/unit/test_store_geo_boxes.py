"""The index boxes of Points are computed without shapely (broker.store._common._point_bounds): they must be what
shapely gives for every value a GeoProperty may hold, and a value shapely refuses must be left out as before."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import shape

from broker.store import _common as common

coordinate = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.just("1.5"),
    st.none(),
)
values = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Point", "point", "LineString"]),
        "coordinates": st.one_of(st.lists(coordinate, max_size=4), coordinate),
    }
)


def shapely_boxes(entity: dict[str, Any]) -> set[tuple[str, common.Box]]:
    found: set[tuple[str, common.Box]] = set()
    for attr, instances in entity["attrs"].items():
        for instance in instances:
            try:
                x0, y0, x1, y1 = shape(instance["value"]).bounds
            except Exception:
                continue
            plain = -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
            found.add((attr, (x0, y0, x1, y1) if plain else common.WORLD))
    return found


@given(values)
def test_point_boxes_are_shapelys(value: dict[str, Any]) -> None:
    entity = {"attrs": {"https://example.org/where": [{"type": "GeoProperty", "value": value}]}}
    assert common.geo_boxes(entity) == shapely_boxes(entity)
