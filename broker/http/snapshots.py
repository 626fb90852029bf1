"""Routes of /snapshots (clause 6.36: Create, Purge), /snapshots/{snapshotId} (6.37: Retrieve and Update Snapshot
Status, Delete) and /snapshots/{snapshotId}/clone (6.38), and the NGSILD-Snapshot header that runs an entity or
temporal operation on a snapshot's content (5.5.15). The snapshots themselves are broker.core.snapshots."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.core.caller import Caller
from broker.core.errors import BadRequestData, NgsiLdError, OperationNotSupported, ResourceNotFound
from broker.core.snapshots import Capture, check_purge_q, document
from broker.core.temporal import parse_time_query
from broker.http import params as P
from broker.http.caller import SNAPSHOT_TENANT_KEY, caller_in
from broker.http.entities import BASE, request_context
from broker.http.errors import problem_response
from broker.http.negotiation import negotiate, read_body, tenant_of
from broker.http.query_body import query_body_params
from broker.http.render import ld_response, no_content
from broker.http.state import state_of
from broker.ld.termmap import TermMap
from broker.query import parse_query
from broker.query.q import parse_q

SNAPSHOT_HEADER: Final = "NGSILD-Snapshot"
#: Where the resolved content tenant of a request with NGSILD-Snapshot waits for broker.http.entities.caller_of.
SCOPE_KEY: Final = SNAPSHOT_TENANT_KEY
#: The operations NGSILD-Snapshot applies to (5.5.15: the Core API, and the Temporal API when supported): entity
#: and temporal resources, batch operations, type and attribute discovery, entity maps.
_SCOPED: Final = tuple(
    f"{BASE}/{p}" for p in ("entities", "entityOperations", "temporal/", "types", "attributes", "entityMaps")
)


def _caller(request: Request) -> Caller:
    return caller_in(request, tenant_of(request))


async def create_snapshot(request: Request) -> Response:
    """Create Snapshot (6.36.3.1, 5.16.1): 201 with the relative path of the snapshot in Location."""
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes)
    tm = await request_context(request, state, body.context)
    data = body.data
    captures = _captures(data, "snapshotQueries", tm, temporal=False)
    temporal = _captures(data, "snapshotTemporalQueries", tm, temporal=True)
    record = await state.snapshots.create(_caller(request), data, captures, temporal)
    return no_content(request, {"Location": f"{BASE}/snapshots/{record.id}"}, status=201)


async def purge_snapshots(request: Request) -> Response:
    """Purge Snapshots (6.36.3.2, 5.16.7): q over the members of the Snapshot data type is required."""
    state = state_of(request)
    P.check_params(request, frozenset({"q"}))
    raw = P.query(request).get("q")
    if not raw:
        raise BadRequestData("Purge Snapshots needs q, a query over the members of Snapshot (clause 5.16.7)")
    q = parse_q(raw, state.resolver.core_termmap())
    check_purge_q(q)
    purged = await state.snapshots.purge(_caller(request), q)
    if not purged:  # 6.36.3.2: 404 "when a client provided a filter not matching any Snapshots"
        raise ResourceNotFound(f"no Snapshot matches q={raw}")
    return no_content(request)


async def retrieve_snapshot(request: Request) -> Response:
    """Retrieve Snapshot Status (6.37.3.1, 5.16.3)."""
    state = state_of(request)
    P.check_params(request, frozenset())
    media = negotiate(request)
    tm = await request_context(request, state)
    record = await state.snapshots.retrieve(_caller(request), request.path_params["snapshot_id"])
    return ld_response(request, document(record), tm, media)


async def update_snapshot(request: Request) -> Response:
    """Update Snapshot Status (6.37.3.2, 5.16.4): 200 with the updated status."""
    state = state_of(request)
    P.check_params(request, frozenset())
    media = negotiate(request)
    body = await read_body(request, state.settings.max_body_bytes, merge_patch=True)
    tm = await request_context(request, state, body.context)
    record = await state.snapshots.update(_caller(request), request.path_params["snapshot_id"], body.data)
    return ld_response(request, document(record), tm, media)


async def delete_snapshot(request: Request) -> Response:
    """Delete Snapshot (6.37.3.3, 5.16.5)."""
    state = state_of(request)
    P.check_params(request, frozenset())
    await state.snapshots.delete(_caller(request), request.path_params["snapshot_id"])
    return no_content(request)


async def clone_snapshot(request: Request) -> Response:
    """Clone Snapshot (6.38.3.1, 5.16.2): 201 with the relative path of the clone in Location."""
    state = state_of(request)
    P.check_params(request, frozenset())
    body = await read_body(request, state.settings.max_body_bytes)
    record = await state.snapshots.clone(_caller(request), request.path_params["snapshot_id"], body.data)
    return no_content(request, {"Location": f"{BASE}/snapshots/{record.id}"}, status=201)


def _captures(data: Any, member: str, tm: TermMap, *, temporal: bool) -> list[Capture]:
    """The Query objects (5.2.23) of snapshotQueries or snapshotTemporalQueries, parsed as POST
    /entityOperations/query and POST /temporal/entityOperations/query parse theirs (temporalQ only in the
    temporal ones)."""
    if not isinstance(data, dict) or member not in data:
        return []
    value = data[member]
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{member} is a non-empty array of Query (clause 5.2.23)")
    captures = []
    for item in value:
        if isinstance(item, dict) and "temporalQ" in item and not temporal:
            raise BadRequestData(f"a Query of {member} has no temporalQ: snapshotTemporalQueries have it")
        params_list, view_params = query_body_params(item, temporal=temporal)
        queries = [parse_query(params, tm) for params in params_list]
        time = parse_time_query(view_params, required=False) if temporal else None
        captures.append(Capture(queries, time))
    return captures


class SnapshotScope:
    """ASGI middleware of the NGSILD-Snapshot header (5.5.15, decision record 0152): a request to an entity or
    temporal resource with it runs on the named live snapshot of its tenant (its content tenant, found here and
    handed to caller_of through the scope), and the answer repeats the header; an unknown or expired snapshot is
    ResourceNotFound, and the header on other resources is refused, since they would otherwise ignore it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        value = _header(scope) if scope["type"] == "http" else None
        if value is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            content = await self._content(request, value)
        except NgsiLdError as exc:
            await problem_response(exc, request)(scope, receive, send)
            return
        scope[SCOPE_KEY] = content

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"ngsild-snapshot", value.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, echo)

    async def _content(self, request: Request, snapshot_id: str) -> str:
        path = request.url.path
        if not path.startswith(_SCOPED):
            raise OperationNotSupported(
                f"{SNAPSHOT_HEADER} applies to the entity and temporal operations only, not to {path}"
            )
        state = state_of(request)
        return await state.snapshots.content_of(_caller(request), snapshot_id)


def _header(scope: Scope) -> str | None:
    for name, raw in scope.get("headers", ()):
        if name == b"ngsild-snapshot":
            value: str = raw.decode("latin-1").strip()
            return value
    return None


def scoped_tenant(request: Request) -> str | None:
    """The content tenant a request with NGSILD-Snapshot runs on (None without the header)."""
    found = request.scope.get(SCOPE_KEY)
    return found if isinstance(found, str) else None


ROUTES = [
    Route(f"{BASE}/snapshots", create_snapshot, methods=["POST"]),
    Route(f"{BASE}/snapshots", purge_snapshots, methods=["DELETE"]),
    Route(f"{BASE}/snapshots/{{snapshot_id:segment}}", retrieve_snapshot, methods=["GET"]),
    Route(f"{BASE}/snapshots/{{snapshot_id:segment}}", update_snapshot, methods=["PATCH"]),
    Route(f"{BASE}/snapshots/{{snapshot_id:segment}}", delete_snapshot, methods=["DELETE"]),
    Route(f"{BASE}/snapshots/{{snapshot_id:segment}}/clone", clone_snapshot, methods=["POST"]),
]
