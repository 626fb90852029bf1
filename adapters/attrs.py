"""NGSI-LD attribute builders shared by the energy and water adapters (normalized form, clause 4.5)."""

from __future__ import annotations

import math
from typing import Any

from adapters.base import Entity
from adapters.units import normalise

Attr = dict[str, Any]


def prop(value: Any) -> Attr | None:
    """A Property, or None (left out of the entity) when there is no value."""
    return None if value is None else {"type": "Property", "value": value}


def quantity(value: float | None, unit: str) -> Attr | None:
    """A numeric Property in the canonical unit of its kind, with its UN/CEFACT unitCode."""
    if value is None:
        return None
    number, code = normalise(value, unit)
    return {"type": "Property", "value": number, "unitCode": code}


def rel(target: str | None) -> Attr | None:
    return None if target is None else {"type": "Relationship", "object": target}


def point(lon: float, lat: float) -> Attr:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}}


def line_string(coordinates: list[tuple[float, float]]) -> Attr:
    rounded = [[round(lon, 7), round(lat, 7)] for lon, lat in coordinates]
    return {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": rounded}}


def valid_wgs84(lon: float, lat: float) -> bool:
    return math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90


def entity(entity_id: str, entity_type: str, attrs: dict[str, Attr | None]) -> Entity:
    """An entity with the attributes that are present (None values left out)."""
    result: Entity = {"id": entity_id, "type": entity_type}
    result.update({name: attr for name, attr in attrs.items() if attr is not None})
    return result
