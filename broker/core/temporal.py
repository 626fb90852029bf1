"""The temporal operations (clauses 5.6.11-5.6.16, 5.7.3, 5.7.4) over the history the store keeps.

Every write made through the entity API already left its history in the store (broker.temporal.history, same
transaction). The operations here add to it directly (a producer posting past observations), read it back as
the temporal representation of an entity (normalized, simplified, aggregated), correct and delete it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from broker.core.access import UNRESTRICTED, Access, View
from broker.core.caller import Caller
from broker.core.entity_maps import EntityMaps, MapRequest, expiry
from broker.core.errors import BadRequestData, Forbidden, InvalidRequest, NonexistentTenant, ResourceNotFound
from broker.core.model import Entity, Instance, now_iso
from broker.core.normalize import (
    CREATE,
    check_attribute_name,
    check_datetime,
    check_uri,
    parse_instance,
    parse_scopes,
    parse_types,
)
from broker.core.query import MAP_WINDOW, Paging, prefilter
from broker.ld.codec import expand_entity
from broker.ld.termmap import TermMap
from broker.query import Query, matches
from broker.query.collation import ROOT, Collation
from broker.query.q import And, Compare, Exists, LinkedPath, Match, Or, Path, QNode
from broker.query.types import AllTypes
from broker.store.base import (
    ALL_DATASETS,
    EntityFilter,
    EntityMapRecord,
    InstanceQuery,
    Store,
    TemporalEntityRecord,
    TemporalHistory,
    TemporalInstance,
)
from broker.temporal import aggregate as agg
from broker.temporal.history import make_instance, sort_time
from broker.temporal.times import Duration, display_instant, to_micros

if TYPE_CHECKING:
    from broker.core.registrations import Registration
    from broker.federation.reads import Origin, Reads

TIMERELS = ("before", "after", "between")
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
#: Temporal entities read per store call of a query.
_BATCH = 64


@dataclass(frozen=True)
class TimeQuery:
    """Clause 4.11: the temporal restriction (None timerel = the whole history)."""

    timerel: str | None = None
    time_at: str | None = None
    end_time_at: str | None = None
    timeproperty: str = "observedAt"

    def bounds(self) -> tuple[int | None, int | None]:
        """(inclusive start, exclusive end) in microseconds."""
        at = to_micros(self.time_at) if self.time_at else None
        if self.timerel == "before":
            return None, at
        if self.timerel == "after":
            return at, None
        if self.timerel == "between":
            return at, to_micros(self.end_time_at) if self.end_time_at else None
        return None, None


def parse_time_query(params: Mapping[str, str], *, required: bool) -> TimeQuery:
    """timerel, timeAt, endTimeAt, timeproperty from a request, checked (clause 4.11, 6.18.3.2)."""
    timerel = params.get("timerel")
    time_at, end_time_at = params.get("timeAt"), params.get("endTimeAt")
    prop = params.get("timeproperty", "observedAt")
    if prop not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty={prop!r} is not one of {', '.join(TIME_PROPERTIES)}")
    if timerel is None:
        if required:
            raise BadRequestData("a temporal query needs timerel (before, after or between) and timeAt")
        if time_at is not None or end_time_at is not None:
            raise BadRequestData("timeAt and endTimeAt need timerel")
        return TimeQuery(timeproperty=prop)
    if timerel not in TIMERELS:
        raise BadRequestData(f"timerel={timerel!r} is not one of before, after, between")
    if time_at is None:
        raise BadRequestData(f"timerel={timerel} needs timeAt")
    check_datetime(time_at, "timeAt")
    if timerel == "between":
        if end_time_at is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        check_datetime(end_time_at, "endTimeAt")
        if to_micros(end_time_at) <= to_micros(time_at):
            raise BadRequestData("endTimeAt must be after timeAt")
    elif end_time_at is not None:
        raise BadRequestData(f"endTimeAt only goes with timerel=between, not {timerel}")
    return TimeQuery(timerel, time_at, end_time_at, prop)


@dataclass(frozen=True)
class IdOrder:
    """orderBy of a temporal query: by "id" only (clause 5.7.4.4), ids compared by `collation` (4.23.1)."""

    descending: bool = False
    collation: Collation = ROOT


@dataclass(frozen=True)
class TemporalView:
    """What to read and how to show it: representation, attributes, datasets, lastN, aggregation."""

    time: TimeQuery = field(default_factory=TimeQuery)
    representation: str = "normalized"  # normalized | temporalValues | aggregatedValues
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    datasets: frozenset[str | None] | None = None
    last_n: int | None = None
    methods: tuple[str, ...] = ()
    period: Duration = field(default_factory=Duration)
    lang: str | None = None  # clause 4.15: LanguageProperty instances shown in one language


@dataclass
class TemporalEntity:
    """A temporal entity as read: the record, its selected instances (attribute IRI -> oldest first), and for the
    aggregated representation the aggregates (attribute IRI -> [(datasetId, {method: rows})])."""

    record: TemporalEntityRecord
    attrs: dict[str, list[TemporalInstance]]
    aggregates: dict[str, list[tuple[str | None, dict[str, list[list[Any]]]]]] | None = None
    #: The registration it was read from (None: the local store).
    source: str | None = None


@dataclass(frozen=True)
class Partial:
    """A response cut by the instance limit (206, clause 6.3.10): the range it covers, newest first when lastN."""

    first: str
    last: str
    size: int | None


@dataclass
class TemporalPage:
    entities: list[TemporalEntity]
    count: int | None
    more: bool
    partial: Partial | None
    #: Where the next page starts when it is not offset + limit (an entity map's position, clause 5.5.9.3).
    next_offset: int | None = None
    #: NGSILD-Warning values of the context sources that failed (clause 6.3.17).
    warnings: tuple[str, ...] = ()


class Temporal:
    def __init__(
        self, store: Store, instance_limit: int = 10_000, access: Access | None = None, reads: Reads | None = None
    ) -> None:
        self.store = store
        self.instance_limit = instance_limit
        self.access = access or Access(store)
        #: The remote part of the temporal reads (registrations with a time interval, clause 4.3.6); None: local.
        self.reads = reads

    async def _check_write(
        self, caller: Caller, entity_id: str, head: Mapping[str, Any] | None, attrs: Iterable[str]
    ) -> None:
        """403 unless every attribute is within the caller's `write` reach in the entity (its types and scope as
        the write gives them, else as its history has them): record 0221."""
        view = await self.access.require(caller, "write", "write temporal evolutions in this tenant")
        if view.unrestricted:
            return
        if head is None:
            known = await self.store.temporal_entities(caller.tenant, EntityFilter(ids=frozenset({entity_id})))
            head = _head(known[0]) if known else {}
        allowed = view.attrs_of("write", {"id": entity_id, "attrs": {}, **head})
        refused = [a for a in attrs if allowed is None or not allowed(a)]
        if allowed is None or refused:
            what = f"attribute {refused[0]} of " if refused else ""
            raise Forbidden(f"the access policies refuse this: {what}{entity_id} is out of this caller's reach")

    # -- provision (5.6.11 - 5.6.16) -------------------------------------------------------------------------
    async def upsert(self, caller: Caller, tm: TermMap, body: Any) -> tuple[str, bool]:
        """Create or Update Temporal Evolution of an Entity (5.6.11): (entity id, created)."""
        entity_id, head, instances = _temporal_fragment(body, tm, require_type=True)
        await self._check_write(caller, entity_id, head, {i.attr for i in instances})
        created = await self.store.temporal_add(caller.tenant, entity_id, head, instances, create=True)
        return entity_id, created

    async def add_attrs(self, caller: Caller, tm: TermMap, entity_id: str, body: Any) -> None:
        """Add Attributes to Temporal Evolution of an Entity (5.6.12)."""
        check_uri(entity_id, "entity id")
        if isinstance(body, dict) and body.get("id", entity_id) != entity_id:
            raise BadRequestData("the id in the body differs from the id in the URL")
        doc = {**body, "id": entity_id} if isinstance(body, dict) else body
        _, head, instances = _temporal_fragment(doc, tm, require_type=False)
        await self._require_tenant(caller)
        await self._check_write(caller, entity_id, head, {i.attr for i in instances})
        await self.store.temporal_add(caller.tenant, entity_id, head, instances, create=False)

    async def delete(self, caller: Caller, entity_id: str) -> None:
        """Delete Temporal Evolution of an Entity (5.6.16)."""
        check_uri(entity_id, "entity id")
        await self._require_tenant(caller)
        await self._check_write(caller, entity_id, None, await self._history_attrs(caller, entity_id))
        if not await self.store.temporal_delete(caller.tenant, entity_id):
            raise ResourceNotFound(f"no temporal evolution of entity {entity_id}")

    async def delete_attr(
        self, caller: Caller, entity_id: str, attr: str, dataset: str | None, delete_all: bool
    ) -> None:
        """Delete Attribute from Temporal Evolution of an Entity (5.6.13)."""
        check_uri(entity_id, "entity id")
        await self._require_entity(caller, entity_id)
        await self._check_write(caller, entity_id, None, [attr])
        removed = await self.store.temporal_delete_attr(
            caller.tenant, entity_id, attr, ALL_DATASETS if delete_all else dataset
        )
        if not removed:
            raise ResourceNotFound(f"entity {entity_id} has no history of attribute {attr}")

    async def modify_instance(
        self, caller: Caller, tm: TermMap, entity_id: str, attr: str, instance_id: str, body: Any
    ) -> None:
        """Modify Attribute instance in Temporal Evolution of an Entity (5.6.14): the body, an EntityTemporal
        Fragment, holds the attribute with the one instance that replaces it (the instance id stays). The target
        is looked up first (5.6.14.4: an unknown entity, attribute or instance is ResourceNotFound), then the
        fragment is read (decision record 0123)."""
        check_uri(entity_id, "entity id")
        check_uri(instance_id, "instance id")
        await self._require_entity(caller, entity_id)
        await self._check_write(caller, entity_id, None, [attr])
        current = await self.store.temporal_instances(caller.tenant, [entity_id], InstanceQuery(frozenset({attr})))
        history = current.get(entity_id, {}).get(attr)
        if not history:
            raise ResourceNotFound(f"entity {entity_id} has no history of attribute {tm.compact_iri(attr)}")
        old = next((i for i in history if i.instance_id == instance_id), None)
        if old is None:
            raise ResourceNotFound(
                f"no instance {instance_id} of attribute {tm.compact_iri(attr)} in entity {entity_id}"
            )
        name, raw = _instance_of_fragment(body, tm, entity_id, attr)
        _, _, instances = _temporal_fragment({"id": entity_id, name: raw}, tm, require_type=False)
        new_body = {**instances[0].body, "createdAt": old.body.get("createdAt", now_iso()), "modifiedAt": now_iso()}
        if not await self.store.temporal_replace_instance(
            caller.tenant, entity_id, TemporalInstance(attr, instance_id, new_body)
        ):
            raise ResourceNotFound(
                f"no instance {instance_id} of attribute {tm.compact_iri(attr)} in entity {entity_id}"
            )

    async def delete_instance(self, caller: Caller, entity_id: str, attr: str, instance_id: str) -> None:
        """Delete Attribute instance from Temporal Evolution of an Entity (5.6.15)."""
        check_uri(entity_id, "entity id")
        check_uri(instance_id, "instance id")
        await self._require_entity(caller, entity_id)
        await self._check_write(caller, entity_id, None, [attr])
        if not await self.store.temporal_delete_instance(caller.tenant, entity_id, attr, instance_id):
            raise ResourceNotFound(f"no instance {instance_id} of attribute {attr} in entity {entity_id}")

    async def _history_attrs(self, caller: Caller, entity_id: str) -> set[str]:
        """The attributes an entity's history holds (what deleting the whole history removes)."""
        history = await self.store.temporal_instances(caller.tenant, [entity_id], InstanceQuery(per_attr=1))
        return set(history.get(entity_id, {}))

    async def _require_tenant(self, caller: Caller) -> None:
        if not await self.store.tenant_exists(caller.tenant):
            raise NonexistentTenant(f"tenant {caller.tenant!r} does not exist")

    async def _require_entity(self, caller: Caller, entity_id: str) -> TemporalEntityRecord:
        await self._require_tenant(caller)
        found = await self.store.temporal_entities(caller.tenant, EntityFilter(ids=frozenset({entity_id})))
        if not found:
            raise ResourceNotFound(f"no temporal evolution of entity {entity_id}")
        return found[0]

    # -- consumption (5.7.3, 5.7.4) --------------------------------------------------------------------------
    async def retrieve(
        self, caller: Caller, entity_id: str, view: TemporalView
    ) -> tuple[TemporalEntity, Partial | None]:
        """Retrieve Temporal Evolution of an Entity (5.7.3)."""
        check_uri(entity_id, "entity id")
        record = await self._require_entity(caller, entity_id)
        seen = await self.access.view(caller)
        if seen.attrs_of("temporal", _head(record)) is None:  # out of reach: as if it had no history (record 0221)
            raise ResourceNotFound(f"no temporal evolution of entity {entity_id}")
        found, partial = await self._read(caller.tenant, [record], view, None, seen)
        if not found:  # the entity is known but has nothing in the interval: an empty temporal representation
            return TemporalEntity(record, {}, {} if view.representation == "aggregatedValues" else None), None
        return found[0], partial

    async def retrieve_from_sources(
        self, caller: Caller, entity_id: str, view: TemporalView, origin: Origin | None
    ) -> tuple[TemporalEntity, Partial | None, tuple[str, ...]]:
        """Retrieve Temporal Evolution of an Entity (5.7.3) over the local store and the registrations of temporal
        sources offering it (record 0187): the merged history, the local part's cut, the failed sources'
        warnings. Without such registrations it is `retrieve`."""
        from broker.federation.reads import merge_temporal

        check_uri(entity_id, "entity id")
        regs = await self._sources(caller, "retrieveTemporal", origin, view, entity_id=entity_id)
        if not regs:
            return (*await self.retrieve(caller, entity_id, view), ())
        assert self.reads is not None and origin is not None
        local: tuple[TemporalEntity, Partial | None] | None = None
        with contextlib.suppress(ResourceNotFound):  # the history may be held by the sources only
            local = await self.retrieve(caller, entity_id, view)
        answer = await self.reads.temporal(caller, regs, origin, view, entity_id=entity_id)
        seen = await self.access.view(caller)
        parts = ([local[0]] if local else []) + _seen_parts(answer.entities.get(entity_id, []), seen)
        if not parts:
            error = ResourceNotFound(f"no temporal evolution of entity {entity_id} here nor at the sources asked")
            error.warnings = tuple(answer.warnings)
            raise error
        merged = merge_temporal(parts, view) if len(parts) > 1 else parts[0]
        return merged, local[1] if local else None, tuple(answer.warnings)

    async def _sources(
        self,
        caller: Caller,
        operation: str,
        origin: Origin | None,
        view: TemporalView,
        *,
        entity_id: str | None = None,
        query: Query | None = None,
    ) -> list[Registration]:
        """The temporal registrations a read is sent to; none for the aggregated representation, which Agora
        computes over its own instances only (record 0187)."""
        if self.reads is None or origin is None or view.representation == "aggregatedValues":
            return []
        types = prefilter(query).types if query is not None and query.types is not None else None
        return await self.reads.plan(
            caller, operation, origin, types=types, entity_id=entity_id, attrs=view.attrs, query=query
        )

    async def query_from_sources(
        self,
        caller: Caller,
        query: Query,
        view: TemporalView,
        paging: Paging,
        origin: Origin | None,
        *,
        count: bool = False,
        order: IdOrder | None = None,
    ) -> TemporalPage:
        """Query Temporal Evolution of Entities (5.7.4) over the local store and the temporal sources (record
        0187): paged over the merged ids as Query Entities is (record 0185). Without sources it is `query`."""
        from broker.federation.reads import merge_temporal

        regs = await self._sources(caller, "queryTemporal", origin, view, query=query)
        if not regs:
            return await self.query(caller, query, view, paging, count=count, order=order)
        if order is not None and not isinstance(query.types, AllTypes):
            raise BadRequestData("orderBy needs local=true: this query is distributed to context sources")
        assert self.reads is not None and origin is not None
        end = paging.offset + paging.limit
        local = await self.query(caller, query, view, Paging(end + 1, 0), count=count)
        answer = await self.reads.temporal(caller, regs, origin, view, query=query, want=None if count else end + 1)
        seen = await self.access.view(caller)
        by_id: dict[str, list[TemporalEntity]] = {e.record.id: [e] for e in local.entities}
        for entity_id, parts in answer.entities.items():
            by_id.setdefault(entity_id, []).extend(_seen_parts(parts, seen))
        ordered = [parts for _, parts in sorted(by_id.items()) if parts]
        every = [merge_temporal(parts, view) if len(parts) > 1 else parts[0] for parts in ordered]
        total = len(every) if count else None
        more = len(every) > end or answer.more or local.more
        return TemporalPage(every[paging.offset : end], total, more, local.partial, None, tuple(answer.warnings))

    async def query(
        self,
        caller: Caller,
        query: Query,
        view: TemporalView,
        paging: Paging,
        *,
        count: bool = False,
        order: IdOrder | None = None,
    ) -> TemporalPage:
        """Query Temporal Evolution of Entities (5.7.4): the entities the query selects (q, geo and scope
        evaluated over the instances in the interval), one page of them, with their history."""
        records = await self._candidates(caller, query, order)
        seen = await self.access.view(caller)
        end = paging.offset + paging.limit
        selected: list[TemporalEntity] = []
        partial: Partial | None = None
        for start in range(0, len(records), _BATCH):
            batch, cut = await self._read(caller.tenant, records[start : start + _BATCH], view, query, seen)
            selected.extend(batch)
            partial = partial or cut
            if not count and len(selected) > end:
                break
        return TemporalPage(
            selected[paging.offset : end], len(selected) if count else None, len(selected) > end, partial
        )

    async def _candidates(self, caller: Caller, query: Query, order: IdOrder | None) -> list[TemporalEntityRecord]:
        """The temporal entities of the query's types, ids and id pattern (what the store filters), in id order
        (the store's, or `order`'s)."""
        await self._require_tenant(caller)
        reject_linked(query)
        flt = prefilter(query)
        records = await self.store.temporal_entities(
            caller.tenant, EntityFilter(types=flt.types, ids=flt.ids, id_pattern=flt.id_pattern)
        )
        if order is not None:
            records.sort(key=lambda r: order.collation.key(r.id), reverse=order.descending)
        return records

    # -- entity maps (5.14.5, 5.5.9.3, 5.7.4.4) ------------------------------------------------------------------
    async def create_map(
        self,
        caller: Caller,
        query: Query,
        view: TemporalView,
        lifetime: str | None,
        maps: EntityMaps,
        order: IdOrder | None = None,
        origin: Origin | None = None,
    ) -> EntityMapRecord:
        """Create EntityMap for Query Temporal Evolution of Entities (clause 5.14.5): the ids of every entity the
        temporal query selects (S4), in id order or the orderBy asked (decision records 0072, 0074); with the
        matching history sources (`origin`), the merged ids in id order, each with where it was found (0187)."""
        expires_at = expiry(lifetime)
        seen = await self.access.view(caller)
        records = await self._candidates(caller, query, order)
        ids = await self._matching_ids(caller.tenant, records, view, query, seen)
        regs = await self._sources(caller, "queryTemporal", origin, view, query=query)
        if not regs:
            return await maps.store_map(caller, ids, expires_at)
        assert self.reads is not None and origin is not None
        answer = await self.reads.temporal(caller, regs, origin, view, query=query)
        where: dict[str, list[str]] = {i: ["@none"] for i in ids}
        for entity_id, parts in answer.entities.items():
            if _seen_parts(parts, seen):
                where.setdefault(entity_id, []).extend(dict.fromkeys(p.source for p in parts if p.source))
        return await maps.store_map(caller, sorted(where), expires_at, {"entityMap": where})

    async def query_map(
        self,
        caller: Caller,
        query: Query,
        view: TemporalView,
        paging: Paging,
        request: MapRequest,
        maps: EntityMaps,
        *,
        count: bool = False,
        order: IdOrder | None = None,
        origin: Origin | None = None,
    ) -> tuple[TemporalPage, str, bool]:
        """(page, map id, whether the map was made now) of a temporal query that uses an entity map (5.7.4.4):
        the named map while it exists, else a new one, as Query Entities does (decision record 0015)."""
        if request.map_id is not None:
            page = await self.map_page(caller, request.map_id, query, view, paging, count=count, origin=origin)
            if page is not None:
                return page, request.map_id, False
        record = await self.create_map(caller, query, view, request.lifetime, maps, order, origin)
        page = await self.map_page(caller, record.id, query, view, paging, count=count, origin=origin)
        if page is None:  # expired between the two calls: only with a lifetime of microseconds
            raise ResourceNotFound(f"entity map {record.id} expired before its first page was read")
        return page, record.id, True

    async def map_page(
        self,
        caller: Caller,
        map_id: str,
        query: Query,
        view: TemporalView,
        paging: Paging,
        *,
        count: bool = False,
        origin: Origin | None = None,
    ) -> TemporalPage | None:
        """One page of a map's temporal entities (clause 5.5.9.3), None when the map is gone: `offset` is a position
        in the map, the entities that no longer exist or match are passed over and the page filled from the
        positions after them; the next page starts after the last position read."""
        await self._require_tenant(caller)
        reject_linked(query)
        seen = await self.access.view(caller)
        regs = await self._sources(caller, "queryTemporal", origin, view, query=query)
        warnings: list[str] = []
        found: list[tuple[int, TemporalEntity]] = []
        partial: Partial | None = None
        position = paging.offset
        while len(found) <= paging.limit:
            ids = await self.store.entity_map_ids(caller.tenant, map_id, position, position + _BATCH)
            if ids is None and position == paging.offset:
                return None
            if not ids:
                break
            batch, cut = await self._read(caller.tenant, await self._records(caller.tenant, ids), view, query, seen)
            if regs:
                batch = await self._window_from_sources(caller, regs, origin, view, query, ids, batch, warnings)
            at = {eid: position + n for n, eid in enumerate(ids)}
            found += sorted(((at[e.record.id], e) for e in batch), key=lambda pair: pair[0])
            partial = partial or cut
            position += len(ids)
        total = None
        if count:
            every = await self.store.entity_map_ids(caller.tenant, map_id, 0, 2**62) or []
            records = await self._records(caller.tenant, every)
            if regs:
                local, _ = await self._read(caller.tenant, records, view, query, seen)
                total = len(await self._window_from_sources(caller, regs, origin, view, query, every, local, warnings))
            else:
                total = len(await self._matching_ids(caller.tenant, records, view, query, seen))
        more = len(found) > paging.limit
        page = [e for _, e in found[: paging.limit]]
        next_offset = found[paging.limit][0] if more else None
        return TemporalPage(page, total, more, partial, next_offset, tuple(dict.fromkeys(warnings)))

    async def _window_from_sources(
        self,
        caller: Caller,
        regs: list[Registration],
        origin: Origin | None,
        view: TemporalView,
        query: Query,
        ids: list[str],
        local: list[TemporalEntity],
        warnings: list[str],
    ) -> list[TemporalEntity]:
        """A map window's temporal entities: the local ones merged with the sources' answers for those ids (each
        asked with the query again, 4.3.6.7), as the caller may see them."""
        from broker.federation.reads import merge_temporal

        assert self.reads is not None and origin is not None
        seen = await self.access.view(caller)
        by_id: dict[str, list[TemporalEntity]] = {e.record.id: [e] for e in local}
        for start in range(0, len(ids), MAP_WINDOW):  # the ids go into the forwarded URL
            chunk = frozenset(ids[start : start + MAP_WINDOW])
            window = chunk if query.ids is None else query.ids & chunk
            if not window:
                continue
            answer = await self.reads.temporal(caller, regs, origin, view, query=replace(query, ids=window))
            warnings.extend(answer.warnings)
            for entity_id, parts in answer.entities.items():
                by_id.setdefault(entity_id, []).extend(_seen_parts(parts, seen))
        return [merge_temporal(parts, view) if len(parts) > 1 else parts[0] for parts in by_id.values() if parts]

    async def _records(self, tenant: str, ids: list[str]) -> list[TemporalEntityRecord]:
        """The temporal entities of `ids` that exist, in the order of `ids`."""
        found = {r.id: r for r in await self.store.temporal_entities(tenant, EntityFilter(ids=frozenset(ids)))}
        return [found[i] for i in ids if i in found]

    async def _matching_ids(
        self, tenant: str, records: list[TemporalEntityRecord], view: TemporalView, query: Query, seen: View
    ) -> list[str]:
        """The ids of the entities a temporal query selects among `records`: an instance in the interval (one
        per attribute is enough to know), and q, geo-query and scope met."""
        light = replace(view, representation="normalized", last_n=1)
        ids: list[str] = []
        for start in range(0, len(records), _BATCH):
            batch, _ = await self._read(tenant, records[start : start + _BATCH], light, query, seen)
            ids += [e.record.id for e in batch]
        return ids

    async def _read(
        self,
        tenant: str,
        records: list[TemporalEntityRecord],
        view: TemporalView,
        query: Query | None,
        seen: View = UNRESTRICTED,
    ) -> tuple[list[TemporalEntity], Partial | None]:
        """The temporal entities of `records` the view and query select, with their history, as `seen` (the
        caller's access view) may read it: hidden attributes are dropped before q sees them (record 0221)."""
        start, end = view.time.bounds()
        limit = self.instance_limit
        per_attr: int | None = limit + 1 if view.last_n is None else min(view.last_n, limit + 1)
        aggregated = view.representation == "aggregatedValues"
        probe = aggregated and _store_can_aggregate(view, query)
        if aggregated:
            # Aggregations see every instance in the interval (lastN still applies), unless the store aggregates:
            # then one instance per attribute tells which attributes there are, and of which kind.
            per_attr = 1 if probe else view.last_n
        iq = InstanceQuery(
            attrs=view.attrs,
            timeproperty=view.time.timeproperty,
            start=start,
            end=end,
            datasets=view.datasets,
            per_attr=per_attr,
            newest_first=view.last_n is not None or probe,
        )
        ids = [r.id for r in records]
        history = await self.store.temporal_instances(tenant, ids, iq)
        named = condition_attrs(query)
        conditions: TemporalHistory = {}
        if named:
            # q and geo-query are evaluated on every instance of the attributes they name in the interval (all
            # datasets, whatever lastN or the projection keep): clause 5.7.4.4, steps S2 and S3.
            whole = replace(iq, attrs=named, datasets=None, per_attr=None, newest_first=False)
            conditions = await self.store.temporal_instances(tenant, [i for i in ids if history.get(i)], whole)
        if not seen.unrestricted:
            history, conditions = _redacted(history, records, seen), _redacted(conditions, records, seen)
        out = []
        for record in records:
            attrs = history.get(record.id)
            if not attrs:
                continue
            if query is not None:
                evaluated = _as_entity(record, conditions.get(record.id, {}) if named else attrs)
                if not matches(evaluated, query):
                    continue
                if named:
                    attrs = _meeting_query(evaluated, query, attrs, conditions.get(record.id, {}), iq)
            out.append(TemporalEntity(record, attrs))
        if aggregated:
            full = replace(iq, per_attr=view.last_n, newest_first=view.last_n is not None)
            for entity in out:
                entity.aggregates = await self._aggregate(tenant, entity, view, full, probed=probe)
                _require_eligible(entity.aggregates, view)
            return out, None
        return out, _cut(out, limit, view)

    async def _aggregate(
        self, tenant: str, entity: TemporalEntity, view: TemporalView, iq: InstanceQuery, *, probed: bool
    ) -> dict[str, list[tuple[str | None, dict[str, list[list[Any]]]]]]:
        """Per attribute and datasetId, the aggregates: from the store's sums when it can (numeric values of one
        datasetId), else from the instances (the reference)."""
        out: dict[str, list[tuple[str | None, dict[str, list[list[Any]]]]]] = {}
        for attr, instances in entity.attrs.items():
            if probed:
                fast = await self._store_aggregate(tenant, entity.record.id, attr, view, iq)
                if fast is not None:
                    out[attr] = [(instances[-1].body.get("datasetId"), fast)]
                    continue
                loaded = await self.store.temporal_instances(
                    tenant, [entity.record.id], replace(iq, attrs=frozenset({attr}))
                )
                instances = loaded.get(entity.record.id, {}).get(attr, [])
            out[attr] = self._aggregate_instances(instances, view)
        return out

    async def _store_aggregate(
        self, tenant: str, entity_id: str, attr: str, view: TemporalView, iq: InstanceQuery
    ) -> dict[str, list[list[Any]]] | None:
        start, end = view.time.bounds()
        assert start is not None  # _store_can_aggregate
        periods = agg.Periods(start, view.period, end)
        width = view.period.micros or (end or 0) - start + 1
        dq = replace(iq, attrs=frozenset({attr}), per_attr=None)
        rows = await self.store.temporal_numeric_buckets(
            tenant, entity_id, attr, dq, start, width, methods=frozenset(view.methods)
        )
        return None if rows is None else agg.from_buckets(rows, list(view.methods), periods, start)

    def _aggregate_instances(
        self, instances: list[TemporalInstance], view: TemporalView
    ) -> list[tuple[str | None, dict[str, list[list[Any]]]]]:
        prop = view.time.timeproperty
        start, end = view.time.bounds()
        groups: dict[str | None, list[TemporalInstance]] = {}
        for inst in instances:
            groups.setdefault(inst.body.get("datasetId"), []).append(inst)
        out = []
        for dataset, members in groups.items():
            origin = start if start is not None else min(sort_time(i, prop) for i in members)
            periods = agg.Periods(origin, view.period, end)
            out.append((dataset, agg.aggregate(members, list(view.methods), periods, prop)))
        return out


