"""Query-string parsing shared by the routes.

Clause 6.3.2: "If an HTTP request for an operation contains parameters that are incompatible with the operation,
or it contains values of the options parameter that are not supported by the operation, an HTTP error response of
type InvalidRequest should be returned." So an unknown parameter, an empty parameter name and an unsupported
`options` value are InvalidRequest; a known parameter whose value does not meet the operation's requirements
(a malformed q, limit=-1, local=maybe) stays BadRequestData, as the behaviour clauses (5.7.2.4, 5.5.9) say
(decision record 0103)."""

from __future__ import annotations

from starlette.requests import Request

from broker.core.errors import BadRequestData, InvalidRequest
from broker.core.query import Paging


def query(request: Request) -> dict[str, str]:
    """The query parameters as a plain dict, made once per request (a repeated one keeps its last value, as
    QueryParams.get does). Starlette's QueryParams.get is Mapping.get, which raises and catches a KeyError for
    each parameter that is absent: most of the dozen a handler asks for, on most requests."""
    scope = request.scope
    found: dict[str, str] | None = scope.get("agora.query")
    if found is None:
        found = scope["agora.query"] = dict(request.query_params) if scope.get("query_string") else {}
    return found


def check_params(request: Request, allowed: frozenset[str]) -> None:
    if not request.scope.get("query_string"):
        return
    unknown = sorted(set(query(request)) - allowed)
    if unknown:
        names = ", ".join(name or "(an empty name)" for name in unknown)
        raise InvalidRequest(f"unknown query parameter(s) for this operation: {names}")


def options(request: Request, allowed: frozenset[str]) -> list[str]:
    """The comma-separated `options` values, each checked against what this operation accepts."""
    if "options" not in query(request):
        return []
    values = [v.strip() for raw in request.query_params.getlist("options") for v in raw.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidRequest(f"options={','.join(bad)} is not supported here (allowed: {', '.join(sorted(allowed))})")
    return values


def flag(request: Request, name: str) -> bool:
    raw = query(request).get(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def csv(request: Request, name: str) -> list[str] | None:
    raw = query(request).get(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",")]
    if not all(items):
        raise BadRequestData(f"{name}={raw!r} has an empty item")
    return items


def integer(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = query(request).get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise BadRequestData(f"{name} must be an integer from {minimum} to {maximum}, got {raw!r}")
    return int(raw)


def paging(request: Request) -> Paging:
    """`limit` (default 20) and `offset` of a query (clause 6.3.10); the broker's maximum is checked by Queries."""
    return Paging(limit=integer(request, "limit", 20, 0, 10**9), offset=integer(request, "offset", 0, 0, 10**12))
