"""Geo-queries (clause 4.10) on Query Entities (5.7.2, HTTP binding 6.4.3.2 and 6.23): each georel on Points and
Polygons, the entity's geometry first ("entity geometry <georel> query geometry")."""

from __future__ import annotations

import json
from typing import Any

from conformance.cases._shared import ids, point
from conformance.kit import Kit, case

# A 0.1 degree square near Lyon, a smaller one inside it, and one elsewhere (all closed, counterclockwise rings).
SQUARE = [[[4.80, 45.70], [4.90, 45.70], [4.90, 45.80], [4.80, 45.80], [4.80, 45.70]]]
INNER = [[[4.83, 45.73], [4.87, 45.73], [4.87, 45.77], [4.83, 45.77], [4.83, 45.73]]]
ELSEWHERE = [[[2.30, 48.80], [2.40, 48.80], [2.40, 48.90], [2.30, 48.90], [2.30, 48.80]]]
# Crosses SQUARE's east edge: neither inside it nor apart from it.
ACROSS = [[[4.85, 45.74], [4.95, 45.74], [4.95, 45.76], [4.85, 45.76], [4.85, 45.74]]]


def _area(k: Kit, entity_type: str, coordinates: Any) -> dict[str, Any]:
    body = {
        "id": k.uid("Area"),
        "type": entity_type,
        "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": coordinates}},
    }
    k.entity(body)
    return body


def _spot(k: Kit, entity_type: str, lon: float, lat: float) -> dict[str, Any]:
    body = {"id": k.uid("Spot"), "type": entity_type, "location": point(lon, lat)}
    k.entity(body)
    return body


def _geo(k: Kit, entity_type: str, georel: str, geometry: str, coordinates: Any) -> set[str]:
    params = {"type": entity_type, "georel": georel, "geometry": geometry, "coordinates": json.dumps(coordinates)}
    return ids(k.query(params))


def _areas(k: Kit) -> tuple[str, dict[str, dict[str, Any]]]:
    entity_type = k.type_name("Area")
    shapes = {"square": SQUARE, "inner": INNER, "elsewhere": ELSEWHERE, "across": ACROSS}
    return entity_type, {name: _area(k, entity_type, coords) for name, coords in shapes.items()}


def _expect(k: Kit, got: set[str], areas: dict[str, dict[str, Any]], names: set[str], what: str) -> None:
    wanted = {areas[n]["id"] for n in names}
    k.expect(got == wanted, f"{what}: got {sorted(got)}, expected {sorted(wanted)} ({', '.join(sorted(names))})")


@case("4.10", "georel=within a Polygon selects the entities whose Polygon lies inside it.", also=("5.7.2", "6.4"))
def within_polygon_selects_polygons_inside(k: Kit) -> None:
    entity_type, areas = _areas(k)
    _expect(k, _geo(k, entity_type, "within", "Polygon", SQUARE), areas, {"square", "inner"}, "within SQUARE")


@case("4.10", "georel=equals a Polygon selects the entities whose Polygon is the same geometry.", also=("5.7.2",))
def equals_polygon_selects_the_same_polygon(k: Kit) -> None:
    entity_type, areas = _areas(k)
    _expect(k, _geo(k, entity_type, "equals", "Polygon", INNER), areas, {"inner"}, "equals INNER")


@case("4.10", "georel=equals a Point selects the entities located exactly there.", also=("5.7.2",))
def equals_point_selects_the_same_point(k: Kit) -> None:
    entity_type = k.type_name("Spot")
    here, there = _spot(k, entity_type, 4.85, 45.75), _spot(k, entity_type, 4.86, 45.75)
    got = _geo(k, entity_type, "equals", "Point", [4.85, 45.75])
    k.expect(got == {here["id"]}, f"equals Point gave {sorted(got)}, expected only {here['id']} (not {there['id']})")


