"""Batch operations: create, upsert, update, delete, merge (clauses 5.6.7-5.6.10, 5.6.20; HTTP binding 6.14-6.17,
6.31) and the 207 BatchOperationResult (5.2.16)."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import expect_attr_value, expect_no_attr, prop, vehicle
from conformance.kit import ERRORS, Kit, case


def _delete_later(k: Kit, *entity_ids: str) -> None:
    for entity_id in entity_ids:
        k.delete_later(f"/entities/{entity_id}")


def _batch_result(k: Kit, body: Any) -> tuple[list[str], dict[str, str]]:
    """(success ids, {entityId: problem type}) of a BatchOperationResult; fails when the shape is wrong."""
    k.expect(
        isinstance(body, dict) and isinstance(body.get("success"), list) and isinstance(body.get("errors"), list),
        f"207 body is not a BatchOperationResult {{success, errors}}: {body!r}",
    )
    errors: dict[str, str] = {}
    for item in body["errors"]:
        k.expect(
            isinstance(item, dict) and "entityId" in item and isinstance(item.get("error"), dict),
            f"BatchEntityError without entityId/error: {item!r}",
        )
        errors[str(item["entityId"])] = str(item["error"].get("type", ""))
    return [str(i) for i in body["success"]], errors


@case("5.6.7", "Batch create of new entities answers 201 with the array of their ids.", also=("6.14",))
def batch_create_all_new(k: Kit) -> None:
    entities = [vehicle(k), vehicle(k)]
    _delete_later(k, *(e["id"] for e in entities))
    response = k.post("/entityOperations/create", entities)
    k.expect_status(response, 201)
    created = k.json(response)
    k.expect(isinstance(created, list) and set(created) == {e["id"] for e in entities}, f"201 body is {created!r}")
    expect_attr_value(k, entities[1]["id"], "speed", 80)


@case(
    "5.6.7",
    "Batch create with an existing entity answers 207: the new one in success, the other with AlreadyExists in errors.",
    also=("6.14", "5.2.16"),
)
def batch_create_partial_is_207(k: Kit) -> None:
    existing, new = vehicle(k), vehicle(k)
    k.entity(existing)
    _delete_later(k, new["id"])
    response = k.post("/entityOperations/create", [existing, new])
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [new["id"]], f"success is {success!r}")
    k.expect(errors.get(existing["id"]) == ERRORS + "AlreadyExists", f"errors are {errors!r}")


@case(
    "5.6.7",
    "Batch create reports an invalid entity in errors with BadRequestData and still creates the valid one.",
    also=("6.14", "5.2.16"),
)
def batch_create_invalid_entity_in_errors(k: Kit) -> None:
    good, bad = vehicle(k), vehicle(k, speed={"type": "Property"})  # a Property without value
    _delete_later(k, good["id"], bad["id"])
    response = k.post("/entityOperations/create", [good, bad])
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [good["id"]], f"success is {success!r}")
    k.expect(errors.get(bad["id"]) == ERRORS + "BadRequestData", f"errors are {errors!r}")


@case(
    "5.6.7",
    "A batch body that is not a JSON array is a BadRequestData or InvalidRequest error (400).",
    also=("6.14", "5.5.4"),
)
def batch_body_not_array_is_400(k: Kit) -> None:
    response = k.post("/entityOperations/create", vehicle(k))
    k.expect_status(response, 400)
    problem = k.expect_problem(response, 400)
    k.expect(problem["type"] in (ERRORS + "BadRequestData", ERRORS + "InvalidRequest"), f"type {problem['type']}")


@case("5.6.8", "Batch upsert answers 201 with the ids of the entities it created.", also=("6.15",))
def batch_upsert_creates(k: Kit) -> None:
    entities = [vehicle(k), vehicle(k)]
    _delete_later(k, *(e["id"] for e in entities))
    response = k.post("/entityOperations/upsert", entities)
    k.expect_status(response, 201)
    created = k.json(response)
    k.expect(isinstance(created, list) and set(created) == {e["id"] for e in entities}, f"201 body is {created!r}")


@case(
    "5.6.8",
    "Batch upsert of existing entities answers 204 and by default (options=replace) replaces them.",
    also=("6.15",),
)
def batch_upsert_replaces_by_default(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.post("/entityOperations/upsert", [{"id": body["id"], "type": body["type"], "fuel": prop(7)}])
    k.expect_status(response, 204)
    expect_attr_value(k, body["id"], "fuel", 7)
    expect_no_attr(k, body["id"], "speed")


@case("5.6.8", "Batch upsert with options=update keeps the attributes it does not mention.", also=("6.15",))
def batch_upsert_update_keeps_others(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    upsert = [{"id": body["id"], "type": body["type"], "fuel": prop(7)}]
    k.expect_status(k.post("/entityOperations/upsert", upsert, params={"options": "update"}), 204)
    expect_attr_value(k, body["id"], "fuel", 7)
    expect_attr_value(k, body["id"], "speed", 80)


@case("5.6.8", "Batch upsert mixing new and existing entities answers 201 with only the created ids.", also=("6.15",))
def batch_upsert_mixed_lists_created_only(k: Kit) -> None:
    existing, new = vehicle(k), vehicle(k)
    k.entity(existing)
    _delete_later(k, new["id"])
    response = k.post("/entityOperations/upsert", [existing, new])
    k.expect_status(response, 201)
    k.expect(k.json(response) == [new["id"]], f"201 body is {response.text!r}, expected only the new id")


@case("5.6.9", "Batch update of existing entities answers 204 and updates their attributes.", also=("6.16",))
def batch_update(k: Kit) -> None:
    first, second = vehicle(k), vehicle(k)
    k.entity(first)
    k.entity(second)
    update = [{"id": e["id"], "type": e["type"], "speed": prop(5)} for e in (first, second)]
    k.expect_status(k.post("/entityOperations/update", update), 204)
    expect_attr_value(k, second["id"], "speed", 5)
    expect_attr_value(k, second["id"], "location", second["location"]["value"])


@case("5.6.9", "Batch update with an unknown entity answers 207 with ResourceNotFound for it.", also=("6.16", "5.2.16"))
def batch_update_unknown_is_207(k: Kit) -> None:
    known = vehicle(k)
    k.entity(known)
    unknown = k.uid("Vehicle")
    update = [
        {"id": known["id"], "type": known["type"], "speed": prop(5)},
        {"id": unknown, "type": known["type"], "speed": prop(5)},
    ]
    response = k.post("/entityOperations/update", update)
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [known["id"]], f"success is {success!r}")
    k.expect(errors.get(unknown) == ERRORS + "ResourceNotFound", f"errors are {errors!r}")


@case("5.6.10", "Batch delete answers 204 and the entities are gone.", also=("6.17",))
def batch_delete(k: Kit) -> None:
    first, second = vehicle(k), vehicle(k)
    k.entity(first)
    k.entity(second)
    k.expect_status(k.post("/entityOperations/delete", [first["id"], second["id"]]), 204)
    k.expect_status(k.http.get(f"/entities/{first['id']}"), 404)
    k.expect_status(k.http.get(f"/entities/{second['id']}"), 404)


@case("5.6.10", "Batch delete with an unknown id answers 207 with ResourceNotFound for it.", also=("6.17", "5.2.16"))
def batch_delete_unknown_is_207(k: Kit) -> None:
    known = vehicle(k)
    k.entity(known)
    unknown = k.uid("Vehicle")
    response = k.post("/entityOperations/delete", [known["id"], unknown])
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [known["id"]], f"success is {success!r}")
    k.expect(errors.get(unknown) == ERRORS + "ResourceNotFound", f"errors are {errors!r}")


@case("5.6.20", "Batch merge answers 204, merges the given attributes and keeps the others.", also=("6.31",))
def batch_merge(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    merge = [{"id": body["id"], "type": body["type"], "speed": prop(61), "fuel": prop(3)}]
    k.expect_status(k.post("/entityOperations/merge", merge), 204)
    expect_attr_value(k, body["id"], "speed", 61)
    expect_attr_value(k, body["id"], "fuel", 3)
    expect_attr_value(k, body["id"], "isParked", None)  # a Relationship: no value member, but still present


@case("5.6.20", "Batch merge with an unknown entity answers 207 with ResourceNotFound for it.", also=("6.31", "5.2.16"))
def batch_merge_unknown_is_207(k: Kit) -> None:
    known = vehicle(k)
    k.entity(known)
    unknown = k.uid("Vehicle")
    merge = [
        {"id": known["id"], "type": known["type"], "speed": prop(5)},
        {"id": unknown, "type": known["type"], "speed": prop(5)},
    ]
    response = k.post("/entityOperations/merge", merge)
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [known["id"]], f"success is {success!r}")
    k.expect(errors.get(unknown) == ERRORS + "ResourceNotFound", f"errors are {errors!r}")
