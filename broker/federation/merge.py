"""Entity merging across sources (clause 4.3.6, record 0181), a pure function for the distributed reads (not yet
wired into them).

Entities with one id from several sources become one entity: the types are united; per attribute and per
datasetId (an instance without one is the default instance) the instance with the most recent observedAt wins,
else the most recent modifiedAt, else the first seen (the local store is given first, so it wins ties); instances
of different datasetIds are all kept. An instance from an auxiliary registration (clause 4.3.6.2) never replaces
one from another source: it only fills what no other source holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

_ENTITY_MEMBERS: Final = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"})


@dataclass(frozen=True)
class Fragment:
    """One source's answer for an entity (normalized form, names as the caller's @context spells them)."""

    entity: dict[str, Any]
    auxiliary: bool = False


def _instances(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [i for i in items if isinstance(i, dict)]


def _rank(instance: dict[str, Any], auxiliary: bool) -> tuple[int, str, str]:
    return (0 if auxiliary else 1, str(instance.get("observedAt", "")), str(instance.get("modifiedAt", "")))


def _types(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [t for t in value or () if isinstance(t, str)]


def merge_entities(fragments: Iterable[Fragment]) -> dict[str, Any]:
    """One entity from the fragments of one id (the first fragment first: it wins ties)."""
    merged: dict[str, Any] = {}
    types: list[str] = []
    best: dict[str, dict[str | None, tuple[tuple[int, str, str], dict[str, Any]]]] = {}
    for frag in fragments:
        for name, value in frag.entity.items():
            if name == "type":
                types.extend(t for t in _types(value) if t not in types)
            elif name in _ENTITY_MEMBERS:
                merged.setdefault(name, value)
            else:
                slots = best.setdefault(name, {})
                for inst in _instances(value):
                    rank, key = _rank(inst, frag.auxiliary), inst.get("datasetId")
                    if key not in slots or rank > slots[key][0]:
                        slots[key] = (rank, inst)
    if types:
        merged["type"] = types[0] if len(types) == 1 else types
    for name, slots in best.items():
        chosen = [inst for _, inst in slots.values()]
        merged[name] = chosen[0] if len(chosen) == 1 else chosen
    return merged
