"""The one place where errors become problem+json responses (clause 6.3.2)."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from broker.core.errors import HttpError, InternalError, NgsiLdError
from broker.http.negotiation import header

log = logging.getLogger("agora.http")

PROBLEM_JSON = "application/json"  # clause 6.3.2: ProblemDetails are sent as application/json


def problem_response(exc: NgsiLdError, request: Request | None = None) -> Response:
    body = exc.to_problem()
    status = exc.http_status if isinstance(exc, HttpError) else exc.status
    headers = dict(exc.headers) if isinstance(exc, HttpError) else {}
    if request is not None and (tenant := header(request, "ngsild-tenant")):
        headers["NGSILD-Tenant"] = tenant
    if status >= 500:
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


EXCEPTION_HANDLERS = {
    NgsiLdError: handle_ngsi_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
