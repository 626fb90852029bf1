"""Context source registrations over HTTP (clauses 5.9, 5.10, 6.8, 6.9, 4.3.6.3), on every store backend, each
behind two real `agora serve` processes sharing it (one for memory://, which is process-local): what one process
registers, updates or deletes, the other serves, and the conflict rules hold across processes. Records 0160-0166."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import running_broker, store_url_for

BASE = "/ngsi-ld/v1"
CSR = "/csourceRegistrations"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
BACKENDS = ["sqlite", "memory", "redis", "redis-cluster"]


@dataclass
class Brokers:
    a: httpx.Client
    b: httpx.Client


@pytest.fixture(scope="module", params=BACKENDS)
def brokers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    tmp: Path = tmp_path_factory.mktemp(f"registrations-{request.param}")
    with ExitStack() as stack:
        url = store_url_for(request.param, tmp, stack)
        first = stack.enter_context(running_broker(url, tmp))
        second = first if request.param == "memory" else stack.enter_context(running_broker(url, tmp))
        a = stack.enter_context(httpx.Client(base_url=first.url + BASE, timeout=30))
        b = stack.enter_context(httpx.Client(base_url=second.url + BASE, timeout=30))
        yield Brokers(a, b)


def registration(kind: str, **members: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4().hex}",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": kind}], "propertyNames": ["speed"]}],
        "endpoint": "http://127.0.0.1:9/source",
        **members,
    }


def created(http: httpx.Client, body: dict[str, Any]) -> str:
    r = http.post(CSR, json=body)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"{BASE}{CSR}/{body['id']}"
    return str(body["id"])


def test_what_one_process_registers_the_other_serves(brokers: Brokers) -> None:
    kind = f"Bus{uuid.uuid4().hex[:8]}"
    reg_id = created(brokers.a, registration(kind, registrationName="transport"))
    got = brokers.b.get(f"{CSR}/{reg_id}")
    assert got.status_code == 200 and got.json()["registrationName"] == "transport"
    assert [r["id"] for r in brokers.b.get(CSR, params={"type": kind}).json()] == [reg_id]
    assert brokers.b.patch(f"{CSR}/{reg_id}", json={"registrationName": "buses"}).status_code == 204
    assert brokers.a.get(f"{CSR}/{reg_id}").json()["registrationName"] == "buses"
    assert brokers.b.delete(f"{CSR}/{reg_id}").status_code == 204
    r = brokers.a.get(f"{CSR}/{reg_id}")
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"


def test_the_conflict_rules_hold_across_processes(brokers: Brokers) -> None:
    kind = f"Bus{uuid.uuid4().hex[:8]}"
    info = [{"entities": [{"id": f"urn:ngsi-ld:{kind}:1", "type": kind}], "propertyNames": ["speed"]}]
    held = created(brokers.a, registration(kind, mode="exclusive", information=info))
    r = brokers.b.post(CSR, json=registration(kind, mode="redirect"))
    assert r.status_code == 409 and r.json()["type"] == ERR + "Conflict", r.text
    assert r.json()["conflictingRegistration"] == held
    assert brokers.a.delete(f"{CSR}/{held}").status_code == 204
    created(brokers.b, registration(kind, mode="redirect"))  # nothing to conflict with any more


def test_query_pages_and_counts(brokers: Brokers) -> None:
    kind = f"Bus{uuid.uuid4().hex[:8]}"
    ids = sorted(created(brokers.a, registration(kind)) for _ in range(3))
    first = brokers.b.get(CSR, params={"type": kind, "limit": "2", "count": "true"})
    assert first.status_code == 200 and first.headers["NGSILD-Results-Count"] == "3"
    assert 'rel="next"' in first.headers["Link"]
    second = brokers.b.get(CSR, params={"type": kind, "limit": "2", "offset": "2"})
    assert [r["id"] for r in first.json() + second.json()] == ids


def test_bad_members_are_named_and_nothing_is_stored(brokers: Brokers) -> None:
    body = registration("Bus", management={"timeout": "soon"})
    r = brokers.a.post(CSR, json=body)
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    assert "management.timeout" in r.json()["detail"]
    assert brokers.b.get(f"{CSR}/{body['id']}").status_code == 404


def test_an_expired_registration_is_gone_for_both_processes(brokers: Brokers) -> None:
    kind = f"Bus{uuid.uuid4().hex[:8]}"
    soon = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    reg_id = created(brokers.a, registration(kind, expiresAt=soon))
    assert brokers.b.get(f"{CSR}/{reg_id}").status_code == 200
    time.sleep(1.2)
    assert brokers.b.get(f"{CSR}/{reg_id}").status_code == 404
    assert brokers.a.get(CSR, params={"type": kind}).json() == []
    created(brokers.b, registration(kind, id=reg_id))  # an expired id can be registered again
