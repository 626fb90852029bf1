"""Which data a data subject has in the store (GDPR art. 4(1), 15, 17; record 0321).

A subject is named by one string S: an entity id (``urn:ngsi-ld:Person:...``) or an identifier as the data holds it
(a customer number). In each tenant, the subject's entities are

1. the entity whose id is S;
2. every entity with an attribute marked ``identifier`` (``dataSubject``, ``ticketHolder``, ``licensePlate`` ...)
   whose value is S, or whose Relationship object is S or an entity of this set;
3. every entity that links to an entity of the set through a Relationship that is personal data itself (its
   attribute marked, or its entity of a marked type): the subject's meter links to the subject, its consumption
   series to the meter; a grid node the meter is connected to does not link to the meter, so it is not the
   subject's (the link goes from the personal entity outwards).

The same holds over the temporal history: a temporal entity is the subject's when its id is in the set, or when
an instance of an identifier attribute ever named S (an entity deleted long ago whose history is kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.core.model import Entity
from broker.store.base import EntityFilter, InstanceQuery, Store
from ontologies.personal_data import personal_entity_type, personal_in, personal_marks

#: Rounds of the closure over links (a chain person -> meter -> series is two).
MAX_HOPS = 8


def identifier_attrs() -> frozenset[str]:
    return frozenset(iri for iri, mark in personal_marks().items() if mark.category == "identifier")


@dataclass
class Holdings:
    """What one tenant holds of a subject: current entity ids and temporal entity ids."""

    tenant: str
    entities: dict[str, Entity] = field(default_factory=dict)
    temporal: set[str] = field(default_factory=set)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.entities) | frozenset(self.temporal)

    def __bool__(self) -> bool:
        return bool(self.entities or self.temporal)


def _contents(instance: Mapping[str, Any]) -> Iterator[Any]:
    for member in ("value", "object", "objectList", "valueList"):
        content = instance.get(member)
        if isinstance(content, list):
            yield from content
        elif content is not None:
            yield content


def _links(instance: Mapping[str, Any]) -> Iterator[str]:
    if instance.get("type") in ("Relationship", "ListRelationship"):
        yield from (str(o) for o in _contents(instance))


def names_subject(entity: Entity, subject: str) -> bool:
    """Whether the entity is the subject, or one of its identifier attributes names it (rules 1 and 2)."""
    if entity["id"] == subject:
        return True
    for attr in identifier_attrs() & entity["attrs"].keys():
        if any(str(c) == subject for inst in entity["attrs"][attr] for c in _contents(inst)):
            return True
    return False


def personal_links(entity: Entity) -> set[str]:
    """What the entity's personal data points at (rules 2 and 3 of the module docstring): the objects of its
    personal Relationships, and the values of its identifier attributes."""
    types = entity["type"]
    whole = personal_entity_type(types) is not None
    identifiers = identifier_attrs()
    found: set[str] = set()
    for attr, instances in entity["attrs"].items():
        if attr in identifiers:
            found |= {str(c) for inst in instances for c in _contents(inst) if isinstance(c, str)}
        elif whole or personal_in(types, attr) is not None:
            found |= {target for inst in instances for target in _links(inst)}
    return found


def _grown(roots: set[str], links: Mapping[str, set[str]], subject: str) -> set[str]:
    held = set(roots)
    for _ in range(MAX_HOPS):
        grown = {eid for eid, targets in links.items() if eid not in held and targets & (held | {subject})}
        if not grown:
            break
        held |= grown
    return held


def closure(entities: Iterable[Entity], subject: str) -> dict[str, Entity]:
    """The subject's entities among `entities` (rules 1-3)."""
    pool = {e["id"]: e for e in entities}
    roots = {eid for eid, e in pool.items() if names_subject(e, subject)}
    held = _grown(roots, {eid: personal_links(e) for eid, e in pool.items()}, subject)
    return {eid: pool[eid] for eid in sorted(held)}


async def holdings(store: Store, tenant: str, subject: str) -> Holdings:
    """One pass over the tenant a page at a time, keeping only the links of personal data (not the entities),
    then the subject's entities read by id."""
    roots: set[str] = set()
    links: dict[str, set[str]] = {}
    async for batch in store.scan_batches(tenant, EntityFilter()):
        for entity in batch:
            if names_subject(entity, subject):
                roots.add(entity["id"])
            if targets := personal_links(entity):
                links[entity["id"]] = targets
    held = sorted(_grown(roots, links, subject))
    current = await store.get(tenant, held) if held else {}
    found = Holdings(tenant, {eid: current[eid] for eid in held if eid in current})
    found.temporal = await _temporal(store, tenant, subject, set(found.entities))
    return found


async def _temporal(store: Store, tenant: str, subject: str, held: set[str]) -> set[str]:
    records = await store.temporal_entities(tenant, EntityFilter())
    ids = {r.id for r in records}
    mine = {eid for eid in ids if eid in held or eid == subject}
    rest = sorted(ids - mine)
    if rest:
        query = InstanceQuery(attrs=identifier_attrs())
        history = await store.temporal_instances(tenant, rest, query)
        wanted = {subject, *held}
        for eid, attrs in history.items():
            if any(str(c) in wanted for insts in attrs.values() for inst in insts for c in _contents(inst.body)):
                mine.add(eid)
    return mine


async def every_holding(store: Store, subject: str) -> list[Holdings]:
    """What every tenant (snapshot content tenants too) holds of the subject; tenants holding nothing left out."""
    found = [await holdings(store, tenant, subject) for tenant in await store.list_tenants()]
    return [h for h in found if h]
