"""Routes of /entities, /entities/{id}, .../attrs, .../attrs/{attrId} and /entityOperations.

Clauses 6.4 to 6.7, 6.14 to 6.17 and 6.31.

Each route: check parameters, read the body and its @context, call one core operation, render. Nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.batch import BatchResult, Contexts
from broker.core.caller import Caller
from broker.core.entities import MergeOptions, PurgeRequest, UpdateResult
from broker.core.entity_maps import MapRequest, check_map_id
from broker.core.errors import BadRequestData, NgsiLdError, ResourceNotFound
from broker.core.linked import check_projection_depth, linked_with_states, parse_join
from broker.core.model import NULL_URI, Entity
from broker.core.normalize import check_datetime, check_uri
from broker.core.query import Page, Paging, require_local_order, require_selector
from broker.core.render import (
    View,
    as_feature,
    follow_shown,
    parse_format,
    render,
    render_inline,
    require_projected_attributes,
)
from broker.federation.distributed import Hop, Remote, SourceFailure
from broker.federation.reads import Origin
from broker.http import params as P
from broker.http.caller import caller_of as caller_of  # re-exported: the routes of other modules import it here
from broker.http.negotiation import (
    GEO_JSON,
    JSON,
    LD_JSON,
    header,
    link_context,
    media_type,
    negotiate,
    read_batch_body,
    read_body,
)
from broker.http.paths import quote_segment
from broker.http.query_body import query_body_params
from broker.http.render import geo_response, json_response, ld_response, no_content, paged_links
from broker.http.state import BrokerState, state_of
from broker.ld.termmap import TermMap
from broker.query import Query, parse_query
from broker.query.projection import Projection, ProjectionItem, check_pick_omit, parse_projection

BASE = "/ngsi-ld/v1"

_VIEW_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs"})
_JOIN_PARAMS = frozenset({"join", "joinLevel", "containedBy"})
_RETRIEVE_PARAMS = frozenset(
    {
        "attrs",
        "pick",
        "omit",
        "type",
        "options",
        "format",
        "lang",
        "local",
        "geometryProperty",
        "datasetId",
        "expandValues",
        "jsonKeys",
        "join",
        "joinLevel",
        "containedBy",
        "entityMap",
        "entityMapLifetime",
    }
)
ENTITY_QUERY_PARAMS = (
    frozenset(
        {
            "id",
            "idPattern",
            "limit",
            "offset",
            "count",
            "q",
            "scopeQ",
            "georel",
            "geometry",
            "coordinates",
            "geoproperty",
            "csf",
            "orderBy",
            "collation",
            "entityMapLifetime",
            "splitEntities",
        }
    )
    | _RETRIEVE_PARAMS
)
GEO_OFFERED = (JSON, LD_JSON, GEO_JSON)


def _geometry_property(request: Request, tm: TermMap) -> str:
    """The GeoProperty that becomes a Feature's geometry: `geometryProperty`, default `location`."""
    return tm.expand_term(P.query(request).get("geometryProperty", "location"))


def _geometry_property_needs_geojson(request: Request, media: str) -> None:
    """Clauses 5.7.1.4 and 5.7.2.4: "If geometryProperty parameter is present and the Accept Header is not set to
    "application/geo+json", then an error of type BadRequestData shall be raised." """
    if media != GEO_JSON and "geometryProperty" in P.query(request):
        raise BadRequestData("geometryProperty needs Accept: application/geo+json (clauses 5.7.1.4, 5.7.2.4)")


def origin_of(request: Request, tm: TermMap, context: Any = None, *, local: bool | None = None) -> Origin:
    """What a distributed read carries to the context sources (broker.federation.reads): the request's @context
    (its URL as Link; an inline @context is not sent, the sources are then asked in core terms), Via, local."""
    value = context if context is not None else link_context(request)
    is_local = P.flag(request, "local") if local is None else local
    split = P.flag(request, "splitEntities")
    url = value if isinstance(value, str) else None
    return Origin(tm, url, header(request, "via"), is_local, split, request.headers)


async def origin_if_federated(request: Request, state: BrokerState, caller: Caller, tm: TermMap) -> Origin | None:
    """origin_of, only when the caller's tenant may have a registration: without one a read plan asks no source
    (it is [] for no origin as well), and building the origin was 4% of a GET of one entity (issue 20)."""
    reads = state.entities.reads
    if reads is None or not await reads.registrations.any_live(caller.tenant):
        return None
    return origin_of(request, tm)


