"""The /jsonldContexts API and remote @context handling end to end (clauses 6.29, 6.30, 5.5.7)."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import link, uid

BASE = "/ngsi-ld/v1"


def test_hosted_context_lifecycle(http: httpx.Client, broker_server: object) -> None:
    doc = {"@context": {"Bus": "https://example.org/transport#Bus", "line": "https://example.org/transport#line"}}
    r = http.post(f"{BASE}/jsonldContexts", json=doc)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    assert location.startswith(f"{BASE}/jsonldContexts/")
    url = str(http.base_url).rstrip("/") + location

    served = http.get(location)
    assert served.status_code == 200 and served.json() == doc
    assert served.headers["content-type"] == "application/ld+json"  # a JSON-LD document (clause 6.30.3.1)

    eid = uid("Bus")
    r = http.post(f"{BASE}/entities", json={"id": eid, "type": "Bus", "line": 7}, headers=link(url))
    assert r.status_code == 201, r.text
    core_view = http.get(f"{BASE}/entities/{eid}").json()
    assert core_view["type"] == "https://example.org/transport#Bus"
    assert http.get(f"{BASE}/entities/{eid}", headers=link(url)).json()["line"] == {"type": "Property", "value": 7}

    listing = http.get(f"{BASE}/jsonldContexts").json()
    assert url in listing
    details = http.get(f"{BASE}/jsonldContexts", params={"details": "true", "kind": "Hosted"}).json()
    mine = [d for d in details if d["URL"] == url]
    assert mine and mine[0]["kind"] == "Hosted" and mine[0]["localId"] == location.rsplit("/", 1)[1]
    assert http.get(location, params={"details": "true"}).json()["URL"] == url

    assert http.delete(location).status_code == 204
    assert http.get(location).status_code == 404
    assert http.get(f"{BASE}/entities/{eid}", headers=link(url)).status_code == 504


def test_remote_context_is_cached_and_listed(http: httpx.Client, context_server: str) -> None:
    url = context_server + "/a.jsonld"
    eid = uid("Vehicle")
    assert http.post(f"{BASE}/entities", json={"id": eid, "type": "Vehicle"}, headers=link(url)).status_code == 201
    cached = http.get(f"{BASE}/jsonldContexts", params={"kind": "Cached", "details": "true"}).json()
    mine = [d for d in cached if d["URL"] == url]
    assert mine and mine[0]["numberOfHits"] >= 1
    local_id = mine[0]["localId"]
    # Clause 5.13.4.4: a Cached @context is not served (OperationNotSupported), only its details are.
    served = http.get(f"{BASE}/jsonldContexts/{local_id}")
    assert served.status_code == 422 and served.json()["type"].endswith("/OperationNotSupported")
    assert http.get(f"{BASE}/jsonldContexts/{local_id}", params={"details": "true"}).json()["kind"] == "Cached"
    assert http.delete(f"{BASE}/jsonldContexts/{local_id}", params={"reload": "true"}).status_code == 204


def test_bad_context_requests(http: httpx.Client) -> None:
    assert http.post(f"{BASE}/jsonldContexts", json={"no": "context"}).status_code == 400
    assert http.post(f"{BASE}/jsonldContexts", json={"@context": {"x": {"@id": 5}}}).status_code == 400
    assert http.get(f"{BASE}/jsonldContexts", params={"kind": "Other"}).status_code == 400
    assert http.get(f"{BASE}/jsonldContexts/nothing-here").status_code == 404
    r = http.post(f"{BASE}/entities", json={"id": uid(), "type": "T"}, headers=link("not a url"))
    assert r.status_code == 400
