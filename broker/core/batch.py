"""Batch entity operations (clauses 5.6.7 to 5.6.10 and 5.6.20): create, upsert, update, delete, merge.

Each entity of a batch succeeds or fails on its own; all the successful ones are written in one store transaction
together with their change events. A failed entity is reported in BatchOperationResult.errors with its problem.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broker.core import entities as E
from broker.core.access import Access, View
from broker.core.attrs import drop_nulls
from broker.core.caller import Caller
from broker.core.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from broker.core.model import Entity, Instance, now_iso
from broker.core.normalize import CREATE, PATCH, Rules, check_uri, is_null_instance, parse_entity
from broker.core.registrations import Registration
from broker.federation.batches import BatchOp, BatchRemote, Item, batch_op, send_share
from broker.federation.distributed import (
    Federation,
    Hop,
    Named,
    Planned,
    SourceFailure,
    conflict_failure,
    wire_entity,
)
from broker.ld.termmap import TermMap
from broker.store.base import Store, WritePlan

if TYPE_CHECKING:
    from broker.federation.reads import Reads


@dataclass
class BatchResult:
    """Clause 5.2.16 BatchOperationResult; `created` tells upsert's 201 from 204."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    #: Entities (parts of them) a context source did not write (5.2.17: with the registrationId; record 0195).
    remote_errors: list[tuple[str, SourceFailure]] = field(default_factory=list)

    #: NGSILD-Warning values of the sources that failed the type look-up of an entity without a type (record 0473).
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return list(dict.fromkeys([*self.notes, *(f.warning for _, f in self.remote_errors if f.warning)]))


