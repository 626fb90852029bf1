"""Discovery of entity types and attributes (clauses 5.7.5 to 5.7.10): what the store holds, per tenant.

The answers are computed from the entities themselves, so they can never disagree with a query. They are IRIs
here; the HTTP layer compacts them with the request's @context.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import NonexistentTenant, ResourceNotFound
from broker.core.model import Entity
from broker.ld.termmap import TermMap
from broker.store.base import EntityFilter, Store

if TYPE_CHECKING:
    from broker.core.registrations import Registration
    from broker.federation.reads import Origin, Reads


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
    """The four discovery operations over the local store and, given an `origin`, the registrations offering them
    (clauses 5.7.5-5.7.10; record 0186): the sources' answers are read in the @context they were asked with and
    united with the local ones by IRI; NGSILD-Warning values of failed sources go to `warnings`."""

    def __init__(self, store: Store, access: Access | None = None, reads: Reads | None = None) -> None:
        self.store = store
        self.access = access or Access(store)
        self.reads = reads

    async def _entities(self, caller: Caller, flt: EntityFilter | None = None) -> list[Entity]:
        """The entities as the caller may read them: types and attributes it may not see are never listed."""
        view = await self.access.view(caller)
        if not await self.store.tenant_exists(caller.tenant):
            raise NonexistentTenant(f"tenant {caller.tenant!r} does not exist")
        return view.redact_all(await self.store.scan(caller.tenant, flt or EntityFilter()))

    async def _local(self, caller: Caller, flt: EntityFilter | None, remote: bool) -> list[Entity]:
        """The local entities; a tenant this broker does not hold is an empty one when sources were asked."""
        try:
            return await self._entities(caller, flt)
        except NonexistentTenant:
            if remote:
                return []
            raise

    async def _remote(
        self,
        caller: Caller,
        operation: str,
        path: str,
        params: dict[str, str],
        origin: Origin | None,
        warnings: list[str] | None,
        **match: Any,
    ) -> list[tuple[Registration, Any, TermMap]] | None:
        """What the registrations offering `operation` answer at `path` (None: no registration asked)."""
        if self.reads is None:
            return None
        regs = await self.reads.plan(caller, operation, origin, **match)
        if not regs:
            return None
        assert origin is not None
        found, warned = await self.reads.discover(caller, regs, path, params, origin)
        if warnings is not None:
            warnings.extend(warned)
        return found

    async def types(
        self, caller: Caller, origin: Origin | None = None, warnings: list[str] | None = None
    ) -> list[TypeInfo]:
        """Every entity type with its entity count and the attributes its entities have, in IRI order."""
        remote = await self._remote(
            caller, "retrieveEntityTypeDetails", "/types", {"details": "true"}, origin, warnings
        )
        infos: dict[str, TypeInfo] = {}
        for entity in await self._local(caller, None, remote is not None):
            for type_iri in entity["type"]:
                info = infos.setdefault(type_iri, TypeInfo(type_iri))
                info.entity_count += 1
                for attr, instances in entity["attrs"].items():
                    info.attributes[attr].update(i["type"] for i in instances)
        for reg, body, tm in remote or ():
            for item in _objects(body):
                type_iri = _iri(item.get("typeName"), tm)
                if type_iri is None or not _offers(reg, type_iri=type_iri):
                    continue
                info = infos.setdefault(type_iri, TypeInfo(type_iri))
                for attr in _iris(item.get("attributeNames"), tm):
                    if _offers(reg, attr_iri=attr):
                        info.attributes.setdefault(attr, set())  # listed without its attribute types
        return [infos[k] for k in sorted(infos)]

    async def type_info(
        self, caller: Caller, type_iri: str, origin: Origin | None = None, warnings: list[str] | None = None
    ) -> TypeInfo:
        path = f"/types/{quote(type_iri, safe='')}"  # a full IRI names the type whatever @context the source has
        remote = await self._remote(caller, "retrieveEntityTypeInfo", path, {}, origin, warnings, types=[type_iri])
        entities = await self._local(caller, EntityFilter(types=frozenset({type_iri})), remote is not None)
        info = TypeInfo(type_iri, len(entities))
        for entity in entities:
            for attr, instances in entity["attrs"].items():
                info.attributes[attr].update(i["type"] for i in instances)
        for reg, body, rtm in remote or ():
            if not isinstance(body, dict) or _iri(body.get("typeName"), rtm) != type_iri:
                continue
            count = body.get("entityCount")
            info.entity_count += count if isinstance(count, int) and not isinstance(count, bool) else 0
            for detail in _objects(body.get("attributeDetails")):
                attr = _iri(detail.get("attributeName"), rtm)
                if attr is not None and _offers(reg, attr_iri=attr):
                    info.attributes[attr].update(_strings(detail.get("attributeTypes")))
        if not info.entity_count and not info.attributes:
            error = ResourceNotFound(f"no entity of type {type_iri}")
            error.warnings = tuple(warnings or ())
            raise error
        return info

    async def attributes(
        self, caller: Caller, origin: Origin | None = None, warnings: list[str] | None = None
    ) -> list[AttributeInfo]:
        remote = await self._remote(
            caller, "retrieveAttrTypeDetails", "/attributes", {"details": "true"}, origin, warnings
        )
        infos: dict[str, AttributeInfo] = {}
        for entity in await self._local(caller, None, remote is not None):
            for attr, instances in entity["attrs"].items():
                info = infos.setdefault(attr, AttributeInfo(attr))
                info.attribute_count += len(instances)
                info.attribute_types.update(i["type"] for i in instances)
                info.type_names.update(entity["type"])
        for reg, body, tm in remote or ():
            for item in _objects(body):
                _add_attribute(infos, reg, item, tm)
        return [infos[k] for k in sorted(infos)]

    async def attribute_info(
        self, caller: Caller, attr_iri: str, origin: Origin | None = None, warnings: list[str] | None = None
    ) -> AttributeInfo:
        for info in await self.attributes(caller, origin, warnings):
            if info.iri == attr_iri:
                return info
        error = ResourceNotFound(f"no entity has the attribute {attr_iri}")
        error.warnings = tuple(warnings or ())
        raise error


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _iri(name: Any, tm: TermMap) -> str | None:
    return tm.expand_term(name) if isinstance(name, str) and name else None


def _iris(names: Any, tm: TermMap) -> list[str]:
    return [tm.expand_term(n) for n in _strings(names)]


def _offers(reg: Registration, *, type_iri: str | None = None, attr_iri: str | None = None) -> bool:
    """Whether a registration offers that type or attribute (4.3.6.1: its constraints are respected)."""
    return reg.may_hold([type_iri] if type_iri else None, None, [attr_iri] if attr_iri else None)


def _add_attribute(infos: dict[str, AttributeInfo], reg: Registration, item: dict[str, Any], tm: TermMap) -> None:
    """One Attribute (5.2.28) a source answered, added to what is known of it."""
    attr = _iri(item.get("attributeName"), tm)
    if attr is None or not _offers(reg, attr_iri=attr):
        return
    info = infos.setdefault(attr, AttributeInfo(attr))
    count = item.get("attributeCount")
    info.attribute_count += count if isinstance(count, int) and not isinstance(count, bool) else 0
    info.attribute_types.update(_strings(item.get("attributeTypes")))
    info.type_names.update(t for t in _iris(item.get("typeNames"), tm) if _offers(reg, type_iri=t))
