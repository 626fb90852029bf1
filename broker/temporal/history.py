"""The history every write leaves behind (clauses 4.5.7, 4.5.8): one temporal instance per attribute instance
that a write created or changed, and one "deleted" instance (content urn:ngsi-ld:null, deletedAt set) per
attribute instance it removed.

Stores call `instances_of_change` inside the transaction of the write, so the history commits with the write
(nothing recorded for a write that failed, nothing missing for one that was acknowledged).
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass
from typing import Any, Final

from broker.core.model import CONTENT_MEMBER, NULL_URI, Entity, Instance
from broker.store.base import HistoryPolicy, InstanceQuery, TemporalInstance
from broker.temporal.times import micros_or_none

_INSTANCE_NS = "urn:ngsi-ld:instance:"


def new_instance_id() -> str:
    """Unique across processes and restarts: a random 64-bit prefix drawn once per process (again in a forked
    child), then a counter. A uuid4 per instance cost a tenth of recording the history of an entity creation."""
    return f"{_PREFIX[0]}{next(_COUNTER):x}"


def _draw_prefix() -> None:
    _PREFIX[:] = [f"{_INSTANCE_NS}{uuid.uuid4().hex[:16]}-"]


_PREFIX: list[str] = [""]
_COUNTER = itertools.count(1)
_draw_prefix()
os.register_at_fork(after_in_child=_draw_prefix)  # a forked worker must not reuse its parent's prefix


def instances_of_change(
    before: Entity | None, after: Entity | None, at: str, changed: frozenset[str] | None = None
) -> list[TemporalInstance]:
    """The temporal instances recorded for one entity going from `before` to `after` (None = absent). `changed`,
    when the caller knows it (store._common.changed_attrs), names the attributes that differ: the others are
    skipped without being compared again."""
    old_attrs: dict[str, list[Instance]] = before["attrs"] if before is not None else {}
    new_attrs: dict[str, list[Instance]] = after["attrs"] if after is not None else {}
    if changed is not None:
        old_attrs = {a: old_attrs[a] for a in changed if a in old_attrs}
        new_attrs = {a: new_attrs[a] for a in changed if a in new_attrs}
    out: list[TemporalInstance] = []
    for iri, instances in new_attrs.items():
        old = old_attrs.get(iri)
        if old == instances:  # most attributes of an update are untouched: one C-level comparison each
            continue
        previous = {i.get("datasetId"): i for i in old or ()}
        for inst in instances:
            if previous.get(inst.get("datasetId")) != inst:
                out.append(make_instance(iri, inst))
    for iri, instances in old_attrs.items():
        now = new_attrs.get(iri)
        if now == instances:
            continue
        kept = {i.get("datasetId") for i in now or ()}
        out.extend(make_instance(iri, deleted(inst, at)) for inst in instances if inst.get("datasetId") not in kept)
    return out


#: The NGSI-LD Null each kind of attribute is recorded with when deleted: a LanguageProperty's languageMap is
#: {"@none": "urn:ngsi-ld:null"} (clause 4.6.5), a ListProperty's valueList and a ListRelationship's objectList an
#: array of one NGSI-LD Null (4.5.21.2, 4.5.22.2), any other content the URI itself (4.5.7, 4.5.8).
_NULL_CONTENT: Final[dict[str, Any]] = {
    "LanguageProperty": {"@none": NULL_URI},
    "ListProperty": [NULL_URI],
    "ListRelationship": [NULL_URI],
}


def null_content(kind: str) -> Any:
    """The content of a deletion instance of an attribute of type `kind` (decision record 0120)."""
    value = _NULL_CONTENT.get(kind, NULL_URI)
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value


def deleted(inst: Instance, at: str) -> Instance:
    """The instance that records the deletion of `inst`: same type and datasetId, content the NGSI-LD Null of its
    type, deletedAt set (clauses 4.5.7, 4.5.8)."""
    kind = str(inst.get("type", "Property"))
    out: Instance = {"type": kind, CONTENT_MEMBER.get(kind, "value"): null_content(kind)}
    if "datasetId" in inst:
        out["datasetId"] = inst["datasetId"]
    out["createdAt"] = inst.get("createdAt", at)
    out["modifiedAt"] = at
    out["deletedAt"] = at
    return out


def make_instance(attr: str, body: Instance, instance_id: str | None = None) -> TemporalInstance:
    return TemporalInstance(attr, instance_id or new_instance_id(), body)


def index_row(inst: TemporalInstance) -> tuple[Any, ...]:
    """(dataset_id, observed, created, modified, deleted, number) of an instance, in microseconds: the columns a
    backend indexes and aggregates on. `number` is the value of a Property whose value is a number or boolean."""
    body = inst.body
    return (
        body.get("datasetId"),
        micros_or_none(body.get("observedAt")),
        micros_or_none(body.get("createdAt")),
        micros_or_none(body.get("modifiedAt")),
        micros_or_none(body.get("deletedAt")),
        numeric_value(body),
    )


def numeric_value(body: Instance) -> float | None:
    if body.get("type") != "Property" or "deletedAt" in body:
        return None
    value = body.get("value")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


def entity_head(entity: Entity) -> dict[str, Any]:
    """What a temporal entity record keeps of the entity besides its history: types and scope."""
    head: dict[str, Any] = {"type": list(entity["type"])}
    if "scope" in entity:
        head["scope"] = list(entity["scope"])
    return head


def time_of(inst: TemporalInstance, prop: str) -> int | None:
    return micros_or_none(inst.body.get(prop))


def sort_time(inst: TemporalInstance, prop: str) -> int:
    """Where an instance sits in time: its `prop`, else (no time bound asked) its modifiedAt, else its createdAt."""
    for member in (prop, "modifiedAt", "createdAt"):
        value = micros_or_none(inst.body.get(member))
        if value is not None:
            return value
    return 0


def select(instances: list[TemporalInstance], query: InstanceQuery) -> list[TemporalInstance]:
    """The reference selection of one attribute's instances (the memory store uses it; the others must agree)."""
    bounded = query.start is not None or query.end is not None
    chosen = []
    for inst in instances:
        if query.datasets is not None and inst.body.get("datasetId") not in query.datasets:
            continue
        if bounded:
            at = time_of(inst, query.timeproperty)
            if at is None or (query.start is not None and at < query.start):
                continue
            if query.end is not None and at >= query.end:
                continue
        chosen.append(inst)
    chosen.sort(key=lambda i: sort_time(i, query.timeproperty))
    if query.per_attr is not None:
        chosen = chosen[-query.per_attr :] if query.newest_first else chosen[: query.per_attr]
        if query.per_attr == 0:
            chosen = []
    return chosen


@dataclass(frozen=True)
class HistoryUpdate:
    """What one committed change does to the history of its entity."""

    entity_id: str
    head: dict[str, Any] | None  # types and scope to record; None keeps what the temporal entity has
    instances: list[TemporalInstance]
    drop: bool = False  # the entity was deleted and its history goes with it


def history_update(
    policy: HistoryPolicy,
    before: Entity | None,
    after: Entity | None,
    at: str,
    changed: frozenset[str] | None = None,
) -> HistoryUpdate | None:
    """The history a store records, in the same transaction, for an entity going from `before` to `after`
    (`changed`: the attributes that differ, when the caller knows them)."""
    if not policy.record or (before is None and after is None):
        return None
    entity_id = str((after or before or {})["id"])
    if after is None and not policy.keep_on_delete:
        return HistoryUpdate(entity_id, None, [], drop=True)
    head = entity_head(after) if after is not None else None
    return HistoryUpdate(entity_id, head, instances_of_change(before, after, at, changed))
