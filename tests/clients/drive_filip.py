"""Drives FiLiP (the FIWARE Library for Python, `filip` on PyPI) against a broker, unchanged, through its NGSI-LD
client `filip.clients.ngsi_ld.cb.ContextBrokerLDClient` and its clean-up helper `clear_context_broker_ld`.

Runs in the client's own virtual environment (.venv-clients/filip, see the Makefile), not Agora's: it imports
nothing from Agora or its tests. Usage: `python drive_filip.py BROKER_URL RECEIVER_URL OUT MQTT_URL`; writes one JSON
document to OUT, {"steps": [{"name", "ok", "value" | "error"}]}, which tests/clients/test_filip.py reads step by
step. A failed step is recorded with the request the library sent and the broker's answer, and the drive goes on."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import requests
from filip.clients.ngsi_ld.cb import ContextBrokerLDClient
from filip.models.base import FiwareLDHeader
from filip.models.ngsi_ld.context import ActionTypeLD, ContextLDEntity, ContextLDEntityKeyValues, ContextProperty
from filip.models.ngsi_ld.subscriptions import Endpoint, EntityInfo, KeyValuePair, NotificationParams, SubscriptionLD
from filip.utils.cleanup import clear_context_broker_ld

TENANT = "filip"
ROOM = "urn:ngsi-ld:Room:filip:1"
BUILDING = "urn:ngsi-ld:Building:filip:1"
SUBSCRIPTION = "urn:ngsi-ld:Subscription:filip:rooms"
MQTT_SUBSCRIPTION = "urn:ngsi-ld:Subscription:filip:mqtt"
MQTT_TOPIC = "filip/rooms"
SENSOR = "urn:ngsi-ld:Sensor:filip:1"
DEVICE = "urn:ngsi-ld:Device:filip:1"
SENSOR_CONTEXT = {"Sensor": "https://example.org/filip/Sensor", "reading": "https://example.org/filip/reading"}
steps: list[dict[str, Any]] = []


def step(name: str, action: Callable[[], Any]) -> Any:
    """Run one step of the drive and record its outcome; None when it failed."""
    try:
        value = action()
    except requests.HTTPError as err:
        steps.append({"name": name, "ok": False, "error": http_error(err)})
        return None
    except Exception as err:  # the library's own exceptions (RuntimeError, pydantic's ValidationError...)
        steps.append({"name": name, "ok": False, "error": {"exception": type(err).__name__, "message": str(err)}})
        return None
    steps.append({"name": name, "ok": True, "value": value})
    return value


def http_error(err: requests.HTTPError) -> dict[str, Any]:
    response, request = err.response, err.request
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"method": request.method, "url": request.url, "status": response.status_code, "body": body}


def dump(entity: ContextLDEntity) -> dict[str, Any]:
    return json.loads(entity.model_dump_json(exclude_none=True, by_alias=True))


def room(entity_id: str, temperature: float) -> ContextLDEntity:
    return ContextLDEntity(
        id=entity_id,
        type="Room",
        temperature={"type": "Property", "value": temperature, "unitCode": "CEL"},
        isIn={"type": "Relationship", "object": BUILDING},
        location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [13.35, 52.51]}},
    )


def subscription(receiver_url: str) -> SubscriptionLD:
    return SubscriptionLD(
        id=SUBSCRIPTION,
        description="rooms that change temperature",
        entities=[EntityInfo(type="Room")],
        watchedAttributes=["temperature"],
        q="temperature>30",
        notification=NotificationParams(
            attributes=["temperature"],
            endpoint=Endpoint(uri=f"{receiver_url}/filip", accept="application/json"),
        ),
    )


def wait_for_notification(client: ContextBrokerLDClient) -> dict[str, Any]:
    """The subscription's notification status once the broker says a notification was sent (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        notification = client.get_subscription(SUBSCRIPTION).notification
        if notification.timesSent or time.monotonic() > deadline:
            return json.loads(notification.model_dump_json(exclude_none=True))
        time.sleep(0.1)


