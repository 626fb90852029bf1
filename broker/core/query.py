"""Query Entities (clause 5.7.2): plan, select with the reference evaluator, order, page.

The store answers the part it can always answer (types, ids, id pattern) as a pre-filter; the reference evaluator
(broker.query) decides the rest, so every backend returns the same answer. Linked-entity conditions (`rel{attr}`)
fetch the entities they need from the store in rounds, never one by one.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from shapely.geometry import Point

from broker.core.access import Access, View
from broker.core.caller import Caller
from broker.core.errors import BadRequestData, NonexistentTenant, TooManyResults
from broker.core.model import Entity
from broker.query import Query, matches
from broker.query.collation import ROOT, Collation
from broker.query.evaluate import targets
from broker.query.geo import EARTH_RADIUS_M, GeoQuery
from broker.query.projection import OrderKey
from broker.query.q import And, AttrPath, Compare, Literal, QNode, Range
from broker.query.types import AllTypes, TypeExpr, TypeName, TypeOr
from broker.store.base import Box, EntityFilter, Store

if TYPE_CHECKING:
    from broker.core.registrations import Registration
    from broker.federation.reads import Answer, Origin, Reads

#: Rounds of linked-entity fetching for `a{b{c}}` chains; deeper chains resolve to "absent".
LINK_ROUNDS = 4
#: Entity map positions read at once when the map's entities are asked of context sources too: the ids go into
#: the forwarded URL, which must stay well under the 8 KiB most servers accept.
MAP_WINDOW = 64


@dataclass(frozen=True)
class Selection:
    """Every match of a query; for a distributed one, where each was found ("@none": the local store, else
    registration ids) and the NGSILD-Warning values of the sources that failed."""

    entities: list[Entity]
    sources: dict[str, list[str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass
class _MapSources:
    """The context sources an entity map's pages are read from, and the warnings of those that failed."""

    caller: Caller
    origin: Origin | None
    regs: list[Registration]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Paging:
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class Page:
    entities: list[Entity]
    #: Every match, when it was counted (count=true or orderBy need them all); None when reading stopped early.
    count: int | None
    #: Whether matches follow this page (what rel="next" needs).
    more: bool
    #: Where the next page starts when it is not offset + limit (an entity map's position, clause 5.5.9.3).
    next_offset: int | None = None
    #: NGSILD-Warning values of the context sources that failed (clause 6.3.17).
    warnings: tuple[str, ...] = ()


