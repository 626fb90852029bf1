"""Entities: create, retrieve, replace, merge, delete (clauses 5.6.1, 5.6.6, 5.6.17, 5.6.18, 5.7.1; HTTP binding
6.4, 6.5) and their representations (4.5, 4.21)."""

from __future__ import annotations

from urllib.parse import unquote

import httpx

from conformance.cases._shared import expect_attr_value, expect_no_attr, prop, value_of, vehicle
from conformance.kit import CORE_CONTEXT, LD_JSON, Kit, case, link_header


@case(
    "5.6.1",
    "Create Entity answers 201 Created with a Location header holding the entity's relative path.",
    also=("6.4",),
)
def create_answers_201_with_location(k: Kit) -> None:
    body = vehicle(k)
    response = k.entity(body)
    location = unquote(response.headers.get("location", ""))
    k.expect(location.endswith(f"/entities/{body['id']}"), f"Location {location!r} does not name the new entity")


@case(
    "6.4",
    "The Entity List answers at /entities/, its resource URI as Table 6.2-1 writes it: POST creates and GET queries, "
    "with no redirect.",
    also=("5.6.1", "5.7.2"),
)
def entity_list_uri_with_its_trailing_slash(k: Kit) -> None:
    body = vehicle(k)
    created = k.post("/entities/", body)
    k.expect_status(created, 201)
    k.delete_later(f"/entities/{body['id']}")
    found = k.http.get("/entities/", params={"type": body["type"], "id": body["id"]})
    k.expect_status(found, 200)
    ids = [e.get("id") for e in k.json(found)]
    k.expect(ids == [body["id"]], f"GET /entities/ found {ids!r}")


@case("5.6.1", "Creating an entity whose id already exists is an AlreadyExists error (409).", also=("6.4", "6.3.2"))
def create_existing_is_already_exists(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.post("/entities", body), 409, "AlreadyExists")


@case("5.5.4", "A request body that is not valid JSON is an InvalidRequest error (400).", also=("6.4",))
def create_invalid_json_is_invalid_request(k: Kit) -> None:
    response = k.http.post(
        "/entities", content=b'{"id": "urn:ngsi-ld:X:1", "type": ', headers={"Content-Type": "application/json"}
    )
    k.expect_problem(response, 400, "InvalidRequest")