def _require_eligible(
    aggregates: dict[str, list[tuple[str | None, dict[str, list[list[Any]]]]]], view: TemporalView
) -> None:
    """Clause 5.7.4.4: an Attribute the request names (attrs, pick) that is not eligible for one of the aggregation
    methods is InvalidRequest; a method that does not apply gives null (agg.apply), which is what is looked for.
    Attributes shown without being named keep the null (decision records 0070, 0075)."""
    for attr in view.attrs or ():
        for _, methods in aggregates.get(attr, []):
            for method, rows in methods.items():
                if any(row[0] is None for row in rows):
                    raise InvalidRequest(
                        f"aggregation method {method} does not apply to the values of {attr} (clause 4.5.19.1)"
                    )


def _store_can_aggregate(view: TemporalView, query: Query | None) -> bool:
    """Whether the store's numeric sums can answer: fixed-width periods from a known start, every instance of the
    interval (no lastN), and no condition that needs the instances themselves (q, geo, scope)."""
    start, end = view.time.bounds()
    fixed = not view.period.months and (end is not None or not view.period.is_zero)
    conditions = query is not None and (query.q is not None or query.geo is not None or query.scope is not None)
    return view.last_n is None and start is not None and fixed and not conditions


def condition_attrs(query: Query | None) -> frozenset[str]:
    """The attributes whose instances a query's q and geo-query test: the first name of every q path, and the
    geoproperty (a linked path counts by its relationship)."""
    if query is None:
        return frozenset()
    names = set(_q_attrs(query.q)) if query.q is not None else set()
    if query.geo is not None:
        names.add(query.geo.geoproperty)
    return frozenset(names)


