"""Provision operations read from the V1.9.1 clause text (5.6.x, 6.3.5, 6.4 to 6.7, 6.14 to 6.17, 6.31), issue 17:
decision records 0110 to 0116."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import CORE, LD, link, uid, vehicle

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"  # 207 bodies use fully qualified names (6.3.6)


def _create(http: httpx.Client, body: dict[str, object]) -> None:
    r = http.post(f"{BASE}/entities", json=body)
    assert r.status_code == 201, r.text


def _problem(r: httpx.Response, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["type"] == ERR + kind


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/entities/", {"speed": {"type": "Property", "value": 1}}),
        ("PUT", "/entities/", {"type": "Vehicle"}),
        ("POST", "/entities//attrs", {"speed": {"type": "Property", "value": 1}}),
        ("PATCH", "/entities//attrs", {"speed": {"type": "Property", "value": 1}}),
        ("POST", "/entities//attrs/", {"speed": {"type": "Property", "value": 1}}),
        ("PATCH", "/entities//attrs/speed", {"value": 1}),
        ("PUT", "/entities//attrs/speed", {"type": "Property", "value": 1}),
        ("DELETE", "/entities//attrs/speed", None),
    ],
)
def test_an_entity_id_not_present_is_bad_request_data(http: httpx.Client, method: str, path: str, body: object) -> None:
    """5.6.2.4, 5.6.3.4, 5.6.4.4, 5.6.5.4, 5.6.17.4, 5.6.18.4, 5.6.19.4: "If the Entity ID is not present ..."."""
    _problem(http.request(method, BASE + path, json=body), 400, "BadRequestData")


def test_an_absent_entity_stays_not_found_and_a_malformed_id_bad_request(http: httpx.Client) -> None:
    attrs = {"speed": {"type": "Property", "value": 1}}
    _problem(http.post(f"{BASE}/entities/{uid()}/attrs", json=attrs), 404, "ResourceNotFound")
    _problem(http.patch(f"{BASE}/entities/{uid()}/attrs", json=attrs), 404, "ResourceNotFound")
    _problem(http.delete(f"{BASE}/entities/{uid()}/attrs/speed"), 404, "ResourceNotFound")
    _problem(http.post(f"{BASE}/entities/not-a-uri/attrs", json=attrs), 400, "BadRequestData")
    _problem(http.delete(f"{BASE}/entities/not-a-uri/attrs/speed"), 400, "BadRequestData")


def test_other_methods_on_entities_slash_still_reach_entities(http: httpx.Client) -> None:
    """/entities/ is the resource URI as Table 6.2-1 writes it: create, query and purge answer there, unredirected."""
    eid, kind = uid(), "Slash" + uid()[-8:]
    r = http.post(f"{BASE}/entities/", json=vehicle(eid, type=kind))
    assert r.status_code == 201, r.text
    r = http.get(f"{BASE}/entities/", params={"id": eid, "type": kind})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == [eid]
    assert http.delete(f"{BASE}/entities/", params={"type": kind}).status_code == 204
    assert http.get(f"{BASE}/entities/{eid}").status_code == 404


def test_batch_items_follow_the_context_rules_one_by_one(http: httpx.Client) -> None:
    """6.3.5 applied per item (5.5.11.0: "as if they had all arrived in separate requests"): record 0111."""
    good, with_context = uid(), uid()
    r = http.post(f"{BASE}/entityOperations/create", json=[vehicle(good), {**vehicle(with_context), "@context": CORE}])
    assert r.status_code == 207, r.text
    assert r.json()["success"] == [good]
    assert [(e["entityId"], e["error"]["type"]) for e in r.json()["errors"]] == [(with_context, ERR + "BadRequestData")]
    assert http.get(f"{BASE}/entities/{with_context}").status_code == 404

    carried, bare = uid(), uid()
    body = [{**vehicle(carried), "@context": CORE}, vehicle(bare)]
    r = http.post(f"{BASE}/entityOperations/upsert", json=body, headers={"Content-Type": LD})
    assert r.status_code == 207, r.text
    assert r.json()["success"] == [carried]
    assert r.json()["errors"][0]["entityId"] == bare


def test_a_link_header_under_ld_json_still_refuses_the_whole_batch(http: httpx.Client) -> None:
    eid = uid()
    body = [{**vehicle(eid), "@context": CORE}]
    r = http.post(f"{BASE}/entityOperations/create", json=body, headers={"Content-Type": LD, **link(CORE)})
    _problem(r, 400, "BadRequestData")
    assert http.get(f"{BASE}/entities/{eid}").status_code == 404


def test_each_item_of_an_ld_json_batch_has_its_own_context(http: httpx.Client, context_server: str) -> None:
    from tests.support.servers import free_port

    a, b, lost = uid(), uid(), uid()
    body = [
        {"id": a, "type": "Vehicle", "@context": CORE},
        {"id": b, "type": "Vehicle", "@context": f"{context_server}/a.jsonld"},
        {"id": lost, "type": "Vehicle", "@context": f"http://127.0.0.1:{free_port()}/nothing.jsonld"},
    ]
    r = http.post(f"{BASE}/entityOperations/create", json=body, headers={"Content-Type": LD})
    assert r.status_code == 207, r.text
    assert r.json()["success"] == [a, b]
    assert r.json()["errors"][0]["entityId"] == lost
    assert r.json()["errors"][0]["error"]["type"] == ERR + "LdContextNotAvailable"
    assert http.get(f"{BASE}/entities/{a}").json()["type"] == "Vehicle"
    assert http.get(f"{BASE}/entities/{b}").json()["type"] == "https://example.org/city#Vehicle"


def test_batch_delete_of_ids_asks_no_context(http: httpx.Client) -> None:
    a, b = uid(), uid()
    _create(http, vehicle(a))
    _create(http, vehicle(b))
    r = http.post(f"{BASE}/entityOperations/delete", json=[a, b], headers={"Content-Type": LD})
    assert r.status_code == 204, r.text
    assert http.get(f"{BASE}/entities/{a}").status_code == 404


def test_batch_delete_of_an_id_twice_fails_the_second(http: httpx.Client) -> None:
    """5.5.11.4: "subsequent occurrences of the same Entity ID will provoke an error"."""
    a = uid()
    _create(http, vehicle(a))
    r = http.post(f"{BASE}/entityOperations/delete", json=[a, a], headers={"Content-Type": LD})
    assert r.status_code == 207, r.text
    assert r.json()["success"] == [a] and r.json()["errors"][0]["error"]["type"] == ERR + "ResourceNotFound"


@pytest.mark.parametrize("operation", ["create", "upsert", "update", "delete", "merge"])
def test_an_empty_batch_or_a_null_item_is_bad_request_data(http: httpx.Client, operation: str) -> None:
    """5.6.7.4 to 5.6.10.4: "If the input Array is empty or contains a null value ... BadRequestData" (record 0112)."""
    _problem(http.post(f"{BASE}/entityOperations/{operation}", json=[]), 400, "BadRequestData")
    eid = uid()
    item: object = eid if operation == "delete" else vehicle(eid)
    _problem(http.post(f"{BASE}/entityOperations/{operation}", json=[item, None]), 400, "BadRequestData")


def test_append_with_no_overwrite_reports_what_it_kept_and_adds_scopes(http: httpx.Client) -> None:
    """5.6.3.4/5.6.3.5: untouched attributes make a partial outcome (207); the fragment's scopes are added."""
    eid = uid()
    _create(http, vehicle(eid, scope="/a"))
    r = http.post(
        f"{BASE}/entities/{eid}/attrs",
        params={"options": "noOverwrite"},
        json={"speed": {"type": "Property", "value": 1}, "fuel": {"type": "Property", "value": 2}, "scope": "/b"},
    )
    assert r.status_code == 207, r.text
    assert r.json() == {
        "updated": [VOCAB + "fuel"],
        "notUpdated": [
            {"attributeName": VOCAB + "speed", "reason": "attribute exists and options=noOverwrite was given"}
        ],
    }
    doc = http.get(f"{BASE}/entities/{eid}").json()
    assert doc["speed"]["value"] == 80 and doc["fuel"]["value"] == 2 and doc["scope"] == ["/a", "/b"]


