"""Batch entity operations (clauses 5.6.7 to 5.6.10 and 5.6.20): create, upsert, update, delete, merge.

Each entity of a batch succeeds or fails on its own; all the successful ones are written in one store transaction
together with their change events. A failed entity is reported in BatchOperationResult.errors with its problem.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker.core import entities as E
from broker.core.access import Access, View
from broker.core.attrs import drop_nulls
from broker.core.caller import Caller
from broker.core.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from broker.core.model import Entity, Instance, now_iso
from broker.core.normalize import CREATE, PATCH, Rules, check_uri, is_null_instance, parse_entity
from broker.ld.termmap import TermMap
from broker.store.base import Store, WritePlan


@dataclass
class BatchResult:
    """Clause 5.2.16 BatchOperationResult; `created` tells upsert's 201 from 204."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


MAX_BATCH = 10_000

# The term map of each item of a batch: one for all of them, or one per item, where an item whose @context could
# not be had carries the error instead (clause 5.5.11.0: each item as if it had come in a separate request).
Contexts = TermMap | Sequence[TermMap | NgsiLdError]


def _items(body: Any) -> list[Any]:
    """The input array; clauses 5.6.7.4 to 5.6.10.4: an empty array or a null item is a BadRequestData error of
    the whole request (decision record 0112)."""
    if not isinstance(body, list):
        raise BadRequestData("a batch operation takes a JSON array")
    if not body:
        raise BadRequestData("a batch operation takes a non-empty JSON array")
    if len(body) > MAX_BATCH:
        raise BadRequestData(f"a batch holds at most {MAX_BATCH} items")
    if any(item is None for item in body):
        raise BadRequestData("a batch operation takes no null item")
    return body


def _context_of(contexts: Contexts, i: int) -> TermMap:
    tm = contexts if isinstance(contexts, TermMap) else contexts[i]
    if isinstance(tm, NgsiLdError):
        raise tm
    return tm


def _parse_all(body: Any, parse: Callable[[int, Any], Entity], result: BatchResult) -> list[Entity]:
    """Parse every item (`parse(index, item)`); those that fail go straight to the errors list."""
    parsed = []
    for i, item in enumerate(_items(body)):
        try:
            parsed.append(parse(i, item))
        except NgsiLdError as exc:
            raw_id = item.get("id") if isinstance(item, dict) else item  # an id of batch delete
            result.errors.append((raw_id if isinstance(raw_id, str) else "", exc))
    return parsed


Step = Callable[[Entity | None, Entity, str], Entity | None]


async def _run(
    store: Store, access: Access, caller: Caller, docs: list[Entity], result: BatchResult, step: Step, create: bool
) -> None:
    """Apply `step(current, doc, now)` to each parsed entity in one transaction, collecting per-entity errors; an
    entity the access policies keep the caller from changing is one of them (403, record 0221)."""
    view = await access.require(caller, "write", "write entities in this tenant")
    step = _guarded(step, view)
    ids = list(dict.fromkeys(doc["id"] for doc in docs))

    def plan(current: Mapping[str, Entity | None]) -> WritePlan[BatchResult]:
        state = dict(current)  # the plan's own copies (Store contract); each step raises before it changes one
        local = BatchResult(errors=list(result.errors))
        writes: dict[str, Entity | None] = {}
        now = now_iso()
        for doc in docs:
            entity_id = doc["id"]
            try:
                new = step(state.get(entity_id), doc, now)
            except NgsiLdError as exc:
                local.errors.append((entity_id, exc))
                continue
            if state.get(entity_id) is None and new is not None:
                local.created.append(entity_id)
            state[entity_id] = writes[entity_id] = new
            local.success.append(entity_id)
        return WritePlan(writes, local)

    if not docs:
        return
    out = await store.write(caller.tenant, ids, plan, create_tenant=create)
    assert out is not None
    result.success, result.errors, result.created = out.success, out.errors, out.created


