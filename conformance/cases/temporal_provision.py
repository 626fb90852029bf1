"""Provision of temporal evolutions: create, add, delete attributes, modify and delete instances (clauses 5.6.11 to
5.6.16; HTTP binding 6.18 to 6.22). The temporal API is an optional feature ("not implemented" without it)."""

from __future__ import annotations

from conformance.cases._temporal import TIMES, create, instance_ids, instances, observed, problem, retrieve, sensor
from conformance.cases._temporal import values as values_of
from conformance.kit import Kit, case


@case(
    "5.6.11",
    "Creating a Temporal Evolution answers 201 with a Location header naming /temporal/entities/{entityId}.",
    feature="temporal",
    also=("6.18",),
)
def create_answers_location(k: Kit) -> None:
    body = sensor(k)
    response = k.post("/temporal/entities", body)
    k.not_implemented_if(response, "temporal")
    k.delete_later(f"/temporal/entities/{body['id']}")
    k.expect_status(response, 201)
    location = response.headers.get("Location", "")
    k.expect(location.rstrip("/").endswith(f"/temporal/entities/{body['id']}"), f"Location is {location!r}")


@case(
    "5.6.11",
    "Posting a Temporal Evolution of an existing one answers 204 and adds the new instances to the old ones.",
    feature="temporal",
    also=("6.18",),
)
def create_again_adds_instances(k: Kit) -> None:
    body = create(k)
    more = {"id": body["id"], "type": body["type"], "temperature": [observed(30, "2020-01-01T13:00:00Z")]}
    k.expect_status(k.post("/temporal/entities", more), 204)
    found = values_of(k, retrieve(k, body["id"]))
    k.expect(found == [20, 21, 22, 30], f"the instances are {found}, expected [20, 21, 22, 30]")


@case(
    "5.6.11",
    "Creating a Temporal Evolution without an entity type is a BadRequestData error (400).",
    feature="temporal",
    also=("6.18",),
)
def create_without_type_is_400(k: Kit) -> None:
    body = sensor(k)
    del body["type"]
    problem(k, k.post("/temporal/entities", body), 400, "BadRequestData")


@case(
    "5.6.11",
    "Creating a Temporal Evolution whose id is not a URI is a BadRequestData error (400).",
    feature="temporal",
    also=("6.18",),
)
def create_with_invalid_id_is_400(k: Kit) -> None:
    body = {**sensor(k), "id": "not a uri"}
    problem(k, k.post("/temporal/entities", body), 400, "BadRequestData")


@case(
    "5.6.11",
    "Creating a Temporal Evolution from a body that is not a JSON object is a BadRequestData error (400).",
    feature="temporal",
    also=("6.18",),
)
def create_from_array_is_400(k: Kit) -> None:
    problem(k, k.post("/temporal/entities", [sensor(k)]), 400, "BadRequestData")


@case(
    "5.6.12",
    "Adding Attributes to the Temporal Evolution of an unknown entity is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.20",),
)
def add_to_unknown_entity_is_404(k: Kit) -> None:
    extra = {"humidity": [observed(60, TIMES[0])]}
    problem(k, k.post(f"/temporal/entities/{k.uid('Sensor')}/attrs", extra), 404, "ResourceNotFound")


@case(
    "5.6.12",
    "Adding instances of an attribute that has a temporal evolution keeps the old instances besides the new.",
    feature="temporal",
    also=("6.20",),
)
def add_instances_to_existing_attribute(k: Kit) -> None:
    body = create(k)
    extra = {"temperature": [observed(5, "2020-01-01T09:00:00Z")]}
    k.expect_status(k.post(f"/temporal/entities/{body['id']}/attrs", extra), 204)
    found = values_of(k, retrieve(k, body["id"]))
    k.expect(found == [5, 20, 21, 22], f"the instances are {found}, expected [5, 20, 21, 22]")


@case(
    "5.6.13",
    "Deleting from a Temporal Evolution an attribute it does not have is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.21",),
)
def delete_unknown_attribute_is_404(k: Kit) -> None:
    body = create(k)
    problem(k, k.http.delete(f"/temporal/entities/{body['id']}/attrs/humidity"), 404, "ResourceNotFound")


@case(
    "5.6.13",
    "Deleting an attribute from the Temporal Evolution of an unknown entity is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.21",),
)
def delete_attribute_of_unknown_entity_is_404(k: Kit) -> None:
    response = k.http.delete(f"/temporal/entities/{k.uid('Sensor')}/attrs/temperature")
    problem(k, response, 404, "ResourceNotFound")


@case(
    "5.6.13",
    "Deleting an attribute with datasetId removes only the instances of that datasetId.",
    feature="temporal",
    also=("6.21", "4.5.5"),
)
def delete_attribute_of_one_dataset(k: Kit) -> None:
    body = sensor(k)
    body["temperature"].append(observed(99, TIMES[0], datasetId="urn:ngsi-ld:Dataset:conformance-b"))
    create(k, body)
    response = k.http.delete(
        f"/temporal/entities/{body['id']}/attrs/temperature", params={"datasetId": "urn:ngsi-ld:Dataset:conformance-b"}
    )
    k.expect_status(response, 204)
    found = values_of(k, retrieve(k, body["id"]))
    k.expect(found == [20, 21, 22], f"the instances left are {found}, expected the default ones [20, 21, 22]")


