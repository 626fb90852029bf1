"""A plain NGSI-LD context source that is not Agora: an energy retailer's grid nodes behind a small Starlette app.

It implements only what a registered context source must (clause 4.3.6.1: Retrieve Entity 5.7.1 and Query
Entities 5.7.2 in the normalized representation) and nothing of Agora: its entities sit in a dict, compacted with
one @context (served at /context.jsonld), and a query is evaluated here by hand: type, id, idPattern, attrs, a
geo-query (near;maxDistance, within, intersects, disjoint on GeoJSON geometries with shapely), limit, offset and
count. Anything else it does not know is answered 400 BadRequestData, as a strict source would. Every request is
recorded (path, query, headers) so that a test can see what the federating broker sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import free_port, uvicorn_thread

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
#: Query parameters this source understands (local and the paging/format ones are harmless to it).
KNOWN_PARAMS = frozenset(
    {"type", "id", "idPattern", "attrs", "geometry", "georel", "coordinates", "geoproperty", "limit", "offset",
     "count", "local", "options", "format"}
)  # fmt: skip
EARTH_RADIUS_M = 6_371_008.8


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class GridSource:
    """The source's data and what it was asked; `app()` serves them."""

    context: dict[str, Any]
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def add(self, *entities: dict[str, Any]) -> None:
        for entity in entities:
            self.entities[entity["id"]] = entity

    @property
    def context_url(self) -> str:
        return f"{self.url}/context.jsonld"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/context.jsonld", self._context),
                Route("/ngsi-ld/v1/entities", self._query),
                Route("/ngsi-ld/v1/entities/{entity_id:path}", self._retrieve),
            ]
        )

    async def _context(self, request: Request) -> Response:
        return Response(json.dumps({"@context": self.context}), media_type="application/ld+json")

    def _record(self, request: Request) -> None:
        self.seen.append(Seen(request.method, request.url.path, dict(request.query_params), dict(request.headers)))

    def _answer(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        link = {"Link": f"<{self.context_url}>; {LINK_REL}"}
        return JSONResponse(body, status_code=status, headers={**link, **(headers or {})})

    async def _retrieve(self, request: Request) -> Response:
        self._record(request)
        entity = self.entities.get(request.path_params["entity_id"])
        types = _split(request.query_params.get("type"))
        if entity is None or (types and not set(types) & set(_types(entity))):
            return _problem(404, "ResourceNotFound", "no such entity here")
        return self._answer(_project(entity, _split(request.query_params.get("attrs"))))

    async def _query(self, request: Request) -> Response:
        self._record(request)
        params = request.query_params
        unknown = sorted(set(params) - KNOWN_PARAMS)
        if unknown:
            return _problem(400, "BadRequestData", f"this source does not implement {', '.join(unknown)}")
        try:
            found = [e for e in self.entities.values() if _selected(e, params)]
            limit, offset = int(params.get("limit", "20")), int(params.get("offset", "0"))
        except (ValueError, KeyError, TypeError) as exc:
            return _problem(400, "BadRequestData", f"bad query: {exc}")
        found.sort(key=lambda e: str(e["id"]))
        page = [_project(e, _split(params.get("attrs"))) for e in found[offset : offset + limit]]
        count = {"NGSILD-Results-Count": str(len(found))} if params.get("count") == "true" else {}
        return self._answer(page, headers=count)


def _problem(status: int, kind: str, detail: str) -> Response:
    return JSONResponse({"type": ERRORS + kind, "title": kind, "detail": detail}, status_code=status)


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").replace("|", ",").split(",") if v]


def _types(entity: dict[str, Any]) -> list[str]:
    value = entity["type"]
    return [value] if isinstance(value, str) else list(value)


def _project(entity: dict[str, Any], attrs: list[str]) -> dict[str, Any]:
    if not attrs:
        return entity
    return {k: v for k, v in entity.items() if k in ("id", "type") or k in attrs}


def _selected(entity: dict[str, Any], params: Any) -> bool:
    types, ids, pattern = _split(params.get("type")), _split(params.get("id")), params.get("idPattern")
    if types and not set(types) & set(_types(entity)):
        return False
    if ids and entity["id"] not in ids:
        return False
    if pattern and not re.search(pattern, entity["id"]):
        return False
    attrs = _split(params.get("attrs"))
    if attrs and not any(a in entity for a in attrs):
        return False
    if params.get("georel"):
        return _geo_match(entity, params)
    return True


def _geo_match(entity: dict[str, Any], params: Any) -> bool:
    prop = entity.get(params.get("geoproperty") or "location")
    if not isinstance(prop, dict) or "value" not in prop:
        return False
    here = shape(prop["value"])
    there = shape({"type": params["geometry"], "coordinates": json.loads(params["coordinates"])})
    relation, _, modifier = params["georel"].partition(";")
    if relation == "near":
        kind, _, metres = modifier.partition("==")
        distance = _metres(here, there)
        return distance <= float(metres) if kind == "maxDistance" else distance >= float(metres)
    predicates = {"within": here.within, "intersects": here.intersects, "disjoint": here.disjoint,
                  "contains": here.contains, "overlaps": here.overlaps, "equals": here.equals}  # fmt: skip
    return bool(predicates[relation](there))


def _metres(a: BaseGeometry, b: BaseGeometry) -> float:
    """Great-circle distance between the nearest points' centroids (the grid nodes are Points)."""
    pa, pb = a.centroid, b.centroid
    lat1, lat2 = math.radians(pa.y), math.radians(pb.y)
    dlat, dlon = lat2 - lat1, math.radians(pb.x - pa.x)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


@contextmanager
def serving(source: GridSource) -> Iterator[GridSource]:
    """Serve `source` under uvicorn in a thread on a free loopback port."""
    port = free_port()
    source.url = f"http://127.0.0.1:{port}"
    with uvicorn_thread(source.app(), port):
        yield source
