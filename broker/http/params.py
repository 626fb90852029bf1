"""Query-string parsing shared by the routes: unknown parameters are refused (clause 6.3.x, bad input)."""

from __future__ import annotations

from starlette.requests import Request

from broker.core.errors import BadRequestData
from broker.core.query import Paging


def check_params(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise BadRequestData(f"unknown query parameter(s): {', '.join(unknown)}")


def options(request: Request, allowed: frozenset[str]) -> list[str]:
    """The comma-separated `options` values, each checked against what this operation accepts."""
    values = [v.strip() for raw in request.query_params.getlist("options") for v in raw.split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise BadRequestData(f"options={','.join(bad)} is not supported here (allowed: {', '.join(sorted(allowed))})")
    return values


def flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise BadRequestData(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def csv(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",")]
    if not all(items):
        raise BadRequestData(f"{name}={raw!r} has an empty item")
    return items


def integer(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise BadRequestData(f"{name} must be an integer from {minimum} to {maximum}, got {raw!r}")
    return int(raw)


def paging(request: Request) -> Paging:
    """`limit` (default 20) and `offset` of a query (clause 6.3.10); the broker's maximum is checked by Queries."""
    return Paging(limit=integer(request, "limit", 20, 0, 10**9), offset=integer(request, "offset", 0, 0, 10**12))
