"""The entity operations of clause 5.6 (create, retrieve, merge, replace, attribute operations, delete, purge).

Each operation validates and expands its input first (nothing is written when that fails), then hands the store
a pure plan over the entity's current state, so that the write and its change event commit together.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from broker.core import attrs as A
from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import (
    AlreadyExists,
    BadRequestData,
    Conflict,
    NonexistentTenant,
    OperationNotSupported,
    ResourceNotFound,
)
from broker.core.model import Entity, Instance, now_iso
from broker.core.normalize import (
    CREATE,
    PATCH,
    Rules,
    check_attribute_name,
    check_uri,
    is_null_instance,
    parse_attribute,
    parse_entity,
)
from broker.core.registrations import Registration
from broker.federation.distributed import BASE as API_BASE
from broker.federation.distributed import (
    Federation,
    Hop,
    Named,
    Part,
    Planned,
    Remote,
    SourceFailure,
    attr_path,
    conflict_failure,
    entity_path,
    wire_attrs,
    wire_entity,
    wire_instance,
    wire_terms,
)
from broker.federation.writes import Routed, route_query
from broker.ld.codec import expand_attrs, expand_entity
from broker.ld.termmap import TermMap
from broker.query.q import format_q
from broker.store.base import Store, WriteFn, WritePlan

if TYPE_CHECKING:
    from broker.federation.reads import Origin, Reads
    from broker.query import Query

T = TypeVar("T")

SCOPE_IRI = "https://uri.etsi.org/ngsi-ld/scope"  # `scope` of the core @context, as an UpdateResult names it
#: Entities per store write of an unrestricted purge (record 0056).
PURGE_CHUNK = 1000


@dataclass
class UpdateResult:
    """Clause 5.2.18: which attributes were updated and which were not, with why (attribute IRIs)."""

    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)
    #: Parts of a distributed write a context source did not do (5.2.19: each with its registrationId).
    failed: list[SourceFailure] = field(default_factory=list)
    #: NGSILD-Warning values of sources asked on the way (Remote.notes: the type look-up of record 0471).
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return list(dict.fromkeys([*self.notes, *(f.warning for f in self.failed if f.warning)]))


@dataclass(frozen=True)
class MergeOptions:
    """Optional inputs of Merge Entity (clause 5.6.17.3)."""

    observed_at: str | None = None
    lang: str | None = None
    simplified: bool = False


def new_entity(doc: Mapping[str, Any], tm: TermMap, now: str) -> Entity:
    """A canonical entity from a validated normalized document, with its system attributes set."""
    entity = expand_entity(dict(doc), tm)
    entity["createdAt"] = entity["modifiedAt"] = now
    for instances in entity["attrs"].values():
        for inst in instances:
            A.stamp(inst, now)
    return entity


def _not_found(entity_id: str, warnings: Sequence[str] = ()) -> ResourceNotFound:
    error = ResourceNotFound(f"entity {entity_id} not found")
    error.warnings = tuple(warnings)
    return error


def _require(current: Mapping[str, Entity | None], entity_id: str, types: list[str] | None = None) -> Entity:
    """The target entity, which the plan may change in place (the store hands each plan its own copies)."""
    entity = current.get(entity_id)
    if entity is None or (types and not set(types) & set(entity["type"])):
        raise _not_found(entity_id)
    return entity


class Entities:
    """The entity operations over one store, and over the context sources registered for them (`federation`)."""

    def __init__(
        self,
        store: Store,
        access: Access | None = None,
        federation: Federation | None = None,
        reads: Reads | None = None,
    ) -> None:
        self.store = store
        self.access = access or Access(store)
        self.federation = federation
        #: The remote part of the reads (context source registrations, clause 4.3.6); None: local only.
        self.reads = reads

    # -- distributed writes (clause 4.3.6, broker.federation.distributed, records 0191-0196) -------------------
    async def _planned(
        self,
        caller: Caller,
        hop: Hop | None,
        operation: str,
        entity_id: str,
        types: Sequence[str] | None,
        attrs: Iterable[str] | None,
        *,
        read: bool = True,
    ) -> Planned | None:
        """The routing of a write over the registrations; None (the plain local path) when the tenant has none, the
        request says local=true, or none concerns this entity. Only then is the stored entity read for its types."""
        fed = self.federation
        if fed is None or hop is None:
            return None
        regs = await fed.live(caller, hop)
        if not regs:
            return None
        stored = (await self.store.get(caller.tenant, [entity_id])).get(entity_id) if read else None
        if stored is not None and types and not set(types) & set(stored["type"]):
            stored = None
        warnings: list[str] = []
        if stored is None and not types and read:
            types, warnings = await self._remote_types(caller, hop, entity_id, regs)
        planned = fed.plan(regs, operation, entity_id, types, attrs, stored)
        if planned is None and warnings:
            # Held neither here nor by a source that answered: the local write would be ResourceNotFound; said
            # here so that the answer names the sources that could not be asked (clause 6.3.17), after the same
            # check of the caller's right to write that the local write makes first.
            await self.access.require(caller, "write", "write entities in this tenant")
            raise _not_found(entity_id, warnings)
        return planned if planned is None else replace(planned, warnings=tuple(warnings))

    async def _remote_types(
        self, caller: Caller, hop: Hop, entity_id: str, regs: Sequence[Registration]
    ) -> tuple[list[str] | None, list[str]]:
        """The entity's types as the registrations by type alone answer them, and the warnings of those that failed
        (records 0471, 0473; `Reads.entity_types`)."""
        if self.reads is None:
            return None, []
        return await self.reads.entity_types(caller, regs, entity_id, hop.via, hop.headers)

    async def _distribute(
        self,
        caller: Caller,
        hop: Hop,
        planned: Planned,
        operation: str,
        local: Callable[[], Awaitable[T]] | None,
        parts: list[Part],
    ) -> tuple[T | None, Remote]:
        """The local part first (its error is the answer, nothing is forwarded), then every part at once (record
        0193). When nothing was done anywhere and every failure is a proxied registration without the operation,
        the answer is Conflict (5.6.2.4: "an error of type Conflict if the complete update failed")."""
        assert self.federation is not None
        # A write with no local part still needs the caller's right to write here (record 0193); per-attribute
        # policies are judged on what this broker holds, so they bind the local part only.
        await self.access.require(caller, "write", "write entities in this tenant")
        value = await local() if local is not None else None
        conflicts = [conflict_failure(r, operation) for r in planned.routing.conflicts]
        remote = await self.federation.send(caller, hop, parts, conflicts)
        remote.local = local is not None
        remote.notes = list(planned.warnings)
        if local is None and not remote.succeeded and len(conflicts) == len(remote.failures):
            error = Conflict("; ".join(f.reason for f in conflicts))
            error.warnings = tuple(planned.warnings)
            raise error
        return value, remote

    async def _routed(
        self,
        caller: Caller,
        hop: Hop | None,
        planned: Planned | None,
        operation: str,
        write: Callable[[frozenset[str] | None], Awaitable[object]],
        part: Callable[[Routed], Part],
        runs_here: Callable[[Planned], bool],
    ) -> Remote | None:
        """A single-entity write: `write(None)` alone without registrations; else `write(attributes kept here)` when
        `runs_here(planned)`, then one `part(routed)` per source (record 0193)."""
        if planned is None:
            await write(None)
            return None
        assert hop is not None
        keep = planned.routing.local

        async def local() -> object:
            return await write(keep)

        parts = [part(r) for r in planned.routing.remote]
        _, remote = await self._distribute(
            caller, hop, planned, operation, local if runs_here(planned) else None, parts
        )
        return remote

    async def _write(
        self, caller: Caller, ids: list[str], plan: WriteFn[T], action: str = "write", *, create_tenant: bool = False
    ) -> T | None:
        """A store write of `plan` that the access policies judge on what it would change (record 0221)."""
        view = await self.access.require(caller, action, f"{action} entities in this tenant")
        return await self.store.write(caller.tenant, ids, view.guard(plan, action), create_tenant=create_tenant)

    # -- reads -----------------------------------------------------------------------------------------------
    async def retrieve(self, caller: Caller, entity_id: str, types: list[str] | None = None) -> Entity:
        check_uri(entity_id, "entity id")
        view = await self.access.view(caller)
        stored = (await self.store.get(caller.tenant, [entity_id])).get(entity_id)
        found = None if stored is None else view.redact(stored)  # one the caller may not see is not found
        if found is None or (types and not set(types) & set(found["type"])):
            await self.check_tenant(caller)
            raise ResourceNotFound(f"entity {entity_id} not found")
        return found

    async def retrieve_from_sources(
        self, caller: Caller, entity_id: str, types: list[str] | None, origin: Origin | None
    ) -> tuple[Entity, tuple[str, ...]]:
        """Retrieve Entity (clause 5.7.1.4) over the local store and the matching registrations: (the entity merged
        from every part found, the NGSILD-Warning values of the sources that failed). Without registrations it is
        `retrieve`."""
        from broker.federation.merge import Fragment, merge_entities

        check_uri(entity_id, "entity id")
        fed = self.reads
        regs = [] if fed is None else await fed.plan(caller, "retrieveEntity", origin, types=types, entity_id=entity_id)
        if not regs:
            return await self.retrieve(caller, entity_id, types), ()
        assert fed is not None and origin is not None
        view = await self.access.view(caller)
        stored = (await self.store.get(caller.tenant, [entity_id])).get(entity_id)
        local = None if stored is None or (types and not set(types) & set(stored["type"])) else stored
        answer = await fed.retrieve(caller, regs, entity_id, types, None, origin)
        fragments = ([Fragment(local)] if local is not None else []) + answer.fragments.get(entity_id, [])
        found = view.redact(merge_entities(fragments)) if fragments else None
        if found is None or (types and not set(types) & set(found["type"])):
            error = ResourceNotFound(f"entity {entity_id} not found here nor at the context sources asked")
            error.warnings = tuple(answer.warnings)
            raise error
        return found, tuple(answer.warnings)

    async def check_tenant(self, caller: Caller) -> None:
        if not await self.store.tenant_exists(caller.tenant):
            raise NonexistentTenant(f"tenant {caller.tenant!r} does not exist")

    # -- create, replace, delete -----------------------------------------------------------------------------
    async def create(self, caller: Caller, tm: TermMap, body: Any, hop: Hop | None = None) -> str:
        return (await self.create_routed(caller, tm, body, hop))[0]

    async def create_routed(
        self, caller: Caller, tm: TermMap, body: Any, hop: Hop | None = None
    ) -> tuple[str, Remote | None]:
        """Create Entity (clause 5.6.1); with registrations (5.6.1.4) the attributes an exclusive or redirect one
        takes are created at its source, inclusive ones get a copy, the rest is created here (when something is
        left: an entity whose every attribute a source took is not created here)."""
        entity = new_entity(parse_entity(body), tm, now_iso())
        entity_id: str = entity["id"]

        async def write(keep: frozenset[str] | None) -> None:
            mine = entity if keep is None else only(entity, keep)

            def plan(current: Mapping[str, Entity | None]) -> WritePlan[str]:
                if current.get(entity_id) is not None:
                    raise AlreadyExists(f"entity {entity_id} already exists")
                return WritePlan({entity_id: mine}, entity_id)

            await self._write(caller, [entity_id], plan, create_tenant=True)

        def part(r: Routed) -> Part:
            body = Named(lambda tm: wire_entity(entity, r.attrs, tm))
            return Part(r.registration, r.attrs, "POST", f"{API_BASE}/entities", body)

        def runs_here(planned: Planned) -> bool:
            return bool(planned.routing.local) or not entity["attrs"]

        planned = await self._planned(
            caller, hop, "createEntity", entity_id, entity["type"], entity["attrs"], read=False
        )
        remote = await self._routed(caller, hop, planned, "createEntity", write, part, runs_here)
        return entity_id, remote

    async def replace(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        body: Any,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> Remote | None:
        """Replace Entity (clause 5.6.18): every attribute replaced, id and createdAt kept; a source that holds
        attributes of the entity gets them as its replacement (5.6.18.4)."""
        check_uri(entity_id, "entity id")
        doc = parse_entity(body, require_id=False)
        if doc.setdefault("id", entity_id) != entity_id:
            raise BadRequestData("the id in the body differs from the id in the URL")
        now = now_iso()
        fresh = new_entity(doc, tm, now)

        async def write(keep: frozenset[str] | None) -> None:
            mine = fresh if keep is None else only(fresh, keep)

            def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
                old = _require(current, entity_id, types)
                mine["createdAt"] = old["createdAt"]
                return WritePlan({entity_id: mine})

            await self._write(caller, [entity_id], plan)

        def part(r: Routed) -> Part:
            body = Named(lambda tm: wire_entity(fresh, r.attrs, tm))
            return Part(r.registration, r.attrs, "PUT", entity_path(entity_id), body)

        planned = await self._planned(caller, hop, "replaceEntity", entity_id, types or fresh["type"], fresh["attrs"])
        return await self._routed(caller, hop, planned, "replaceEntity", write, part, _held_here)

    async def delete(
        self, caller: Caller, entity_id: str, types: list[str] | None = None, hop: Hop | None = None
    ) -> Remote | None:
        """Delete Entity (clause 5.6.6): here if held here, and at every source holding it (5.6.6.4, record 0194)."""
        check_uri(entity_id, "entity id")

        async def write(keep: frozenset[str] | None) -> None:
            def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
                _require(current, entity_id, types)
                return WritePlan({entity_id: None})

            await self._write(caller, [entity_id], plan)

        def part(r: Routed) -> Part:
            return Part(r.registration, r.attrs, "DELETE", entity_path(entity_id))

        planned = await self._planned(caller, hop, "deleteEntity", entity_id, types, None)
        return await self._routed(caller, hop, planned, "deleteEntity", write, part, _held_here)

    # -- attribute operations --------------------------------------------------------------------------------
    async def append(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        body: Any,
        no_overwrite: bool,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> UpdateResult:
        """Append Attributes (clause 5.6.3)."""
        check_uri(entity_id, "entity id")
        fragment = _fragment(body, tm, entity_id, CREATE)

        def local(frag: Entity) -> WriteFn[UpdateResult]:
            def plan(current: Mapping[str, Entity | None]) -> WritePlan[UpdateResult]:
                entity = _require(current, entity_id, types)
                result = apply_append(entity, frag, no_overwrite, now_iso())
                return WritePlan({entity_id: entity}, result)

            return plan

        params = {"options": "noOverwrite"} if no_overwrite else None
        return await self._attrs_write(caller, hop, "appendAttrs", "POST", entity_id, types, fragment, local, params)

    async def update_attrs(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        body: Any,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> UpdateResult:
        """Update Attributes (clause 5.6.2): replace matching instances, append others, NGSI-LD Null deletes."""
        check_uri(entity_id, "entity id")
        fragment = _fragment(body, tm, entity_id, PATCH)

        def local(frag: Entity) -> WriteFn[UpdateResult]:
            def plan(current: Mapping[str, Entity | None]) -> WritePlan[UpdateResult]:
                entity = _require(current, entity_id, types)
                result = apply_update(entity, frag, now_iso())
                return WritePlan({entity_id: entity}, result)

            return plan

        return await self._attrs_write(caller, hop, "updateAttrs", "PATCH", entity_id, types, fragment, local)

    async def _attrs_write(
        self,
        caller: Caller,
        hop: Hop | None,
        operation: str,
        method: str,
        entity_id: str,
        types: list[str] | None,
        fragment: Entity,
        local: Callable[[Entity], WriteFn[UpdateResult]],
        params: Mapping[str, str] | None = None,
    ) -> UpdateResult:
        """Append or Update Attributes, locally and at the sources the registrations route attributes to
        (5.6.2.4, 5.6.3.4): each source gets its attributes at .../attrs; the UpdateResult unites all answers."""
        planned = await self._planned(caller, hop, operation, entity_id, types, fragment["attrs"])
        if planned is None:
            return await self._write_result(caller, entity_id, local(fragment))
        assert hop is not None
        routing = planned.routing
        mine = only(fragment, routing.local)
        path = entity_path(entity_id, "attrs")
        parts = [
            Part(r.registration, r.attrs, method, path, _attrs_body(fragment, r.attrs), params) for r in routing.remote
        ]
        run = None
        if planned.stored is not None and (mine["attrs"] or "scope" in mine or mine.get("type")):
            run = lambda: self._write_result(caller, entity_id, local(mine))  # noqa: E731
        result, remote = await self._distribute(caller, hop, planned, operation, run, parts)
        out = result or UpdateResult()
        out.updated = list(dict.fromkeys([*out.updated, *sorted(remote.done)]))
        if planned.stored is None:  # 5.6.2.4: not held here; what no source took was written nowhere
            left = sorted(set(mine["attrs"]) - remote.done)
            out.not_updated += [(a, f"{entity_id} is not held locally, nor by a source") for a in left]
        out.failed = remote.failures
        out.notes = remote.notes
        return out

    async def merge(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        body: Any,
        opts: MergeOptions,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> Remote | None:
        """Merge Entity (clause 5.6.17)."""
        check_uri(entity_id, "entity id")
        rules = Rules(allow_null=True, simplified=opts.simplified)
        fragment = _fragment(body, tm, entity_id, rules)

        async def write(keep: frozenset[str] | None) -> None:
            mine = fragment if keep is None else only(fragment, keep)

            def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
                entity = _require(current, entity_id, types)
                apply_merge(entity, mine, opts, now_iso())
                return WritePlan({entity_id: entity})

            await self._write(caller, [entity_id], plan)

        params = {k: v for k, v in (("observedAt", opts.observed_at), ("lang", opts.lang)) if v}

        def part(r: Routed) -> Part:
            head = {"type": fragment["type"]} if fragment["type"] else {}
            body = Named(lambda tm: wire_entity({**head, "attrs": fragment["attrs"]}, r.attrs, tm))
            return Part(r.registration, r.attrs, "PATCH", entity_path(entity_id), body, params or None)

        def runs_here(planned: Planned) -> bool:
            return _held_here(planned) and (bool(planned.routing.local) or _has_head(fragment))

        planned = await self._planned(caller, hop, "mergeEntity", entity_id, types, fragment["attrs"])
        return await self._routed(caller, hop, planned, "mergeEntity", write, part, runs_here)

    async def update_attr(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        attr: str,
        body: Any,
        dataset_id: str | None = None,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> Remote | None:
        """Partial Attribute Update (clause 5.6.4): merge the fragment into one existing instance, whose type the
        fragment may not change (5.6.4.4, decision record 0116)."""
        iri, new = _attr_fragment(tm, entity_id, attr, body, dataset_id, PATCH)
        if is_null_instance(new):  # 5.6.4.1: "supports the deletion of sub-Attributes but not ... the whole Attribute"
            raise OperationNotSupported(
                f"{attr}: Partial Attribute update does not delete the attribute itself (clause 5.6.4); "
                "use Delete Attribute"
            )
        explicit_type = isinstance(body, dict) and "type" in body

        def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
            entity = _require(current, entity_id, types)
            instances = entity["attrs"].get(iri, [])
            i = A.find_instance(instances, new.get("datasetId"))
            if i < 0:
                raise ResourceNotFound(f"attribute {attr} (datasetId {new.get('datasetId')}) not found in {entity_id}")
            fragment = new if explicit_type else _keep_type(instances[i], new)
            _require_same_type(attr, instances[i], fragment)
            instances[i] = A.merge_instance(instances[i], fragment, now_iso())
            _touch(entity)
            return WritePlan({entity_id: entity})

        # A fragment without a type leaves the source's attribute type as it is, as here (record 0116).
        sent = new if explicit_type else {k: v for k, v in new.items() if k != "type"}
        return await self._attr_routed(caller, hop, "updateAttrs", "PATCH", entity_id, types, iri, sent, plan)

    async def replace_attr(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        attr: str,
        body: Any,
        dataset_id: str | None = None,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> Remote | None:
        """Replace Attribute (clause 5.6.19): the instance with the same datasetId is replaced, createdAt kept."""
        iri, new = _attr_fragment(tm, entity_id, attr, body, dataset_id, CREATE)

        def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
            entity = _require(current, entity_id, types)
            if A.find_instance(entity["attrs"].get(iri, []), new.get("datasetId")) < 0:
                raise ResourceNotFound(f"attribute {attr} not found in {entity_id}")
            now = now_iso()
            A.put_instance(entity, iri, new, now)
            _touch(entity, now)
            return WritePlan({entity_id: entity})

        return await self._attr_routed(caller, hop, "replaceAttrs", "PUT", entity_id, types, iri, new, plan)

    async def delete_attr(
        self,
        caller: Caller,
        tm: TermMap,
        entity_id: str,
        attr: str,
        dataset_id: str | None,
        delete_all: bool,
        types: list[str] | None = None,
        hop: Hop | None = None,
    ) -> Remote | None:
        """Delete Attribute (clause 5.6.5)."""
        check_uri(entity_id, "entity id")
        if attr != "scope":  # 5.6.5.4: "If the target Attribute is scope, remove the scope ... from the target Entity"
            check_target_attribute(attr)
        iri = tm.expand_term(attr)
        if dataset_id is not None:
            check_uri(dataset_id, "datasetId")

        def plan(current: Mapping[str, Entity | None]) -> WritePlan[None]:
            entity = _require(current, entity_id, types)
            if attr == "scope":
                if entity.pop("scope", None) is None:
                    raise ResourceNotFound(f"{entity_id} has no scope")
            elif not A.remove_instance(entity, iri, dataset_id, delete_all):
                raise ResourceNotFound(f"attribute {attr} not found in {entity_id}")
            _touch(entity)
            return WritePlan({entity_id: entity})

        if attr == "scope":  # not an attribute a registration names: always local
            await self._write(caller, [entity_id], plan)
            return None
        params = {k: v for k, v in (("datasetId", dataset_id), ("deleteAll", "true" if delete_all else None)) if v}
        return await self._attr_routed(caller, hop, "deleteAttrs", "DELETE", entity_id, types, iri, None, plan, params)

    async def _attr_routed(
        self,
        caller: Caller,
        hop: Hop | None,
        operation: str,
        method: str,
        entity_id: str,
        types: list[str] | None,
        iri: str,
        instance: Instance | None,
        plan: WriteFn[None],
        params: Mapping[str, str] | None = None,
    ) -> Remote | None:
        """One attribute's write (.../attrs/{attrId}), here and at the sources that hold that attribute."""

        async def write(keep: frozenset[str] | None) -> None:
            await self._write(caller, [entity_id], plan)

        def part(r: Routed) -> Part:
            body = None if instance is None else Named(lambda tm: wire_instance(iri, instance, tm))
            return Part(r.registration, r.attrs, method, attr_path(entity_id, iri), body, params)

        def runs_here(planned: Planned) -> bool:
            return _held_here(planned) and iri in planned.routing.local

        planned = await self._planned(caller, hop, operation, entity_id, types, [iri])
        return await self._routed(caller, hop, planned, operation, write, part, runs_here)

    # -- purge -----------------------------------------------------------------------------------------------
    async def purge(
        self, caller: Caller, ids: list[str], drop: list[str] | None = None, keep: list[str] | None = None
    ) -> list[str]:
        """Purge Entities (DELETE /entities) here: delete the given entities, or only drop/keep some attributes;
        the ids of those it changed."""
        if not ids:
            return []

        def plan(current: Mapping[str, Entity | None]) -> WritePlan[list[str]]:
            writes: dict[str, Entity | None] = {}
            for entity_id, entity in current.items():
                if entity is not None:
                    writes[entity_id] = _prune(entity, drop, keep)
            return WritePlan(writes, list(writes))

        if not (await self.access.view(caller)).unrestricted:
            # A policy judges the whole purge: refused, it must change nothing, so it stays one write.
            return await self._write(caller, ids, plan, "purge") or []
        # Record 0056: in chunks, each one atomic, so that a purge of a whole type holds a chunk in memory, not
        # every entity with its history rows (40,000 entities in one write took 2 GB).
        purged: list[str] = []
        for start in range(0, len(ids), PURGE_CHUNK):
            chunk: list[str] | None = await self._write(caller, ids[start : start + PURGE_CHUNK], plan, "purge")
            purged.extend(chunk or [])
        return purged

    async def purge_routed(
        self, caller: Caller, ids: list[str], purge: PurgeRequest
    ) -> tuple[list[str], Remote | None]:
        """Purge Entities here, then at every registration matching the query (5.6.21.4, record 0196): the ids
        purged here and what the sources did (None without registrations or with local=true)."""
        fed, hop = self.federation, purge.hop
        regs = await fed.live(caller, hop) if fed is not None else []
        purged = await self.purge(caller, ids, purge.drop, purge.keep)
        if fed is None or not regs:
            return purged, None
        await self.access.require(caller, "purge", "purge entities in this tenant")
        routing = route_query(regs, "purgeEntity", purge.types, purge.ids, purge.drop)
        if not routing.distributed:
            return purged, None
        parts = [
            Part(r.registration, frozenset(), "DELETE", f"{API_BASE}/entities", None, purge.named(), purge.link)
            for r in routing.remote
        ]
        conflicts = [conflict_failure(r, "purgeEntity") for r in routing.conflicts]
        remote = await fed.send(caller, hop, parts, conflicts)
        remote.local = bool(purged)
        return purged, remote

    async def _write_result(self, caller: Caller, entity_id: str, plan: Any) -> UpdateResult:
        result = await self._write(caller, [entity_id], plan)
        assert isinstance(result, UpdateResult)
        return result