@case("5.5.4", "An entity whose id is not a URI is a BadRequestData error (400).", also=("6.4",))
def create_non_uri_id_is_bad_request_data(k: Kit) -> None:
    body = vehicle(k)
    body["id"] = "not a uri"
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case("5.5.4", "An entity without a type is a BadRequestData error (400).", also=("6.4",))
def create_without_type_is_bad_request_data(k: Kit) -> None:
    body = vehicle(k)
    del body["type"]
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case(
    "5.5.4",
    "Creating an entity with urn:ngsi-ld:null as a Property value is a BadRequestData error (400).",
    also=("6.4",),
)
def create_with_null_value_is_bad_request_data(k: Kit) -> None:
    body = vehicle(k, speed=prop("urn:ngsi-ld:null"))
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case("5.7.1", "Retrieve Entity answers 200 with the entity in the normalized representation.", also=("6.5",))
def retrieve_normalized(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    entity = k.get_entity(body["id"])
    k.expect(entity.get("id") == body["id"] and entity.get("type") == body["type"], "id or type differ")
    speed = entity.get("speed")
    k.expect(
        isinstance(speed, dict) and speed.get("type") == "Property" and speed.get("value") == 80,
        f"speed is {speed!r}, expected a Property of value 80",
    )
    k.expect(isinstance(speed, dict) and speed.get("unitCode") == "KMH", "unitCode of speed lost")
    parked = entity.get("isParked")
    k.expect(
        isinstance(parked, dict)
        and parked.get("type") == "Relationship"
        and parked.get("object") == body["isParked"]["object"],
        f"isParked is {parked!r}",
    )
    location = entity.get("location")
    k.expect(
        isinstance(location, dict)
        and location.get("type") == "GeoProperty"
        and location.get("value") == body["location"]["value"],
        f"location is {location!r}",
    )


@case("5.7.1", "Retrieving an unknown entity is a ResourceNotFound error (404).", also=("6.5", "6.3.2"))
def retrieve_unknown_is_not_found(k: Kit) -> None:
    k.expect_problem(k.http.get(f"/entities/{k.uid()}"), 404, "ResourceNotFound")


@case(
    "4.5.4",
    "format=simplified (and options=keyValues) gives each attribute as its bare value.",
    also=("5.7.1", "6.3.7"),
)
def retrieve_simplified(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    for params in ({"format": "simplified"}, {"options": "keyValues"}):
        entity = k.get_entity(body["id"], **params)
        k.expect(entity.get("speed") == 80, f"{params}: speed is {entity.get('speed')!r}, expected 80")
        k.expect(entity.get("isParked") == body["isParked"]["object"], f"{params}: isParked is not the object URI")


@case("4.5", "format=concise leaves out the type member of attributes.", also=("5.7.1", "6.3.7"))
def retrieve_concise(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    entity = k.get_entity(body["id"], format="concise")
    speed = entity.get("speed")
    k.expect(
        speed == 80 or (isinstance(speed, dict) and "type" not in speed and speed.get("value") == 80),
        f"concise speed is {speed!r}",
    )
    parked = entity.get("isParked")
    k.expect(
        isinstance(parked, dict) and "type" not in parked and parked.get("object") == body["isParked"]["object"],
        f"concise isParked is {parked!r}",
    )


@case("4.21", "pick reduces the entity to the listed members (id, type or attribute names).", also=("5.7.1", "6.5"))
def retrieve_pick(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    entity = k.get_entity(body["id"], pick="id,speed")
    members = set(entity) - {"@context"}
    k.expect(members == {"id", "speed"}, f"pick=id,speed gave members {sorted(members)}")


@case("4.21", "omit removes the listed members from the entity.", also=("5.7.1", "6.5"))
def retrieve_omit(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    entity = k.get_entity(body["id"], omit="speed,location")
    k.expect("speed" not in entity and "location" not in entity, "omitted attributes still present")
    k.expect("isParked" in entity and entity.get("id") == body["id"], "omit removed more than asked")


@case("5.7.1", "attrs limits the retrieved entity to the listed attributes.", also=("6.5",))
def retrieve_attrs(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    entity = k.get_entity(body["id"], attrs="speed")
    k.expect(
        "speed" in entity and "location" not in entity and "isParked" not in entity,
        f"attrs=speed gave members {sorted(entity)}",
    )


@case("4.8", "options=sysAttrs adds createdAt and modifiedAt to the entity and its attributes.", also=("5.7.1",))
def retrieve_sys_attrs(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    entity = k.get_entity(body["id"], options="sysAttrs")
    k.expect("createdAt" in entity and "modifiedAt" in entity, "entity lacks createdAt/modifiedAt")
    speed = entity.get("speed")
    k.expect(
        isinstance(speed, dict) and "createdAt" in speed and "modifiedAt" in speed,
        "attribute lacks createdAt/modifiedAt",
    )
    plain = k.get_entity(body["id"])
    k.expect("createdAt" not in plain, "createdAt shown without options=sysAttrs")


@case("4.5.5", "Instances of one attribute with distinct datasetIds are kept and returned together.", also=("5.7.1",))
def multi_attribute_instances(k: Kit) -> None:
    body = vehicle(k, speed=[prop(80), prop(79, datasetId="urn:ngsi-ld:Dataset:gps")])
    k.entity(body)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(isinstance(speed, list) and len(speed) == 2, f"speed is {speed!r}, expected two instances")
    assert isinstance(speed, list)
    by_dataset = {i.get("datasetId"): i.get("value") for i in speed if isinstance(i, dict)}
    k.expect(by_dataset == {None: 80, "urn:ngsi-ld:Dataset:gps": 79}, f"instances are {by_dataset}")


@case(
    "4.5",
    "A LanguageProperty keeps its languageMap, and lang= reduces it to the chosen language.",
    also=("4.15", "5.7.1"),
)
def language_property(k: Kit) -> None:
    body = vehicle(k, name={"type": "LanguageProperty", "languageMap": {"fr": "Bus de nuit", "en": "Night bus"}})
    k.entity(body)
    name = k.get_entity(body["id"]).get("name")
    k.expect(isinstance(name, dict) and name.get("languageMap") == body["name"]["languageMap"], f"name is {name!r}")
    french = k.get_entity(body["id"], lang="fr").get("name")
    k.expect(isinstance(french, dict) and french.get("value") == "Bus de nuit", f"name with lang=fr is {french!r}")


@case("5.6.6", "Delete Entity answers 204 and the entity is gone (404 afterwards).", also=("6.5",))
def delete_entity(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.http.delete(f"/entities/{body['id']}"), 204)
    k.expect_problem(k.http.get(f"/entities/{body['id']}"), 404, "ResourceNotFound")


@case("5.6.6", "Deleting an unknown entity is a ResourceNotFound error (404).", also=("6.5",))
def delete_unknown_is_not_found(k: Kit) -> None:
    k.expect_problem(k.http.delete(f"/entities/{k.uid()}"), 404, "ResourceNotFound")


@case("5.6.18", "Replace Entity answers 204 and the entity then holds exactly the new attributes.", also=("6.5",))
def replace_entity(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    replacement = {"id": body["id"], "type": body["type"], "fuel": prop(42)}
    k.expect_status(k.put(f"/entities/{body['id']}", replacement), 204)
    entity = k.get_entity(body["id"])
    k.expect(value_of(entity, "fuel") == 42, "new attribute missing after replace")
    k.expect("speed" not in entity and "location" not in entity, "old attributes survived the replace")


@case("5.6.18", "Replacing an unknown entity is a ResourceNotFound error (404).", also=("6.5",))
def replace_unknown_is_not_found(k: Kit) -> None:
    entity_id = k.uid()
    response = k.put(f"/entities/{entity_id}", {"id": entity_id, "type": "Thing", "fuel": prop(1)})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.6.17",
    "Merge Entity answers 204, changes the given attributes, adds new ones and keeps the others.",
    also=("6.5",),
)
def merge_entity(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}", {"speed": prop(55), "fuel": prop(42)}), 204)
    entity = k.get_entity(body["id"])
    k.expect(value_of(entity, "speed") == 55, "speed not merged")
    k.expect(value_of(entity, "fuel") == 42, "fuel not added")
    k.expect("isParked" in entity and "location" in entity, "merge removed untouched attributes")


@case("5.6.17", "In Merge Entity, urn:ngsi-ld:null as an attribute's value deletes that attribute.", also=("6.5",))
def merge_null_deletes_attribute(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}", {"speed": "urn:ngsi-ld:null"}), 204)
    expect_no_attr(k, body["id"], "speed")


@case("6.3.4", "Merge Entity accepts application/merge-patch+json as application/json.", also=("5.6.17",))
def merge_patch_content_type(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}", {"speed": prop(12)}, content_type="application/merge-patch+json")
    k.expect_status(response, 204)
    expect_attr_value(k, body["id"], "speed", 12)


@case("5.6.17", "Merging into an unknown entity is a ResourceNotFound error (404).", also=("6.5",))
def merge_unknown_is_not_found(k: Kit) -> None:
    k.expect_problem(k.patch(f"/entities/{k.uid()}", {"speed": prop(1)}), 404, "ResourceNotFound")


@case(
    "5.6.21",
    "Purge Entities (DELETE /entities?type=) deletes every entity of the type.",
    feature="purge",
    also=("6.4",),
)
def purge_by_type(k: Kit) -> None:
    entity_type = k.type_name("Purged")
    first, second = vehicle(k, entity_type), vehicle(k, entity_type)
    k.entity(first)
    k.entity(second)
    response = k.http.delete("/entities", params={"type": entity_type})
    k.not_implemented_if(response, "purge")
    k.expect_status(response, 204, 200)
    left = k.query({"type": entity_type})
    k.expect(left == [], f"{len(left)} entities left after the purge")


@case(
    "5.5.4",
    "An attribute whose type is not an NGSI-LD attribute type is a BadRequestData error (400).",
    also=("6.4", "4.5"),
)
def create_unknown_attribute_type_is_400(k: Kit) -> None:
    body = vehicle(k, speed={"type": "Speedometer", "value": 80})
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case(
    "5.5.4", "A GeoProperty whose value is not a GeoJSON geometry is a BadRequestData error (400).", also=("6.4", "4.7")
)
def create_invalid_geometry_is_400(k: Kit) -> None:
    body = vehicle(k, location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": "north"}})
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case(
    "5.6.17",
    "Merge Entity with format=simplified takes bare values and keeps each attribute's type.",
    also=("6.5", "4.5.4"),
)
def merge_simplified(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}", {"speed": 70}, params={"format": "simplified"}), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(
        isinstance(speed, dict) and speed.get("type") == "Property" and speed.get("value") == 70,
        f"speed after a simplified merge is {speed!r}",
    )


@case("5.6.2", "In Update Attributes, an attribute whose value is urn:ngsi-ld:null is deleted.", also=("6.6", "5.5.8"))
def update_null_deletes_attribute(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs", {"speed": prop("urn:ngsi-ld:null")})
    if response.status_code == 422:
        k.missing("ngsi-ld-null", "Update Attributes answered 422 OperationNotSupported to NGSI-LD Null (allowed)")
    k.expect_status(response, 204)
    expect_no_attr(k, body["id"], "speed")


# -- issue 17: entity operations case by case, from the V1.9.1 text ------------------------------------------------
@case("6.3.5", "Create Entity in application/ld+json with the @context in the body answers 201.", also=("5.6.1", "6.4"))
def create_ld_json(k: Kit) -> None:
    body = {**vehicle(k), "@context": CORE_CONTEXT}
    response = k.post("/entities", body, content_type=LD_JSON)
    k.expect_status(response, 201)
    k.delete_later(f"/entities/{body['id']}")
    expect_attr_value(k, body["id"], "speed", 80)


@case("6.3.5", "An application/json entity body holding @context is a BadRequestData error (400).", also=("5.6.1",))
def create_json_with_context_is_bad_request(k: Kit) -> None:
    body = {**vehicle(k), "@context": CORE_CONTEXT}
    k.delete_later(f"/entities/{body['id']}")
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case("6.3.5", "An application/ld+json entity body without @context is a BadRequestData error (400).", also=("5.6.1",))
def create_ld_json_without_context_is_bad_request(k: Kit) -> None:
    body = vehicle(k)
    k.delete_later(f"/entities/{body['id']}")
    k.expect_problem(k.post("/entities", body, content_type=LD_JSON), 400, "BadRequestData")


@case("6.3.5", "An application/ld+json body sent with a context Link header is a BadRequestData error (400).")
def create_ld_json_with_link_is_bad_request(k: Kit) -> None:
    body = {**vehicle(k), "@context": CORE_CONTEXT}
    k.delete_later(f"/entities/{body['id']}")
    response = k.post("/entities", body, content_type=LD_JSON, headers=link_header(CORE_CONTEXT))
    k.expect_problem(response, 400, "BadRequestData")


@case("5.5.4", "A Relationship whose object is not a URI is a BadRequestData error (400).", also=("5.6.1", "4.5.3"))
def create_relationship_object_not_uri_is_bad_request(k: Kit) -> None:
    body = vehicle(k, isParked={"type": "Relationship", "object": "not a uri"})
    k.delete_later(f"/entities/{body['id']}")
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case("5.5.4", "A Property without a value is a BadRequestData error (400).", also=("5.6.1", "4.5.2"))
def create_property_without_value_is_bad_request(k: Kit) -> None:
    body = vehicle(k, speed={"type": "Property", "unitCode": "KMH"})
    k.delete_later(f"/entities/{body['id']}")
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case("5.5.4", "A Create Entity body that is a JSON array is a BadRequestData error (400).", also=("5.6.1", "6.4"))
def create_array_body_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entities", [vehicle(k)]), 400, "BadRequestData")


@case("5.6.1", "An entity created with a scope is retrieved with that scope.", also=("4.18", "6.4"))
def create_with_scope(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid/Gardens")
    k.entity(body)
    scope = k.get_entity(body["id"]).get("scope")
    k.expect(scope == "/Madrid/Gardens" or scope == ["/Madrid/Gardens"], f"scope is {scope!r}")


@case("5.7.1", "Retrieve Entity with a type selector the entity does not match is ResourceNotFound.", also=("6.5",))
def retrieve_type_selector_mismatch_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", params={"type": k.type_name("Other")})
    k.expect_problem(response, 404, "ResourceNotFound")


@case("5.6.6", "Delete Entity with an id that is not a URI is a BadRequestData error (400).", also=("6.5",))
def delete_non_uri_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.http.delete("/entities/not-a-uri"), 400, "BadRequestData")


@case("5.6.6", "Delete Entity with a type selector the entity does not match is ResourceNotFound.", also=("6.5",))
def delete_type_selector_mismatch_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.delete(f"/entities/{body['id']}", params={"type": k.type_name("Other")})
    k.expect_problem(response, 404, "ResourceNotFound")
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 200)


@case("5.6.17", "Merge Entity with no entity id in the path is a BadRequestData error (400).", also=("6.5",))
def merge_without_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.patch("/entities/", {"speed": prop(1)}), 400, "BadRequestData")


@case("5.6.17", "Merge Entity with an id that is not a URI is a BadRequestData error (400).", also=("6.5",))
def merge_non_uri_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.patch("/entities/not-a-uri", {"speed": prop(1)}), 400, "BadRequestData")


@case("5.6.17", "Merge Entity with a type selector the entity does not match is ResourceNotFound.", also=("6.5",))
def merge_type_selector_mismatch_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}", {"speed": prop(1)}, params={"type": k.type_name("Other")})
    k.expect_problem(response, 404, "ResourceNotFound")
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.17", "Merge Entity merges into an attribute and keeps the sub-attributes it leaves out.", also=("5.5.12",))
def merge_keeps_sub_attributes(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}", {"speed": {"value": 9}}), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 9 and speed.get("unitCode") == "KMH", f"{speed!r}")


@case("5.6.17", "Merge Entity with a new type in the fragment adds it to the entity's types.", also=("6.5",))
def merge_adds_type(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    extra = k.type_name("Extra")
    k.expect_status(k.patch(f"/entities/{body['id']}", {"type": extra}), 204)
    types = k.get_entity(body["id"]).get("type")
    k.expect(isinstance(types, list) and set(types) == {body["type"], extra}, f"type is {types!r}")


@case("5.6.17", "Merge Entity with a scope in the fragment replaces the entity's scope.", also=("6.5", "4.18"))
def merge_replaces_scope(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}", {"scope": "/Lyon"}), 204)
    scope = k.get_entity(body["id"]).get("scope")
    k.expect(scope == "/Lyon" or scope == ["/Lyon"], f"scope is {scope!r}")


@case(
    "5.6.17",
    "Merge Entity with observedAt updates the observedAt of the merged attributes that had one.",
    also=("6.5",),
)
def merge_common_observed_at(k: Kit) -> None:
    body = vehicle(k, speed=prop(80, observedAt="2026-01-01T00:00:00Z"))
    k.entity(body)
    when = "2026-02-02T10:00:00Z"
    k.expect_status(k.patch(f"/entities/{body['id']}", {"speed": prop(81)}, params={"observedAt": when}), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(isinstance(speed, dict) and speed.get("observedAt") == when, f"speed is {speed!r}")


@case("5.6.18", "Replace Entity with no entity id in the path is a BadRequestData error (400).", also=("6.5",))
def replace_without_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.put("/entities/", {"type": "Thing", "fuel": prop(1)}), 400, "BadRequestData")


@case("5.6.18", "Replace Entity with an id that is not a URI is a BadRequestData error (400).", also=("6.5",))
def replace_non_uri_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.put("/entities/not-a-uri", {"type": "Thing", "fuel": prop(1)}), 400, "BadRequestData")


@case("5.6.18", "Replace Entity keeps the entity's createdAt.", also=("6.5", "4.8"))
def replace_keeps_created_at(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    before = k.get_entity(body["id"], options="sysAttrs").get("createdAt")
    k.expect_status(k.put(f"/entities/{body['id']}", {"type": body["type"], "fuel": prop(1)}), 204)
    after = k.get_entity(body["id"], options="sysAttrs").get("createdAt")
    k.expect(before is not None and before == after, f"createdAt {before!r} became {after!r}")


@case("5.6.18", "Replace Entity with urn:ngsi-ld:null as a value is a BadRequestData error (400).", also=("5.5.4",))
def replace_with_null_is_bad_request(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.put(f"/entities/{body['id']}", {"type": body["type"], "speed": prop("urn:ngsi-ld:null")})
    k.expect_problem(response, 400, "BadRequestData")
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.18", "Replace Entity with a type selector the entity does not match is ResourceNotFound.", also=("6.5",))
def replace_type_selector_mismatch_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.put(f"/entities/{body['id']}", {"type": body["type"]}, params={"type": k.type_name("Other")})
    k.expect_problem(response, 404, "ResourceNotFound")
    expect_attr_value(k, body["id"], "speed", 80)


def _purge(k: Kit, params: dict[str, str]) -> httpx.Response:
    response = k.http.delete("/entities", params=params)
    k.not_implemented_if(response, "purge")
    return response


@case("5.6.21", "Purge Entities with only an id list is too wide a query: BadRequestData (400).", feature="purge")
def purge_ids_only_is_bad_request(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(_purge(k, {"id": body["id"]}), 400, "BadRequestData")
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 200)


@case("5.6.21", "Purge Entities limited to the local scope needs no further selector and answers 204.", feature="purge")
def purge_local_ids(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(_purge(k, {"id": body["id"], "local": "true"}), 204)
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 404)


@case("5.6.21", "Purge Entities with drop removes only the listed attributes.", feature="purge", also=("6.4",))
def purge_drop(k: Kit) -> None:
    body = vehicle(k, k.type_name("Purged"))
    k.entity(body)
    k.expect_status(_purge(k, {"type": body["type"], "drop": "speed"}), 204)
    entity = k.get_entity(body["id"])
    k.expect("speed" not in entity and "location" in entity, f"after drop=speed the entity is {entity!r}")


@case("5.6.21", "Purge Entities with keep removes every attribute but the listed ones.", feature="purge", also=("6.4",))
def purge_keep(k: Kit) -> None:
    body = vehicle(k, k.type_name("Purged"))
    k.entity(body)
    k.expect_status(_purge(k, {"type": body["type"], "keep": "speed"}), 204)
    entity = k.get_entity(body["id"])
    k.expect("speed" in entity and "location" not in entity and "isParked" not in entity, f"entity is {entity!r}")


@case("5.6.21", "Purge Entities with q deletes only the entities that meet it.", feature="purge", also=("6.4", "4.9"))
def purge_by_q(k: Kit) -> None:
    entity_type = k.type_name("Purged")
    slow, fast = vehicle(k, entity_type, speed=prop(10)), vehicle(k, entity_type, speed=prop(100))
    k.entity(slow)
    k.entity(fast)
    k.expect_status(_purge(k, {"type": entity_type, "q": "speed>50"}), 204)
    k.expect_status(k.http.get(f"/entities/{fast['id']}"), 404)
    k.expect_status(k.http.get(f"/entities/{slow['id']}"), 200)


@case("5.6.21", "Purge Entities with an id that is not a URI is a BadRequestData error (400).", feature="purge")
def purge_invalid_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(_purge(k, {"type": k.type_name("Purged"), "id": "not a uri"}), 400, "BadRequestData")
