"""`agora ingest mqtt` end to end (issue 22, record 0380): mosquitto, a publisher sending 10,000 payloads in the
four formats (JSON, UltraLight 2.0, SenML, Sparkplug B) plus malformed ones, while the NGSI-LD broker is killed
with SIGKILL and started again: every payload mosquitto acknowledged ends as a temporal instance."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

from bench.ingest_load import FORMATS, mapping, payload, publish
from tests.e2e.helpers import wait_for
from tests.support.mosquitto import running_mosquitto
from tests.support.servers import free_port, start_broker

PAYLOADS = 10_000
DEVICES = 50  # per format
MALFORMED = {"json": b"{not json", "ultralight": b"seq|1|dangling", "senml": b'{"n": "seq"}',
             "sparkplug": b"\xff\xff\xff"}  # fmt: skip
ENV = {"AGORA_TEMPORAL_INSTANCE_LIMIT": "100000"}


def _malformed(number: int, client: mqtt.Client) -> None:
    """After each 2,500 payloads, a malformed one of the next format, on a topic of its rule."""
    if number % 2500 == 2499:
        fmt = FORMATS[(number // 2500) % 4]
        client.publish(payload(FORMATS.index(fmt), DEVICES)[2], MALFORMED[fmt], qos=1)


def _recorded(url: str) -> dict[str, set[int]]:
    """Entity id -> the seq values of its temporal instances."""
    found: dict[str, set[int]] = {}
    params: dict[str, str | int] = {"type": "IngestProbe", "attrs": "seq", "timerel": "after",
                                    "timeAt": "2025-12-31T00:00:00Z", "format": "temporalValues", "limit": 1000}
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.get("/ngsi-ld/v1/temporal/entities", params=params)
        assert response.status_code == 200, response.text
        for entity in response.json():
            found[entity["id"]] = {int(value) for value, _ in entity["seq"]["values"]}
    return found


def test_every_acknowledged_payload_is_a_temporal_instance_across_a_broker_sigkill(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'agora.db'}"
    port = free_port()
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(mapping(DEVICES))
    broker = start_broker(store, tmp_path, port=port, extra_env=ENV)
    with running_mosquitto(tmp_path, extra_config="max_queued_messages 0\n") as mosquitto:
        log_path = tmp_path / "ingest.log"
        command = [sys.executable, "-m", "broker.cli", "ingest", "mqtt", str(mapping_file), "--mqtt",
                   f"mqtt://127.0.0.1:{mosquitto.port}", "--broker", broker.url, "--client-id", "e2e-ingest",
                   "--count", str(PAYLOADS + 4), "--log-level", "warning"]  # fmt: skip
        with open(log_path, "wb") as log:
            ingester = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "e2e-ingest" in mosquitto.log() and "SUBSCRIBE" in mosquitto.log(), 30)
            acknowledged: list[int] = []
            done = threading.Event()

            def publisher_run() -> None:
                acknowledged.extend(publish(mosquitto.port, PAYLOADS, DEVICES, _malformed))
                done.set()

            publisher = threading.Thread(target=publisher_run)
            started = time.monotonic()
            publisher.start()
            wait_for(lambda: _written(broker.url) >= 3 * DEVICES, 30)  # the ingester is at work
            broker.kill()  # SIGKILL while the ingester is writing and the publisher sending
            time.sleep(0.5)  # writes fail meanwhile: nothing they carried may be acknowledged
            broker = start_broker(store, tmp_path, port=port, extra_env=ENV)
            publisher.join(timeout=60)
            assert done.is_set()
            assert ingester.wait(timeout=60) in (0, 3), log_path.read_text()
            elapsed = time.monotonic() - started
            recorded = _recorded(broker.url)
        finally:
            if ingester.poll() is None:
                ingester.kill()
                ingester.wait()
            broker.stop()
        summary = log_path.read_text()
        assert len(acknowledged) == PAYLOADS  # mosquitto acknowledged them all (it ran throughout)
    expected: dict[str, set[int]] = {}
    for number in acknowledged:
        expected.setdefault(payload(number, DEVICES)[1], set()).add(number)
    assert set(recorded) == set(expected)
    missing = {eid: sorted(want - recorded[eid])[:5] for eid, want in expected.items() if want - recorded[eid]}
    assert not missing, f"acknowledged payloads without a temporal instance: {missing}"
    assert sum(len(v) for v in recorded.values()) == PAYLOADS  # and none recorded twice
    for fmt in FORMATS:  # one malformed payload of each format, counted, the stream went on
        assert re.search(rf"malformed {fmt}\s+1\b", summary), summary
    assert int(re.search(r"writes retried\s+(\d+)", summary).group(1)) > 0, summary  # type: ignore[union-attr]
    print(f"{PAYLOADS} payloads ingested across a broker SIGKILL in {elapsed:.1f} s\n{summary}")


def _written(url: str) -> int:
    try:
        response = httpx.get(f"{url}/ngsi-ld/v1/entities", params={"type": "IngestProbe", "count": "true",
                                                                     "limit": 0}, timeout=5)  # fmt: skip
    except httpx.TransportError:
        return 0
    return int(response.headers.get("NGSILD-Results-Count", 0))
