"""Batched, acknowledged writes of live updates to an NGSI-LD broker (record 0380).

Messages queue up while a write is in flight, and the next write takes all of them (up to ``batch_size``): one
request at low rates, large batches at high ones. A batch is written with batch upsert
(``POST /entityOperations/upsert?options=update``, clause 5.6.8), each attribute carrying its observedAt, so the
broker records every value as a temporal instance (record 0070). One upsert records one instance per attribute
and entity, so a batch holding several values of one attribute is split into rounds (:func:`rounds`), each
holding at most one value of each attribute of an entity, written in order.

A message is acknowledged (its ``ack`` called, in the order of arrival) only after the broker accepted the
writes of its batch: an unreachable broker, a 5xx or a 429 is retried with backoff, and the batch waits. An
update the broker refuses as such (a 207 error, a 4xx) is counted and logged: resending it would fail again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson

from adapters.live.mapping import Update
from adapters.telemetry import _instant, history_window, instants_in

log = logging.getLogger("agora.ingest")
API = "/ngsi-ld/v1"
RETRY_FIRST, RETRY_MAX = 0.05, 2.0  # seconds of backoff while the broker cannot take a write
WARN_EVERY = 5.0  # seconds between two warnings of the same outage
IDS_PER_QUERY = 100  # entity ids per temporal query of redelivered values (keeps the URL short)


@dataclass
class Item:
    """One message: its updates, and how to acknowledge it to its source once they are written."""

    updates: list[Update]
    ack: Callable[[], None] | None = None
    redelivered: bool = False  # MQTT DUP: it may have been written before its acknowledgement was lost


@dataclass
class Stats:
    received: int = 0  # messages taken from the source
    handled: int = 0  # messages written (or refused, malformed, unmatched) and acknowledged
    written: int = 0  # attribute instances the broker accepted
    malformed: Counter[str] = field(default_factory=Counter)  # format -> payloads that could not be read
    untranslated: Counter[str] = field(default_factory=Counter)  # "format kind" -> values left out (Bytes)
    unmatched: int = 0  # messages on a topic no rule matches
    skipped: int = 0  # readings of unprovisioned devices or unmapped keys (autoProvision false)
    refused: int = 0  # entity updates the broker refused
    retries: int = 0  # writes tried again because the broker could not take them
    already: int = 0  # values of redelivered messages the history held already (not written again)
    requests: int = 0
    started: float = field(default_factory=time.monotonic)

    def rows(self) -> list[tuple[str, int]]:
        return [("messages received", self.received), ("messages handled", self.handled),
                ("attribute instances written", self.written),
                *((f"malformed {fmt}", n) for fmt, n in sorted(self.malformed.items())),
                *((f"{kind} values not translated", n) for kind, n in sorted(self.untranslated.items())),
                ("unmatched topics", self.unmatched), ("readings skipped (unprovisioned)", self.skipped),
                ("updates refused by the broker", self.refused), ("writes retried", self.retries),
                ("redelivered values already recorded", self.already),
                ("upsert requests", self.requests)]  # fmt: skip


class Retry(Exception):
    """The broker could not take the write now."""


def rounds(updates: Iterable[Update]) -> list[list[dict[str, Any]]]:
    """Entity fragments in rounds: a value goes to the round after the last one holding the same attribute of the
    same entity, so every value is a separate write of that attribute, in the order of arrival."""
    out: list[dict[str, dict[str, Any]]] = []
    last: dict[tuple[str, str], int] = {}
    for update in updates:
        position = max((last.get((update.entity_id, name), -1) + 1 for name in update.attrs), default=0)
        while len(out) <= position:
            out.append({})
        fragment = out[position].setdefault(update.entity_id, {"id": update.entity_id, "type": update.entity_type})
        fragment.update(update.attrs)
        for name in update.attrs:
            last[(update.entity_id, name)] = position
    return [list(r.values()) for r in out]


class Writer:
    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], stats: Stats, batch_size: int = 1000,
                 parallel: int = 1) -> None:  # fmt: skip
        self.client = client
        self.parallel = max(1, parallel)
        self.warned = -WARN_EVERY
        self.headers = {"Content-Type": "application/json", **headers}
        self.stats = stats
        self.batch_size = batch_size

    async def upsert(self, fragments: list[dict[str, Any]]) -> None:
        """One batch upsert; :class:`Retry` when the broker cannot take it now."""
        try:
            response = await self.client.post(f"{API}/entityOperations/upsert", params={"options": "update"},
                                              content=orjson.dumps(fragments), headers=self.headers)  # fmt: skip
        except httpx.TransportError as exc:
            raise Retry(str(exc) or type(exc).__name__) from exc  # httpx's ReadError may say nothing
        self.stats.requests += 1
        if response.status_code >= 500 or response.status_code == 429:
            raise Retry(f"HTTP {response.status_code}")
        instances = sum(len(f) - 2 for f in fragments)
        if response.status_code in (201, 204):
            self.stats.written += instances
            return
        if response.status_code == 207:
            errors = response.json().get("errors", [])
            refused = {e.get("entityId") for e in errors}
            self.stats.written += sum(len(f) - 2 for f in fragments if f["id"] not in refused)
            self._refused(len(refused), errors)
            return
        self._refused(len(fragments), [{"error": _detail(response)}])

    def _refused(self, count: int, errors: list[Any]) -> None:
        self.stats.refused += count
        for error in errors[:5]:
            log.warning("the broker refused an update: %s", error)

    async def write(self, updates: list[Update]) -> None:
        """Every update, the entities spread over ``parallel`` concurrent requests (a broker commits concurrent
        writes together: SQLite group commit, record 0008); each entity's rounds stay in order in its share."""
        shares: list[list[Update]] = [[] for _ in range(self.parallel)]
        for update in updates:
            shares[hash(update.entity_id) % self.parallel].append(update)
        await asyncio.gather(*(self._write_share(share) for share in shares if share))

    async def _write_share(self, updates: list[Update]) -> None:
        """The rounds of ``updates`` in order; a round the broker cannot take is retried until it can."""
        delay = RETRY_FIRST
        for fragments in rounds(updates):
            while True:
                try:
                    await self.upsert(fragments)
                    break
                except Retry as exc:
                    self.stats.retries += 1
                    if time.monotonic() - self.warned >= WARN_EVERY:  # one line per outage interval, not per try
                        self.warned = time.monotonic()
                        log.warning("the broker cannot take writes (%s); retrying, nothing acknowledged", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)

    async def run(self, queue: asyncio.Queue[Item | None], limit: int | None = None) -> None:
        """Write what ``queue`` brings until it brings None (or ``limit`` messages were handled)."""
        while limit is None or self.stats.handled < limit:
            first = await queue.get()
            if first is None:
                return
            batch = [first]
            payloads = len(first.updates)
            while payloads < self.batch_size and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    queue.put_nowait(None)  # seen again after this batch
                    break
                batch.append(item)
                payloads += len(item.updates)
            updates = [u for item in batch for u in item.updates]
            if any(item.redelivered for item in batch):
                updates = await self.not_recorded(updates, [u for item in batch if item.redelivered
                                                            for u in item.updates])  # fmt: skip
            await self.write(updates)
            for item in batch:
                if item.ack is not None:
                    item.ack()
            self.stats.handled += len(batch)


    async def not_recorded(self, updates: list[Update], redelivered: list[Update]) -> list[Update]:
        """``updates`` without the values of redelivered messages that the entity's history already holds (same
        attribute and observedAt): a message written before the ingester stopped, but not acknowledged, is
        delivered again and is not recorded twice (at least once, and no duplicate in the history)."""
        recorded: set[tuple[str, str, datetime]] = set()
        window: dict[str, list[dict[str, Any]]] = {}  # every value of every entity: one time window for all
        for update in redelivered:
            for name, attr in update.attrs.items():
                window.setdefault(name, []).append(attr)
        params: dict[str, Any] | None = history_window(window)
        ids = sorted({u.entity_id for u in redelivered})
        for part in (ids[i:i + IDS_PER_QUERY] for i in range(0, len(ids), IDS_PER_QUERY)):
            if params is None:
                break
            query = {**params, "id": ",".join(part), "limit": len(part)}  # a temporal query by ids (5.7.4)
            try:
                response = await self.client.get(f"{API}/temporal/entities", params=query, headers=self.headers)
            except httpx.TransportError:
                return updates  # cannot tell: written again, as at least once allows
            if response.status_code in (200, 206) and isinstance(response.json(), list):
                attributes = params["attrs"].split(",")
                for entity in response.json():
                    recorded |= {(entity.get("id"), n, m) for n, m in instants_in(entity, attributes)}
        if not recorded:
            return updates
        kept = []
        wanted = {id(u) for u in redelivered}
        for update in updates:
            attrs = update.attrs if id(update) not in wanted else {
                n: a for n, a in update.attrs.items()
                if (update.entity_id, n, _instant(a.get("observedAt"))) not in recorded}  # fmt: skip
            if attrs:
                kept.append(update if attrs is update.attrs else Update(update.entity_id, update.entity_type, attrs))
        self.stats.already += sum(len(u.attrs) for u in updates) - sum(len(u.attrs) for u in kept)
        return kept


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code}: {body.get('detail') or body.get('title') if isinstance(body, dict) else body}"
