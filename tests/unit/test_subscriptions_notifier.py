"""The notifier's cursor and lanes (broker.notify.notifier) over a memory store, with endpoints simulated by an
httpx mock transport: when the cursor may move, what a restart sends again, and isolation of a hanging lane.
(The end-to-end tests do the same against a real receiver and a killed broker.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from broker.core.caller import Caller
from broker.core.entities import Entities
from broker.core.subscriptions import Subscriptions
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import core_termmap
from broker.notify.delivery import RetryPolicy
from broker.notify.notification import notification_id
from broker.notify.notifier import CURSOR, Notifier, NotifierConfig
from broker.store.memory import MemoryStore

pytestmark = pytest.mark.asyncio
CALLER = Caller()
CONFIG = NotifierConfig(poll_interval=0.01, retry=RetryPolicy(timeout=5, attempts=2, backoff=0.01))

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Endpoints:
    """Answers by path: /ok records and answers 204, /fail answers 500, /hang waits until released."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/hang"):
            await self.release.wait()
        self.got.append((path, orjson.loads(request.content)))
        return httpx.Response(500 if path.startswith("/fail") else 204)

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.got if p == path]


async def subscribe(store: MemoryStore, path: str) -> str:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://r" + path}},
    }
    return await Subscriptions(store).create(CALLER, core_termmap(), body, None)


async def write(store: MemoryStore, n: int) -> None:
    body = {"id": f"urn:ngsi-ld:Vehicle:{n}", "type": "Vehicle", "speed": {"type": "Property", "value": n}}
    await Entities(store).create(CALLER, core_termmap(), body)


def notifier(store: MemoryStore, endpoints: Endpoints) -> Notifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(endpoints))
    return Notifier(store, ContextResolver(), CONFIG, client)


async def eventually(check: Callable[[], Any], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await _call(check):
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def _call(check: Callable[[], Any]) -> Any:
    result = check()
    return await result if asyncio.iscoroutine(result) else result


async def test_first_run_starts_at_the_end_of_the_feed() -> None:
    store, endpoints = MemoryStore(), Endpoints()
    await subscribe(store, "/ok")
    await write(store, 1)  # before any notifier ran: history, not news
    n = notifier(store, endpoints)
    await n.start()
    await eventually(lambda: _has_cursor(store))
    await write(store, 2)
    await eventually(lambda: len(endpoints.at("/ok")) == 1)
    await eventually(lambda: _cursor_is(store, 2))
    await n.stop()
    assert endpoints.at("/ok")[0]["data"][0]["id"] == "urn:ngsi-ld:Vehicle:2"


async def test_failed_delivery_is_given_up_recorded_and_passed() -> None:
    store, endpoints = MemoryStore(), Endpoints()
    sub_id = await subscribe(store, "/fail")
    n = notifier(store, endpoints)
    await n.start()
    await eventually(lambda: _has_cursor(store))
    await write(store, 1)
    await eventually(lambda: _cursor_is(store, 1))
    await n.stop()
    assert len(endpoints.at("/fail")) == 2  # the attempts
    record = await store.get_subscription("", sub_id)
    assert record is not None and record.state["status"] == "failed" and record.state["timesFailed"] == 1


async def test_a_hanging_lane_holds_the_cursor_not_the_other_lanes() -> None:
    store, endpoints = MemoryStore(), Endpoints()
    await subscribe(store, "/hang")
    await subscribe(store, "/ok")
    n = notifier(store, endpoints)
    await n.start()
    await eventually(lambda: _has_cursor(store))
    for i in range(1, 4):
        await write(store, i)
    await eventually(lambda: len(endpoints.at("/ok")) == 3)
    await asyncio.sleep(0.05)
    assert await store.get_cursor(CURSOR) == 0  # change 1 is still in flight to /hang
    endpoints.release.set()
    await eventually(lambda: _cursor_is(store, 3))
    await n.stop()
    assert [b["data"][0]["speed"]["value"] for b in endpoints.at("/hang")] == [1, 2, 3]


async def test_a_restart_sends_again_what_was_in_flight_with_the_same_ids() -> None:
    store, endpoints = MemoryStore(), Endpoints()
    sub_id = await subscribe(store, "/hang")
    first = notifier(store, endpoints)
    await first.start()
    await eventually(lambda: _has_cursor(store))
    for i in range(1, 3):
        await write(store, i)
    await asyncio.sleep(0.05)
    await first.stop()  # as good as a crash: nothing finished
    assert await store.get_cursor(CURSOR) == 0
    endpoints.release.set()
    second = notifier(store, endpoints)
    await second.start()
    await eventually(lambda: _cursor_is(store, 2))
    await second.stop()
    ids = [b["id"] for b in endpoints.at("/hang")]
    assert ids == [notification_id("", sub_id, 1), notification_id("", sub_id, 2)]


async def _cursor_is(store: MemoryStore, seq: int) -> bool:
    return await store.get_cursor(CURSOR) == seq


async def _has_cursor(store: MemoryStore) -> bool:
    return await store.get_cursor(CURSOR) is not None


async def test_after_a_failure_the_endpoint_rests_for_its_cooldown() -> None:
    store, endpoints = MemoryStore(), Endpoints()
    sub_id = await subscribe(store, "/fail")
    n = notifier(store, endpoints)  # default cooldown: 10 s
    await n.start()
    await eventually(lambda: _has_cursor(store))
    for i in range(1, 6):
        await write(store, i)
    await eventually(lambda: _cursor_is(store, 5))  # the lane keeps pace: nothing waits for the dead endpoint
    await n.stop()
    assert len(endpoints.at("/fail")) == 2  # only the first notification was tried (twice)
    record = await store.get_subscription("", sub_id)
    assert record is not None and record.state["timesFailed"] == 5 and record.state["timesSent"] == 5


async def test_endpoint_cooldown_overrides_the_default() -> None:
    store, endpoints = MemoryStore(), Endpoints()
    body = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://r/fail", "cooldown": 0}},
    }
    await Subscriptions(store).create(CALLER, core_termmap(), body, None)
    n = notifier(store, endpoints)
    await n.start()
    await eventually(lambda: _has_cursor(store))
    for i in range(1, 4):
        await write(store, i)
    await eventually(lambda: _cursor_is(store, 3))
    await n.stop()
    assert len(endpoints.at("/fail")) == 6  # no rest: every notification tried twice
