"""Routes of the temporal API: /temporal/entities, /temporal/entities/{id}, .../attrs, .../attrs/{attrId},
.../attrs/{attrId}/{instanceId}, /temporal/entityOperations/query and /temporal/entityMaps (clauses 6.18 to 6.22,
6.24 and 6.35)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.errors import BadRequestData
from broker.core.normalize import check_uri
from broker.core.query import executes_locally, require_selector
from broker.core.temporal import IdOrder, Partial, TemporalView, parse_time_query
from broker.core.temporal_render import render_temporal
from broker.http import params as P
from broker.http.entities import BASE, caller_of, map_request, origin_of, request_context, with_warnings
from broker.http.entity_maps import map_created
from broker.http.negotiation import negotiate, read_body
from broker.http.paths import quote_segment
from broker.http.query_body import query_body_params
from broker.http.render import ld_response, no_content, paged_links
from broker.http.state import state_of
from broker.ld.termmap import TermMap
from broker.query import Query, parse_query
from broker.query.collation import ROOT, parse_collation
from broker.query.projection import Projection, parse_projection
from broker.query.types import AllTypes
from broker.temporal.aggregate import METHODS
from broker.temporal.times import parse_duration

_TIME_PARAMS = frozenset({"timerel", "timeAt", "endTimeAt", "timeproperty"})
_VIEW_PARAMS = frozenset(
    {"attrs", "pick", "omit", "options", "format", "lastN", "aggrMethods", "aggrPeriodDuration", "datasetId", "lang"}
)
_RETRIEVE_PARAMS = _TIME_PARAMS | _VIEW_PARAMS | frozenset({"local", "type"})
_MAP_PARAMS = frozenset({"entityMap", "entityMapLifetime"})
_QUERY_PARAMS = (
    _RETRIEVE_PARAMS
    | frozenset({"id", "idPattern", "q", "scopeQ", "georel", "geometry", "coordinates", "geoproperty"})
    | frozenset({"limit", "offset", "count", "expandValues", "jsonKeys", "csf", "orderBy", "collation"})
    | frozenset({"splitEntities"})
    | _MAP_PARAMS
)
_POST_QUERY_PARAMS = frozenset({"limit", "offset", "count", "options", "format", "local", "lang"}) | _VIEW_PARAMS
_LONGEST_MONTHS, _LONGEST_MICROS = 9999 * 12, 9999 * 366 * 86_400_000_000
_OPTIONS = frozenset({"temporalValues", "aggregatedValues", "sysAttrs", "keyValues", "simplified", "normalized"})
# Temporal queries also take options=count for count=true, the form clients written against other brokers send
# (ngsildclient's temporal query sends options=count,temporalValues), as Query Subscriptions does (record 0143).
_QUERY_OPTIONS = _OPTIONS | {"count"}
_FORMATS = {
    "temporalValues": "temporalValues",
    "simplified": "temporalValues",
    "keyValues": "temporalValues",
    "aggregatedValues": "aggregatedValues",
    "normalized": "normalized",
}


def _view(request: Request, tm: TermMap, selection: Mapping[str, str], *, required: bool) -> TemporalView:
    """The temporal query and representation of a request (URL parameters, or a Query body's members)."""
    time = parse_time_query(selection, required=required)
    options = P.options(request, _QUERY_OPTIONS if required else _OPTIONS)  # required: a query, not a retrieve
    chosen = [_FORMATS[o] for o in options if o in _FORMATS]
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in _FORMATS:
            raise BadRequestData(f"format={fmt!r} is not one of normalized, temporalValues, aggregatedValues")
        chosen.insert(0, _FORMATS[fmt])
    if len(set(chosen)) > 1:
        raise BadRequestData(f"conflicting representations requested: {', '.join(dict.fromkeys(chosen))}")
    representation = chosen[0] if chosen else "normalized"
    methods: tuple[str, ...] = ()
    if representation == "aggregatedValues":
        raw = _view_param(request, selection, "aggrMethods")
        if not raw:
            raise BadRequestData("the aggregated representation needs aggrMethods (e.g. aggrMethods=avg,max)")
        methods = tuple(dict.fromkeys(m.strip() for m in raw.split(",")))
        bad = [m for m in methods if m not in METHODS]
        if bad:
            raise BadRequestData(f"aggrMethods: {', '.join(bad)} not one of {', '.join(METHODS)}")
    elif any(_view_param(request, selection, p) is not None for p in ("aggrMethods", "aggrPeriodDuration")):
        raise BadRequestData("aggrMethods and aggrPeriodDuration need format=aggregatedValues")
    period = parse_duration(_view_param(request, selection, "aggrPeriodDuration") or "PT0S")
    if period.months > _LONGEST_MONTHS or period.micros > _LONGEST_MICROS:  # and the store's integers overflow
        raise BadRequestData("aggrPeriodDuration is longer than years 1 to 9999, the range of DateTimes")
    last_n = _last_n(_view_param(request, selection, "lastN"))
    if "pick" in selection and "attrs" in selection:
        raise BadRequestData("attrs and pick cannot be used together (attrs is the deprecated form of pick)")
    pick = _projection(selection.get("pick") or selection.get("attrs"), tm)
    datasets = P.csv(request, "datasetId")
    return TemporalView(
        time=time,
        representation=representation,
        sys_attrs="sysAttrs" in options,
        attrs=_attr_names(pick),
        datasets=None
        if datasets is None
        else frozenset(None if d == "@none" else check_uri(d, "datasetId") for d in datasets),
        last_n=last_n,
        methods=methods,
        period=period,
        lang=selection.get("lang") or request.query_params.get("lang"),
    )


def _view_param(request: Request, selection: Mapping[str, str], name: str) -> str | None:
    """lastN, aggrMethods or aggrPeriodDuration: a URL parameter, or a member of a Query body's temporalQ (Table
    5.2.21-1); given both ways, they must agree."""
    in_url, in_body = request.query_params.get(name), selection.get(name)
    if in_url is not None and in_body is not None and in_url != in_body:
        raise BadRequestData(f"{name} is given twice, as a URL parameter ({in_url}) and in temporalQ ({in_body})")
    return in_url if in_url is not None else in_body


def _last_n(raw: str | None) -> int | None:
    """Clause 6.19.3.1: lastN is a positive integer."""
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 10**9:
        raise BadRequestData(f"lastN must be a positive integer (at most 10^9), got {raw!r}")
    return int(raw)


def _projection(raw: str | None, tm: TermMap) -> Projection | None:
    if raw is None:
        return None
    projection = parse_projection(raw, tm, param="pick")
    if any(item.linked is not None for item in projection.items):
        raise BadRequestData("Linked Entity projections are not allowed on temporal operations (clause 5.7.3.4)")
    return projection


def _attr_names(pick: Projection | None) -> frozenset[str] | None:
    if pick is None:
        return None
    names = frozenset(n for n in pick.names() if ":" in n)
    return names or None


def _content_range(partial: Partial) -> dict[str, str]:
    size = "*" if partial.size is None else str(partial.size)
    return {"Content-Range": f"date-time {partial.first}-{partial.last}/{size}"}


# -- provision -----------------------------------------------------------------------------------------------------
async def upsert_temporal(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    entity_id, created = await state.temporal.upsert(caller_of(request), tm, body.data)
    if created:
        return no_content(request, {"Location": f"{BASE}/temporal/entities/{quote_segment(entity_id)}"}, status=201)
    return no_content(request)


async def add_temporal_attrs(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    await state.temporal.add_attrs(caller_of(request), tm, request.path_params["entity_id"], body.data)
    return no_content(request)


async def delete_temporal(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    await state.temporal.delete(caller_of(request), request.path_params["entity_id"])
    return no_content(request)


async def delete_temporal_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local", "datasetId", "deleteAll"}))
    tm = await request_context(request, state)
    dataset = request.query_params.get("datasetId")
    if dataset is not None and dataset != "@none":
        check_uri(dataset, "datasetId")
    delete_all = P.flag(request, "deleteAll")
    if delete_all and dataset is not None:
        raise BadRequestData("deleteAll=true and datasetId exclude each other")
    attr = tm.expand_term(request.path_params["attr"])
    await state.temporal.delete_attr(
        caller_of(request), request.path_params["entity_id"], attr, None if dataset == "@none" else dataset, delete_all
    )
    return no_content(request)


async def modify_temporal_instance(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    p = request.path_params
    await state.temporal.modify_instance(
        caller_of(request), tm, p["entity_id"], tm.expand_term(p["attr"]), p["instance_id"], body.data
    )
    return no_content(request)


async def delete_temporal_instance(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    tm = await request_context(request, state)
    p = request.path_params
    await state.temporal.delete_instance(
        caller_of(request), p["entity_id"], tm.expand_term(p["attr"]), p["instance_id"]
    )
    return no_content(request)


# -- consumption ---------------------------------------------------------------------------------------------------
async def retrieve_temporal(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, _RETRIEVE_PARAMS)
    media = negotiate(request)
    tm = await request_context(request, state)
    view = _view(request, tm, request.query_params, required=False)
    entity_id, origin = request.path_params["entity_id"], origin_of(request, tm)
    entity, partial, warnings = await state.temporal.retrieve_from_sources(caller_of(request), entity_id, view, origin)
    pick = _projection(request.query_params.get("pick"), tm)
    omit = _projection(request.query_params.get("omit"), tm)
    doc = render_temporal(entity, tm, view, pick, omit)
    if partial is None:
        return with_warnings(ld_response(request, doc, tm, media), warnings)
    return with_warnings(ld_response(request, doc, tm, media, status=206, headers=_content_range(partial)), warnings)


async def query_temporal(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, _QUERY_PARAMS)
    tm = await request_context(request, state)
    return await _query(request, tm, [dict(request.query_params)], request.query_params)


async def post_query_temporal(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, _POST_QUERY_PARAMS | _MAP_PARAMS)
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    return await _query(request, tm, *_body_selection(body.data))


def _body_selection(data: object) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The one EntitySelector of a temporal Query body, and its selection (projection, temporalQ, local)."""
    params_list, selection = query_body_params(data, temporal=True)
    if len(params_list) > 1:
        raise BadRequestData("a temporal query takes one EntitySelector at most in this broker")
    return params_list, {**selection, **params_list[0]}


def _parse(
    request: Request, tm: TermMap, params_list: list[dict[str, str]], selection: Mapping[str, str]
) -> tuple[Query, TemporalView, IdOrder | None]:
    """The temporal query, view and order of a request, checked as clause 5.7.4.4 (and 5.14.5.4) asks."""
    view = _view(request, tm, selection, required=True)
    query_params = {k: v for k, v in params_list[0].items() if k not in _NOT_QUERY}
    query = parse_query(query_params, tm, limits=state_of(request).limits)
    local = P.flag(request, "local") or selection.get("local") == "true"
    P.flag(request, "splitEntities")  # checked; without context sources every entity is whole (record 0074)
    require_selector(query, view.attrs, local)
    return query, view, _order(selection, query, local)


#: Members that shape or order the answer rather than select entities (orderBy here means "id", no q path).
_NOT_QUERY = frozenset({"pick", "omit", "attrs", "orderBy", "collation"})
_ORDER_BY = re.compile(r"id(?:;(asc|desc))?")


def _order(selection: Mapping[str, str], query: Query, local: bool) -> IdOrder | None:
    """orderBy and collation of a temporal query (Table 6.18.3.2-1, clause 5.7.4.4, decision record 0074): only
    the Entity member "id" can order, and only a query executed locally (as for Query Entities, record 0101)."""
    collation = parse_collation(raw) if (raw := selection.get("collation")) is not None else ROOT
    raw = selection.get("orderBy")
    if raw is None:
        return None
    found = _ORDER_BY.fullmatch(raw)
    if found is None:
        raise BadRequestData(f"orderBy={raw!r}: a temporal query is ordered by id only (id, id;asc or id;desc)")
    if not executes_locally(local) and not isinstance(query.types, AllTypes):
        raise BadRequestData("orderBy needs local=true: entity ordering is never applied to distributed queries")
    return IdOrder(found.group(1) == "desc", collation)


async def _query(
    request: Request, tm: TermMap, params_list: list[dict[str, str]], selection: Mapping[str, str]
) -> Response:
    state = state_of(request)
    media = negotiate(request)
    query, view, order = _parse(request, tm, params_list, selection)
    paging = P.paging(request)
    state.queries.check_paging(paging)
    count = P.flag(request, "count") or "count" in P.options(request, _QUERY_OPTIONS)
    caller, maps = caller_of(request), map_request(request)
    used: tuple[str, bool] | None = None
    local = P.flag(request, "local") or selection.get("local") == "true"
    origin = origin_of(request, tm, local=local)
    if maps.used:
        page, map_id, created = await state.temporal.query_map(
            caller, query, view, paging, maps, state.entity_maps, count=count, order=order, origin=origin
        )
        used = (map_id, created)
    else:
        page = await state.temporal.query_from_sources(caller, query, view, paging, origin, count=count, order=order)
    pick = _projection(selection.get("pick"), tm)
    omit = _projection(selection.get("omit"), tm)
    docs = [render_temporal(e, tm, view, pick, omit) for e in page.entities]
    headers: dict[str, str] = {}
    if page.count is not None:
        headers["NGSILD-Results-Count"] = str(page.count)
    status = 200
    if used is not None:
        headers["NGSILD-EntityMap"] = f"{BASE}/entityMaps/{used[0]}"
        status = 201 if used[1] else 200  # clause 6.18.3.2: 201 when an EntityMap has been (re)created
    if page.partial is not None:
        headers.update(_content_range(page.partial))
        status = 206
    response = ld_response(request, docs, tm, media, status=status, headers=headers)
    for link in paged_links(request, paging, page.more, page.next_offset, media):
        response.headers.append("Link", link)
    return with_warnings(response, page.warnings)


# -- entity maps (6.35) --------------------------------------------------------------------------------------------
async def create_temporal_map(request: Request) -> Response:
    """Create EntityMap for Query Temporal Evolution of Entities (6.35.3.1): the parameters of the temporal query;
    limit, offset, count, entityMap and the NGSILD-EntityMap header are ignored (5.14.5.3)."""
    state = state_of(request)
    P.check_params(request, _QUERY_PARAMS)
    media = negotiate(request)
    tm = await request_context(request, state)
    return await _create_map(request, tm, media, [dict(request.query_params)], request.query_params)


async def create_temporal_map_by_post(request: Request) -> Response:
    """Create EntityMap for Query Temporal Evolution of Entities via POST (6.35.3.2): the Query in the body."""
    state = state_of(request)
    P.check_params(request, _POST_QUERY_PARAMS | _MAP_PARAMS)
    media = negotiate(request)
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    return await _create_map(request, tm, media, *_body_selection(body.data))


async def _create_map(
    request: Request, tm: TermMap, media: str, params_list: list[dict[str, str]], selection: Mapping[str, str]
) -> Response:
    state = state_of(request)
    query, view, order = _parse(request, tm, params_list, selection)
    lifetime = request.query_params.get("entityMapLifetime")
    local = P.flag(request, "local") or selection.get("local") == "true"
    origin = origin_of(request, tm, local=local)
    record = await state.temporal.create_map(
        caller_of(request), query, view, lifetime, state.entity_maps, order, origin
    )
    return map_created(request, record, tm, media)


T = f"{BASE}/temporal/entities"
_INSTANCE = f"{T}/{{entity_id:segment}}/attrs/{{attr:segment}}/{{instance_id:segment}}"
ROUTES = [
    Route(T, upsert_temporal, methods=["POST"]),
    Route(T, query_temporal, methods=["GET"]),
    Route(f"{BASE}/temporal/entityOperations/query", post_query_temporal, methods=["POST"]),
    Route(f"{BASE}/temporal/entityMaps", create_temporal_map, methods=["GET"]),
    Route(f"{BASE}/temporal/entityMaps", create_temporal_map_by_post, methods=["POST"]),
    Route(f"{T}/{{entity_id:segment}}", retrieve_temporal, methods=["GET"]),
    Route(f"{T}/{{entity_id:segment}}", delete_temporal, methods=["DELETE"]),
    Route(f"{T}/{{entity_id:segment}}/attrs", add_temporal_attrs, methods=["POST"]),
    Route(f"{T}/{{entity_id:segment}}/attrs/{{attr:segment}}", delete_temporal_attr, methods=["DELETE"]),
    Route(_INSTANCE, modify_temporal_instance, methods=["PATCH"]),
    Route(_INSTANCE, delete_temporal_instance, methods=["DELETE"]),
]
