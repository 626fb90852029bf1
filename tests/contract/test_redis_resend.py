"""A write script that Redis applied but whose reply was lost is sent again by the client's retry: it must count as
done, not be planned again (decision record 0083). The connection is cut by a real TCP proxy between the store and
a real redis-server, right after Redis wrote."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio

from broker.store import open_store
from broker.store.base import DEFAULT_TENANT, WritePlan
from broker.store.redis import RedisStore
from tests.contract.contract_helpers import EX, entity
from tests.support.redis_servers import RedisServer


@dataclass
class ReplyEater:
    """A TCP proxy to Redis that, when armed, lets the next write script through, waits for Redis's reply, drops
    it and closes the client's connection: the write happened, the client never heard of it."""

    target: int
    armed: bool = False
    eaten: int = 0
    port: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.target)
        back = asyncio.ensure_future(self._pump(redis_r, client_w))
        self.tasks.add(back)
        try:
            while data := await client_r.read(65536):
                eat = self.armed and b"EVALSHA" in data
                if eat:  # stop relaying Redis's answers before it can answer this
                    self.armed = False
                    back.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await back
                redis_w.write(data)
                await redis_w.drain()
                if eat:
                    await redis_r.read(65536)  # Redis ran the script and answered: the answer goes nowhere
                    self.eaten += 1
                    break
        finally:
            back.cancel()
            for writer in (client_w, redis_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


@pytest_asyncio.fixture
async def through_proxy(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, ReplyEater]]:
    redis_server.flush()
    proxy = ReplyEater(redis_server.port)
    server = await proxy.start()
    store = open_store(f"redis://127.0.0.1:{proxy.port}/0")
    assert isinstance(store, RedisStore)
    await store.open()
    yield store, proxy
    await store.close()
    server.close()
    for task in proxy.tasks:
        task.cancel()


async def test_a_create_whose_reply_was_lost_is_not_refused_as_existing(
    through_proxy: tuple[RedisStore, ReplyEater],
) -> None:
    store, proxy = through_proxy
    eid = "urn:resend:create"

    def create(current: dict[str, object]) -> WritePlan[str]:
        if current[eid] is not None:
            return WritePlan({}, result="exists")  # what a create that finds its entity answers (409)
        return WritePlan({eid: entity(eid, n=1)}, result="created")

    other = "urn:resend:other"  # a first write, so that Redis knows the script (else it answers NOSCRIPT, unapplied)
    await store.write(DEFAULT_TENANT, [other], lambda _: WritePlan({other: entity(other)}))
    proxy.armed = True
    assert await store.write(DEFAULT_TENANT, [eid], create) == "created"  # type: ignore[arg-type]
    assert proxy.eaten == 1
    assert [c.entity_id for c in await store.changes_since(0)] == [other, eid]  # written once


async def test_an_update_whose_reply_was_lost_is_applied_once(through_proxy: tuple[RedisStore, ReplyEater]) -> None:
    store, proxy = through_proxy
    eid = "urn:resend:update"
    await store.write(DEFAULT_TENANT, [eid], lambda _: WritePlan({eid: entity(eid, n=0)}))

    def increment(current: dict[str, object]) -> WritePlan[None]:
        now = current[eid]
        assert isinstance(now, dict)
        now["attrs"][EX + "n"][0]["value"] += 1
        return WritePlan({eid: now})

    proxy.armed = True
    await store.write(DEFAULT_TENANT, [eid], increment)  # type: ignore[arg-type]
    assert proxy.eaten == 1
    assert (await store.get(DEFAULT_TENANT, [eid]))[eid]["attrs"][EX + "n"][0]["value"] == 1  # not 2
    assert len(await store.changes_since(0)) == 2  # the create and one update


async def test_a_script_run_twice_says_so_and_writes_once(redis_server: RedisServer) -> None:
    """The same script twice, as the retry sends it: 1, then 2 (already applied), and nothing written twice; a
    script of another write that read the same version is refused (0)."""
    redis_server.flush()
    store = open_store(redis_server.url)
    assert isinstance(store, RedisStore)
    await store.open()
    try:
        eid = "urn:resend:twice"
        await store.write(DEFAULT_TENANT, [eid], lambda _: WritePlan({eid: entity(eid, n=0)}))
        read = await store._read_for_write(DEFAULT_TENANT, [eid])
        scripts = []
        for value in (1, 2):
            _, events = store._plan(
                DEFAULT_TENANT, [eid], read.bodies, lambda _, v=value: WritePlan({eid: entity(eid, n=v)})
            )
            scripts.append(store._commit_script(DEFAULT_TENANT, events, read, token="", stamp=store._stamp()))
        assert await store._run(scripts[0]) == 1
        assert await store._run(scripts[0]) == 2
        assert await store._run(scripts[1]) == 0  # a concurrent writer's: planned on what it read, refused
        assert (await store.get(DEFAULT_TENANT, [eid]))[eid]["attrs"][EX + "n"][0]["value"] == 1
        assert len(await store.changes_since(0)) == 2
    finally:
        await store.close()
