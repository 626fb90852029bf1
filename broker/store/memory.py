"""MemoryStore: plain dicts, nothing persisted. The reference model the other backends are tested against,
so it favours being obviously right over being fast."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

from broker.core.errors import ResourceNotFound
from broker.core.model import Entity, now_iso
from broker.requestid import REQUEST_ID
from broker.store import _common as common
from broker.store.apikey_records import MemoryApiKeys
from broker.store.base import (
    ALL_DATASETS,
    DEFAULT_TENANT,
    Change,
    ContextRecord,
    Delivery,
    EntityFilter,
    EntityMapRecord,
    InstanceQuery,
    Store,
    SubscriptionRecord,
    TemporalEntityRecord,
    TemporalHistory,
    TemporalInstance,
    WriteFn,
    now_micros,
)
from broker.store.csource_records import MemoryCsourceSubscriptions
from broker.store.dataset_records import MemoryDatasets
from broker.store.erasure_records import MemoryErasure
from broker.store.policy_records import MemoryPolicies
from broker.store.registration_records import MemoryRegistrations
from broker.store.snapshot_records import MemorySnapshots
from broker.temporal import history

T = TypeVar("T")


class MemoryStore(
    MemoryErasure,
    MemoryApiKeys,
    MemoryCsourceSubscriptions,
    MemoryDatasets,
    MemoryPolicies,
    MemoryRegistrations,
    MemorySnapshots,
    Store,
):
    """Everything lives in this object. Entities are deep-copied on the way in and out, so no caller can alias
    what the store holds."""

    def __init__(self) -> None:
        self._tenants: set[str] = {DEFAULT_TENANT}
        self._entities: dict[str, dict[str, Entity]] = {DEFAULT_TENANT: {}}
        self._changes: list[Change] = []
        self._last_seq = 0  # the feed's numbering goes on over trimmed and erased changes
        self._contexts: dict[str, ContextRecord] = {}
        self._subscriptions: dict[tuple[str, str], SubscriptionRecord] = {}
        self._subscriptions_version = 0
        self._cursors: dict[str, int] = {}
        # tenant -> entity id -> (record, attribute IRI -> instances in insertion order)
        self._history: dict[str, dict[str, tuple[TemporalEntityRecord, dict[str, list[TemporalInstance]]]]] = {}
        self._entity_maps: dict[tuple[str, str], EntityMapRecord] = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """`memory://`: every call makes a new, empty, independent store."""
        if not url.startswith("memory:"):
            raise ValueError(f"not a memory store URL: {url!r}")
        return cls()

    # -- tenants ---------------------------------------------------------------------------------------------
    async def tenant_exists(self, tenant: str) -> bool:
        return tenant in self._tenants

    async def list_tenants(self) -> list[str]:
        return sorted(self._tenants)

    # -- entities --------------------------------------------------------------------------------------------
    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, Entity]:
        stored = self._entities.get(tenant, {})
        return {eid: common.clone(stored[eid]) for eid in common.unique_ids(ids) if eid in stored}

    async def write(self, tenant: str, ids: Iterable[str], fn: WriteFn[T], *, create_tenant: bool = False) -> T | None:
        id_list = common.unique_ids(ids)
        if tenant not in self._tenants and not create_tenant:
            raise common.nonexistent_tenant(tenant)
        stored = self._entities.get(tenant, {})
        plan = fn({eid: common.clone(stored[eid]) if eid in stored else None for eid in id_list})
        writes = common.checked_writes(plan, id_list)
        # Copy every new state before touching anything: a value that cannot be stored fails the whole write.
        new_states = {eid: None if e is None else common.clone(e) for eid, e in writes.items()}
        self._apply(tenant, new_states)
        return plan.result

    def _apply(self, tenant: str, new_states: dict[str, Entity | None]) -> None:
        stored = self._entities.get(tenant, {})
        at, rid = now_iso(), REQUEST_ID.get()
        changes: list[Change] = []
        for eid, after in new_states.items():
            before = stored.get(eid)
            if before is None and after is None:
                continue  # deleting what is not there changes nothing
            changes.append(
                Change(self._last_seq + len(changes) + 1, tenant, eid, before, after, at, rid)
            )
        if not changes:
            return
        self._tenants.add(tenant)
        stored = self._entities.setdefault(tenant, {})
        for change in changes:
            if change.after is None:
                del stored[change.entity_id]
            else:
                stored[change.entity_id] = change.after
        for change in changes:
            update = history.history_update(self.history, change.before, change.after, at)
            if update is not None:
                self._record_history(tenant, update, at)
        # The feed keeps its own copies, so later writes cannot reach back into it.
        self._last_seq += len(changes)
        self._changes.extend(replace(c, before=common.clone(c.before), after=common.clone(c.after)) for c in changes)

    async def find_ids(self, tenant: str, flt: EntityFilter) -> list[str]:
        return [e["id"] for e in self._matching(tenant, flt)]

    async def scan(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        return [common.clone(e) for e in self._matching(tenant, flt)]

    def _matching(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        stored = self._entities.get(tenant, {})
        return [stored[eid] for eid in sorted(stored) if common.matches(stored[eid], flt)]

    # -- temporal history --------------------------------------------------------------------------------------
    def _record_history(self, tenant: str, update: history.HistoryUpdate, at: str) -> None:
        entities = self._history.setdefault(tenant, {})
        if update.drop:
            entities.pop(update.entity_id, None)
            return
        self._add_instances(tenant, update.entity_id, update.head, update.instances, at)

    def _add_instances(
        self, tenant: str, entity_id: str, head: dict[str, Any] | None, instances: list[TemporalInstance], at: str
    ) -> bool:
        entities = self._history.setdefault(tenant, {})
        created = entity_id not in entities
        if created:
            record = TemporalEntityRecord(entity_id, [], at, at)
            entities[entity_id] = (record, {})
        record, attrs = entities[entity_id]
        if head is not None:
            types = list(dict.fromkeys([*record.type, *head.get("type", [])]))
            scope = list(head["scope"]) if "scope" in head else record.scope
            if (types, scope) != (record.type, record.scope):  # as in every backend: only a new head counts
                record.type, record.scope, record.modified_at = types, scope, at
        for inst in instances:
            attrs.setdefault(inst.attr, []).append(
                TemporalInstance(inst.attr, inst.instance_id, common.clone(inst.body))
            )
        return created

    async def temporal_entities(self, tenant: str, flt: EntityFilter) -> list[TemporalEntityRecord]:
        entities = self._history.get(tenant, {})
        out = []
        for eid in sorted(entities):
            record = entities[eid][0]
            if common.matches_id_and_types(eid, record.type, flt):
                out.append(
                    replace(record, type=list(record.type), scope=None if record.scope is None else list(record.scope))
                )
        return out

    async def temporal_instances(self, tenant: str, ids: Iterable[str], query: InstanceQuery) -> TemporalHistory:
        entities = self._history.get(tenant, {})
        out: TemporalHistory = {}
        for eid in common.unique_ids(ids):
            if eid not in entities:
                continue
            found = {}
            for attr, instances in entities[eid][1].items():
                if query.attrs is not None and attr not in query.attrs:
                    continue
                chosen = history.select(instances, query)
                if chosen:
                    found[attr] = [TemporalInstance(i.attr, i.instance_id, common.clone(i.body)) for i in chosen]
            if found:
                out[eid] = found
        return out

    async def temporal_add(
        self,
        tenant: str,
        entity_id: str,
        head: dict[str, Any] | None,
        instances: list[TemporalInstance],
        *,
        create: bool,
        at: str | None = None,
    ) -> bool:
        if entity_id not in self._history.get(tenant, {}) and not create:
            raise ResourceNotFound(f"no temporal evolution of entity {entity_id}")
        for inst in instances:
            common.dumps(inst.body)  # refuse what a persistent backend could not store, before changing anything
        self._tenants.add(tenant)
        self._entities.setdefault(tenant, {})
        return self._add_instances(tenant, entity_id, head, instances, (at or now_iso()))

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        return self._history.get(tenant, {}).pop(entity_id, None) is not None

    async def temporal_delete_attr(self, tenant: str, entity_id: str, attr: str, dataset: str | None) -> int:
        entry = self._history.get(tenant, {}).get(entity_id)
        if entry is None or attr not in entry[1]:
            return 0
        instances = entry[1][attr]
        kept = [] if dataset == ALL_DATASETS else [i for i in instances if i.body.get("datasetId") != dataset]
        removed = len(instances) - len(kept)
        if kept:
            entry[1][attr] = kept
        else:
            del entry[1][attr]
        return removed

    async def temporal_replace_instance(self, tenant: str, entity_id: str, instance: TemporalInstance) -> bool:
        entry = self._history.get(tenant, {}).get(entity_id)
        instances = [] if entry is None else entry[1].get(instance.attr, [])
        for n, old in enumerate(instances):
            if old.instance_id == instance.instance_id:
                instances[n] = TemporalInstance(instance.attr, instance.instance_id, common.clone(instance.body))
                return True
        return False

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        entry = self._history.get(tenant, {}).get(entity_id)
        instances = [] if entry is None else entry[1].get(attr, [])
        for n, old in enumerate(instances):
            if old.instance_id == instance_id:
                del instances[n]
                return True
        return False

    async def temporal_retain(self, older_than: int | None, max_count: int | None) -> int:
        removed = 0
        for entities in self._history.values():
            for _, attrs in entities.values():
                for attr, instances in list(attrs.items()):
                    kept = sorted(instances, key=lambda i: history.sort_time(i, "modifiedAt"))
                    if older_than is not None:
                        kept = [i for i in kept if history.sort_time(i, "modifiedAt") >= older_than]
                    if max_count is not None:
                        kept = kept[-max_count:] if max_count else []
                    removed += len(instances) - len(kept)
                    attrs[attr] = [i for i in instances if i in kept]
        return removed

    # -- change feed -----------------------------------------------------------------------------------------
    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        # In seq order, with gaps where an erasure removed changes (broker.store.erasure_records).
        start = bisect.bisect_right(self._changes, seq, key=_seq_of)
        selected = self._changes[start : start + max(limit, 0)]
        return [replace(c, before=common.clone(c.before), after=common.clone(c.after)) for c in selected]

    async def trim_changes(self, up_to: int) -> int:
        drop = bisect.bisect_right(self._changes, up_to, key=_seq_of)
        del self._changes[:drop]
        return drop

    # -- @context documents ----------------------------------------------------------------------------------
    async def put_context(self, record: ContextRecord) -> None:
        self._contexts[record.id] = _copy_record(record)

    async def get_context(self, context_id: str) -> ContextRecord | None:
        record = self._contexts.get(context_id)
        return None if record is None else _copy_record(record)

    async def find_context_by_url(self, url: str) -> ContextRecord | None:
        # Lowest id first, so that duplicates of a URL resolve the same way in every backend.
        for cid in sorted(self._contexts):
            if self._contexts[cid].url == url:
                return _copy_record(self._contexts[cid])
        return None

    async def list_contexts(self) -> list[ContextRecord]:
        return [_copy_record(self._contexts[cid]) for cid in sorted(self._contexts)]

    async def delete_context(self, context_id: str) -> bool:
        return self._contexts.pop(context_id, None) is not None

    # -- subscriptions -------------------------------------------------------------------------------------------
    async def create_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        if (tenant, sub_id) in self._subscriptions:
            return False
        self._subscriptions[(tenant, sub_id)] = SubscriptionRecord(tenant, sub_id, common.clone(body), {})
        self._subscriptions_version += 1
        return True

    async def replace_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        record = self._subscriptions.get((tenant, sub_id))
        if record is None:
            return False
        record.body = common.clone(body)
        self._subscriptions_version += 1
        return True

    async def get_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        record = self._subscriptions.get((tenant, sub_id))
        return None if record is None else _copy_subscription(record)

    async def list_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        keys = sorted(k for k in self._subscriptions if tenant is None or k[0] == tenant)
        return [_copy_subscription(self._subscriptions[k]) for k in keys]

    async def delete_subscription(self, tenant: str, sub_id: str) -> bool:
        if self._subscriptions.pop((tenant, sub_id), None) is None:
            return False
        self._subscriptions_version += 1
        return True

    async def subscriptions_version(self) -> int | None:
        return self._subscriptions_version

    async def record_delivery(self, tenant: str, sub_id: str, delivery: Delivery) -> None:
        record = self._subscriptions.get((tenant, sub_id))
        if record is not None:
            record.state = common.folded_state(record.state, delivery)

    # -- entity maps ---------------------------------------------------------------------------------------------
    def _live_map(self, tenant: str, map_id: str) -> EntityMapRecord | None:
        record = self._entity_maps.get((tenant, map_id))
        return record if record is not None and record.expires_at > now_micros() else None

    async def put_entity_map(self, tenant: str, record: EntityMapRecord) -> None:
        self._entity_maps[(tenant, record.id)] = _copy_map(record)

    async def get_entity_map(self, tenant: str, map_id: str) -> EntityMapRecord | None:
        record = self._live_map(tenant, map_id)
        return None if record is None else _copy_map(record)

    async def entity_map_ids(self, tenant: str, map_id: str, start: int, stop: int) -> list[str] | None:
        record = self._live_map(tenant, map_id)
        return None if record is None else record.ids[start:stop]

    async def set_entity_map_expiry(self, tenant: str, map_id: str, expires_at: int) -> bool:
        record = self._live_map(tenant, map_id)
        if record is not None:
            record.expires_at = expires_at
        return record is not None

    async def delete_entity_map(self, tenant: str, map_id: str) -> bool:
        return self._live_map(tenant, map_id) is not None and self._entity_maps.pop((tenant, map_id)) is not None

    async def purge_entity_maps(self) -> int:
        now = now_micros()
        expired = [key for key, record in self._entity_maps.items() if record.expires_at <= now]
        for key in expired:
            del self._entity_maps[key]
        return len(expired)

    # -- cursors -------------------------------------------------------------------------------------------------
    async def get_cursor(self, name: str) -> int | None:
        return self._cursors.get(name)

    async def set_cursor(self, name: str, seq: int) -> None:
        self._cursors[name] = seq

    async def last_seq(self) -> int:
        return self._last_seq


def _copy_subscription(record: SubscriptionRecord) -> SubscriptionRecord:
    return replace(record, body=common.clone(record.body), state=common.clone(record.state))


def _copy_record(record: ContextRecord) -> ContextRecord:
    return replace(record, body=common.clone(record.body), extra=common.clone(record.extra))


def _copy_map(record: EntityMapRecord) -> EntityMapRecord:
    return replace(record, ids=list(record.ids), extra=common.clone(record.extra))


def _seq_of(change: Change) -> int:
    return change.seq
