"""Routes of /csourceRegistrations (clause 6.8: register, query) and /csourceRegistrations/{registrationId}
(clause 6.9: retrieve, update, delete). Each route: check parameters, read the body and its @context, call one
operation of broker.core.registrations, render in the request's @context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.csource_subscriptions import time_filter
from broker.core.errors import BadRequestData
from broker.core.registrations import TimeFilter, merge_fragment, rendered
from broker.http import params as P
from broker.http.entities import BASE, attrs_filter, caller_of, request_context
from broker.http.negotiation import negotiate, read_body
from broker.http.paths import quote_segment
from broker.http.render import ld_response, no_content, page_links
from broker.http.state import state_of
from broker.query import parse_query

PATH = f"{BASE}/csourceRegistrations"
_QUERY_PARAMS = frozenset(
    {
        "id",
        "type",
        "idPattern",
        "attrs",
        "q",
        "csf",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "scopeQ",
        "timeproperty",
        "timerel",
        "timeAt",
        "endTimeAt",
        "limit",
        "offset",
        "count",
        "options",
        "local",
    }
)
_TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
_OPTIONS = frozenset({"sysAttrs", "count"})


def _without_context(data: Any) -> Any:
    return {k: v for k, v in data.items() if k != "@context"} if isinstance(data, dict) else data


def _time_filter(params: dict[str, str]) -> TimeFilter | None:
    """timerel/timeAt/endTimeAt/timeproperty (6.8.3.2), matched against the registration's intervals."""
    if params.get("timerel") is None:
        if any(k in params for k in ("timeAt", "endTimeAt")):
            raise BadRequestData("timeAt and endTimeAt need timerel")
        return None
    return time_filter(params)


async def create_registration(request: Request) -> Response:
    """Register Context Source (6.8.3.1): 201 with the registration's Location."""
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    reg_id = await state.registrations.create(caller_of(request), _without_context(body.data), tm)
    return no_content(request, {"Location": f"{PATH}/{quote_segment(reg_id)}"}, status=201)


async def query_registrations(request: Request) -> Response:
    """Query Context Source Registrations (6.8.3.2, 5.10.2): the matching registrations, a page in id order."""
    state = state_of(request)
    P.check_params(request, _QUERY_PARAMS)
    media = negotiate(request)
    tm = await request_context(request, state)
    params = P.query(request)
    query = parse_query(params, tm, limits=state.limits)
    attrs = attrs_filter(request, tm)
    when = _time_filter(params)
    paging = P.paging(request)
    state.queries.check_paging(paging)
    options = P.options(request, _OPTIONS)
    records, count = await state.registrations.query(caller_of(request), query, attrs, when, paging)
    body = [rendered(r, tm, "sysAttrs" in options) for r in records]
    headers = {"NGSILD-Results-Count": str(count)} if P.flag(request, "count") or "count" in options else {}
    response = ld_response(request, body, tm, media, headers=headers)
    for link in page_links(request, paging, paging.offset + paging.limit < count, media):
        response.headers.append("Link", link)
    return response


async def retrieve_registration(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options"}))
    media = negotiate(request)
    tm = await request_context(request, state)
    record = await state.registrations.retrieve(caller_of(request), request.path_params["reg_id"])
    sys_attrs = "sysAttrs" in P.options(request, frozenset({"sysAttrs"}))
    return ld_response(request, rendered(record, tm, sys_attrs), tm, media)


async def update_registration(request: Request) -> Response:
    """Update Context Source Registration (6.9.3.2): the fragment's members replace the stored ones (record 0165),
    the result validated as a whole; nothing changes when it is invalid."""
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes, merge_patch=True)
    tm = await request_context(request, state, body.context)
    caller = caller_of(request)
    record = await state.registrations.retrieve(caller, request.path_params["reg_id"])
    doc = merge_fragment(rendered(record, tm, False), _without_context(body.data), tm)
    await state.registrations.update(caller, record, doc, tm)
    return no_content(request)


async def delete_registration(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    await state.registrations.delete(caller_of(request), request.path_params["reg_id"])
    return no_content(request)


ROUTES = [
    Route(PATH, create_registration, methods=["POST"]),
    Route(PATH, query_registrations, methods=["GET"]),
    Route(f"{PATH}/{{reg_id:segment}}", retrieve_registration, methods=["GET"]),
    Route(f"{PATH}/{{reg_id:segment}}", update_registration, methods=["PATCH"]),
    Route(f"{PATH}/{{reg_id:segment}}", delete_registration, methods=["DELETE"]),
]