def _guarded(step: Step, view: View) -> Step:
    if view.unrestricted:
        return step

    def guarded(current: Entity | None, doc: Entity, now: str) -> Entity | None:
        # Steps may change the current entity in place: a refused one must leave it as it was.
        new = step(copy.deepcopy(current), doc, now)
        view.check_write(current, new)
        return new

    return guarded


class Batch:
    def __init__(self, store: Store, access: Access | None = None) -> None:
        self.store = store
        self.access = access or Access(store)

    async def create(self, caller: Caller, tm: Contexts, body: Any) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda i, item: E.new_entity(parse_entity(item), _context_of(tm, i), now_iso()), result)

        def step(current: Entity | None, doc: Entity, now: str) -> Entity:
            if current is not None:
                raise AlreadyExists(f"entity {doc['id']} already exists")
            return doc

        await _run(self.store, self.access, caller, docs, result, step, create=True)
        return result

    async def upsert(self, caller: Caller, tm: Contexts, body: Any, update: bool) -> BatchResult:
        """options=replace (default) replaces an existing entity whole; options=update updates its attributes."""
        result = BatchResult()
        rules = PATCH if update else CREATE
        docs = _parse_all(
            body, lambda i, item: E.new_entity(parse_entity(item, rules), _context_of(tm, i), now_iso()), result
        )

        def step(current: Entity | None, doc: Entity, now: str) -> Entity:
            if current is None:
                return _without_nulls(doc) if update else doc  # only update mode admits NGSI-LD Nulls
            if update:
                E.apply_update(current, doc, now)
                return current
            return {**doc, "createdAt": current["createdAt"]}

        await _run(self.store, self.access, caller, docs, result, step, create=True)
        return result

    async def update(self, caller: Caller, tm: Contexts, body: Any, no_overwrite: bool) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda i, item: _fragment(item, _context_of(tm, i), PATCH), result)

        def step(current: Entity | None, doc: Entity, now: str) -> Entity:
            if current is None:
                raise ResourceNotFound(f"entity {doc['id']} not found")
            if no_overwrite:
                E.apply_append(current, doc, True, now)
            else:
                E.apply_update(current, doc, now)
            return current

        await _run(self.store, self.access, caller, docs, result, step, create=False)
        return result

    async def merge(self, caller: Caller, tm: Contexts, body: Any) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda i, item: _fragment(item, _context_of(tm, i), PATCH), result)

        def step(current: Entity | None, doc: Entity, now: str) -> Entity:
            if current is None:
                raise ResourceNotFound(f"entity {doc['id']} not found")
            E.apply_merge(current, doc, E.MergeOptions(), now)
            return current

        await _run(self.store, self.access, caller, docs, result, step, create=False)
        return result

    async def delete(self, caller: Caller, body: Any) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda _, item: {"id": check_uri(item, "entity id")}, result)

        def step(current: Entity | None, doc: Entity, now: str) -> None:
            if current is None:
                raise ResourceNotFound(f"entity {doc['id']} not found")
            return None

        await _run(self.store, self.access, caller, docs, result, step, create=False)
        return result


def _fragment(item: Any, tm: TermMap, rules: Rules) -> Entity:
    return E.expand_fragment(parse_entity(item, rules, require_type=False), tm)


def _without_nulls(doc: Entity) -> Entity:
    """A new entity made from an upsert(update) fragment: NGSI-LD Nulls have nothing to delete, so drop them."""
    if not any(_has_null(i) for instances in doc["attrs"].values() for i in instances):
        return doc
    out = copy.deepcopy(doc)
    for iri in list(out["attrs"]):
        live = [drop_nulls(i) for i in out["attrs"][iri] if not is_null_instance(i)]
        if live:
            out["attrs"][iri] = live
        else:
            del out["attrs"][iri]
    return out


def _has_null(instance: Instance) -> bool:
    if is_null_instance(instance):
        return True
    return any(_has_null(sub) for subs in instance.get("attrs", {}).values() for sub in subs)
