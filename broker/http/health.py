"""GET /health (liveness), GET /ready (readiness) and GET /metrics (Prometheus, record 0243), outside /ngsi-ld/v1
where probes and scrapers expect them (record 0240).

/health answers 200 while the process serves HTTP at all: it reads nothing, so a slow store never makes an
orchestrator kill a broker that would recover on its own. /ready answers 200 only when the store answers and holds
the schema version this code expects (its migrations applied), else 503: a load balancer then sends the traffic
elsewhere. Both are one small JSON object, cheap enough to be probed every second.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.http import params as P
from broker.http.state import state_of
from broker.observe.metrics import exposition

#: Seconds /ready waits for the store before it says the store is unreachable.
READY_TIMEOUT = 2.0

_OK = orjson.dumps({"status": "ok"})


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json", headers={"Cache-Control": "no-store"})


async def health(request: Request) -> Response:
    P.check_params(request, frozenset())
    return Response(_OK, media_type="application/json", headers={"Cache-Control": "no-store"})


async def ready(request: Request) -> Response:
    P.check_params(request, frozenset())
    store = state_of(request).store
    backend = type(store).__name__
    try:
        version = await asyncio.wait_for(store.stored_schema_version(), READY_TIMEOUT)
    except Exception as exc:  # unreachable, timed out, or anything else the store raised: not ready
        detail = str(exc) or type(exc).__name__
        return _json({"status": "unavailable", "store": backend, "detail": f"the store does not answer: {detail}"}, 503)
    if version != store.SCHEMA_VERSION:
        detail = f"the store holds schema version {version}, this Agora uses {store.SCHEMA_VERSION}"
        detail += ": run `agora migrate`" if version < store.SCHEMA_VERSION else ": it was written by a newer Agora"
        return _json({"status": "unavailable", "store": backend, "schemaVersion": version, "detail": detail}, 503)
    return _json({"status": "ready", "store": backend, "schemaVersion": version})


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of this process, or of every worker of the run (record 0243)."""
    P.check_params(request, frozenset())
    body, media = exposition()
    return Response(body, headers={"Content-Type": media, "Cache-Control": "no-store"})


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
