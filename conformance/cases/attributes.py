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
    k.expect_status(response, 204, 207)
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
        k.expect({"speed", "fuel"} <= set(updated), f"updated is {updated!r}")
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
