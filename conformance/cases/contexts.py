"""@context handling: the Link header and application/ld+json bodies (clause 6.3.5), the @context in responses
(6.3.6), GeoJSON (6.3.15), and @context management through /jsonldContexts (5.13; HTTP binding 6.29, 6.30)."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import vehicle
from conformance.kit import CORE_CONTEXT, GEO_JSON, LD_JSON, LINK_REL, Kit, case, link_header


def _user_context(k: Kit) -> tuple[str, str, str, dict[str, Any]]:
    """(type term, attribute term, namespace, @context document) under a namespace unique to the case."""
    namespace = f"https://example.org/conformance/{k.run.run_id}/{k.run.next_number()}#"
    document = {"@context": {"Bus": namespace + "Bus", "vitesse": namespace + "speed"}}
    return "Bus", "vitesse", namespace, document


def _bus(k: Kit) -> dict[str, Any]:
    return {"id": k.uid("Bus"), "type": "Bus", "vitesse": {"type": "Property", "value": 30}}


@case(
    "6.3.5",
    "With a JSON body, the Link header's @context expands the terms; another @context sees full IRIs.",
    feature="user-contexts",
)
def link_header_expands_terms(k: Kit) -> None:
    _, _, namespace, document = _user_context(k)
    url = k.contexts.publish(document)
    body = _bus(k)
    k.entity(body, headers=link_header(url))
    mine = k.http.get(f"/entities/{body['id']}", headers=link_header(url))
    k.expect_status(mine, 200)
    entity = k.json(mine)
    k.expect(entity.get("type") == "Bus" and "vitesse" in entity, f"with the same @context: {entity!r:.300}")
    core = k.get_entity(body["id"])
    k.expect(core.get("type") == namespace + "Bus", f"with the core @context type is {core.get('type')!r}")
    k.expect(namespace + "speed" in core, f"with the core @context the attribute is not its IRI: {sorted(core)}")


@case("6.3.5", "With an application/ld+json body, the @context comes from the body.", feature="user-contexts")
def ld_json_body_context(k: Kit) -> None:
    _, _, namespace, document = _user_context(k)
    url = k.contexts.publish(document)
    body = {**_bus(k), "@context": [url, CORE_CONTEXT]}
    k.entity(body, content_type=LD_JSON)
    core = k.get_entity(body["id"])
    k.expect(core.get("type") == namespace + "Bus", f"type is {core.get('type')!r}, expected {namespace}Bus")


@case("6.3.5", "An application/ld+json body without @context is a BadRequestData error (400).")
def ld_json_without_context_is_400(k: Kit) -> None:
    response = k.post("/entities", vehicle(k), content_type=LD_JSON)
    k.expect_problem(response, 400, "BadRequestData")


@case("6.3.5", "An application/ld+json body together with a JSON-LD Link header is a BadRequestData error (400).")
def ld_json_with_link_is_400(k: Kit) -> None:
    body = {**vehicle(k), "@context": CORE_CONTEXT}
    response = k.post("/entities", body, content_type=LD_JSON, headers=link_header(CORE_CONTEXT))
    k.expect_problem(response, 400, "BadRequestData")


@case("6.3.5", "An application/json body containing @context is a BadRequestData error (400).")
def json_body_with_context_is_400(k: Kit) -> None:
    body = {**vehicle(k), "@context": CORE_CONTEXT}
    k.expect_problem(k.post("/entities", body), 400, "BadRequestData")


@case(
    "6.3.5",
    "A Link header to an @context that cannot be retrieved is an LdContextNotAvailable error (504).",
    feature="user-contexts",
    also=("6.3.2",),
)
def unreachable_context_is_504(k: Kit) -> None:
    response = k.post("/entities", vehicle(k), headers=link_header(k.contexts.missing_url()))
    k.expect_problem(response, 504, "LdContextNotAvailable")


@case("6.3.6", "An application/json response carries a Link header to its JSON-LD @context.")
def json_response_has_link(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", headers={"Accept": "application/json"})
    k.expect_status(response, 200)
    links = ",".join(response.headers.get_list("link"))
    k.expect(LINK_REL in links, f"no JSON-LD Link header (Link: {links!r})")
    k.expect("@context" not in k.json(response), "application/json body carries @context")


@case("6.3.6", "An application/ld+json response carries the @context in the body.")
def ld_json_response_has_context(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", headers={"Accept": LD_JSON})
    k.expect_status(response, 200)
    k.expect(response.headers.get("content-type", "").startswith(LD_JSON), "Content-Type is not application/ld+json")
    k.expect("@context" in k.json(response), "no @context in the application/ld+json body")


@case("6.3.6", "Error responses and responses without a body carry no Link header.")
def no_link_on_errors_and_empty_bodies(k: Kit) -> None:
    missing = k.http.get(f"/entities/{k.uid()}")
    k.expect_status(missing, 404)
    k.expect(LINK_REL not in ",".join(missing.headers.get_list("link")), "Link header on an error response")
    body = vehicle(k)
    k.entity(body)
    deleted = k.http.delete(f"/entities/{body['id']}")
    k.expect_status(deleted, 204)
    k.expect(LINK_REL not in ",".join(deleted.headers.get_list("link")), "Link header on a 204 response")


@case("6.3.6", "A 204 response carries no Content-Length header.")
def no_content_length_on_204(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.patch(f"/entities/{body['id']}/attrs", {"speed": {"type": "Property", "value": 1}})
    k.expect_status(response, 204)
    k.expect("content-length" not in response.headers, f"Content-Length: {response.headers.get('content-length')}")


@case("6.3.15", "Accept: application/geo+json on Retrieve Entity answers a GeoJSON Feature.", also=("6.3.4",))
def geojson_feature(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", headers={"Accept": GEO_JSON})
    k.expect_status(response, 200)
    feature = k.json(response)
    k.expect(isinstance(feature, dict) and feature.get("type") == "Feature", f"got {feature!r:.200}")
    k.expect(feature.get("id") == body["id"], "Feature id is not the entity id")
    k.expect(feature.get("geometry") == body["location"]["value"], f"geometry is {feature.get('geometry')!r}")


@case("6.3.15", "Accept: application/geo+json on Query Entities answers a GeoJSON FeatureCollection.", also=("6.3.4",))
def geojson_feature_collection(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entities", params={"type": body["type"]}, headers={"Accept": GEO_JSON})
    k.expect_status(response, 200)
    collection = k.json(response)
    k.expect(isinstance(collection, dict) and collection.get("type") == "FeatureCollection", f"got {collection!r:.200}")
    features = collection.get("features", [])
    k.expect(len(features) == 1 and features[0].get("id") == body["id"], "FeatureCollection lacks the entity")


def _add_context(k: Kit, document: dict[str, Any]) -> str:
    response = k.post("/jsonldContexts", document)
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_status(response, 201)
    location = str(response.headers.get("location", ""))
    k.expect(location, "201 without a Location header")
    k.cleanup(lambda: k.http.delete(_path(location)))
    return location


def _path(location: str) -> str:
    """The part of a Location below /ngsi-ld/v1 (Location may be absolute or relative)."""
    return "/" + location.split("/ngsi-ld/v1/", 1)[-1].lstrip("/")


@case(
    "5.13.2",
    "Add @context answers 201 with a Location that serves the @context back.",
    feature="jsonld-contexts",
    also=("6.29", "6.30", "5.13.4"),
)
def add_and_serve_context(k: Kit) -> None:
    document = _user_context(k)[3]
    location = _add_context(k, document)
    served = k.http.get(_path(location))
    k.expect_status(served, 200)
    k.expect(k.json(served).get("@context") == document["@context"], f"served {served.text[:200]!r}")


@case(
    "5.13.3",
    "List @contexts includes the URL of a hosted @context, and details=true gives its kind Hosted.",
    feature="jsonld-contexts",
    also=("6.29",),
)
def list_contexts(k: Kit) -> None:
    _, _, _, document = _user_context(k)
    location = _add_context(k, document)
    listing = k.http.get("/jsonldContexts")
    k.expect_status(listing, 200)
    urls = k.json(listing)
    k.expect(isinstance(urls, list) and any(str(u).endswith(_path(location)) for u in urls), f"{location} not listed")
    detailed = k.http.get("/jsonldContexts", params={"details": "true"})
    k.expect_status(detailed, 200)
    mine = [d for d in k.json(detailed) if isinstance(d, dict) and str(d.get("URL", "")).endswith(_path(location))]
    k.expect(len(mine) == 1 and mine[0].get("kind") == "Hosted", f"details for {location}: {mine!r}")


@case(
    "5.13.5",
    "Delete @context answers 204 and the @context is no longer served (404).",
    feature="jsonld-contexts",
    also=("6.30",),
)
def delete_context(k: Kit) -> None:
    _, _, _, document = _user_context(k)
    location = _add_context(k, document)
    k.expect_status(k.http.delete(_path(location)), 204)
    k.expect_problem(k.http.get(_path(location)), 404, "ResourceNotFound")


@case(
    "5.13.2",
    "A hosted @context works as the Link header of later requests.",
    feature="jsonld-contexts",
    also=("6.29", "6.3.5"),
)
def hosted_context_in_link(k: Kit) -> None:
    _, _, namespace, document = _user_context(k)
    location = _add_context(k, document)
    url = location if location.startswith("http") else k.run.broker.rstrip("/") + location
    body = _bus(k)
    k.entity(body, headers=link_header(url))
    core = k.get_entity(body["id"])
    k.expect(core.get("type") == namespace + "Bus", f"type is {core.get('type')!r}, expected {namespace}Bus")


@case(
    "6.3.5",
    "A query's Link header @context expands the type names it selects.",
    feature="user-contexts",
    also=("5.7.2",),
)
def query_with_link_context(k: Kit) -> None:
    _, _, _, document = _user_context(k)
    url = k.contexts.publish(document)
    body = _bus(k)
    k.entity(body, headers=link_header(url))
    found = k.query({"type": "Bus", "id": body["id"]}, headers=link_header(url))
    k.expect([e.get("id") for e in found] == [body["id"]], f"type=Bus with the @context found {found!r:.200}")
    k.expect(k.query({"type": "Bus", "id": body["id"]}) == [], "type=Bus without the @context found the entity")


@case("6.3.5", "The core @context named in a Link header gives the same result as no @context at all.")
def core_context_in_link(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body, headers=link_header(CORE_CONTEXT))
    response = k.http.get(f"/entities/{body['id']}", headers=link_header(CORE_CONTEXT))
    k.expect_status(response, 200)
    k.expect(k.json(response).get("type") == body["type"], "the entity type differs under the core @context")


@case("6.3.4", "Accept with q-weights is honoured: application/ld+json;q=1.0 over application/json;q=0.5.")
def accept_weights(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    accept = "application/json;q=0.5, application/ld+json;q=1.0"
    response = k.http.get(f"/entities/{body['id']}", headers={"Accept": accept})
    k.expect_status(response, 200)
    k.expect(
        response.headers.get("content-type", "").startswith(LD_JSON),
        f"Content-Type {response.headers.get('content-type')!r}, expected application/ld+json",
    )
