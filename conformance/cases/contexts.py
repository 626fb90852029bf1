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


# -- stored @contexts: kinds, details, serving, deletion and reload (clauses 5.13.1-5.13.5, 6.29, 6.30) -----------
def _details(k: Kit, **params: str) -> list[dict[str, Any]]:
    response = k.http.get("/jsonldContexts", params={"details": "true", **params})
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_status(response, 200)
    listed = k.json(response)
    k.expect(isinstance(listed, list), "List @contexts does not answer an array")
    return [d for d in listed if isinstance(d, dict)]


def _cached(k: Kit) -> tuple[str, dict[str, Any]]:
    """A remote @context the broker fetched while serving a request: (its URL, its details entry)."""
    document = _user_context(k)[3]
    url = k.contexts.publish(document)
    k.entity(_bus(k), headers=link_header(url))
    mine = [d for d in _details(k, kind="Cached") if d.get("URL") == url]
    k.expect(len(mine) == 1, f"the fetched @context {url} is not listed once as Cached: {mine!r}")
    k.cleanup(lambda: k.http.delete(f"/jsonldContexts/{mine[0].get('localId')}"))
    return url, mine[0]


@case(
    "5.13.2",
    "Adding a JSON object without an @context member is a BadRequestData error (400).",
    feature="jsonld-contexts",
    also=("6.29",),
)
def add_without_context_member_is_400(k: Kit) -> None:
    response = k.post("/jsonldContexts", {"Bus": "https://example.org/Bus"})
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.13.2",
    "Adding an @context that is not valid JSON-LD is a BadRequestData error (400).",
    feature="jsonld-contexts",
    also=("6.29", "5.5.4"),
)
def add_invalid_context_is_400(k: Kit) -> None:
    response = k.post("/jsonldContexts", {"@context": {"Bus": {"@id": 5}}})
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.13.2",
    "Information outside the @context subtree of an added @context is discarded: only @context is served.",
    feature="jsonld-contexts",
    also=("5.13.4", "6.30"),
)
def add_discards_other_members(k: Kit) -> None:
    document = {**_user_context(k)[3], "comment": "not part of the @context"}
    served = k.http.get(_path(_add_context(k, document)))
    k.expect_status(served, 200)
    body = k.json(served)
    k.expect(isinstance(body, dict) and set(body) == {"@context"}, f"served members {sorted(body)}")


@case(
    "6.30",
    "A hosted @context is served as a JSON-LD document: Content-Type application/ld+json with a root @context.",
    feature="jsonld-contexts",
    also=("5.13.4",),
)
def served_context_is_ld_json(k: Kit) -> None:
    served = k.http.get(_path(_add_context(k, _user_context(k)[3])))
    k.expect_status(served, 200)
    media = served.headers.get("content-type", "").split(";")[0].strip()
    k.expect(media == LD_JSON, f"Content-Type is {media!r}, expected application/ld+json")
    k.expect("@context" in k.json(served), "the served document has no root @context")


@case(
    "5.13.3",
    "List @contexts with details=true gives URL, localId, kind and createdAt for each stored @context.",
    feature="jsonld-contexts",
    also=("6.29",),
)
def list_details_members(k: Kit) -> None:
    location = _add_context(k, _user_context(k)[3])
    mine = [d for d in _details(k) if str(d.get("URL", "")).endswith(_path(location))]
    k.expect(len(mine) == 1, f"{location} is not listed once with details")
    missing = [m for m in ("URL", "localId", "kind", "createdAt") if m not in mine[0]]
    k.expect(not missing, f"details lack {missing}: {mine[0]!r}")


@case(
    "5.13.3",
    "List @contexts with kind=Hosted lists only Hosted @contexts.",
    feature="jsonld-contexts",
    also=("6.29",),
)
def list_kind_hosted_only(k: Kit) -> None:
    location = _add_context(k, _user_context(k)[3])
    listed = _details(k, kind="Hosted")
    k.expect(all(d.get("kind") == "Hosted" for d in listed), f"kind=Hosted lists {[d.get('kind') for d in listed]}")
    k.expect(any(str(d.get("URL", "")).endswith(_path(location)) for d in listed), f"{location} not listed")


