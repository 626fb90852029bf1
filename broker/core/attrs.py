"""Pure functions over canonical entities: the attribute-level rules of append, update, merge and delete.

They never touch a store; broker.core.entities runs them inside a store write (clauses 5.5.8, 5.5.12, 5.6).
"""

from __future__ import annotations

import copy
from typing import Any

from broker.core.model import CONTENT_MEMBER, Entity, Instance
from broker.core.normalize import is_null_instance

_CONTENT_MEMBERS = frozenset(CONTENT_MEMBER.values())


def find_instance(instances: list[Instance], dataset_id: str | None) -> int:
    """Index of the instance with `dataset_id` (None = the default instance), or -1."""
    for i, inst in enumerate(instances):
        if inst.get("datasetId") == dataset_id:
            return i
    return -1


def stamp(inst: Instance, now: str, created: str | None = None) -> Instance:
    """Set the system attributes of an instance and of its sub-attributes, keeping a known createdAt."""
    inst["createdAt"] = created or now
    inst["modifiedAt"] = now
    for subs in inst.get("attrs", {}).values():
        for sub in subs:
            stamp(sub, now, sub.get("createdAt"))
    return inst


def put_instance(entity: Entity, iri: str, new: Instance, now: str) -> None:
    """Replace the instance with the same datasetId (keeping its createdAt) or append it (clause 5.6.2)."""
    instances = entity["attrs"].setdefault(iri, [])
    i = find_instance(instances, new.get("datasetId"))
    if i < 0:
        instances.append(stamp(new, now))
    else:
        instances[i] = stamp(new, now, instances[i].get("createdAt"))


def remove_instance(entity: Entity, iri: str, dataset_id: str | None, delete_all: bool = False) -> bool:
    """Delete one instance (or all with `delete_all`); drop the attribute when none is left. False if absent."""
    instances = entity["attrs"].get(iri)
    if not instances:
        return False
    if delete_all:
        del entity["attrs"][iri]
        return True
    i = find_instance(instances, dataset_id)
    if i < 0:
        return False
    del instances[i]
    if not instances:
        del entity["attrs"][iri]
    return True


def merge_instance(old: Instance, new: Instance, now: str) -> Instance:
    """JSON Merge Patch of one instance into another (clause 5.5.12).

    Members of `new` win; members it leaves out are kept; sub-attributes merge recursively and an NGSI-LD Null
    removes one. When the attribute type changes, the old content member no longer applies and is dropped.
    """
    merged = copy.deepcopy(old)
    if new.get("type") != old.get("type"):
        for member in _CONTENT_MEMBERS:
            merged.pop(member, None)
    for key, val in new.items():
        if key != "attrs":
            merged[key] = copy.deepcopy(val)
    subs = merged.setdefault("attrs", {})
    for iri, instances in new.get("attrs", {}).items():
        for sub in instances:
            _merge_sub(subs, iri, sub, now)
    if not subs:
        del merged["attrs"]
    merged["createdAt"] = old.get("createdAt", now)
    merged["modifiedAt"] = now
    return merged


def _merge_sub(subs: dict[str, list[Instance]], iri: str, sub: Instance, now: str) -> None:
    holder: Entity = {"attrs": subs}
    if is_null_instance(sub):
        remove_instance(holder, iri, sub.get("datasetId"))
        return
    instances = subs.get(iri, [])
    i = find_instance(instances, sub.get("datasetId"))
    if i < 0:
        put_instance(holder, iri, copy.deepcopy(sub), now)
    else:
        instances[i] = merge_instance(instances[i], sub, now)


def drop_nulls(inst: Instance) -> Instance:
    """An instance without the sub-attributes that ask for deletion (used where there is nothing to merge into)."""
    subs = inst.get("attrs")
    if not subs:
        return inst
    kept = {}
    for iri, instances in subs.items():
        live = [drop_nulls(s) for s in instances if not is_null_instance(s)]
        if live:
            kept[iri] = live
    out = {k: v for k, v in inst.items() if k != "attrs"}
    if kept:
        out["attrs"] = kept
    return out


def add_types(entity: Entity, types: list[str]) -> bool:
    """Add type IRIs not yet in the entity; True if any was added."""
    added = [t for t in types if t not in entity["type"]]
    entity["type"].extend(added)
    return bool(added)


def content_of(inst: Instance) -> Any:
    return inst.get(CONTENT_MEMBER.get(inst.get("type", ""), "value"))