def test_update_of_scope_on_an_entity_without_scope_is_not_updated(http: httpx.Client) -> None:
    """5.6.2.4: the scope is "otherwise ignored"; the 207 says so (record 0114)."""
    eid = uid()
    _create(http, vehicle(eid))
    r = http.patch(f"{BASE}/entities/{eid}/attrs", json={"scope": "/x", "speed": {"type": "Property", "value": 3}})
    assert r.status_code == 207, r.text
    assert r.json()["updated"] == [VOCAB + "speed"]
    assert r.json()["notUpdated"][0]["attributeName"] == "https://uri.etsi.org/ngsi-ld/scope"
    assert "scope" not in http.get(f"{BASE}/entities/{eid}").json()
    scoped = uid()
    _create(http, vehicle(scoped, scope="/y"))
    assert http.patch(f"{BASE}/entities/{scoped}/attrs", json={"scope": "/z"}).status_code == 204
    assert http.get(f"{BASE}/entities/{scoped}").json()["scope"] == "/z"


def test_purge_needs_a_selector_unless_local(http: httpx.Client) -> None:
    """5.6.21.4: type, attribute names, q, geo-query or local scope; ids alone are too wide (record 0115)."""
    kind = "Purged" + uid()[-8:]
    eid = uid()
    _create(http, {"id": eid, "type": kind})
    _problem(http.delete(f"{BASE}/entities", params={"id": eid}), 400, "BadRequestData")
    _problem(http.delete(f"{BASE}/entities", params={"idPattern": ".*"}), 400, "BadRequestData")
    assert http.get(f"{BASE}/entities/{eid}").status_code == 200
    assert http.delete(f"{BASE}/entities", params={"id": eid, "local": "true"}).status_code == 204
    assert http.get(f"{BASE}/entities/{eid}").status_code == 404


