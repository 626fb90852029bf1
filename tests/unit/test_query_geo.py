"""Geo-queries (clause 4.10): parsing, validation, shapely predicates and near distances on the sphere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shapely.geometry import LineString, Point, Polygon

from broker.core.errors import BadRequestData
from broker.core.model import DEFAULT_VOCAB as V
from broker.core.model import NGSI_LD, Entity
from broker.ld.termmap import core_termmap
from broker.query.geo import distance_m, haversine_m, matches_geo, parse_geo_query, parse_georel

DEGREE_M = 111_195.08  # one degree of a great circle on the mean sphere

SQUARE = [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]


def entity(geometry: dict[str, Any], prop: str = NGSI_LD + "location", **extra: Any) -> Entity:
    instances = [{"type": "GeoProperty", "value": geometry}]
    return {"id": "urn:x:1", "type": [V + "T"], "attrs": {prop: instances, **extra}}


def geo(georel: str, geometry: str, coordinates: Any, **more: str) -> Any:
    params = {"georel": georel, "geometry": geometry, "coordinates": json.dumps(coordinates), **more}
    query = parse_geo_query(params, core_termmap())
    assert query is not None
    return query


def test_georel() -> None:
    assert parse_georel("within") == ("within", None, None)
    assert parse_georel("near;maxDistance==2000") == ("near", 2000.0, None)
    assert parse_georel("near;minDistance==1.5") == ("near", None, 1.5)


@pytest.mark.parametrize(
    ("georel", "fragment"),
    [
        ("near", "maxDistance"),
        ("near;maxDistance=1", "maxDistance"),
        ("near;maxDistance==-1", "maxDistance"),
        ("inside", "unknown relation"),
        ("Within", "unknown relation"),
    ],
)
def test_georel_errors(georel: str, fragment: str) -> None:
    with pytest.raises(BadRequestData, match=fragment):
        parse_georel(georel)


def test_haversine() -> None:
    assert haversine_m(0, 0, 1, 0) == pytest.approx(DEGREE_M, rel=1e-6)
    assert haversine_m(0, 0, 0, 1) == pytest.approx(DEGREE_M, rel=1e-6)
    assert haversine_m(179.5, 0, -179.5, 0) == pytest.approx(DEGREE_M, rel=1e-6)


def test_distance_to_lines_and_polygons() -> None:
    origin = Point(0, 0)
    assert distance_m(origin, LineString([(1, -1), (1, 1)])) == pytest.approx(DEGREE_M, rel=1e-3)
    assert distance_m(origin, Polygon([(1, -1), (2, -1), (2, 1), (1, 1)])) == pytest.approx(DEGREE_M, rel=1e-3)
    assert distance_m(origin, Polygon([(-1, -1), (1, -1), (1, 1), (-1, 1)])) == 0.0
    north = Point(0, 60)
    assert distance_m(north, LineString([(1, 59), (1, 61)])) == pytest.approx(DEGREE_M / 2, rel=5e-3)
    across = Point(179.9, 0)
    assert distance_m(across, LineString([(-179.9, -1), (-179.9, 1)])) == pytest.approx(DEGREE_M / 5, rel=1e-3)


@pytest.mark.parametrize(
    ("georel", "expected"),
    [
        ("near;maxDistance==120000", True),
        ("near;maxDistance==100000", False),
        ("near;minDistance==100000", True),
        ("near;minDistance==120000", False),
    ],
)
def test_near_point(georel: str, expected: bool) -> None:
    e = entity({"type": "Point", "coordinates": [1, 0]})
    assert matches_geo(e, geo(georel, "Point", [0, 0])) is expected


def test_near_polygon_entity() -> None:
    e = entity({"type": "Polygon", "coordinates": [[[1, -1], [2, -1], [2, 1], [1, 1], [1, -1]]]})
    assert matches_geo(e, geo("near;maxDistance==112000", "Point", [0, 0]))
    assert not matches_geo(e, geo("near;maxDistance==110000", "Point", [0, 0]))
    assert matches_geo(e, geo("near;minDistance==110000", "Point", [0, 0]))


@pytest.mark.parametrize(
    ("stored", "georel", "expected"),
    [
        ({"type": "Point", "coordinates": [1, 1]}, "within", True),
        ({"type": "Point", "coordinates": [3, 3]}, "within", False),
        ({"type": "Point", "coordinates": [1, 1]}, "intersects", True),
        ({"type": "Point", "coordinates": [3, 3]}, "disjoint", True),
        ({"type": "Point", "coordinates": [1, 1]}, "disjoint", False),
        ({"type": "Polygon", "coordinates": SQUARE}, "equals", True),
        ({"type": "Polygon", "coordinates": [[[-1, -1], [3, -1], [3, 3], [-1, 3], [-1, -1]]]}, "contains", True),
        ({"type": "Polygon", "coordinates": [[[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]}, "overlaps", True),
        ({"type": "Polygon", "coordinates": [[[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]}, "within", False),
        ({"type": "LineString", "coordinates": [[-1, 1], [3, 1]]}, "intersects", True),
    ],
)
def test_predicates(stored: dict[str, Any], georel: str, expected: bool) -> None:
    assert matches_geo(entity(stored), geo(georel, "Polygon", SQUARE)) is expected


def test_any_instance_and_geoproperty() -> None:
    far = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [50, 50]}, "datasetId": "urn:d:1"}
    e = entity({"type": "Point", "coordinates": [1, 1]})
    e["attrs"][NGSI_LD + "location"].insert(0, far)
    assert matches_geo(e, geo("within", "Polygon", SQUARE))
    other = entity({"type": "Point", "coordinates": [1, 1]}, prop=V + "origin")
    assert not matches_geo(other, geo("within", "Polygon", SQUARE))
    assert matches_geo(other, geo("within", "Polygon", SQUARE, geoproperty="origin"))


def test_entity_without_geometry_or_with_bad_geometry() -> None:
    assert not matches_geo({"id": "urn:x", "type": [], "attrs": {}}, geo("within", "Polygon", SQUARE))
    bad = entity({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]})
    assert matches_geo(bad, geo("intersects", "Polygon", SQUARE)) in (True, False)
    not_geo = {"id": "urn:x", "type": [], "attrs": {NGSI_LD + "location": [{"type": "Property", "value": 3}]}}
    assert not matches_geo(not_geo, geo("within", "Polygon", SQUARE))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"georel": "within"}, "geometry, coordinates missing"),
        ({"geometry": "Point", "coordinates": "[0,0]"}, "georel missing"),
        ({"geoproperty": "location"}, "without georel"),
        ({"georel": "within", "geometry": "Circle", "coordinates": "[0,0]"}, "'Circle' is not one of"),
        ({"georel": "within", "geometry": "Point", "coordinates": "[0,"}, "not a JSON array"),
        ({"georel": "within", "geometry": "Point", "coordinates": "[200,0]"}, "outside WGS84"),
        ({"georel": "within", "geometry": "Polygon", "coordinates": "[[[0,0],[1,0],[1,1],[0,1]]]"}, "closed"),
        (
            {"georel": "near;maxDistance==10", "geometry": "Polygon", "coordinates": json.dumps(SQUARE)},
            "near needs a Point",
        ),
        ({"georel": "within", "geometry": "GeometryCollection", "coordinates": "[]"}, "not one of"),
        ({"georel": "", "geometry": "Point", "coordinates": "[0,0]"}, "empty"),
        ({"georel": "within", "geometry": "Point", "coordinates": "[0,0]", "geoproperty": "type"}, "keyword"),
    ],
)
def test_geo_errors(params: dict[str, str], fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_geo_query(params, core_termmap())
    assert fragment in info.value.detail


def test_a_self_crossing_polygon_queries_the_area_its_rings_bound() -> None:
    """Record 0104: valid GeoJSON (RFC 7946: closed rings of 4+ positions) though not a valid OGC surface."""
    bow_tie = "[[[0,0],[2,2],[2,0],[0,2],[0,0]]]"
    query = parse_geo_query({"georel": "intersects", "geometry": "Polygon", "coordinates": bow_tie}, core_termmap())
    assert query is not None and query.geometry.is_valid and query.geometry.area == pytest.approx(2.0)
    assert matches_geo(entity({"type": "Point", "coordinates": [1.9, 1.0]}), query)  # in the right triangle
    assert not matches_geo(entity({"type": "Point", "coordinates": [1.0, 1.9]}), query)  # above the crossing


def test_polygons_within_and_equal() -> None:
    """Clause 4.10: within and equals hold between Polygons (the entity's geometry first)."""
    inner = [[[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8], [0.2, 0.2]]]
    square = entity({"type": "Polygon", "coordinates": SQUARE})
    small = entity({"type": "Polygon", "coordinates": inner})
    assert matches_geo(small, geo("within", "Polygon", SQUARE)) and not matches_geo(
        square, geo("within", "Polygon", inner)
    )
    reversed_ring = [list(reversed(SQUARE[0]))]
    assert matches_geo(square, geo("equals", "Polygon", reversed_ring))  # the same area, the other winding
    assert not matches_geo(small, geo("equals", "Polygon", SQUARE))


def test_no_geo_query() -> None:
    assert parse_geo_query({}, core_termmap()) is None


def test_distance_to_a_line_far_across_the_antimeridian_is_not_zero() -> None:
    """A segment whose vertices wrap to opposite sides of the point's antipode once passed for 'on the point'."""
    from shapely.geometry import LineString, MultiLineString, Point, Polygon

    from broker.query.geo import distance_m, haversine_m

    assert distance_m(Point(-5, 0), LineString([(170, 0), (175, 0)])) == pytest.approx(haversine_m(-5, 0, 170, 0))
    crossing = LineString([(179, 1), (-179, 1)])  # crosses the antimeridian: 2 degrees long, not 358
    assert distance_m(Point(179.5, 0), crossing) == pytest.approx(haversine_m(179.5, 0, 179.5, 1), rel=1e-3)
    box = Polygon([(179, -1), (-179, -1), (-179, 1), (179, 1)])
    assert distance_m(Point(180, 0), box) == 0.0
    assert distance_m(Point(0, 0), box) > 19_000_000
    parts = MultiLineString([[(170, 0), (175, 0)], [(-4, 0), (-3, 0)]])
    assert distance_m(Point(-5, 0), parts) == pytest.approx(haversine_m(-5, 0, -4, 0))


def test_distance_to_segments_of_subnormal_length_is_bounded_by_the_vertices() -> None:
    """GEOS cannot place a nearest point on a segment 1e-300 degrees long: the vertices answer, no warning."""
    from shapely.geometry import LineString, Point

    from broker.query.geo import distance_m

    assert distance_m(Point(0.0, 0.0), LineString([(0.0, 5e-324), (0.0, 1e-300)])) == pytest.approx(0.0, abs=1e-6)
    assert distance_m(Point(1.0, 0.0), LineString([(0.0, 5e-324), (5e-324, 1e-300)])) == pytest.approx(
        111195.08, rel=1e-6
    )