def _q_paths(node: QNode) -> list[Path]:
    if isinstance(node, And | Or):
        return [path for term in node.terms for path in _q_paths(term)]
    assert isinstance(node, Exists | Compare | Match)
    return [node.path]


def _q_attrs(node: QNode) -> list[str]:
    return [p.relationship.names[0] if isinstance(p, LinkedPath) else p.names[0] for p in _q_paths(node)]


def reject_linked(query: Query) -> None:
    """Clause 5.7.4.4: filter conditions that use Linked Entity retrieval (`rel{attr}`) are BadRequestData on a
    temporal query (the linked entities have no instant to be read at)."""
    if query.q is not None and any(isinstance(p, LinkedPath) for p in _q_paths(query.q)):
        raise BadRequestData("Linked Entity conditions (rel{attr}) are not allowed in a temporal query's q")


def _meeting_query(
    evaluated: Entity,
    query: Query,
    shown: dict[str, list[TemporalInstance]],
    whole: dict[str, list[TemporalInstance]],
    iq: InstanceQuery,
) -> dict[str, list[TemporalInstance]]:
    """The instances a matching entity shows (clause 5.7.4.4: only those "which meet the temporal, query and
    geoquery restrictions", decision record 0071): an instance of an attribute the query names is kept when the
    query still holds with that instance standing alone for its attribute; other attributes keep what they
    showed. lastN and the instance limit then count the kept instances, and an attribute left without one is
    left out."""
    out = dict(shown)
    for attr in shown.keys() & whole.keys():
        kept = [
            inst
            for inst in whole[attr]
            if (iq.datasets is None or inst.body.get("datasetId") in iq.datasets)
            and matches({**evaluated, "attrs": {**evaluated["attrs"], attr: [inst.body]}}, query)
        ]
        if iq.per_attr is not None:
            kept = kept[-iq.per_attr :] if iq.newest_first else kept[: iq.per_attr]
        if kept:
            out[attr] = kept
        else:
            del out[attr]
    return out


