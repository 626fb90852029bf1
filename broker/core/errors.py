"""The one exception hierarchy of the broker (clause 5.5.2 and Table 6.3.2-1 of ETSI GS CIM 009 V1.9.1).

    NgsiLdError                      problem type                       HTTP
    ├── InvalidRequest               .../errors/InvalidRequest          400
    ├── BadRequestData               .../errors/BadRequestData          400
    │   └── OutboundRefused          (a URL the outbound guard refuses, broker.guards, record 0205)
    ├── AlreadyExists                .../errors/AlreadyExists           409
    ├── Conflict                     .../errors/Conflict                409
    ├── OperationNotSupported        .../errors/OperationNotSupported   422
    ├── ResourceNotFound             .../errors/ResourceNotFound        404
    ├── NonexistentTenant            .../errors/NonexistentTenant       404
    ├── NoMultiTenantSupport         .../errors/NoMultiTenantSupport    501
    ├── TooComplexQuery              .../errors/TooComplexQuery         403
    ├── TooManyResults               .../errors/TooManyResults          403
    ├── LdContextNotAvailable        .../errors/LdContextNotAvailable   504
    ├── InternalError                .../errors/InternalError           500
    └── HttpError                    (bare HTTP statuses of clause 6.3: 405, 406, 411, 413, 415)
        ├── StoreUnavailable         (503 with Retry-After: the store cannot be reached, record 0047)
        ├── Unauthenticated          (401 with WWW-Authenticate, IETF RFC 6750: no or a bad credential, record 0201)
        ├── Forbidden                (403: an authenticated caller without access, records 0201 and authz's)
        ├── FileUnavailable          (503: a file or directory the settings name cannot be read, record 0404)
        └── TooManyRequests          (429 with Retry-After: the client's request rate limit, record 0207)

Each class carries its problem type and status; `detail` is what the client sees, `log_detail` (optional) is what
the log sees. problem+json is rendered from these in exactly one place: `broker.http.errors`.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERRORS_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """Base of every error the broker reports to a client."""

    problem: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, log_detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.log_detail = log_detail or detail
        self.extra = extra
        #: NGSILD-Warning values (clause 6.3.17) of the context sources a distributed read asked, kept on an error
        #: answer too (a read that finds nothing anywhere still says which source failed).
        self.warnings: tuple[str, ...] = ()

    @property
    def type_uri(self) -> str:
        return ERRORS_BASE + self.problem

    def to_problem(self) -> dict[str, Any]:
        """The ProblemDetails body (IETF RFC 9457) of this error."""
        body: dict[str, Any] = {"type": self.type_uri, "title": self.title, "status": self.status}
        body["detail"] = self.detail
        body.update(self.extra)
        return body


class InvalidRequest(NgsiLdError):
    problem, status, title = "InvalidRequest", 400, "Invalid request"


class BadRequestData(NgsiLdError):
    problem, status, title = "BadRequestData", 400, "Bad request data"


class OutboundRefused(BadRequestData):
    """A URL the broker was asked to connect to (a remote @context, a notification endpoint, a context source)
    that the outbound policy refuses; the detail names the policy and the address."""


class AlreadyExists(NgsiLdError):
    problem, status, title = "AlreadyExists", 409, "Already exists"


class Conflict(NgsiLdError):
    problem, status, title = "Conflict", 409, "Conflict"


class OperationNotSupported(NgsiLdError):
    problem, status, title = "OperationNotSupported", 422, "Operation not supported"


class ResourceNotFound(NgsiLdError):
    problem, status, title = "ResourceNotFound", 404, "Resource not found"


class NonexistentTenant(NgsiLdError):
    problem, status, title = "NonexistentTenant", 404, "Nonexistent tenant"


class NoMultiTenantSupport(NgsiLdError):
    problem, status, title = "NoMultiTenantSupport", 501, "No multi-tenant support"


class TooComplexQuery(NgsiLdError):
    problem, status, title = "TooComplexQuery", 403, "Too complex query"


class TooManyResults(NgsiLdError):
    problem, status, title = "TooManyResults", 403, "Too many results"


class LdContextNotAvailable(NgsiLdError):
    problem, status, title = "LdContextNotAvailable", 504, "@context not available"


class InternalError(NgsiLdError):
    problem, status, title = "InternalError", 500, "Internal error"


class HttpError(NgsiLdError):
    """A bare HTTP status of clause 6.3 (405, 406, 411, 413, 415) with no NGSI-LD problem type of its own.

    It is still rendered as problem+json, with an about:blank-style type under the errors base so that every
    error body of the broker has one shape.
    """

    def __init__(self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.http_status = status
        self.http_title = title
        self.headers = headers or {}

    def to_problem(self) -> dict[str, Any]:
        return {"type": "about:blank", "title": self.http_title, "status": self.http_status, "detail": self.detail}


#: Seconds a client is asked to wait after a 503 (Retry-After): about what a Redis restart with a small AOF takes,
#: and the Redis lease of the notifier (LEASE_MS).
RETRY_AFTER_SECONDS = 5


class StoreUnavailable(HttpError):
    """The broker's store cannot serve the request now: its server is unreachable, timed out, still loading its
    data, or (SQLite) its file stayed locked past the busy timeout. A standard HTTP error of the binding (clause
    6.3.2): 503 Service Unavailable with Retry-After, not InternalError, which Table 6.3.2-1 ties to 500, a bug.
    `store` names the backend for the client (never its URL, which may hold a password)."""

    def __init__(self, store: str, *, log_detail: str | None = None, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        detail = f"the broker's {store} store is unavailable; retry the request in {retry_after} s"
        super().__init__(503, "Service Unavailable", detail, headers={"Retry-After": str(retry_after)})
        self.log_detail = log_detail or detail


class FileUnavailable(HttpError):
    """A file or directory the broker's settings tell it to read (the import runs' metrics, the conformance reports,
    record 0404) is missing, unreadable or holds something else: the host's state, for its operator to fix. 503
    Service Unavailable: neither the client's error (4xx) nor a bug (InternalError, 500). No Retry-After: the
    broker cannot know when the operator fixes it."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "Service Unavailable", detail)


