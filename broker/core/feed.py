"""The live change feed of one caller (issue 21, record 0401): the committed changes of the store's durable feed
(ARCHITECTURE decision 6) as that caller may see them, in its tenant, of the types it asked for.

Each change is judged on the entity's states before and after the write through the caller's access view: an
entity the caller may not read before nor after is left out; one it may read only before shows as deleted (it left
the caller's view), so a client that keeps a picture of the entities never keeps one it may no longer see.
An area (a geo-query) keeps the changes of entities in it before or after the write, so that one leaving the area
or deleted in it is seen too (record 0407).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from broker.core.access import Access, View
from broker.core.caller import Caller
from broker.core.model import Entity
from broker.query.geo import GeoQuery, matches_geo
from broker.store.base import Change, Store

#: Changes read from the store at a time.
BATCH = 500


@dataclass(frozen=True)
class FeedItem:
    seq: int
    at: str
    entity_id: str
    #: The entity as the caller may see it after the write; None when it is gone (deleted or out of view).
    after: Entity | None
    #: Its type IRIs (those of the state before when it is gone).
    types: tuple[str, ...]
    #: The attribute IRIs the write changed, among those the caller may see.
    changed: tuple[str, ...]


def seen(
    change: Change, view: View, tenant: str, types: frozenset[str] | None, area: GeoQuery | None = None
) -> FeedItem | None:
    """`change` as `view` shows it in `tenant`, None when the caller sees nothing of it or it is not in `area`
    (judged on what the caller may see: a location hidden from it places the entity nowhere)."""
    if change.tenant != tenant:
        return None
    before = view.redact(change.before) if change.before is not None else None
    after = view.redact(change.after) if change.after is not None else None
    shown = after or before
    if shown is None:
        return None
    entity_types = tuple(shown["type"])
    if types is not None and types.isdisjoint(entity_types):
        return None
    if area is not None and not any(state is not None and matches_geo(state, area) for state in (before, after)):
        return None
    old = before["attrs"] if before is not None else {}
    new = after["attrs"] if after is not None else {}
    changed = tuple(sorted(a for a in old.keys() | new.keys() if old.get(a) != new.get(a)))
    return FeedItem(change.seq, change.at, change.entity_id, after, entity_types, changed)


async def start_of(store: Store, last_event: int | None) -> int:
    """Where a feed starts: after the event a reconnecting client saw last (bounded by the head, so that a stale
    id cannot make it wait for numbers the store has not reached), else at the head."""
    head = await store.last_seq()
    return head if last_event is None else min(last_event, head)


async def follow(
    store: Store,
    access: Access,
    caller: Caller,
    types: frozenset[str] | None,
    after: int,
    poll: float,
    idle: float = 15.0,
    area: GeoQuery | None = None,
) -> AsyncIterator[FeedItem | None]:
    """The changes after sequence number `after` as `caller` may see them, as they commit (the store is read
    every `poll` seconds while nothing is new), and None after each `idle` seconds without any, so that the
    consumer can show the connection is alive. Runs until the consumer stops iterating."""
    cursor = after
    quiet = 0.0
    while True:
        changes = await store.changes_since(cursor, BATCH)
        if not changes:
            await asyncio.sleep(poll)
            quiet += poll
            if quiet >= idle:
                quiet = 0.0
                yield None
            continue
        quiet = 0.0
        view = await access.view(caller)  # per batch: a policy change reaches an open feed too
        for change in changes:
            cursor = change.seq
            item = seen(change, view, caller.tenant, types, area)
            if item is not None:
                yield item