def _as_entity(record: TemporalEntityRecord, attrs: dict[str, list[TemporalInstance]]) -> Entity:
    """The entity a query's q, geo and scope conditions are evaluated on: every instance in the interval counts
    as an instance of its attribute (decision record 0070)."""
    entity: Entity = {"id": record.id, "type": record.type, "attrs": {a: [i.body for i in v] for a, v in attrs.items()}}
    if record.scope:
        entity["scope"] = record.scope
    return entity


def _cut(found: list[TemporalEntity], limit: int, view: TemporalView) -> Partial | None:
    """Apply the instance limit: when an attribute has more than `limit` instances, every attribute is cut at one
    instant (the oldest kept for lastN, which pages backwards; else the newest) so that the pages tile the
    interval without overlap, and the range is reported (206 + Content-Range)."""
    prop = view.time.timeproperty
    over = [insts for e in found for insts in e.attrs.values() if len(insts) > limit]
    if not over:
        return None
    backwards = view.last_n is not None
    if backwards:
        cut = max(sort_time(insts[-limit], prop) for insts in over)
    else:
        cut = min(sort_time(insts[limit], prop) for insts in over)

    def keep(at: int) -> bool:
        return at >= cut if backwards else at < cut

    times: list[int] = []
    for entity in found:
        for attr, insts in list(entity.attrs.items()):
            kept = [i for i in insts if keep(sort_time(i, prop))]
            times += [sort_time(i, prop) for i in kept]
            if kept:
                entity.attrs[attr] = kept
            else:
                del entity.attrs[attr]
    # The range is that of the instances enclosed (RFC 7233 clause 4.2: both ends included): backwards from the
    # newest to the oldest returned, forwards from the oldest to the newest returned (decision record 0121).
    if backwards:
        newest = max(times) if times else cut
        return Partial(display_instant(newest), display_instant(cut), view.last_n)
    oldest = min(times) if times else cut
    return Partial(display_instant(oldest), display_instant(max(times) if times else cut), None)


