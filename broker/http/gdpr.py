"""The administration API of the GDPR duties (issue 19, records 0321-0323); each needs the `admin` action.

GET    /ngsi-ld/v1/agora/gdpr/subjects/{subject}   everything held about a subject (art. 15, 20): JSON-LD,
                                                   or with Accept: application/zip the CSV bundle
DELETE /ngsi-ld/v1/agora/gdpr/subjects/{subject}   erase it everywhere (art. 17): 200 with the counts
GET    /ngsi-ld/v1/agora/gdpr/records              records of processing (art. 30): JSON, or text/markdown
"""

from __future__ import annotations

import contextlib
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.policies import FLUSH_SECONDS
from broker.gdpr import export as gexport
from broker.gdpr import records as grecords
from broker.gdpr.erase import Notices, erase
from broker.gdpr.retention import parse_rules
from broker.http import params as P
from broker.http.caller import caller_of
from broker.http.negotiation import JSON, LD_JSON, negotiate
from broker.http.render import json_response
from broker.http.state import BrokerState, state_of

BASE: Final = "/ngsi-ld/v1/agora/gdpr"
ZIP: Final = "application/zip"
MARKDOWN: Final = "text/markdown"


async def _admin(request: Request, what: str) -> BrokerState:
    state = state_of(request)
    P.check_params(request, frozenset())
    await state.access.require(caller_of(request), "admin", what)
    return state


async def export_subject(request: Request) -> Response:
    state = await _admin(request, "read what is held about a data subject")
    media = negotiate(request, (LD_JSON, JSON, ZIP))
    found = await gexport.collect(state.store, request.path_params["subject"])
    if media == ZIP:
        disposition = {"Content-Disposition": 'attachment; filename="subject-access.zip"'}
        return Response(gexport.csv_bundle(found), media_type=ZIP, headers=disposition)
    return json_response(request, gexport.jsonld(found), media=media)


async def erase_subject(request: Request) -> Response:
    state = await _admin(request, "erase a data subject's data")
    subject, by = request.path_params["subject"], caller_of(request).subject
    notices = Notices(state.store, state.resolver, state.outbound)
    settle = 0.0
    if state.audit.enabled:
        await state.audit.flush()  # this process's buffered records first; the other processes' within settle
        settle = 2 * FLUSH_SECONDS
    held = state.notifier.holding() if state.notifier is not None else contextlib.nullcontext()
    try:
        async with held:  # this process's notifier reads none of the deletions before they leave the feed
            report = await erase(state.store, subject, by, notices, audit_settle=settle)
    finally:
        await notices.aclose()
    if state.notifier is not None:  # what this process's notifier read from the feed before the erasure
        for tenant, ids in report.erased.items():
            state.notifier.forget(tenant, ids)
    if report.entities:
        state.opendata.wake()  # the distribution files without the erased entities, now rather than in an hour
    return json_response(request, report.to_doc())


async def processing_records(request: Request) -> Response:
    state = await _admin(request, "read the records of processing")
    media = negotiate(request, (JSON, MARKDOWN))
    settings = state.settings
    doc = await grecords.records(state.store, parse_rules(settings.gdpr_retention), settings.gdpr_controller)
    if media == MARKDOWN:
        return Response(grecords.markdown(doc), media_type=MARKDOWN)
    return json_response(request, doc)


ROUTES = [
    Route(f"{BASE}/subjects/{{subject}}", export_subject, methods=["GET"]),
    Route(f"{BASE}/subjects/{{subject}}", erase_subject, methods=["DELETE"]),
    Route(f"{BASE}/records", processing_records, methods=["GET"]),
]
