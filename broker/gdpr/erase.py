"""Erasure (GDPR art. 17, 19; record 0322): a subject's data removed from everywhere the store keeps it.

In every tenant (snapshot content tenants included, they are tenants of the store), for the subject's entities
(broker.gdpr.subject):

1. each subscription that would have been notified of the entity gets one deletion notice (art. 19: recipients
   are told), sent at once and outside the change feed: id and type only, triggerReason entityDeleted;
2. the entities are deleted (their query indexes with them) and their temporal history;
3. every change event of them leaves the feed (the deletions just made too: the notices of step 1 replace them),
   so neither the feed nor the notifier's queue, which is filled from it, holds them; the entity maps listing
   them are deleted;
4. the subscriptions that watch them by id (their documents name them) or that the subject owns are deleted;

then the snapshot status documents whose queries name the entities get urn:ngsi-ld:Erased instead, the audit
records naming the entities are removed, one record says that an erasure happened (who, when,
how many) and nothing of what, the store's erasure marker moves (open data files written before it are not served
any more, record 0325), and the store compacts its files (SQLite VACUUM and WAL truncation, Redis AOF
rewrite), so the bytes are gone from the disk too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from broker.core.access import UNRESTRICTED, Access
from broker.core.model import Entity, now_iso
from broker.gdpr.export import owned_by, watches
from broker.gdpr.subject import Holdings, every_holding
from broker.guards import OutboundPolicy
from broker.ld.resolver import ContextResolver
from broker.notify.delivery import RetryPolicy, deliver, endpoint_transports, request_parts
from broker.notify.notification import build, notification_id
from broker.notify.notifier import compile_record, job_for
from broker.store.base import AuditRecord, Change, Delivery, Store, SubscriptionRecord, WritePlan, now_micros

log = logging.getLogger("agora.gdpr")

ERASURE_OPERATION = "GDPR erasure (art. 17)"
#: The store cursor that holds the time of the last erasure (microseconds): the open data distribution files
#: regenerated before it are no longer served (broker.opendata.service, record 0325).
ERASURE_CURSOR = "gdpr-erasure"


@dataclass
class ErasureReport:
    """How much went: the counts the audit record keeps (never what)."""

    entities: int = 0
    temporal_entities: int = 0
    changes: int = 0
    entity_maps: int = 0
    subscriptions: int = 0
    snapshots: int = 0
    audit_records: int = 0
    notices_sent: int = 0
    notices_failed: int = 0
    tenants: list[str] = field(default_factory=list)
    #: The ids erased per tenant: for the process's own queues (never shown, never audited).
    erased: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        return (
            f"{self.entities} entities, {self.temporal_entities} temporal entities, {self.changes} change events, "
            f"{self.entity_maps} entity maps, {self.subscriptions} subscriptions, {self.snapshots} snapshot "
            f"documents, {self.audit_records} audit "
            f"records; {self.notices_sent} deletion notices sent, {self.notices_failed} failed"
        )

    def to_doc(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "erased"}


Notice = Callable[[SubscriptionRecord, Entity], Awaitable[bool]]


class Notices:
    """Deletion notices to the subscriptions of a tenant, matched and rendered as the notifier does."""

    def __init__(self, store: Store, resolver: ContextResolver, outbound: OutboundPolicy | None = None) -> None:
        self.store = store
        self.resolver = resolver
        self.access = Access(store)
        self.transport = endpoint_transports(outbound)
        self.retry = RetryPolicy(attempts=2, backoff=0.2)

    async def send(self, tenant: str, entities: list[Entity]) -> tuple[int, int]:
        """(sent, failed) over every subscription of the tenant that one of the entities matches."""
        sent = failed = 0
        for record in await self.store.list_subscriptions(tenant):
            compiled = await compile_record(self.resolver, record)
            if compiled is None:
                continue
            for entity in entities:
                outcome = await self._one(compiled[0], compiled[1], tenant, entity)
                if outcome is not None:
                    sent, failed = sent + outcome, failed + (not outcome)
        return sent, failed

    async def _one(self, sub: Any, tm: Any, tenant: str, entity: Entity) -> bool | None:
        now = now_iso()
        # Every recipient of the entity is told, whichever triggers it asked for (art. 19).
        sub = replace(sub, triggers=sub.triggers | {"entityDeleted"})
        job = job_for(sub, tm, Change(0, tenant, entity["id"], entity, None, now), now)
        if job is None:
            return None
        view = UNRESTRICTED if sub.owner is None else await self.access.view(sub.owner)
        if view.redact(entity) is None:
            return None  # the owner may not read the entity at all: it never received it
        head = {"id": entity["id"], "type": entity["type"], "attrs": {}, "deletedAt": now}
        body = build(sub, [(Change(0, tenant, entity["id"], head, None, now), frozenset())], "entityDeleted", tm, now)
        body["id"] = notification_id(tenant, sub.id, f"erasure {now} {entity['id']}")
        content, headers = request_parts(sub.endpoint, body, tm.context_value, tm.link_url or sub.context_url, tenant)
        ok = await deliver(self.transport, sub.endpoint, content, headers, self.retry)
        await self.store.record_delivery(tenant, sub.id, Delivery(now, ok))
        return ok

    async def aclose(self) -> None:
        await self.transport.aclose()


def _delete_all(current: Any) -> WritePlan[None]:
    return WritePlan(writes=dict.fromkeys(current))


async def _erase_tenant(store: Store, found: Holdings, notices: Notices | None, report: ErasureReport) -> None:
    tenant, ids = found.tenant, found.ids
    if notices is not None and found.entities:
        sent, failed = await notices.send(tenant, list(found.entities.values()))
        report.notices_sent += sent
        report.notices_failed += failed
    if found.entities:
        await store.write(tenant, sorted(found.entities), _delete_all)
        report.entities += len(found.entities)
    # Every id, not only those with history before: deleting an entity may just have recorded its deletedAt.
    for eid in sorted(ids):
        report.temporal_entities += await store.temporal_delete(tenant, eid)
    report.changes += await store.erase_changes(tenant, ids)
    report.entity_maps += await store.erase_entity_maps(tenant, ids)
    for record in await store.list_subscriptions(tenant):
        if watches(record, ids):
            report.subscriptions += await store.delete_subscription(tenant, record.id)
    report.tenants.append(tenant)
    report.erased[tenant] = ids


async def erase(
    store: Store, subject: str, by: str, notices: Notices | None = None, *, audit_settle: float = 0.0
) -> ErasureReport:
    """Erase everything of `subject` (record 0322); `by` is who asked (the audit record's subject). With
    `audit_settle` (seconds), the audit records are looked at once more after that long: broker processes buffer
    their records a quarter of a second (record 0224), so a request made just before would land after the scrub."""
    report = ErasureReport()
    found = await every_holding(store, subject)
    for holding in found:
        await _erase_tenant(store, holding, notices, report)
    for record in await store.list_subscriptions():  # the subject's own, as a caller of the broker
        if owned_by(record, subject):
            report.subscriptions += await store.delete_subscription(record.tenant, record.id)
    ids = frozenset().union(*(h.ids for h in found))
    if ids:
        report.snapshots = await _scrub_snapshots(store, ids)
    # The records naming the entities, and those whose path named the subject (its export, an earlier erasure).
    report.audit_records = await store.erase_audit(ids | {subject})
    if audit_settle > 0:
        await asyncio.sleep(audit_settle)
        report.audit_records += await store.erase_audit(ids | {subject})
    await store.append_audit([erasure_record(by, report)])
    if report.entities or report.temporal_entities:
        # After the deletions: a regeneration that read the marker before them may have written what they took.
        await store.set_cursor(ERASURE_CURSOR, now_micros())
    await store.compact()
    log.info("GDPR erasure by %s: %s", by, report.summary())
    return report


ERASED_ID = "urn:ngsi-ld:Erased"


def _scrubbed(value: Any, ids: frozenset[str]) -> Any:
    if isinstance(value, str):
        return ERASED_ID if value in ids else value
    if isinstance(value, list):
        return [_scrubbed(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v, ids) for k, v in value.items()}
    return value


async def _scrub_snapshots(store: Store, ids: frozenset[str]) -> int:
    """A snapshot's status document keeps its queries, which may name an erased entity by id: that id becomes
    urn:ngsi-ld:Erased (the snapshot's content is a tenant, erased with the others)."""
    changed = 0
    for record in await store.list_snapshots():
        body = _scrubbed(record.body, ids)
        if body != record.body:
            changed += await store.replace_snapshot(replace(record, body=body))
    return changed


def erasure_record(by: str, report: ErasureReport) -> AuditRecord:
    """Who, when and how many; never the subject nor an entity id (the record outlives what it tells of)."""
    operation = f"{ERASURE_OPERATION}: {report.summary()}"
    return AuditRecord(now_iso(), by, operation, "", 200, "allowed")
