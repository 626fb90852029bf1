"""Content negotiation and @context selection of clause 6.3 (6.3.4 to 6.3.6), kept apart from the routes."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from broker.core.errors import BadRequestData, HttpError, InvalidRequest

JSON = "application/json"
LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_CONTEXT_REL = re.compile(r'rel\s*=\s*"?' + re.escape(CONTEXT_REL) + '"?')
_TENANT = re.compile(r"^[A-Za-z0-9_\-.:]{1,128}$")


@dataclass(frozen=True)
class Body:
    """A parsed request body and the @context it asks for (None = the core context)."""

    data: Any
    context: Any


def header(request: Request, name: str, default: str | None = None) -> str | None:
    """The first value of a request header (`name` in lower case), from a dict made once per request: Starlette's
    Headers.get scans the header list and raises and catches a KeyError for an absent one, several per request."""
    scope = request.scope
    found: dict[str, str] | None = scope.get("agora.headers")
    if found is None:
        found = {}
        for key, value in scope["headers"]:
            found.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        scope["agora.headers"] = found
    return found.get(name, default)


def media_type(request: Request) -> str:
    return (header(request, "content-type") or "").split(";")[0].strip().lower()


def link_context(request: Request) -> str | None:
    """The URL of the JSON-LD context Link header, if any (clause 6.3.5)."""
    if header(request, "link") is None:
        return None
    return _context_link(tuple(request.headers.getlist("link")))


@functools.lru_cache(maxsize=256)
def _context_link(headers: tuple[str, ...]) -> str | None:
    """Parsed once per distinct Link header: clients send the same one with every request."""
    found = []
    for value in headers:
        for match in _LINK.finditer(value):
            params = match.group(2)
            if _CONTEXT_REL.search(params):
                found.append(match.group(1).strip())
    if len(found) > 1:
        raise BadRequestData("more than one JSON-LD context Link header")
    if found and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", found[0]):
        raise BadRequestData(f"the JSON-LD context Link {found[0]!r} is not an absolute URL")
    return found[0] if found else None


async def read_json(request: Request, max_bytes: int, *, merge_patch: bool = False) -> Any:
    """Read and parse a JSON request body: Content-Type (415), Content-Length (411), size (413), syntax (400)."""
    kind = media_type(request)
    allowed = {JSON, LD_JSON} | ({MERGE_PATCH} if merge_patch else set())
    if kind not in allowed:
        raise HttpError(415, "Unsupported Media Type", f"Content-Type must be one of {', '.join(sorted(allowed))}")
    length = header(request, "content-length")
    if length is None:  # clause 6.3.4: a body sent chunked too (decision record 0009)
        raise HttpError(411, "Length Required", "a request body needs a Content-Length header")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise HttpError(413, "Content Too Large", f"the body exceeds {max_bytes} bytes")
    raw = await _read_limited(request, max_bytes)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc


async def read_body(request: Request, max_bytes: int, *, merge_patch: bool = False) -> Body:
    """A JSON or JSON-LD NGSI-LD body and its @context, with every rule of clauses 6.3.4 and 6.3.5."""
    data = await read_json(request, max_bytes, merge_patch=merge_patch)
    return Body(data, _body_context(request, media_type(request), data))


@dataclass(frozen=True)
class BatchBody:
    """A batch request body and, for each item of it (when it is an array), the @context that item asks for, or
    why it has none: the items are treated as separate requests (clause 5.5.11.0), so a context rule one item
    breaks fails that item alone (clause 5.2.17 BatchEntityError), not the whole batch (decision record 0111)."""

    data: Any
    contexts: list[Any]  # per item: a context value (None = the core context) or a BadRequestData


async def read_batch_body(request: Request, max_bytes: int, *, terms: bool = True) -> BatchBody:
    """A batch body with the rules of clause 6.3.5 applied to each item. A context Link header under
    application/ld+json is a mix of both ways and refuses the whole request. `terms=False` (batch delete: an
    array of ids has no term to expand) asks no @context of the items."""
    data = await read_json(request, max_bytes)
    kind, link = media_type(request), link_context(request)
    if kind == LD_JSON and link is not None:
        raise BadRequestData("an application/ld+json body carries its @context; a context Link header is not allowed")
    if not terms or not isinstance(data, list):
        return BatchBody(data, [])
    return BatchBody(data, [_item_context(kind, link, item) for item in data])


def _item_context(kind: str, link: str | None, item: Any) -> Any:
    if not isinstance(item, dict):
        return link  # not an entity: the batch operation reports it
    if kind == LD_JSON:
        if "@context" not in item:
            return BadRequestData("an entity of an application/ld+json batch must carry an @context member")
        return item["@context"]
    if "@context" in item:
        return BadRequestData("an entity of an application/json batch must not carry @context; use a Link header")
    return link


async def _read_limited(request: Request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HttpError(413, "Content Too Large", f"the body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _body_context(request: Request, kind: str, data: Any) -> Any:
    link = link_context(request)
    items = data if isinstance(data, list) else [data]
    inline = [item["@context"] for item in items if isinstance(item, dict) and "@context" in item]
    if kind == LD_JSON:
        if link is not None:
            raise BadRequestData(
                "an application/ld+json body carries its @context; a context Link header is not allowed"
            )
        if len(inline) != len(items) or not items:
            raise BadRequestData("an application/ld+json body must carry an @context member")
        if any(ctx != inline[0] for ctx in inline):
            raise BadRequestData("every entity of one batch must carry the same @context")
        return inline[0]
    if inline:
        raise BadRequestData("an application/json body must not carry @context; send it in a Link header")
    return link


def negotiate(request: Request, offered: tuple[str, ...] = (JSON, LD_JSON)) -> str:
    """The response media type from Accept (clause 6.3.6); absent Accept means application/json. 406 if none."""
    return _negotiated((header(request, "accept") or "").strip(), offered)


@functools.lru_cache(maxsize=256)
def _negotiated(accept: str, offered: tuple[str, ...]) -> str:
    """Ranked once per distinct Accept header and offer (a 406 is raised, never cached)."""
    if not accept:
        return offered[0]
    ranked = []
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        quality = 1.0
        for param in fields[1:]:
            name, _, val = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(val)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, i, fields[0].lower()))
    for neg_q, _, mime in sorted(ranked):
        if neg_q == 0:
            continue
        for candidate in offered:
            if mime in (candidate, "*/*", "application/*"):
                return candidate
    raise HttpError(406, "Not Acceptable", f"this resource is available as {', '.join(offered)}")


def tenant_of(request: Request) -> str:
    tenant = header(request, "ngsild-tenant")
    if tenant is None or tenant == "":
        return ""
    if not _TENANT.match(tenant):
        raise BadRequestData(f"NGSILD-Tenant {tenant!r} is not a valid tenant name")
    return tenant
