from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Notifier settings that make an e2e broker notify within a few hundred milliseconds and give up fast.
FAST_NOTIFY: dict[str, str] = {
    "AGORA_NOTIFY_POLL_INTERVAL": "0.02",
    "AGORA_NOTIFY_BACKOFF": "0.05",
    "AGORA_NOTIFY_ATTEMPTS": "2",
    "AGORA_NOTIFY_TIMEOUT": "1.0",
}

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
LD = "application/ld+json"
ROOT = Path(__file__).resolve().parents[2]


def uid(kind: str = "Thing") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex[:12]}"


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll ``condition`` every ``interval`` seconds until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(interval)


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def vehicle(entity_id: str, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": entity_id,
        "type": "Vehicle",
        "speed": {"type": "Property", "value": 80, "unitCode": "KMH", "observedAt": "2026-11-25T10:00:00Z"},
        "isParked": {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:Downtown1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}},
    }
    body.update(attrs)
    return body


def agora_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`agora ARGS...` as a user runs it: a process of its own, from the repository root, output captured."""
    cmd = [sys.executable, "-m", "broker.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