@case(
    "5.13.3",
    "List @contexts with a kind other than Cached, Hosted or ImplicitlyCreated is a BadRequestData error (400).",
    feature="jsonld-contexts",
    also=("6.29",),
)
def list_unknown_kind_is_400(k: Kit) -> None:
    response = k.http.get("/jsonldContexts", params={"kind": "Borrowed"})
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_problem(response, 400)


@case(
    "5.13.4",
    "Serve @context with details=true gives the metadata of the @context, its localId among them.",
    feature="jsonld-contexts",
    also=("6.30",),
)
def serve_details(k: Kit) -> None:
    location = _add_context(k, _user_context(k)[3])
    response = k.http.get(_path(location), params={"details": "true"})
    k.expect_status(response, 200)
    details = k.json(response)
    local_id = location.rstrip("/").rsplit("/", 1)[-1]
    k.expect(details.get("localId") == local_id and details.get("kind") == "Hosted", f"details are {details!r}")


@case(
    "5.13.4",
    "Serving an unknown @context identifier is a ResourceNotFound error (404).",
    feature="jsonld-contexts",
    also=("6.30",),
)
def serve_unknown_is_404(k: Kit) -> None:
    response = k.http.get(f"/jsonldContexts/conformance-{k.run.run_id}-none")
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.13.5",
    "Deleting an unknown @context identifier is a ResourceNotFound error (404).",
    feature="jsonld-contexts",
    also=("6.30",),
)
def delete_unknown_is_404(k: Kit) -> None:
    response = k.http.delete(f"/jsonldContexts/conformance-{k.run.run_id}-none")
    k.not_implemented_if(response, "jsonld-contexts")
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.13.5",
    "reload=true on a Hosted @context is a BadRequestData error (400) and the @context stays.",
    feature="jsonld-contexts",
    also=("6.30",),
)
def reload_hosted_is_400(k: Kit) -> None:
    location = _add_context(k, _user_context(k)[3])
    k.expect_problem(k.http.delete(_path(location), params={"reload": "true"}), 400, "BadRequestData")
    k.expect_status(k.http.get(_path(location)), 200)


@case(
    "5.13.5",
    "A deleted Hosted @context is no longer listed.",
    feature="jsonld-contexts",
    also=("6.30", "5.13.3"),
)
def deleted_context_not_listed(k: Kit) -> None:
    location = _add_context(k, _user_context(k)[3])
    k.expect_status(k.http.delete(_path(location)), 204)
    k.expect(not any(str(d.get("URL", "")).endswith(_path(location)) for d in _details(k)), f"{location} still listed")


@case(
    "5.13.3",
    "A remote @context the broker fetched for a request is stored as Cached under its original URL.",
    feature="jsonld-contexts",
    also=("5.13.1", "6.29"),
)
def fetched_context_is_cached(k: Kit) -> None:
    if k.run.contexts is None:
        k.missing("user-contexts", "the kit runs without its @context server")
    _, details = _cached(k)
    k.expect(details.get("localId"), f"the Cached @context has no localId: {details!r}")


@case(
    "5.13.4",
    "Serving the content of a Cached @context is an OperationNotSupported error (422); its details are served.",
    feature="jsonld-contexts",
    also=("6.30",),
)
def serve_cached_is_422(k: Kit) -> None:
    if k.run.contexts is None:
        k.missing("user-contexts", "the kit runs without its @context server")
    url, details = _cached(k)
    local = f"/jsonldContexts/{details.get('localId')}"
    k.expect_problem(k.http.get(local), 422, "OperationNotSupported")
    response = k.http.get(local, params={"details": "true"})
    k.expect_status(response, 200)
    k.expect(k.json(response).get("URL") == url, f"details are {response.text[:200]!r}")