def mqtt_notification(client: ContextBrokerLDClient, mqtt_url: str) -> dict[str, Any]:
    """Subscribe with an mqtt:// endpoint (MQTT 3.1.1, as notifierInfo says), listen on its topic with paho-mqtt (a
    FiLiP dependency), make a change, and answer the notification the MQTT broker passed on (10 s at most)."""
    where = urlsplit(mqtt_url)
    received: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, message: received.put(message.payload)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.connect(where.hostname or "127.0.0.1", where.port or 1883)
    listener.loop_start()
    try:
        listener.subscribe(MQTT_TOPIC)
        if not subscribed.wait(10):
            raise RuntimeError("the MQTT broker did not acknowledge the subscription")
        via_mqtt = SubscriptionLD(
            id=MQTT_SUBSCRIPTION,
            entities=[EntityInfo(type="Room")],
            watchedAttributes=["temperature"],
            notification=NotificationParams(
                attributes=["temperature"],
                endpoint=Endpoint(
                    uri=f"{mqtt_url}/{MQTT_TOPIC}",
                    accept="application/json",
                    notifierInfo=[KeyValuePair(key="MQTT-Version", value="mqtt3.1.1")],
                ),
            ),
        )
        client.post_subscription(via_mqtt)
        # 29 does not meet the q of the HTTP subscription (temperature>30): only this one notifies
        client.update_entity_attribute(ROOM, ContextProperty(value=29.0), attr_name="temperature")
        payload = json.loads(received.get(timeout=10))
        client.delete_subscription(MQTT_SUBSCRIPTION)
        return payload
    finally:
        listener.loop_stop()
        listener.disconnect()