async def request_context(request: Request, state: BrokerState, context: Any = None) -> TermMap:
    value = context if context is not None else link_context(request)
    return await state.resolver.resolve(value)


def type_selection(request: Request, tm: TermMap) -> list[str] | None:
    raw = P.query(request).get("type")
    if raw is None:
        return None
    names = [t.strip() for t in raw.replace("|", ",").split(",")]
    if not all(names):
        raise BadRequestData(f"type={raw!r} has an empty type name")
    return [tm.expand_term(n) for n in names]


def view_of(request: Request, tm: TermMap) -> View:
    return view_of_params(request, tm, P.query(request))


def view_of_params(request: Request, tm: TermMap, selection: Mapping[str, str]) -> View:
    """The representation (from the URL) and the projection (from `selection`: the URL, or a Query body)."""
    fmt, sys_attrs = parse_format(P.query(request).get("format"), P.options(request, _VIEW_OPTIONS))
    pick = _projection_of(selection.get("pick"), "pick", tm)
    attrs = _projection_of(selection.get("attrs"), "attrs", tm)
    omit = _projection_of(selection.get("omit"), "omit", tm)
    check_pick_omit(pick, omit, attrs=attrs is not None)
    if attrs is not None:
        if pick is not None:
            raise BadRequestData("attrs and pick cannot be used together (attrs is the deprecated form of pick)")
        pick = Projection(attrs.items + tuple(ProjectionItem(m) for m in _KEPT_WITH_ATTRS))
    lang = selection.get("lang") or P.query(request).get("lang")
    return View(format=fmt, sys_attrs=sys_attrs, lang=lang, pick=pick, omit=omit, datasets=_datasets(request))


def _datasets(request: Request) -> frozenset[str | None] | None:
    """`datasetId=a,b,@none`: the instances to show; `@none` stands for the default instance."""
    raw = P.csv(request, "datasetId")
    if raw is None:
        return None
    return frozenset(None if d == "@none" else check_uri(d, "datasetId") for d in raw)


# `attrs` (deprecated) selects attributes only: the entity members stay (decision record 0011).
_KEPT_WITH_ATTRS = ("type", "scope", "createdAt", "modifiedAt")


def _projection_of(raw: str | None, name: str, tm: TermMap) -> Projection | None:
    return parse_projection(raw, tm, param=name) if raw is not None else None


def attrs_filter(request: Request, tm: TermMap) -> frozenset[str] | None:
    raw = _projection_of(P.query(request).get("attrs"), "attrs", tm)
    return raw.names() if raw is not None else None


# -- /entities ---------------------------------------------------------------------------------------------------
async def create_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    entity_id, remote = await state.entities.create_routed(caller_of(request), tm, body.data, hop_of(request))
    done = no_content(request, {"Location": f"{BASE}/entities/{quote_segment(entity_id)}"}, status=201)
    return entity_result(request, entity_id, remote, done)


async def query_entities(request: Request) -> Response:
    """Query Entities (clause 6.4.3.2)."""
    state = state_of(request)
    P.check_params(request, ENTITY_QUERY_PARAMS)
    media = negotiate(request, GEO_OFFERED)
    _geometry_property_needs_geojson(request, media)
    tm = await request_context(request, state)
    view = view_of(request, tm)
    query = parse_query(P.query(request), tm, limits=state.limits)
    attrs = attrs_filter(request, tm)
    check_query(query, attrs, P.flag(request, "local"))
    paging = P.paging(request)
    caller = caller_of(request)
    origin = origin_of(request, tm)
    page, map_id = await _run_query(request, state, caller, [query], paging, attrs, origin)
    docs, _ = await _joined(request, state, caller, page.entities, tm, view)
    return _page_response(request, page, paging, tm, view, media, docs, map_id)


def check_query(query: Query, attrs: frozenset[str] | None, local: bool) -> None:
    """What clause 5.7.2.4 asks of a query before it runs (also of one that makes an entity map, 5.14.4.4)."""
    require_selector(query, attrs, local)
    require_local_order(query, local)


def map_request(request: Request) -> MapRequest:
    """The entity map a query pages through (the NGSILD-EntityMap header: the map's URI or its resource path) and
    whether to make one (entityMap, entityMapLifetime), clause 6.4.3.2."""
    raw = header(request, "ngsild-entitymap")
    map_id = None
    if raw is not None:
        ref = unquote(raw.strip())
        map_id = check_map_id(ref.split("/entityMaps/", 1)[1] if "/entityMaps/" in ref else ref)
    return MapRequest(map_id, P.flag(request, "entityMap"), P.query(request).get("entityMapLifetime"))


