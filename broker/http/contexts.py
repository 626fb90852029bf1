"""Routes of /jsonldContexts (clauses 6.29, 6.30)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.http import params as P
from broker.http.caller import caller_of
from broker.http.negotiation import read_json
from broker.http.render import json_response, no_content
from broker.http.state import state_of

BASE = "/ngsi-ld/v1/jsonldContexts"


async def add_context(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    await state.access.require(caller_of(request), "contexts", "manage @contexts")
    document = await read_json(request, state.settings.max_body_bytes)
    record = await state.contexts.add_hosted(document, str(request.base_url))
    return no_content(request, {"Location": f"{BASE}/{record.id}"}, status=201)


async def list_contexts(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"details", "kind"}))
    records = await state.contexts.list(P.query(request).get("kind"))
    if P.flag(request, "details"):
        return json_response(request, [state.contexts.details(r) for r in records])
    return json_response(request, [r.url for r in records])


async def serve_context(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"details"}))
    key = request.path_params["context_id"]
    if P.flag(request, "details"):
        return json_response(request, state.contexts.details(await state.contexts.get(key)))
    # The content is a JSON-LD document (a root @context): served as application/ld+json (record 0137).
    return json_response(request, await state.contexts.serve(key), media="application/ld+json")


async def delete_context(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"reload"}))
    await state.access.require(caller_of(request), "contexts", "manage @contexts")
    await state.contexts.delete(request.path_params["context_id"], P.flag(request, "reload"))
    return no_content(request)


ROUTES = [
    Route(BASE, add_context, methods=["POST"]),
    Route(BASE, list_contexts, methods=["GET"]),
    Route(f"{BASE}/{{context_id:rest}}", serve_context, methods=["GET"]),
    Route(f"{BASE}/{{context_id:rest}}", delete_context, methods=["DELETE"]),
]
