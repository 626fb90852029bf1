"""Context source registration subscriptions end to end (clauses 5.11, 5.3.2, 5.3.3, 6.12, 6.13): a real `agora
serve` notifies a real local HTTP receiver of registration changes, with the trigger reason of each, the initial
notification, expiry, the delivery state, and SIGKILL of the broker while a notification hangs (at least once).
Records 0170-0173."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import FAST_NOTIFY
from tests.e2e.test_registrations_api import registration
from tests.support.receiver import Receiver, running_receiver
from tests.support.servers import BrokerProcess, running_broker, start_broker, store_url_for

BASE = "/ngsi-ld/v1"
FAST = FAST_NOTIFY


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as found:
        yield found


@pytest.fixture(scope="module", params=["sqlite", "redis-cluster"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp(f"csource-notify-{request.param}")
    with ExitStack() as stack:
        url = store_url_for(request.param, tmp, stack)
        yield stack.enter_context(running_broker(url, tmp, extra_env=FAST))


@pytest.fixture
def http(broker: BrokerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broker.url + BASE, timeout=10) as client:
        yield client


def register(http: httpx.Client, body: dict[str, Any]) -> str:
    response = http.post("/csourceRegistrations", json=body)
    assert response.status_code == 201, response.text
    return str(body["id"])


def subscribe(http: httpx.Client, uri: str, **members: Any) -> str:
    body = {"id": f"urn:ngsi-ld:Subscription:{uuid.uuid4().hex}", "type": "Subscription", **members}
    body.setdefault("notification", {"endpoint": {"uri": uri}})
    response = http.post("/csourceSubscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(body["id"])


def reasons(receiver: Receiver, path: str, count: int) -> list[tuple[str, list[str]]]:
    found = receiver.wait_for_bodies(path, count, timeout=15)
    assert len(found) >= count, found
    return [(b["triggerReason"], [r["id"] for r in b["data"]]) for b in found]


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_registration_changes_notify_with_their_trigger_reason(http: httpx.Client, receiver: Receiver) -> None:
    kind, other = f"Vehicle{uuid.uuid4().hex[:6]}", f"Bus{uuid.uuid4().hex[:6]}"
    before = register(http, registration(kind))
    path = f"/cs/{uuid.uuid4().hex}"
    sub_id = subscribe(http, receiver.url + path, entities=[{"type": kind}])
    assert reasons(receiver, path, 1) == [("newlyMatching", [before])]  # the initial notification
    first = receiver.bodies(path)[0]
    assert first["type"] == "CsourceNotification" and first["subscriptionId"] == sub_id
    assert first["data"][0]["information"] == [{"entities": [{"type": kind}], "propertyNames": ["speed"]}]

    created = register(http, registration(kind))
    unrelated = register(http, registration(other))
    assert http.patch(f"/csourceRegistrations/{created}", json={"description": "moved"}).status_code == 204
    info = [{"entities": [{"type": other}]}]
    assert http.patch(f"/csourceRegistrations/{created}", json={"information": info}).status_code == 204
    info = [{"entities": [{"type": kind}]}]
    assert http.patch(f"/csourceRegistrations/{unrelated}", json={"information": info}).status_code == 204
    assert http.delete(f"/csourceRegistrations/{unrelated}").status_code == 204
    assert reasons(receiver, path, 6)[1:] == [
        ("newlyMatching", [created]),
        ("updated", [created]),
        ("noLongerMatching", [created]),
        ("newlyMatching", [unrelated]),
        ("noLongerMatching", [unrelated]),
    ]
    shown = recorded(http, sub_id, sends=6)
    assert shown["notification"]["timesSent"] == 6 and shown["notification"]["status"] == "ok"
    assert "lastSuccess" in shown["notification"] and "lastFailure" not in shown["notification"]


def test_an_update_of_the_subscription_notifies_every_matching_registration(
    http: httpx.Client, receiver: Receiver
) -> None:
    kind = f"Sensor{uuid.uuid4().hex[:6]}"
    path = f"/cs/{uuid.uuid4().hex}"
    sub_id = subscribe(http, receiver.url + path, entities=[{"type": "Nothing"}])
    regs = sorted(register(http, registration(kind)) for _ in range(2))
    time.sleep(0.5)
    assert receiver.bodies(path) == []  # nothing matched, nothing was told
    assert http.patch(f"/csourceSubscriptions/{sub_id}", json={"entities": [{"type": kind}]}).status_code == 204
    assert reasons(receiver, path, 1) == [("newlyMatching", regs)]


def test_an_expired_registration_no_longer_matches(http: httpx.Client, receiver: Receiver) -> None:
    kind = f"Meter{uuid.uuid4().hex[:6]}"
    path = f"/cs/{uuid.uuid4().hex}"
    subscribe(http, receiver.url + path, entities=[{"type": kind}])
    reg_id = register(http, registration(kind, expiresAt=later(1.5)))
    assert reasons(receiver, path, 2) == [("newlyMatching", [reg_id]), ("noLongerMatching", [reg_id])]
    assert http.get(f"/csourceRegistrations/{reg_id}").status_code == 404


def test_notifications_stay_in_their_tenant(http: httpx.Client, receiver: Receiver) -> None:
    kind, tenant = f"Grid{uuid.uuid4().hex[:6]}", f"energy{uuid.uuid4().hex[:6]}"
    path = f"/cs/{uuid.uuid4().hex}"
    body = {
        "type": "Subscription",
        "entities": [{"type": kind}],
        "notification": {"endpoint": {"uri": receiver.url + path}},
    }
    headers = {"NGSILD-Tenant": tenant}
    assert http.post("/csourceSubscriptions", json=body, headers=headers).status_code == 201
    elsewhere = register(http, registration(kind))  # the default tenant
    response = http.post("/csourceRegistrations", json=(mine := registration(kind)), headers=headers)
    assert response.status_code == 201, response.text
    assert reasons(receiver, path, 1) == [("newlyMatching", [mine["id"]])]
    assert receiver.bodies(path)[0]["data"][0]["id"] != elsewhere
    assert http.get("/csourceSubscriptions", headers=headers).json()[0]["entities"] == [{"type": kind}]
    assert all(s["entities"] != [{"type": kind}] for s in http.get("/csourceSubscriptions").json())


def test_a_periodic_subscription_lists_every_matching_registration_each_period(
    http: httpx.Client, receiver: Receiver
) -> None:
    kind = f"Stop{uuid.uuid4().hex[:6]}"
    first = register(http, registration(kind))
    path = f"/cs/{uuid.uuid4().hex}"
    subscribe(http, receiver.url + path, entities=[{"type": kind}], timeInterval=1)
    assert reasons(receiver, path, 1) == [("newlyMatching", [first])]
    second = register(http, registration(kind))
    found = reasons(receiver, path, 3)
    assert found[-1] == ("newlyMatching", sorted([first, second]))  # the period's listing, not the change alone
    assert all(ids in ([first], sorted([first, second])) for _, ids in found)


def test_sigkill_while_a_notification_hangs_sends_it_after_the_restart(tmp_path: Path) -> None:
    """The notification was in flight (the receiver holds the POST) when the broker was killed: the restarted
    broker sends it again, with the same notification id."""
    store = f"sqlite:///{tmp_path / 'agora.db'}"
    kind = f"Pump{uuid.uuid4().hex[:6]}"
    path = f"/cs/{uuid.uuid4().hex}"
    with running_receiver() as receiver:
        broker = start_broker(store, tmp_path, extra_env={**FAST, "AGORA_NOTIFY_TIMEOUT": "20"})
        try:
            with httpx.Client(base_url=broker.url + BASE, timeout=10) as http:
                subscribe(http, receiver.url + path, entities=[{"type": kind}])
                time.sleep(0.5)  # the initial notification is owed nothing: no registration matches yet
                receiver.hold.set()
                reg_id = register(http, registration(kind))
                held = receiver.wait_for_bodies(path, 1, timeout=10)
                assert [b["data"][0]["id"] for b in held] == [reg_id]
            broker.kill()
        finally:
            broker.stop()
        receiver.hold.clear()
        with running_broker(store, tmp_path, extra_env=FAST):
            again = receiver.wait_for_bodies(path, 2, timeout=15)
        assert [b["id"] for b in again] == [held[0]["id"]] * 2
        assert again[1]["triggerReason"] == "newlyMatching" and again[1]["data"][0]["id"] == reg_id


def test_two_brokers_on_one_redis_notify_once(tmp_path: Path) -> None:
    """Only the process that leads "csource" notifies: a registration written through either broker is told once."""
    kind = f"Tram{uuid.uuid4().hex[:6]}"
    path = f"/cs/{uuid.uuid4().hex}"
    with ExitStack() as stack:
        url = store_url_for("redis", tmp_path, stack)
        first = stack.enter_context(running_broker(url, tmp_path, extra_env=FAST))
        second = stack.enter_context(running_broker(url, tmp_path, extra_env=FAST))
        receiver = stack.enter_context(running_receiver())
        a = stack.enter_context(httpx.Client(base_url=first.url + BASE, timeout=10))
        b = stack.enter_context(httpx.Client(base_url=second.url + BASE, timeout=10))
        before = register(b, registration(kind))
        subscribe(a, receiver.url + path, entities=[{"type": kind}])
        assert reasons(receiver, path, 1) == [("newlyMatching", [before])]  # the initial notification is settled
        regs = [register(a, registration(kind)), register(b, registration(kind))]
        found = reasons(receiver, path, 3)
        time.sleep(1.0)  # time for a duplicate to arrive, if a second process notified too
        assert sorted(ids[0] for _, ids in found[1:]) == sorted(regs)
        assert len(receiver.bodies(path)) == 3


def recorded(http: httpx.Client, sub_id: str, sends: int, timeout: float = 10.0) -> dict[str, Any]:
    """The subscription once `sends` deliveries are recorded: the broker records one when the receiver's answer
    reaches it, which may be after the receiver has already shown us the request."""
    deadline = time.monotonic() + timeout
    while True:
        shown: dict[str, Any] = http.get(f"/csourceSubscriptions/{sub_id}").json()
        if shown["notification"].get("timesSent", 0) >= sends or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)