# -- pure appliers (also used by the batch operations) ----------------------------------------------------------
def apply_append(entity: Entity, fragment: Entity, no_overwrite: bool, now: str) -> UpdateResult:
    result = UpdateResult()
    for iri, instances in fragment["attrs"].items():
        for inst in instances:
            exists = A.find_instance(entity["attrs"].get(iri, []), inst.get("datasetId")) >= 0
            if exists and no_overwrite:
                result.not_updated.append((iri, "attribute exists and options=noOverwrite was given"))
                continue
            A.put_instance(entity, iri, copy.deepcopy(inst), now)
            result.updated.append(iri)
    # Clause 5.6.3.4: the fragment's scope replaces the entity's when overwriting is allowed, else is added to it.
    _apply_head(entity, fragment, scope_replace=not no_overwrite)
    _touch(entity, now)
    result.updated = list(dict.fromkeys(result.updated))
    return result


def apply_update(entity: Entity, fragment: Entity, now: str) -> UpdateResult:
    result = UpdateResult()
    for iri, instances in fragment["attrs"].items():
        for inst in instances:
            if is_null_instance(inst):
                A.remove_instance(entity, iri, inst.get("datasetId"))
            else:
                A.put_instance(entity, iri, A.drop_nulls(copy.deepcopy(inst)), now)
            result.updated.append(iri)
    if "scope" in fragment:
        # Clause 5.6.2.4: "If scope is included in the Fragment and the target entity includes scope, replace the
        # scope ..., otherwise ignore it"; an ignored scope is reported as not updated (207, decision record 0114).
        if "scope" in entity:
            entity["scope"] = list(fragment["scope"])
        else:
            result.not_updated.append((SCOPE_IRI, "the entity has no scope to replace (clause 5.6.2.4)"))
    A.add_types(entity, fragment.get("type", []))
    _touch(entity, now)
    result.updated = list(dict.fromkeys(result.updated))
    return result


