"""`agora ingest opcua`: data changes of OPC UA nodes (asyncua subscriptions) into attribute updates (record 0380).

A point of an ``opcua`` rule names a node (``{node: "ns=2;s=Pump1.Pressure", device: pump-1, key: pressure}``);
each data change becomes a reading stamped with the value's SourceTimestamp (else its ServerTimestamp, else the
arrival time). A value whose StatusCode is not Good is counted and not written. A lost connection is opened
again (after 0.25 s, backing off to 5 s) and the subscription made anew: the server then sends each node's current
value, and the changes from there on (record 0384).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaError

from adapters.live.mapping import IngestMapping, MappingError, Reading, Rule
from adapters.live.payloads import iso_ms
from adapters.live.run import Outage, Source
from adapters.live.writer import Item, Stats

log = logging.getLogger("agora.ingest")
CHECK_EVERY = 0.25  # seconds between two checks of the connection (a local look at the client's state)
RECONNECT_FIRST, RECONNECT_MAX = 0.25, 5.0  # seconds before the next connection attempt, doubling


def _stamp(data: Any) -> str:
    value = data.monitored_item.Value
    moment = value.SourceTimestamp or value.ServerTimestamp
    if moment is None:
        return iso_ms(time.time() * 1000)
    if moment.tzinfo is None:  # asyncua gives naive UTC datetimes
        moment = moment.replace(tzinfo=UTC)
    return iso_ms(moment.timestamp() * 1000)


class Handler:
    """asyncua's data change callback: each change of a mapped node becomes a queue item."""

    def __init__(self, points: dict[str, tuple[Rule, dict[str, Any]]], queue: asyncio.Queue[Item | None],
                 stats: Stats) -> None:  # fmt: skip
        self.points = points
        self.queue = queue
        self.stats = stats

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.stats.received += 1
        rule, point = self.points[node.nodeid.to_string()]
        status = data.monitored_item.Value.StatusCode
        if status is not None and not status.is_good():
            self.stats.malformed["opcua"] += 1
            log.warning("OPC UA node %s reported %s", point["node"], status.name)
            self.queue.put_nowait(Item([]))
            return
        if isinstance(val, datetime):
            val = iso_ms((val if val.tzinfo else val.replace(tzinfo=UTC)).timestamp() * 1000)
        stamp = _stamp(data)
        updates, skipped = rule.updates([Reading(str(point["device"]), str(point["key"]), val, stamp)], {}, stamp)
        self.stats.skipped += skipped
        self.queue.put_nowait(Item(updates))

    def status_change_notification(self, status: Any) -> None:
        code = getattr(status, "Status", status)
        log.warning("OPC UA subscription status: %s", getattr(code, "name", code))


async def _session(server: str, handler: Handler, interval: float, outage: Outage) -> None:
    """One connection: subscribe to every point, then wait until the connection is lost."""
    async with Client(url=server) as client:
        subscription = await client.create_subscription(interval, handler)
        nodes = [client.get_node(node) for node in handler.points]
        results = await subscription.subscribe_data_change(nodes)
        for node, result in zip(handler.points, results if isinstance(results, list) else [results], strict=True):
            if isinstance(result, ua.StatusCode):
                log.warning("cannot subscribe to OPC UA node %s: %s", node, result.name)
        log.info("subscribed to %d OPC UA nodes on %s", len(nodes), server)
        outage.over()
        while True:
            await asyncio.sleep(CHECK_EVERY)
            await client.check_connection()


def opcua_source(server: str, mapping: IngestMapping, interval: float) -> Source:
    rules = mapping.for_source("opcua")
    if not rules:
        raise ValueError("the mapping has no opcua rule")
    try:
        points = {ua.NodeId.from_string(str(p["node"])).to_string(): (rule, p) for rule in rules for p in rule.points}
    except (ValueError, UaError) as exc:
        raise MappingError(f"an opcua point's node is not an OPC UA NodeId: {exc}") from exc

    async def start(queue: asyncio.Queue[Item | None], stats: Stats) -> Callable[[], Awaitable[None]]:
        handler = Handler(points, queue, stats)

        outage = Outage(f"the OPC UA server at {server}", "connecting again")

        async def loop() -> None:
            delay = RECONNECT_FIRST
            while True:
                try:
                    await _session(server, handler, interval, outage)
                except (TimeoutError, OSError, UaError) as exc:
                    if outage.since is None:
                        delay = RECONNECT_FIRST  # it had been up: the first attempt comes soon
                    outage.failed(f"connection lost or refused ({exc})")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)

        task = asyncio.create_task(loop())

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop

    return start
