"""What `agora ingest mqtt|opcua|modbus` share: the broker connection, provisioning, the writer, the summary."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from adapters.importer import LINK_REL, ImportFailed, host_context, project_context
from adapters.live.mapping import IngestMapping, Update
from adapters.live.writer import Item, Stats, Writer

log = logging.getLogger("agora.ingest")
CONTEXT_WAIT = 60.0  # seconds to wait for the broker at start-up


@dataclass(frozen=True)
class BrokerOptions:
    url: str
    tenant: str | None = None
    context: str | None = None
    batch_size: int = 1000
    timeout: float = 30.0
    parallel: int = 4  # concurrent upsert requests per batch


# A source: started with the queue to fill and the stats to count in; returns a coroutine to stop it.
Source = Callable[[asyncio.Queue[Item | None], Stats], Awaitable[Callable[[], Awaitable[None]]]]


def _context_url(options: BrokerOptions) -> str:
    """The @context of the writes: the given one, else the project context hosted by the broker (waiting for the
    broker to answer, so that an ingester may start before it)."""
    if options.context:
        return options.context
    deadline = time.monotonic() + CONTEXT_WAIT
    headers = {"NGSILD-Tenant": options.tenant} if options.tenant else {}
    while True:
        try:
            with httpx.Client(base_url=options.url, timeout=options.timeout, headers=headers) as client:
                return host_context(client, project_context())
        except (httpx.TransportError, ImportFailed) as exc:
            if time.monotonic() > deadline:
                raise ImportFailed(f"cannot host the project @context at {options.url}: {exc}") from exc
            time.sleep(0.5)


def provisioned_updates(mapping: IngestMapping) -> list[Update]:
    """The listed devices' entities with their static attributes (upserted at start-up)."""
    out = []
    for rule in mapping.rules:
        for entity in rule.provisioned():
            attrs = {k: v for k, v in entity.items() if k not in ("id", "type")}
            out.append(Update(entity["id"], entity["type"], attrs))
    return out


async def ingest(mapping: IngestMapping, broker: BrokerOptions, source: Source, *, count: int | None = None,
                 stats: Stats | None = None, stop: asyncio.Event | None = None,
                 stats_every: float = 0) -> Stats:  # fmt: skip
    """Run ``source`` into the broker until ``count`` messages were handled, ``stop`` is set, or SIGINT/SIGTERM;
    with ``stats_every``, the counts so far are logged every that many seconds."""
    stats = stats or Stats()
    context = await asyncio.to_thread(_context_url, broker)
    headers = {"Link": f"<{context}>; {LINK_REL}"}
    if broker.tenant:
        headers["NGSILD-Tenant"] = broker.tenant
    limits = httpx.Limits(max_connections=broker.parallel)
    async with httpx.AsyncClient(base_url=broker.url, timeout=broker.timeout, limits=limits) as client:
        writer = Writer(client, headers, stats, broker.batch_size, broker.parallel)
        await writer.write(provisioned_updates(mapping))
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        stopper = await source(queue, stats)
        stop = stop or asyncio.Event()
        _on_signals(stop)
        task = asyncio.create_task(writer.run(queue, count))
        waiter = asyncio.create_task(stop.wait())
        ticker = asyncio.create_task(_log_counts(stats, stats_every))
        stopped = False
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                queue.put_nowait(None)  # what was received is written (and acknowledged) first
                await task
                stopped = True
                await stopper()
                # then what the source still read while it stopped (a poll or a data change behind the None):
                # no value the ingester took is dropped on a clean stop (record 0384)
                queue.put_nowait(None)
                await writer.run(queue)
        finally:
            waiter.cancel()
            ticker.cancel()
            if not stopped:
                await stopper()
    return stats


class Outage:
    """The log of a field server's outage: one warning when it goes away (then one every ``WARN_EVERY`` seconds,
    not one per attempt), one line when it is back."""

    WARN_EVERY = 30.0

    def __init__(self, server: str, then: str) -> None:
        self.server = server
        self.then = then  # what the ingester does about it
        self.since: float | None = None
        self.warned = 0.0

    def failed(self, why: str) -> None:
        now = time.monotonic()
        if self.since is None or now - self.warned >= self.WARN_EVERY:
            log.warning("%s: %s; %s", self.server, why, self.then)
            self.warned = now
        if self.since is None:
            self.since = now

    def over(self) -> None:
        if self.since is not None:
            log.info("%s answers again (after %.1f s)", self.server, time.monotonic() - self.since)
            self.since = None


def counts_line(stats: Stats, handled_before: int, seconds: float) -> str:
    """One log line of the counts so far. A live stream has no end to measure a bar against: what an operator
    watches is whether messages arrive, reach the broker, are refused, or pile up (pending: received, not yet
    written and acknowledged, e.g. while the broker is down)."""
    rejected = sum(stats.malformed.values()) + stats.refused
    rate = (stats.handled - handled_before) / max(seconds, 1e-9)
    line = (f"received {stats.received} messages, handled {stats.handled} ({rate:,.0f}/s), written "
            f"{stats.written} attribute instances, rejected {rejected} (malformed {sum(stats.malformed.values())}, "
            f"refused {stats.refused}), pending {stats.received - stats.handled}")  # fmt: skip
    return line + (f", writes retried {stats.retries}" if stats.retries else "")


async def _log_counts(stats: Stats, every: float) -> None:
    handled = stats.handled
    while every > 0:
        await asyncio.sleep(every)
        log.info("%s", counts_line(stats, handled, every))
        handled = stats.handled


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)


def print_summary(stats: Stats) -> None:
    elapsed = max(time.monotonic() - stats.started, 1e-9)
    print(f"ingested for {elapsed:.1f} s, {stats.handled / elapsed:,.0f} messages/s", file=sys.stderr)
    for label, value in stats.rows():
        print(f"  {label:<36} {value}", file=sys.stderr)