def apply_merge(entity: Entity, fragment: Entity, opts: MergeOptions, now: str) -> None:
    for iri, instances in fragment["attrs"].items():
        for inst in instances:
            _merge_one(entity, iri, inst, opts, now)
    _apply_head(entity, fragment, scope_replace=True)
    _touch(entity, now)


def _merge_one(entity: Entity, iri: str, inst: Instance, opts: MergeOptions, now: str) -> None:
    existing = entity["attrs"].get(iri, [])
    i = A.find_instance(existing, inst.get("datasetId"))
    if is_null_instance(inst):
        A.remove_instance(entity, iri, inst.get("datasetId"))
        return
    if i < 0:
        A.put_instance(entity, iri, A.drop_nulls(copy.deepcopy(inst)), now)
        return
    old = existing[i]
    if opts.simplified:
        inst = _keep_type(old, inst)
    if opts.lang and old.get("type") == "LanguageProperty" and inst.get("type") == "Property":
        inst = {"type": "LanguageProperty", "languageMap": {**old["languageMap"], opts.lang: inst["value"]}}
    if opts.observed_at and "observedAt" in old and "observedAt" not in inst:
        inst = {**inst, "observedAt": opts.observed_at}
    existing[i] = A.merge_instance(old, inst, now)


def _require_same_type(attr: str, old: Instance, new: Instance) -> None:
    if new.get("type") != old.get("type"):
        raise BadRequestData(
            f"{attr} is a {old.get('type')}: a partial attribute update cannot make it a {new.get('type')} "
            "(clause 5.6.4.4)"
        )


