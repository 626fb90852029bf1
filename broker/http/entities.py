"""Routes of /entities, /entities/{id}, .../attrs, .../attrs/{attrId} and /entityOperations.

Clauses 6.4 to 6.7, 6.14 to 6.17 and 6.31.

Each route: check parameters, read the body and its @context, call one core operation, render. Nothing else.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.batch import BatchResult
from broker.core.caller import Caller
from broker.core.entities import MergeOptions, UpdateResult
from broker.core.errors import BadRequestData, OperationNotSupported
from broker.core.normalize import check_datetime, check_uri
from broker.core.render import View, parse_format, render
from broker.http import params as P
from broker.http.negotiation import link_context, negotiate, read_body, tenant_of
from broker.http.render import json_response, ld_response, no_content
from broker.http.state import BrokerState, state_of
from broker.ld.termmap import TermMap
from broker.store.base import EntityFilter

BASE = "/ngsi-ld/v1"

_VIEW_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs"})
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
    }
)
_QUERY_PARAMS = (
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
        }
    )
    | _RETRIEVE_PARAMS
)
_NOT_YET = ("q", "scopeQ", "georel", "geometry", "coordinates", "csf", "orderBy", "join", "entityMap", "containedBy")


def caller_of(request: Request) -> Caller:
    return Caller(tenant=tenant_of(request))


async def request_context(request: Request, state: BrokerState, context: Any = None) -> TermMap:
    value = context if context is not None else link_context(request)
    return await state.resolver.resolve(value)


def type_selection(request: Request, tm: TermMap) -> list[str] | None:
    raw = request.query_params.get("type")
    if raw is None:
        return None
    names = [t.strip() for t in raw.replace("|", ",").split(",")]
    if not all(names):
        raise BadRequestData(f"type={raw!r} has an empty type name")
    return [tm.expand_term(n) for n in names]


def view_of(request: Request, tm: TermMap) -> View:
    fmt, sys_attrs = parse_format(request.query_params.get("format"), P.options(request, _VIEW_OPTIONS))
    pick = P.csv(request, "pick") or P.csv(request, "attrs")
    omit = P.csv(request, "omit")
    return View(
        format=fmt,
        sys_attrs=sys_attrs,
        lang=request.query_params.get("lang"),
        attrs=frozenset(tm.expand_term(a) for a in pick) if pick else None,
        omit=frozenset(tm.expand_term(a) for a in omit) if omit else None,
    )


# -- /entities ---------------------------------------------------------------------------------------------------
async def create_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    entity_id = await state.entities.create(caller_of(request), tm, body.data)
    return no_content(request, {"Location": f"{BASE}/entities/{entity_id}"}, status=201)


async def query_entities(request: Request) -> Response:
    """A first query path (type, id, idPattern, attrs, paging); the full language lands with the query issue."""
    state = state_of(request)
    P.check_params(request, _QUERY_PARAMS)
    for name in _NOT_YET:
        if name in request.query_params:
            raise OperationNotSupported(f"query parameter {name} is not supported yet")
    media = negotiate(request)
    tm = await request_context(request, state)
    view = view_of(request, tm)
    types = type_selection(request, tm)
    ids = P.csv(request, "id")
    if ids:
        for i in ids:
            check_uri(i, "id")
    if not (types or view.attrs or ids or P.flag(request, "local") or request.query_params.get("idPattern")):
        raise BadRequestData("a query needs at least one of type, attrs, q or georel (or local=true)")
    caller = caller_of(request)
    await state.entities.check_tenant(caller)
    flt = EntityFilter(
        types=frozenset(types) if types else None, ids=frozenset(ids) if ids else None, id_pattern=_id_pattern(request)
    )
    limit = P.integer(request, "limit", 20, 0, 1000)
    offset = P.integer(request, "offset", 0, 0, 10**9)
    found = [e for e in await state.store.scan(caller.tenant, flt) if not view.attrs or view.attrs & set(e["attrs"])]
    page = found[offset : offset + limit]
    headers = {"NGSILD-Results-Count": str(len(found))} if P.flag(request, "count") else {}
    return ld_response(request, [render(e, tm, view) for e in page], tm, media, headers=headers)


def _id_pattern(request: Request) -> str | None:
    pattern = request.query_params.get("idPattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise BadRequestData(f"idPattern {pattern!r} is not a valid regular expression: {exc}") from exc
    return pattern


async def purge_entities(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "id", "idPattern", "drop", "keep", "q", "scopeQ", "local"}))
    for name in ("q", "scopeQ"):
        if name in request.query_params:
            raise OperationNotSupported(f"purge with {name} is not supported yet")
    tm = await request_context(request, state)
    types = type_selection(request, tm)
    ids = P.csv(request, "id")
    for i in ids or []:
        check_uri(i, "id")
    pattern = _id_pattern(request)
    if not (types or ids or pattern):
        raise BadRequestData("purging entities needs at least one of type, id or idPattern")
    drop, keep = P.csv(request, "drop"), P.csv(request, "keep")
    if drop and keep:
        raise BadRequestData("drop and keep cannot be used together")
    flt = EntityFilter(
        types=frozenset(types) if types else None, ids=frozenset(ids) if ids else None, id_pattern=pattern
    )
    await state.entities.purge(
        caller_of(request),
        flt,
        drop=[tm.expand_term(a) for a in drop] if drop else None,
        keep=[tm.expand_term(a) for a in keep] if keep else None,
    )
    return no_content(request)


# -- /entities/{entityId} ----------------------------------------------------------------------------------------
async def retrieve_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, _RETRIEVE_PARAMS)
    media = negotiate(request)
    tm = await request_context(request, state)
    view = view_of(request, tm)
    entity = await state.entities.retrieve(
        caller_of(request), request.path_params["entity_id"], type_selection(request, tm)
    )
    return ld_response(request, render(entity, tm, view), tm, media)


async def delete_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "local"}))
    tm = await request_context(request, state)
    await state.entities.delete(caller_of(request), request.path_params["entity_id"], type_selection(request, tm))
    return no_content(request)


async def merge_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "options", "observedAt", "lang", "format", "local"}))
    fmt, _ = parse_format(request.query_params.get("format"), P.options(request, _VIEW_OPTIONS))
    observed_at = request.query_params.get("observedAt")
    if observed_at is not None:
        check_datetime(observed_at, "observedAt")
    body = await read_body(request, state.settings.max_body_bytes, merge_patch=True)
    tm = await request_context(request, state, body.context)
    opts = MergeOptions(observed_at=observed_at, lang=request.query_params.get("lang"), simplified=fmt == "simplified")
    await state.entities.merge(
        caller_of(request), tm, request.path_params["entity_id"], body.data, opts, type_selection(request, tm)
    )
    return no_content(request)


async def replace_entity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    await state.entities.replace(caller_of(request), tm, request.path_params["entity_id"], body.data)
    return no_content(request)


# -- attributes --------------------------------------------------------------------------------------------------
def update_result(request: Request, result: UpdateResult, tm: TermMap) -> Response:
    if not result.not_updated:
        return no_content(request)
    body = {
        "updated": [tm.compact_iri(i) for i in result.updated],
        "notUpdated": [{"attributeName": tm.compact_iri(i), "reason": why} for i, why in result.not_updated],
    }
    return json_response(request, body, 207)


async def append_attrs(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options", "type", "local"}))
    no_overwrite = "noOverwrite" in P.options(request, frozenset({"noOverwrite"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    result = await state.entities.append(
        caller_of(request), tm, request.path_params["entity_id"], body.data, no_overwrite
    )
    return update_result(request, result, tm)


async def update_attrs(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"type", "local"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    result = await state.entities.update_attrs(caller_of(request), tm, request.path_params["entity_id"], body.data)
    return update_result(request, result, tm)


async def update_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"datasetId", "local", "type"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    p = request.path_params
    await state.entities.update_attr(
        caller_of(request), tm, p["entity_id"], p["attr"], body.data, request.query_params.get("datasetId")
    )
    return no_content(request)


async def replace_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"datasetId", "local", "type"}))
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    p = request.path_params
    await state.entities.replace_attr(
        caller_of(request), tm, p["entity_id"], p["attr"], body.data, request.query_params.get("datasetId")
    )
    return no_content(request)


async def delete_attr(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"datasetId", "deleteAll", "local", "type"}))
    tm = await request_context(request, state)
    p = request.path_params
    await state.entities.delete_attr(
        caller_of(request),
        tm,
        p["entity_id"],
        p["attr"],
        request.query_params.get("datasetId"),
        P.flag(request, "deleteAll"),
    )
    return no_content(request)


# -- /entityOperations -------------------------------------------------------------------------------------------
def batch_response(request: Request, result: BatchResult, created_status: bool) -> Response:
    """201 with the created ids, 204, or 207 with a BatchOperationResult (clause 5.2.16)."""
    if result.errors:
        body = {
            "success": result.success,
            "errors": [{"entityId": eid, "error": exc.to_problem()} for eid, exc in result.errors],
        }
        return json_response(request, body, 207)
    if created_status and result.created:
        return json_response(request, result.created, 201)
    return no_content(request)


async def _batch_body(request: Request, state: BrokerState) -> tuple[Any, TermMap]:
    body = await read_body(request, state.settings.max_body_bytes)
    return body.data, await request_context(request, state, body.context)


async def batch_create(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    data, tm = await _batch_body(request, state)
    return batch_response(request, await state.batch.create(caller_of(request), tm, data), True)


async def batch_upsert(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options", "local"}))
    opts = P.options(request, frozenset({"replace", "update"}))
    if len(set(opts)) > 1:
        raise BadRequestData("options=replace and options=update exclude each other")
    data, tm = await _batch_body(request, state)
    return batch_response(request, await state.batch.upsert(caller_of(request), tm, data, "update" in opts), True)


async def batch_update(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options", "local"}))
    no_overwrite = "noOverwrite" in P.options(request, frozenset({"noOverwrite"}))
    data, tm = await _batch_body(request, state)
    return batch_response(request, await state.batch.update(caller_of(request), tm, data, no_overwrite), False)


async def batch_merge(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    data, tm = await _batch_body(request, state)
    return batch_response(request, await state.batch.merge(caller_of(request), tm, data), False)


async def batch_delete(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    body = await read_body(request, state.settings.max_body_bytes)  # a @context has no bearing on a list of ids
    return batch_response(request, await state.batch.delete(caller_of(request), body.data), False)


ROUTES = [
    Route(f"{BASE}/entities", create_entity, methods=["POST"]),
    Route(f"{BASE}/entities", query_entities, methods=["GET"]),
    Route(f"{BASE}/entities", purge_entities, methods=["DELETE"]),
    Route(f"{BASE}/entities/{{entity_id}}", retrieve_entity, methods=["GET"]),
    Route(f"{BASE}/entities/{{entity_id}}", delete_entity, methods=["DELETE"]),
    Route(f"{BASE}/entities/{{entity_id}}", merge_entity, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id}}", replace_entity, methods=["PUT"]),
    Route(f"{BASE}/entities/{{entity_id}}/attrs", append_attrs, methods=["POST"]),
    Route(f"{BASE}/entities/{{entity_id}}/attrs", update_attrs, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id}}/attrs/{{attr}}", update_attr, methods=["PATCH"]),
    Route(f"{BASE}/entities/{{entity_id}}/attrs/{{attr}}", replace_attr, methods=["PUT"]),
    Route(f"{BASE}/entities/{{entity_id}}/attrs/{{attr}}", delete_attr, methods=["DELETE"]),
    Route(f"{BASE}/entityOperations/create", batch_create, methods=["POST"]),
    Route(f"{BASE}/entityOperations/upsert", batch_upsert, methods=["POST"]),
    Route(f"{BASE}/entityOperations/update", batch_update, methods=["POST"]),
    Route(f"{BASE}/entityOperations/merge", batch_merge, methods=["POST"]),
    Route(f"{BASE}/entityOperations/delete", batch_delete, methods=["POST"]),
]