# -- input ---------------------------------------------------------------------------------------------------------
def _head(record: TemporalEntityRecord) -> dict[str, Any]:
    """What the access policies judge of a temporal entity: its id, types and scope."""
    head: dict[str, Any] = {"id": record.id, "type": record.type, "attrs": {}}
    if record.scope:
        head["scope"] = record.scope
    return head


def _seen_parts(parts: list[TemporalEntity], seen: View) -> list[TemporalEntity]:
    """A source's temporal entities as the caller may read them (record 0221 holds for remote history too)."""
    if seen.unrestricted:
        return parts
    out = []
    for part in parts:
        allowed = seen.attrs_of("temporal", _head(part.record))
        if allowed is not None:
            out.append(
                TemporalEntity(part.record, {a: v for a, v in part.attrs.items() if allowed(a)}, None, part.source)
            )
    return out


def _redacted(history: TemporalHistory, records: list[TemporalEntityRecord], seen: View) -> TemporalHistory:
    """`history` with only the entities and attributes `seen` may read with the `temporal` action."""
    out: TemporalHistory = {}
    for record in records:
        attrs = history.get(record.id)
        allowed = None if attrs is None else seen.attrs_of("temporal", _head(record))
        if attrs is not None and allowed is not None:
            out[record.id] = {a: v for a, v in attrs.items() if allowed(a)}
    return out


