"""Batch operations: create, upsert, update, delete, merge (clauses 5.6.7-5.6.10, 5.6.20; HTTP binding 6.14-6.17,
6.31) and the 207 BatchOperationResult (5.2.16)."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import expect_attr_value, expect_no_attr, prop, vehicle
from conformance.kit import CORE_CONTEXT, ERRORS, LD_JSON, Kit, case, link_header


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


# -- issue 17: batch operations case by case, from the V1.9.1 text -------------------------------------------------
def _errors_of(k: Kit, response: Any) -> dict[str, str]:
    k.expect_status(response, 207)
    return _batch_result(k, k.json(response))[1]


@case("5.6.7", "Batch create of an empty array is a BadRequestData error (400).", also=("6.14",))
def batch_create_empty_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entityOperations/create", []), 400, "BadRequestData")


@case("5.6.7", "Batch create of an array holding a null item is a BadRequestData error (400).", also=("6.14",))
def batch_create_null_item_is_bad_request(k: Kit) -> None:
    body = vehicle(k)
    _delete_later(k, body["id"])
    k.expect_problem(k.post("/entityOperations/create", [body, None]), 400, "BadRequestData")
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 404)


@case(
    "5.6.7",
    "Batch create of one id twice creates the first and reports the second as AlreadyExists.",
    also=("6.14", "5.5.11"),
)
def batch_create_same_id_twice(k: Kit) -> None:
    first = vehicle(k)
    second = {**first, "speed": prop(1)}
    _delete_later(k, first["id"])
    response = k.post("/entityOperations/create", [first, second])
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [first["id"]], f"success is {success!r}")
    k.expect(errors.get(first["id"]) == ERRORS + "AlreadyExists", f"errors are {errors!r}")
    expect_attr_value(k, first["id"], "speed", 80)


@case(
    "6.3.5",
    "In an application/json batch, an entity carrying @context is reported in errors as BadRequestData.",
    also=("5.6.7", "6.14", "5.5.11"),
)
def batch_json_item_with_context_fails_alone(k: Kit) -> None:
    good, bad = vehicle(k), {**vehicle(k), "@context": CORE_CONTEXT}
    _delete_later(k, good["id"], bad["id"])
    errors = _errors_of(k, k.post("/entityOperations/create", [good, bad]))
    k.expect(errors == {bad["id"]: ERRORS + "BadRequestData"}, f"errors are {errors!r}")
    expect_attr_value(k, good["id"], "speed", 80)


@case(
    "6.3.5",
    "In an application/ld+json batch, an entity without @context is reported in errors as BadRequestData.",
    also=("5.6.7", "6.14", "5.5.11"),
)
def batch_ld_json_item_without_context_fails_alone(k: Kit) -> None:
    good, bad = {**vehicle(k), "@context": CORE_CONTEXT}, vehicle(k)
    _delete_later(k, good["id"], bad["id"])
    errors = _errors_of(k, k.post("/entityOperations/create", [good, bad], content_type=LD_JSON))
    k.expect(errors == {bad["id"]: ERRORS + "BadRequestData"}, f"errors are {errors!r}")
    expect_attr_value(k, good["id"], "speed", 80)


@case("6.3.5", "A batch create in application/ld+json with an @context in each entity answers 201.", also=("6.14",))
def batch_ld_json_create(k: Kit) -> None:
    entities = [{**vehicle(k), "@context": CORE_CONTEXT}, {**vehicle(k), "@context": CORE_CONTEXT}]
    _delete_later(k, *(e["id"] for e in entities))
    k.expect_status(k.post("/entityOperations/create", entities, content_type=LD_JSON), 201)
    expect_attr_value(k, entities[0]["id"], "speed", 80)


@case(
    "6.3.5",
    "An application/ld+json batch sent with a JSON-LD context Link header is a BadRequestData error (400).",
    also=("6.14",),
)
def batch_ld_json_with_link_is_bad_request(k: Kit) -> None:
    body = {**vehicle(k), "@context": CORE_CONTEXT}
    _delete_later(k, body["id"])
    response = k.post("/entityOperations/create", [body], content_type=LD_JSON, headers=link_header(CORE_CONTEXT))
    k.expect_problem(response, 400, "BadRequestData")


@case("5.6.8", "Batch upsert of an empty array is a BadRequestData error (400).", also=("6.15",))
def batch_upsert_empty_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entityOperations/upsert", []), 400, "BadRequestData")


@case(
    "5.6.8",
    "Batch upsert reports an invalid entity in errors with BadRequestData and writes the valid one.",
    also=("6.15", "5.2.16"),
)
def batch_upsert_invalid_entity_in_errors(k: Kit) -> None:
    good, bad = vehicle(k), vehicle(k, speed={"type": "Property"})
    _delete_later(k, good["id"], bad["id"])
    errors = _errors_of(k, k.post("/entityOperations/upsert", [good, bad]))
    k.expect(errors == {bad["id"]: ERRORS + "BadRequestData"}, f"errors are {errors!r}")
    expect_attr_value(k, good["id"], "speed", 80)


@case(
    "5.6.8",
    "Batch upsert of one id twice creates it from the first and replaces it with the second.",
    also=("6.15", "5.5.11"),
)
def batch_upsert_same_id_twice_replaces_in_order(k: Kit) -> None:
    first = vehicle(k)
    second = {"id": first["id"], "type": first["type"], "fuel": prop(9)}
    _delete_later(k, first["id"])
    response = k.post("/entityOperations/upsert", [first, second])
    k.expect_status(response, 201)
    expect_attr_value(k, first["id"], "fuel", 9)
    expect_no_attr(k, first["id"], "speed")


@case(
    "5.6.8",
    "Batch upsert with options=update of one id twice applies both updates in order.",
    also=("6.15", "5.5.11"),
)
def batch_upsert_update_same_id_twice(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    first = {"id": body["id"], "type": body["type"], "speed": prop(1), "fuel": prop(1)}
    second = {"id": body["id"], "type": body["type"], "speed": prop(2)}
    k.expect_status(k.post("/entityOperations/upsert", [first, second], params={"options": "update"}), 204)
    expect_attr_value(k, body["id"], "speed", 2)
    expect_attr_value(k, body["id"], "fuel", 1)


@case("5.6.9", "Batch update of an empty array is a BadRequestData error (400).", also=("6.16",))
def batch_update_empty_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entityOperations/update", []), 400, "BadRequestData")


@case(
    "5.6.9",
    "Batch update with options=noOverwrite keeps existing attributes and appends the new ones.",
    also=("6.16", "5.6.3"),
)
def batch_update_no_overwrite(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    update = [{"id": body["id"], "type": body["type"], "speed": prop(1), "fuel": prop(2)}]
    k.expect_status(k.post("/entityOperations/update", update, params={"options": "noOverwrite"}), 204)
    expect_attr_value(k, body["id"], "speed", 80)
    expect_attr_value(k, body["id"], "fuel", 2)


@case(
    "5.6.9",
    "Batch update reports an entity whose id is not a URI in errors with BadRequestData.",
    also=("6.16", "5.2.16"),
)
def batch_update_invalid_id_in_errors(k: Kit) -> None:
    known = vehicle(k)
    k.entity(known)
    update = [{"id": known["id"], "speed": prop(5)}, {"id": "not a uri", "speed": prop(5)}]
    errors = _errors_of(k, k.post("/entityOperations/update", update))
    k.expect(errors == {"not a uri": ERRORS + "BadRequestData"}, f"errors are {errors!r}")
    expect_attr_value(k, known["id"], "speed", 5)


@case("5.6.10", "Batch delete of an empty array is a BadRequestData error (400).", also=("6.17",))
def batch_delete_empty_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entityOperations/delete", []), 400, "BadRequestData")


@case(
    "5.6.10",
    "Batch delete of one id twice deletes it and reports the second as ResourceNotFound.",
    also=("6.17", "5.5.11"),
)
def batch_delete_same_id_twice(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.post("/entityOperations/delete", [body["id"], body["id"]])
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [body["id"]], f"success is {success!r}")
    k.expect(errors == {body["id"]: ERRORS + "ResourceNotFound"}, f"errors are {errors!r}")


@case(
    "5.6.10",
    "Batch delete of ids sent as application/ld+json, which have no term to expand, answers 204.",
    also=("6.17", "6.3.5"),
)
def batch_delete_ld_json(k: Kit) -> None:
    first, second = vehicle(k), vehicle(k)
    k.entity(first)
    k.entity(second)
    k.expect_status(k.post("/entityOperations/delete", [first["id"], second["id"]], content_type=LD_JSON), 204)
    k.expect_status(k.http.get(f"/entities/{first['id']}"), 404)


@case("5.6.10", "Batch delete of only unknown ids answers 207 with an empty success array.", also=("6.17", "5.2.16"))
def batch_delete_all_unknown(k: Kit) -> None:
    unknown = [k.uid("Vehicle"), k.uid("Vehicle")]
    response = k.post("/entityOperations/delete", unknown)
    k.expect_status(response, 207)
    success, errors = _batch_result(k, k.json(response))
    k.expect(success == [] and set(errors) == set(unknown), f"success {success!r}, errors {errors!r}")


@case("5.6.10", "Batch delete reports an item that is not a URI in errors with BadRequestData.", also=("6.17", "5.6.6"))
def batch_delete_invalid_id_in_errors(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    errors = _errors_of(k, k.post("/entityOperations/delete", [body["id"], "not a uri"]))
    k.expect(list(errors.values()) == [ERRORS + "BadRequestData"], f"errors are {errors!r}")
    k.expect_status(k.http.get(f"/entities/{body['id']}"), 404)


@case("5.6.20", "Batch merge of an empty array is a BadRequestData error (400).", also=("6.31",))
def batch_merge_empty_is_bad_request(k: Kit) -> None:
    k.expect_problem(k.post("/entityOperations/merge", []), 400, "BadRequestData")


@case(
    "5.6.20",
    "Batch merge of one id twice applies both merges in order.",
    also=("6.31", "5.5.11"),
)
def batch_merge_same_id_twice(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    merge = [{"id": body["id"], "speed": prop(1), "fuel": prop(1)}, {"id": body["id"], "speed": prop(2)}]
    k.expect_status(k.post("/entityOperations/merge", merge), 204)
    expect_attr_value(k, body["id"], "speed", 2)
    expect_attr_value(k, body["id"], "fuel", 1)


@case("5.6.20", "Batch merge keeps the sub-attributes that the merged attribute leaves out.", also=("6.31", "5.5.12"))
def batch_merge_keeps_sub_attributes(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.post("/entityOperations/merge", [{"id": body["id"], "speed": {"value": 9}}]), 204)
    speed = k.get_entity(body["id"]).get("speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 9 and speed.get("unitCode") == "KMH", f"{speed!r}")


@case("5.6.20", "In Batch merge, urn:ngsi-ld:null as an attribute's value deletes that attribute.", also=("6.31",))
def batch_merge_null_deletes(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_status(k.post("/entityOperations/merge", [{"id": body["id"], "speed": "urn:ngsi-ld:null"}]), 204)
    expect_no_attr(k, body["id"], "speed")
