"""Context source registrations and their subscriptions (clauses 5.9, 5.11; HTTP binding 6.8, 6.9, 6.12, 6.13) and
entity maps (6.32, 6.34): optional features, "not implemented" when the broker has no such resource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.cases._shared import expect_entity_map, map_path, vehicle
from conformance.kit import JSON, Kit, case


def _registration(k: Kit, entity_type: str) -> dict[str, Any]:
    return {
        "id": k.uid("ContextSourceRegistration"),
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": entity_type}], "propertyNames": ["speed"]}],
        "endpoint": "http://127.0.0.1:9/unused-context-source",
        "mode": "inclusive",
    }


def _register(k: Kit, body: dict[str, Any]) -> str:
    response = k.post("/csourceRegistrations", body)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    k.delete_later(f"/csourceRegistrations/{body['id']}")
    return str(body["id"])


@case(
    "5.9.2",
    "Register Context Source answers 201 with a Location, and the registration can be retrieved.",
    feature="registrations",
    also=("6.8", "6.9", "5.10.1"),
)
def register_and_retrieve(k: Kit) -> None:
    entity_type = k.type_name()
    body = _registration(k, entity_type)
    reg_id = _register(k, body)
    response = k.http.get(f"/csourceRegistrations/{reg_id}")
    k.expect_status(response, 200)
    got = k.json(response)
    k.expect(got.get("id") == reg_id and got.get("type") == "ContextSourceRegistration", f"got {got!r:.300}")
    k.expect(got.get("endpoint") == body["endpoint"], f"endpoint is {got.get('endpoint')!r}")


@case(
    "5.10.2",
    "Query Context Source Registrations by entity type finds the matching registration.",
    feature="registrations",
    also=("6.8",),
)
def query_registrations(k: Kit) -> None:
    entity_type = k.type_name()
    reg_id = _register(k, _registration(k, entity_type))
    response = k.http.get("/csourceRegistrations", params={"type": entity_type})
    k.expect_status(response, 200)
    k.expect([r.get("id") for r in k.json(response)] == [reg_id], f"got {response.text[:300]!r}")


@case(
    "5.9.4",
    "Delete Context Source Registration answers 204, then the registration is not found (404).",
    feature="registrations",
    also=("6.9",),
)
def delete_registration(k: Kit) -> None:
    reg_id = _register(k, _registration(k, k.type_name()))
    k.expect_status(k.http.delete(f"/csourceRegistrations/{reg_id}"), 204)
    k.expect_problem(k.http.get(f"/csourceRegistrations/{reg_id}"), 404, "ResourceNotFound")


@case(
    "5.11.2",
    "Create Context Source Registration Subscription answers 201, and it can be retrieved and deleted.",
    feature="registrations",
    also=("6.12", "6.13"),
)
def csource_subscription_lifecycle(k: Kit) -> None:
    body = {
        "id": k.uid("Subscription"),
        "type": "Subscription",
        "entities": [{"type": k.type_name()}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/unused", "accept": JSON}},
    }
    response = k.post("/csourceSubscriptions", body)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    k.delete_later(f"/csourceSubscriptions/{body['id']}")
    k.expect_status(k.http.get(f"/csourceSubscriptions/{body['id']}"), 200)
    k.expect_status(k.http.delete(f"/csourceSubscriptions/{body['id']}"), 204)
    k.expect_status(k.http.get(f"/csourceSubscriptions/{body['id']}"), 404)


@case(
    "6.34",
    "GET /entityMaps with query parameters answers 201 with an EntityMap named in the NGSILD-EntityMap header.",
    feature="entity-maps",
    also=("6.32", "5.14.4"),
)
def create_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entityMaps", params={"type": body["type"]})
    k.expect_status(response, 201)
    path = map_path(k, response)
    expect_entity_map(k, k.json(response), {body["id"]})
    k.expect_status(k.http.get(path), 200)
    k.expect_status(k.http.delete(path), 204)
    k.expect_problem(k.http.get(path), 404, "ResourceNotFound")


@case(
    "6.34",
    "POST /entityMaps with a Query body answers 201 with the EntityMap of the matching entities.",
    feature="entity-maps",
    also=("5.14.4",),
)
def create_entity_map_by_post(k: Kit) -> None:
    slow, fast = (
        vehicle(k, speed={"type": "Property", "value": 10}),
        vehicle(k, speed={"type": "Property", "value": 90}),
    )
    fast["type"] = slow["type"]
    k.entity(slow)
    k.entity(fast)
    response = k.post("/entityMaps", {"type": "Query", "entities": [{"type": slow["type"]}], "q": "speed>50"})
    k.expect_status(response, 201)
    map_path(k, response)
    expect_entity_map(k, k.json(response), {fast["id"]})


@case(
    "6.34",
    "A query with entityMap=true answers 201, names its EntityMap in the NGSILD-EntityMap header, and the map can be "
    "retrieved.",
    feature="entity-maps",
    also=("6.32", "5.7.2", "6.4"),
)
def query_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entities", params={"type": body["type"], "entityMap": "true"})
    k.expect_status(response, 201)
    path = map_path(k, response)
    retrieved = k.http.get(path)
    k.expect_status(retrieved, 200)
    expect_entity_map(k, k.json(retrieved), {body["id"]})


@case(
    "5.5.9",
    "Paging with an EntityMap: the pages read the entities the map froze, not one created afterwards.",
    feature="entity-maps",
    also=("5.7.2", "6.4"),
)
def paging_with_entity_map(k: Kit) -> None:
    entity_type = k.type_name("Paged")
    fleet = [vehicle(k, entity_type) for _ in range(4)]
    for entity in fleet:
        k.entity(entity)
    first = k.http.get("/entities", params={"type": entity_type, "limit": "2", "entityMap": "true"})
    k.expect_status(first, 201)
    map_path(k, first)
    k.entity(vehicle(k, entity_type))  # after the map: not part of it
    header = {"NGSILD-EntityMap": first.headers["NGSILD-EntityMap"]}
    second = k.http.get("/entities", params={"type": entity_type, "limit": "2", "offset": "2"}, headers=header)
    k.expect_status(second, 200)
    k.expect("NGSILD-EntityMap" in second.headers, "a page read with an EntityMap does not name it")
    seen = [e.get("id") for e in k.json(first) + k.json(second)]
    expected = sorted(e["id"] for e in fleet)
    k.expect(sorted(str(i) for i in seen) == expected, f"the two pages hold {seen}, expected the 4 mapped entities")


@case(
    "5.14.1",
    "Retrieve EntityMap: an unknown id is ResourceNotFound, an id that is not a URI BadRequestData.",
    feature="entity-maps",
    also=("6.32", "5.14.3"),
)
def entity_map_errors(k: Kit) -> None:
    unknown = k.uid("EntityMap")
    k.not_implemented_if(k.http.get(f"/entityMaps/{unknown}"), "entity-maps")
    k.expect_problem(k.http.get(f"/entityMaps/{unknown}"), 404, "ResourceNotFound")
    k.expect_problem(k.http.delete(f"/entityMaps/{unknown}"), 404, "ResourceNotFound")
    k.expect_problem(k.http.get("/entityMaps/not-a-uri"), 400, "BadRequestData")


@case(
    "5.14.2",
    "Update EntityMap: a new expiresAt answers 204 and shows in the retrieved map.",
    feature="entity-maps",
    also=("6.32",),
)
def update_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entityMaps", params={"type": body["type"]})
    k.expect_status(response, 201)
    path = map_path(k, response)
    before = k.json(response).get("expiresAt")
    later = (datetime.now(UTC) + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    k.expect_status(k.patch(path, {"expiresAt": later}), 204)
    after = k.json(k.http.get(path)).get("expiresAt")
    k.expect(after != before, f"expiresAt is still {before!r} after the update to {later}")
