"""MQTT payloads in the four formats `agora ingest mqtt` reads, their mapping, and a QoS 1 publisher: shared by the
benchmark row (bench/run.py ingest_row) and the end-to-end test (tests/e2e/test_ingest_mqtt.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.live.sparkplug_b import Payload

FORMATS = ("json", "ultralight", "senml", "sparkplug")
BASE = datetime(2026, 1, 1, tzinfo=UTC)

MAPPING = """
rules:
  - match: "city/json/{device}/attrs"
    format: json
    type: IngestProbe
    id: "urn:ngsi-ld:IngestProbe:json:{device}"
    observedAt: ts
    attributes: {seq: {name: seq, datatype: integer}}
    autoProvision: false
    devices: {%(json_devices)s}
  - match: "ul/apikey/{device}/attrs"
    format: ultralight
    type: IngestProbe
    id: "urn:ngsi-ld:IngestProbe:ultralight:{device}"
    attributes: {seq: {name: seq, datatype: integer}}
  - match: "city/senml/{device}"
    format: senml
    type: IngestProbe
    id: "urn:ngsi-ld:IngestProbe:senml:{device}"
    attributes: {seq: {name: seq, datatype: integer}}
  - match: "spBv1.0/city/#"
    format: sparkplug
    type: IngestProbe
    id: "urn:ngsi-ld:IngestProbe:sparkplug:{device}"
    attributes: {seq: {name: seq, datatype: integer}}
"""


def mapping(devices: int) -> str:
    """The mapping of the four formats; the JSON devices are provisioned (the others auto-provisioned)."""
    return MAPPING % {"json_devices": ", ".join(f"d{i}: {{}}" for i in range(devices))}


def payload(number: int, devices: int) -> tuple[str, str, str, bytes]:
    """(format, entity id, topic, payload) of payload ``number``: formats in turn, a distinct seq value and
    observation time each."""
    fmt, device = FORMATS[number % 4], f"d{(number // 4) % devices}"
    moment = BASE + timedelta(milliseconds=number)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    entity_id = f"urn:ngsi-ld:IngestProbe:{fmt}:{device}"
    if fmt == "json":
        return fmt, entity_id, f"city/json/{device}/attrs", json.dumps({"seq": number, "ts": stamp}).encode()
    if fmt == "ultralight":
        return fmt, entity_id, f"ul/apikey/{device}/attrs", f"seq|{number}|TimeInstant|{stamp}".encode()
    if fmt == "senml":
        record = [{"bn": f"urn:dev:{device}:", "bt": moment.timestamp(), "n": "seq", "v": number}]
        return fmt, entity_id, f"city/senml/{device}", json.dumps(record).encode()
    millis = int(moment.timestamp() * 1000)
    message = Payload(timestamp=millis, seq=number % 256)
    message.metrics.add(name="seq", timestamp=millis, datatype=7, int_value=number)  # UInt32
    return fmt, entity_id, f"spBv1.0/city/DDATA/edge/{device}", bytes(message.SerializeToString())


def publish(port: int, count: int, devices: int, between: Callable[[int, mqtt.Client], None] | None = None
            ) -> list[int]:  # fmt: skip
    """Publish payloads 0..count-1 with QoS 1 (``between(number, client)`` after each); the numbers whose PUBACK
    came back."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"publisher-{port}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    acknowledged = []
    try:
        sent = []
        for number in range(count):
            _, _, topic, body = payload(number, devices)
            sent.append((number, client.publish(topic, body, qos=1)))
            if between is not None:
                between(number, client)
        for number, info in sent:
            info.wait_for_publish(timeout=60)
            if info.is_published():
                acknowledged.append(number)
    finally:
        client.disconnect()
        client.loop_stop()
    return acknowledged
