"""GeoJSON geometry validation (IETF RFC 7946) for GeoProperty values and geo-queries (clause 4.7)."""

from __future__ import annotations

import math
from typing import Any, Final

from broker.core.errors import BadRequestData

GEOMETRY_TYPES: Final = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)


def looks_like_geometry(value: Any) -> bool:
    """True for a dict shaped like a GeoJSON geometry (used to infer GeoProperty in concise input)."""
    if not isinstance(value, dict) or not _is_geometry_type(value.get("type")):
        return False
    return "coordinates" in value or "geometries" in value


def _is_geometry_type(kind: Any) -> bool:
    return isinstance(kind, str) and kind in GEOMETRY_TYPES


def validate_geometry(value: Any, where: str) -> None:
    """Raise BadRequestData naming `where` unless `value` is a valid GeoJSON geometry in WGS84 degrees."""
    if not isinstance(value, dict):
        raise BadRequestData(f"{where}: a GeoJSON geometry must be a JSON object")
    kind = value.get("type")
    if not _is_geometry_type(kind):
        raise BadRequestData(f"{where}: unknown GeoJSON geometry type {kind!r}")
    if kind == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list):
            raise BadRequestData(f"{where}: a GeometryCollection needs a 'geometries' array")
        for i, member in enumerate(members):
            validate_geometry(member, f"{where}.geometries[{i}]")
        return
    if "coordinates" not in value:
        raise BadRequestData(f"{where}: a {kind} needs 'coordinates'")
    _CHECKERS[str(kind)](value["coordinates"], f"{where}.coordinates")


def _position(pos: Any, where: str) -> None:
    if not isinstance(pos, list) or not 2 <= len(pos) <= 3:
        raise BadRequestData(f"{where}: a position is an array of 2 or 3 numbers")
    for n in pos:
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
            raise BadRequestData(f"{where}: a position holds numbers only, got {n!r}")
    lon, lat = pos[0], pos[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequestData(f"{where}: longitude {lon} / latitude {lat} outside WGS84 bounds")


def _positions(seq: Any, where: str, minimum: int) -> None:
    if not isinstance(seq, list) or len(seq) < minimum:
        raise BadRequestData(f"{where}: expected an array of at least {minimum} positions")
    for i, pos in enumerate(seq):
        _position(pos, f"{where}[{i}]")


def _ring(seq: Any, where: str) -> None:
    _positions(seq, where, 4)
    if seq[0] != seq[-1]:
        raise BadRequestData(f"{where}: a linear ring must be closed (first position equals last)")


def _polygon(rings: Any, where: str) -> None:
    if not isinstance(rings, list) or not rings:
        raise BadRequestData(f"{where}: a Polygon is a non-empty array of linear rings")
    for i, ring in enumerate(rings):
        _ring(ring, f"{where}[{i}]")


def _many(check: Any, minimum: int = 0) -> Any:
    def run(seq: Any, where: str) -> None:
        if not isinstance(seq, list) or len(seq) < minimum:
            raise BadRequestData(f"{where}: expected an array")
        for i, item in enumerate(seq):
            check(item, f"{where}[{i}]")

    return run


_CHECKERS: Final = {
    "Point": _position,
    "MultiPoint": lambda seq, where: _positions(seq, where, 1),
    "LineString": lambda seq, where: _positions(seq, where, 2),
    "MultiLineString": _many(lambda seq, where: _positions(seq, where, 2), 1),
    "Polygon": _polygon,
    "MultiPolygon": _many(_polygon, 1),
}
