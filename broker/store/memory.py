"""MemoryStore: plain dicts, nothing persisted. The reference model the other backends are tested against,
so it favours being obviously right over being fast."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

from broker.core.model import Entity, now_iso
from broker.store import _common as common
from broker.store.base import (
    DEFAULT_TENANT,
    Change,
    ContextRecord,
    Delivery,
    EntityFilter,
    Store,
    SubscriptionRecord,
    WriteFn,
)

T = TypeVar("T")


class MemoryStore(Store):
    """Everything lives in this object. Entities are deep-copied on the way in and out, so no caller can alias
    what the store holds."""

    def __init__(self) -> None:
        self._tenants: set[str] = {DEFAULT_TENANT}
        self._entities: dict[str, dict[str, Entity]] = {DEFAULT_TENANT: {}}
        self._changes: list[Change] = []
        self._contexts: dict[str, ContextRecord] = {}
        self._subscriptions: dict[tuple[str, str], SubscriptionRecord] = {}
        self._cursors: dict[str, int] = {}

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
        at = now_iso()
        changes: list[Change] = []
        for eid, after in new_states.items():
            before = stored.get(eid)
            if before is None and after is None:
                continue  # deleting what is not there changes nothing
            changes.append(Change(len(self._changes) + len(changes) + 1, tenant, eid, before, after, at))
        if not changes:
            return
        self._tenants.add(tenant)
        stored = self._entities.setdefault(tenant, {})
        for change in changes:
            if change.after is None:
                del stored[change.entity_id]
            else:
                stored[change.entity_id] = change.after
        # The feed keeps its own copies, so later writes cannot reach back into it.
        self._changes.extend(replace(c, before=common.clone(c.before), after=common.clone(c.after)) for c in changes)

    async def find_ids(self, tenant: str, flt: EntityFilter) -> list[str]:
        return [e["id"] for e in self._matching(tenant, flt)]

    async def scan(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        return [common.clone(e) for e in self._matching(tenant, flt)]

    def _matching(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        stored = self._entities.get(tenant, {})
        return [stored[eid] for eid in sorted(stored) if common.matches(stored[eid], flt)]

    # -- change feed -----------------------------------------------------------------------------------------
    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        # seq n is at index n - 1, so the changes after `seq` start at index `seq`.
        selected = self._changes[max(seq, 0) :][: max(limit, 0)]
        return [replace(c, before=common.clone(c.before), after=common.clone(c.after)) for c in selected]

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
        return True

    async def replace_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        record = self._subscriptions.get((tenant, sub_id))
        if record is None:
            return False
        record.body = common.clone(body)
        return True

    async def get_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        record = self._subscriptions.get((tenant, sub_id))
        return None if record is None else _copy_subscription(record)

    async def list_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        keys = sorted(k for k in self._subscriptions if tenant is None or k[0] == tenant)
        return [_copy_subscription(self._subscriptions[k]) for k in keys]

    async def delete_subscription(self, tenant: str, sub_id: str) -> bool:
        return self._subscriptions.pop((tenant, sub_id), None) is not None

    async def record_delivery(self, tenant: str, sub_id: str, delivery: Delivery) -> None:
        record = self._subscriptions.get((tenant, sub_id))
        if record is not None:
            record.state = common.folded_state(record.state, delivery)

    # -- cursors -------------------------------------------------------------------------------------------------
    async def get_cursor(self, name: str) -> int | None:
        return self._cursors.get(name)

    async def set_cursor(self, name: str, seq: int) -> None:
        self._cursors[name] = seq

    async def last_seq(self) -> int:
        return len(self._changes)


def _copy_subscription(record: SubscriptionRecord) -> SubscriptionRecord:
    return replace(record, body=common.clone(record.body), state=common.clone(record.state))


def _copy_record(record: ContextRecord) -> ContextRecord:
    return replace(record, body=common.clone(record.body), extra=common.clone(record.extra))