async def _run_query(
    request: Request,
    state: BrokerState,
    caller: Caller,
    queries: list[Query],
    paging: Paging,
    attrs: frozenset[str] | None,
    origin: Origin,
) -> tuple[Page, tuple[str, bool] | None]:
    """The page, and (the entity map used, whether it was made now) when the query uses one."""
    count = P.flag(request, "count")
    maps = map_request(request)
    if not maps.used:
        return await state.queries.query(caller, queries, paging, attrs, count=count, origin=origin), None
    page, map_id, created = await state.entity_maps.query(
        caller, queries, paging, attrs, maps, count=count, origin=origin
    )
    return page, (map_id, created)


def _page_response(
    request: Request,
    page: Page,
    paging: Paging,
    tm: TermMap,
    view: View,
    media: str,
    docs: list[dict[str, Any]] | None = None,
    entity_map: tuple[str, bool] | None = None,
) -> Response:
    """A page of entities with NGSILD-Results-Count (count=true), Link rel=next/prev (clause 6.3.10) and, for a
    query with an entity map, the map's location in NGSILD-EntityMap (201 when the map was made now)."""
    headers: dict[str, str] = {}
    if page.count is not None and P.flag(request, "count"):
        headers["NGSILD-Results-Count"] = str(page.count)
    if entity_map is not None:
        headers["NGSILD-EntityMap"] = f"{BASE}/entityMaps/{entity_map[0]}"
    body = docs if docs is not None else [render(e, tm, view) for e in page.entities]
    if media == GEO_JSON:
        geo_iri = _geometry_property(request, tm)
        features = [as_feature(doc, e, geo_iri) for doc, e in zip(body, page.entities, strict=False)]
        response = geo_response(request, {"type": "FeatureCollection", "features": features}, tm, headers)
    else:
        response = ld_response(request, body, tm, media, headers=headers)
    if entity_map is not None and entity_map[1]:
        response.status_code = 201  # clause 6.4.3.2: "201 Created (in case an EntityMap has been (re)created)"
    for link in paged_links(request, paging, page.more, page.next_offset, media):
        response.headers.append("Link", link)
    return with_warnings(response, page.warnings)


async def purge_entities(request: Request) -> Response:
    """Purge Entities (DELETE /entities): the entities a query selects, or only some of their attributes."""
    state = state_of(request)
    P.check_params(request, _PURGE_PARAMS)
    tm = await request_context(request, state)
    query = parse_query(P.query(request), tm, limits=state.limits)
    drop, keep = P.csv(request, "drop"), P.csv(request, "keep")
    if drop and keep:
        raise BadRequestData("drop and keep cannot be used together")
    check_purge_selection(query, bool(drop or keep), P.flag(request, "local"))
    caller = caller_of(request)
    map_id = map_request(request).map_id
    selected = await _purge_selection(state, caller, query, map_id)
    purge = purge_request(request, tm, drop, keep, query)
    purged, remote = await state.entities.purge_routed(caller, [e["id"] for e in selected], purge)
    done = no_content(request, {"NGSILD-EntityMap": f"{BASE}/entityMaps/{map_id}"} if map_id else None)
    if remote is None or not remote.failures:
        return done
    # BatchEntityError needs an entityId: a failed source's purge concerns no one entity (record 0196).
    body = {"success": purged, "errors": [failure_entry(NULL_URI, f) for f in remote.failures]}
    return with_warnings(json_response(request, body, 207), remote.warnings)


def purge_request(
    request: Request, tm: TermMap, drop: list[str] | None, keep: list[str] | None, query: Query | None = None
) -> PurgeRequest:
    """What a distributed purge forwards (record 0196): type, drop and keep as full IRIs, the rest as written (in a
    source's own terms when its registration names a jsonldContext, record 0470)."""
    params = {k: v for k, v in P.query(request).items() if k not in ("local", "geometryProperty")}
    types = type_selection(request, tm)
    expanded = {"type": types, "drop": _expanded(drop, tm), "keep": _expanded(keep, tm)}
    params |= {k: ",".join(v) for k, v in expanded.items() if v}
    return PurgeRequest(
        hop_of(request),
        params,
        link=tm.link_url,
        types=types,
        ids=P.csv(request, "id"),
        drop=expanded["drop"],
        keep=expanded["keep"],
        query=query,
    )


