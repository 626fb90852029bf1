"""Entities: create, retrieve, replace, merge, delete (clauses 5.6.1, 5.6.6, 5.6.17, 5.6.18, 5.7.1; HTTP binding
6.4, 6.5) and their representations (4.5, 4.21)."""

from __future__ import annotations

from urllib.parse import unquote

from conformance.cases._shared import expect_attr_value, expect_no_attr, prop, value_of, vehicle
from conformance.kit import Kit, case


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
