"""Context source registrations and their subscriptions (clauses 5.9, 5.11; HTTP binding 6.8, 6.9, 6.12, 6.13) and
entity maps (6.32, 6.34): optional features, "not implemented" when the broker has no such resource."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from conformance.cases._shared import vehicle
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
    location = unquote(response.headers.get("NGSILD-EntityMap", ""))
    k.expect("/entityMaps/" in location, f"NGSILD-EntityMap header is {location!r}")
    path = "/entityMaps/" + location.split("/entityMaps/", 1)[1]
    k.cleanup(lambda: k.http.delete(path))
    k.expect(isinstance(k.json(response), dict), "the 201 body is not an EntityMap object")
    k.expect_status(k.http.get(path), 200)
    k.expect_status(k.http.delete(path), 204)


@case(
    "6.34",
    "A query with entityMap=true names its EntityMap in the NGSILD-EntityMap header, and the map can be retrieved.",
    feature="entity-maps",
    also=("6.32", "5.7.2"),
)
def query_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entities", params={"type": body["type"], "entityMap": "true"})
    k.expect_status(response, 200, 201)
    location = unquote(response.headers.get("NGSILD-EntityMap", ""))
    k.expect(location, "no NGSILD-EntityMap header")
    path = "/" + location.split("/ngsi-ld/v1/", 1)[-1].lstrip("/")
    k.cleanup(lambda: k.http.delete(path))
    k.expect_status(k.http.get(path), 200)
