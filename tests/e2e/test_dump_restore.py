"""`agora dump` and `agora restore` between backends (record 0245): a broker on SQLite holding the three networks'
imports (a GTFS feed, EPANET's Net3, the CIGRE MV grid in CGMES) with their history, a subscription, a context
source registration and the hosted project @context is dumped, restored into a real redis-server and back into a
new SQLite file, and each restored broker answers the same queries with the same bodies."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from adapters.importer import project_context
from tests.e2e.helpers import agora_cli
from tests.e2e.test_import_energy_water import CIGRE, NET3, NET3_CRS
from tests.e2e.test_import_gtfs import FEED
from tests.support.redis_servers import running_redis
from tests.support.servers import BrokerProcess, running_broker

pytestmark = pytest.mark.e2e
API = "/ngsi-ld/v1"
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+")


def link(http: httpx.Client) -> dict[str, str]:
    """The Link header naming the hosted project context through this broker's own address: a restored record
    keeps the URL it had on the source broker, and the broker serves it by id under any address."""
    hosted = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()
    urls = [f"{http.base_url}{API}/jsonldContexts/{url.rsplit('/', 1)[1]}".replace("//ngsi", "/ngsi") for url in hosted]
    same = [url for url in urls if http.get(url).json() == project_context()]
    assert len(same) == 1, hosted
    return {"Link": f'<{same[0]}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def _load(broker: BrokerProcess) -> None:
    for args in (
        ("gtfs", str(FEED)),
        ("epanet", f"{NET3}?crs={NET3_CRS}", "--network", "net3"),
        ("cgmes", str(CIGRE), "--network", "cigre"),
    ):
        result = agora_cli("import", *args, "--broker", broker.url, timeout=300)
        assert result.returncode == 0, result.stderr
    with httpx.Client(base_url=broker.url, timeout=30) as http:
        sub = {
            "id": "urn:ngsi-ld:Subscription:backup",
            "type": "Subscription",
            "entities": [{"type": "NothingOfThisType"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
        }
        assert http.post(f"{API}/subscriptions", json=sub).status_code == 201
        reg = {
            "id": "urn:ngsi-ld:ContextSourceRegistration:water",
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "WaterMeter"}]}],
            "endpoint": "http://127.0.0.1:9",
        }
        assert http.post(f"{API}/csourceRegistrations", json=reg).status_code == 201, "registration"
        headers = link(http)
        junctions = http.get(f"{API}/entities", headers=headers, params={"type": "Junction", "limit": 3}).json()
        for junction in junctions:  # more history: two later values of an attribute
            for value in (1.5, 2.5):
                body = {"demand": {"type": "Property", "value": value}}
                patched = http.patch(f"{API}/entities/{junction['id']}/attrs", json=body, headers=headers)
                assert patched.status_code == 204, patched.text


def _answers(broker: BrokerProcess) -> dict[str, Any]:
    """The answers to a fixed set of queries, any broker address replaced: a hosted @context record keeps the URL
    it was given on the source broker (record 0245), which the restored one serves by id under its own."""
    found: dict[str, Any] = {}
    with httpx.Client(base_url=broker.url, timeout=30) as http:
        headers = link(http)

        def get(path: str, **params: Any) -> Any:
            response = http.get(API + path, headers=headers, params=params)
            assert response.status_code == 200, (path, response.text)
            found[f"{path}?{sorted(params.items())}"] = json.loads(ADDRESS.sub("BROKER", response.text))
            return found[f"{path}?{sorted(params.items())}"]

        types = get("/types")["typeList"]
        assert len(types) > 20, types
        get("/attributes")
        for entity_type in types:
            entities = get("/entities", type=entity_type, limit=1000, options="sysAttrs")
            for entity in entities[:3]:
                get(f"/temporal/entities/{quote(entity['id'], safe=':')}", options="sysAttrs")
        get("/subscriptions")
        get("/csourceRegistrations")
        get("/jsonldContexts", details="true")
    return found


def test_dump_sqlite_restore_into_redis_and_back_answers_the_same(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'source.db'}"
    with running_broker(sqlite_url, tmp_path) as source:
        _load(source)
        expected = _answers(source)
    archive = tmp_path / "agora.jsonl.gz"
    dumped = agora_cli("dump", str(archive), "--store", sqlite_url, timeout=300)
    assert dumped.returncode == 0, dumped.stderr
    assert "records" in dumped.stderr and "temporal" in dumped.stderr
    with gzip.open(archive, "rb") as handle:
        header = json.loads(handle.readline())
    assert header["format"] == "agora-dump" and header["version"] == 1
    with running_redis(tmp_path / "redis") as redis_server:
        restored = agora_cli("restore", str(archive), "--store", redis_server.url, timeout=300)
        assert restored.returncode == 0, restored.stderr
        again = agora_cli("restore", str(archive), "--store", redis_server.url)
        assert again.returncode == 1 and "not empty" in again.stderr  # nothing is merged by accident
        with running_broker(redis_server.url, tmp_path) as on_redis:
            assert _answers(on_redis) == expected
        back = tmp_path / "from-redis.jsonl.gz"
        assert agora_cli("dump", str(back), "--store", redis_server.url, timeout=300).returncode == 0
    sqlite_again = f"sqlite:///{tmp_path / 'again.db'}"
    assert agora_cli("restore", str(back), "--store", sqlite_again, timeout=300).returncode == 0
    with running_broker(sqlite_again, tmp_path) as on_sqlite:
        assert _answers(on_sqlite) == expected


def test_restore_refuses_what_is_not_an_agora_dump(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.jsonl.gz"
    with gzip.open(bogus, "wb") as handle:
        handle.write(b'{"format": "something-else"}\n')
    result = agora_cli("restore", str(bogus), "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 1 and "is not an Agora dump" in result.stderr
    newer = tmp_path / "newer.jsonl.gz"
    with gzip.open(newer, "wb") as handle:
        handle.write(b'{"format": "agora-dump", "version": 99}\n')
    result = agora_cli("restore", str(newer), "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 1 and "format version 99" in result.stderr