def _expanded(names: list[str] | None, tm: TermMap) -> list[str] | None:
    return [tm.expand_term(a) for a in names] if names else None


_PURGE_PARAMS = frozenset(
    {
        "type",
        "id",
        "idPattern",
        "drop",
        "keep",
        "q",
        "scopeQ",
        "csf",
        "local",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "geometryProperty",
    }
)


def check_purge_selection(query: Query, attributes: bool, local: bool) -> None:
    """Clause 5.6.21.4: at least a type selector, a list of attribute names (drop, keep), a q, a geo-query or the
    local scope; ids or an id pattern alone select too widely (5.6.21.3). Decision record 0115."""
    if local or query.types is not None or query.q is not None or query.geo is not None or attributes:
        return
    raise BadRequestData(
        "purging entities needs at least one of type, q, a geo-query, drop or keep, unless local=true (clause 5.6.21.4)"
    )


async def _purge_selection(state: BrokerState, caller: Caller, query: Query, map_id: str | None) -> list[Entity]:
    """What a purge deletes: the query's matches, or only those in the entity map the NGSILD-EntityMap header names
    (Table 6.4.3.3-2); an unknown map is ResourceNotFound, never the whole query (decision record 0015)."""
    if map_id is None:
        return await state.queries.select(caller, [query])
    selected = await state.queries.map_select(caller, map_id, [query])
    if selected is None:
        raise ResourceNotFound(f"no entity map {map_id}")
    return selected


async def post_query(request: Request) -> Response:
    """Query Entities via POST (clause 6.23): the Query in the body, paging and representation in the URL."""
    state = state_of(request)
    P.check_params(request, _POST_QUERY_PARAMS)
    media = negotiate(request)
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    queries, view_params = parse_query_body(request, body.data, tm)
    view = view_of_params(request, tm, view_params)
    attrs = body_attrs(view_params, tm)
    paging = P.paging(request)
    local = P.flag(request, "local") or view_params.get("local") == "true"
    origin = origin_of(request, tm, body.context, local=local)
    page, map_id = await _run_query(request, state, caller_of(request), queries, paging, attrs, origin)
    return _page_response(request, page, paging, tm, view, media, entity_map=map_id)


_POST_QUERY_PARAMS = frozenset(
    {
        "limit",
        "offset",
        "count",
        "options",
        "format",
        "local",
        "lang",
        "entityMap",
        "entityMapLifetime",
        "splitEntities",
    }
)


def parse_query_body(request: Request, data: Any, tm: TermMap) -> tuple[list[Query], dict[str, str]]:
    """The queries of a Query body (one per EntitySelector), checked as clause 5.7.2.4 asks, and its projection."""
    params_list, view_params = query_body_params(data)
    queries = [parse_query(params, tm, limits=state_of(request).limits) for params in params_list]
    local = P.flag(request, "local") or view_params.get("local") == "true"
    check_query(queries[0], body_attrs(view_params, tm), local)
    return queries, view_params


def body_attrs(view_params: Mapping[str, str], tm: TermMap) -> frozenset[str] | None:
    attrs = _projection_of(view_params.get("attrs"), "attrs", tm)
    return attrs.names() if attrs else None


# -- /entities/{entityId} ----------------------------------------------------------------------------------------
async def retrieve_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, _RETRIEVE_PARAMS | _JOIN_PARAMS)
    media = negotiate(request, GEO_OFFERED)
    _geometry_property_needs_geojson(request, media)
    tm = await request_context(request, state)
    view = view_of(request, tm)
    caller = caller_of(request)
    entity_id, types = request.path_params["entity_id"], type_selection(request, tm)
    origin = await origin_if_federated(request, state, caller, tm)
    entity, warnings = await state.entities.retrieve_from_sources(caller, entity_id, types, origin)
    try:
        require_projected_attributes(entity, view)
    except NgsiLdError as exc:
        exc.warnings = warnings
        raise
    # Clause 5.7.1.4: the map used (the header's while it exists, else a new one of this entity) is named.
    map_id = await state.entity_maps.for_entity(caller, entity["id"], map_request(request))
    headers = {"NGSILD-EntityMap": f"{BASE}/entityMaps/{map_id}"} if map_id else None
    if media == GEO_JSON:
        feature = as_feature(render(entity, tm, view), entity, _geometry_property(request, tm))
        return with_warnings(geo_response(request, feature, tm, headers), warnings)
    docs, flat = await _joined(request, state, caller, [entity], tm, view)
    return with_warnings(ld_response(request, docs if flat else docs[0], tm, media, headers=headers), warnings)


