"""Routing of one entity write across registrations (clauses 4.3.6.2, 4.3.6.3, 5.6.1-5.6.3, 5.6.7-5.6.10, 5.6.20).

A pure planner, no I/O: given the live registrations of a tenant, the operation name (clause 4.20), the target
entity (id, types) and the expanded attribute names of the write, it says which attributes go to which source,
which ones meet a proxied registration that does not offer the operation (Conflict), and which stay local.
Decision record 0190 gives the reading:

- exclusive and redirect registrations that hold the entity take their matching attributes away from the local
  write ("The matching Attributes are then removed from the Fragment and not processed further", 5.6.2.4); when
  they offer the operation the attributes are forwarded, otherwise they are a Conflict;
- inclusive registrations receive a copy of the remaining attributes when they offer the operation; the local
  write keeps them;
- auxiliary registrations never receive a write (4.3.6.2: "limited to context information consumption
  operations").

The forwarder (broker.federation.forwarder) then sends each routed part; `local=true` skips planning altogether
(clause 5.5.13: "Context Source Registrations from the Context Registry will not be used").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from broker.core.registrations import InfoMatch, Registration

PROXIED = frozenset({"exclusive", "redirect"})


@dataclass(frozen=True)
class Routed:
    """The attributes (expanded) of the write that one registration receives."""

    registration: Registration
    attrs: frozenset[str]


@dataclass
class Routing:
    remote: list[Routed] = field(default_factory=list)
    conflicts: list[Routed] = field(default_factory=list)
    local: frozenset[str] = frozenset()

    @property
    def distributed(self) -> bool:
        return bool(self.remote or self.conflicts)


def info_holds(info: InfoMatch, entity_id: str, types: Sequence[str] | None) -> bool:
    """Whether a RegistrationInfo holds this entity. When its types are not known (not held locally and none given,
    record 0194), only a selector that names its id or id pattern does: a selector by type alone cannot say."""
    if types is not None or info.selectors is None:
        return info.may_hold(types, entity_id, None)
    return any(
        sel_id == entity_id or (sel_id is None and pattern is not None and pattern.search(entity_id) is not None)
        for _, sel_id, pattern in info.selectors
    )


def by_type_only(reg: Registration, entity_id: str) -> bool:
    """Whether `reg` may hold the entity only through a selector by type (no id, no matching idPattern): then its
    types must be known before a write without a type is sent to it (record 0471)."""
    return reg.may_hold(None, entity_id) and not any(info_holds(i, entity_id, None) for i in reg.infos)


def held_attrs(reg: Registration, entity_id: str, types: Iterable[str] | None, attrs: frozenset[str]) -> frozenset[str]:
    """The attributes of `attrs` that `reg` registers for this entity (an info without names holds them all)."""
    type_list = None if types is None else list(types)
    held: set[str] = set()
    for info in reg.infos:
        if not info_holds(info, entity_id, type_list):
            continue
        held |= attrs if info.attrs is None else attrs & info.attrs
    return frozenset(held)


Operation = str | frozenset[str]


def offers(reg: Registration, operation: Operation) -> bool:
    """Whether `reg` offers the operation, or one of the alternatives (a batch write or the single-entity
    operations it falls back on, 5.6.8.4)."""
    if isinstance(operation, str):
        return reg.offers(operation)
    return any(reg.offers(op) for op in operation)


def route_write(
    registrations: Sequence[Registration],
    operation: Operation,
    entity_id: str,
    types: Iterable[str] | None,
    attrs: Iterable[str],
) -> Routing:
    """Where each attribute of one entity write goes; see the module docstring."""
    remaining = frozenset(attrs)
    routing = Routing()
    for reg in registrations:
        if reg.mode not in PROXIED:
            continue
        held = held_attrs(reg, entity_id, types, frozenset(attrs))
        if not held:
            continue
        (routing.remote if offers(reg, operation) else routing.conflicts).append(Routed(reg, held))
        remaining -= held
    for reg in registrations:
        if reg.mode != "inclusive" or not offers(reg, operation):
            continue
        held = held_attrs(reg, entity_id, types, remaining)
        if held:
            routing.remote.append(Routed(reg, held))
    routing.local = remaining
    return routing


def route_entity(
    registrations: Sequence[Registration], operation: Operation, entity_id: str, types: Iterable[str] | None
) -> Routing:
    """Where a write of the entity as a whole goes (Delete Entity 5.6.6.4): every inclusive, exclusive or redirect
    registration that holds the entity, whatever attributes it names; a proxied one without the operation is a
    Conflict, an inclusive one without it is skipped, an auxiliary one never written to (record 0194)."""
    type_list = None if types is None else list(types)
    routing = Routing()
    for reg in registrations:
        if reg.mode == "auxiliary" or not any(info_holds(i, entity_id, type_list) for i in reg.infos):
            continue
        if offers(reg, operation):
            routing.remote.append(Routed(reg, frozenset()))
        elif reg.mode in PROXIED:
            routing.conflicts.append(Routed(reg, frozenset()))
    return routing


def route_query(
    registrations: Sequence[Registration],
    operation: Operation,
    types: Sequence[str] | None,
    ids: Sequence[str] | None,
    attrs: Iterable[str] | None,
) -> Routing:
    """Where a write selected by a query goes (Purge Entities, 5.6.21.4: "for Context Source Registrations that
    match the query"): every inclusive, exclusive or redirect registration that may hold an entity of those types,
    of one of those ids, with one of those attributes; Conflict and skipping as for `route_entity` (record 0196)."""
    names = None if attrs is None else list(attrs)
    routing = Routing()
    for reg in registrations:
        targets: Sequence[str | None] = ids or [None]
        if reg.mode == "auxiliary" or not any(reg.may_hold(types, i, names) for i in targets):
            continue
        if offers(reg, operation):
            routing.remote.append(Routed(reg, frozenset()))
        elif reg.mode in PROXIED:
            routing.conflicts.append(Routed(reg, frozenset()))
    return routing