class Queries:
    def __init__(
        self,
        store: Store,
        max_limit: int = 1000,
        batch_size: int = 256,
        access: Access | None = None,
        reads: Reads | None = None,
    ) -> None:
        self.store = store
        self.access = access or Access(store)
        self.max_limit = max_limit
        self.batch_size = batch_size
        #: The remote part of the plan (context source registrations, clause 4.3.6); None: local only.
        self.reads = reads

    def check_paging(self, paging: Paging) -> None:
        if paging.limit > self.max_limit:
            raise TooManyResults(f"limit {paging.limit} is above this broker's maximum page size {self.max_limit}")

    async def query(
        self,
        caller: Caller,
        queries: list[Query],
        paging: Paging,
        attrs: frozenset[str] | None = None,
        *,
        count: bool = False,
        origin: Origin | None = None,
    ) -> Page:
        """One page of the entities matching any of `queries` (clause 5.7.2), with those of the matching context
        sources when `origin` is given (see `_distributed`).

        Without `count` and orderBy the candidates are read batch by batch and reading stops once the page and
        one more match are found, so the first pages of a large result cost what they show.
        """
        self.check_paging(paging)
        end = paging.offset + paging.limit
        regs = await self.sources(caller, queries, attrs, origin)
        if regs:
            assert origin is not None
            return await self._distributed(caller, queries, paging, attrs, count, origin, regs)
        if count or queries[0].order_by:
            selected = await self.select(caller, queries, attrs)
            return Page(selected[paging.offset : end], len(selected), end < len(selected))
        found = await self._first(caller, queries, attrs, end + 1)
        return Page(found[paging.offset : end], None, len(found) > end)

    async def _first(
        self, caller: Caller, queries: list[Query], attrs: frozenset[str] | None, wanted: int
    ) -> list[Entity]:
        """The first `wanted` local matches (or all, when fewer), in id order."""
        found: list[Entity] = []
        # Batches about twice the page: a selective query reads a few, a broad one stops after the first.
        size = min(self.batch_size, max(32, 2 * wanted))
        view = await self._view(caller)
        async for batch in self._candidates(caller, queries, attrs, size, view):
            found.extend(await self._select(caller.tenant, batch, queries, view))
            if len(found) >= wanted:
                break
        return found

    async def select(
        self,
        caller: Caller,
        queries: list[Query],
        attrs: frozenset[str] | None = None,
        origin: Origin | None = None,
    ) -> list[Entity]:
        """Every entity matching any of `queries` (and having one of `attrs`, when given), in query order, with
        those of the matching context sources when `origin` is given.

        Several queries stand for the several EntitySelectors of a POST /entityOperations/query (clause 5.2.23).
        """
        return (await self.select_from_sources(caller, queries, attrs, origin)).entities

    async def select_from_sources(
        self,
        caller: Caller,
        queries: list[Query],
        attrs: frozenset[str] | None = None,
        origin: Origin | None = None,
    ) -> Selection:
        """`select`, and which registrations each entity was found at, and the warnings of the failed sources."""
        regs = await self.sources(caller, queries, attrs, origin)
        view = await self._view(caller)
        if regs and origin is not None and origin.split:
            return _selection(*await self._split_all(caller, queries, attrs, origin, regs, view))
        selected: list[Entity] = []
        async for batch in self._candidates(caller, queries, attrs, self.batch_size, view):
            selected.extend(await self._select(caller.tenant, batch, queries, view))
        if regs:
            assert origin is not None and self.reads is not None
            answer = await self.reads.query(caller, regs, queries, attrs, origin, None)
            return _selection(merged(selected, answer, view), answer, {e["id"] for e in selected})
        ordered = order(selected, queries[0].order_by, queries[0].collation) if queries[0].order_by else selected
        return Selection(ordered)

    # -- the remote part of the plan (clauses 4.3.6.7, 5.7.2.4; broker.federation.reads) -----------------------
    async def sources(
        self, caller: Caller, queries: list[Query], attrs: frozenset[str] | None, origin: Origin | None
    ) -> list[Registration]:
        """The registrations a query is sent to (none without `origin`, with local=true, or without any)."""
        if self.reads is None or origin is None or origin.local:
            return []
        found: dict[str, Registration] = {}
        for query in queries:
            types = prefilter(query).types if query.types is not None else None
            for reg in await self.reads.plan(caller, "queryEntity", origin, types=types, attrs=attrs, query=query):
                found.setdefault(reg.id, reg)
        if found and queries[0].order_by and not isinstance(queries[0].types, AllTypes):
            # 5.7.2.4: "If the ordering parameter is present and the execution of the operation is not limited to
            # the local scope ... BadRequestData" (record 0101: the condition is the execution).
            raise BadRequestData("orderBy needs local=true: this query is distributed to context sources")
        return [found[k] for k in sorted(found)]

    async def _distributed(
        self,
        caller: Caller,
        queries: list[Query],
        paging: Paging,
        attrs: frozenset[str] | None,
        count: bool,
        origin: Origin,
        regs: list[Registration],
    ) -> Page:
        """One page of a query over the local store and `regs` (record 0185): each side gives its first
        offset + limit + 1 matches in id order (all of them for count=true), the union is merged per id and
        ordered by id, and the page is cut from it; count=true counts the merged total."""
        assert self.reads is not None
        end = paging.offset + paging.limit
        view = await self._view(caller)
        if origin.split:  # every candidate merged, then filtered (record 0188)
            every, answer, _ = await self._split_all(caller, queries, attrs, origin, regs, view)
        else:
            wanted = None if count else end + 1
            local = await (
                self._first(caller, queries, attrs, wanted) if wanted else self.select(caller, queries, attrs)
            )
            answer = await self.reads.query(caller, regs, queries, attrs, origin, wanted)
            every = merged(local, answer, view)
        total = len(every) if count else None
        more = len(every) > end or answer.more
        return Page(every[paging.offset : end], total, more, None, tuple(answer.warnings))

    async def _split_all(
        self,
        caller: Caller,
        queries: list[Query],
        attrs: frozenset[str] | None,
        origin: Origin,
        regs: list[Registration],
        view: View,
    ) -> tuple[list[Entity], Answer, set[str]]:
        """(matches, the sources' answer, the local candidates' ids) of a query over split entities (5.7.2.4):
        every side asked for its candidates by id, type and id pattern only ("the filters ... shall be removed
        before forwarding the request"), the candidates merged, and q, geo-query, scopeQ and attrs applied to the
        merged entities ("applied after the Entity information from different Context Sources and local
        information ... has been aggregated")."""
        assert self.reads is not None
        broad = [_broad(q) for q in queries]
        local = await self.select(caller, broad)
        answer = await self.reads.query(caller, regs, broad, None, origin, None)
        every = await self._filtered(caller.tenant, merged(local, answer, view), queries, attrs, view)
        return every, answer, {e["id"] for e in local}

    async def map_page(
        self,
        caller: Caller,
        map_id: str,
        queries: list[Query],
        paging: Paging,
        attrs: frozenset[str] | None = None,
        *,
        count: bool = False,
        origin: Origin | None = None,
    ) -> Page | None:
        """One page of an entity map (clause 5.5.9.3), None when the map is gone. `offset` is a position in the
        map, so entities created or deleted since the map was made never shift a page. The map's entities are
        checked against `queries` again and those that no longer match are passed over: a page is filled from the
        positions after it, and the next page starts after the last position read (decision record 0015). With
        `origin`, the map's entities are read from the matching context sources too (4.3.6.7: "Only the Entities
        whose identifiers are contained in the Entity map are considered when rendering the result pages")."""
        self.check_paging(paging)
        found: list[tuple[int, Entity]] = []
        size = min(self.batch_size, max(32, 2 * (paging.limit + 1)))
        view = await self._view(caller)
        remote = _MapSources(caller, origin, await self.sources(caller, queries, attrs, origin))
        matches_from = self._map_matches(caller.tenant, map_id, queries, attrs, paging.offset, size, view, remote)
        async for position, entity in matches_from:
            found.append((position, entity))
            if len(found) > paging.limit:
                break
        else:
            if not found and await self.store.entity_map_ids(caller.tenant, map_id, 0, 0) is None:
                return None
        total = None
        if count:
            every = self._map_matches(caller.tenant, map_id, queries, attrs, 0, self.batch_size, view, remote)
            total = sum([1 async for _ in every])
        more = len(found) > paging.limit
        next_offset = found[paging.limit][0] if more else None
        return Page([e for _, e in found[: paging.limit]], total, more, next_offset, tuple(remote.warnings))

    async def map_select(self, caller: Caller, map_id: str, queries: list[Query]) -> list[Entity] | None:
        """Every entity of an entity map that still exists and matches `queries`, in map order; None when the map
        is gone."""
        if await self.store.entity_map_ids(caller.tenant, map_id, 0, 0) is None:
            return None
        view = await self._view(caller)
        every = self._map_matches(caller.tenant, map_id, queries, None, 0, self.batch_size, view)
        return [e async for _, e in every]

    async def _view(self, caller: Caller) -> View:
        """The caller's view: one with no read rule sees no entity (an empty answer, not 403: record 0221)."""
        return await self.access.view(caller)

    async def _map_matches(
        self,
        tenant: str,
        map_id: str,
        queries: list[Query],
        attrs: frozenset[str] | None,
        start: int,
        size: int,
        view: View,
        remote: _MapSources | None = None,
    ) -> AsyncIterator[tuple[int, Entity]]:
        """(position, entity) of the map's entities from `start` on that still exist and match, in map order."""
        position = start
        if remote is not None and remote.regs:
            size = min(size, MAP_WINDOW)
        while True:
            ids = await self.store.entity_map_ids(tenant, map_id, position, position + size)
            if not ids:
                return
            stored = await self.store.get(tenant, ids)
            seen = view.redact_all(stored[i] for i in ids if i in stored)
            candidates = [e for e in seen if not attrs or attrs & e["attrs"].keys()]
            at = {eid: position + n for n, eid in enumerate(ids)}
            if remote is not None and remote.regs:
                selected = await self._with_sources(tenant, seen, ids, queries, attrs, view, remote)
            else:
                selected = await self._select(tenant, candidates, queries, view)
            for entity in sorted(selected, key=lambda e: at[e["id"]]):
                yield at[entity["id"]], entity
            position += len(ids)

    async def _with_sources(
        self,
        tenant: str,
        seen: list[Entity],
        ids: list[str],
        queries: list[Query],
        attrs: frozenset[str] | None,
        view: View,
        remote: _MapSources,
    ) -> list[Entity]:
        """The map window's matches at the sources merged with the local ones (each query asked for the window's
        ids only, so filters are checked again as 4.3.6.7 asks; for split entities after the merge, record 0188)."""
        assert self.reads is not None and remote.origin is not None
        split = remote.origin.split
        window = frozenset(ids)
        asked = [_broad(q) for q in queries] if split else queries
        narrowed = [q for q in (replace(q, ids=window if q.ids is None else q.ids & window) for q in asked) if q.ids]
        if split:
            local = seen
        else:
            local = await self._select(
                tenant, [e for e in seen if not attrs or attrs & e["attrs"].keys()], queries, view
            )
        if narrowed:
            answer = await self.reads.query(
                remote.caller, remote.regs, narrowed, None if split else attrs, remote.origin, None
            )
            remote.warnings.extend(w for w in answer.warnings if w not in remote.warnings)
            local = merged(local, answer, view)
        return await self._filtered(tenant, local, queries, attrs, view) if split else local

    async def _filtered(
        self, tenant: str, entities: list[Entity], queries: list[Query], attrs: frozenset[str] | None, view: View
    ) -> list[Entity]:
        """The merged candidates of a split-entity query that pass its filters and attrs (record 0188)."""
        return await self._select(
            tenant, [e for e in entities if not attrs or attrs & e["attrs"].keys()], queries, view
        )

    async def _candidates(
        self, caller: Caller, queries: list[Query], attrs: frozenset[str] | None, size: int, view: View
    ) -> AsyncIterator[list[Entity]]:
        """Batches of the entities the store's pre-filter lets through, in id order, as the caller may see them
        (so that q, attrs and counts only ever meet what the caller may read: record 0221)."""
        if not await self.store.tenant_exists(caller.tenant):
            raise NonexistentTenant(f"tenant {caller.tenant!r} does not exist")
        flt = prefilter(queries[0]) if len(queries) == 1 else EntityFilter()
        async for batch in self.store.scan_batches(caller.tenant, flt, size):
            seen = batch if view.unrestricted else view.redact_all(batch)
            yield [e for e in seen if attrs & e["attrs"].keys()] if attrs else seen

    async def _select(self, tenant: str, candidates: list[Entity], queries: list[Query], view: View) -> list[Entity]:
        linked = _LinkedEntities(view)
        for _ in range(LINK_ROUNDS):
            selected = [e for e in candidates if any(matches(e, q, resolve=linked.resolve) for q in queries)]
            if not linked.missing:
                return selected
            await linked.fetch(self.store, tenant)
        return selected