def _temporal_fragment(
    body: Any, tm: TermMap, *, require_type: bool
) -> tuple[str, dict[str, Any] | None, list[TemporalInstance]]:
    """A temporal entity document (clause 5.2.20): every attribute an instance or an array of instances, each
    recorded as given (observedAt as the client states it), stamped with createdAt/modifiedAt by the broker."""
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object")
    entity_id = check_uri(body.get("id"), "id") if "id" in body else None
    if entity_id is None:
        raise BadRequestData("the temporal entity has no id")
    doc: dict[str, Any] = {"id": entity_id, "type": []}
    head: dict[str, Any] | None = None
    if "type" in body:
        doc["type"] = parse_types(body["type"])
    elif require_type:
        raise BadRequestData("the temporal entity has no type")
    if "scope" in body:
        doc["scope"] = parse_scopes(body["scope"])
    for key, raw in body.items():
        if key in ("id", "type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt"):
            continue
        check_attribute_name(key)
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise BadRequestData(f"{key}: an empty list of instances")
        doc[key] = [_temporal_instance(item, key) for item in items]
    expanded = expand_entity(doc, tm)
    if doc["type"] or "scope" in doc:
        head = {"type": expanded["type"]}
        if "scope" in expanded:
            head["scope"] = expanded["scope"]
    now = now_iso()
    instances = []
    for iri, bodies in expanded["attrs"].items():
        for inst in bodies:
            inst["createdAt"] = inst["modifiedAt"] = now
            instances.append(make_instance(iri, inst))
    return entity_id, head, instances


