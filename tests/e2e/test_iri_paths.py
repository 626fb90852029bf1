"""Ids and names that are IRIs with '/' travel percent-encoded in one path segment (RFC 3986 section 3.3) and reach
the right resource through a real uvicorn server, which decodes the path before the app sees it."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tests.e2e.helpers import uid

BASE = "/ngsi-ld/v1"
HEIGHT = "https://example.org/terms/height"  # an attribute with no term in any @context: its IRI is its name


def seg(value: str) -> str:
    return quote(value, safe="")


def test_entity_with_an_http_iri_id_is_addressable(http: httpx.Client) -> None:
    eid = f"https://example.org/buildings/{uid('B').rsplit(':', 1)[1]}"
    body = {"id": eid, "type": "Building", HEIGHT: {"type": "Property", "value": 10}}
    r = http.post(f"{BASE}/entities", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{BASE}/entities/{quote(eid, safe=':')}"
    got = http.get(r.headers["location"])
    assert got.status_code == 200 and got.json()["id"] == eid
    assert http.get(f"{BASE}/entities/{seg(eid)}").json() == got.json()

    patched = http.patch(f"{BASE}/entities/{seg(eid)}/attrs/{seg(HEIGHT)}", json={"value": 12})
    assert patched.status_code == 204, patched.text
    assert http.get(f"{BASE}/entities/{seg(eid)}").json()[HEIGHT]["value"] == 12

    history = http.get(f"{BASE}/temporal/entities/{seg(eid)}", params={"options": "temporalValues"})
    assert history.status_code == 200, history.text
    assert [v[0] for v in history.json()[HEIGHT]["values"]] == [10, 12]

    assert http.delete(f"{BASE}/entities/{seg(eid)}/attrs/{seg(HEIGHT)}").status_code == 204
    assert HEIGHT not in http.get(f"{BASE}/entities/{seg(eid)}").json()
    assert http.delete(f"{BASE}/entities/{seg(eid)}").status_code == 204
    assert http.get(f"{BASE}/entities/{seg(eid)}").status_code == 404


def test_an_encoded_percent_stays_a_percent(http: httpx.Client) -> None:
    """An id holding the text "%2F" (a URI may) is not the id holding "/": each reaches only itself."""
    tail = uid("T").rsplit(":", 1)[1]
    literal, slashed = f"urn:ngsi-ld:Thing:{tail}%2Fx", f"urn:ngsi-ld:Thing:{tail}/x"
    for eid in (literal, slashed):
        r = http.post(f"{BASE}/entities", json={"id": eid, "type": "Thing", "n": {"type": "Property", "value": eid}})
        assert r.status_code == 201, r.text
    for eid in (literal, slashed):
        got = http.get(f"{BASE}/entities/{seg(eid)}")
        assert got.status_code == 200 and got.json()["n"]["value"] == eid


def test_types_and_attributes_named_by_iri_are_discoverable(http: httpx.Client) -> None:
    eid = uid("Building")
    kind = "https://example.org/types/Tower"
    r = http.post(f"{BASE}/entities", json={"id": eid, "type": kind, HEIGHT: {"type": "Property", "value": 1}})
    assert r.status_code == 201, r.text
    typed = http.get(f"{BASE}/types/{seg(kind)}")
    assert typed.status_code == 200, typed.text
    assert typed.json()["typeName"] == kind
    attr = http.get(f"{BASE}/attributes/{seg(HEIGHT)}")
    assert attr.status_code == 200, attr.text
    assert attr.json()["attributeName"] == HEIGHT


def test_a_path_without_escapes_is_routed_as_before(http: httpx.Client) -> None:
    eid = uid("Thing")
    assert http.post(f"{BASE}/entities", json={"id": eid, "type": "Thing"}).status_code == 201
    assert http.get(f"{BASE}/entities/{eid}").status_code == 200
    assert http.get(f"{BASE}/entities/{eid}/extra/segments").status_code == 404
