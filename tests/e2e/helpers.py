from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

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


def project_link(url: str) -> dict[str, str]:
    """The Link header of the project @context as the broker at ``url`` hosts it (an import or ingester hosted it)."""
    from adapters.importer import hosted_copy, project_context

    with httpx.Client(base_url=url, timeout=10) as client:
        hosted = hosted_copy(client, project_context())
    assert hosted is not None, "the broker hosts no copy of the project @context"
    return link(hosted)


def history(url: str, entity_id: str, attribute: str) -> list[Any]:
    """The values of an attribute's temporal instances, oldest first, named in the project @context."""
    params = {"attrs": attribute, "format": "temporalValues"}
    path = f"/ngsi-ld/v1/temporal/entities/{quote(entity_id, safe='')}"
    response = httpx.get(url + path, params=params, headers=project_link(url), timeout=10)
    assert response.status_code == 200, response.text
    return [value for value, _ in response.json()[attribute]["values"]]


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