class _LinkedEntities:
    """Entities that linked-entity conditions point to: known ones answer at once, unknown ones are noted so that
    the next round fetches them all in one store call."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.cache: dict[str, Entity | None] = {}
        self.missing: set[str] = set()

    def resolve(self, entity_id: str) -> Entity | None:
        if entity_id in self.cache:
            return self.cache[entity_id]
        self.missing.add(entity_id)
        return None

    async def fetch(self, store: Store, tenant: str) -> None:
        found = await store.get(tenant, self.missing)
        for entity_id in self.missing:
            entity = found.get(entity_id)
            self.cache[entity_id] = None if entity is None else self.view.redact(entity)
        self.missing = set()


def _selection(found: list[Entity], answer: Answer, local: set[str]) -> Selection:
    """The matches of a distributed query with where each was found ("@none": the local store)."""
    holders = answer.holders()
    where = {e["id"]: (["@none"] if e["id"] in local else []) + holders.get(e["id"], []) for e in found}
    return Selection(found, where, tuple(answer.warnings))


def _broad(query: Query) -> Query:
    """A query's candidates only (ids, types, id pattern), for split entities (record 0188)."""
    return replace(query, q=None, geo=None, scope=None)


def merged(local: list[Entity], answer: Answer, view: View) -> list[Entity]:
    """The local matches and the sources' fragments as one list in id order, one entity per id (the local one
    first, so it wins ties: broker.federation.merge), as the caller may see it (record 0221 holds for remote
    entities too)."""
    from broker.federation.merge import Fragment, merge_entities

    by_id: dict[str, list[Fragment]] = {e["id"]: [Fragment(e)] for e in local}
    for entity_id, fragments in answer.fragments.items():
        by_id.setdefault(entity_id, []).extend(fragments)
    out = []
    for entity_id in sorted(by_id):
        parts = by_id[entity_id]
        out.append(parts[0].entity if len(parts) == 1 and not parts[0].auxiliary else merge_entities(parts))
    return view.redact_all(out)