def test_purge_by_geo_query(http: httpx.Client) -> None:
    kind = "Geo" + uid()[-8:]
    near, far = uid(), uid()
    _create(http, vehicle(near, type=kind))
    _create(
        http,
        vehicle(far, type=kind, location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [10, 10]}}),
    )
    r = http.delete(
        f"{BASE}/entities",
        params={"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": "[2.35,48.85]"},
    )
    assert r.status_code == 204, r.text
    assert http.get(f"{BASE}/entities/{near}").status_code == 404
    assert http.get(f"{BASE}/entities/{far}").status_code == 200


def test_partial_attribute_update_cannot_change_the_type(http: httpx.Client) -> None:
    """5.6.4.4: "it is not allowed to change the type of an Attribute" (record 0116)."""
    eid = uid()
    _create(http, vehicle(eid))
    r = http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"type": "Relationship", "object": "urn:ngsi-ld:X:1"})
    _problem(r, 400, "BadRequestData")
    r = http.patch(f"{BASE}/entities/{eid}/attrs/isParked", json={"type": "Property", "value": 1})
    _problem(r, 400, "BadRequestData")
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"]["value"] == 80
    # a fragment without type keeps the stored one, as before
    assert http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"value": 5}).status_code == 204
    assert http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"type": "Property", "value": 6}).status_code == 204
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"]["value"] == 6


def test_partial_update_of_scope_is_bad_request_data(http: httpx.Client) -> None:
    """5.6.4.4: "If the target Attribute is scope, then an error of type BadRequestData shall be raised"."""
    eid = uid()
    _create(http, vehicle(eid, scope="/a"))
    _problem(http.patch(f"{BASE}/entities/{eid}/attrs/scope", json={"value": "/b"}), 400, "BadRequestData")


def test_delete_attribute_scope_removes_the_scope(http: httpx.Client) -> None:
    """5.6.5.4: "If the target Attribute is scope, remove the scope Attribute from the target Entity"."""
    eid = uid()
    _create(http, vehicle(eid, scope="/a"))
    assert http.delete(f"{BASE}/entities/{eid}/attrs/scope").status_code == 204
    assert "scope" not in http.get(f"{BASE}/entities/{eid}").json()
    _problem(http.delete(f"{BASE}/entities/{eid}/attrs/scope"), 404, "ResourceNotFound")
    _problem(
        http.put(f"{BASE}/entities/{eid}/attrs/scope", json={"type": "Property", "value": "/b"}), 400, "BadRequestData"
    )


def test_the_type_selector_narrows_the_target_of_every_entity_operation(http: httpx.Client) -> None:
    """5.6.2.4 to 5.6.5.4, 5.6.18.4, 5.6.19.4: ResourceNotFound when no entity "whose id (URI), and where specified
    type, is equivalent" exists."""
    eid = uid()
    _create(http, vehicle(eid))
    other = {"type": "Boat"}
    attrs = {"speed": {"type": "Property", "value": 1}}
    _problem(http.post(f"{BASE}/entities/{eid}/attrs", json=attrs, params=other), 404, "ResourceNotFound")
    _problem(http.patch(f"{BASE}/entities/{eid}/attrs", json=attrs, params=other), 404, "ResourceNotFound")
    _problem(http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"value": 1}, params=other), 404, "ResourceNotFound")
    _problem(http.put(f"{BASE}/entities/{eid}/attrs/speed", json=attrs["speed"], params=other), 404, "ResourceNotFound")
    _problem(http.delete(f"{BASE}/entities/{eid}/attrs/speed", params=other), 404, "ResourceNotFound")
    _problem(http.put(f"{BASE}/entities/{eid}", json={"type": "Vehicle"}, params=other), 404, "ResourceNotFound")
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"]["value"] == 80
    assert (
        http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"value": 2}, params={"type": "Vehicle"}).status_code
        == 204
    )


def test_a_batch_delete_item_that_is_not_a_uri_is_reported_under_its_value(http: httpx.Client) -> None:
    r = http.post(f"{BASE}/entityOperations/delete", json=["not a uri"])
    assert r.status_code == 207, r.text
    assert r.json()["errors"][0]["entityId"] == "not a uri"
    assert r.json()["errors"][0]["error"]["type"] == ERR + "BadRequestData"


def test_partial_attribute_update_deletes_sub_attributes_but_not_the_attribute(http: httpx.Client) -> None:
    """5.6.4.1: "This operation supports the deletion of sub-Attributes but not the deletion of the whole Attribute
    itself"; a Null in its place is an NGSI-LD Null the operation does not support (5.6.4.4: OperationNotSupported)."""
    eid = uid()
    _create(http, vehicle(eid, speed={"type": "Property", "value": 80, "accuracy": {"type": "Property", "value": 1}}))
    _problem(
        http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"value": "urn:ngsi-ld:null"}),
        422,
        "OperationNotSupported",
    )
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"]["value"] == 80
    r = http.patch(f"{BASE}/entities/{eid}/attrs/speed", json={"value": 81, "accuracy": "urn:ngsi-ld:null"})
    assert r.status_code == 204, r.text
    assert http.get(f"{BASE}/entities/{eid}").json()["speed"] == {"type": "Property", "value": 81}