def drive(broker_url: str, receiver_url: str, mqtt_url: str) -> None:
    header = FiwareLDHeader(ngsild_tenant=TENANT)
    # create_tenant=True (the default) creates the tenant by creating and deleting a TemporaryTenant entity
    client = step("tenant", lambda: ContextBrokerLDClient(url=broker_url, fiware_header=header) and True)
    client = ContextBrokerLDClient(url=broker_url, fiware_header=header, create_tenant=False)
    step("clear an empty tenant", lambda: clear_context_broker_ld(cb_ld_client=client))

    # create and retrieve
    step("post entity", lambda: client.post_entity(room(ROOM, 21.5)))
    step("post entity again: 409 AlreadyExists then append", lambda: client.post_entity(room(ROOM, 22.0), append=True))
    step("get entity", lambda: dump(client.get_entity(ROOM)))
    step("get entity keyValues", lambda: client.get_entity(ROOM, options="keyValues").model_dump(by_alias=True))
    step("get entity attrs", lambda: dump(client.get_entity(ROOM, attrs=["temperature"])))
    step("get entity sysAttrs", lambda: dump(client.get_entity(ROOM, options="sysAttrs")))
    step("get absent entity", lambda: dump(client.get_entity("urn:ngsi-ld:Room:filip:absent")))
    step("relationship to an absent entity", lambda: client.validate_relationship(room(ROOM, 0).isIn))
    step("post building", lambda: client.post_entity(ContextLDEntity(id=BUILDING, type="Building")))
    step("relationship to an existing entity", lambda: client.validate_relationship(room(ROOM, 0).isIn))

    # an entity with its own @context goes as application/ld+json without a Link; a keyValues entity is expanded
    sensor = ContextLDEntity(
        **{"id": SENSOR, "type": "Sensor", "@context": SENSOR_CONTEXT, "reading": {"type": "Property", "value": 7}}
    )
    step("post entity with @context", lambda: client.post_entity(sensor))
    step("get it with the core @context", lambda: dump(client.get_entity(SENSOR)))
    step("get it by type", lambda: dump(client.get_entity(SENSOR, entity_type="https://example.org/filip/Sensor")))
    step(
        "batch upsert with @context",
        lambda: client.entity_batch_operation(
            entities=[
                ContextLDEntity(
                    **{
                        "id": SENSOR,
                        "type": "Sensor",
                        "@context": SENSOR_CONTEXT,
                        "reading": {"type": "Property", "value": 8},
                    }
                )
            ],
            action_type=ActionTypeLD.UPSERT,
        ),
    )
    step("reading after batch upsert", lambda: dump(client.get_entity(SENSOR))["https://example.org/filip/reading"])
    step(
        "delete entity by id and type",
        lambda: client.delete_entity_by_id(SENSOR, entity_type="https://example.org/filip/Sensor"),
    )
    step(
        "post keyValues entity",
        lambda: client.post_entity(ContextLDEntityKeyValues(id=DEVICE, type="Device", battery=0.9)),
    )
    step("get keyValues entity", lambda: dump(client.get_entity(DEVICE, entity_type="Device")))
    step("delete keyValues entity", lambda: client.delete_entity_by_id(DEVICE, entity_type="Device"))

    # query
    rooms = [room(f"urn:ngsi-ld:Room:filip:b{i}", 10.0 + 10 * i) for i in range(3)]
    step("batch create", lambda: client.entity_batch_operation(entities=rooms, action_type=ActionTypeLD.CREATE))
    step(
        "batch create of existing entities only",
        lambda: client.entity_batch_operation(entities=rooms, action_type=ActionTypeLD.CREATE),
    )

    def ids(**query: Any) -> list[str]:
        return sorted(e.id for e in client.get_entity_list(**query))

    step("list all", lambda: ids())
    step("list by type", lambda: ids(entity_type="Room"))
    step("list by id", lambda: ids(entity_id=ROOM))
    step("list by idPattern and type", lambda: ids(id_pattern="urn:ngsi-ld:Room:filip:b.*", entity_type="Room"))
    step("list with q", lambda: ids(entity_type="Room", q="temperature>=20"))
    step("list with attrs", lambda: [dump(e) for e in client.get_entity_list(entity_type="Room", attrs=["isIn"])])
    step(
        "list near",
        lambda: ids(entity_type="Room", georel="near;maxDistance==1000", geometry="Point", coordinates="[13.35,52.51]"),
    )
    step(
        "list keyValues",
        lambda: [e.model_dump(by_alias=True) for e in client.get_entity_list(entity_id=ROOM, options="keyValues")],
    )
    step("list with limit", lambda: len(client.get_entity_list(entity_type="Room", limit=2)))
    paging = ContextBrokerLDClient(url=broker_url, fiware_header=header, create_tenant=False, pagination_limit=2)
    step("list in pages of 2", lambda: sorted(e.id for e in paging.get_entity_list(entity_type="Room")))

    # update
    step(
        "update attribute",
        lambda: client.update_entity_attribute(ROOM, ContextProperty(value=25.0), attr_name="temperature"),
    )
    step(
        "append attributes",
        lambda: client.append_entity_attributes(
            ContextLDEntity(id=ROOM, type="Room", humidity={"type": "Property", "value": 40})
        ),
    )
    step(
        "append noOverwrite",
        lambda: client.append_entity_attributes(
            ContextLDEntity(id=ROOM, type="Room", humidity={"type": "Property", "value": 99}), options="noOverwrite"
        ),
    )
    step(
        "replace existing attributes",
        lambda: client.replace_existing_attributes_of_entity(
            ContextLDEntity(id=ROOM, type="Room", humidity={"type": "Property", "value": 45})
        ),
    )
    step("entity after updates", lambda: dump(client.get_entity(ROOM)))
    step("delete attribute", lambda: client.delete_attribute(ROOM, "humidity"))
    step("entity after delete attribute", lambda: sorted(dump(client.get_entity(ROOM))))

    # batch
    warmer = [room(r.id, r.temperature.value + 1) for r in rooms]
    step("batch upsert", lambda: client.entity_batch_operation(entities=warmer, action_type=ActionTypeLD.UPSERT))
    step(
        "batch update",
        lambda: client.entity_batch_operation(
            entities=[ContextLDEntity(id=r.id, type="Room", humidity={"type": "Property", "value": 50}) for r in rooms],
            action_type=ActionTypeLD.UPDATE,
        ),
    )
    step("override entities", lambda: client.override_entities([room(rooms[0].id, 5.0)]))
    step("entities after batch", lambda: [dump(client.get_entity(r.id)) for r in rooms])
    step("batch delete", lambda: client.entity_batch_operation(entities=rooms[:1], action_type=ActionTypeLD.DELETE))
    step("list after batch delete", lambda: ids(entity_type="Room"))

    # subscriptions
    sub = subscription(receiver_url)
    step("post subscription", lambda: client.post_subscription(sub))
    step("post the same subscription again", lambda: client.post_subscription(subscription(receiver_url)))
    step("subscription list", lambda: [s.id for s in client.get_subscription_list()])
    step(
        "get subscription", lambda: json.loads(client.get_subscription(SUBSCRIPTION).model_dump_json(exclude_none=True))
    )
    sub.description = "rooms above 30 degrees"
    step("update subscription", lambda: client.update_subscription(sub))
    step("subscription after update", lambda: client.get_subscription(SUBSCRIPTION).description)
    step(
        "update that notifies",
        lambda: client.update_entity_attribute(ROOM, ContextProperty(value=31.5), attr_name="temperature"),
    )
    step("notification status", lambda: wait_for_notification(client))
    step("mqtt notification", lambda: mqtt_notification(client, mqtt_url))
    step("delete subscription", lambda: client.delete_subscription(SUBSCRIPTION))
    step("subscription list after delete", lambda: [s.id for s in client.get_subscription_list()])

    # delete and clean up
    step("delete entity", lambda: client.delete_entity_by_id(ROOM))
    step("get deleted entity", lambda: dump(client.get_entity(ROOM)))
    step("post subscription to clear", lambda: client.post_subscription(subscription(receiver_url)))
    step("clear context broker", lambda: clear_context_broker_ld(cb_ld_client=client))
    step("list after clear", lambda: ids())
    step("subscription list after clear", lambda: [s.id for s in client.get_subscription_list()])


if __name__ == "__main__":
    drive(sys.argv[1], sys.argv[2], sys.argv[4])
    with open(sys.argv[3], "w") as out:
        json.dump({"steps": steps}, out, default=str)
