"""The administration API of the access policies and the audit log (issue 18, records 0220, 0224), and the ASGI
middleware that writes one audit record per request.

    GET    /ngsi-ld/v1/agora/policies            every rule
    POST   /ngsi-ld/v1/agora/policies            add or replace a rule (or a list of rules): 201, or 204 replaced
    GET    /ngsi-ld/v1/agora/policies/{ruleId}   one rule
    DELETE /ngsi-ld/v1/agora/policies/{ruleId}   remove one
    GET    /ngsi-ld/v1/agora/audit               the audit log, newest first (filters, limit, offset)

Types and attributes of a rule are terms of the request's @context (Link header), as everywhere in NGSI-LD.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.auth.identity import Identity
from broker.core.access import Rule
from broker.core.caller import Caller
from broker.core.model import now_iso
from broker.core.policies import audit_time
from broker.http import params as P
from broker.http.authn import IDENTITY_KEY
from broker.http.caller import caller_of
from broker.http.entities import request_context
from broker.http.negotiation import read_json
from broker.http.paths import quote_segment
from broker.http.render import json_response, no_content
from broker.http.state import BrokerState, state_of
from broker.ld.termmap import TermMap
from broker.store.base import AuditQuery, AuditRecord

BASE: Final = "/ngsi-ld/v1/agora"
_AUDIT_FILTERS: Final = ("since", "until", "subject", "tenant", "operation", "outcome", "entityId")
#: Path parameters that name an entity, as the routes call them.
_ENTITY_PARAMS: Final = ("entity_id",)
#: Path parameters the audit log must not keep: a GDPR data subject (its record outlives the erasure, record 0322).
_HIDDEN_PARAMS: Final = ("subject",)


def _shown(rule: Rule) -> dict[str, Any]:
    return rule.to_doc()


async def list_policies(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    return json_response(request, [_shown(r) for r in await state.policies.rules(caller_of(request))])


async def get_policy(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    rule = await state.policies.get(caller_of(request), request.path_params["rule_id"])
    return json_response(request, _shown(rule))


async def admin_document(
    request: Request, may: Callable[[Caller], Awaitable[object]]
) -> tuple[BrokerState, Caller, Any, TermMap]:
    """What an administration POST needs: the state, the caller, the JSON body without its @context and the term
    map that expands its terms (the body's @context, else the Link header's). `may(caller)` runs first, so that a
    caller who is no administrator is refused before the body is read."""
    state = state_of(request)
    P.check_params(request, frozenset())
    caller = caller_of(request)
    await may(caller)
    body = await read_json(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.get("@context") if isinstance(body, dict) else None)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    return state, caller, body, tm


async def put_policies(request: Request) -> Response:
    state, caller, body, tm = await admin_document(request, state_of(request).policies.rules)
    stored = await state.policies.put(caller, body, tm.expand_term)
    if not any(new for _, new in stored):
        return no_content(request)
    location = f"{BASE}/policies/{quote_segment(stored[0][0].id)}"
    return no_content(request, {"Location": location}, status=201)


async def delete_policy(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    await state.policies.delete(caller_of(request), request.path_params["rule_id"])
    return no_content(request)


async def read_audit(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({*_AUDIT_FILTERS, "limit", "offset"}))
    params = P.query(request)
    query = AuditQuery(
        since=audit_time(params.get("since"), "since"),
        until=audit_time(params.get("until"), "until"),
        subject=params.get("subject"),
        tenant=params.get("tenant"),
        operation=params.get("operation"),
        outcome=params.get("outcome"),
        entity_id=params.get("entityId"),
        limit=P.integer(request, "limit", 100, 1, state.settings.max_page_size),
        offset=P.integer(request, "offset", 0, 0, 2**31),
    )
    records = await state.policies.audit(caller_of(request), query)
    return json_response(request, [r.to_doc() for r in records])


ROUTES = [
    Route(f"{BASE}/policies", list_policies, methods=["GET"]),
    Route(f"{BASE}/policies", put_policies, methods=["POST"]),
    Route(f"{BASE}/policies/{{rule_id}}", get_policy, methods=["GET"]),
    Route(f"{BASE}/policies/{{rule_id}}", delete_policy, methods=["DELETE"]),
    Route(f"{BASE}/audit", read_audit, methods=["GET"]),
]


# -- one audit record per request ----------------------------------------------------------------------------------
class Audit:
    """Records who did what and how it ended, after the answer's status is known; never a body (so never an
    attribute value). Outside the authentication middleware, so refused credentials (401) are recorded too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: BrokerState | None = getattr(scope["app"].state, "broker", None) if scope["type"] == "http" else None
        if state is None or not state.audit.enabled:
            await self.app(scope, receive, send)
            return
        status = 500

        async def seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, seen)
        finally:
            state.audit.record(_record(scope, status))


def _record(scope: Scope, status: int) -> AuditRecord:
    identity = scope.get(IDENTITY_KEY)
    who = identity if isinstance(identity, Identity) else None
    params = scope.get("path_params", {})
    ids = tuple(str(params[k]) for k in _ENTITY_PARAMS if k in params)
    return AuditRecord(
        at=now_iso(),
        subject=who.subject if who is not None else "(unauthenticated)",
        operation=f"{scope['method']} {_shown_path(scope['path'], params)}",  # never the query string (q values)
        tenant=_tenant(scope),
        status=status,
        outcome="refused" if status in (401, 403) else "allowed",
        entity_ids=ids,
        client=who.client if who is not None else None,
        issuer=who.issuer if who is not None else None,
    )


def _shown_path(path: str, params: dict[str, object]) -> str:
    for name in _HIDDEN_PARAMS:
        if name in params:
            path = path.replace(str(params[name]), "{" + name + "}")
    return path


def _tenant(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name.lower() == b"ngsild-tenant":
            return str(value.decode("latin-1"))
    return ""
