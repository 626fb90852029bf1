"""`agora ingest mqtt` end to end (issue 22, record 0380): mosquitto, a publisher sending 10,000 payloads in the
four formats (JSON, UltraLight 2.0, SenML, Sparkplug B) plus malformed ones, while the NGSI-LD broker and then the
ingester are killed with SIGKILL and started again: every payload mosquitto acknowledged ends as a temporal
instance."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.live.mapping import parse_mapping
from adapters.live.mqtt import MqttOptions, mqtt_source
from adapters.live.run import BrokerOptions, ingest
from adapters.live.sparkplug_b import Payload
from adapters.live.writer import Stats
from bench.ingest_load import FORMATS, mapping, payload, publish
from tests.e2e.helpers import history, project_link, wait_for
from tests.support.mosquitto import running_mosquitto
from tests.support.servers import BrokerProcess, free_port, start_broker

PAYLOADS = 10_000
DEVICES = 50  # per format
MALFORMED = {"json": b"{not json", "ultralight": b"seq|1|dangling", "senml": b'{"n": "seq"}',
             "sparkplug": b"\xff\xff\xff"}  # fmt: skip
ENV = {"AGORA_TEMPORAL_INSTANCE_LIMIT": "100000"}


def publish_in_order(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Each message at QoS 1 from one client, each acknowledged before the next: delivered in order."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, body in messages:
        client.publish(topic, body, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def _malformed(number: int, client: mqtt.Client) -> None:
    """After each 2,500 payloads, a malformed one of the next format, on a topic of its rule."""
    if number % 2500 == 2499:
        fmt = FORMATS[(number // 2500) % 4]
        client.publish(payload(FORMATS.index(fmt), DEVICES)[2], MALFORMED[fmt], qos=1)


def _recorded(url: str) -> dict[str, list[int]]:
    """Entity id -> the seq values of its temporal instances (none while the broker is away)."""
    params: dict[str, str | int] = {"type": "IngestProbe", "attrs": "seq", "timerel": "after",
                                    "timeAt": "2025-12-31T00:00:00Z", "format": "temporalValues", "limit": 1000}
    try:
        response = httpx.get(f"{url}/ngsi-ld/v1/temporal/entities", params=params, timeout=30)
    except httpx.TransportError:
        return {}
    assert response.status_code == 200, response.text
    return {e["id"]: [int(value) for value, _ in e["seq"]["values"]] for e in response.json()}


def _instances(url: str) -> int:
    return sum(len(set(values)) for values in _recorded(url).values())


def _ingester(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:  # both runs' lines in one file
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def test_every_acknowledged_payload_is_a_temporal_instance_across_sigkills(tmp_path: Path) -> None:
    """The broker is killed while the ingester writes, then the ingester itself: the persistent session gives the
    second ingester what the first had not acknowledged, and what the first had written of it is not written twice."""
    store = f"sqlite:///{tmp_path / 'agora.db'}"
    port = free_port()
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(mapping(DEVICES))
    broker = start_broker(store, tmp_path, port=port, extra_env=ENV)
    with running_mosquitto(tmp_path, extra_config="max_queued_messages 0\n") as mosquitto:
        log_path = tmp_path / "ingest.log"
        command = [sys.executable, "-m", "broker.cli", "ingest", "mqtt", str(mapping_file), "--mqtt",
                   f"mqtt://127.0.0.1:{mosquitto.port}", "--broker", broker.url, "--client-id", "e2e-ingest",
                   "--log-level", "warning"]  # fmt: skip
        ingester = _ingester(command, log_path)
        acknowledged: list[int] = []
        publisher = threading.Thread(target=lambda: acknowledged.extend(publish(mosquitto.port, PAYLOADS, DEVICES,
                                                                                _malformed)))  # fmt: skip
        try:
            wait_for(lambda: "e2e-ingest" in mosquitto.log() and "SUBSCRIBE" in mosquitto.log(), 30)
            started = time.monotonic()
            publisher.start()
            wait_for(lambda: _written(broker.url) >= 3 * DEVICES, 30)  # the ingester is at work
            broker.kill()  # SIGKILL while the ingester is writing and the publisher sending
            time.sleep(0.5)  # writes fail meanwhile: nothing they carried may be acknowledged
            broker = start_broker(store, tmp_path, port=port, extra_env=ENV)
            wait_for(lambda: _instances(broker.url) >= 1000, 60, 0.5)  # writing again, with a backlog
            ingester.kill()  # SIGKILL: what it received and had not acknowledged is the MQTT broker's again
            ingester.wait()
            ingester = _ingester(command, log_path)
            publisher.join(timeout=60)
            wait_for(lambda: _instances(broker.url) >= PAYLOADS, 90, 0.5)  # a heavy query: not too often
            elapsed = time.monotonic() - started
            ingester.send_signal(signal.SIGTERM)  # a clean stop: what it holds is written first, then the summary
            assert ingester.wait(timeout=30) in (0, 3), log_path.read_text()
            recorded = _recorded(broker.url)
        finally:
            for process in (ingester, broker.process):
                if process.poll() is None:
                    process.kill()
                    process.wait()
        summary = log_path.read_text()
        assert len(acknowledged) == PAYLOADS  # mosquitto acknowledged them all (it ran throughout)
    expected: dict[str, set[int]] = {}
    for number in acknowledged:
        expected.setdefault(payload(number, DEVICES)[1], set()).add(number)
    assert set(recorded) == set(expected)
    missing = {eid: sorted(want - set(recorded[eid]))[:5] for eid, want in expected.items()
               if want - set(recorded[eid])}  # fmt: skip
    assert not missing, f"acknowledged payloads without a temporal instance: {missing}"
    assert all(set(recorded[eid]) == want for eid, want in expected.items())  # and no value that was not sent
    for fmt in FORMATS:  # one malformed payload of each format, logged, and the stream went on
        assert f"malformed {fmt} payload" in summary, summary
    assert "the broker cannot take writes" in summary, summary  # the broker's SIGKILL was felt, and bridged
    # a message written but not acknowledged comes again flagged DUP: the history is checked, nothing recorded twice
    assert sum(len(v) for v in recorded.values()) == PAYLOADS
    print(f"{PAYLOADS} payloads across two SIGKILLs in {elapsed:.1f} s\n{summary}")


def _written(url: str) -> int:
    try:
        response = httpx.get(f"{url}/ngsi-ld/v1/entities", params={"type": "IngestProbe", "count": "true",
                                                                     "limit": 0}, timeout=5)  # fmt: skip
    except httpx.TransportError:
        return 0
    return int(response.headers.get("NGSILD-Results-Count", 0))


def test_mqtt_3_1_1_session_and_a_provisioned_device(broker_server: BrokerProcess, tmp_path: Path) -> None:
    """MQTT 3.1.1 (clean session off) in process: a provisioned device's static attributes are written at start-up,
    an unlisted one is skipped (autoProvision false), the values of the listed ones land with their units."""
    device = f"m{time.monotonic_ns()}"
    rules = parse_mapping({"rules": [{
        "match": "plant/{device}/json", "format": "json", "type": "IngestProbe", "autoProvision": False,
        "id": "urn:ngsi-ld:IngestProbe:v3:{device}", "attributes": {"p": {"name": "pressure", "unit": "BAR"}},
        "devices": {device: {"static": {"name": "Pump north"}}},
    }]})  # fmt: skip
    entity_id = f"urn:ngsi-ld:IngestProbe:v3:{device}"
    with running_mosquitto(tmp_path) as mosquitto:
        options = MqttOptions(f"mqtt://127.0.0.1:{mosquitto.port}", f"v3-{device}", "3.1.1")

        async def scenario() -> Stats:
            stats = Stats()
            task = asyncio.create_task(ingest(rules, BrokerOptions(broker_server.url), mqtt_source(options, rules),
                                              count=3, stats=stats))  # fmt: skip
            await asyncio.to_thread(wait_for, lambda: "SUBSCRIBE" in mosquitto.log(), 30)
            messages = [(f"plant/{device}/json", b'{"p": 1.5}'), ("plant/stranger/json", b'{"p": 9}'),
                        (f"plant/{device}/json", b'{"p": 2}')]  # fmt: skip
            publish_in_order(mosquitto.port, messages)
            await asyncio.wait_for(task, 30)
            return stats

        stats = asyncio.run(scenario())
    assert stats.handled == 3 and stats.skipped == 1 and stats.written == 3  # the static name, then two values
    assert history(broker_server.url, entity_id, "pressure") == [150.0, 200.0]  # bar -> kPa
    assert history(broker_server.url, entity_id, "name") == ["Pump north"]


def _sparkplug(*metrics: dict[str, Any], millis: int) -> bytes:
    message = Payload(timestamp=millis, seq=0)
    for metric in metrics:
        added = message.metrics.add(**{k: v for k, v in metric.items() if k not in ("dataset", "template")})
        if "dataset" in metric:
            added.dataset_value.CopyFrom(metric["dataset"])
        if "template" in metric:
            added.template_value.CopyFrom(metric["template"])
    return bytes(message.SerializeToString())


def _template(ref: str | None, *members: tuple[str, int, str, Any], definition: bool = False) -> Any:
    template = Payload.Template(is_definition=definition)
    if ref is not None:
        template.template_ref = ref
    for name, datatype, field, value in members:
        member = template.metrics.add(name=name)
        if datatype:
            member.datatype = datatype
        setattr(member, field, value)
    return template


def _dataset(rows: list[tuple[float, str]]) -> Any:
    dataset = Payload.DataSet(num_of_columns=2, columns=["level", "state"], types=[10, 12])  # Double, String
    for level, state in rows:
        row = dataset.rows.add()
        row.elements.add(double_value=level)
        row.elements.add(string_value=state)
    return dataset


def test_sparkplug_datasets_and_templates_reach_the_broker(broker_server: BrokerProcess, tmp_path: Path) -> None:
    """NBIRTH with a template definition, DBIRTH with an instance and a DataSet, DDATA by alias with one changed
    member and a new DataSet (record 0383): the entity holds JsonProperties, the history holds every value."""
    device = f"tank{time.monotonic_ns()}"
    rules = parse_mapping({"rules": [{
        "match": "spBv1.0/water/#", "format": "sparkplug", "type": "IngestProbe",
        "id": "urn:ngsi-ld:IngestProbe:spb:{device}",
        "attributes": {"Pump 1": {"name": "pump"}, "Level log": {"name": "levelLog"}},
    }]})  # fmt: skip
    entity_id = f"urn:ngsi-ld:IngestProbe:spb:{device}"
    t0 = 1_767_225_600_000
    definition = _template(None, ("running", 11, "boolean_value", False), ("flow", 9, "float_value", 0.0),
                           definition=True)  # fmt: skip
    messages = [
        ("spBv1.0/water/NBIRTH/edge", _sparkplug({"name": "Pump", "datatype": 19, "template": definition},
                                                 millis=t0)),
        (f"spBv1.0/water/DBIRTH/edge/{device}", _sparkplug(
            {"name": "Pump 1", "alias": 1, "datatype": 19,
             "template": _template("Pump", ("running", 11, "boolean_value", True), ("flow", 9, "float_value", 12.5))},
            {"name": "Level log", "alias": 2, "datatype": 16, "dataset": _dataset([(1.5, "low"), (2.25, "ok")])},
            millis=t0 + 1000)),
        (f"spBv1.0/water/DDATA/edge/{device}", _sparkplug(
            {"alias": 1, "template": _template("Pump", ("flow", 0, "float_value", 3.0))},
            {"alias": 2, "dataset": _dataset([(2.5, "ok")])}, millis=t0 + 2000)),
    ]  # fmt: skip
    with running_mosquitto(tmp_path) as mosquitto:
        options = MqttOptions(f"mqtt://127.0.0.1:{mosquitto.port}", f"spb-{device}")

        async def scenario() -> Stats:
            stats = Stats()
            task = asyncio.create_task(ingest(rules, BrokerOptions(broker_server.url), mqtt_source(options, rules),
                                              count=len(messages), stats=stats))  # fmt: skip
            await asyncio.to_thread(wait_for, lambda: "SUBSCRIBE" in mosquitto.log(), 30)
            publish_in_order(mosquitto.port, messages)  # births first
            await asyncio.wait_for(task, 30)
            return stats

        stats = asyncio.run(scenario())
    assert stats.handled == 3 and not stats.malformed and not stats.refused, stats
    link = project_link(broker_server.url)
    entity = httpx.get(f"{broker_server.url}/ngsi-ld/v1/entities/{entity_id}", headers=link, timeout=10).json()
    assert entity["pump"]["type"] == "JsonProperty"
    assert entity["pump"]["json"] == {"running": True, "flow": 3.0}  # DDATA's flow, the birth's running
    assert entity["pump"]["templateRef"]["value"] == "Pump"
    assert entity["levelLog"]["json"] == {"columns": [{"name": "level", "type": "Double"},
                                                      {"name": "state", "type": "String"}], "rows": [[2.5, "ok"]]}
    assert entity["levelLog"]["observedAt"] == "2026-01-01T00:00:02.000Z"
    temporal = httpx.get(f"{broker_server.url}/ngsi-ld/v1/temporal/entities/{entity_id}", headers=link,
                         params={"attrs": "pump,levelLog"}, timeout=10).json()  # fmt: skip
    assert [i["json"]["flow"] for i in sorted(temporal["pump"], key=lambda i: i["observedAt"])] == [12.5, 3.0]
    assert [i["json"]["rows"] for i in sorted(temporal["levelLog"], key=lambda i: i["observedAt"])] == [
        [[1.5, "low"], [2.25, "ok"]], [[2.5, "ok"]]]  # fmt: skip
