"""GET /ngsi-ld/v1/agora/changes/stream: the change feed as server-sent events (issue 21, record 0401), the live
feed of the console and of any client that wants changes without a subscription endpoint of its own.

Each event is `event: change`, `id:` the feed's sequence number (a reconnecting EventSource sends it back as
Last-Event-ID and resumes after it) and `data:` one JSON object: `id`, `type`, `at`, `deleted`, the `changed`
attribute names and the `entity` in normalized form, all in the terms of the request's @context. `type=` keeps
the changes of entities of those types, a geo-query (georel, geometry, coordinates, geoproperty; clause 4.10) those
of entities in that area before or after the change (record 0407). Only what the caller's access view shows is
sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from broker.core.errors import BadRequestData
from broker.core.feed import FeedItem, follow, start_of
from broker.core.render import View, render
from broker.http import params as P
from broker.http.entities import BASE, caller_of, request_context, type_selection
from broker.http.state import state_of
from broker.ld.termmap import TermMap
from broker.query.geo import parse_geo_query

STREAM: Final = f"{BASE}/agora/changes/stream"
#: How often an idle feed reads the store: the notifier's own poll interval is the floor.
POLL: Final = 0.1
PARAMS: Final = frozenset({"type", "after", "georel", "geometry", "coordinates", "geoproperty"})


async def change_stream(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, PARAMS)
    tm = await request_context(request, state)
    area = parse_geo_query(P.query(request), tm, limits=state.limits)
    caller = caller_of(request)
    await state.access.require(caller, "read", "read entities in this tenant")
    selected = type_selection(request, tm)
    start = await start_of(state.store, _last_event(request))
    items = follow(
        state.store,
        state.access,
        caller,
        frozenset(selected) if selected is not None else None,
        start,
        max(POLL, state.settings.notify_poll_interval),
        area=area,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(items, tm, start), media_type="text/event-stream", headers=headers)


def _last_event(request: Request) -> int | None:
    """Where to resume: the Last-Event-ID header of a reconnecting EventSource, or `after=`."""
    raw = request.headers.get("last-event-id") or P.query(request).get("after")
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequestData(f"Last-Event-ID or after={raw!r} is not a sequence number of the change feed")
    return int(raw)


async def _events(items: AsyncIterator[FeedItem | None], tm: TermMap, start: int) -> AsyncIterator[bytes]:
    # At once, so that the client knows the feed is open, with where it starts: an `id:` without data sets the
    # client's last event id (an EventSource's Last-Event-ID), so that a stream opened again later (another type,
    # another area) resumes there instead of at the head, and misses nothing in between.
    yield b": agora change feed\nid: %d\n\n" % start
    async for item in items:
        if item is None:
            yield b": idle\n\n"
            continue
        yield b"event: change\nid: %d\ndata: %s\n\n" % (item.seq, orjson.dumps(event_data(item, tm)))


def event_data(item: FeedItem, tm: TermMap) -> dict[str, Any]:
    types = [tm.compact_iri(t) for t in item.types]
    return {
        "id": item.entity_id,
        "type": types[0] if len(types) == 1 else types,
        "at": item.at,
        "deleted": item.after is None,
        "changed": [tm.compact_iri(a) for a in item.changed],
        "entity": render(item.after, tm, View()) if item.after is not None else None,
    }


ROUTES = [Route(STREAM, change_stream, methods=["GET"])]
