"""Discovery of types and attributes (clauses 5.7.5-5.7.10; HTTP binding 6.25-6.28) and /info/sourceIdentity
(6.33)."""

from __future__ import annotations

import re
from typing import Any

from conformance.cases._shared import prop, vehicle
from conformance.kit import Kit, case

#: An absolute URI (RFC 3986 section 3: a scheme, a colon, then anything without spaces).
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def _get(k: Kit, path: str, **params: str) -> Any:
    response = k.http.get(path, params=params)
    k.expect_status(response, 200)
    return k.json(response)


@case("5.7.5", "GET /types answers an EntityTypeList whose typeList names the types in use.", also=("6.25",))
def types_list(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    listing = _get(k, "/types")
    k.expect(isinstance(listing, dict) and listing.get("type") == "EntityTypeList", f"/types gave {listing!r:.200}")
    k.expect(body["type"] in listing.get("typeList", []), f"{body['type']} missing from typeList")


@case("5.7.6", "GET /types?details=true answers EntityType objects with typeName and attributeNames.", also=("6.25",))
def types_details(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    details = _get(k, "/types", details="true")
    k.expect(isinstance(details, list), "/types?details=true is not an array")
    mine = [d for d in details if isinstance(d, dict) and d.get("typeName") == body["type"]]
    k.expect(len(mine) == 1, f"no EntityType for {body['type']}")
    k.expect(mine[0].get("type") == "EntityType", f"type member is {mine[0].get('type')!r}")
    k.expect(
        {"speed", "isParked", "location"} <= set(mine[0].get("attributeNames", [])),
        f"attributeNames are {mine[0].get('attributeNames')!r}",
    )


@case(
    "5.7.7", "GET /types/{type} answers an EntityTypeInfo with the entity count and attribute details.", also=("6.26",)
)
def type_information(k: Kit) -> None:
    entity_type = k.type_name("Info")
    k.entity(vehicle(k, entity_type))
    k.entity(vehicle(k, entity_type))
    info = _get(k, f"/types/{entity_type}")
    k.expect(isinstance(info, dict) and info.get("type") == "EntityTypeInfo", f"got {info!r:.200}")
    k.expect(info.get("typeName") == entity_type, f"typeName is {info.get('typeName')!r}")
    k.expect(info.get("entityCount") == 2, f"entityCount is {info.get('entityCount')!r}")
    names = {d.get("attributeName") for d in info.get("attributeDetails", []) if isinstance(d, dict)}
    k.expect({"speed", "isParked", "location"} <= names, f"attributeDetails name {sorted(map(str, names))}")


@case("5.7.7", "GET /types/{type} for a type no entity has is a ResourceNotFound error (404).", also=("6.26",))
def type_information_unknown_is_404(k: Kit) -> None:
    k.expect_problem(k.http.get(f"/types/{k.type_name('Nobody')}"), 404, "ResourceNotFound")


@case(
    "5.7.8", "GET /attributes answers an AttributeList whose attributeList names the attributes in use.", also=("6.27",)
)
def attributes_list(k: Kit) -> None:
    attr = k.attr_name()
    k.entity(vehicle(k, **{attr: prop(1)}))
    listing = _get(k, "/attributes")
    k.expect(isinstance(listing, dict) and listing.get("type") == "AttributeList", f"got {listing!r:.200}")
    k.expect(attr in listing.get("attributeList", []), f"{attr} missing from attributeList")


@case(
    "5.7.9", "GET /attributes?details=true answers Attribute objects with attributeName and typeNames.", also=("6.27",)
)
def attributes_details(k: Kit) -> None:
    attr = k.attr_name()
    body = vehicle(k, **{attr: prop(1)})
    k.entity(body)
    details = _get(k, "/attributes", details="true")
    k.expect(isinstance(details, list), "/attributes?details=true is not an array")
    mine = [d for d in details if isinstance(d, dict) and d.get("attributeName") == attr]
    k.expect(len(mine) == 1 and mine[0].get("type") == "Attribute", f"no Attribute for {attr}")
    k.expect(body["type"] in mine[0].get("typeNames", []), f"typeNames are {mine[0].get('typeNames')!r}")


@case(
    "5.7.10",
    "GET /attributes/{attr} answers the Attribute with its count, types and the entity types using it.",
    also=("6.28",),
)
def attribute_information(k: Kit) -> None:
    attr = k.attr_name()
    body = vehicle(k, **{attr: prop(1)})
    k.entity(body)
    info = _get(k, f"/attributes/{attr}")
    k.expect(isinstance(info, dict) and info.get("type") == "Attribute", f"got {info!r:.200}")
    k.expect(info.get("attributeName") == attr, f"attributeName is {info.get('attributeName')!r}")
    k.expect(info.get("attributeCount") == 1, f"attributeCount is {info.get('attributeCount')!r}")
    k.expect("Property" in info.get("attributeTypes", []), f"attributeTypes are {info.get('attributeTypes')!r}")
    k.expect(body["type"] in info.get("typeNames", []), f"typeNames are {info.get('typeNames')!r}")


@case(
    "5.7.10", "GET /attributes/{attr} for an attribute no entity has is a ResourceNotFound error (404).", also=("6.28",)
)
def attribute_information_unknown_is_404(k: Kit) -> None:
    k.expect_problem(k.http.get(f"/attributes/{k.attr_name('nobody')}"), 404, "ResourceNotFound")


@case("5.7.7", "EntityTypeInfo attributeDetails give each attribute's attributeTypes.", also=("6.26", "5.2.26"))
def type_information_attribute_types(k: Kit) -> None:
    entity_type = k.type_name("Info")
    k.entity(vehicle(k, entity_type, name={"type": "LanguageProperty", "languageMap": {"en": "car"}}))
    info = _get(k, f"/types/{entity_type}")
    kinds = {d.get("attributeName"): d.get("attributeTypes") for d in info.get("attributeDetails", [])}
    k.expect(kinds.get("isParked") == ["Relationship"], f"isParked attributeTypes {kinds.get('isParked')!r}")
    k.expect(kinds.get("location") == ["GeoProperty"], f"location attributeTypes {kinds.get('location')!r}")
    k.expect(kinds.get("name") == ["LanguageProperty"], f"name attributeTypes {kinds.get('name')!r}")


@case("5.7.10", "An Attribute's attributeCount counts the entities that have it.", also=("6.28", "5.2.27"))
def attribute_count_counts_entities(k: Kit) -> None:
    attr = k.attr_name()
    for _ in range(3):
        k.entity(vehicle(k, **{attr: prop(1)}))
    info = _get(k, f"/attributes/{attr}")
    k.expect(info.get("attributeCount") == 3, f"attributeCount is {info.get('attributeCount')!r}, expected 3")


@case("5.7.6", "GET /types?details=true lists an entity type once, whatever the number of its entities.")
def types_details_once(k: Kit) -> None:
    entity_type = k.type_name("Twice")
    k.entity(vehicle(k, entity_type))
    k.entity(vehicle(k, entity_type))
    details = _get(k, "/types", details="true")
    mine = [d for d in details if isinstance(d, dict) and d.get("typeName") == entity_type]
    k.expect(len(mine) == 1, f"{entity_type} is listed {len(mine)} times")


@case("5.7.8", "An attribute no entity holds any more leaves the AttributeList.", also=("6.27", "5.6.5"))
def attribute_list_forgets_deleted(k: Kit) -> None:
    attr = k.attr_name()
    body = vehicle(k, **{attr: prop(1)})
    k.entity(body)
    k.expect(attr in _get(k, "/attributes").get("attributeList", []), f"{attr} missing before the delete")
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/{attr}"), 204)
    k.expect(attr not in _get(k, "/attributes").get("attributeList", []), f"{attr} still listed after the delete")
    k.expect_problem(k.http.get(f"/attributes/{attr}"), 404, "ResourceNotFound")


@case("6.3.2", "A query parameter GET /types does not take is an InvalidRequest error (400).", also=("6.25",))
def types_unknown_parameter_is_invalid_request(k: Kit) -> None:
    k.expect_problem(k.http.get("/types", params={"frobnicate": "1"}), 400, "InvalidRequest")


@case("6.3.2", "A query parameter GET /attributes/{attr} does not take is an InvalidRequest error (400).")
def attribute_unknown_parameter_is_invalid_request(k: Kit) -> None:
    attr = k.attr_name()
    k.entity(vehicle(k, **{attr: prop(1)}))
    k.expect_problem(k.http.get(f"/attributes/{attr}", params={"limit": "1"}), 400, "InvalidRequest")


@case(
    "6.33",
    "GET /info/sourceIdentity answers a ContextSourceIdentity with id, type and contextSourceAlias.",
    feature="source-identity",
)
def source_identity(k: Kit) -> None:
    identity = _get(k, "/info/sourceIdentity")
    k.expect(isinstance(identity, dict) and identity.get("type") == "ContextSourceIdentity", f"got {identity!r:.200}")
    k.expect(
        all(m in identity for m in ("id", "contextSourceAlias", "contextSourceUptime", "contextSourceTimeAt")),
        f"members are {sorted(identity)}",
    )


@case(
    "5.2.40",
    "The ContextSourceIdentity id is a valid URI, and the same in every answer (it identifies the source).",
    feature="source-identity",
    also=("6.33",),
)
def source_identity_id_is_a_stable_uri(k: Kit) -> None:
    # Table 5.2.40-1: id "Valid URI", "Context Source ID"; 5.2.40: "the data uniquely identifying a Context Source"
    first, second = _get(k, "/info/sourceIdentity"), _get(k, "/info/sourceIdentity")
    k.expect(isinstance(first, dict) and isinstance(second, dict), "the answer is not a JSON object")
    ident = first.get("id")
    k.expect(isinstance(ident, str) and URI.match(ident) is not None, f"id {ident!r} is not an absolute URI")
    k.expect(second.get("id") == ident, f"the id changed between two answers: {ident!r}, {second.get('id')!r}")
