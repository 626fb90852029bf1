"""Notifications end to end: a real broker under uvicorn notifies a real local HTTP receiver (clause 5.3, 6.3.x,
ARCHITECTURE decision 6). Covers triggers, watchedAttributes, q, formats, receiverInfo, the delivery state,
isolation from a hanging endpoint, and SIGKILL of the broker in the middle of a burst."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import CORE, FAST_NOTIFY, LD, uid
from tests.support.servers import BrokerProcess, running_broker, start_broker

BASE = "/ngsi-ld/v1"
FAST = FAST_NOTIFY


# -- the receiver -------------------------------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """Records every POST. Paths starting with /hang never answer (until the server stops), /fail answers 500."""

    url: str
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.at(path)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.at(path))} notifications, expected {count}")

    def quiet(self, path: str, seconds: float = 0.5) -> list[Received]:
        """What arrived at `path` once nothing more came for `seconds` (to check that nothing else is sent)."""
        time.sleep(seconds)
        return self.at(path)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/hang"):
                receiver.stop.wait(60)
                return
            with receiver.lock:
                receiver.got.append(Received(self.path, dict(self.headers.items()), json.loads(raw), time.monotonic()))
            self.send_response(500 if self.path.startswith("/fail") else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver("")))
    server.daemon_threads = True
    recv = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(recv)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recv
    recv.stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("notify")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=FAST) as process:
        yield process


@pytest.fixture
def http(broker: BrokerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broker.url, timeout=10) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------------------------------
def path() -> str:
    return f"/n/{uuid.uuid4().hex[:8]}"


def subscribe(http: httpx.Client, receiver: Receiver, where: str, **extra: Any) -> str:
    notification = extra.pop("notification", {})
    endpoint = notification.pop("endpoint", {})
    body = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        **extra,
        "notification": {**notification, "endpoint": {"uri": receiver.url + where, **endpoint}},
    }
    r = http.post(f"{BASE}/subscriptions", json=body)
    assert r.status_code == 201, r.text
    return str(r.headers["location"]).rsplit("/", 1)[1]


def vehicle(eid: str, speed: float, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": "Vehicle", "speed": {"type": "Property", "value": speed}, **attrs}


def ok(r: httpx.Response) -> None:
    assert r.status_code in (201, 204), r.text


def data(received: list[Received]) -> list[dict[str, Any]]:
    return [d for r in received for d in r.body["data"]]


# -- tests --------------------------------------------------------------------------------------------------------
def test_create_update_delete_triggers_with_watched_attributes_and_q(http: httpx.Client, receiver: Receiver) -> None:
    default, entity_level, watched_q = path(), path(), path()
    sub_default = subscribe(http, receiver, default)
    subscribe(
        http,
        receiver,
        entity_level,
        notificationTrigger=["entityCreated", "entityDeleted"],
        notification={"format": "keyValues"},
    )
    subscribe(
        http,
        receiver,
        watched_q,
        watchedAttributes=["speed"],
        q="speed>50",
        notification={"attributes": ["speed"], "format": "keyValues"},
    )
    eid = uid("Vehicle")
    ok(http.post(f"{BASE}/entities", json=vehicle(eid, 10, fuel={"type": "Property", "value": 1})))
    ok(http.patch(f"{BASE}/entities/{eid}/attrs", json={"fuel": {"type": "Property", "value": 2}}))
    ok(http.patch(f"{BASE}/entities/{eid}/attrs", json={"speed": {"type": "Property", "value": 80}}))
    ok(http.delete(f"{BASE}/entities/{eid}"))

    first = receiver.wait_for(default, 3)
    assert [n.body["triggerReason"] for n in first] == ["attributeCreated", "attributeUpdated", "attributeUpdated"]
    assert [d["speed"]["value"] for d in data(first)] == [10, 10, 80]
    assert all(n.body["subscriptionId"] == sub_default and n.body["type"] == "Notification" for n in first)
    assert len({n.body["id"] for n in first}) == 3
    assert len(receiver.quiet(default)) == 3  # a deletion does not notify the default triggers

    entity_events = receiver.wait_for(entity_level, 2)
    assert [n.body["triggerReason"] for n in entity_events] == ["entityCreated", "entityDeleted"]
    deleted = entity_events[1].body["data"][0]
    assert deleted["id"] == eid and deleted["type"] == "Vehicle" and "deletedAt" in deleted

    only_fast = receiver.wait_for(watched_q, 1)
    assert len(receiver.quiet(watched_q)) == 1
    assert only_fast[0].body["data"] == [{"id": eid, "type": "Vehicle", "speed": 80}]


def test_headers_receiver_info_link_and_ld_json(http: httpx.Client, receiver: Receiver) -> None:
    as_json, as_ld = path(), path()
    info = [{"key": "X-Auth-Token", "value": "s3cret"}, {"key": "X-Trace", "value": "abc"}]
    subscribe(http, receiver, as_json, notification={"endpoint": {"receiverInfo": info}})
    subscribe(http, receiver, as_ld, notification={"endpoint": {"accept": LD}})
    ok(http.post(f"{BASE}/entities", json=vehicle(uid("Vehicle"), 1)))
    plain = receiver.wait_for(as_json, 1)[0]
    assert plain.headers["X-Auth-Token"] == "s3cret" and plain.headers["X-Trace"] == "abc"
    assert plain.headers["Content-Type"] == "application/json"
    assert CORE in plain.headers["Link"] and "@context" not in plain.body
    ld = receiver.wait_for(as_ld, 1)[0]
    assert ld.headers["Content-Type"] == LD and ld.body["@context"] == CORE and "Link" not in ld.headers


def test_tenant_is_sent_and_isolates(http: httpx.Client, receiver: Receiver) -> None:
    mine, other = path(), path()
    h = {"NGSILD-Tenant": "fleet"}
    r = http.post(
        f"{BASE}/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Vehicle"}],
            "notification": {"endpoint": {"uri": receiver.url + mine}},
        },
        headers=h,
    )
    assert r.status_code == 201
    subscribe(http, receiver, other, entities=[{"type": "Vehicle", "idPattern": "fleet-only"}])
    eid = f"urn:ngsi-ld:Vehicle:fleet-only-{uuid.uuid4().hex[:6]}"
    ok(http.post(f"{BASE}/entities", json=vehicle(eid, 1), headers=h))
    assert receiver.wait_for(mine, 1)[0].headers["NGSILD-Tenant"] == "fleet"
    assert receiver.quiet(other) == []


def test_delivery_state_and_failures_are_recorded(http: httpx.Client, receiver: Receiver) -> None:
    good, bad = path(), "/fail" + path()
    good_id = subscribe(http, receiver, good)
    bad_id = subscribe(http, receiver, bad)
    ok(http.post(f"{BASE}/entities", json=vehicle(uid("Vehicle"), 1)))
    receiver.wait_for(good, 1)
    receiver.wait_for(bad, 2)  # two attempts (AGORA_NOTIFY_ATTEMPTS=2), both answered 500

    def state(sub_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while True:
            note: dict[str, Any] = http.get(f"{BASE}/subscriptions/{sub_id}").json()["notification"]
            if "status" in note or time.monotonic() > deadline:
                return note
            time.sleep(0.05)

    ok_state, failed = state(good_id), state(bad_id)
    assert ok_state["status"] == "ok" and ok_state["timesSent"] == 1 and "lastSuccess" in ok_state
    assert "timesFailed" not in ok_state and ok_state["lastNotification"] == ok_state["lastSuccess"]
    assert failed["status"] == "failed" and failed["timesSent"] == 1 and failed["timesFailed"] == 1
    assert "lastFailure" in failed and "lastSuccess" not in failed
    # The same notification was retried: same id both times.
    attempts = receiver.at(bad)
    assert attempts[0].body["id"] == attempts[1].body["id"]


def test_paused_and_expired_subscriptions_are_silent(http: httpx.Client, receiver: Receiver) -> None:
    paused, resumed, expiring = path(), path(), path()
    soon = datetime.now(UTC) + timedelta(seconds=1)
    expiring_id = subscribe(http, receiver, expiring, expiresAt=soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    paused_id = subscribe(http, receiver, paused, isActive=False)
    eid = uid("Vehicle")
    ok(http.post(f"{BASE}/entities", json=vehicle(eid, 1)))
    assert receiver.quiet(paused) == []
    ok(
        http.patch(
            f"{BASE}/subscriptions/{paused_id}",
            json={"isActive": True, "notification": {"endpoint": {"uri": receiver.url + resumed}}},
        )
    )
    ok(http.patch(f"{BASE}/entities/{eid}/attrs", json={"speed": {"type": "Property", "value": 2}}))
    assert data(receiver.wait_for(resumed, 1))[0]["speed"]["value"] == 2
    assert receiver.at(paused) == []
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    assert http.get(f"{BASE}/subscriptions/{expiring_id}").json()["status"] == "expired"
    ok(http.post(f"{BASE}/entities", json=vehicle(uid("Vehicle"), 3)))
    assert 3 not in [d["speed"]["value"] for d in data(receiver.quiet(expiring))]  # nothing after expiry


def test_throttling_drops_notifications_within_the_period(http: httpx.Client, receiver: Receiver) -> None:
    throttled = path()
    subscribe(http, receiver, throttled, throttling=30)
    for _ in range(5):
        ok(http.post(f"{BASE}/entities", json=vehicle(uid("Vehicle"), 1)))
    receiver.wait_for(throttled, 1)
    assert len(receiver.quiet(throttled)) == 1


def test_a_hanging_endpoint_does_not_delay_others(http: httpx.Client, receiver: Receiver) -> None:
    hanging, healthy = "/hang" + path(), path()
    # The hanging endpoint waits 5 s per attempt; the healthy one must not wait for it.
    subscribe(http, receiver, hanging, notification={"endpoint": {"timeout": 5000}})
    subscribe(http, receiver, healthy)
    started = time.monotonic()
    for i in range(20):
        ok(http.post(f"{BASE}/entities", json=vehicle(uid("Vehicle"), i)))
    got = receiver.wait_for(healthy, 20, timeout=4)
    assert got[-1].at - started < 3.0
    assert [d["speed"]["value"] for d in data(got)] == list(range(20))  # in the order of the writes


def test_order_per_entity_is_preserved(http: httpx.Client, receiver: Receiver) -> None:
    ordered = path()
    subscribe(http, receiver, ordered, watchedAttributes=["speed"])
    eid = uid("Vehicle")
    ok(http.post(f"{BASE}/entities", json=vehicle(eid, 0)))
    for i in range(1, 30):
        ok(http.patch(f"{BASE}/entities/{eid}/attrs", json={"speed": {"type": "Property", "value": i}}))
    got = receiver.wait_for(ordered, 30)
    assert [d["speed"]["value"] for d in data(got)] == list(range(30))


# -- crash in the middle of a burst -------------------------------------------------------------------------------
def _burst(url: str, count: int, acknowledged: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=5) as client:
        for i in range(count):
            eid = f"urn:ngsi-ld:Vehicle:burst-{i}"
            try:
                r = client.post(f"{BASE}/entities", json=vehicle(eid, i))
            except httpx.TransportError:
                return
            if r.status_code == 201:
                acknowledged.append(eid)


def test_sigkill_mid_burst_loses_no_notification(tmp_path: Path, receiver: Receiver) -> None:
    store = f"sqlite:///{tmp_path / 'agora.db'}"
    target = path()
    # A slow endpoint keeps notifications in flight when the broker dies.
    env = {**FAST, "AGORA_NOTIFY_CONCURRENCY": "4"}
    first = start_broker(store, tmp_path, extra_env=env)
    try:
        with httpx.Client(base_url=first.url, timeout=5) as client:
            subscribe(client, receiver, target)
        acknowledged: list[str] = []
        _burst(first.url, 300, acknowledged)
        first.kill()  # right after the last acknowledged write
    finally:
        first.stop()
    before_restart = {d["id"] for d in data(receiver.at(target))}
    assert len(acknowledged) == 300

    with running_broker(store, tmp_path, extra_env=env):
        got = _wait_until(lambda: {d["id"] for d in data(receiver.at(target))} >= set(acknowledged), 20)
    assert got, f"missing after restart: {len(set(acknowledged) - {d['id'] for d in data(receiver.at(target))})}"
    received = receiver.at(target)
    ids_per_entity: dict[str, set[str]] = {}
    for n in received:
        for d in n.body["data"]:
            ids_per_entity.setdefault(d["id"], set()).add(n.body["id"])
    # Duplicates are allowed (at least once), but a redelivery carries the id of the first delivery.
    assert all(len(ids) == 1 for ids in ids_per_entity.values())
    print(f"before restart {len(before_restart)}, received {len(received)} for {len(acknowledged)} writes")


def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_show_changes_carries_previous_values(http: httpx.Client, receiver: Receiver) -> None:
    """notification.showChanges (clause 5.2.14): the previous value, object or languageMap beside the new one;
    none in the notification of a creation, and the old value of a deleted attribute."""
    where, concise = path(), path()
    triggers = ["entityCreated", "attributeUpdated", "attributeDeleted"]
    subscribe(http, receiver, where, notificationTrigger=triggers, notification={"showChanges": True})
    subscribe(http, receiver, concise, notification={"showChanges": True, "format": "concise"})
    eid = uid("Vehicle")
    owner = {"type": "Relationship", "object": "urn:ngsi-ld:Person:a"}
    name = {"type": "LanguageProperty", "languageMap": {"en": "bus"}}
    ok(http.post(f"{BASE}/entities", json=vehicle(eid, 10, owner=owner, name=name)))
    ok(
        http.patch(
            f"{BASE}/entities/{eid}/attrs",
            json={
                "speed": {"type": "Property", "value": 20},
                "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:b"},
                "name": {"type": "LanguageProperty", "languageMap": {"en": "coach"}},
            },
        )
    )
    ok(http.delete(f"{BASE}/entities/{eid}/attrs/owner"))
    created, updated, deleted = (n.body["data"][0] for n in receiver.wait_for(where, 3))
    assert "previousValue" not in created["speed"]
    assert updated["speed"]["value"] == 20 and updated["speed"]["previousValue"] == 10
    assert updated["owner"]["previousObject"] == "urn:ngsi-ld:Person:a"
    assert updated["name"]["previousLanguageMap"] == {"en": "bus"}
    # Clause 5.8.6: with showChanges the deleted Relationship stays a Relationship whose object is the Null.
    assert deleted["owner"]["type"] == "Relationship" and deleted["owner"]["object"] == "urn:ngsi-ld:null"
    assert deleted["owner"]["previousObject"] == "urn:ngsi-ld:Person:b"
    assert "previousValue" not in deleted["speed"]  # unchanged by that write
    concise_update = receiver.wait_for(concise, 2)[1].body["data"][0]
    assert concise_update["speed"] == {"value": 20, "previousValue": 10}


def test_periodic_notifications(http: httpx.Client, receiver: Receiver) -> None:
    """timeInterval (clause 5.2.12): every period one notification with every selected entity, changes or not;
    a paused subscription sends none; changes themselves notify nothing."""
    where = path()
    kind = "Tram" + uuid.uuid4().hex[:6]
    ids = [uid(kind), uid(kind)]
    for n, eid in enumerate(ids):
        ok(http.post(f"{BASE}/entities", json={"id": eid, "type": kind, "speed": {"type": "Property", "value": n}}))
    body = {
        "type": "Subscription",
        "entities": [{"type": kind}],
        "timeInterval": 1,
        "notification": {"format": "keyValues", "endpoint": {"uri": receiver.url + where}},
    }
    r = http.post(f"{BASE}/subscriptions", json=body)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    ok(http.patch(f"{BASE}/entities/{ids[0]}/attrs", json={"speed": {"type": "Property", "value": 9}}))
    got = receiver.wait_for(where, 2, timeout=6)
    assert all("triggerReason" not in n.body for n in got)
    assert sorted(d["id"] for d in got[0].body["data"]) == sorted(ids)
    assert got[1].at - got[0].at >= 0.8  # one period apart, not one per change
    assert {d["id"]: d["speed"] for d in got[-1].body["data"]}[ids[0]] == 9
    assert http.get(location).json()["notification"]["timesSent"] >= 2
    ok(http.patch(location, json={"isActive": False}))
    time.sleep(0.5)  # a notification already on its way may still land
    settled = len(receiver.at(where))
    time.sleep(1.6)
    assert len(receiver.at(where)) == settled


def test_geojson_notifications(http: httpx.Client, receiver: Receiver) -> None:
    """An endpoint accepting application/geo+json gets the data as a FeatureCollection (clause 6.3.15)."""
    where = path()
    subscribe(http, receiver, where, notification={"endpoint": {"accept": "application/geo+json"}})
    eid = uid("Vehicle")
    where_it_is = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.85, 45.75]}}
    ok(http.post(f"{BASE}/entities", json=vehicle(eid, 12, location=where_it_is)))
    note = receiver.wait_for(where, 1)[0]
    assert note.headers["Content-Type"] == "application/geo+json"
    collection = note.body["data"]
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    assert feature["id"] == eid and feature["type"] == "Feature"
    assert feature["geometry"] == {"type": "Point", "coordinates": [4.85, 45.75]}
    assert feature["properties"]["speed"]["value"] == 12
    assert "@context" in note.body


def test_changes_made_while_paused_are_never_notified(http: httpx.Client, receiver: Receiver) -> None:
    """Even when the subscription is resumed before the notifier read the change (clause 5.2.12 isActive)."""
    where = path()
    sub_id = subscribe(http, receiver, where)
    location = f"{BASE}/subscriptions/{sub_id}"
    ok(http.patch(location, json={"isActive": False}))
    paused_write = uid("Vehicle")
    ok(http.post(f"{BASE}/entities", json=vehicle(paused_write, 1)))
    ok(http.patch(location, json={"isActive": True}))
    after_resume = uid("Vehicle")
    ok(http.post(f"{BASE}/entities", json=vehicle(after_resume, 2)))
    got = receiver.wait_for(where, 1)
    assert [d["id"] for d in data(receiver.quiet(where))] == [after_resume]
    assert got[0].body["data"][0]["id"] == after_resume
    shown = http.get(location).json()
    assert not any(key.startswith("agora:") for key in shown)


def test_join_brings_linked_entities_into_notifications(http: httpx.Client, receiver: Receiver) -> None:
    """notification.join (clause 4.5.23): inline puts the linked entity inside the Relationship, flat adds it to
    data after the notified entity."""
    inline, flat = path(), path()
    kind = "Bus" + uuid.uuid4().hex[:6]
    for where, join in ((inline, "inline"), (flat, "flat")):
        body = {
            "type": "Subscription",
            "entities": [{"type": kind}],
            "notification": {
                "format": "keyValues",
                "join": join,
                "joinLevel": 1,
                "endpoint": {"uri": receiver.url + where},
            },
        }
        assert http.post(f"{BASE}/subscriptions", json=body).status_code == 201
    driver = uid("Person")
    ok(
        http.post(
            f"{BASE}/entities", json={"id": driver, "type": "Person", "name": {"type": "Property", "value": "Ana"}}
        )
    )
    bus = uid(kind)
    ok(
        http.post(
            f"{BASE}/entities", json={"id": bus, "type": kind, "driver": {"type": "Relationship", "object": driver}}
        )
    )
    (inline_note,) = receiver.wait_for(inline, 1)
    assert inline_note.body["data"][0]["driver"] == {"id": driver, "type": "Person", "name": "Ana"}
    (flat_note,) = receiver.wait_for(flat, 1)
    assert [d["id"] for d in flat_note.body["data"]] == [bus, driver]


def test_context_array_is_hosted_as_implicitly_created(http: httpx.Client, receiver: Receiver) -> None:
    """Clause 5.13.1: a subscription written with an @context array, notified as application/json, gets that array
    hosted as an ImplicitlyCreated @context, named by the Link header of its notifications and served by the
    broker; the same array again is the same entry; a single URL or jsonldContext makes none."""
    where, again = path(), path()
    kind = "Coach" + uuid.uuid4().hex[:6]
    context = [{kind: f"https://example.org/{kind}"}, CORE]
    body = {
        "type": "Subscription",
        "entities": [{"type": kind}],
        "notification": {"endpoint": {"uri": receiver.url + where}},
        "@context": context,
    }
    before = set(http.get(f"{BASE}/jsonldContexts", params={"kind": "ImplicitlyCreated"}).json())
    for target in (where, again):
        body["notification"] = {"endpoint": {"uri": receiver.url + target}}
        r = http.post(f"{BASE}/subscriptions", json=body, headers={"Content-Type": LD})
        assert r.status_code == 201, r.text
    made = set(http.get(f"{BASE}/jsonldContexts", params={"kind": "ImplicitlyCreated"}).json()) - before
    assert len(made) == 1, made
    url = made.pop()
    served = http.get(url)
    assert served.status_code == 200 and served.headers["content-type"].startswith(LD)
    assert served.json() == {"@context": context}
    details = http.get(url, params={"details": "true"}).json()
    assert details["kind"] == "ImplicitlyCreated" and details["URL"] == url
    ok(http.post(f"{BASE}/entities", json={"id": uid(kind), "type": f"https://example.org/{kind}"}))
    note = receiver.wait_for(where, 1)[0]
    assert note.headers["Content-Type"] == "application/json"
    assert note.headers["Link"].startswith(f"<{url}>;") and note.body["data"][0]["type"] == kind
    retrieved = http.get(str(r.headers["location"])).json()
    assert not any(k.startswith("agora:") for k in retrieved)  # the link is internal, never shown
    for single in ({**body, "@context": CORE}, {**body, "jsonldContext": CORE}):
        r = http.post(f"{BASE}/subscriptions", json=single, headers={"Content-Type": LD})
        assert r.status_code == 201, r.text
    after = set(http.get(f"{BASE}/jsonldContexts", params={"kind": "ImplicitlyCreated"}).json()) - before
    assert after == {url}