def prefilter(query: Query) -> EntityFilter:
    """What the store filters before the evaluator runs: ids, id pattern, types when they are a plain OR, and
    hints that only narrow (numeric conditions every match meets, boxes every match's geometry touches)."""
    return EntityFilter(
        types=_type_set(query.types),
        ids=query.ids,
        id_pattern=query.id_pattern.pattern if query.id_pattern is not None else None,
        attr_ranges=_attr_ranges(query.q),
        bbox=_bbox(query.geo),
    )


_RANGE_OPS: Final = frozenset({"<", "<=", ">", ">=", "=="})
#: Relations under which a match's planar bounding box must meet the query geometry's bounding box.
_BOX_RELATIONS: Final = frozenset({"within", "intersects", "contains", "overlaps", "equals"})
#: Degrees added to every pushed box: float rounding in distance_m's projection must not cost a match.
_SLACK: Final = 1e-6
#: distance_m wraps longitudes around the query point; geometries with a vertex this close to the opposite
#: meridian may be distorted by that wrap (so anything may come out), and are always candidates.
_WRAP_SLACK: Final = 1e-3
#: Wider than any stored longitude: "no longitude bound".
_ANY_LON: Final = 1000.0


def _attr_ranges(node: QNode | None) -> tuple[tuple[str, str, float], ...] | None:
    """Numeric conditions of a top-level AND (or a lone condition) on a plain top-level attribute: every match
    meets each of them. Conditions under an OR, `!=`, linked paths, members and keys narrow nothing safely."""
    if node is None:
        return None
    ranges: list[tuple[str, str, float]] = []
    for term in node.terms if isinstance(node, And) else (node,):
        if not isinstance(term, Compare) or not isinstance(term.path, AttrPath):
            continue
        path, value = term.path, term.value
        if len(path.names) != 1 or path.member is not None or path.keys:
            continue
        if isinstance(value, Literal) and value.kind == "number" and term.op in _RANGE_OPS:
            ranges.append((path.names[0], term.op, value.value))
        elif isinstance(value, Range) and value.low.kind == "number" and term.op == "==":
            ranges += [(path.names[0], ">=", value.low.value), (path.names[0], "<=", value.high.value)]
    return tuple(ranges) or None


