"""The one place where errors become problem+json responses (clause 6.3.2)."""

from __future__ import annotations

import importlib
import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from broker.core.errors import HttpError, InternalError, NgsiLdError, StoreUnavailable
from broker.http.negotiation import header
from broker.store import known_backends
from broker.store.base import Store

log = logging.getLogger("agora.http")

PROBLEM_JSON = "application/json"  # clause 6.3.2: ProblemDetails are sent as application/json


def problem_response(exc: NgsiLdError, request: Request | None = None) -> Response:
    body = exc.to_problem()
    status = exc.http_status if isinstance(exc, HttpError) else exc.status
    headers = dict(exc.headers) if isinstance(exc, HttpError) else {}
    if request is not None and (tenant := header(request, "ngsild-tenant")):
        headers["NGSILD-Tenant"] = tenant
    if exc.warnings:
        headers["NGSILD-Warning"] = ", ".join(exc.warnings)
    if isinstance(exc, StoreUnavailable):  # an outage, not a bug: no traceback, one line per request
        log.warning(
            "%s %s -> %s: %s", getattr(request, "method", "?"), getattr(request, "url", "?"), status, exc.log_detail
        )
    elif status >= 500:
        log.error(
            "%s %s -> %s: %s", getattr(request, "method", "?"), getattr(request, "url", "?"), status, exc.log_detail
        )
    else:
        log.info(
            "%s %s -> %s: %s", getattr(request, "method", "?"), getattr(request, "url", "?"), status, exc.log_detail
        )
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def handle_ngsi_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NgsiLdError)
    return problem_response(exc, request)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown path, wrong method) in the same problem+json shape."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return problem_response(_not_found(request), request)
    return problem_response(HttpError(exc.status_code, str(exc.detail), str(exc.detail), headers=headers), request)


def _not_found(request: Request) -> NgsiLdError:
    from broker.core.errors import ResourceNotFound

    return ResourceNotFound(f"no resource at {request.url.path}")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback, shown to the client as InternalError without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(InternalError("the broker failed to process the request"), request)


async def handle_store_error(request: Request, exc: Exception) -> Response:
    """An exception of a class by which some store backend may say it is unavailable: 503 Service Unavailable
    with Retry-After when the running store says this one is an outage (Store.is_unavailable, decision record
    0047), else it goes on to `handle_unexpected` as the bug it is."""
    store = _running_store(request)
    if store is None or not store.is_unavailable(exc):
        raise exc
    name = type(store).__name__
    log_detail = f"{name} unavailable: {type(exc).__name__}: {exc}"  # redis-py names host:port, never a password
    return problem_response(StoreUnavailable(name.removesuffix("Store").lower(), log_detail=log_detail), request)


def _running_store(request: Request) -> Store | None:
    store = getattr(getattr(request.app.state, "broker", None), "store", None)
    return store if isinstance(store, Store) else None


def store_unavailable_classes() -> tuple[type[BaseException], ...]:
    """Every class a known store backend lists in `Store.unavailable_errors`. Starlette takes its handlers when the
    app is made, before the store is chosen; a handler registered for a class (not for Exception) answers without
    the exception being raised on to the server, which would log a traceback per request during an outage."""
    found: dict[type[BaseException], None] = {}
    for target in sorted(set(known_backends().values())):
        module_name, _, attr = target.partition(":")
        try:
            backend: object = importlib.import_module(module_name)
            for part in attr.split("."):
                backend = getattr(backend, part)
        except Exception:  # a backend whose client library is not installed cannot be the running one
            continue
        found.update(dict.fromkeys(getattr(backend, "unavailable_errors", ())))
    return tuple(found)


EXCEPTION_HANDLERS = {
    NgsiLdError: handle_ngsi_error,
    HTTPException: handle_http_exception,
    **dict.fromkeys(store_unavailable_classes(), handle_store_error),
    Exception: handle_unexpected,
}
