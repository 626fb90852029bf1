"""The notifier: tails the change feed, matches subscriptions, delivers, and moves a durable cursor.

    change feed --(read in seq order)--> match per tenant --> one lane per subscription --> HTTP POST / MQTT publish
                                                                    |
    cursor <--(lowest seq whose every notification is finished)-----+

* At least once: the cursor (Store.set_cursor) only passes a change once every notification it caused was delivered
  or given up after the retries (and recorded as failed). A killed broker restarts from the cursor and sends again
  what was in flight; a redelivery carries the same notification id (notification_id is derived from the change).
* Isolation: each subscription has its own lane (a queue and a task), so a hanging endpoint only holds its own
  lane; lanes deliver concurrently, bounded by a semaphore. A lane delivers in seq order, so notifications for one
  entity reach one endpoint in the order of the writes.
* Bounded memory: at most `max_pending` changes are in flight; reading pauses beyond that.
* One notifier per store: only the process that wins `Store.try_lead` runs it (uvicorn workers share a file, broker
  processes share a Redis); the leader asks again every second and stands down when it lost the lead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx

from broker.background import stop_tasks
from broker.core.access import UNRESTRICTED, Access
from broker.core.linked import linked_entities
from broker.core.model import Entity, now_iso
from broker.core.subscriptions import Compiled, compile_subscription, is_live
from broker.guards import OutboundPolicy
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import TermMap
from broker.notify.delivery import ByScheme, HttpTransport, RetryPolicy, deliver, request_parts
from broker.notify.matching import SubscriptionIndex, fired, trigger_reason
from broker.notify.mqtt import MqttTransport
from broker.notify.notification import build
from broker.notify.outage import OUTAGE_RETRY, Outage
from broker.observe import tracing
from broker.observe.metrics import NOTIFY_QUEUE, notified
from broker.requestid import REQUEST_ID_HEADER
from broker.store.base import Change, Delivery, Store, SubscriptionRecord

log = logging.getLogger("agora.notify")

CURSOR = "notifier"
LEAD_CHECK = 1.0  # seconds between checks that this process still leads
TRIM_EVERY = 1000  # changes finished between two trims of the feed


@dataclass(frozen=True)
class NotifierConfig:
    poll_interval: float = 0.05  # seconds between looks at an idle change feed
    batch: int = 500  # changes read at once
    concurrency: int = 64  # notifications on the wire at once, over all endpoints
    max_pending: int = 10_000  # changes read but not finished
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: The addresses notifications may go to (broker.guards, record 0205).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy.open)


@dataclass(frozen=True)
class Job:
    sub: Compiled
    tm: TermMap
    change: Change
    reason: str
    deleted: frozenset[str]


@dataclass
class _Lane:
    queue: deque[Job] = field(default_factory=deque)
    last_notified: str | None = None  # for throttling; seeded from the stored lastNotification
    busy: bool = False  # a task is draining the queue
    cool_until: float = 0.0  # loop time before which the endpoint is not tried (after a failure)


class Notifier:
    def __init__(
        self,
        store: Store,
        resolver: ContextResolver,
        config: NotifierConfig | None = None,
        client: httpx.AsyncClient | None = None,
        access: Access | None = None,
    ) -> None:
        self.store = store
        self.access = access or Access(store)
        self.resolver = resolver
        self.config = config or NotifierConfig()
        outbound = self.config.outbound
        http = HttpTransport(client, owned=False, max_connections=self.config.concurrency, outbound=outbound)
        mqtt = MqttTransport()
        self._transport = ByScheme({"http": http, "https": http, "mqtt": mqtt, "mqtts": mqtt}, outbound)
        self._sending = asyncio.Semaphore(self.config.concurrency)
        self._task: asyncio.Task[None] | None = None
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._open: OrderedDict[int, int] = OrderedDict()  # seq -> notifications of it not finished yet
        self._floor = 0  # every change up to here is finished
        self._saved: int | None = None  # the floor as last persisted
        self._trimmed = 0  # the feed is trimmed up to here
        self._outcomes: dict[tuple[str, str], list[Delivery]] = {}  # delivered, not yet in the delivery state
        self._progress = asyncio.Event()
        self._compiled: dict[tuple[str, str], tuple[str, Compiled, TermMap]] = {}
        self._index: dict[str, SubscriptionIndex[TermMap]] = {}
        self._index_version: int | None = None  # the store's subscriptions version _index was read at
        self._outage = Outage(store, "notifier")
        self._reading = asyncio.Lock()  # held by a GDPR erasure: no change of what it erases is read meanwhile

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Take the cursor before the broker serves, when this process leads: a subscription and a write made by
        the very first requests are then after it; a follower waits for the lead in the background."""
        if await self.store.try_lead(CURSOR):
            await self._take_cursor()
        self._task = asyncio.create_task(self._run(), name="agora-notifier")

    async def stop(self) -> None:
        """Stop at once: what is in flight is not finished, so the cursor stays before it and it is sent again."""
        await stop_tasks([self._task, *self._lane_tasks])
        with contextlib.suppress(Exception):  # what was delivered still counts in timesSent
            await self._flush_outcomes()
        await self._transport.aclose()

    async def _run(self) -> None:
        while True:
            read = await self._follow()
            await self._lead(read)
            # The lead was lost (a lease that expired while this process could not renew it): another process
            # took over from the durable cursor, so what is in flight here is dropped, not finished twice.
            self._drop_work()

    async def _follow(self) -> int:
        """Wait until this process leads, then take the cursor; the store being unavailable meanwhile must not end
        the task (it would never lead again), so it is waited out."""
        while True:
            try:
                if await self.store.try_lead(CURSOR):
                    return await self._take_cursor()
                self._outage.ok()
                await asyncio.sleep(1.0)  # another process notifies; take over when it goes away
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._outage.failed(exc, "waiting for the lead")
                await asyncio.sleep(OUTAGE_RETRY)

    async def _lead(self, read: int) -> None:
        """Notify until the lead is lost; a lease-based store is asked again every LEAD_CHECK seconds."""
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while True:
            try:
                read = await self._step(read)
                if loop.time() - checked >= LEAD_CHECK:
                    checked = loop.time()
                    if not await self.store.try_lead(CURSOR):
                        log.warning("notifier lead lost; another process notifies now")
                        return
                self._outage.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store outage (or a bug) must not end notification for the process's life
                self._outage.failed(exc, "a look at the change feed")
                await asyncio.sleep(OUTAGE_RETRY)

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Read nothing from the feed meanwhile (a GDPR erasure, record 0322): the deletions it writes would
        otherwise be notified with the entity's last state before the erasure removes them from the feed."""
        async with self._reading:
            yield

    def forget(self, tenant: str, entity_ids: frozenset[str]) -> int:
        """Drop the queued notifications of these entities (a GDPR erasure, record 0322): they were read from the
        feed before the erasure removed their changes; each counts as finished, so the cursor moves on."""
        dropped = 0
        for lane in self._lanes.values():
            kept = deque(j for j in lane.queue if j.change.tenant != tenant or j.change.entity_id not in entity_ids)
            gone = [j for j in lane.queue if j not in kept]
            lane.queue = kept
            for job in gone:
                NOTIFY_QUEUE.dec()
                self._finish(job.change.seq)
            dropped += len(gone)
        return dropped

    def _drop_work(self) -> None:
        self._index_version = None  # read the subscriptions (and seed throttling) again when leading again
        for task in list(self._lane_tasks):
            task.cancel()
        self._lane_tasks.clear()
        NOTIFY_QUEUE.dec(sum(len(lane.queue) for lane in self._lanes.values()))
        self._lanes.clear()
        self._open.clear()

    async def _take_cursor(self) -> int:
        cursor = await self.store.get_cursor(CURSOR)
        if cursor is None:
            # First run on this store: no subscription was ever served by a notifier, history is not news.
            cursor = await self.store.last_seq()
            await self.store.set_cursor(CURSOR, cursor)
        self._floor = self._saved = cursor
        return cursor

    async def _step(self, read: int) -> int:
        """Read one batch after `read`, dispatch it, persist the cursor; the new read position."""
        await self._wait_for_room()
        async with self._reading:
            if not self._open and await self._skip_to(read) > read:
                return self._floor  # nothing could be notified: the feed was passed over without decoding it
            changes = await self.store.changes_since(read, self.config.batch)
            if changes:
                await self._dispatch(changes)
                read = changes[-1].seq
            await self._save_cursor()
        if not changes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), self.config.poll_interval)
            self._progress.clear()
        return read

    async def _skip_to(self, read: int) -> int:
        """With no subscription at all, move the cursor to the end of the feed: decoding every change (two whole
        entity states each) only to match it against nothing cost 7% of a PATCH. The end is read before the
        subscriptions are listed, so a subscription made meanwhile is younger than every change skipped (and
        changes older than a subscription never notify it)."""
        last = await self.store.last_seq()
        if last <= read or await self._subscriptions():
            return read
        self._floor = last
        await self._save_cursor()
        return last

    async def _wait_for_room(self) -> None:
        while len(self._open) >= self.config.max_pending:
            self._progress.clear()
            await self._progress.wait()
            await self._save_cursor()

    async def _flush_outcomes(self) -> None:
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, {}
            await self.store.record_deliveries(outcomes)

    async def _save_cursor(self) -> None:
        await self._flush_outcomes()
        if self._floor != self._saved:
            await self.store.set_cursor(CURSOR, self._floor)
            self._saved = self._floor
            if self._floor - self._trimmed >= TRIM_EVERY:
                # The feed keeps whole entity states: what every notification is finished with is dropped.
                await self.store.trim_changes(self._floor)
                self._trimmed = self._floor

    # -- matching ------------------------------------------------------------------------------------------------
    async def _dispatch(self, changes: list[Change]) -> None:
        subs = await self._subscriptions()
        now = now_iso()
        # Every job of the batch is made before any is queued: if matching failed half-way, the batch is read
        # again and must not have queued anything twice.
        planned = [
            (c.seq, [j for sub, tm in _candidates(subs, c) if (j := _safe_job(sub, tm, c, now))]) for c in changes
        ]
        for seq, jobs in planned:
            self._open[seq] = len(jobs)
            for job in jobs:
                self._enqueue(job)
        self._advance()

    async def _subscriptions(self) -> dict[str, SubscriptionIndex[TermMap]]:
        """Every subscription compiled and indexed, by tenant; read again only when the store's subscriptions
        version moved (listing and decoding them at every look at the feed cost more than the matching), and
        compiled again only when its document changed."""
        version = await self.store.subscriptions_version()
        if version is not None and version == self._index_version:
            return self._index
        by_tenant: dict[str, list[tuple[Compiled, TermMap]]] = {}
        seen = set()
        complete = True
        for record in await self.store.list_subscriptions():
            key = (record.tenant, record.id)
            seen.add(key)
            entry = await self._compile(record)
            if entry is None:
                complete = False  # e.g. its @context is unreachable now: try again at the next look
                continue
            by_tenant.setdefault(record.tenant, []).append(entry)
            self._seed_throttle(key, record)
        for key in set(self._compiled) - seen:
            del self._compiled[key]
        for key in [k for k, lane in self._lanes.items() if k not in seen and not lane.busy]:
            del self._lanes[key]
        self._index = {tenant: SubscriptionIndex(subs) for tenant, subs in by_tenant.items()}
        self._index_version = version if complete else None
        return self._index

    async def _compile(self, record: SubscriptionRecord) -> tuple[Compiled, TermMap] | None:
        key = (record.tenant, record.id)
        version = str(record.body.get("modifiedAt"))
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        compiled = await compile_record(self.resolver, record)
        if compiled is not None:
            self._compiled[key] = (version, *compiled)
        return compiled

    def _seed_throttle(self, key: tuple[str, str], record: SubscriptionRecord) -> None:
        if key not in self._lanes and record.state.get("lastNotification"):
            self._lanes[key] = _Lane(last_notified=record.state["lastNotification"])

    # -- lanes ---------------------------------------------------------------------------------------------------
    def _enqueue(self, job: Job) -> None:
        key = (job.sub.tenant, job.sub.id)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        lane.queue.append(job)
        NOTIFY_QUEUE.inc()
        if not lane.busy:
            lane.busy = True
            task = asyncio.create_task(self._drain(key, lane))
            self._lane_tasks.add(task)
            task.add_done_callback(self._lane_tasks.discard)

    async def _drain(self, key: tuple[str, str], lane: _Lane) -> None:
        """Deliver a lane's jobs one after the other; the task ends when the queue is empty. One notification per
        change, never grouped: a redelivery after a restart must carry the id of the first attempt, and a group
        would depend on what happened to be queued at the time (decision record 0022)."""
        try:
            while lane.queue:
                job = lane.queue.popleft()
                NOTIFY_QUEUE.dec()
                try:
                    await self._process(job, lane)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self.store.is_unavailable(exc):  # not finished: sent once the store is back, in order
                        lane.queue.appendleft(job)
                        NOTIFY_QUEUE.inc()
                        self._outage.failed(exc, f"notification of change {job.change.seq} to {job.sub.id}")
                        await asyncio.sleep(OUTAGE_RETRY)
                        continue
                    # a bug in one notification must not stall the cursor for good
                    log.exception("notification of change %s to %s failed", job.change.seq, job.sub.id)
                self._finish(job.change.seq)
        finally:
            lane.busy = False

    async def _process(self, job: Job, lane: _Lane) -> None:
        now = now_iso()
        current = self._compiled.get((job.sub.tenant, job.sub.id))
        if current is None or not is_live(current[1], now):
            return  # deleted, paused or expired while the notification waited in its lane
        if _throttled(job.sub, lane.last_notified, now):
            return  # dropped: throttling is a minimum period between notifications (decision record 0022)
        seen = await self._as_owner_sees(job)
        if seen is None:
            return  # nothing of the change is the owner's to read (record 0223)
        view = await self.access.view(job.sub.owner) if job.sub.owner is not None else UNRESTRICTED
        linked = None
        if job.sub.join[0] != "@none" and seen.after is not None:
            linked = await linked_entities(self.store, job.sub.tenant, [seen.after], job.sub.join[1], seen_by=view)
        body = build(job.sub, [(seen, job.deleted)], job.reason, job.tm, now, linked)
        content, headers = request_parts(
            job.sub.endpoint, body, job.tm.context_value, job.tm.link_url or job.sub.context_url, job.sub.tenant
        )
        if job.change.request_id is not None:  # the request that made the change (record 0242); MQTT: a property
            headers.setdefault(REQUEST_ID_HEADER, job.change.request_id)
        lane.last_notified = now
        ok = await self._send(job, lane, content, headers)
        notified(job.sub.id, ok)
        # Folded into the delivery state at the next look at the feed, many in one store call (decision 0022).
        self._outcomes.setdefault((job.sub.tenant, job.sub.id), []).append(Delivery(now, ok))

    async def _as_owner_sees(self, job: Job) -> Change | None:
        """The change as the subscription's owner may read it now (its policies at send time), None when the
        owner may read none of it or none of what changed."""
        if job.sub.owner is None:
            return job.change
        view = await self.access.view(job.sub.owner)
        if view.unrestricted:
            return job.change
        before = None if job.change.before is None else view.redact(job.change.before)
        after = None if job.change.after is None else view.redact(job.change.after)
        if before is None and after is None:
            return None
        if before is not None and after is not None and _head(before) == _head(after):
            return None
        return replace(job.change, before=before, after=after)

    async def _send(self, job: Job, lane: _Lane, content: bytes, headers: dict[str, str]) -> bool:
        """Deliver, unless the endpoint failed within its cooldown (clause 5.2.15): then the notification fails at
        once, so that a dead endpoint's lane keeps pace with the feed instead of holding the cursor back."""
        loop = asyncio.get_running_loop()
        if loop.time() < lane.cool_until:
            return False
        async with self._sending:
            if tracing.TRACER is None:
                ok = await deliver(self._transport, job.sub.endpoint, content, headers, self.config.retry)
            else:
                ok = await self._traced_deliver(job, content, headers)
        if not ok:
            cooldown = job.sub.endpoint.cooldown
            lane.cool_until = loop.time() + (self.config.retry.cooldown if cooldown is None else cooldown)
        return ok

    async def _traced_deliver(self, job: Job, content: bytes, headers: dict[str, str]) -> bool:
        """One delivery (with its retries) in a span of its own (record 0246): the notifier is no request's task,
        so the span carries the request id of the change rather than a parent."""
        attributes = {"agora.subscription": job.sub.id, "agora.change_seq": job.change.seq}
        if job.change.request_id is not None:
            attributes["agora.request_id"] = job.change.request_id
        with tracing.TRACER.start_as_current_span("notification", attributes=attributes) as span:
            ok = await deliver(self._transport, job.sub.endpoint, content, headers, self.config.retry)
            span.set_attribute("agora.delivered", ok)
            return ok

    def _finish(self, seq: int) -> None:
        if seq in self._open:
            self._open[seq] -= 1
        self._advance()

    def _advance(self) -> None:
        """Move the floor over every leading change whose notifications are all finished."""
        while self._open:
            seq, remaining = next(iter(self._open.items()))
            if remaining > 0:
                break
            self._open.popitem(last=False)
            self._floor = seq
        self._progress.set()


