"""The MQTT transport of notifications (broker.notify.mqtt): where an endpoint publishes, what the message looks like
for each MQTT version, and a failed attempt. (tests/e2e/test_subscriptions_mqtt.py publishes to a real mosquitto.)"""

from __future__ import annotations

import orjson
import pytest

from broker.core.subscriptions import Endpoint
from broker.notify.mqtt import MqttTransport, message, target
from tests.support.servers import free_port


def test_target_reads_the_uri_and_notifier_info() -> None:
    t = target(Endpoint("mqtt://127.0.0.1/fleet/vehicles"))
    assert (t.tls, t.host, t.port, t.username, t.password) == (False, "127.0.0.1", 1883, None, None)
    assert (t.topic, t.version, t.qos) == ("fleet/vehicles", "mqtt5.0", 0)
    info = (("MQTT-Version", "mqtt3.1.1"), ("MQTT-QoS", "2"))
    t = target(Endpoint("mqtts://us%40er:p%3Ass@Broker.example.org/a%20b", notifier_info=info))
    assert (t.tls, t.host, t.port, t.username, t.password) == (True, "broker.example.org", 8883, "us@er", "p:ss")
    assert (t.topic, t.version, t.qos) == ("a b", "mqtt3.1.1", 2)
    assert target(Endpoint("mqtt://h:1999/t")).port == 1999
    # Two topics on one MQTT broker share a connection; another version does not.
    assert target(Endpoint("mqtt://h/a")).connection == target(Endpoint("mqtt://h/b")).connection
    assert (
        target(Endpoint("mqtt://h/a")).connection != target(Endpoint("mqtt://h/a", notifier_info=info[:1])).connection
    )


HEADERS = {"X-Auth": "secret", "Content-Type": "application/json", "Link": "<https://c>; rel=x"}
BODY = orjson.dumps({"id": "urn:ngsi-ld:Notification:1", "type": "Notification", "data": []})


def test_mqtt5_message_is_the_body_with_metadata_as_user_properties() -> None:
    payload, properties = message("mqtt5.0", BODY, HEADERS)
    assert payload == BODY and properties is not None
    assert properties.UserProperty == list(HEADERS.items())  # type: ignore[attr-defined]
    assert properties.ContentType == "application/json"  # type: ignore[attr-defined]


def test_mqtt311_message_wraps_metadata_and_body() -> None:
    payload, properties = message("mqtt3.1.1", BODY, HEADERS)
    assert properties is None
    assert orjson.loads(payload) == {"metadata": HEADERS, "body": orjson.loads(BODY)}


@pytest.mark.asyncio
async def test_an_unreachable_mqtt_broker_fails_the_attempt_without_raising() -> None:
    transport = MqttTransport()
    endpoint = Endpoint(f"mqtt://127.0.0.1:{free_port()}/t", notifier_info=(("MQTT-QoS", "1"),))
    try:
        assert not await transport.attempt(endpoint, BODY, HEADERS, 2.0)
        assert not await transport.attempt(endpoint, BODY, HEADERS, 2.0)  # and again: nothing was kept
    finally:
        await transport.aclose()
