"""Distributed batch writes (clauses 5.6.7-5.6.10, 5.6.20; record 0195): one registration's share of a batch.

Each registration receives, in one request, the entities of the batch it holds, each with only the attributes
routed to it (broker.federation.writes). A registration that does not offer the batch operation gets the
single-entity operations instead, one request per entity, as clause 5.6.8.4 spells out for upsert: Create
Entity, and on AlreadyExists Replace Entity (mode replace) or Update Attributes (mode update); or Replace Entity /
Update Attributes alone when it offers no Create Entity. Create, update, merge and delete fall back on Create
Entity, Update Attributes (Append Attributes with noOverwrite), Merge Entity and Delete Entity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from broker.core.caller import Caller
from broker.core.errors import OperationNotSupported
from broker.core.registrations import Registration
from broker.federation.distributed import (
    BASE,
    Federation,
    Hop,
    Named,
    Part,
    SourceFailure,
    entity_path,
    partial_failures,
    problem,
    source_failure,
    written,
)
from broker.federation.forwarder import SourceError, SourceReply
from broker.federation.writes import Operation


@dataclass(frozen=True)
class BatchOp:
    """One batch operation as the registrations know it (4.20) and its single-entity fallback."""

    name: str  # createBatch, upsertBatch, updateBatch, mergeBatch, deleteBatch
    path: str  # /entityOperations/...
    single: str  # the operation of one entity it falls back on
    params: Mapping[str, str] | None = None
    update_mode: bool = False  # upsert options=update

    @property
    def alternatives(self) -> Operation:
        """What a registration must offer to receive its share (5.6.8.4's fallbacks count)."""
        if self.name == "upsertBatch":
            return frozenset({self.name, "createEntity", "updateAttrs" if self.update_mode else "replaceEntity"})
        return frozenset({self.name, self.single})


def batch_op(name: str, *, update_mode: bool = False, no_overwrite: bool = False) -> BatchOp:
    if name == "upsertBatch":
        return BatchOp(name, "/entityOperations/upsert", "createEntity", _options("update", update_mode), update_mode)
    if name == "updateBatch":
        single = "appendAttrs" if no_overwrite else "updateAttrs"
        return BatchOp(name, "/entityOperations/update", single, _options("noOverwrite", no_overwrite))
    return BatchOp(name, f"/entityOperations/{_PATHS[name]}", _SINGLE[name])


_PATHS: Final = {"createBatch": "create", "mergeBatch": "merge", "deleteBatch": "delete"}
_SINGLE: Final = {"createBatch": "createEntity", "mergeBatch": "mergeEntity", "deleteBatch": "deleteEntity"}


def _options(value: str, on: bool) -> dict[str, str] | None:
    return {"options": value} if on else None


@dataclass(frozen=True)
class Item:
    """One entity of a registration's share: its attributes (expanded) and its body (the id alone for delete; else a
    Named, written in the source's terms when sent)."""

    entity_id: str
    attrs: frozenset[str]
    body: Any


@dataclass
class BatchRemote:
    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    failures: list[tuple[str, SourceFailure]] = field(default_factory=list)

    def extend(self, other: BatchRemote) -> None:
        self.success += other.success
        self.created += other.created
        self.failures += other.failures


async def send_share(
    fed: Federation, caller: Caller, hop: Hop, reg: Registration, op: BatchOp, items: list[Item]
) -> BatchRemote:
    """One registration's share of a batch: one batch request when it offers the batch operation, else the
    single-entity operations (5.6.8.4)."""
    if reg.offers(op.name):
        body = Named(lambda tm: [written(i.body, tm) for i in items])
        part = Part(reg, frozenset(), "POST", BASE + op.path, body, op.params)
        return batch_answer(part, items, await fed.request(caller, hop, part))
    singles = await asyncio.gather(*(_single(fed, caller, hop, reg, op, item) for item in items))
    out = BatchRemote()
    for one in singles:
        out.extend(one)
    return out


def batch_answer(part: Part, items: Sequence[Item], answer: SourceReply | SourceError) -> BatchRemote:
    """A source's answer to a batch request: 204 or 201 (the created ids), 207 with a BatchOperationResult, or a
    failure of every entity sent."""
    ids = [i.entity_id for i in items]
    attrs = {i.entity_id: i.attrs for i in items}
    if isinstance(answer, SourceReply) and answer.ok and answer.status != 207:
        created = [e for e in answer.body if isinstance(e, str)] if isinstance(answer.body, list) else []
        return BatchRemote(success=ids, created=[e for e in created if e in attrs])
    if isinstance(answer, SourceReply) and answer.status == 207 and isinstance(answer.body, dict):
        return _partial(part, answer, attrs)
    failure = source_failure(part, answer)
    return BatchRemote(
        failures=[(e, SourceFailure(failure.registration_id, attrs[e], failure.problem, failure.warning)) for e in ids]
    )


def _partial(part: Part, reply: SourceReply, attrs: Mapping[str, frozenset[str]]) -> BatchRemote:
    body = reply.body
    out = BatchRemote(success=[e for e in body.get("success", ()) if isinstance(e, str) and e in attrs])
    for item in body.get("errors", ()):
        entity_id = item.get("entityId") if isinstance(item, dict) else None
        if not isinstance(entity_id, str) or entity_id not in attrs:
            continue
        error = item.get("error")
        prob = (
            dict(error)
            if isinstance(error, dict)
            else problem("InternalError", 502, f"context source {reply.endpoint}: failed")
        )
        out.failures.append((entity_id, SourceFailure(part.registration.id, attrs[entity_id], prob)))
    return out


async def _single(fed: Federation, caller: Caller, hop: Hop, reg: Registration, op: BatchOp, item: Item) -> BatchRemote:
    """One entity of the share by the single-entity operations (5.6.8.4 for upsert)."""
    if op.name == "upsertBatch":
        return await _upsert_one(fed, caller, hop, reg, op, item)
    part = _single_part(reg, op.single, item, op.params)
    return _one_answer(part, item, await fed.request(caller, hop, part), created=op.name == "createBatch")


async def _upsert_one(
    fed: Federation, caller: Caller, hop: Hop, reg: Registration, op: BatchOp, item: Item
) -> BatchRemote:
    then = "updateAttrs" if op.update_mode else "replaceEntity"
    if reg.offers("createEntity"):
        part = _single_part(reg, "createEntity", item)
        answer = await fed.request(caller, hop, part)
        if not (isinstance(answer, SourceReply) and answer.status == 409):
            return _one_answer(part, item, answer, created=True)
        if not reg.offers(then):  # 5.6.8.4: "Otherwise add an OperationNotSupported Error for Entity EN"
            detail = f"{item.entity_id} exists at {reg.endpoint}, and registration {reg.id} does not offer {then}"
            fail = SourceFailure(reg.id, item.attrs, OperationNotSupported(detail).to_problem())
            return BatchRemote(failures=[(item.entity_id, fail)])
    part = _single_part(reg, then, item)
    return _one_answer(part, item, await fed.request(caller, hop, part))


def _single_part(reg: Registration, operation: str, item: Item, params: Mapping[str, str] | None = None) -> Part:
    eid, body = item.entity_id, item.body
    if operation == "createEntity":
        return Part(reg, item.attrs, "POST", f"{BASE}/entities", body)
    if operation == "replaceEntity":
        return Part(reg, item.attrs, "PUT", entity_path(eid), body)
    if operation == "mergeEntity":
        return Part(reg, item.attrs, "PATCH", entity_path(eid), body)
    if operation == "deleteEntity":
        return Part(reg, item.attrs, "DELETE", entity_path(eid))
    attrs = Named(lambda tm: _attrs_only(written(body, tm)))
    if operation == "appendAttrs":
        return Part(reg, item.attrs, "POST", entity_path(eid, "attrs"), attrs, params)
    return Part(reg, item.attrs, "PATCH", entity_path(eid, "attrs"), attrs)


def _one_answer(part: Part, item: Item, answer: SourceReply | SourceError, *, created: bool = False) -> BatchRemote:
    if isinstance(answer, SourceReply) and answer.ok and answer.status != 207:
        return BatchRemote(success=[item.entity_id], created=[item.entity_id] if created else [])
    if isinstance(answer, SourceReply) and answer.status == 207:
        return BatchRemote(
            success=[item.entity_id], failures=[(item.entity_id, f) for f in partial_failures(part, answer)]
        )
    return BatchRemote(failures=[(item.entity_id, source_failure(part, answer))])


def _attrs_only(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity body without its id, type and scope: the body of .../attrs."""
    return {k: v for k, v in entity.items() if k not in ("id", "type", "scope")}
