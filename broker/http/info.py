"""GET /info/sourceIdentity (clause 6.33): who this context source is and since when it runs."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.model import now_iso
from broker.http import params as P
from broker.http.negotiation import negotiate
from broker.http.render import json_response
from broker.http.state import state_of


def _duration(seconds: float) -> str:
    """An ISO 8601 duration such as P0DT1H2M3.5S (clause 5.2.40 contextSourceUptime)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{int(days)}DT{int(hours)}H{int(minutes)}M{secs:.3f}S"


async def source_identity(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset())
    media = negotiate(request)
    body = {
        "id": state.settings.source_id,
        "type": "ContextSourceIdentity",
        "contextSourceAlias": state.settings.source_alias,
        "contextSourceExtras": {"software": "Agora", "store": state.store.__class__.__name__},
        "contextSourceUptime": _duration(time.time() - state.started),
        "contextSourceTimeAt": now_iso(),
    }
    if media == "application/ld+json":
        from broker.ld.core import CORE_CONTEXT_URL

        body = {"@context": CORE_CONTEXT_URL, **body}
    return json_response(request, body, media=media)


ROUTES = [Route("/ngsi-ld/v1/info/sourceIdentity", source_identity, methods=["GET"])]