MAX_BATCH = 10_000
#: Type look-ups of one batch under way at once (record 0471): each asks every registration by type alone.
LOOKUPS = 16

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
    def __init__(
        self,
        store: Store,
        access: Access | None = None,
        federation: Federation | None = None,
        reads: Reads | None = None,
    ) -> None:
        self.store = store
        self.access = access or Access(store)
        self.federation = federation
        #: Asks the registrations by type alone an untyped entity's types (record 0471); None: they are not asked.
        self.reads = reads

    async def _federated(
        self,
        caller: Caller,
        hop: Hop | None,
        op: BatchOp,
        docs: list[Entity],
        result: BatchResult,
        step: Step,
        create: bool,
    ) -> bool:
        """The batch over the registrations (record 0195): False, and nothing done, when none is live for the
        tenant (or local=true), so the caller runs the plain local batch. Else the local share is written in one
        transaction first; each registration then gets its share at once; an entity whose local part failed
        is not forwarded (record 0193)."""
        fed = self.federation
        if fed is None or hop is None or not docs:
            return False
        regs = await fed.live(caller, hop)
        if not regs:
            return False
        stored = await self.store.get(caller.tenant, list(dict.fromkeys(doc["id"] for doc in docs)))
        untyped = [doc["id"] for doc in docs if stored.get(doc["id"]) is None and not doc.get("type")]
        looked_up, result.notes = await self._remote_types(caller, hop, regs, untyped)
        local: list[Entity] = []
        shares: dict[str, tuple[Registration, list[Item]]] = {}
        remote = BatchRemote()
        for doc in docs:
            held = stored.get(doc["id"])
            attrs = doc.get("attrs") if op.name != "deleteBatch" else None
            types = doc.get("type") or looked_up.get(doc["id"])
            planned = fed.plan(regs, op.alternatives, doc["id"], types, attrs, held)
            if planned is None:
                local.append(doc)
                continue
            if _runs_here(op, doc, planned):
                local.append(doc if attrs is None else E.only(doc, planned.routing.local))
            for r in planned.routing.remote:
                item = Item(doc["id"], r.attrs, _item_body(op, doc, r.attrs))
                shares.setdefault(r.registration.id, (r.registration, []))[1].append(item)
            remote.failures += [(doc["id"], conflict_failure(r, op.alternatives)) for r in planned.routing.conflicts]
        await _run(self.store, self.access, caller, local, result, step, create)
        refused = {entity_id for entity_id, _ in result.errors}
        sends = [
            send_share(fed, caller, hop, reg, op, [i for i in items if i.entity_id not in refused])
            for reg, items in shares.values()
        ]
        for share in await asyncio.gather(*sends):
            remote.extend(share)
        result.success = list(dict.fromkeys(result.success + remote.success))
        result.created = list(dict.fromkeys(result.created + remote.created))
        result.remote_errors = remote.failures
        return True

    async def _remote_types(
        self, caller: Caller, hop: Hop, regs: Sequence[Registration], ids: Sequence[str]
    ) -> tuple[dict[str, list[str]], list[str]]:
        """The types of the entities of the batch held neither here nor named with a type, as the registrations by
        type alone answer them, so that each is routed as its single-entity write would be (records 0471, 0473);
        and the warnings of the sources that failed. A few look-ups at a time: a batch may hold thousands."""
        if self.reads is None or not ids:
            return {}, []
        reads, gate = self.reads, asyncio.Semaphore(LOOKUPS)

        async def one(entity_id: str) -> tuple[list[str] | None, list[str]]:
            async with gate:
                return await reads.entity_types(caller, regs, entity_id, hop.via, hop.headers)

        unique = list(dict.fromkeys(ids))
        found = await asyncio.gather(*(one(i) for i in unique))
        types = {i: t for i, (t, _) in zip(unique, found, strict=True) if t}
        return types, list(dict.fromkeys(w for _, warned in found for w in warned))

    async def create(self, caller: Caller, tm: Contexts, body: Any, hop: Hop | None = None) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda i, item: E.new_entity(parse_entity(item), _context_of(tm, i), now_iso()), result)

        def step(current: Entity | None, doc: Entity, now: str) -> Entity:
            if current is not None:
                raise AlreadyExists(f"entity {doc['id']} already exists")
            return doc

        if not await self._federated(caller, hop, batch_op("createBatch"), docs, result, step, create=True):
            await _run(self.store, self.access, caller, docs, result, step, create=True)
        return result

    async def upsert(
        self, caller: Caller, tm: Contexts, body: Any, update: bool, hop: Hop | None = None
    ) -> BatchResult:
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

        op = batch_op("upsertBatch", update_mode=update)
        if not await self._federated(caller, hop, op, docs, result, step, create=True):
            await _run(self.store, self.access, caller, docs, result, step, create=True)
        return result

    async def update(
        self, caller: Caller, tm: Contexts, body: Any, no_overwrite: bool, hop: Hop | None = None
    ) -> BatchResult:
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

        op = batch_op("updateBatch", no_overwrite=no_overwrite)
        if not await self._federated(caller, hop, op, docs, result, step, create=False):
            await _run(self.store, self.access, caller, docs, result, step, create=False)
        return result

    async def merge(self, caller: Caller, tm: Contexts, body: Any, hop: Hop | None = None) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda i, item: _fragment(item, _context_of(tm, i), PATCH), result)

        def step(current: Entity | None, doc: Entity, now: str) -> Entity:
            if current is None:
                raise ResourceNotFound(f"entity {doc['id']} not found")
            E.apply_merge(current, doc, E.MergeOptions(), now)
            return current

        if not await self._federated(caller, hop, batch_op("mergeBatch"), docs, result, step, create=False):
            await _run(self.store, self.access, caller, docs, result, step, create=False)
        return result

    async def delete(self, caller: Caller, body: Any, hop: Hop | None = None) -> BatchResult:
        result = BatchResult()
        docs = _parse_all(body, lambda _, item: {"id": check_uri(item, "entity id")}, result)

        def step(current: Entity | None, doc: Entity, now: str) -> None:
            if current is None:
                raise ResourceNotFound(f"entity {doc['id']} not found")
            return None

        if not await self._federated(caller, hop, batch_op("deleteBatch"), docs, result, step, create=False):
            await _run(self.store, self.access, caller, docs, result, step, create=False)
        return result


def _runs_here(op: BatchOp, doc: Entity, planned: Planned) -> bool:
    """Whether an entity of a distributed batch has a local part (records 0193, 0195): a delete or an update
    needs the entity here; a create or upsert needs attributes left to create here (or none at all)."""
    left = bool(planned.routing.local)
    if op.name == "deleteBatch":
        return planned.stored is not None
    if op.name in ("createBatch", "upsertBatch"):
        return left or not doc["attrs"]
    return planned.stored is not None and (left or bool(doc.get("type")) or "scope" in doc)


def _item_body(op: BatchOp, doc: Entity, attrs: frozenset[str]) -> Any:
    """An entity of a registration's share as its source gets it (in its terms, records 0191, 0470): the id alone
    for delete."""
    if op.name == "deleteBatch":
        return doc["id"]
    head = {k: doc[k] for k in ("id", "type") if doc.get(k)}
    return Named(lambda tm: wire_entity({**head, "attrs": doc["attrs"]}, attrs, tm))


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
