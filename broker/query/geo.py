"""Geo-queries (clause 4.10): georel, geometry, coordinates and geoproperty, parsed and evaluated.

    georel = "near;maxDistance==" N / "near;minDistance==" N / "within" / "contains" / "intersects"
           / "equals" / "disjoint" / "overlaps"

The relation reads "entity geometry <georel> query geometry": `within` selects entities inside the query
polygon, `contains` entities whose geometry contains the query geometry. Predicates are shapely's (planar, on
longitude/latitude degrees, which is what GeoJSON coordinates are). `near` needs a Point and measures metres on
the WGS84 sphere, see `distance_m`.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson
import shapely
from shapely.geometry import LineString, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from shapely.validation import explain_validity, make_valid

from broker.core.errors import BadRequestData
from broker.core.geojson import validate_geometry
from broker.core.model import Entity
from broker.ld.termmap import TermMap
from broker.query.common import DEFAULT_LIMITS, Limits, check_length, expand_name

RELATIONS: Final = frozenset({"within", "contains", "intersects", "equals", "disjoint", "overlaps"})
QUERY_GEOMETRIES: Final = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"})
DEFAULT_GEOPROPERTY: Final = "location"
#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M: Final = 6_371_008.8

_NEAR = re.compile(r"near;(maxDistance|minDistance)==([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\Z")


@dataclass(frozen=True, slots=True)
class GeoQuery:
    """A validated geo-query. `relation` is one of RELATIONS or "near"; for near, `max_distance` or
    `min_distance` (metres) is set."""

    relation: str
    geometry: BaseGeometry
    geojson: Mapping[str, Any]
    geoproperty: str
    max_distance: float | None = None
    min_distance: float | None = None


def parse_georel(text: str) -> tuple[str, float | None, float | None]:
    """(relation, maxDistance, minDistance) of a georel string."""
    if text in RELATIONS:
        return text, None, None
    found = _NEAR.match(text)
    if found is None:
        if text.startswith("near"):
            raise BadRequestData(
                f"georel: {text!r} is not 'near;maxDistance==<metres>' or 'near;minDistance==<metres>'"
            )
        raise BadRequestData(f"georel: unknown relation {text!r} (expected near, {', '.join(sorted(RELATIONS))})")
    distance = float(found.group(2))
    if not math.isfinite(distance):
        raise BadRequestData(f"georel: distance {found.group(2)!r} is not a finite number")
    if found.group(1) == "maxDistance":
        return "near", distance, None
    return "near", None, distance


def parse_geometry(kind: str, coordinates: str) -> tuple[BaseGeometry, dict[str, Any]]:
    """The query geometry from the geometry and coordinates parameters, validated as RFC 7946 asks."""
    if kind not in QUERY_GEOMETRIES:
        raise BadRequestData(f"geometry: {kind!r} is not one of {', '.join(sorted(QUERY_GEOMETRIES))}")
    try:
        coords = orjson.loads(coordinates)
    except orjson.JSONDecodeError as exc:
        raise BadRequestData(f"coordinates: {coordinates[:80]!r} is not a JSON array ({exc})") from exc
    geojson = {"type": kind, "coordinates": coords}
    validate_geometry(geojson, "coordinates")
    try:
        geometry = shape(geojson)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.ShapelyError) as exc:
        raise BadRequestData(f"coordinates: not a valid {kind} ({exc})") from exc
    if not geometry.is_valid:
        # RFC 7946 asks of a Polygon only closed rings of four or more positions (and lets parsers accept either
        # winding); a ring that crosses itself is valid GeoJSON though not a valid OGC surface. Clause 4.10 takes
        # any GeoJSON geometry, so the query uses the area the rings bound (make_valid) instead of refusing it:
        # decision record 0104.
        geometry = make_valid(geometry)
        if geometry.is_empty:
            raise BadRequestData(f"coordinates: the {kind} bounds nothing: {explain_validity(shape(geojson))}")
    return geometry, geojson


def parse_geo_query(params: Mapping[str, str], tm: TermMap, *, limits: Limits = DEFAULT_LIMITS) -> GeoQuery | None:
    """The geo-query of a request, None when it has none; georel, geometry and coordinates come together."""
    present = [name for name in ("georel", "geometry", "coordinates") if params.get(name) is not None]
    if not present:
        if params.get("geoproperty") is not None:
            raise BadRequestData("geoproperty: given without georel, geometry and coordinates")
        return None
    missing = [name for name in ("georel", "geometry", "coordinates") if name not in present]
    if missing:
        raise BadRequestData(f"geo-query: {', '.join(missing)} missing (georel, geometry and coordinates go together)")
    check_length("georel", params["georel"], limits)
    check_length("geometry", params["geometry"], limits)
    check_length("coordinates", params["coordinates"], limits, limits.max_coordinates_length)
    relation, max_distance, min_distance = parse_georel(params["georel"])
    geometry, geojson = parse_geometry(params["geometry"], params["coordinates"])
    if relation == "near" and not isinstance(geometry, Point):
        raise BadRequestData(f"geometry: near needs a Point, not {params['geometry']}")
    prop = params.get("geoproperty") or DEFAULT_GEOPROPERTY
    return GeoQuery(relation, geometry, geojson, expand_name(tm, prop, "geoproperty"), max_distance, min_distance)


# -- distances -------------------------------------------------------------------------------------------------
def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres on the WGS84 mean sphere."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def distance_m(point: Point, geometry: BaseGeometry) -> float:
    """Distance in metres from `point` to the nearest point of `geometry` (0 when inside or on it).

    Vertices-only geometries (Point, MultiPoint) are measured exactly with haversine. For lines and polygons
    the nearest point is found in a local equirectangular projection centred on `point` (longitudes unwrapped
    around it, so the antimeridian is no edge) and measured with haversine; the vertices are measured too and the
    smallest distance wins. The result is a true great-circle distance to a point of the geometry, so it is never
    below the exact distance; the choice of that point is exact within a few kilometres and off by well under
    1 % up to several hundred kilometres, which is the range `near` queries ask about.
    """
    lon0, lat0 = point.x, point.y
    if geometry.geom_type in ("Point", "MultiPoint"):
        return min(haversine_m(lon0, lat0, p.x, p.y) for p in _points(geometry))
    if hasattr(geometry, "geoms"):  # each part on its own: each is unwrapped around the point by itself
        return min(distance_m(point, part) for part in geometry.geoms)
    scale = math.cos(math.radians(lat0))
    local = _local(geometry, lon0, lat0, scale)
    origin = Point(0.0, 0.0)
    # Segments a few subnormal numbers long make GEOS divide by (nearly) zero: its warnings are not errors here,
    # and a point it could not place (NaN) leaves the answer to the vertices below.
    best = math.inf
    with np.errstate(all="ignore"), contextlib.suppress(ValueError):  # ValueError: GEOS found no nearest point
        if local.covers(origin):
            return 0.0
        nearest = nearest_points(origin, local)[1]
        lon = lon0 + (nearest.x / scale if scale > 1e-12 else 0.0)
        best = haversine_m(lon0, lat0, lon, lat0 + nearest.y)
    if math.isnan(best):
        best = math.inf
    # Far away the projection may pick a worse point than a vertex: the vertices are points of the geometry too.
    for x, y in shapely.get_coordinates(geometry):
        best = min(best, haversine_m(lon0, lat0, float(x), float(y)))
    return best


def _unwrap(lons: Any, start: float) -> Any:
    """Longitudes made continuous along a line (no step longer than 180 degrees), the first one the copy of
    itself nearest to `start`: a segment that crosses the antimeridian stays one short segment."""
    first = start + ((lons[0] - start + 180.0) % 360.0) - 180.0
    steps = (np.diff(lons) + 180.0) % 360.0 - 180.0
    return np.concatenate(([first], first + np.cumsum(steps)))


def _local(geometry: BaseGeometry, lon0: float, lat0: float, scale: float) -> BaseGeometry:
    """A line or polygon in a local equirectangular projection centred on (lon0, lat0), metres-proportional."""

    def ring(coords: Any, start: float) -> Any:
        xy = np.asarray(coords, dtype=float)[:, :2].copy()
        xy[:, 0] = (_unwrap(xy[:, 0], start) - lon0) * scale
        xy[:, 1] -= lat0
        return xy

    if isinstance(geometry, Polygon):
        shell = ring(geometry.exterior.coords, lon0)
        start = lon0 + shell[0, 0] / scale if scale > 1e-12 else lon0
        return Polygon(shell, [ring(hole.coords, start) for hole in geometry.interiors])
    return LineString(ring(geometry.coords, lon0))


def _points(geometry: BaseGeometry) -> Iterable[Point]:
    return [geometry] if isinstance(geometry, Point) else list(getattr(geometry, "geoms", []))


# -- evaluation ------------------------------------------------------------------------------------------------
def _geometries(entity: Entity, prop: str) -> Iterable[BaseGeometry]:
    """The shapes of every instance of the GeoProperty (any datasetId); unreadable stored values are skipped."""
    for instance in entity.get("attrs", {}).get(prop, ()):
        value = instance.get("value")
        if instance.get("type") != "GeoProperty" or not isinstance(value, dict):
            continue
        try:
            yield shape(value)
        except Exception:  # a stored value shapely cannot read matches nothing rather than failing the query
            continue


def relation_holds(relation: str, entity_geometry: BaseGeometry, query: GeoQuery) -> bool:
    """One predicate, entity geometry first; shapely errors on degenerate stored geometries count as false."""
    try:
        if relation == "near":
            distance = distance_m(query.geometry, entity_geometry)
            if query.max_distance is not None:
                return distance <= query.max_distance
            return distance >= (query.min_distance or 0.0)
        predicate = getattr(entity_geometry, relation if relation != "equals" else "equals")
        return bool(predicate(query.geometry))
    except shapely.errors.ShapelyError:
        return False


def matches_geo(entity: Entity, query: GeoQuery) -> bool:
    """Whether ANY instance of the entity's geoproperty satisfies the relation."""
    return any(relation_holds(query.relation, g, query) for g in _geometries(entity, query.geoproperty))
