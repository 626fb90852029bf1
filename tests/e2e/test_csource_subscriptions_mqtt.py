"""CsourceNotifications over MQTT (clauses 5.11.7 and 7): a real `agora serve` publishes to a real mosquitto the
notifications of a context source registration subscription whose endpoint is mqtt://, read by the test's own
aiomqtt subscriber."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.e2e.test_subscriptions_mqtt import FAST, listening, next_message, payload, topic
from tests.support.mosquitto import Mosquitto, running_mosquitto
from tests.support.servers import BrokerProcess, running_broker

pytestmark = pytest.mark.asyncio
BASE = "/ngsi-ld/v1"


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path_factory.mktemp("csource-mosquitto")) as server:
        yield server


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("csource-mqtt")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=FAST) as process:
        yield process


@pytest_asyncio.fixture
async def http(broker: BrokerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=broker.url + BASE, timeout=10) as client:
        yield client


async def test_registration_changes_are_published_over_mqtt(http: httpx.AsyncClient, mosquitto: Mosquitto) -> None:
    kind = f"Valve{uuid.uuid4().hex[:6]}"
    where = topic()
    async with listening(mosquitto, where) as mq:
        notifier_info = [{"key": "MQTT-Version", "value": "mqtt5.0"}, {"key": "MQTT-QoS", "value": "1"}]
        sub = {
            "type": "Subscription",
            "entities": [{"type": kind}],
            "notification": {"endpoint": {"uri": mosquitto.uri(where), "notifierInfo": notifier_info}},
        }
        response = await http.post("/csourceSubscriptions", json=sub)
        assert response.status_code == 201, response.text
        sub_id = response.headers["location"].rsplit("/", 1)[1]
        reg = {
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": kind}]}],
            "endpoint": "http://127.0.0.1:9/water-utility",
        }
        response = await http.post("/csourceRegistrations", json=reg)
        assert response.status_code == 201, response.text
        reg_id = response.headers["location"].rsplit("/", 1)[1]
        created = await next_message(mq)
        assert (await http.delete(f"/csourceRegistrations/{reg_id}")).status_code == 204
        deleted = await next_message(mq)
    assert created.topic.value == where and created.qos == 1
    first, second = payload(created), payload(deleted)
    assert first["type"] == "CsourceNotification" and first["subscriptionId"] == sub_id
    assert first["triggerReason"] == "newlyMatching" and [r["id"] for r in first["data"]] == [reg_id]
    assert second["triggerReason"] == "noLongerMatching" and [r["id"] for r in second["data"]] == [reg_id]
    shown = await outcome_after(http, sub_id, sends=2)
    assert shown["timesSent"] == 2 and shown["status"] == "ok"


async def outcome_after(http: httpx.AsyncClient, sub_id: str, sends: int, timeout: float = 10.0) -> dict[str, Any]:
    """The subscription's notification member once `sends` deliveries are recorded. The broker records a
    delivery after mosquitto's PUBACK, which may reach it after our subscriber already holds the message."""
    deadline = time.monotonic() + timeout
    while True:
        note: dict[str, Any] = (await http.get(f"/csourceSubscriptions/{sub_id}")).json()["notification"]
        if note.get("timesSent", 0) >= sends or time.monotonic() > deadline:
            return note
        await asyncio.sleep(0.05)
