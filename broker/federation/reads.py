"""Distributed reads (clauses 4.3.6.7, 5.7.1.4, 5.7.2.4, 6.3.17; ARCHITECTURE decision 10): the remote part of a
query plan. Records 0182-0186.

`Reads.plan` chooses the registrations a read uses: none with `local=true` (5.5.13) or when the tenant has
no registration (a dictionary look-up, so an idle broker pays nothing); else the live registrations that offer
the operation and may hold what is asked (type, id, attributes, area), narrowed by the context source filter
`csf` (5.7.2.3). `Reads.retrieve` and `Reads.query` send the read to each of them at once (through
broker.federation.Forwarder: timeout, cooldown, Via, tenant, contextSourceInfo), bring every answered entity into
the canonical form with the @context it was asked with, and return the fragments per entity id for the caller
(broker.core.query / entities) to merge with the local ones (broker.federation.merge). A source that fails adds
one NGSILD-Warning value (6.3.17) and nothing else: the read answers with what the others gave.

What a source is asked respects its registration (4.3.6.1: "if a registration states that only Entities of a
given type are offered, the distributed request does not contain additional types"): its entity types and
attribute names narrow the request, and attributes it did not register are dropped from its answer. Filters
(q, geo-query, scopeQ, ids, idPattern) are forwarded and applied by the source: Agora's default expects no
split entities (5.7.2.4; record 0183).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import orjson

from broker.core.caller import Caller
from broker.core.errors import BadRequestData, NgsiLdError
from broker.core.model import ENTITY_MEMBERS, Entity
from broker.core.normalize import CREATE, PATCH, Rules, parse_entity
from broker.core.registrations import Registration, Registrations, csf_holds
from broker.core.temporal import TemporalEntity, TemporalView
from broker.federation.forwarder import Forwarder, SourceError, SourceReply, registered_terms, warning
from broker.federation.merge import Fragment
from broker.federation.writes import by_type_only, held_attrs
from broker.ld.codec import expand_entity
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import TermMap, core_termmap
from broker.query import Query
from broker.query.geo import GeoQuery
from broker.query.q import format_q
from broker.query.scope import format_scope_query
from broker.query.types import AllTypes, format_types
from broker.store.base import TemporalEntityRecord, TemporalInstance, now_micros
from broker.temporal.times import micros_or_none

API: Final = "/ngsi-ld/v1"
#: Entities asked of a source per request when a read needs more than one page of it (the common maximum page
#: size of NGSI-LD brokers, Agora's own default included).
SOURCE_PAGE: Final = 1000
#: Entities read from one source for one query at most: a source that never stops paging cannot hold a read.
SOURCE_MAX: Final = 100_000
_SYSTEM: Final = ("createdAt", "modifiedAt")


@dataclass(frozen=True)
class Origin:
    """What a read carries from the incoming request to the sources: its @context (the term map and, when it was
    given by URL, the URL sent as Link), its Via header, and whether it is limited to the local scope."""

    tm: TermMap
    link: str | None = None
    via: str | None = None
    local: bool = False
    #: splitEntities=true (5.7.2.4): entities may be split across sources, so filters are applied after the merge.
    split: bool = False
    #: The incoming request's headers, for contextSourceInfo values "urn:ngsi-ld:request" (4.3.6.5).
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """What the sources answered for one read: the fragments of each entity id, in the order the sources gave them
    (registrations in id order), whether some source holds more than it sent, and the NGSILD-Warning values."""

    fragments: dict[str, list[Fragment]] = field(default_factory=dict)
    more: bool = False
    warnings: list[str] = field(default_factory=list)

    def add(self, entity: Entity, reg: Registration) -> None:
        self.fragments.setdefault(entity["id"], []).append(Fragment(entity, reg.mode == "auxiliary", reg.id))

    def holders(self) -> dict[str, list[str]]:
        """The registrations each entity id was found at (an entity map's entries, clause 5.2.39)."""
        return {eid: [f.registration for f in frags if f.registration] for eid, frags in self.fragments.items()}


# -- NGSILD-Warning (clause 6.3.17, Table 6.3.17-1; record 0184) --------------------------------------------------
def reply_warning(reply: SourceReply | SourceError, registration_id: str) -> str | None:
    """The warning of one source's answer to a read, None when it is a normal one (a 2xx, or a 404: "not found"
    from one source is not abnormal behaviour). 199: no answer in time, a loop, a cooling source; 299: an error
    status; 111 (`invalid`, see `invalid_warning`): an answer that is not NGSI-LD."""
    if isinstance(reply, SourceError):
        return reply.warning()
    if reply.ok or reply.status == 404:
        return None
    detail = reply.body.get("detail") or reply.body.get("title") if isinstance(reply.body, dict) else None
    text = f"registration {registration_id}: the source answered {reply.status}"
    return warning(reply.endpoint, 299, f"{text}: {detail}" if isinstance(detail, str) else text)


def relay(reply: SourceReply | SourceError, into: list[str]) -> None:
    """The NGSILD-Warning values a source sent with a usable answer, kept for this answer: a failure deeper in a
    cascade (4.3.6.4: the source may itself have asked other sources) reaches the client."""
    value = reply.headers.get("ngsild-warning") if isinstance(reply, SourceReply) and reply.ok else None
    if value:
        into.append(value)


def invalid_warning(reg: Registration, why: str) -> str:
    return warning(reg.endpoint, 111, f"registration {reg.id}: the answer is not valid NGSI-LD ({why}); left out")


# -- what a source is asked ---------------------------------------------------------------------------------------
def registered_types(reg: Registration) -> frozenset[str] | None:
    """The entity types (IRIs) a registration offers, None when one of its infos offers any type."""
    types: set[str] = set()
    for info in reg.infos:
        if info.selectors is None:
            return None
        for sel_types, _, _ in info.selectors:
            types |= sel_types
    return frozenset(types)


def registered_attrs(reg: Registration) -> frozenset[str] | None:
    """The attribute names (IRIs) a registration offers, None when one of its infos offers every attribute."""
    names: set[str] = set()
    for info in reg.infos:
        if info.attrs is None:
            return None
        names |= info.attrs
    return frozenset(names)


def _names(iris: Iterable[str], tm: TermMap) -> str:
    return ",".join(sorted(tm.compact_iri(i) for i in iris))


def _type_param(reg: Registration, wanted: frozenset[str] | None, text: str | None, tm: TermMap) -> str | None:
    offered = registered_types(reg)
    if wanted is not None and offered is not None:
        return _names(wanted & offered, tm)
    if text is not None:
        return text
    return _names(offered, tm) if offered is not None else None


def _attrs_param(reg: Registration, attrs: frozenset[str] | None, tm: TermMap) -> str | None:
    offered = registered_attrs(reg)
    chosen = attrs & offered if attrs is not None and offered is not None else attrs or offered
    return _names(chosen, tm) if chosen else None


def _geo_params(geo: GeoQuery, tm: TermMap) -> dict[str, str]:
    georel = geo.relation
    if geo.max_distance is not None:
        georel += f";maxDistance=={geo.max_distance:g}"
    if geo.min_distance is not None:
        georel += f";minDistance=={geo.min_distance:g}"
    return {
        "georel": georel,
        "geometry": str(geo.geojson["type"]),
        "coordinates": orjson.dumps(geo.geojson["coordinates"]).decode(),
        "geoproperty": tm.compact_iri(geo.geoproperty),
    }


def query_params(reg: Registration, query: Query, attrs: frozenset[str] | None, tm: TermMap) -> dict[str, str]:
    """The Query Entities parameters (6.4.3.2) that ask `reg` for the matches of `query`, in `tm`'s terms, with
    system attributes (the merge needs modifiedAt). Projection, language and datasetId are applied here, on the
    merged entities, so they are not forwarded."""
    from broker.core.query import prefilter

    params: dict[str, str] = {"options": "sysAttrs"}
    wanted = prefilter(query).types
    types = _type_param(reg, wanted, format_types(query.types, tm) if query.types is not None else None, tm)
    optional = {
        "type": types,
        "attrs": _attrs_param(reg, attrs, tm),
        "id": ",".join(sorted(query.ids)) if query.ids else None,
        "idPattern": query.id_pattern.pattern if query.id_pattern is not None else None,
        "q": format_q(query.q, tm) if query.q is not None else None,
        "scopeQ": format_scope_query(query.scope) if query.scope is not None else None,
        "csf": format_q(query.csf, tm) if query.csf is not None else None,
        "local": "true" if reg.doc.get("management", {}).get("localOnly") else None,
    }
    params.update({k: v for k, v in optional.items() if v})
    if query.geo is not None:
        params.update(_geo_params(query.geo, tm))
    return params


# -- what a source answers -------------------------------------------------------------------------------------
def _expired(value: Any, now: int) -> bool:
    micros = micros_or_none(value)
    return micros is not None and micros <= now


def _live_attribute(value: Any, now: int) -> Any:
    """An attribute without its expired instances (4.5.5.3: an Attribute whose expiresAt "lies in the past, it
    shall be discarded"), None when none is left; expiresAt itself is not kept (no member of the canonical form)."""
    items = value if isinstance(value, list) else [value]
    kept = []
    for item in items:
        if isinstance(item, dict) and "expiresAt" in item:
            if _expired(item["expiresAt"], now):
                continue
            item = {k: v for k, v in item.items() if k != "expiresAt"}
        kept.append(item)
    if not kept:
        return None
    return kept if isinstance(value, list) else kept[0]


def canonical(doc: Any, tm: TermMap, now: int, rules: Rules = CREATE) -> Entity | None:
    """A source's entity in the canonical form, its system times kept for the merge; None when it has expired
    (5.7.2.4: "any Entities where an expiresAt DateTime is present and the date lies in the past shall be
    discarded"). BadRequestData when it is not a valid NGSI-LD entity."""
    if not isinstance(doc, dict):
        parse_entity(doc)  # raises: not an object
    if _expired(doc.get("expiresAt"), now):
        return None
    body: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("@context", "expiresAt"):
            continue
        if key in ENTITY_MEMBERS:
            body[key] = value
        elif (live := _live_attribute(value, now)) is not None:
            body[key] = live
    entity = expand_entity(parse_entity(body, rules), tm)
    for member in _SYSTEM:
        if isinstance(body.get(member), str):
            entity[member] = body[member]
    for name, raw in body.items():
        if name in ENTITY_MEMBERS:
            continue
        raws = raw if isinstance(raw, list) else [raw]
        for inst, given in zip(entity["attrs"].get(tm.expand_term(name), ()), raws, strict=False):
            inst.update({m: given[m] for m in _SYSTEM if isinstance(given, dict) and isinstance(given.get(m), str)})
    return entity


def _registered_part(reg: Registration, entity: Entity) -> Entity:
    """The entity as far as `reg` registers it: attributes it did not register are not taken from that source."""
    held = held_attrs(reg, entity["id"], entity["type"], frozenset(entity["attrs"]))
    if len(held) == len(entity["attrs"]):
        return entity
    return {**entity, "attrs": {k: v for k, v in entity["attrs"].items() if k in held}}


# -- temporal answers ----------------------------------------------------------------------------------------------
@dataclass
class TemporalAnswer:
    """What the sources answered for a temporal read: the temporal entities of each id, per source."""

    entities: dict[str, list[TemporalEntity]] = field(default_factory=dict)
    more: bool = False
    warnings: list[str] = field(default_factory=list)


def temporal_params(view: TemporalView, tm: TermMap) -> dict[str, str]:
    """The temporal query (4.11) and lastN of a temporal read, as the source is asked it."""
    params: dict[str, str] = {}
    time = view.time
    optional = {
        "timerel": time.timerel,
        "timeAt": time.time_at,
        "endTimeAt": time.end_time_at,
        "timeproperty": time.timeproperty if time.timeproperty != "observedAt" else None,
        "lastN": str(view.last_n) if view.last_n is not None else None,
    }
    params.update({k: v for k, v in optional.items() if v})
    return params


def temporal_entity(doc: Any, tm: TermMap) -> TemporalEntity:
    """A source's temporal entity (5.2.20, normalized) as Agora reads its own: the entity head and each attribute's
    instances (canonical form, with their instanceId); BadRequestData when it is not valid NGSI-LD."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise BadRequestData("a temporal entity is a JSON object with an id")
    head = {k: v for k, v in doc.items() if k in ENTITY_MEMBERS}
    entity = canonical(head, tm, 0)
    assert entity is not None
    record = TemporalEntityRecord(
        entity["id"],
        entity["type"],
        str(doc.get("createdAt", "")),
        str(doc.get("modifiedAt", "")),
        entity.get("scope"),
    )
    attrs: dict[str, list[TemporalInstance]] = {}
    for name, raw in doc.items():
        if name in ENTITY_MEMBERS or name == "@context":
            continue
        for n, given in enumerate(raw if isinstance(raw, list) else [raw]):
            if not isinstance(given, dict):
                raise BadRequestData(f"{name}: a temporal instance is a JSON object")
            body = {k: v for k, v in given.items() if k not in ("instanceId", "deletedAt")}
            one = canonical({**head, name: body}, tm, 0, PATCH)  # a deletion is recorded as an NGSI-LD Null
            assert one is not None
            iri, instances = next(iter(one["attrs"].items()))
            inst = instances[0]
            if isinstance(given.get("deletedAt"), str):
                inst["deletedAt"] = given["deletedAt"]
            instance_id = given.get("instanceId")
            key = instance_id if isinstance(instance_id, str) else f"urn:ngsi-ld:instance:{entity['id']}:{name}:{n}"
            attrs.setdefault(iri, []).append(TemporalInstance(iri, key, inst))
    return TemporalEntity(record, attrs)


def merge_temporal(parts: Sequence[TemporalEntity], view: TemporalView) -> TemporalEntity:
    """One temporal entity from the parts of several sources (record 0187): the head of the first part (types and
    scopes united), per attribute every instance once (by instanceId), oldest first by the time property; with
    lastN the N most recent of the union."""
    first = parts[0].record
    types = list(dict.fromkeys(t for p in parts for t in p.record.type))
    scopes = list(dict.fromkeys(s for p in parts for s in p.record.scope or ()))
    record = TemporalEntityRecord(first.id, types, first.created_at, first.modified_at, scopes or None)
    prop = view.time.timeproperty
    attrs: dict[str, list[TemporalInstance]] = {}
    for part in parts:
        for iri, instances in part.attrs.items():
            have = attrs.setdefault(iri, [])
            known = {i.instance_id for i in have}
            have.extend(i for i in instances if i.instance_id not in known)
    for iri, instances in attrs.items():
        instances.sort(key=lambda i: micros_or_none(i.body.get(prop)) or 0)
        if view.last_n is not None:
            attrs[iri] = instances[-view.last_n :]
    return TemporalEntity(record, attrs)


# -- the planner and the fan-out ---------------------------------------------------------------------------------
class Reads:
    """The remote part of the read plans: which registrations, what each is asked, what comes back."""

    def __init__(self, registrations: Registrations, forwarder: Forwarder, resolver: ContextResolver) -> None:
        self.registrations = registrations
        self.forwarder = forwarder
        self.resolver = resolver

    async def plan(
        self,
        caller: Caller,
        operation: str,
        origin: Origin | None,
        *,
        types: Iterable[str] | None = None,
        entity_id: str | None = None,
        attrs: Iterable[str] | None = None,
        query: Query | None = None,
    ) -> list[Registration]:
        """The registrations a read uses (module docstring); [] for a local read or a tenant without any."""
        if origin is None or origin.local or not await self.registrations.any_live(caller.tenant):
            return []
        if query is not None and isinstance(query.types, AllTypes):
            return []  # 6.4.3.2: type=* implies local=true (records 0018, 0183)
        ids = sorted(query.ids) if query is not None and query.ids else None
        area = query.geo.geometry if query is not None and query.geo is not None else None
        one_id = entity_id or (ids[0] if ids and len(ids) == 1 else None)
        type_list = None if types is None else list(types)
        regs = await self.registrations.matching(
            caller.tenant, operation, types=type_list, entity_id=one_id, attrs=attrs, area=area
        )
        if ids and one_id is None:
            regs = [r for r in regs if any(r.may_hold(type_list, i) for i in ids)]
        if query is not None and query.csf is not None:
            regs = [r for r in regs if csf_holds(r, query.csf)]
        return regs

    async def _lens(self, reg: Registration, origin: Origin) -> TermMap | str:
        """The term map of the @context a source is asked and answers with (4.3.6.6): its registration's
        jsonldContext, else the request's (by URL), else the core context; a warning (199) when the registration's
        @context cannot be had, and then the source is not asked."""
        terms = await registered_terms(self.resolver, reg)
        if isinstance(terms, SourceError):
            return terms.warning()
        if terms is not None:
            return terms
        return origin.tm if origin.link is not None else core_termmap()

    async def entity_types(
        self,
        caller: Caller,
        regs: Sequence[Registration],
        entity_id: str,
        via: str | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[list[str] | None, list[str]]:
        """The types of an entity the broker does not hold, written without a type, as the registrations that may
        hold it by type alone answer a Retrieve Entity (5.12 matches them; 4.3.6.1 forbids sending them an entity of
        another type), so that the write is routed as with a type (record 0471), and the NGSILD-Warning values of
        the sources that failed to answer (record 0473). No types when none is asked or none holds it: then only
        registrations naming the id or an idPattern it matches are written to (record 0194)."""
        asked = [r for r in regs if r.mode != "auxiliary" and r.offers("retrieveEntity") and by_type_only(r, entity_id)]
        if not asked:
            return None, []
        origin = Origin(core_termmap(), via=via, headers=headers or {})
        answer = await self.retrieve(caller, asked, entity_id, None, None, origin)
        found = [t for fragment in answer.fragments.get(entity_id, []) for t in fragment.entity["type"]]
        return list(dict.fromkeys(found)) or None, list(answer.warnings)

    async def retrieve(
        self,
        caller: Caller,
        regs: Sequence[Registration],
        entity_id: str,
        types: Sequence[str] | None,
        attrs: frozenset[str] | None,
        origin: Origin,
    ) -> Answer:
        """Retrieve Entity (5.7.1.4) at each registration at once."""
        answer = Answer()
        path = f"{API}/entities/{quote(entity_id, safe='')}"

        async def one(reg: Registration) -> tuple[Registration, list[Any], str | None, TermMap | None]:
            tm = await self._lens(reg, origin)
            if isinstance(tm, str):
                return reg, [], tm, None
            params: dict[str, str] = {"options": "sysAttrs"}
            # Without a type in the request the registered types are the selector (4.3.6.1: "the Entity type
            # selector ... can be added as a filter on forwarded requests even where its presence initially seems
            # redundant"; record 0471).
            if types:
                type_text = _type_param(reg, frozenset(types), _names(types, tm), tm)
            else:
                type_text = _type_param(reg, None, None, tm)
            optional = {"type": type_text, "attrs": _attrs_param(reg, attrs, tm)}
            params.update({k: v for k, v in optional.items() if v})
            reply = await self.forwarder.send(
                reg,
                "GET",
                path,
                caller=caller,
                params=params,
                link=origin.link,
                via=origin.via,
                incoming=origin.headers,
            )
            found = [reply.body] if isinstance(reply, SourceReply) and reply.ok else []
            relay(reply, relayed)
            return reg, found, reply_warning(reply, reg.id), tm

        relayed: list[str] = []
        for reg, docs, warned, tm in await asyncio.gather(*(one(r) for r in regs)):
            self._take(answer, reg, docs, warned, tm)
        answer.warnings.extend(relayed)
        return answer

    async def query(
        self,
        caller: Caller,
        regs: Sequence[Registration],
        queries: Sequence[Query],
        attrs: frozenset[str] | None,
        origin: Origin,
        want: int | None,
    ) -> Answer:
        """Query Entities (5.7.2.4) at each registration at once: the first `want` matches of each query in each
        source (every match when None)."""
        answer = Answer()

        async def one(reg: Registration) -> tuple[Registration, list[Any], str | None, TermMap | None, bool]:
            tm = await self._lens(reg, origin)
            if isinstance(tm, str):
                return reg, [], tm, None, False
            docs: list[Any] = []
            more = False
            for query in queries:
                params = query_params(reg, query, attrs, tm)
                got, has_more, warned = await self._pages(reg, caller, params, origin, want, relayed)
                docs += got
                more = more or has_more
                if warned is not None:
                    return reg, docs, warned, tm, more
            return reg, docs, None, tm, more

        relayed: list[str] = []
        for reg, docs, warned, tm, more in await asyncio.gather(*(one(r) for r in regs)):
            self._take(answer, reg, docs, warned, tm)
            answer.more = answer.more or more
        answer.warnings.extend(relayed)
        return answer

    async def discover(
        self, caller: Caller, regs: Sequence[Registration], path: str, params: Mapping[str, str], origin: Origin
    ) -> tuple[list[tuple[Registration, Any, TermMap]], list[str]]:
        """A discovery request (5.7.5-5.7.10: /types, /attributes and their details) at each registration at
        once: (registration, its JSON answer, the term map to read it with) of the sources that answered 2xx,
        and the warnings of the others. A 404 (the type or attribute is not there) is neither."""

        async def one(reg: Registration) -> tuple[Registration, Any, TermMap | None, str | None]:
            tm = await self._lens(reg, origin)
            if isinstance(tm, str):
                return reg, None, None, tm
            reply = await self.forwarder.send(
                reg,
                "GET",
                f"{API}{path}",
                caller=caller,
                params=params,
                link=origin.link,
                via=origin.via,
                incoming=origin.headers,
            )
            ok = isinstance(reply, SourceReply) and reply.ok
            relay(reply, warnings)
            return reg, reply.body if ok and isinstance(reply, SourceReply) else None, tm, reply_warning(reply, reg.id)

        found: list[tuple[Registration, Any, TermMap]] = []
        warnings: list[str] = []
        for reg, body, tm, warned in await asyncio.gather(*(one(r) for r in regs)):
            if warned is not None:
                warnings.append(warned)
            elif body is not None and tm is not None:
                found.append((reg, body, tm))
        return found, warnings

    async def _pages(
        self,
        reg: Registration,
        caller: Caller,
        params: Mapping[str, str],
        origin: Origin,
        want: int | None,
        relayed: list[str],
        path: str = f"{API}/entities",
    ) -> tuple[list[Any], bool, str | None]:
        """(entities, whether the source holds more, a warning) of one query at one source, page by page."""
        got: list[Any] = []
        cap = min(want, SOURCE_MAX) if want is not None else SOURCE_MAX
        while True:
            limit = min(SOURCE_PAGE, cap - len(got))
            page = {**params, "limit": str(limit), "offset": str(len(got))}
            reply = await self.forwarder.send(
                reg, "GET", path, caller=caller, params=page, link=origin.link, via=origin.via, incoming=origin.headers
            )
            warned = reply_warning(reply, reg.id)
            relay(reply, relayed)
            if warned is not None or not isinstance(reply, SourceReply) or reply.status == 404:
                return got, False, warned
            if not isinstance(reply.body, list):
                return got, False, invalid_warning(reg, "a query answer is a JSON array")
            got += reply.body
            if len(reply.body) < limit or not reply.body:
                return got, False, None
            if len(got) >= cap:
                return got, True, None

    # -- temporal reads (5.7.3, 5.7.4; record 0187) ------------------------------------------------------------
    async def temporal(
        self,
        caller: Caller,
        regs: Sequence[Registration],
        origin: Origin,
        view: TemporalView,
        *,
        entity_id: str | None = None,
        query: Query | None = None,
        want: int | None = None,
    ) -> TemporalAnswer:
        """Retrieve Temporal Evolution of an Entity (`entity_id`) or Query Temporal Evolution of Entities (`query`)
        at each registration at once, in the normalized temporal representation (Agora renders the others)."""
        answer = TemporalAnswer()

        async def one(reg: Registration) -> tuple[Registration, list[Any], str | None, TermMap | None, bool]:
            tm = await self._lens(reg, origin)
            if isinstance(tm, str):
                return reg, [], tm, None, False
            params = temporal_params(view, tm)
            if entity_id is not None:
                attrs = _attrs_param(reg, view.attrs, tm)
                reply = await self.forwarder.send(
                    reg,
                    "GET",
                    f"{API}/temporal/entities/{quote(entity_id, safe='')}",
                    caller=caller,
                    params={**params, **({"attrs": attrs} if attrs else {})},
                    link=origin.link,
                    via=origin.via,
                    incoming=origin.headers,
                )
                found = [reply.body] if isinstance(reply, SourceReply) and reply.ok else []
                relay(reply, relayed)
                return reg, found, reply_warning(reply, reg.id), tm, False
            assert query is not None
            params.update(query_params(reg, query, view.attrs, tm))
            params.pop("options", None)
            got, more, warned = await self._pages(
                reg, caller, params, origin, want, relayed, f"{API}/temporal/entities"
            )
            return reg, got, warned, tm, more

        relayed: list[str] = []
        for reg, docs, warned, tm, more in await asyncio.gather(*(one(r) for r in regs)):
            if warned is not None:
                answer.warnings.append(warned)
            answer.more = answer.more or more
            if tm is None:
                continue
            try:
                parts = [temporal_entity(doc, tm) for doc in docs]
            except NgsiLdError as exc:
                answer.warnings.append(invalid_warning(reg, exc.detail))
                continue
            for part in parts:
                part.source = reg.id
                answer.entities.setdefault(part.record.id, []).append(part)
        answer.warnings.extend(relayed)
        return answer

    def _take(self, answer: Answer, reg: Registration, docs: list[Any], warned: str | None, tm: TermMap | None) -> None:
        if warned is not None:
            answer.warnings.append(warned)
        if tm is None:
            return
        now, entities = now_micros(), []
        for doc in docs:
            try:
                entity = canonical(doc, tm, now)
            except NgsiLdError as exc:
                # 6.3.17: "invalid non-NGSI-LD payloads shall be rejected and not incorporated"
                answer.warnings.append(invalid_warning(reg, exc.detail))
                return
            if entity is not None:
                entities.append(entity)
        seen: set[str] = set()
        for entity in entities:
            if not reg.may_hold(entity["type"], entity["id"]):
                continue  # 4.3.6.1: "all constraints specified in the registration shall be respected" (0471)
            if entity["id"] not in seen:
                seen.add(entity["id"])
                answer.add(_registered_part(reg, entity), reg)