async def _joined(
    request: Request, state: BrokerState, caller: Caller, entities: list[Entity], tm: TermMap, view: View
) -> tuple[list[dict[str, Any]], bool]:
    """The rendered entities with Linked Entity Retrieval applied (clause 4.5.23); True when `join=flat`."""
    params = P.query(request)
    mode, level = parse_join(params.get("join"), params.get("joinLevel"), state.settings.max_join_level)
    check_projection_depth(view.pick, view.omit, mode, level)
    if mode == "@none":
        return [render(e, tm, view) for e in entities], False
    # Only the Relationships the answer shows are followed, each linked entity in its own view (record 0107).
    contained_by = P.csv(request, "containedBy") or []
    seen_by = await state.access.view(caller)
    found = await linked_with_states(
        state.store,
        caller.tenant,
        entities,
        level,
        contained_by,
        follow_shown,
        view,
        roots_seen=mode == "flat",
        seen_by=seen_by,
    )
    if mode == "inline":
        linked = {eid: entity for eid, (entity, _) in found.items()}
        return [render_inline(e, tm, view, linked, level) for e in entities], False
    return [render(e, tm, view) for e in entities] + [render(e, tm, v) for e, v in found.values()], True


async def delete_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "local"}))
    tm = await request_context(request, state)
    entity_id = request.path_params["entity_id"]
    remote = await state.entities.delete(caller_of(request), entity_id, type_selection(request, tm), hop_of(request))
    return entity_result(request, entity_id, remote, no_content(request))


async def merge_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "options", "observedAt", "lang", "format", "local"}))
    fmt, _ = parse_format(P.query(request).get("format"), P.options(request, _VIEW_OPTIONS))
    observed_at = P.query(request).get("observedAt")
    if observed_at is not None:
        check_datetime(observed_at, "observedAt")
    body = await read_body(request, state.settings.max_body_bytes, merge_patch=True)
    tm = await request_context(request, state, body.context)
    opts = MergeOptions(observed_at=observed_at, lang=P.query(request).get("lang"), simplified=fmt == "simplified")
    entity_id, types = request.path_params["entity_id"], type_selection(request, tm)
    remote = await state.entities.merge(caller_of(request), tm, entity_id, body.data, opts, types, hop_of(request))
    return entity_result(request, entity_id, remote, no_content(request))


async def replace_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    entity_id, types = request.path_params["entity_id"], type_selection(request, tm)
    remote = await state.entities.replace(caller_of(request), tm, entity_id, body.data, types, hop_of(request))
    return entity_result(request, entity_id, remote, no_content(request))


# -- attributes --------------------------------------------------------------------------------------------------
def hop_of(request: Request) -> Hop:
    """What a distributed write needs of the request: local=true (5.5.13) and the incoming Via (4.3.6.4)."""
    return Hop(local=P.flag(request, "local"), via=header(request, "via"), headers=request.headers)


def with_warnings(response: Response, warnings: Sequence[str]) -> Response:
    """One NGSILD-Warning header per failed context source (clause 6.3.17, records 0184 and 0192)."""
    for value in warnings:
        response.headers.append("NGSILD-Warning", value)
    return response


def entity_result(request: Request, entity_id: str, remote: Remote | None, done: Response) -> Response:
    """`done` when every part of a single-entity write succeeded; else 207 with a BatchOperationResult holding one
    BatchEntityError per failed source (Tables 6.5.3.2-2 to 6.5.3.4-2, 5.2.17; record 0192)."""
    if remote is None or not remote.failures:
        return with_warnings(done, remote.warnings if remote is not None else ())
    errors = [failure_entry(entity_id, f) for f in remote.failures]
    body = {"success": [entity_id] if remote.local or remote.succeeded else [], "errors": errors}
    return with_warnings(json_response(request, body, 207), remote.warnings)


def failure_entry(entity_id: str, failure: SourceFailure) -> dict[str, Any]:
    return {"entityId": entity_id, "registrationId": failure.registration_id, "error": failure.problem}


