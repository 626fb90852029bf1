"""Routes of /entityMaps (clause 6.34: create a map from a query, by GET with URL parameters or by POST with a
Query body) and /entityMaps/{entityMapId} (clause 6.32: retrieve, update, delete). The maps themselves are
broker.core.entity_maps; queries page through one with the NGSILD-EntityMap header (broker.http.entities)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.entity_maps import document
from broker.http import params as P
from broker.http.entities import (
    BASE,
    ENTITY_QUERY_PARAMS,
    attrs_filter,
    body_attrs,
    caller_of,
    check_query,
    origin_of,
    parse_query_body,
    request_context,
)
from broker.http.negotiation import negotiate, read_body
from broker.http.render import ld_response, no_content
from broker.http.state import state_of
from broker.ld.termmap import TermMap
from broker.query import parse_query
from broker.store.base import EntityMapRecord


async def create_map(request: Request) -> Response:
    """Create EntityMap for Query Entities (6.34.3.1): the parameters of Query Entities, limit and offset ignored."""
    state = state_of(request)
    P.check_params(request, ENTITY_QUERY_PARAMS)
    media = negotiate(request)
    tm = await request_context(request, state)
    query = parse_query(P.query(request), tm, limits=state.limits)
    attrs = attrs_filter(request, tm)
    check_query(query, attrs, P.flag(request, "local"))
    lifetime = P.query(request).get("entityMapLifetime")
    record = await state.entity_maps.create(caller_of(request), [query], attrs, lifetime, origin_of(request, tm))
    return map_created(request, record, tm, media)


async def create_map_by_post(request: Request) -> Response:
    """Create EntityMap for Query Entities via POST (6.34.3.2): the Query in the body."""
    state = state_of(request)
    P.check_params(request, frozenset({"local", "entityMapLifetime"}))
    media = negotiate(request)
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    queries, view_params = parse_query_body(request, body.data, tm)
    attrs = body_attrs(view_params, tm)
    lifetime = P.query(request).get("entityMapLifetime")
    local = P.flag(request, "local") or view_params.get("local") == "true"
    origin = origin_of(request, tm, body.context, local=local)
    record = await state.entity_maps.create(caller_of(request), queries, attrs, lifetime, origin)
    return map_created(request, record, tm, media)


def map_created(request: Request, record: EntityMapRecord, tm: TermMap, media: str) -> Response:
    """201 with the EntityMap made now, named in NGSILD-EntityMap (6.34.3, and 6.35.3 for the temporal maps)."""
    headers = {"NGSILD-EntityMap": f"{BASE}/entityMaps/{record.id}"}
    return ld_response(request, document(record), tm, media, status=201, headers=headers)


async def retrieve_map(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    media = negotiate(request)
    tm = await request_context(request, state)
    record = await state.entity_maps.retrieve(caller_of(request), request.path_params["map_id"])
    return ld_response(request, document(record), tm, media)


async def update_map(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes, merge_patch=True)
    await state.entity_maps.update(caller_of(request), request.path_params["map_id"], body.data)
    return no_content(request)


async def delete_map(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    await state.entity_maps.delete(caller_of(request), request.path_params["map_id"])
    return no_content(request)


ROUTES = [
    Route(f"{BASE}/entityMaps", create_map, methods=["GET"]),
    Route(f"{BASE}/entityMaps", create_map_by_post, methods=["POST"]),
    Route(f"{BASE}/entityMaps/{{map_id:segment}}", retrieve_map, methods=["GET"]),
    Route(f"{BASE}/entityMaps/{{map_id:segment}}", update_map, methods=["PATCH"]),
    Route(f"{BASE}/entityMaps/{{map_id:segment}}", delete_map, methods=["DELETE"]),
]
