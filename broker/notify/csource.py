"""The csource notifier: CsourceNotifications (clauses 5.11.7, 5.3.2) of context source registration subscriptions.

    registration change feed --(seq order)--> match each change's before and after --> triggerReason --> deliver
                                                                                                    |
    cursor "csource" <--(after every notification of the batch was delivered or given up)----------+

* At least once: a registration and its change are committed together (broker.store.registration_records); the
  cursor passes a batch only once all its notifications were finished, so a killed broker sends again what was in
  flight, with the same notification id (decision record 0172).
* triggerReason (clause 5.3.3): a change whose new state matches and old one did not (or a creation) is
  newlyMatching; both match, updated; only the old one, noLongerMatching (an update, a deletion, an expiry).
* The initial notification (clauses 5.11.2.4, 5.11.3.4): every registration matching a subscription when it was
  created or updated, owed until the delivery state's `initial` names the document's modifiedAt, so it survives a
  restart too. Changes up to the registrations version it was listed at are then not notified again.
* Periodic subscriptions (timeInterval) get all matching registrations every period and nothing on changes.
* Expiry: an expired registration is gone (record 0166); the leader deletes it, which is a change like any other
  (noLongerMatching to those it matched, record 0173).
* Delivery is the entity notifier's (broker.notify.delivery): HTTP or MQTT by scheme, timeout, retries with
  backoff; outcomes recorded as timesSent, lastNotification, lastSuccess, lastFailure, status.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from broker.background import stop_tasks
from broker.core.csource_subscriptions import NOTIFICATION_TYPE, CsourceMatch, compile_csource, matches, notified
from broker.core.model import now_iso
from broker.core.registrations import compile_registration
from broker.core.registrations import is_live as registration_live
from broker.core.subscriptions import is_live
from broker.guards import OutboundPolicy
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import TermMap
from broker.notify.delivery import RetryPolicy, deliver, endpoint_transports, request_parts
from broker.notify.notification import notification_id
from broker.notify.notifier import instant
from broker.notify.outage import OUTAGE_RETRY, Outage
from broker.observe import metrics
from broker.store.base import Delivery, RegistrationChange, RegistrationRecord, Store, SubscriptionRecord

log = logging.getLogger("agora.notify")

CURSOR: Final = "csource"
BATCH: Final = 200
SWEEP_EVERY: Final = 1.0  # seconds between looks for expired registrations


@dataclass(frozen=True)
class Sub:
    """A stored subscription compiled: what it matches, and the term map its notifications are written in."""

    record: SubscriptionRecord
    match: CsourceMatch
    tm: TermMap

    @property
    def key(self) -> tuple[str, str]:
        return (self.record.tenant, self.record.id)


@dataclass(frozen=True)
class Job:
    sub: Sub
    data: list[dict[str, Any]]
    reason: str
    notification_id: str
    initial: str | None = None  # the modifiedAt whose initial notification this is


def trigger_reason(match: CsourceMatch, change: RegistrationChange) -> str | None:
    """Clause 5.3.3, from the registration's states before and after the change; None when it concerns neither."""
    was = change.before is not None and matches(match, compile_registration(change.tenant, change.before))
    now = change.after is not None and matches(match, compile_registration(change.tenant, change.after))
    if now:
        return "updated" if was else "newlyMatching"
    return "noLongerMatching" if was else None