def _instance_of_fragment(body: Any, tm: TermMap, entity_id: str, attr: str) -> tuple[str, Any]:
    """The one instance of `attr` in the EntityTemporal Fragment of a Modify Attribute instance (5.6.14.3: "including
    only the new Attribute instance, contained by an Array of exactly one item"; a bare object is taken as that one
    item). The fragment may repeat the entity's id (it must be the URL's) and type."""
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object with the attribute to modify")
    if "id" in body and body["id"] != entity_id:
        raise BadRequestData("the id in the body differs from the id in the URL")
    names = [k for k in body if k not in ("@context", "id", "type")]
    if len(names) != 1 or tm.expand_term(names[0]) != attr:
        raise BadRequestData(f"the body must hold exactly the attribute {tm.compact_iri(attr)}, with its new instance")
    raw = body[names[0]]
    if isinstance(raw, list):
        if len(raw) != 1:
            raise BadRequestData("the body must hold exactly one instance")
        raw = raw[0]
    return names[0], raw


def _temporal_instance(raw: Any, name: str) -> Instance:
    if not isinstance(raw, dict):
        raise BadRequestData(f"{name}: each instance of a temporal attribute must be a JSON object")
    cleaned = {k: v for k, v in raw.items() if k not in ("instanceId", "createdAt", "modifiedAt")}
    return parse_instance(cleaned, name, CREATE)
