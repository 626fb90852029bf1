"""Discovery of entity types and attributes (clauses 5.7.5 to 5.7.10): what the store holds, per tenant.

The answers are computed from the entities themselves, so they can never disagree with a query. They are IRIs
here; the HTTP layer compacts them with the request's @context.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import NonexistentTenant, ResourceNotFound
from broker.core.model import Entity
from broker.store.base import EntityFilter, Store


@dataclass
class TypeInfo:
    iri: str
    entity_count: int = 0
    attributes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # attr IRI -> attribute types


@dataclass
class AttributeInfo:
    iri: str
    attribute_count: int = 0  # instances of the attribute across entities
    attribute_types: set[str] = field(default_factory=set)
    type_names: set[str] = field(default_factory=set)


class Discovery:
    def __init__(self, store: Store, access: Access | None = None) -> None:
        self.store = store
        self.access = access or Access(store)

    async def _entities(self, caller: Caller, flt: EntityFilter | None = None) -> list[Entity]:
        """The entities as the caller may read them: types and attributes it may not see are never listed."""
        view = await self.access.view(caller)
        if not await self.store.tenant_exists(caller.tenant):
            raise NonexistentTenant(f"tenant {caller.tenant!r} does not exist")
        return view.redact_all(await self.store.scan(caller.tenant, flt or EntityFilter()))

    async def types(self, caller: Caller) -> list[TypeInfo]:
        """Every entity type with its entity count and the attributes its entities have, in IRI order."""
        infos: dict[str, TypeInfo] = {}
        for entity in await self._entities(caller):
            for type_iri in entity["type"]:
                info = infos.setdefault(type_iri, TypeInfo(type_iri))
                info.entity_count += 1
                for attr, instances in entity["attrs"].items():
                    info.attributes[attr].update(i["type"] for i in instances)
        return [infos[k] for k in sorted(infos)]

    async def type_info(self, caller: Caller, type_iri: str) -> TypeInfo:
        entities = await self._entities(caller, EntityFilter(types=frozenset({type_iri})))
        if not entities:
            raise ResourceNotFound(f"no entity of type {type_iri}")
        info = TypeInfo(type_iri, len(entities))
        for entity in entities:
            for attr, instances in entity["attrs"].items():
                info.attributes[attr].update(i["type"] for i in instances)
        return info

    async def attributes(self, caller: Caller) -> list[AttributeInfo]:
        infos: dict[str, AttributeInfo] = {}
        for entity in await self._entities(caller):
            for attr, instances in entity["attrs"].items():
                info = infos.setdefault(attr, AttributeInfo(attr))
                info.attribute_count += len(instances)
                info.attribute_types.update(i["type"] for i in instances)
                info.type_names.update(entity["type"])
        return [infos[k] for k in sorted(infos)]

    async def attribute_info(self, caller: Caller, attr_iri: str) -> AttributeInfo:
        for info in await self.attributes(caller):
            if info.iri == attr_iri:
                return info
        raise ResourceNotFound(f"no entity has the attribute {attr_iri}")