class CsourceNotifier:
    def __init__(
        self,
        store: Store,
        resolver: ContextResolver,
        retry: RetryPolicy | None = None,
        poll: float = 0.1,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.retry = retry or RetryPolicy()
        self.poll = poll
        self._transport = endpoint_transports(outbound)
        self._task: asyncio.Task[None] | None = None
        self._compiled: dict[tuple[str, str], tuple[str, Sub]] = {}
        self._listed: dict[tuple[str, str], int] = {}  # the registrations version an initial listing was made at
        self._last: dict[tuple[str, str], str] = {}  # last notification, for throttling
        self._next_periodic: dict[tuple[str, str], float] = {}
        self._swept = 0.0
        self._outage = Outage(store, "csource notifier")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agora-csource-notifier")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        await self._transport.aclose()

    async def _run(self) -> None:
        while True:
            try:
                if await self.store.try_lead(CURSOR):
                    await self.step()
                self._outage.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store outage (or a bug) must not end notification for the process's life
                self._outage.failed(exc, "a look at the registration change feed")
                await asyncio.sleep(OUTAGE_RETRY)
            await asyncio.sleep(self.poll)

    async def step(self) -> None:
        """One round: expired registrations deleted, initial and periodic notifications owed, then one batch of
        the change feed; the cursor moves once everything of the batch is finished."""
        subs = await self._subscriptions()
        if time.monotonic() - self._swept >= SWEEP_EVERY:
            await self._sweep()
        cursor = await self.store.get_cursor(CURSOR)
        if cursor is None:  # first run on this store: earlier changes notified no one, they are not news
            cursor = await self.store.registrations_version()
            await self.store.set_cursor(CURSOR, cursor)
        now = now_iso()
        live = [s for s in subs if is_live(s.match.sub, now)]
        jobs = await self._initial_jobs(live, now)
        changes = await self.store.registration_changes_since(cursor, BATCH)
        jobs += [job for change in changes for job in self._change_jobs(live, change)]
        await self._send_all(jobs)
        if changes:
            await self.store.set_cursor(CURSOR, changes[-1].seq)
            await self.store.trim_registration_changes(changes[-1].seq)

    # -- subscriptions --------------------------------------------------------------------------------------------
    async def _subscriptions(self) -> list[Sub]:
        subs = []
        seen = set()
        for record in await self.store.list_csource_subscriptions():
            key = (record.tenant, record.id)
            seen.add(key)
            sub = await self._compile(record)
            if sub is not None:
                subs.append(sub)
                if key not in self._last and record.state.get("lastNotification"):
                    self._last[key] = str(record.state["lastNotification"])
        for cache in (self._compiled, self._listed, self._last, self._next_periodic):
            for key in set(cache) - seen:
                del cache[key]
        return subs

    async def _compile(self, record: SubscriptionRecord) -> Sub | None:
        key = (record.tenant, record.id)
        version = str(record.body.get("modifiedAt"))
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == version:
            return Sub(record, cached[1].match, cached[1].tm)
        try:
            source = await self.resolver.resolve(record.body.get("@context"))
            match = compile_csource(record.body, source, record.tenant)
            sub = Sub(record, match, await self.resolver.resolve(match.sub.context))
        except Exception:  # it compiled when it was stored: only an unavailable @context gets here
            log.exception("context source subscription %s cannot be compiled; skipped", record.id)
            return None
        self._compiled[key] = (version, sub)
        return sub

    # -- what is owed ---------------------------------------------------------------------------------------------
    async def _live_registrations(self, tenant: str) -> list[RegistrationRecord]:
        stamp = now_iso()
        found = []
        for record in await self.store.list_registrations(tenant):
            if is_live_registration(record, stamp):
                found.append(record)
        return found

    async def _all_matching(self, sub: Sub) -> list[dict[str, Any]]:
        return [
            notified(sub.match, r, sub.tm, filtered=True)
            for r in await self._live_registrations(sub.record.tenant)
            if matches(sub.match, compile_registration(r.tenant, r.body))
        ]

    async def _initial_jobs(self, live: list[Sub], now: str) -> list[Job]:
        jobs = []
        for sub in live:
            modified = str(sub.record.body.get("modifiedAt"))
            key = sub.key
            if sub.record.state.get("initial") != modified:
                version = await self.store.registrations_version()
                data = await self._all_matching(sub)
                self._listed[key] = version
                nid = notification_id(key[0], key[1], f"csource-initial:{modified}")
                if data:
                    jobs.append(Job(sub, data, "newlyMatching", nid, initial=modified))
                else:  # nothing to tell (clause 5.8.6: no notification without data); the debt is settled
                    await self.store.record_csource_delivery(key[0], key[1], None, modified)
            elif sub.match.sub.time_interval is not None and self._periodic_due(sub, now):
                data = await self._all_matching(sub)
                self._next_periodic[key] = time.monotonic() + sub.match.sub.time_interval
                if data:
                    nid = f"urn:ngsi-ld:Notification:{uuid.uuid4()}"
                    jobs.append(Job(sub, data, "newlyMatching", nid))
        return jobs

    def _periodic_due(self, sub: Sub, now: str) -> bool:
        interval = sub.match.sub.time_interval
        assert interval is not None
        if time.monotonic() < self._next_periodic.get(sub.key, 0.0):
            return False
        last = sub.record.state.get("lastNotification") or sub.match.sub.created_at
        return (instant(now) - instant(str(last))).total_seconds() >= interval

    def _change_jobs(self, live: list[Sub], change: RegistrationChange) -> list[Job]:
        jobs = []
        for sub in live:
            compiled = sub.match.sub
            if sub.record.tenant != change.tenant or compiled.time_interval is not None:
                continue
            if change.at < compiled.created_at or change.seq <= self._listed.get(sub.key, 0):
                continue  # before the subscription, or already in its initial notification
            if compiled.paused is not None and compiled.paused[0] <= change.at < compiled.paused[1]:
                continue
            try:
                reason = trigger_reason(sub.match, change)
            except Exception:
                log.exception("matching registration change %s against %s failed", change.seq, compiled.id)
                continue
            if reason is None:
                continue
            state = change.after if reason != "noLongerMatching" or change.after is not None else change.before
            assert state is not None
            record = RegistrationRecord(change.tenant, change.id, state)
            data = [notified(sub.match, record, sub.tm, filtered=reason != "noLongerMatching")]
            jobs.append(Job(sub, data, reason, notification_id(*sub.key, f"csource:{change.seq}")))
        return jobs

    async def _sweep(self) -> None:
        """Delete the registrations whose expiresAt passed: the deletion is their change in the feed."""
        self._swept = time.monotonic()
        stamp = now_iso()
        for record in await self.store.list_registrations():
            if not is_live_registration(record, stamp):
                await self.store.delete_registration(record.tenant, record.id)

    # -- delivery -------------------------------------------------------------------------------------------------
    async def _send_all(self, jobs: list[Job]) -> None:
        """Each subscription's notifications in order, the subscriptions concurrently."""
        lanes: dict[tuple[str, str], list[Job]] = {}
        for job in jobs:
            lanes.setdefault(job.sub.key, []).append(job)
        await asyncio.gather(*(self._send_lane(lane) for lane in lanes.values()))

    async def _send_lane(self, lane: list[Job]) -> None:
        for job in lane:
            await self._send(job)

    async def _send(self, job: Job) -> None:
        now = now_iso()
        sub = job.sub.match.sub
        last = self._last.get(job.sub.key)
        if job.initial is None and _throttled(sub.throttling, last, now):
            return  # throttling is a minimum period between notifications: dropped, as for entities (record 0022)
        body = {
            "id": job.notification_id,
            "type": NOTIFICATION_TYPE,
            "subscriptionId": sub.id,
            "notifiedAt": now,
            "data": job.data,
            "triggerReason": job.reason,
        }
        tm = job.sub.tm
        link = tm.link_url or sub.context_url
        content, headers = request_parts(sub.endpoint, body, tm.context_value, link, sub.tenant)
        self._last[job.sub.key] = now
        ok = await deliver(self._transport, sub.endpoint, content, headers, self.retry)
        metrics.notified(sub.id, ok)
        await self.store.record_csource_delivery(sub.tenant, sub.id, Delivery(now, ok), job.initial)


def _throttled(throttling: float | None, last: str | None, now: str) -> bool:
    return throttling is not None and last is not None and (instant(now) - instant(last)).total_seconds() < throttling


def is_live_registration(record: RegistrationRecord, stamp: str) -> bool:
    """As broker.core.registrations decides (record 0166): live until its expiresAt."""
    return registration_live(compile_registration(record.tenant, record.body), stamp)
