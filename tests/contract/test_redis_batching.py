"""Auto-pipelining on one Redis server (decision record 0081): the commands that concurrent requests issue in one
turn of the event loop travel together, yet each caller gets its own reply or error, exactly as if sent alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
import redis

from broker.store import open_store
from broker.store.base import DEFAULT_TENANT, WriteFn, WritePlan
from broker.store.redis import RedisStore
from tests.contract.contract_helpers import EX, entity
from tests.support.redis_servers import RedisServer


@pytest_asyncio.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    redis_server.flush()
    opened = open_store(redis_server.url)
    assert isinstance(opened, RedisStore)
    await opened.open()
    yield opened
    await opened.close()


def _connections_received(server: RedisServer) -> int:
    with server.client() as client:
        return int(client.info("stats")["total_connections_received"])


async def test_concurrent_reads_and_writes_share_a_connection_and_get_their_own_replies(
    store: RedisStore, redis_server: RedisServer
) -> None:
    ids = [f"urn:b:{n}" for n in range(64)]
    await store.write(DEFAULT_TENANT, ids, lambda _: WritePlan({eid: entity(eid, n=0) for eid in ids}))
    before = _connections_received(redis_server)
    got = await asyncio.gather(*(store.get(DEFAULT_TENANT, [eid]) for eid in ids))
    assert [list(g) for g in got] == [[eid] for eid in ids]  # each caller its own entity, in its own order

    def bump(eid: str, by: int) -> WriteFn[int]:
        return lambda _: WritePlan({eid: entity(eid, n=by)}, result=by)

    results = await asyncio.gather(*(store.write(DEFAULT_TENANT, [eid], bump(eid, n)) for n, eid in enumerate(ids)))
    assert results == list(range(64))
    # 64 requests at once, 128 reads and 64 scripts: sent one by one they would have opened dozens of pooled
    # connections; batched, the pool never needed more than a couple.
    assert _connections_received(redis_server) - before <= 2
    stored = await store.get(DEFAULT_TENANT, ids)
    assert [stored[eid]["attrs"][EX + "n"][0]["value"] for eid in ids] == list(range(64))
    assert len(await store.changes_since(0, limit=1000)) == 64 + 64


async def test_an_error_of_one_command_stays_with_its_caller(store: RedisStore, redis_server: RedisServer) -> None:
    await store.write(DEFAULT_TENANT, ["urn:ok"], lambda _: WritePlan({"urn:ok": entity("urn:ok")}))
    with redis_server.client() as client:  # a tenant whose entity hash is not a hash: HMGET on it fails
        client.set(store._key(0, "e", "broken"), "not a hash")
    store._known_tenants.add("broken")
    broken, fine = await asyncio.gather(
        store.get("broken", ["urn:x"]), store.get(DEFAULT_TENANT, ["urn:ok"]), return_exceptions=True
    )
    assert isinstance(broken, redis.ResponseError) and "WRONGTYPE" in str(broken)
    assert isinstance(fine, dict) and list(fine) == ["urn:ok"]


async def test_a_redis_that_lost_its_scripts_gets_them_again(store: RedisStore, redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.script_flush()  # as a Redis restarted without persistence would be
    eid = "urn:noscript"
    await store.write(DEFAULT_TENANT, [eid], lambda _: WritePlan({eid: entity(eid, n=7)}))
    assert (await store.get(DEFAULT_TENANT, [eid]))[eid]["attrs"][EX + "n"][0]["value"] == 7


async def test_a_cancelled_caller_does_not_disturb_the_others_in_its_batch(store: RedisStore) -> None:
    ids = [f"urn:c:{n}" for n in range(8)]
    await store.write(DEFAULT_TENANT, ids, lambda _: WritePlan({eid: entity(eid) for eid in ids}))
    tasks = [asyncio.ensure_future(store.get(DEFAULT_TENANT, [eid])) for eid in ids]
    await asyncio.sleep(0)  # every task has queued its command; the batch is not sent yet
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    assert [list(d) for n, d in enumerate(done) if n != 3] == [[eid] for n, eid in enumerate(ids) if n != 3]
