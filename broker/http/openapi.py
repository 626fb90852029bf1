"""GET /ngsi-ld/v1/openapi.json (and /openapi.json): the OpenAPI 3 description of the API this broker implements.

The document is broker/http/openapi/ngsi-ld-agora.json, derived from the official ETSI ISG CIM NGSI-LD OpenAPI
document (BSD-3-Clause; see broker/http/openapi/README.md). It is read once, on the first request, and served
as the same bytes ever after.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.http import params as P

DOCUMENT = "ngsi-ld-agora.json"
MEDIA_TYPE = "application/vnd.oai.openapi+json"


@cache
def document_bytes() -> bytes:
    """The document, parsed once (so a broken file fails loudly) and re-serialised compactly."""
    raw = resources.files("broker.http").joinpath("openapi", DOCUMENT).read_bytes()
    return orjson.dumps(orjson.loads(raw))


async def openapi_document(request: Request) -> Response:
    P.check_params(request, frozenset())
    return Response(document_bytes(), media_type=MEDIA_TYPE)


ROUTES = [
    Route("/ngsi-ld/v1/openapi.json", openapi_document, methods=["GET"]),
    Route("/openapi.json", openapi_document, methods=["GET"]),
]