def _bbox(geo: GeoQuery | None) -> tuple[str, tuple[Box, ...]] | None:
    if geo is None:
        return None
    if geo.relation in _BOX_RELATIONS:  # planar predicates: the bounding boxes of both sides meet
        min_lon, min_lat, max_lon, max_lat = geo.geometry.bounds
        return geo.geoproperty, ((min_lon - _SLACK, min_lat - _SLACK, max_lon + _SLACK, max_lat + _SLACK),)
    if geo.relation == "near" and geo.max_distance is not None and isinstance(geo.geometry, Point):
        return geo.geoproperty, _near_boxes(geo.geometry.x, geo.geometry.y, geo.max_distance)
    return None  # minDistance and disjoint select what is far away: no box holds them


def _near_boxes(lon0: float, lat0: float, distance: float) -> tuple[Box, ...]:
    """Boxes that every geometry within `distance` metres of (lon0, lat0), as distance_m measures it, touches.

    Latitude: distance_m keeps latitudes (its projection only moves longitudes), and a point within r radians
    is within r of latitude. Longitude: a cap of radius r not holding a pole spans asin(sin r / cos lat) each
    way; the window is repeated 360 degrees off for points across the antimeridian, and geometries near the
    opposite meridian (which distance_m's wrap can distort) are always let through."""
    radius = math.degrees(distance / EARTH_RADIUS_M) * 1.001 + _SLACK
    low, high = lat0 - radius, lat0 + radius
    if radius >= 90.0 - abs(lat0) - _WRAP_SLACK:  # the cap holds a pole: every longitude
        return ((-_ANY_LON, low, _ANY_LON, high),)
    half = math.degrees(math.asin(min(1.0, math.sin(math.radians(radius)) / math.cos(math.radians(lat0)))))
    half += _SLACK
    if half >= 90.0:
        return ((-_ANY_LON, low, _ANY_LON, high),)
    windows = [(lon0 + shift - half, lon0 + shift + half) for shift in (0.0, 360.0, -360.0)]
    windows += [(-_ANY_LON, lon0 - 180.0 + _WRAP_SLACK), (lon0 + 180.0 - _WRAP_SLACK, _ANY_LON)]
    # Stored boxes lie within [-180, 180] (or cover the world): windows wholly outside it add nothing.
    return tuple((w0, low, w1, high) for w0, w1 in windows if w0 <= 180.0 and w1 >= -180.0)


