"""Linked Entity Retrieval (clause 4.5.23): the entities that Relationships point to, `joinLevel` hops deep.

The broker follows Relationship `object`s and ListRelationship `objectList`s breadth first, one store call per
level, never visiting an entity twice (so cycles end), and never past `containedBy` (ids the caller already has).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from broker.core.access import View
from broker.core.errors import BadRequestData, TooComplexQuery
from broker.core.model import Entity, Instance
from broker.store.base import Store

JOINS = ("flat", "inline", "@none")
MAX_JOIN_LEVEL = 10


def projection_depth(projection: Any) -> int:
    """How many Relationship hops a pick/omit Projection reaches into linked entities (`a{b{c}}` is 2)."""
    if projection is None:
        return 0
    return max((1 + projection_depth(i.linked) for i in projection.items if i.linked is not None), default=0)


def check_projection_depth(pick: Any, omit: Any, mode: str, level: int) -> None:
    """Clauses 5.7.1.4 and 5.7.2.4: "If projection attributes are present and indicate the use of Linked Entity
    retrieval and the use of Linked Entity retrieval is not specified, or the projected attribute depth exceeds
    the Linked Entity retrieval depth, an error of type BadRequestData shall be raised." """
    depth = max(projection_depth(pick), projection_depth(omit))
    if depth and mode == "@none":
        raise BadRequestData("pick/omit name attributes of linked entities (rel{...}): that needs join=flat or inline")
    if depth > level:
        raise BadRequestData(f"pick/omit reach {depth} Relationship hops deep, more than joinLevel={level}")


def parse_join(join: str | None, level: str | None, max_level: int = MAX_JOIN_LEVEL) -> tuple[str, int]:
    """(join mode, joinLevel) from the request parameters; joinLevel defaults to 1. A joinLevel above the bound
    (AGORA_MAX_JOIN_LEVEL) is TooComplexQuery: the request is well-formed, it asks for too much (record 0208)."""
    mode = join or "@none"
    if mode not in JOINS:
        raise BadRequestData(f"join={mode!r} is not one of flat, inline, @none")
    if level is None:
        return mode, 1
    if not level.isdigit() or int(level) < 1:
        raise BadRequestData(f"joinLevel must be a positive integer, got {level!r}")
    if int(level) > max_level:
        raise TooComplexQuery(f"joinLevel={level} is more than the {max_level} Relationship hops allowed")
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


#: Given an entity reached under some state (a view, for the caller), the (target id, state of the target) pairs
#: to follow from it: only the Relationships the answer shows are followed (clause 5.7.1.5).
Follow = Callable[[Entity, Any], Iterable[tuple[str, Any]]]


async def linked_entities(
    store: Store,
    tenant: str,
    roots: Iterable[Entity],
    level: int,
    contained_by: Iterable[str] = (),
    follow: Follow | None = None,
    state: Any = None,
    *,
    roots_seen: bool = True,
    seen_by: View | None = None,
) -> dict[str, Entity]:
    """Every entity reachable from `roots` in at most `level` hops, by id (see `linked_with_states`)."""
    found = await linked_with_states(
        store, tenant, roots, level, contained_by, follow, state, roots_seen=roots_seen, seen_by=seen_by
    )
    return {eid: entity for eid, (entity, _) in found.items()}


async def linked_with_states(
    store: Store,
    tenant: str,
    roots: Iterable[Entity],
    level: int,
    contained_by: Iterable[str] = (),
    follow: Follow | None = None,
    state: Any = None,
    *,
    roots_seen: bool = True,
    seen_by: View | None = None,
) -> dict[str, tuple[Entity, Any]]:
    """Every entity reachable from `roots` in at most `level` hops, by id with its state, in the order the
    traversal meets them (attribute order, then a ListRelationship's objectList order: clause 5.7.1.5 appends
    "an ordered array").

    `follow` chooses the targets of each entity (default: every Relationship); `state` is the roots' (a view).
    With `roots_seen` (join=flat) the roots are never listed again; without it (join=inline, where each root's
    graph is shown under that root) a root another root links to is fetched as a linked entity too. With
    `seen_by` (a caller's access view) a linked entity is as that caller may read it, and left out when it may not
    read it at all (record 0221).
    """
    roots = list(roots)
    seen = set(contained_by) | ({e["id"] for e in roots} if roots_seen else set())
    frontier: list[tuple[Entity, Any]] = [(e, state) for e in roots]
    found: dict[str, tuple[Entity, Any]] = {}
    for _ in range(level):
        wanted: dict[str, Any] = {}
        for entity, entity_state in frontier:
            pairs = follow(entity, entity_state) if follow else ((t, entity_state) for t in _targets(entity))
            for target, target_state in pairs:
                if target not in seen and target not in wanted and target not in found:
                    wanted[target] = target_state
        if not wanted:
            break
        fetched = await store.get(tenant, set(wanted))
        if seen_by is not None and not seen_by.unrestricted:
            fetched = {e["id"]: e for e in seen_by.redact_all(fetched.values())}
        seen |= wanted.keys()
        frontier = [(fetched[eid], st) for eid, st in wanted.items() if eid in fetched]
        found.update((e["id"], (e, st)) for e, st in frontier)
    return found
