"""`agora serve --store rediss+cluster://...` (decision record 0048): a broker over a 3-master Redis Cluster that
speaks TLS only, to clients and on its cluster bus, and requires client certificates."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.redis_servers import running_redis_cluster
from tests.support.servers import running_broker

BASE = "/ngsi-ld/v1"


def test_a_broker_over_a_tls_only_redis_cluster_writes_and_reads(tmp_path: Path) -> None:
    kind = f"Tls{uuid.uuid4().hex[:6]}"
    with running_redis_cluster(tmp_path / "cluster", tls=True) as cluster:
        assert cluster.url.startswith("rediss+cluster://") and "tls_cert=" in cluster.url
        with running_broker(cluster.url, tmp_path) as broker, httpx.Client(base_url=broker.url + BASE) as http:
            batch: list[dict[str, Any]] = [
                {"id": f"urn:ngsi-ld:{kind}:{n:02d}", "type": kind, "speed": n} for n in range(12)
            ]
            r = http.post("/entityOperations/upsert", json=batch)  # spread over the shards, so over every master
            assert r.status_code in (201, 204), r.text
            listed = http.get("/entities", params={"type": kind, "limit": 100})
            assert listed.status_code == 200, listed.text
            assert sorted((e["id"], e["speed"]["value"]) for e in listed.json()) == [
                (e["id"], e["speed"]) for e in batch
            ]
            one = http.get(f"/entities/{batch[3]['id']}")
            assert one.status_code == 200 and one.json()["speed"]["value"] == 3
        masters_holding = 0
        for node in cluster.nodes:  # what the broker wrote is there, read back over TLS
            with node.client() as client:
                masters_holding += client.dbsize() > 0
        assert masters_holding == len(cluster.nodes)