def _keep_type(old: Instance, new: Instance) -> Instance:
    """A simplified or concise fragment keeps the type of the instance it lands on (clause 5.6.17.4)."""
    old_type, new_type = old.get("type"), new.get("type")
    if new_type == old_type or new_type != "Property" or "value" not in new:
        return new
    member = {
        "Relationship": "object",
        "GeoProperty": "value",
        "LanguageProperty": "languageMap",
        "VocabProperty": "vocab",
        "JsonProperty": "json",
        "ListProperty": "valueList",
        "ListRelationship": "objectList",
    }.get(str(old_type))
    if member is None:
        return new
    out = {k: v for k, v in new.items() if k not in {"type", "value"}}
    out.update({"type": old_type, member: new["value"]})
    return out


def _apply_head(entity: Entity, fragment: Entity, scope_replace: bool) -> None:
    A.add_types(entity, fragment.get("type", []))
    if "scope" in fragment:
        if scope_replace:
            entity["scope"] = list(fragment["scope"])
        else:
            entity["scope"] = list(dict.fromkeys([*entity.get("scope", []), *fragment["scope"]]))


def _touch(entity: Entity, now: str | None = None) -> None:
    entity["modifiedAt"] = now or now_iso()


def _prune(entity: Entity, drop: list[str] | None, keep: list[str] | None) -> Entity | None:
    if drop is None and keep is None:
        return None
    pruned = copy.deepcopy(entity)
    names = list(pruned["attrs"])
    for iri in names:
        if (drop is not None and iri in drop) or (keep is not None and iri not in keep):
            del pruned["attrs"][iri]
    _touch(pruned)
    return pruned