@case(
    "5.13.5",
    "reload=true on a Cached @context downloads it again (204) and keeps it stored.",
    feature="jsonld-contexts",
    also=("6.30",),
)
def reload_cached(k: Kit) -> None:
    if k.run.contexts is None:
        k.missing("user-contexts", "the kit runs without its @context server")
    url, details = _cached(k)
    k.expect_status(k.http.delete(f"/jsonldContexts/{details.get('localId')}", params={"reload": "true"}), 204)
    k.expect(any(d.get("URL") == url for d in _details(k, kind="Cached")), f"{url} is gone after the reload")


@case(
    "5.13.5",
    "Deleting a Cached @context removes it from the list.",
    feature="jsonld-contexts",
    also=("6.30",),
)
def delete_cached(k: Kit) -> None:
    if k.run.contexts is None:
        k.missing("user-contexts", "the kit runs without its @context server")
    url, details = _cached(k)
    k.expect_status(k.http.delete(f"/jsonldContexts/{details.get('localId')}"), 204)
    k.expect(not any(d.get("URL") == url for d in _details(k, kind="Cached")), f"{url} still listed as Cached")


def _implicit_subscription(k: Kit, uri: str) -> tuple[list[Any], set[str]]:
    """Create a subscription written with an @context array; answer the array and the ImplicitlyCreated URLs
    that appeared meanwhile."""
    before = {str(d.get("URL")) for d in _details(k, kind="ImplicitlyCreated")}
    namespace = f"https://example.org/conformance/{k.run.run_id}/{k.run.next_number()}#"
    context: list[Any] = [{"Tram": namespace + "Tram"}, CORE_CONTEXT]
    body = {
        "id": k.uid("Subscription"),
        "type": "Subscription",
        "entities": [{"type": "Tram"}],
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
        "@context": context,
    }
    response = k.post("/subscriptions", body, content_type=LD_JSON)
    k.not_implemented_if(response, "subscriptions")
    k.expect_status(response, 201)
    k.delete_later(f"/subscriptions/{body['id']}")
    made = {str(d.get("URL")) for d in _details(k, kind="ImplicitlyCreated")} - before
    for url in made:
        k.delete_later(_path(url))
    return context, made


@case(
    "5.13.3",
    "A subscription written with an @context array makes an ImplicitlyCreated @context that serves the array.",
    feature="jsonld-contexts",
    also=("5.13.1", "5.13.4", "6.29"),
)
def implicitly_created_for_array(k: Kit) -> None:
    context, made = _implicit_subscription(k, "http://127.0.0.1:9/unused")
    k.expect(len(made) == 1, f"{len(made)} new ImplicitlyCreated @contexts, expected 1")
    served = k.http.get(_path(made.pop()))
    k.expect_status(served, 200)
    k.expect(k.json(served).get("@context") == context, f"served {served.text[:200]!r}")


@case(
    "5.8.6",
    "application/json notifications of a subscription with an @context array link to its ImplicitlyCreated @context.",
    feature="jsonld-contexts",
    also=("5.13.1", "6.3.6"),
)
def implicitly_created_in_notification_link(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    context, made = _implicit_subscription(k, url)
    k.expect(len(made) == 1, f"{len(made)} new ImplicitlyCreated @contexts, expected 1")
    hosted = made.pop()
    entity_id = k.uid("Tram")
    k.entity({"id": entity_id, "type": context[0]["Tram"]})
    k.wait_until(lambda: any(entity_id in str(r.body) for r in k.receiver.received(path)))
    notes = [r for r in k.receiver.received(path) if entity_id in str(r.body)]
    k.expect(notes, f"no notification about {entity_id} within {k.run.notify_timeout} s")
    link = notes[0].headers.get("link", "")
    k.expect(f"<{hosted}>" in link or _path(hosted) in link, f"Link is {link!r}, expected {hosted}")
