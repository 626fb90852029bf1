"""The operations records the console's Operations view shows (issue 21, records 0404 and 0405), admin only:

GET /ngsi-ld/v1/agora/imports              the import runs of the metrics files of import_metrics_dir
GET /ngsi-ld/v1/agora/conformance/latest   the kit's newest JSON report in conformance_reports_dir
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.http import params as P
from broker.http.admin import BASE
from broker.http.caller import caller_of
from broker.http.render import json_response
from broker.http.state import state_of


async def list_imports(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    return json_response(request, await state.operations.import_runs(caller_of(request)))


async def latest_conformance_report(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    return json_response(request, await state.operations.latest_report(caller_of(request)))


ROUTES = [
    Route(f"{BASE}/imports", list_imports, methods=["GET"]),
    Route(f"{BASE}/conformance/latest", latest_conformance_report, methods=["GET"]),
]