def update_result(request: Request, result: UpdateResult, tm: TermMap) -> Response:
    """204, or 207 with the UpdateResult (5.2.18) in fully qualified names: clause 6.3.6 "Only Fully Qualified Names
    shall be used in the payload body of error or partial success responses, as there is no context present"
    (decision record 0117); a context source's failure names its registrationId (5.2.19, record 0192)."""
    if not result.not_updated and not result.failed:
        return with_warnings(no_content(request), result.warnings)
    not_updated = [{"attributeName": i, "reason": why} for i, why in result.not_updated]
    for failure in result.failed:
        names = sorted(failure.attrs) or [""]
        not_updated += [
            {"attributeName": n, "reason": failure.reason, "registrationId": failure.registration_id} for n in names
        ]
    body = {"updated": list(result.updated), "notUpdated": not_updated}
    return with_warnings(json_response(request, body, 207), result.warnings)


async def append_attrs(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options", "type", "local"}))
    no_overwrite = "noOverwrite" in P.options(request, frozenset({"noOverwrite"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    entity_id, types = request.path_params["entity_id"], type_selection(request, tm)
    result = await state.entities.append(
        caller_of(request), tm, entity_id, body.data, no_overwrite, types, hop_of(request)
    )
    return update_result(request, result, tm)


async def update_attrs(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    entity_id, types = request.path_params["entity_id"], type_selection(request, tm)
    result = await state.entities.update_attrs(caller_of(request), tm, entity_id, body.data, types, hop_of(request))
    return update_result(request, result, tm)


async def update_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"datasetId", "local", "type"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    p = request.path_params
    dataset_id, types = P.query(request).get("datasetId"), type_selection(request, tm)
    remote = await state.entities.update_attr(
        caller_of(request), tm, p["entity_id"], p["attr"], body.data, dataset_id, types, hop_of(request)
    )
    return entity_result(request, p["entity_id"], remote, no_content(request))


async def replace_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"datasetId", "local", "type"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    p = request.path_params
    dataset_id, types = P.query(request).get("datasetId"), type_selection(request, tm)
    remote = await state.entities.replace_attr(
        caller_of(request), tm, p["entity_id"], p["attr"], body.data, dataset_id, types, hop_of(request)
    )
    return entity_result(request, p["entity_id"], remote, no_content(request))


async def delete_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"datasetId", "deleteAll", "local", "type"}))
    tm = await request_context(request, state)
    p = request.path_params
    remote = await state.entities.delete_attr(
        caller_of(request),
        tm,
        p["entity_id"],
        p["attr"],
        P.query(request).get("datasetId"),
        P.flag(request, "deleteAll"),
        type_selection(request, tm),
        hop_of(request),
    )
    return entity_result(request, p["entity_id"], remote, no_content(request))


# -- /entityOperations -------------------------------------------------------------------------------------------
def batch_response(request: Request, result: BatchResult, created_status: bool) -> Response:
    """201 with the created ids, 204, or 207 with a BatchOperationResult (clause 5.2.16)."""
    if result.errors or result.remote_errors:
        errors = [{"entityId": eid, "error": exc.to_problem()} for eid, exc in result.errors]
        errors += [failure_entry(eid, failure) for eid, failure in result.remote_errors]
        body = {"success": result.success, "errors": errors}
        return with_warnings(json_response(request, body, 207), result.warnings)
    if created_status and result.created:
        return with_warnings(json_response(request, result.created, 201), result.warnings)
    return with_warnings(no_content(request), result.warnings)


async def _batch_body(request: Request, state: BrokerState) -> tuple[Any, Contexts]:
    """The batch and the term map of each of its items (clause 6.3.5 per item, decision record 0111): under
    application/json the Link header's context, resolved once for the request; under application/ld+json each
    item's own @context, so an item without one, or whose @context cannot be had, fails alone."""
    body = await read_batch_body(request, state.settings.max_body_bytes)
    if media_type(request) != LD_JSON:
        tm = await request_context(request, state)
        return body.data, [c if isinstance(c, NgsiLdError) else tm for c in body.contexts]
    resolved: dict[bytes, TermMap | NgsiLdError] = {}
    contexts: list[TermMap | NgsiLdError] = []
    for value in body.contexts:
        if isinstance(value, NgsiLdError):
            contexts.append(value)
            continue
        key = orjson.dumps(value)
        if key not in resolved:
            try:
                resolved[key] = await request_context(request, state, value)
            except NgsiLdError as exc:
                resolved[key] = exc
        contexts.append(resolved[key])
    return body.data, contexts


async def batch_create(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    data, tm = await _batch_body(request, state)
    return batch_response(request, await state.batch.create(caller_of(request), tm, data, hop_of(request)), True)


async def batch_upsert(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options", "local"}))
    opts = P.options(request, frozenset({"replace", "update"}))
    if len(set(opts)) > 1:
        raise BadRequestData("options=replace and options=update exclude each other")
    data, tm = await _batch_body(request, state)
    result = await state.batch.upsert(caller_of(request), tm, data, "update" in opts, hop_of(request))
    return batch_response(request, result, True)


async def batch_update(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options", "local"}))
    no_overwrite = "noOverwrite" in P.options(request, frozenset({"noOverwrite"}))
    data, tm = await _batch_body(request, state)
    result = await state.batch.update(caller_of(request), tm, data, no_overwrite, hop_of(request))
    return batch_response(request, result, False)


async def batch_merge(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    data, tm = await _batch_body(request, state)
    return batch_response(request, await state.batch.merge(caller_of(request), tm, data, hop_of(request)), False)


async def batch_delete(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    # An array of ids has no term to expand: no @context is asked of it, whatever the Content-Type (record 0111).
    body = await read_batch_body(request, state.settings.max_body_bytes, terms=False)
    return batch_response(request, await state.batch.delete(caller_of(request), body.data, hop_of(request)), False)


# -- a path whose entity id is empty ----------------------------------------------------------------------------
async def missing_entity_id(request: Request) -> Response:
    """PATCH or PUT /entities/ and /entities//attrs...: clauses 5.6.2.4 to 5.6.5.4, 5.6.17.4, 5.6.18.4, 5.6.19.4
    "If the Entity ID is not present ... BadRequestData" (decision record 0110)."""
    raise BadRequestData(f"{request.method} {request.url.path}: the entity id is not present")


async def entities_slash(request: Request) -> Response:
    """/entities/, the resource URI as Table 6.2-1 writes it: create, query and purge answer there as at
    /entities (no redirect, which some clients do not follow); merge and replace name no entity: BadRequestData."""
    if request.method in ("PATCH", "PUT"):
        return await missing_entity_id(request)
    if request.method == "POST":
        return await create_entity(request)
    if request.method == "DELETE":
        return await purge_entities(request)
    return await query_entities(request)


ROUTES = [
    # Paths with an empty entity id: errors and redirects, no operation of their own (not in the OpenAPI document).
    Route(
        f"{BASE}/entities/", entities_slash, methods=["GET", "POST", "DELETE", "PATCH", "PUT"], include_in_schema=False
    ),
    Route(f"{BASE}/entities//attrs", missing_entity_id, methods=["POST", "PATCH"], include_in_schema=False),
    Route(f"{BASE}/entities//attrs/", missing_entity_id, methods=["POST", "PATCH"], include_in_schema=False),
    Route(
        f"{BASE}/entities//attrs/{{attr:rest}}",
        missing_entity_id,
        methods=["PATCH", "PUT", "DELETE"],
        include_in_schema=False,
    ),
    Route(f"{BASE}/entities", create_entity, methods=["POST"]),
    Route(f"{BASE}/entities", query_entities, methods=["GET"]),
    Route(f"{BASE}/entities", purge_entities, methods=["DELETE"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}", retrieve_entity, methods=["GET"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}", delete_entity, methods=["DELETE"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}", merge_entity, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}", replace_entity, methods=["PUT"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}/attrs", append_attrs, methods=["POST"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}/attrs", update_attrs, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}/attrs/{{attr:segment}}", update_attr, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}/attrs/{{attr:segment}}", replace_attr, methods=["PUT"]),
    Route(f"{BASE}/entities/{{entity_id:segment}}/attrs/{{attr:segment}}", delete_attr, methods=["DELETE"]),
    Route(f"{BASE}/entityOperations/query", post_query, methods=["POST"]),
    Route(f"{BASE}/entityOperations/create", batch_create, methods=["POST"]),
    Route(f"{BASE}/entityOperations/upsert", batch_upsert, methods=["POST"]),
    Route(f"{BASE}/entityOperations/update", batch_update, methods=["POST"]),
    Route(f"{BASE}/entityOperations/merge", batch_merge, methods=["POST"]),
    Route(f"{BASE}/entityOperations/delete", batch_delete, methods=["POST"]),
]
