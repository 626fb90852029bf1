"""ASGI middleware of authentication (issue 18, decision record 0201): each request's credentials become an
Identity in the scope (`IDENTITY_KEY`) before any route runs; broker.http.caller builds the Caller from it.

A few resources answer without credentials, because those who fetch them are not the broker's users: the OpenAPI
document and the @context documents the broker hosts (clients and other brokers dereference the URLs the broker
sends in Link headers), the liveness and readiness probes, the open data of /catalog (record 0343), and the files
of the web console (record 0400: a page and its scripts, no data; what it shows it asks the API for with the
user's credentials)."""

from __future__ import annotations

import re
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from broker.auth.authenticator import API_KEY_HEADER, check_tenant
from broker.core.errors import NgsiLdError, Unauthenticated
from broker.http.errors import problem_response
from broker.http.state import BrokerState

IDENTITY_KEY: Final = "agora.identity"
# /health and /ready: orchestrators' probes carry no credentials (record 0240); /catalog and its distributions are
# the open data everyone may read (record 0343); /console the console's page and files (record 0400).
_PUBLIC: Final = re.compile(
    r"^(/ngsi-ld/v1)?/openapi\.json$|^/ngsi-ld/v1/jsonldContexts/[^/]+|^/health$|^/ready$|^/catalog(/|$)"
    r"|^/console(/|$)"
)


class Authentication:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: BrokerState = scope["app"].state.broker
        try:
            headers = _credential_headers(scope)
            if not headers and scope["method"] == "GET" and _PUBLIC.match(scope["path"]):
                identity = state.authenticator.anonymous()
            else:
                identity = await state.authenticator.identify(headers)
                check_tenant(identity, _tenant(scope))
        except NgsiLdError as exc:
            await problem_response(exc, Request(scope))(scope, receive, send)
            return
        scope[IDENTITY_KEY] = identity
        await self.app(scope, receive, send)


_CREDENTIALS: Final = frozenset({b"authorization", API_KEY_HEADER.encode()})


def _credential_headers(scope: Scope) -> dict[str, str]:
    """The credential headers of a request, each at most once (a repeated one is a malformed request)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered in _CREDENTIALS:
            key = lowered.decode("latin-1")
            if key in found:
                raise Unauthenticated(f"the {key} header is given twice", error="invalid_request")
            found[key] = value.decode("latin-1")
    return found


def _tenant(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name.lower() == b"ngsild-tenant":
            return str(value.decode("latin-1"))
    return ""
