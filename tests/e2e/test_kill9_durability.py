"""Acknowledged writes survive SIGKILL of the broker (decision record 0008)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.e2e.helpers import uid
from tests.support.servers import running_broker, start_broker

BASE = "/ngsi-ld/v1"


def _write_until_failure(url: str, acknowledged: list[str], stop: threading.Event) -> None:
    """Create and update entities as fast as one client can; remember every write the broker acknowledged."""
    with httpx.Client(base_url=url, timeout=5) as http:
        while not stop.is_set():
            eid = uid("Sensor")
            try:
                r = http.post(f"{BASE}/entities", json={"id": eid, "type": "Sensor", "n": len(acknowledged)})
                if r.status_code == 201:
                    acknowledged.append(eid)
                r = http.patch(f"{BASE}/entities/{eid}/attrs", json={"n": {"type": "Property", "value": -1}})
                if r.status_code == 204:
                    acknowledged.append(eid + "#patched")
            except httpx.TransportError:
                return


def test_sigkill_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'agora.db'}"
    broker = start_broker(store, tmp_path)
    acknowledged: list[str] = []
    stop = threading.Event()
    writer = threading.Thread(target=_write_until_failure, args=(broker.url, acknowledged, stop))
    writer.start()
    try:
        while len(acknowledged) < 300 and writer.is_alive():
            stop.wait(0.01)
        broker.kill()  # in the middle of the stream: the writer is still sending
    finally:
        stop.set()
        writer.join(timeout=10)
        broker.stop()
    assert len(acknowledged) >= 300

    with running_broker(store, tmp_path) as again, httpx.Client(base_url=again.url, timeout=5) as http:
        for key in acknowledged:
            eid, _, patched = key.partition("#")
            r = http.get(f"{BASE}/entities/{eid}")
            assert r.status_code == 200, f"acknowledged write of {eid} lost"
            if patched:
                assert r.json()["n"]["value"] == -1, f"acknowledged update of {eid} lost"
            # the history commits with the write (decision record 0070): every acknowledged value is in it
            history = http.get(f"{BASE}/temporal/entities/{eid}", params={"format": "temporalValues"})
            assert history.status_code == 200, f"history of {eid} lost"
            values = [v for v, _ in history.json()["n"]["values"]]
            assert (-1 in values) if patched else bool(values), f"acknowledged history of {eid} lost"
