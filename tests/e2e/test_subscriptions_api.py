"""Subscriptions end to end through a real uvicorn server (clauses 5.8, 6.10, 6.11): create, retrieve, query,
update, delete, and bad subscriptions that create nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.helpers import CORE, LD, link

BASE = "/ngsi-ld/v1/subscriptions"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def tenant() -> dict[str, str]:
    """A fresh tenant per test: the session broker is shared, listings must not see other tests."""
    return {"NGSILD-Tenant": f"t{uuid.uuid4().hex[:10]}"}


def subscription(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "watchedAttributes": ["speed"],
        "q": "speed>50",
        "notification": {
            "attributes": ["speed"],
            "format": "keyValues",
            "endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"},
        },
    }
    body.update(extra)
    return body


def create(http: httpx.Client, body: dict[str, Any], headers: dict[str, str]) -> str:
    r = http.post(BASE, json=body, headers=headers)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    assert location.startswith(f"{BASE}/urn:ngsi-ld:Subscription:")
    return location


def test_create_retrieve_update_delete(http: httpx.Client) -> None:
    h = tenant()
    location = create(http, subscription(), h)
    sub_id = location.rsplit("/", 1)[1]
    uuid.UUID(sub_id.removeprefix("urn:ngsi-ld:Subscription:"))  # a generated id is a UUID URN
    got = http.get(location, headers=h)
    assert got.status_code == 200 and CORE in got.headers["link"]
    doc = got.json()
    # isActive is shown only when the client wrote it (Table 5.2.12-1: 0..1, true by default; record 0130).
    assert doc["id"] == sub_id and doc["status"] == "active" and "isActive" not in doc
    assert doc["entities"] == [{"type": "Vehicle"}] and doc["q"] == "speed>50"
    assert doc["notification"]["endpoint"]["uri"] == "http://127.0.0.1:9/notify"
    assert "createdAt" not in doc
    assert "createdAt" in http.get(location, params={"options": "sysAttrs"}, headers=h).json()

    r = http.patch(
        location, json={"q": "speed>70", "isActive": False, "notification": {"format": "concise"}}, headers=h
    )
    assert r.status_code == 204, r.text
    doc = http.get(location, headers=h).json()
    assert doc["q"] == "speed>70" and doc["status"] == "paused" and doc["isActive"] is False
    assert doc["notification"]["format"] == "concise" and doc["notification"]["attributes"] == ["speed"]

    assert http.delete(location, headers=h).status_code == 204
    gone = http.get(location, headers=h)
    assert gone.status_code == 404 and gone.json()["type"] == ERR + "ResourceNotFound"
    assert http.delete(location, headers=h).status_code == 404
    assert http.patch(location, json={"q": "speed>1"}, headers=h).status_code == 404


def test_given_id_and_duplicate_is_already_exists(http: httpx.Client) -> None:
    h = tenant()
    sub_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    assert create(http, subscription(id=sub_id), h) == f"{BASE}/{sub_id}"
    r = http.post(BASE, json=subscription(id=sub_id, q="speed>1"), headers=h)
    assert r.status_code == 409 and r.json()["type"] == ERR + "AlreadyExists"
    assert http.get(f"{BASE}/{sub_id}", headers=h).json()["q"] == "speed>50"


def test_bad_subscriptions_are_refused_and_create_nothing(http: httpx.Client) -> None:
    h = tenant()
    endpoint = {"uri": "http://127.0.0.1:9/n"}
    cases = [
        subscription(unknown=1),
        subscription(q="speed>>1"),
        subscription(q="(speed>1"),
        subscription(geoQ={"geometry": "Point", "coordinates": [1, 2]}),
        subscription(geoQ={"geometry": "Polygon", "coordinates": [[[0, 0], [1, 1]]], "georel": "within"}),
        subscription(scopeQ="no-slash"),
        subscription(notificationTrigger=["whenever"]),
        subscription(notification={"endpoint": {"uri": "ftp://127.0.0.1/x"}}),
        subscription(notification={"endpoint": {"uri": "not a uri"}}),
        subscription(notification={"endpoint": endpoint, "format": "fancy"}),
        subscription(notification={"endpoint": {**endpoint, "extra": 1}}),
        subscription(notification={"endpoint": endpoint, "attributes": ["a"], "pick": "b"}),
        subscription(expiresAt="2001-01-01T00:00:00Z"),
        subscription(throttling=-5),
        subscription(entities=[{"id": "urn:a"}]),
        {k: v for k, v in subscription().items() if k != "notification"},
    ]
    for body in cases:
        r = http.post(BASE, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["type"] == ERR + "BadRequestData", body
    no_selection = {k: v for k, v in subscription().items() if k not in ("entities", "watchedAttributes")}
    for body in (no_selection, {**no_selection, "localOnly": False}):
        r = http.post(BASE, json=body, headers=h)
        assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData", body
    assert http.get(BASE, headers=h).json() == []
    r = http.post(BASE, json=subscription(csf="a=="), headers=h)  # csf has the grammar of q (record 0186)
    assert r.status_code == 400 and "csf" in r.json()["detail"]
    r = http.post(BASE, json=subscription(csf="registrationName==\"water\""), headers=h)
    assert r.status_code == 201, r.text
    assert http.get(r.headers["Location"], headers=h).json()["csf"] == 'registrationName=="water"'


def test_invalid_patch_changes_nothing(http: httpx.Client) -> None:
    h = tenant()
    location = create(http, subscription(), h)
    before = http.get(location, headers=h).json()
    for fragment in (
        {"q": "speed>>1"},
        {"bogus": 1},
        {"notification": {"endpoint": {"uri": "gopher://x"}}},
        {"id": "urn:x:y"},
        {"expiresAt": "2001-01-01T00:00:00Z"},  # clause 5.8.2.4: in the past, whatever isActive says
        {"expiresAt": "2001-01-01T00:00:00Z", "isActive": True},
        {"expiresAt": "tomorrow"},
        {"localOnly": "yes"},
    ):
        r = http.patch(location, json=fragment, headers=h)
        assert r.status_code == 400, (fragment, r.text)
    assert http.get(location, headers=h).json() == before


def test_future_expiry_update_and_local_only(http: httpx.Client) -> None:
    """An expiresAt in the future is taken (clause 5.8.2.4); localOnly=true allows neither entities nor
    watchedAttributes (clause 5.2.12), every entity is then subscribed."""
    h = tenant()
    location = create(http, subscription(), h)
    assert http.patch(location, json={"expiresAt": "2999-01-01T00:00:00Z"}, headers=h).status_code == 204
    doc = http.get(location, headers=h).json()
    assert doc["expiresAt"] == "2999-01-01T00:00:00Z" and doc["status"] == "active"
    body = {k: v for k, v in subscription().items() if k not in ("entities", "watchedAttributes")}
    local = http.get(create(http, {**body, "localOnly": True}, h), headers=h).json()
    assert local["localOnly"] is True and "entities" not in local and "watchedAttributes" not in local


def test_query_pages_with_count_and_links(http: httpx.Client) -> None:
    h = tenant()
    ids = sorted(create(http, subscription(), h).rsplit("/", 1)[1] for _ in range(5))
    page = http.get(BASE, params={"limit": 2, "offset": 2, "count": "true"}, headers=h)
    assert page.status_code == 200
    assert page.headers["NGSILD-Results-Count"] == "5"
    assert [s["id"] for s in page.json()] == ids[2:4]
    links = page.headers.get_list("link")
    assert any('rel="next"' in x and "offset=4" in x for x in links)
    assert any('rel="prev"' in x and "offset=0" in x for x in links)
    assert [s["id"] for s in http.get(BASE, headers=h).json()] == ids
    assert http.get(BASE, params={"limit": 100000}, headers=h).status_code == 403
    assert http.get(BASE, params={"bogus": 1}, headers=h).status_code == 400
    # options=count, the older form clients of other brokers send, counts too (record 0133).
    counted = http.get(BASE, params={"limit": 1, "options": "count"}, headers=h)
    assert counted.status_code == 200 and counted.headers["NGSILD-Results-Count"] == "5"
    assert "NGSILD-Results-Count" not in http.get(BASE, params={"limit": 1}, headers=h).headers
    assert http.get(BASE, params={"options": "keyValues"}, headers=h).status_code == 400


def test_terms_follow_the_request_context(http: httpx.Client, context_server: str) -> None:
    h = tenant()
    ctx = context_server + "/a.jsonld"
    location = create(http, subscription(), {**h, **link(ctx)})
    mine = http.get(location, headers={**h, **link(ctx)}).json()
    assert mine["entities"] == [{"type": "Vehicle"}] and mine["watchedAttributes"] == ["speed"]
    core = http.get(location, headers=h).json()
    assert core["entities"] == [{"type": "https://example.org/city#Vehicle"}]
    assert core["watchedAttributes"] == ["https://example.org/city#speed"]
    assert core["notification"]["attributes"] == ["https://example.org/city#speed"]
    as_ld = http.get(location, headers={**h, **link(ctx), "Accept": LD}).json()
    assert as_ld["@context"] == ctx
    # An update with the subscription's own context keeps its meaning.
    assert http.patch(location, json={"watchedAttributes": ["speed"]}, headers={**h, **link(ctx)}).status_code == 204
    assert http.get(location, headers=h).json()["watchedAttributes"] == ["https://example.org/city#speed"]


def test_ld_json_body_carries_its_context(http: httpx.Client, context_server: str) -> None:
    h = tenant()
    body = {**subscription(), "@context": context_server + "/a.jsonld"}
    r = http.post(BASE, content=httpx.Request("POST", "/", json=body).content, headers={**h, "Content-Type": LD})
    assert r.status_code == 201, r.text
    assert http.get(r.headers["location"], headers=h).json()["watchedAttributes"] == ["https://example.org/city#speed"]