def job_for(sub: Compiled, tm: TermMap, change: Change, now: str) -> Job | None:
    """The notification one change makes for one subscription, None when it does not fire: the GDPR erasure's
    deletion notices (broker.gdpr.erase) are matched here, as the notifier matches the feed."""
    return _safe_job(sub, tm, change, now)


def _safe_job(sub: Compiled, tm: TermMap, change: Change, now: str) -> Job | None:
    """A bug in evaluating one subscription must not stop the feed for every other one: it is logged and skipped."""
    try:
        return _job(sub, tm, change, now)
    except Exception:
        log.exception("matching change %s against subscription %s failed", change.seq, sub.id)
        return None


def _job(sub: Compiled, tm: TermMap, change: Change, now: str) -> Job | None:
    if change.at < sub.created_at or not is_live(sub, now):
        return None  # the subscription did not exist yet, or is paused or expired
    if sub.paused is not None and sub.paused[0] <= change.at < sub.paused[1]:
        return None  # made while the subscription was paused, read after it was resumed
    triggers = fired(change)
    reason = trigger_reason(sub, change, triggers)
    if reason is None:
        return None
    # entityUpdated is attributeCreated, attributeUpdated and attributeDeleted together (clause 5.2.12): its
    # notifications show the deleted attributes too.
    shows_deletions = not sub.triggers.isdisjoint({"attributeDeleted", "entityUpdated"})
    deleted = triggers.get("attributeDeleted", frozenset()) if shows_deletions else frozenset()
    if sub.watched is not None:
        deleted &= sub.watched
    return Job(sub, tm, change, reason, frozenset(deleted))


def _throttled(sub: Compiled, last: str | None, now: str) -> bool:
    if sub.throttling is None or last is None:
        return False
    return (instant(now) - instant(last)).total_seconds() < sub.throttling


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def compile_record(resolver: ContextResolver, record: SubscriptionRecord) -> tuple[Compiled, TermMap] | None:
    """A stored subscription compiled, with the term map its notifications are written in; None (logged) when
    that cannot be done: it compiled when it was stored, so only an unavailable @context gets here."""
    try:
        source = await resolver.resolve(record.body.get("@context"))
        sub = compile_subscription(record.tenant, record.body, source)
        return sub, await resolver.resolve(sub.context)
    except Exception:
        log.exception("subscription %s cannot be compiled; skipped", record.id)
        return None


def _candidates(indexes: dict[str, SubscriptionIndex[TermMap]], change: Change) -> list[tuple[Compiled, TermMap]]:
    index = indexes.get(change.tenant)
    return index.candidates(change) if index is not None else []


def _head(entity: Entity) -> tuple[Any, Any, Any]:
    """What a notification can show of an entity, system times aside."""
    return entity["type"], entity.get("scope"), entity["attrs"]
