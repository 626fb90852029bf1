"""rediss+cluster:// (decision record 0048): a Redis Cluster over TLS, with the TLS options of rediss:// (0043).
The whole store contract suite also runs on it (the `redis-cluster-tls` backend of conftest.py); these tests check
what is particular to it: the URL, that every node is reached over TLS with hiredis packing, and what is refused."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import redis

from broker.store import open_store
from broker.store.base import DEFAULT_TENANT, WritePlan
from broker.store.redis import RedisStore
from broker.store.redis_client import FastSharedSSLConnection, FastSSLConnection, parse_url
from tests.contract.contract_helpers import entity
from tests.support import redis_servers
from tests.support.redis_servers import RedisClusterServers


@pytest.mark.parametrize(
    ("url", "nodes", "tls", "shards"),
    [
        ("rediss+cluster://a:7000,b:7001", (("a", 7000), ("b", 7001)), {}, 16),
        (
            "REDISS+CLUSTER://a:7000?tls_ca=/etc/ca.pem&tls_cert=c.pem&tls_key=k.pem&shards=4",
            (("a", 7000),),
            {"tls_ca": "/etc/ca.pem", "tls_cert": "c.pem", "tls_key": "k.pem"},
            4,
        ),
    ],
)
def test_parse_url(url: str, nodes: tuple[tuple[str, int], ...], tls: dict[str, str], shards: int) -> None:
    parsed = parse_url(url)
    assert (parsed.cluster, parsed.secure, parsed.nodes, dict(parsed.tls), parsed.shards) == (
        True,
        True,
        nodes,
        tls,
        shards,
    )
    assert isinstance(open_store(url), RedisStore)


def test_plain_schemes_are_not_secure() -> None:
    assert not parse_url("redis+cluster://a:7000").secure
    assert not parse_url("redis://h:1/0").secure
    assert parse_url("rediss://h:1/0").secure


@pytest.mark.parametrize(
    "url",
    [
        "rediss+cluster://a",  # no port
        "rediss+cluster://a:7000?tls_ca=",  # a TLS option names a file
        "rediss+cluster://a:7000?tls_cafile=/etc/ca.pem",  # misspelt
        "redis+cluster://a:7000?tls_cert=c.pem",  # TLS files on a plain cluster: a mistake, not plain text
        "rediss+clusters://a:7000",
    ],
)
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


async def test_every_node_is_reached_over_tls_with_hiredis_packing(redis_cluster_tls: RedisClusterServers) -> None:
    redis_cluster_tls.flush()
    store = open_store(redis_cluster_tls.url)
    assert isinstance(store, RedisStore)
    await store.open()
    try:
        ids = [f"urn:tlsc:{n}" for n in range(24)]  # over the 16 shards, so over the 3 masters
        await store.write(DEFAULT_TENANT, ids, lambda _: WritePlan({eid: entity(eid) for eid in ids}))
        assert sorted(await store.get(DEFAULT_TENANT, ids)) == sorted(ids)
        nodes = store._redis.get_nodes()
        assert {n.port for n in nodes} == {n.port for n in redis_cluster_tls.nodes}  # discovered, all of them
        assert all(n.connection_class is FastSharedSSLConnection for n in nodes)
        connections = [c for n in nodes for c in n._connections]
        assert connections and all(isinstance(c, FastSSLConnection) for c in connections)  # hiredis packing
        assert len({id(c.ssl_context) for c in connections}) == 1  # one SSL context, not one per connection
        shared = connections[0].ssl_context.get()
        assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname  # it still checks the server
        assert any(ca["subject"] == ((("commonName", "Agora test CA"),),) for ca in shared.get_ca_certs())
    finally:
        await store.close()
    for node in redis_cluster_tls.nodes:  # the data is spread over every master, read back through TLS
        with node.client() as client:
            assert client.dbsize() > 0


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("untrusted CA", redis.exceptions.RedisClusterException, "CERTIFICATE_VERIFY_FAILED"),
        ("plain text", redis.exceptions.RedisClusterException, None),  # redis+cluster:// to TLS-only ports
        ("missing key file", ValueError, "nowhere.key' [(]tls_key[)] does not exist"),
    ],
)
async def test_tls_cluster_refuses_what_it_cannot_trust(
    redis_cluster_tls: RedisClusterServers, tmp_path: Path, change: str, error: type[Exception], message: str | None
) -> None:
    url = redis_cluster_tls.url
    if change == "untrusted CA":
        url = redis_servers.with_option(url, "tls_ca", str(redis_servers.make_tls_files(tmp_path / "other").ca))
    elif change == "plain text":
        url = "redis+cluster://" + url.partition("://")[2].partition("?")[0]
    else:
        url = redis_servers.with_option(url, "tls_key", str(tmp_path / "nowhere.key"))
    store = open_store(url)
    try:
        with pytest.raises(error, match=message):
            await asyncio.wait_for(store.open(), 60)
    finally:
        await store.close()
