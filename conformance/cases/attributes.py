"""Attributes of an entity: append, update, partial update, delete, replace (clauses 5.6.2-5.6.5, 5.6.19; HTTP
binding 6.6, 6.7)."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import expect_attr_value, expect_no_attr, prop, vehicle
from conformance.kit import Kit, case


def _update_result(k: Kit, body: Any) -> tuple[list[Any], list[Any]]:
    """An UpdateResult (clause 5.2.18): {updated: [names], notUpdated: [{attributeName, reason}]}."""
    k.expect(
        isinstance(body, dict) and "updated" in body and "notUpdated" in body,
        f"207 body is not an UpdateResult: {body!r}",
    )
    return list(body["updated"]), list(body["notUpdated"])


@case("5.6.3", "Append Attributes answers 204 when every attribute is appended, and adds them.", also=("6.6",))
def append_attributes(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"fuel": prop(42)}), 204)
    expect_attr_value(k, body["id"], "fuel", 42)


@case("5.6.3", "Append Attributes overwrites an existing attribute unless options=noOverwrite.", also=("6.6",))
def append_overwrites_unless_no_overwrite(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"speed": prop(10)}), 204)
    expect_attr_value(k, body["id"], "speed", 10)
    response = k.post(f"/entities/{body['id']}/attrs", {"speed": prop(99)}, params={"options": "noOverwrite"})
    # 5.6.3.5: "whether all the new Attributes were appended or only some of them": speed was not, so 207.
    k.expect_status(response, 207)
    updated, not_updated = _update_result(k, k.json(response))
    k.expect(updated == [], f"updated is {updated!r}, expected nothing")
    # 6.3.6: "Only Fully Qualified Names shall be used in the payload body of ... partial success responses"
    names = [n.get("attributeName") for n in not_updated]
    k.expect(names == [k.expand("speed")], f"notUpdated is {not_updated!r}")
    expect_attr_value(k, body["id"], "speed", 10)


@case("5.6.3", "Appending to an unknown entity is a ResourceNotFound error (404).", also=("6.6",))
def append_unknown_entity_is_not_found(k: Kit) -> None:
    k.expect_problem(k.post(f"/entities/{k.uid()}/attrs", {"fuel": prop(1)}), 404, "ResourceNotFound")


@case("5.6.2", "Update Attributes answers 204 when every attribute exists, and changes them.", also=("6.6",))
def update_attributes(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(33)}), 204)
    expect_attr_value(k, body["id"], "speed", 33)


@case(
    "5.6.2", "Update Attributes appends the attributes the entity lacks (V1.9.1) and updates the others.", also=("6.6",)
)
def update_attributes_appends_missing(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(34), "fuel": prop(1)})
    k.expect_status(response, 204, 207)
    if response.status_code == 207:  # allowed for partial outcomes; then both must be listed as updated
        updated, _ = _update_result(k, k.json(response))
        k.expect({k.expand("speed"), k.expand("fuel")} <= set(updated), f"updated is {updated!r}")  # 6.3.6 FQNs
    expect_attr_value(k, body["id"], "speed", 34)
    expect_attr_value(k, body["id"], "fuel", 1)


@case("5.6.2", "Updating the attributes of an unknown entity is a ResourceNotFound error (404).", also=("6.6",))
def update_unknown_entity_is_not_found(k: Kit) -> None:
    k.expect_problem(k.patch(f"/entities/{k.uid()}/attrs", {"speed": prop(1)}), 404, "ResourceNotFound")


@case("5.6.4", "Partial Attribute update answers 204 and changes only what the fragment gives.", also=("6.7",))
def partial_attribute_update(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs/speed", {"value": 21}), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 21, f"speed is {speed!r}")
    k.expect(isinstance(speed, dict) and speed.get("unitCode") == "KMH", "partial update removed unitCode")


@case("5.6.4", "Partial update of an attribute the entity lacks is a ResourceNotFound error (404).", also=("6.7",))
def partial_update_unknown_attribute_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.patch(f"/entities/{body['id']}/attrs/fuel", {"value": 1}), 404, "ResourceNotFound")


@case("5.6.5", "Delete Attribute answers 204 and removes the attribute.", also=("6.7",))
def delete_attribute(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/speed"), 204)
    expect_no_attr(k, body["id"], "speed")


@case("5.6.5", "Deleting an attribute the entity lacks is a ResourceNotFound error (404).", also=("6.7",))
def delete_unknown_attribute_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.http.delete(f"/entities/{body['id']}/attrs/fuel"), 404, "ResourceNotFound")


@case("5.6.5", "Delete Attribute with datasetId removes only that instance.", also=("6.7", "4.5.5"))
def delete_attribute_instance_by_dataset_id(k: Kit) -> None:
    dataset = "urn:ngsi-ld:Dataset:gps"
    body = vehicle(k, speed=[prop(80), prop(79, datasetId=dataset)])
    k.entity(body)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/speed", params={"datasetId": dataset}), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(
        isinstance(speed, dict) and speed.get("value") == 80 and "datasetId" not in speed,
        f"after deleting the gps instance speed is {speed!r}",
    )


@case("5.6.19", "Replace Attribute answers 204 and the attribute becomes exactly the new one.", also=("6.7",))
def replace_attribute(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.put(f"/entities/{body['id']}/attrs/speed", prop(5)), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(
        isinstance(speed, dict) and speed.get("value") == 5 and "unitCode" not in speed, f"replaced speed is {speed!r}"
    )


@case("5.6.19", "Replacing an attribute the entity lacks is a ResourceNotFound error (404).", also=("6.7",))
def replace_unknown_attribute_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.put(f"/entities/{body['id']}/attrs/fuel", prop(5)), 404, "ResourceNotFound")


@case("5.6.3", "A Relationship appended to an entity keeps its object URI.", also=("6.6", "4.5"))
def append_relationship(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    target = k.uid("Person")
    k.expect_status(
        k.post(f"/entities/{body['id']}/attrs", {"driver": {"type": "Relationship", "object": target}}), 204
    )
    driver = k.get_entity(body["id"]).get("driver")
    k.expect(isinstance(driver, dict) and driver.get("object") == target, f"driver is {driver!r}")


# -- issue 17: attribute operations case by case, from the V1.9.1 text ---------------------------------------------
_GPS = "urn:ngsi-ld:Dataset:gps"


def _attr_of(k: Kit, entity_id: str, attr: str, **params: str) -> Any:
    return k.get_entity(entity_id, **params).get(attr)


def _instances(member: Any) -> list[Any]:
    return member if isinstance(member, list) else [member] if member is not None else []


@case("5.6.3", "Append Attributes with no entity id in the path is a BadRequestData error (400).", also=("6.6",))
def append_without_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entities//attrs", {"fuel": prop(1)}), 400, "BadRequestData")


@case("5.6.3", "Append Attributes on an entity id that is not a URI is a BadRequestData error (400).", also=("6.6",))
def append_non_uri_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entities/not-a-uri/attrs", {"fuel": prop(1)}), 400, "BadRequestData")


@case("5.6.3", "Append with noOverwrite lists the new attributes in updated and appends them.", also=("6.6", "5.2.18"))
def append_no_overwrite_appends_the_new_ones(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    fragment = {"speed": prop(1), "fuel": prop(2)}
    response = k.post(f"/entities/{body['id']}/attrs", fragment, params={"options": "noOverwrite"})
    k.expect_status(response, 207)
    updated, _ = _update_result(k, k.json(response))
    k.expect(updated == [k.expand("fuel")], f"updated is {updated!r}")
    expect_attr_value(k, body["id"], "fuel", 2)
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.3", "Append with noOverwrite adds the fragment's scopes to those of the entity.", also=("6.6", "4.18"))
def append_no_overwrite_adds_scopes(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    response = k.post(f"/entities/{body['id']}/attrs", {"scope": "/Lyon"}, params={"options": "noOverwrite"})
    k.expect_status(response, 204, 207)
    scope = k.get_entity(body["id"]).get("scope")
    k.expect(isinstance(scope, list) and set(scope) == {"/Madrid", "/Lyon"}, f"scope is {scope!r}")


@case(
    "5.6.3", "Append Attributes with a scope, overwriting allowed, replaces the entity's scope.", also=("6.6", "4.18")
)
def append_replaces_scope(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"scope": "/Lyon"}), 204)
    scope = k.get_entity(body["id"]).get("scope")
    k.expect(scope == "/Lyon" or scope == ["/Lyon"], f"scope is {scope!r}")


@case(
    "5.6.3", "Appending an instance with a new datasetId keeps the default instance beside it.", also=("6.6", "4.5.5")
)
def append_dataset_instance(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"speed": prop(7, datasetId=_GPS)}), 204)
    values = {s.get("datasetId"): s.get("value") for s in _instances(_attr_of(k, body["id"], "speed"))}
    k.expect(values == {None: 80, _GPS: 7}, f"speed instances are {values!r}")


@case("5.6.3", "Appending a fragment with a new type adds it to the entity's types.", also=("6.6",))
def append_adds_type(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    extra = k.type_name("Extra")
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"type": extra, "fuel": prop(1)}), 204)
    types = k.get_entity(body["id"]).get("type")
    k.expect(isinstance(types, list) and set(types) == {body["type"], extra}, f"type is {types!r}")


@case("5.6.3", "Append Attributes with a type selector the entity does not match is ResourceNotFound.", also=("6.6",))
def append_type_selector_mismatch_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.post(f"/entities/{body['id']}/attrs", {"fuel": prop(1)}, params={"type": k.type_name("Other")})
    k.expect_problem(response, 404, "ResourceNotFound")
    expect_no_attr(k, body["id"], "fuel")


@case("5.6.2", "Update Attributes with no entity id in the path is a BadRequestData error (400).", also=("6.6",))
def update_without_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.patch("/entities//attrs", {"speed": prop(1)}), 400, "BadRequestData")


@case("5.6.2", "Update Attributes on an entity id that is not a URI is a BadRequestData error (400).", also=("6.6",))
def update_non_uri_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.patch("/entities/not-a-uri/attrs", {"speed": prop(1)}), 400, "BadRequestData")


@case(
    "5.6.2",
    "A scope in Update Attributes on an entity without scope is ignored and the answer is 207.",
    also=("6.6", "5.2.18"),
)
def update_scope_of_unscoped_entity_is_207(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs", {"scope": "/Lyon"})
    k.expect_status(response, 207)
    _, not_updated = _update_result(k, k.json(response))
    names = [n.get("attributeName") for n in not_updated]
    k.expect(names == ["https://uri.etsi.org/ngsi-ld/scope"], f"notUpdated is {not_updated!r}")
    k.expect("scope" not in k.get_entity(body["id"]), "the scope was added to an entity that had none")


@case("5.6.2", "A scope in Update Attributes replaces the scope of an entity that has one.", also=("6.6", "4.18"))
def update_scope_replaces(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"scope": "/Lyon"}), 204)
    scope = k.get_entity(body["id"]).get("scope")
    k.expect(scope == "/Lyon" or scope == ["/Lyon"], f"scope is {scope!r}")


@case("5.6.2", "Update Attributes replaces an attribute whole: sub-attributes it leaves out are gone.", also=("6.6",))
def update_replaces_whole_attribute(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(5)}), 204)
    speed = _attr_of(k, body["id"], "speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 5 and "unitCode" not in speed, f"speed is {speed!r}")


@case("5.6.2", "Update Attributes keeps the createdAt of the attribute it replaces.", also=("6.6", "4.8"))
def update_keeps_attribute_created_at(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    before = _attr_of(k, body["id"], "speed", options="sysAttrs")
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(5)}), 204)
    after = _attr_of(k, body["id"], "speed", options="sysAttrs")
    k.expect(
        isinstance(before, dict) and isinstance(after, dict) and before.get("createdAt") == after.get("createdAt"),
        f"createdAt changed: {before!r} -> {after!r}",
    )


@case(
    "5.6.2", "Update Attributes with a datasetId replaces only the instance of that datasetId.", also=("6.6", "4.5.5")
)
def update_targets_dataset_instance(k: Kit) -> None:
    body = vehicle(k, speed=[prop(80), prop(79, datasetId=_GPS)])
    k.entity(body)
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(1, datasetId=_GPS)}), 204)
    values = {s.get("datasetId"): s.get("value") for s in _instances(_attr_of(k, body["id"], "speed"))}
    k.expect(values == {None: 80, _GPS: 1}, f"speed instances are {values!r}")


@case("5.6.4", "A Partial Attribute update that changes the attribute's type is a BadRequestData error (400).")
def partial_update_type_change_is_bad_request(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    fragment = {"type": "Relationship", "object": k.uid("Person")}
    k.expect_problem(k.patch(f"/entities/{body['id']}/attrs/speed", fragment), 400, "BadRequestData")
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.4", "A Partial Attribute update whose target attribute is scope is a BadRequestData error (400).")
def partial_update_of_scope_is_bad_request(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    k.expect_problem(k.patch(f"/entities/{body['id']}/attrs/scope", {"value": "/Lyon"}), 400, "BadRequestData")


@case("5.6.4", "A Partial Attribute update with no entity id in the path is a BadRequestData error (400).")
def partial_update_without_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.patch("/entities//attrs/speed", {"value": 1}), 400, "BadRequestData")


@case("5.6.4", "A Partial Attribute update of an unknown entity is a ResourceNotFound error (404).", also=("6.7",))
def partial_update_unknown_entity_is_not_found(k: Kit) -> None:
    k.expect_problem(k.patch(f"/entities/{k.uid()}/attrs/speed", {"value": 1}), 404, "ResourceNotFound")


@case("5.6.4", "A Partial Attribute update with datasetId changes only that instance.", also=("6.7", "4.5.5"))
def partial_update_dataset_instance(k: Kit) -> None:
    body = vehicle(k, speed=[prop(80), prop(79, datasetId=_GPS)])
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs/speed", {"value": 3}, params={"datasetId": _GPS})
    k.expect_status(response, 204)
    values = {s.get("datasetId"): s.get("value") for s in _instances(_attr_of(k, body["id"], "speed"))}
    k.expect(values == {None: 80, _GPS: 3}, f"speed instances are {values!r}")


@case(
    "5.6.4", "A Partial Attribute update of a datasetId the attribute lacks is ResourceNotFound (404).", also=("6.7",)
)
def partial_update_unknown_dataset_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs/speed", {"value": 3}, params={"datasetId": _GPS})
    k.expect_problem(response, 404, "ResourceNotFound")


@case("5.6.5", "Delete Attribute with deleteAll=true removes every instance of the attribute.", also=("6.7", "4.5.5"))
def delete_attribute_delete_all(k: Kit) -> None:
    body = vehicle(k, speed=[prop(80), prop(79, datasetId=_GPS)])
    k.entity(body)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/speed", params={"deleteAll": "true"}), 204)
    expect_no_attr(k, body["id"], "speed")


@case("5.6.5", "Delete Attribute without datasetId removes the default instance only.", also=("6.7", "4.5.5"))
def delete_attribute_default_instance(k: Kit) -> None:
    body = vehicle(k, speed=[prop(80), prop(79, datasetId=_GPS)])
    k.entity(body)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/speed"), 204)
    speeds = _instances(_attr_of(k, body["id"], "speed"))
    k.expect([s.get("datasetId") for s in speeds] == [_GPS], f"speed instances are {speeds!r}")


@case("5.6.5", "Delete Attribute of a datasetId the attribute lacks is a ResourceNotFound error (404).", also=("6.7",))
def delete_attribute_unknown_dataset_is_not_found(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.delete(f"/entities/{body['id']}/attrs/speed", params={"datasetId": _GPS})
    k.expect_problem(response, 404, "ResourceNotFound")
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.5", "Delete Attribute with no entity id in the path is a BadRequestData error (400).", also=("6.7",))
def delete_attribute_without_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.http.delete("/entities//attrs/speed"), 400, "BadRequestData")


@case("5.6.5", "Delete Attribute on an unknown entity is a ResourceNotFound error (404).", also=("6.7",))
def delete_attribute_unknown_entity_is_not_found(k: Kit) -> None:
    k.expect_problem(k.http.delete(f"/entities/{k.uid()}/attrs/speed"), 404, "ResourceNotFound")


@case("5.6.5", "Delete Attribute on an entity id that is not a URI is a BadRequestData error (400).", also=("6.7",))
def delete_attribute_non_uri_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.http.delete("/entities/not-a-uri/attrs/speed"), 400, "BadRequestData")


@case("5.6.5", "Delete Attribute whose target is scope removes the entity's scope.", also=("6.7", "4.18"))
def delete_attribute_scope(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/scope"), 204)
    k.expect("scope" not in k.get_entity(body["id"]), "scope still present")


@case("5.6.19", "Replace Attribute whose target is scope is a BadRequestData error (400).", also=("6.7",))
def replace_attribute_scope_is_bad_request(k: Kit) -> None:
    body = vehicle(k, scope="/Madrid")
    k.entity(body)
    k.expect_problem(k.put(f"/entities/{body['id']}/attrs/scope", prop("/Lyon")), 400, "BadRequestData")


@case("5.6.19", "Replace Attribute keeps the createdAt of the instance it replaces.", also=("6.7", "4.8"))
def replace_attribute_keeps_created_at(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    before = _attr_of(k, body["id"], "speed", options="sysAttrs")
    k.expect_status(k.put(f"/entities/{body['id']}/attrs/speed", prop(5)), 204)
    after = _attr_of(k, body["id"], "speed", options="sysAttrs")
    k.expect(
        isinstance(before, dict) and isinstance(after, dict) and before.get("createdAt") == after.get("createdAt"),
        f"createdAt changed: {before!r} -> {after!r}",
    )


@case("5.6.19", "Replace Attribute on an unknown entity is a ResourceNotFound error (404).", also=("6.7",))
def replace_attribute_unknown_entity_is_not_found(k: Kit) -> None:
    k.expect_problem(k.put(f"/entities/{k.uid()}/attrs/speed", prop(5)), 404, "ResourceNotFound")


@case("5.6.19", "Replace Attribute on an entity id that is not a URI is a BadRequestData error (400).", also=("6.7",))
def replace_attribute_non_uri_entity_id_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.put("/entities/not-a-uri/attrs/speed", prop(5)), 400, "BadRequestData")


@case(
    "5.6.19", "Replace Attribute with a body that is not an attribute is a BadRequestData error (400).", also=("6.7",)
)
def replace_attribute_invalid_fragment_is_bad_request(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.put(f"/entities/{body['id']}/attrs/speed", {"type": "Property"}), 400, "BadRequestData")
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.4", "A Partial Attribute update deletes a sub-attribute whose value is urn:ngsi-ld:null.", also=("5.5.8",))
def partial_update_null_deletes_sub_attribute(k: Kit) -> None:
    body = vehicle(k, speed=prop(80, accuracy=prop(1)))
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs/speed", {"value": 81, "accuracy": "urn:ngsi-ld:null"})
    if response.status_code == 422:
        k.missing("ngsi-ld-null", "Partial Attribute update answered 422 OperationNotSupported to NGSI-LD Null")
    k.expect_status(response, 204)
    speed = _attr_of(k, body["id"], "speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 81 and "accuracy" not in speed, f"speed is {speed!r}")


@case("5.6.4", "A Partial Attribute update never deletes the attribute itself, whatever its value.", also=("5.5.8",))
def partial_update_does_not_delete_the_attribute(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs/speed", {"value": "urn:ngsi-ld:null"})
    k.expect(response.status_code >= 400, f"answered {response.status_code}")
    k.expect("speed" in k.get_entity(body["id"]), "the partial update deleted the whole attribute")
