"""Routes of /subscriptions and /subscriptions/{id} (clauses 6.10, 6.11), and of /csourceSubscriptions and
/csourceSubscriptions/{id} (clauses 6.12, 6.13), which behave the same over their own records (clause 5.11).

Each route: check parameters, read the body and its @context, call one core operation, render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.caller import Caller
from broker.core.subscriptions import ContextHost, Subscriptions, express, merge_fragment, retrieval_form
from broker.http import params as P
from broker.http.caller import caller_in
from broker.http.negotiation import link_context, negotiate, read_body, tenant_of
from broker.http.paths import quote_segment
from broker.http.render import ld_response, no_content, page_links
from broker.http.state import BrokerState, state_of
from broker.ld.termmap import TermMap
from broker.store.base import SubscriptionRecord

BASE = "/ngsi-ld/v1/subscriptions"
CSOURCE_BASE = "/ngsi-ld/v1/csourceSubscriptions"


@dataclass(frozen=True)
class Kind:
    """Entity subscriptions or context source registration subscriptions: their path and their operations."""

    base: str
    service: Callable[[BrokerState], Subscriptions]


ENTITY = Kind(BASE, lambda state: state.subscriptions)
CSOURCE = Kind(CSOURCE_BASE, lambda state: state.csource_subscriptions)


def _caller(request: Request) -> Caller:
    return caller_in(request, tenant_of(request))


def _without_context(data: Any) -> Any:
    """An application/ld+json body carries its @context as a member; the context itself travels separately."""
    return {k: v for k, v in data.items() if k != "@context"} if isinstance(data, dict) else data


async def _shown(state: BrokerState, record: SubscriptionRecord, tm: TermMap, sys_attrs: bool) -> dict[str, Any]:
    source = await state.resolver.resolve(record.body.get("@context"))
    return retrieval_form(record, source, tm, sys_attrs)


def _context_host(state: BrokerState, request: Request) -> ContextHost:
    """Hosts a subscription's @context array or object as an ImplicitlyCreated @context under this broker."""
    base_url = str(request.base_url)

    async def host(context: Any) -> str | None:
        return await state.contexts.implicit(context, base_url)

    return host


def _sys_attrs(request: Request) -> bool:
    return "sysAttrs" in P.options(request, frozenset({"sysAttrs"}))


#: Query Subscriptions also takes options=count, which clients written for other brokers send for count=true;
#: both ask for NGSILD-Results-Count (record 0133).
_QUERY_OPTIONS = frozenset({"sysAttrs", "count"})


async def create_subscription(request: Request, kind: Kind = ENTITY) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await state.resolver.resolve(body.context)
    host = _context_host(state, request)
    sub_id = await kind.service(state).create(_caller(request), tm, _without_context(body.data), body.context, host)
    return no_content(request, {"Location": f"{kind.base}/{quote_segment(sub_id)}"}, status=201)


async def query_subscriptions(request: Request, kind: Kind = ENTITY) -> Response:
    """Query Subscriptions (clause 6.10.3.2): a page in id order, with count and paging links like entities."""
    state = state_of(request)
    P.check_params(request, frozenset({"limit", "offset", "count", "options", "local"}))
    media = negotiate(request)
    tm = await state.resolver.resolve(link_context(request))
    paging = P.paging(request)
    state.queries.check_paging(paging)
    records, count = await kind.service(state).query(_caller(request), paging)
    options = P.options(request, _QUERY_OPTIONS)
    body = [await _shown(state, r, tm, "sysAttrs" in options) for r in records]
    counted = P.flag(request, "count") or "count" in options
    headers = {"NGSILD-Results-Count": str(count)} if counted else {}
    response = ld_response(request, body, tm, media, headers=headers)
    for link in page_links(request, paging, paging.offset + paging.limit < count, media):
        response.headers.append("Link", link)
    return response


async def retrieve_subscription(request: Request, kind: Kind = ENTITY) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"options"}))
    media = negotiate(request)
    tm = await state.resolver.resolve(link_context(request))
    record = await kind.service(state).retrieve(_caller(request), request.path_params["sub_id"])
    return ld_response(request, await _shown(state, record, tm, _sys_attrs(request)), tm, media)


async def update_subscription(request: Request, kind: Kind = ENTITY) -> Response:
    """Update Subscription (clause 6.11.3.2): the fragment merged into the stored document, in the request's
    terms, then validated as a whole; nothing changes when it is invalid."""
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes, merge_patch=True)
    tm = await state.resolver.resolve(body.context)
    caller = _caller(request)
    service = kind.service(state)
    record = await service.retrieve(caller, request.path_params["sub_id"])
    current = express(record.body, await state.resolver.resolve(record.body.get("@context")), tm, strict=True)
    doc = service.validated(caller.tenant, merge_fragment(current, _without_context(body.data)), tm, body.context)
    await service.update(caller, record, doc, _context_host(state, request))
    return no_content(request)


async def delete_subscription(request: Request, kind: Kind = ENTITY) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    await kind.service(state).delete(_caller(request), request.path_params["sub_id"])
    return no_content(request)


def _routes(kind: Kind) -> list[Route]:
    one = f"{kind.base}/{{sub_id:segment}}"
    return [
        Route(kind.base, partial(create_subscription, kind=kind), methods=["POST"]),
        Route(kind.base, partial(query_subscriptions, kind=kind), methods=["GET"]),
        Route(one, partial(retrieve_subscription, kind=kind), methods=["GET"]),
        Route(one, partial(update_subscription, kind=kind), methods=["PATCH"]),
        Route(one, partial(delete_subscription, kind=kind), methods=["DELETE"]),
    ]


ROUTES = _routes(ENTITY) + _routes(CSOURCE)