def _modify(k: Kit, entity_id: str, attr: str, instance_id: str, value: object) -> int:
    change = {attr: [observed(value, TIMES[0])]}
    return k.patch(f"/temporal/entities/{entity_id}/attrs/{attr}/{instance_id}", change).status_code


@case(
    "5.6.14",
    "A modified instance keeps its instanceId and holds the new value; the other instances are unchanged.",
    feature="temporal",
    also=("6.22",),
)
def modify_keeps_the_instance_id(k: Kit) -> None:
    body = create(k)
    ids = instance_ids(k, body["id"])
    k.expect(_modify(k, body["id"], "temperature", ids[0], 99) == 204, "the modification did not answer 204")
    found = {i.get("instanceId"): i.get("value") for i in instances(k, retrieve(k, body["id"]), "temperature")}
    k.expect(found == {ids[0]: 99, ids[1]: 21, ids[2]: 22}, f"instances after the modification: {found}")


@case(
    "5.6.14",
    "Modifying an instance leaves its createdAt unchanged and sets its modifiedAt to the time of the change.",
    feature="temporal",
    also=("6.22", "4.8"),
)
def modify_keeps_created_at(k: Kit) -> None:
    body = create(k)
    first = instance_ids(k, body["id"])[0]

    def stamps() -> tuple[object, object]:
        doc = retrieve(k, body["id"], {"options": "sysAttrs"})
        inst = next((i for i in instances(k, doc, "temperature") if i.get("instanceId") == first), {})
        return inst.get("createdAt"), inst.get("modifiedAt")

    created, modified = stamps()
    k.expect(created is not None and modified is not None, "options=sysAttrs shows no createdAt/modifiedAt")
    k.expect(_modify(k, body["id"], "temperature", first, 99) == 204, "the modification did not answer 204")
    created_after, modified_after = stamps()
    k.expect(created_after == created, f"createdAt changed from {created} to {created_after}")
    k.expect(modified_after != modified, f"modifiedAt stayed {modified} after the modification")


@case(
    "5.6.14",
    "Modifying an attribute instance of an unknown entity is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.22",),
)
def modify_in_unknown_entity_is_404(k: Kit) -> None:
    body = create(k)
    first = instance_ids(k, body["id"])[0]
    change = {"temperature": [observed(1, TIMES[0])]}
    response = k.patch(f"/temporal/entities/{k.uid('Sensor')}/attrs/temperature/{first}", change)
    problem(k, response, 404, "ResourceNotFound")


@case(
    "5.6.14",
    "Modifying an instance of an attribute the Temporal Evolution does not have is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.22",),
)
def modify_unknown_attribute_is_404(k: Kit) -> None:
    body = create(k)
    first = instance_ids(k, body["id"])[0]
    change = {"humidity": [observed(1, TIMES[0])]}
    problem(k, k.patch(f"/temporal/entities/{body['id']}/attrs/humidity/{first}", change), 404, "ResourceNotFound")


@case(
    "5.6.14",
    "Modifying an instance with an instanceId the attribute does not have is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.22",),
)
def modify_unknown_instance_is_404(k: Kit) -> None:
    body = create(k)
    change = {"temperature": [observed(1, TIMES[0])]}
    response = k.patch(f"/temporal/entities/{body['id']}/attrs/temperature/urn:ngsi-ld:conformance:none", change)
    problem(k, response, 404, "ResourceNotFound")


@case(
    "5.6.14",
    "Modifying an instance whose instanceId is not a URI is a BadRequestData error (400).",
    feature="temporal",
    also=("6.22",),
)
def modify_invalid_instance_id_is_400(k: Kit) -> None:
    body = create(k)
    change = {"temperature": [observed(1, TIMES[0])]}
    response = k.patch(f"/temporal/entities/{body['id']}/attrs/temperature/not-a-uri", change)
    problem(k, response, 400, "BadRequestData")


@case(
    "5.6.15",
    "Deleting an instance with an instanceId the attribute does not have is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.22",),
)
def delete_unknown_instance_is_404(k: Kit) -> None:
    body = create(k)
    response = k.http.delete(f"/temporal/entities/{body['id']}/attrs/temperature/urn:ngsi-ld:conformance:none")
    problem(k, response, 404, "ResourceNotFound")


@case(
    "5.6.15",
    "Deleting an attribute instance of an unknown entity is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.22",),
)
def delete_instance_of_unknown_entity_is_404(k: Kit) -> None:
    body = create(k)
    first = instance_ids(k, body["id"])[0]
    response = k.http.delete(f"/temporal/entities/{k.uid('Sensor')}/attrs/temperature/{first}")
    problem(k, response, 404, "ResourceNotFound")


@case(
    "5.6.16",
    "Deleting the Temporal Evolution of an unknown entity is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.19",),
)
def delete_unknown_temporal_is_404(k: Kit) -> None:
    problem(k, k.http.delete(f"/temporal/entities/{k.uid('Sensor')}"), 404, "ResourceNotFound")


@case(
    "5.6.16",
    "Deleting a Temporal Evolution whose entity id is not a URI is a BadRequestData error (400).",
    feature="temporal",
    also=("6.19",),
)
def delete_temporal_invalid_id_is_400(k: Kit) -> None:
    problem(k, k.http.delete("/temporal/entities/not-a-uri"), 400, "BadRequestData")