@dataclass(frozen=True)
class PurgeRequest:
    """What a distributed Purge Entities forwards (record 0196): the query's parameters as the sources get them
    (type, drop and keep as full IRIs; q, scopeQ and the geo-query as written, with the request's @context)."""

    hop: Hop
    params: Mapping[str, str]
    link: str | None = None
    types: list[str] | None = None
    ids: list[str] | None = None
    drop: list[str] | None = None
    keep: list[str] | None = None
    #: The parsed query, to write q and geoproperty in a source's own terms (record 0470).
    query: Query | None = None

    def named(self) -> Named:
        """The parameters as one source gets them: as above without a jsonldContext; with one, type, drop, keep,
        q and geoproperty in its terms (4.3.6.6: compaction "over both payload and query parameters")."""
        return Named(self._params)

    def _params(self, tm: TermMap) -> Mapping[str, str]:
        if tm is wire_terms():
            return self.params
        out = dict(self.params)
        for key, names in (("type", self.types), ("drop", self.drop), ("keep", self.keep)):
            if names:
                out[key] = ",".join(tm.compact_iri(n) for n in names)
        if self.query is not None and self.query.q is not None:
            out["q"] = format_q(self.query.q, tm)
        if self.query is not None and self.query.geo is not None and "geoproperty" in out:
            out["geoproperty"] = tm.compact_iri(self.query.geo.geoproperty)
        return out


