"""The spec's resource paths end with '/' (clause 6.4.2 "Resource URI: /entities/"): Agora serves them as they are,
without a redirect that a client not following redirects (httpx's default) takes for a failure."""

from __future__ import annotations

from starlette.testclient import TestClient

LD = {"Content-Type": "application/ld+json"}
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


def test_create_and_query_through_the_trailing_slash_paths(client: TestClient) -> None:
    entity = {"id": "urn:ngsi-ld:Room:slash", "type": "Room", "t": {"type": "Property", "value": 1}, "@context": CORE}
    created = client.post("/ngsi-ld/v1/entities/", json=entity, headers=LD, follow_redirects=False)
    assert created.status_code == 201, created.text
    listed = client.get("/ngsi-ld/v1/entities/?type=Room", follow_redirects=False)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == ["urn:ngsi-ld:Room:slash"]
    batch = [{"id": "urn:ngsi-ld:Room:b", "type": "Room", "@context": CORE}]
    upserted = client.post("/ngsi-ld/v1/entityOperations/upsert/", json=batch, headers=LD, follow_redirects=False)
    assert upserted.status_code in (201, 204), upserted.text
    one = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:slash/", follow_redirects=False)
    assert one.status_code == 200 and one.json()["id"] == "urn:ngsi-ld:Room:slash"


def test_subscriptions_through_the_trailing_slash_path(client: TestClient) -> None:
    subscription = {
        "id": "urn:ngsi-ld:Subscription:slash",
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        "@context": CORE,
    }
    created = client.post("/ngsi-ld/v1/subscriptions/", json=subscription, headers=LD, follow_redirects=False)
    assert created.status_code == 201, created.text
    listed = client.get("/ngsi-ld/v1/subscriptions/", follow_redirects=False)
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == ["urn:ngsi-ld:Subscription:slash"]


def test_a_path_that_matches_no_route_with_or_without_the_slash_is_still_404(client: TestClient) -> None:
    assert client.get("/ngsi-ld/v1/nothing/", follow_redirects=False).status_code == 404


def test_the_types_resource_with_its_slash_lists_types_and_an_iri_ending_with_a_slash_is_kept(
    client: TestClient,
) -> None:
    entity = {"id": "urn:ngsi-ld:Room:t", "type": "https://example.org/T/", "@context": CORE}
    assert client.post("/ngsi-ld/v1/entities", json=entity, headers=LD).status_code == 201
    listed = client.get("/ngsi-ld/v1/types/", follow_redirects=False)
    assert listed.status_code == 200 and listed.json()["typeList"] == ["https://example.org/T/"]
    # the '/' belongs to the type IRI (a `rest` path parameter): not stripped
    one = client.get("/ngsi-ld/v1/types/https://example.org/T/", follow_redirects=False)
    assert one.status_code == 200, one.text
    assert one.json()["typeName"] == "https://example.org/T/"
