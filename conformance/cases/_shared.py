"""Entity bodies and small checks shared by the case modules (no cases here)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx

from conformance.kit import Kit


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def vehicle(k: Kit, entity_type: str | None = None, /, **attrs: Any) -> dict[str, Any]:
    """A small entity in the normalized form with a Property, a Relationship and a GeoProperty."""
    body: dict[str, Any] = {
        "id": k.uid("Vehicle"),
        "type": entity_type or k.type_name("Vehicle"),
        "speed": prop(80, unitCode="KMH"),
        "isParked": rel("urn:ngsi-ld:OffStreetParking:conformance-downtown"),
        "location": point(4.8357, 45.764),
    }
    body.update(attrs)
    return body


def value_of(entity: dict[str, Any], attr: str) -> Any:
    """The value of a normalized Property (or the whole member when it is not an object)."""
    member = entity.get(attr)
    return member.get("value") if isinstance(member, dict) else member


def ids(entities: list[dict[str, Any]]) -> set[str]:
    return {str(e.get("id")) for e in entities}


def expect_attr_value(k: Kit, entity_id: str, attr: str, expected: Any) -> None:
    entity = k.get_entity(entity_id)
    k.expect(attr in entity, f"attribute {attr} missing from {entity_id}")
    k.expect(value_of(entity, attr) == expected, f"{attr} is {value_of(entity, attr)!r}, expected {expected!r}")


def expect_no_attr(k: Kit, entity_id: str, attr: str) -> None:
    k.expect(attr not in k.get_entity(entity_id), f"attribute {attr} still present on {entity_id}")


def map_path(k: Kit, response: httpx.Response) -> str:
    """The path (under the API root) of the EntityMap that the NGSILD-EntityMap header names, deleted after the case."""
    location = unquote(response.headers.get("NGSILD-EntityMap", ""))
    k.expect("/entityMaps/" in location, f"NGSILD-EntityMap header is {location!r}")
    path = "/entityMaps/" + location.split("/entityMaps/", 1)[1]
    k.cleanup(lambda: k.http.delete(path))
    return path


def expect_entity_map(k: Kit, body: Any, entity_ids: set[str]) -> None:
    """An EntityMap (clause 5.2.39) whose entityMap member holds exactly `entity_ids`."""
    k.expect(isinstance(body, dict) and body.get("type") == "EntityMap", "the body is not an EntityMap object")
    k.expect("expiresAt" in body, "the EntityMap has no expiresAt")
    mapped = body.get("entityMap")
    k.expect(isinstance(mapped, dict) and set(mapped) == entity_ids, f"entityMap is {mapped!r}")