def _held_here(planned: Planned) -> bool:
    return planned.stored is not None


def _has_head(fragment: Entity) -> bool:
    """Whether a fragment changes the entity itself (types or scope), or has no attribute at all."""
    return bool(fragment.get("type")) or "scope" in fragment or not fragment["attrs"]


def _attrs_body(fragment: Entity, attrs: frozenset[str]) -> Named:
    """The attributes of an append or update as one source gets them (in its terms, record 0470)."""
    return Named(lambda tm: wire_attrs(fragment, attrs, tm))


def only(fragment: Entity, attrs: Iterable[str]) -> Entity:
    """The fragment with only the named attributes (the ones a write keeps locally)."""
    keep = set(attrs)
    return {**fragment, "attrs": {k: v for k, v in fragment["attrs"].items() if k in keep}}


def _fragment(body: Any, tm: TermMap, entity_id: str, rules: Rules) -> Entity:
    """An entity fragment (attributes, maybe type and scope) expanded; an id in it must be the target's."""
    doc = parse_entity(body, rules, require_id=False, require_type=False)
    if doc.setdefault("id", entity_id) != entity_id:
        raise BadRequestData("the id in the body differs from the id in the URL")
    return expand_fragment(doc, tm)


def expand_fragment(doc: dict[str, Any], tm: TermMap) -> Entity:
    """Expand an entity fragment, whose type is optional (an empty type list means 'types unchanged')."""
    return expand_entity({**doc, "type": doc.get("type", [])}, tm)


def check_target_attribute(attr: str) -> None:
    """The attribute a path names (clauses 5.6.4.4, 5.6.5.4, 5.6.19.4): a valid name, and never `scope` or another
    member name the core @context reserves (BadRequestData)."""
    check_attribute_name(attr)


def _attr_fragment(
    tm: TermMap, entity_id: str, attr: str, body: Any, dataset_id: str | None, rules: Rules
) -> tuple[str, Instance]:
    """The single instance that PATCH/PUT .../attrs/{attrId} carries, expanded, targeted by datasetId."""
    check_uri(entity_id, "entity id")
    check_target_attribute(attr)
    if isinstance(body, dict) and "@context" in body:
        body = {k: v for k, v in body.items() if k != "@context"}
    instances = parse_attribute(body, attr, rules)
    if len(instances) != 1:
        raise BadRequestData(f"{attr}: one attribute instance expected")
    if dataset_id is not None:
        instances[0]["datasetId"] = check_uri(dataset_id, "datasetId")
    iri = tm.expand_term(attr)
    expanded = expand_attrs({attr: instances}, tm)
    return iri, expanded[iri][0]