#: The realm of every WWW-Authenticate challenge (IETF RFC 6750 clause 3).
REALM = "agora"


class Unauthenticated(HttpError):
    """401: the request carries no credential where one is needed, or one that is not valid. `error` is the RFC 6750
    clause 3.1 code: invalid_token (401), invalid_request (a malformed request: 400, as clause 3.1 says), or None
    when no credential was given at all (no code, clause 3.1)."""

    def __init__(self, detail: str, *, error: str | None = "invalid_token", log_detail: str | None = None) -> None:
        challenge = f'Bearer realm="{REALM}"'
        if error is not None:
            challenge += f', error="{error}", error_description="{_quoted(detail)}"'
        status, title = (400, "Bad Request") if error == "invalid_request" else (401, "Unauthorized")
        super().__init__(status, title, detail, headers={"WWW-Authenticate": challenge})
        self.error = error
        self.log_detail = log_detail or detail


class Forbidden(HttpError):
    """403: the caller is known but may not do this (an API key used outside its tenants; the access policies)."""

    def __init__(self, detail: str, *, log_detail: str | None = None) -> None:
        super().__init__(403, "Forbidden", detail)
        self.log_detail = log_detail or detail


class TooManyRequests(HttpError):
    """429 with Retry-After (IETF RFC 6585): the client spent its request budget (broker.http.ratelimit)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(429, "Too Many Requests", detail, headers={"Retry-After": str(retry_after)})


def _quoted(text: str) -> str:
    """RFC 6750 clause 3: error_description is %x20-21 / %x23-5B / %x5D-7E, no quote or backslash."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)
