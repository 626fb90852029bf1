"""Linked Entity Retrieval (clause 4.5.23): the entities that Relationships point to, `joinLevel` hops deep.

The broker follows Relationship `object`s and ListRelationship `objectList`s breadth first, one store call per
level, never visiting an entity twice (so cycles end), and never past `containedBy` (ids the caller already has).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from broker.core.errors import BadRequestData
from broker.core.model import Entity, Instance
from broker.store.base import Store

JOINS = ("flat", "inline", "@none")
MAX_JOIN_LEVEL = 10


def parse_join(join: str | None, level: str | None) -> tuple[str, int]:
    """(join mode, joinLevel) from the request parameters; joinLevel defaults to 1."""
    mode = join or "@none"
    if mode not in JOINS:
        raise BadRequestData(f"join={mode!r} is not one of flat, inline, @none")
    if level is None:
        return mode, 1
    if not level.isdigit() or not 1 <= int(level) <= MAX_JOIN_LEVEL:
        raise BadRequestData(f"joinLevel must be an integer from 1 to {MAX_JOIN_LEVEL}, got {level!r}")
    return mode, int(level)


def relationship_targets(instance: Instance) -> Iterator[str]:
    """The entity ids a Relationship or ListRelationship instance points to."""
    found: list[object] = []
    if instance.get("type") == "Relationship":
        objects = instance.get("object")
        found = objects if isinstance(objects, list) else [objects]
    elif instance.get("type") == "ListRelationship":
        found = [item.get("object") if isinstance(item, dict) else item for item in instance.get("objectList", [])]
    yield from (target for target in found if isinstance(target, str))


def _targets(entity: Entity) -> Iterator[str]:
    for instances in entity["attrs"].values():
        for instance in instances:
            yield from relationship_targets(instance)


async def linked_entities(
    store: Store, tenant: str, roots: Iterable[Entity], level: int, contained_by: Iterable[str] = ()
) -> dict[str, Entity]:
    """Every entity reachable from `roots` in at most `level` hops, by id (roots themselves excluded)."""
    seen = {e["id"] for e in roots} | set(contained_by)
    frontier = list(roots)
    found: dict[str, Entity] = {}
    for _ in range(level):
        wanted = {t for e in frontier for t in _targets(e)} - seen
        if not wanted:
            break
        fetched = await store.get(tenant, wanted)
        seen |= wanted
        level_found = [fetched[eid] for eid in sorted(wanted) if eid in fetched]  # answers in a stable order
        found.update((e["id"], e) for e in level_found)
        frontier = level_found
    return found
