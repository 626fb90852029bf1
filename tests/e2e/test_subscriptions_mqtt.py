"""MQTT notifications end to end (clause 7, MQTT binding; clause 5.2.15 notifierInfo): a real broker under uvicorn
publishes to a real mosquitto, and the test reads what arrives with its own aiomqtt subscriber. Covers MQTT 5.0
(notification as payload, metadata as user properties) and 3.1.1 ({metadata, body} payload), QoS, refused
notifierInfo, the delivery state of an unreachable MQTT broker, one shared connection, and reconnection."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest
import pytest_asyncio

from tests.e2e.helpers import CORE, FAST_NOTIFY, LD, uid
from tests.support.mosquitto import Mosquitto, running_mosquitto
from tests.support.servers import BrokerProcess, free_port, running_broker

pytestmark = pytest.mark.asyncio
BASE = "/ngsi-ld/v1"
FAST = FAST_NOTIFY


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("mqtt-notify")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=FAST) as process:
        yield process


@pytest_asyncio.fixture
async def http(broker: BrokerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=broker.url, timeout=10) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------------------------------
def topic() -> str:
    return f"agora/test/{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def listening(server: Mosquitto, *topics: str) -> AsyncIterator[aiomqtt.Client]:
    """An MQTT 5 subscriber (so it sees user properties) on `topics`, at QoS 2 (the publisher's QoS then holds)."""
    async with aiomqtt.Client(server.host, server.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for name in topics:
            await client.subscribe(name, qos=2)
        yield client


async def next_message(client: aiomqtt.Client, timeout: float = 10.0) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(client.messages), timeout)


async def nothing_more(client: aiomqtt.Client, seconds: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await next_message(client, seconds)


def user_properties(msg: aiomqtt.Message) -> dict[str, str]:
    return dict(getattr(msg.properties, "UserProperty", []))


def payload(msg: aiomqtt.Message) -> dict[str, Any]:
    assert isinstance(msg.payload, bytes)
    result: dict[str, Any] = orjson.loads(msg.payload)
    return result


async def subscribe(http: httpx.AsyncClient, uri: str, *info: tuple[str, str], **endpoint: Any) -> str:
    notifier_info = [{"key": k, "value": v} for k, v in info]
    body = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": uri, **({"notifierInfo": notifier_info} if info else {}), **endpoint}},
    }
    r = await http.post(f"{BASE}/subscriptions", json=body)
    assert r.status_code == 201, r.text
    return str(r.headers["location"]).rsplit("/", 1)[1]


async def create(http: httpx.AsyncClient, eid: str, speed: float) -> None:
    r = await http.post(
        f"{BASE}/entities", json={"id": eid, "type": "Vehicle", "speed": {"type": "Property", "value": speed}}
    )
    assert r.status_code == 201, r.text


async def update(http: httpx.AsyncClient, eid: str, speed: float) -> None:
    r = await http.patch(f"{BASE}/entities/{eid}/attrs", json={"speed": {"type": "Property", "value": speed}})
    assert r.status_code == 204, r.text


# -- the tests ------------------------------------------------------------------------------------------------------
async def test_mqtt5_publishes_the_notification_with_metadata_as_user_properties(
    http: httpx.AsyncClient, mosquitto: Mosquitto
) -> None:
    where = topic()
    async with listening(mosquitto, where) as mq:
        sub_id = await subscribe(
            http,
            mosquitto.uri(where),
            ("MQTT-Version", "mqtt5.0"),
            ("MQTT-QoS", "1"),
            receiverInfo=[{"key": "X-Auth", "value": "secret"}],
        )
        eid = uid("Vehicle")
        await create(http, eid, 1)
        created = await next_message(mq)
        await update(http, eid, 2)
        updated = await next_message(mq)
    assert created.topic.value == where and created.qos == 1
    body = payload(created)
    assert body["type"] == "Notification" and body["subscriptionId"].endswith(sub_id)
    assert body["data"][0]["id"] == eid and body["data"][0]["speed"]["value"] == 1
    props = user_properties(created)
    assert props["Content-Type"] == "application/json" and props["X-Auth"] == "secret"
    assert CORE in props["Link"] and "@context" not in body
    assert getattr(created.properties, "ContentType", None) == "application/json"
    assert payload(updated)["data"][0]["speed"]["value"] == 2 and payload(updated)["id"] != body["id"]
    assert updated.qos == 1


async def test_mqtt311_publishes_metadata_and_body(http: httpx.AsyncClient, mosquitto: Mosquitto) -> None:
    where = topic()
    async with listening(mosquitto, where) as mq:
        await subscribe(http, mosquitto.uri(where), ("MQTT-Version", "mqtt3.1.1"), ("MQTT-QoS", "1"))
        eid = uid("Vehicle")
        await create(http, eid, 5)
        created = await next_message(mq)
        await update(http, eid, 6)
        updated = await next_message(mq)
    assert created.qos == 1 and user_properties(created) == {}
    message = payload(created)
    assert set(message) == {"metadata", "body"}
    assert message["metadata"]["Content-Type"] == "application/json" and CORE in message["metadata"]["Link"]
    assert message["body"]["type"] == "Notification" and message["body"]["data"][0]["speed"]["value"] == 5
    assert payload(updated)["body"]["data"][0]["speed"]["value"] == 6


async def test_defaults_are_mqtt5_qos0_and_ld_json_carries_the_context(
    http: httpx.AsyncClient, mosquitto: Mosquitto
) -> None:
    plain, as_ld = topic(), topic()
    async with listening(mosquitto, plain, as_ld) as mq:
        await subscribe(http, mosquitto.uri(plain))
        await subscribe(http, mosquitto.uri(as_ld), accept=LD)
        await create(http, uid("Vehicle"), 1)
        got = {m.topic.value: m for m in [await next_message(mq), await next_message(mq)]}
    assert got[plain].qos == 0 and user_properties(got[plain])["Content-Type"] == "application/json"
    ld = got[as_ld]
    assert user_properties(ld)["Content-Type"] == LD and "Link" not in user_properties(ld)
    assert payload(ld)["@context"] == CORE


async def test_bad_notifier_info_or_mqtt_uri_is_refused_and_creates_nothing(
    http: httpx.AsyncClient, mosquitto: Mosquitto
) -> None:
    h = {"NGSILD-Tenant": f"mqtt{uuid.uuid4().hex[:8]}"}
    good = mosquitto.uri(topic())
    cases: list[tuple[str, list[dict[str, str]]]] = [
        (good, [{"key": "MQTT-Version", "value": "mqtt4"}]),
        (good, [{"key": "MQTT-QoS", "value": "3"}]),
        (good, [{"key": "MQTT-QoS", "value": "one"}]),
        (good, [{"key": "MQTT-Retain", "value": "true"}]),
        (good, [{"key": "MQTT-QoS", "value": "1"}, {"key": "MQTT-QoS", "value": "2"}]),
        (f"mqtt://{mosquitto.host}:{mosquitto.port}", []),  # no topic
        (f"mqtt://{mosquitto.host}:{mosquitto.port}/a/#", []),  # a wildcard is no topic to publish to
        ("mqtt:///topic", []),  # no host
    ]
    for uri, info in cases:
        endpoint: dict[str, Any] = {"uri": uri, **({"notifierInfo": info} if info else {})}
        body = {"type": "Subscription", "entities": [{"type": "Vehicle"}], "notification": {"endpoint": endpoint}}
        r = await http.post(f"{BASE}/subscriptions", json=body, headers=h)
        assert r.status_code == 400, (endpoint, r.text)
        assert r.json()["type"].endswith("BadRequestData")
    assert (await http.get(f"{BASE}/subscriptions", headers=h)).json() == []


async def test_unreachable_mqtt_broker_is_recorded_as_failed(http: httpx.AsyncClient) -> None:
    sub_id = await subscribe(http, f"mqtt://127.0.0.1:{free_port()}/nobody/listens", ("MQTT-QoS", "1"))
    await create(http, uid("Vehicle"), 1)
    deadline = time.monotonic() + 10
    while True:
        note: dict[str, Any] = (await http.get(f"{BASE}/subscriptions/{sub_id}")).json()["notification"]
        if "status" in note or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert note["status"] == "failed" and note["timesFailed"] == 1 and note["timesSent"] == 1
    assert "lastFailure" in note and "lastSuccess" not in note


async def test_one_connection_is_shared_and_a_restarted_mqtt_broker_is_reconnected(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    first, second = topic(), topic()
    with running_mosquitto(tmp_path) as server:
        port = server.port
        async with listening(server, first, second) as mq:
            await subscribe(http, server.uri(first), ("MQTT-QoS", "1"))
            await subscribe(http, server.uri(second), ("MQTT-QoS", "1"))
            for speed in range(3):
                await create(http, uid("Vehicle"), speed)
            seen = [await next_message(mq) for _ in range(6)]
            await nothing_more(mq)
        assert sorted(m.topic.value for m in seen) == sorted([first, second] * 3)
        # Two subscriptions, three notifications each, on one MQTT connection of the broker's.
        assert len(set(re.findall(r"as (agora-\w+)", server.log()))) == 1, server.log()
    with running_mosquitto(tmp_path, port=port) as server:  # the same address, a new MQTT broker
        async with listening(server, first) as mq:
            eid = uid("Vehicle")
            await create(http, eid, 9)
            again = await next_message(mq)
    assert payload(again)["data"][0]["id"] == eid