@case("4.10", "georel=contains a Point selects the entities whose Polygon contains it.", also=("5.7.2",))
def contains_point(k: Kit) -> None:
    entity_type, areas = _areas(k)
    _expect(k, _geo(k, entity_type, "contains", "Point", [4.84, 45.76]), areas, {"square", "inner"}, "contains")


@case("4.10", "georel=intersects a Polygon selects every entity sharing a point with it.", also=("5.7.2",))
def intersects_polygon(k: Kit) -> None:
    entity_type, areas = _areas(k)
    got = _geo(k, entity_type, "intersects", "Polygon", INNER)
    _expect(k, got, areas, {"square", "inner", "across"}, "intersects INNER")


@case("4.10", "georel=disjoint a Polygon selects the entities sharing no point with it.", also=("5.7.2",))
def disjoint_polygon(k: Kit) -> None:
    entity_type, areas = _areas(k)
    _expect(k, _geo(k, entity_type, "disjoint", "Polygon", SQUARE), areas, {"elsewhere"}, "disjoint SQUARE")


@case("4.10", "georel=overlaps a Polygon selects the entities overlapping it partly.", also=("5.7.2",))
def overlaps_polygon(k: Kit) -> None:
    entity_type, areas = _areas(k)
    _expect(k, _geo(k, entity_type, "overlaps", "Polygon", SQUARE), areas, {"across"}, "overlaps SQUARE")


@case("4.10", "georel=within a MultiPolygon selects the entities inside any of its Polygons.", also=("5.7.2",))
def within_multipolygon(k: Kit) -> None:
    entity_type, areas = _areas(k)
    got = _geo(k, entity_type, "within", "MultiPolygon", [INNER, ELSEWHERE])
    _expect(k, got, areas, {"inner", "elsewhere"}, "within INNER + ELSEWHERE")


@case(
    "4.10", "georel=near;minDistance selects the entities at least that far (metres) from the point.", also=("5.7.2",)
)
def near_min_distance(k: Kit) -> None:
    entity_type = k.type_name("Spot")
    lyon, paris = _spot(k, entity_type, 4.8357, 45.764), _spot(k, entity_type, 2.3522, 48.8566)
    got = _geo(k, entity_type, "near;minDistance==100000", "Point", [4.84, 45.76])
    k.expect(got == {paris["id"]}, f"near;minDistance==100000 from Lyon gave {sorted(got)} (Lyon is {lyon['id']})")


@case("4.10", "An unknown georel is a BadRequestData error (400).", also=("5.7.2",))
def unknown_georel_is_400(k: Kit) -> None:
    params = {"type": k.type_name(), "georel": "touches", "geometry": "Point", "coordinates": "[4.8,45.7]"}
    k.expect_problem(k.http.get("/entities", params=params), 400, "BadRequestData")


@case("4.10", "A Polygon whose ring is not closed is a BadRequestData error (400).", also=("5.7.2", "4.7"))
def unclosed_polygon_is_400(k: Kit) -> None:
    ring = [[[4.8, 45.7], [4.9, 45.7], [4.9, 45.8], [4.8, 45.8]]]
    params = {"type": k.type_name(), "georel": "within", "geometry": "Polygon", "coordinates": json.dumps(ring)}
    k.expect_problem(k.http.get("/entities", params=params), 400, "BadRequestData")


@case("4.10", "A POST query with geoQ (coordinates a JSON array) selects like the GET form.", also=("6.23", "5.2.13"))
def post_query_geo_within(k: Kit) -> None:
    entity_type, areas = _areas(k)
    body = {
        "type": "Query",
        "entities": [{"type": entity_type}],
        "geoQ": {"georel": "equals", "geometry": "Polygon", "coordinates": SQUARE},
    }
    response = k.post("/entityOperations/query", body)
    k.expect_status(response, 200)
    _expect(k, ids(k.json(response)), areas, {"square"}, "POST geoQ equals SQUARE")
