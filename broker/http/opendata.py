"""Open data over HTTP (issue 19, records 0340-0343).

    GET    /catalog                                     the DCAT-AP catalogue: Turtle, JSON-LD or RDF/XML (Accept)
    GET    /catalog/context.jsonld                      the project @context the NGSI-LD distributions name
    GET    /catalog/datasets/{id}/data.{format}         a distribution: geojson, csv, jsonld or ttl, streamed
    GET    /ngsi-ld/v1/agora/datasets                   the published datasets with their last survey (admin)
    POST   /ngsi-ld/v1/agora/datasets                   publish or republish one: 201, or 204 republished (admin)
    GET    /ngsi-ld/v1/agora/datasets/{id}              one (admin)
    DELETE /ngsi-ld/v1/agora/datasets/{id}              withdraw one (admin)

/catalog and everything under it answer anonymous GETs in every security mode (broker.http.authn); the
administration routes need the `admin` action. A dataset's `type` is a term of the request's @context (Link
header or the body's @context), as the types of access policy rules are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from adapters.importer import project_context
from broker.http import params as P
from broker.http.admin import BASE, admin_document
from broker.http.caller import caller_of
from broker.http.negotiation import negotiate
from broker.http.paths import quote_segment
from broker.http.render import json_response, no_content
from broker.http.state import state_of
from broker.opendata.catalog import MEDIA_TYPES
from broker.opendata.dumps import FORMATS, Survey
from broker.opendata.spec import DatasetSpec

_OFFERED: Final = tuple(MEDIA_TYPES)


def public_base(request: Request) -> str:
    """The broker's URL as the catalogue names it: AGORA_OPENDATA_BASE_URL, else the URL the request came to."""
    configured = state_of(request).settings.opendata_base_url
    return (configured or str(request.base_url)).rstrip("/")


async def get_catalog(request: Request) -> Response:
    P.check_params(request, frozenset())
    media = negotiate(request, _OFFERED)
    graph = await state_of(request).opendata.catalogue(public_base(request))
    return Response(graph.serialize(format=MEDIA_TYPES[media]), media_type=media)


async def get_context(request: Request) -> Response:
    P.check_params(request, frozenset())
    return json_response(request, project_context(), media="application/ld+json")


async def get_distribution(request: Request) -> Response:
    P.check_params(request, frozenset())
    fmt = request.path_params["format"]
    found = await state_of(request).opendata.distribution(request.path_params["dataset_id"], fmt, public_base(request))
    media = FORMATS[fmt].media_type
    name = f"{request.path_params['dataset_id']}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if isinstance(found, Path):
        return FileResponse(found, media_type=media, headers=headers)
    return StreamingResponse(found, media_type=media, headers=headers)


def _shown(spec: DatasetSpec, found: Survey | None) -> dict[str, Any]:
    doc = spec.to_doc()
    if found is not None:
        doc["state"] = found.to_state()
    return doc


async def list_datasets(request: Request) -> Response:
    P.check_params(request, frozenset())
    found = await state_of(request).opendata.datasets(caller_of(request))
    return json_response(request, [_shown(spec, state) for spec, state in found])


async def get_dataset(request: Request) -> Response:
    P.check_params(request, frozenset())
    spec, state = await state_of(request).opendata.dataset(caller_of(request), request.path_params["dataset_id"])
    return json_response(request, _shown(spec, state))


async def post_dataset(request: Request) -> Response:
    state, caller, body, tm = await admin_document(request, state_of(request).opendata.datasets)
    spec, new = await state.opendata.publish(caller, body, tm.expand_term)
    if not new:
        return no_content(request)
    return no_content(request, {"Location": f"{BASE}/datasets/{quote_segment(spec.id)}"}, status=201)


async def delete_dataset(request: Request) -> Response:
    P.check_params(request, frozenset())
    await state_of(request).opendata.withdraw(caller_of(request), request.path_params["dataset_id"])
    return no_content(request)


ROUTES = [
    Route("/catalog", get_catalog, methods=["GET"]),
    Route("/catalog/context.jsonld", get_context, methods=["GET"]),
    Route("/catalog/datasets/{dataset_id}/data.{format}", get_distribution, methods=["GET"]),
    Route(f"{BASE}/datasets", list_datasets, methods=["GET"]),
    Route(f"{BASE}/datasets", post_dataset, methods=["POST"]),
    Route(f"{BASE}/datasets/{{dataset_id}}", get_dataset, methods=["GET"]),
    Route(f"{BASE}/datasets/{{dataset_id}}", delete_dataset, methods=["DELETE"]),
]
