"""Responses: JSON with the @context in a Link header, or JSON-LD with it in the body (clause 6.3.6)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from broker.core.query import Paging
from broker.http.negotiation import CONTEXT_REL, LD_JSON, header
from broker.ld.termmap import TermMap


def link_header(url: str) -> str:
    return f'<{url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'


def json_response(
    request: Request,
    body: Any,
    status: int = 200,
    *,
    media: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    out = dict(headers or {})
    if tenant := header(request, "ngsild-tenant"):
        out["NGSILD-Tenant"] = tenant
    return Response(orjson.dumps(body), status_code=status, media_type=media, headers=out)


def ld_response(
    request: Request, body: Any, tm: TermMap, media: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A body that was compacted with `tm`, carrying that @context the way `media` asks."""
    out = dict(headers or {})
    context = tm.link_url or tm.context_value
    if media == LD_JSON:
        if isinstance(body, list):
            body = [{"@context": context, **item} for item in body]
        else:
            body = {"@context": context, **body}
    elif tm.link_url:
        out["Link"] = link_header(tm.link_url)
    return json_response(request, body, status, media=media, headers=out)


def no_content(request: Request, headers: dict[str, str] | None = None, status: int = 204) -> Response:
    out = dict(headers or {})
    if tenant := header(request, "ngsild-tenant"):
        out["NGSILD-Tenant"] = tenant
    return Response(status_code=status, headers=out)


def geo_response(
    request: Request, body: dict[str, Any], tm: TermMap, headers: dict[str, str] | None = None
) -> Response:
    """application/geo+json: the @context in the body, or in a Link header with `Prefer: body=json` (6.3.15)."""
    out = dict(headers or {})
    context = tm.link_url or tm.context_value
    if "body=json" in (header(request, "prefer") or "") and tm.link_url:
        out["Link"] = link_header(tm.link_url)
        out["Preference-Applied"] = "body=json"
    else:
        body = {**body, "@context": context}
    return json_response(request, body, media="application/geo+json", headers=out)


def page_links(request: Request, paging: Paging, more: bool, media: str) -> list[str]:
    """Link rel="next" (when `more` follows the page) and rel="prev" headers of a page (clause 6.3.10)."""
    if paging.limit == 0:
        return []
    wanted = [(paging.offset + paging.limit, "next")] if more else []
    if paging.offset > 0:
        wanted.append((max(0, paging.offset - paging.limit), "prev"))
    links = []
    for offset, rel in wanted:
        url = request.url.include_query_params(offset=offset, limit=paging.limit)
        links.append(f'<{url.path}?{url.query}>; rel="{rel}"; type="{media}"')
    return links


def paged_links(request: Request, paging: Paging, more: bool, next_offset: int | None, media: str) -> list[str]:
    """rel=next/prev of a page, also of one read through an entity map: its next page starts after the last
    position read (`next_offset`), which page_links writes when asked for the page of that many entities before."""
    if next_offset is None:
        return page_links(request, paging, more, media)
    after = page_links(request, Paging(paging.limit, next_offset - paging.limit), True, media)[:1]
    return after + page_links(request, paging, False, media)
