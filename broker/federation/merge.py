"""Entity merging across sources (clause 4.5.5.3, which 4.3.6.1, 5.7.1.4 and 5.7.2.4 name; records 0181, 0182):
a pure function over entities in the canonical form (broker.core.model), used by the distributed reads.

Entities with one id from several sources become one entity: the types are united; per attribute and per
datasetId (an instance without one is the default instance) the instance with the most recent observedAt wins,
else the most recent modifiedAt, else the first seen (the local store is given first, so it wins ties); instances
of different datasetIds are all kept. A fragment from an auxiliary registration (clause 4.3.6.2) never replaces
another source's data: its attributes are taken only when no other fragment has that attribute at all (5.7.1.4:
"added to the payload only when an Attribute is not present in any of the Attribute data received elsewhere").
Expired data (an `expiresAt` in the past) is dropped before merging, where the source's answer is read
(broker.federation.reads).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from broker.core.model import Entity, Instance
from broker.temporal.times import micros_or_none

_UNKNOWN: Final = -1  # no usable time: below every real instant, so a dated instance wins over an undated one


@dataclass(frozen=True)
class Fragment:
    """One source's answer for an entity, in the canonical form (expanded names)."""

    entity: Entity
    auxiliary: bool = False
    #: The registration it came from (None: the local store).
    registration: str | None = None


def _instant(instance: Instance, member: str) -> int:
    micros = micros_or_none(instance.get(member))
    return _UNKNOWN if micros is None else micros


def _rank(instance: Instance) -> tuple[int, int]:
    """4.5.5.3: "the one with the most recent observedAt DateTime, if present, and otherwise the one with the most
    recent modifiedAt DateTime"."""
    return (_instant(instance, "observedAt"), _instant(instance, "modifiedAt"))


def _system_times(merged: Entity, entity: Entity) -> None:
    """The merged entity was created when its first part was and modified when its last part was."""
    for member, later in (("createdAt", False), ("modifiedAt", True)):
        if member not in entity:
            continue
        if member not in merged:
            merged[member] = entity[member]
            continue
        mine, theirs = micros_or_none(merged[member]), micros_or_none(entity[member])
        if mine is not None and theirs is not None and (theirs > mine if later else theirs < mine):
            merged[member] = entity[member]


def merge_entities(fragments: Iterable[Fragment]) -> Entity:
    """One entity from the fragments of one id (the first fragment first: it wins ties)."""
    parts = list(fragments)
    primary = [f.entity for f in parts if not f.auxiliary]
    auxiliary = [f.entity for f in parts if f.auxiliary]
    first = (primary or auxiliary)[0]
    merged: Entity = {"id": first["id"], "type": []}
    best: dict[str, dict[str | None, tuple[tuple[int, int], Instance]]] = {}
    for entity in primary:
        _take_members(merged, entity)
        for name, instances in entity["attrs"].items():
            slots = best.setdefault(name, {})
            for inst in instances:
                key, rank = inst.get("datasetId"), _rank(inst)
                if key not in slots or rank > slots[key][0]:
                    slots[key] = (rank, inst)
    held = set(best)
    for entity in auxiliary:
        _take_members(merged, entity)
        for name, instances in entity["attrs"].items():
            if name in held:
                continue  # an attribute another source holds is never overridden by an auxiliary one
            slots = best.setdefault(name, {})
            for inst in instances:
                slots.setdefault(inst.get("datasetId"), (_rank(inst), inst))
    merged["attrs"] = {name: [inst for _, inst in slots.values()] for name, slots in best.items()}
    return merged


def _take_members(merged: Entity, entity: Entity) -> None:
    merged["type"].extend(t for t in entity["type"] if t not in merged["type"])
    if "scope" in entity:
        scopes = merged.setdefault("scope", [])
        scopes.extend(s for s in entity["scope"] if s not in scopes)
    _system_times(merged, entity)