def _type_set(expr: TypeExpr | None) -> frozenset[str] | None:
    if isinstance(expr, TypeName):
        return frozenset({expr.iri})
    if isinstance(expr, TypeOr) and all(isinstance(t, TypeName) for t in expr.terms):
        return frozenset(t.iri for t in expr.terms if isinstance(t, TypeName))
    return None


def order(entities: list[Entity], keys: Iterable[OrderKey], collation: Collation = ROOT) -> list[Entity]:
    """Stable sort by each key in turn (last key first); entities without a value come last either way. Strings
    compare by `collation` (clause 4.23.1: ICU's root collation unless the query names another)."""
    result = list(entities)
    for key in reversed(list(keys)):
        values = {id(e): _sort_value(e, key, collation) for e in result}
        present = [e for e in result if values[id(e)] is not None]
        absent = [e for e in result if values[id(e)] is None]
        present.sort(key=lambda e: values[id(e)], reverse=key.descending)  # type: ignore[arg-type,return-value]
        result = present + absent
    return result


def _sort_value(entity: Entity, key: OrderKey, collation: Collation) -> tuple[int, Any] | None:
    """A comparable (kind rank, value) for the first value at the key's path: numbers, then strings, then others."""
    if key.member is not None:
        return _member_sort_value(entity, key.member, collation)
    if not isinstance(key.path, AttrPath):
        return None
    for target in targets(entity, key.path):
        for value in target.values:
            if isinstance(value, bool):
                return (2, value)
            if isinstance(value, (int, float)):
                return (0, value)
            if isinstance(value, str):
                return (1, collation.key(value))
    return None


def executes_locally(local: bool) -> bool:
    """Whether a query's parameters alone limit its execution to the local scope (clause 5.5.13). Without
    local=true the plan decides: a query no registration matches executes locally (and may be ordered), one that
    some registration matches is refused orderBy when it is planned (`Queries.sources`, record 0183)."""
    return local or _PLANNED_LATER


#: The check of the parameters lets every query through; the planner refuses what is distributed (record 0183).
_PLANNED_LATER: Final = True


def _member_sort_value(entity: Entity, member: str, collation: Collation) -> tuple[int, Any] | None:
    """orderBy on an Entity member (clause 5.7.2.3): its id, its first type, or its first scope (IRIs as stored)."""
    raw = entity.get(member)
    value = raw[0] if isinstance(raw, list) and raw else raw
    return (1, collation.key(value)) if isinstance(value, str) else None


def require_local_order(query: Query, local: bool) -> None:
    """Clause 5.7.2.4: "If the ordering parameter is present and the execution of the operation is not limited to
    the local scope ... BadRequestData". The condition is the execution, not the parameter (decision record
    0101, revising 0018): a broker without registrations orders every query. `type=*` implies local
    (clause 6.4.3.2)."""
    if query.order_by and not executes_locally(local) and not isinstance(query.types, AllTypes):
        raise BadRequestData("orderBy needs local=true: entity ordering is never applied to distributed queries")


def require_selector(query: Query, attrs: frozenset[str] | None, local: bool) -> None:
    """Clause 5.7.2.4: a query names types, attributes, a q, a geo-query or local scope (else "too wide query").
    Entity ids or an id pattern restrict it too when its execution is local (5.7.2.3: "If the execution of the
    operation is limited to the local scope ..., no further restrictions have to be provided"): decision 0100."""
    if local or query.types is not None or attrs or query.pick is not None or query.q is not None:
        return
    if query.geo is not None:
        return
    if (query.ids is not None or query.id_pattern is not None) and executes_locally(local):
        return
    raise BadRequestData(
        "a query needs at least one of type, attrs (or pick), q, georel, id or idPattern, unless local=true"
    )
