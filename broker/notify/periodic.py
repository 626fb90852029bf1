"""Periodic notifications (clause 5.2.12 timeInterval): every timeInterval seconds, one notification with every
entity the subscription selects at that moment, whether or not anything changed.

The clock is the subscription's own delivery state: a notification is due once timeInterval seconds have passed
since lastNotification (or since the subscription was created), so the period holds over restarts and across
processes. Only the process that leads "periodic" sends them, as only one leads the change-feed notifier.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from broker.background import stop_tasks
from broker.core.caller import Caller
from broker.core.linked import linked_entities
from broker.core.model import Entity, now_iso
from broker.core.query import Queries
from broker.core.subscriptions import Compiled, is_live
from broker.guards import OutboundPolicy
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import TermMap
from broker.notify.delivery import RetryPolicy, deliver, endpoint_transports, request_parts
from broker.notify.notification import as_data, render_entity, with_joined
from broker.notify.notifier import compile_record, instant
from broker.notify.outage import Outage
from broker.query import Query
from broker.store.base import Delivery, Store, SubscriptionRecord

log = logging.getLogger("agora.notify")

LEAD = "periodic"


class PeriodicNotifier:
    def __init__(
        self,
        store: Store,
        resolver: ContextResolver,
        retry: RetryPolicy | None = None,
        tick: float = 0.2,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.retry = retry or RetryPolicy()
        self.tick = tick
        self.queries = Queries(store, max_limit=10**9)
        self._transport = endpoint_transports(outbound)
        self._task: asyncio.Task[None] | None = None
        self._sending: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._outage = Outage(store, "periodic notifier")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agora-periodic")

    async def stop(self) -> None:
        await stop_tasks([self._task, *self._sending.values()])
        await self._transport.aclose()

    async def _run(self) -> None:
        while True:
            try:
                if await self.store.try_lead(LEAD):
                    await self.run_due(now_iso())
                self._outage.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed round (a store outage, or a bug) is tried again at the next tick
                self._outage.failed(exc, "a round of periodic notifications")
            await asyncio.sleep(self.tick)

    async def run_due(self, now: str) -> None:
        """Start a notification for every periodic subscription whose period has passed (one at a time each)."""
        for record in await self.store.list_subscriptions():
            key = (record.tenant, record.id)
            if "timeInterval" not in record.body or key in self._sending:
                continue
            compiled = await compile_record(self.resolver, record)
            if compiled is None or not is_live(compiled[0], now) or not _due(record, compiled[0], now):
                continue
            task = asyncio.create_task(self._notify_logged(record, *compiled))
            self._sending[key] = task
            task.add_done_callback(lambda _t, k=key: self._sending.pop(k, None))  # type: ignore[misc]

    async def _shown(self, sub: Compiled, tm: TermMap, entities: list[Entity]) -> list[tuple[dict[str, Any], Entity]]:
        """The selected entities rendered, with what notification.join brings in (clause 4.5.23)."""
        linked: dict[str, Entity] = {}
        if sub.join[0] != "@none":
            linked = await linked_entities(self.store, sub.tenant, entities, sub.join[1])
        return with_joined(sub, tm, [(render_entity(sub, tm, e, linked), e) for e in entities], linked)

    async def _notify_logged(self, record: SubscriptionRecord, sub: Compiled, tm: TermMap) -> None:
        """A failed notification is sent again at the next tick (its lastNotification did not move); its failure is
        logged here, as nothing awaits the task."""
        try:
            await self._notify(record, sub, tm)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._outage.failed(exc, f"the periodic notification of {sub.id}")

    async def _notify(self, record: SubscriptionRecord, sub: Compiled, tm: TermMap) -> None:
        now = now_iso()
        entities = await self.queries.select(Caller(tenant=sub.tenant), _queries(sub))
        body: dict[str, Any] = {
            "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
            "type": "Notification",
            "subscriptionId": sub.id,
            "notifiedAt": now,
            "data": as_data(sub, await self._shown(sub, tm, entities), tm),
        }
        content, headers = request_parts(
            sub.endpoint, body, tm.context_value, tm.link_url or sub.context_url, sub.tenant
        )
        ok = await deliver(self._transport, sub.endpoint, content, headers, self.retry)
        await self.store.record_delivery(sub.tenant, sub.id, Delivery(now, ok))


def _queries(sub: Compiled) -> list[Query]:
    """One entity query per EntitySelector, each with the subscription's q, geoQ and scopeQ."""
    q = sub.query
    return [
        Query(
            types=s.types,
            ids=frozenset({s.id}) if s.id is not None else None,
            id_pattern=s.id_pattern,
            q=q.q,
            geo=q.geo,
            scope=q.scope,
        )
        for s in sub.selectors
    ]


def _due(record: SubscriptionRecord, sub: Compiled, now: str) -> bool:
    last = record.state.get("lastNotification") or sub.created_at
    if not last or sub.time_interval is None:
        return False
    return (instant(now) - instant(str(last))).total_seconds() >= sub.time_interval
