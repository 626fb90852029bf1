"""Default source ids (record 0199): `agora serve` without AGORA_SOURCE_ID gives itself an id of its store's own,
so that brokers federating each other never share one. Real processes, each on its own SQLite store: a chain
A -> B -> C reaches C (with one shared id B would take the request for a loop and stop it), a loop A <-> B still
ends with a loop warning, and a restarted broker keeps its id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.servers import BrokerProcess, start_broker

API = "/ngsi-ld/v1"
PREFIX = "urn:ngsi-ld:ContextSource:agora:"
#: No AGORA_SOURCE_ID, whatever the environment of the test run says: the default is what is tested.
DEFAULT_ID = {"AGORA_SOURCE_ID": ""}


@dataclass
class Trio:
    a: BrokerProcess
    b: BrokerProcess
    c: BrokerProcess


def _start(store: str, tmp: Path) -> BrokerProcess:
    return start_broker(store, tmp, timeout=60, extra_env=DEFAULT_ID)


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    tmp = tmp_path_factory.mktemp("federation-identity")
    with ExitStack() as stack, ThreadPoolExecutor(3) as pool:
        started = [pool.submit(_start, f"sqlite:///{tmp / name}.db", tmp) for name in "abc"]
        for future in started:  # every broker that started is stopped, even when another did not
            if future.exception() is None:
                stack.callback(future.result().stop)
        brokers = [future.result() for future in started]
        yield Trio(*brokers)


def identity(broker: BrokerProcess) -> str:
    response = httpx.get(f"{broker.url}{API}/info/sourceIdentity", timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def register(broker: BrokerProcess, endpoint: str, kind: str) -> None:
    body = {"type": "ContextSourceRegistration", "endpoint": endpoint, "information": [{"entities": [{"type": kind}]}]}
    response = httpx.post(f"{broker.url}{API}/csourceRegistrations", json=body, timeout=10)
    assert response.status_code == 201, response.text


def create(broker: BrokerProcess, entity_id: str, kind: str, **attrs: Any) -> None:
    body = {"id": entity_id, "type": kind, **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}
    response = httpx.post(f"{broker.url}{API}/entities", json=body, timeout=10)
    assert response.status_code == 201, response.text


def test_the_default_ids_differ(trio: Trio) -> None:
    ids = [identity(b) for b in (trio.a, trio.b, trio.c)]
    assert len(set(ids)) == 3, ids
    assert all(i.startswith(PREFIX) and len(i) > len(PREFIX) for i in ids), ids


def test_a_chain_of_two_hops_reaches_the_third_broker(trio: Trio) -> None:
    kind = f"Tank{uuid.uuid4().hex[:8]}"
    tank = f"urn:ngsi-ld:{kind}:t1"
    create(trio.c, tank, kind, level=3)
    register(trio.b, trio.c.url, kind)
    register(trio.a, trio.b.url, kind)
    response = httpx.get(f"{trio.a.url}{API}/entities", params={"type": kind}, timeout=10)
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == [tank]
    assert not response.headers.get_list("NGSILD-Warning")  # no hop took the chain for a loop
    one = httpx.get(f"{trio.a.url}{API}/entities/{quote(tank, safe='')}", timeout=10)
    assert one.status_code == 200 and one.json()["level"]["value"] == 3, one.text


def test_a_loop_between_two_brokers_ends_with_a_loop_warning(trio: Trio) -> None:
    kind = f"Valve{uuid.uuid4().hex[:8]}"
    valve = f"urn:ngsi-ld:{kind}:v1"
    create(trio.a, valve, kind, open=True)
    register(trio.a, trio.b.url, kind)
    register(trio.b, trio.a.url, kind)
    started = time.monotonic()
    response = httpx.get(f"{trio.a.url}{API}/entities", params={"type": kind}, timeout=10)
    assert time.monotonic() - started < 5, "the loop took too long"
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == [valve]
    warnings = response.headers.get_list("NGSILD-Warning")  # B relays what A said when the request came back
    assert any(w.startswith("199 ") and "loop" in w for w in warnings), warnings


def test_a_restarted_broker_keeps_its_id(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'restart.db'}"
    first = _start(store, tmp_path)
    try:
        before = identity(first)
    finally:
        first.stop()
    second = _start(store, tmp_path)
    try:
        assert identity(second) == before
    finally:
        second.stop()
