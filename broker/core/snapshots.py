"""Snapshots (clauses 5.16, 5.5.15, 5.2.41, 5.2.42): a consistent copy of the entities some queries select, kept
apart from the live data, read and written with the Core and Temporal API under the NGSILD-Snapshot header.

What a snapshot is here (decision records 0150-0153):

* Its content lives in a tenant of its own (the content tenant: the owner's tenant name, a separator no client
  tenant name can hold, and a random part). Every backend then keeps, queries and pages a snapshot's entities
  exactly like live ones, the content is found by entity id like any entity (a GDPR erasure walks
  `holding(entity_id)`), and an operation with NGSILD-Snapshot is the same operation on that tenant.
* Create Snapshot (5.16.1) runs snapshotQueries (Query Entities, 5.7.2) and snapshotTemporalQueries (Query
  Temporal Evolution, 5.7.4) at once, copies whole entities and the selected instances of their temporal
  evolution, and answers when the copy is complete: snapshotStatus is then "success" or "empty" (5.2.42).
* A snapshot lives for snapshotLifetime (an ISO 8601 duration) from its creation, or until expiresAt, one day when
  neither is given; an expired snapshot is gone for every operation and its content is removed on the way.
* Clone Snapshot (5.16.2) copies the content and the temporal evolution of a live snapshot into a new one; it runs
  no queries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import orjson

from broker.core.caller import Caller
from broker.core.errors import AlreadyExists, BadRequestData, OperationNotSupported, ResourceNotFound
from broker.core.model import Entity, now_iso
from broker.core.normalize import check_datetime, is_uri
from broker.core.query import Paging, Queries
from broker.core.temporal import Temporal, TemporalView, TimeQuery
from broker.query import Query
from broker.query.evaluate import matches
from broker.query.q import And, AttrPath, Exists, Or, Path, QNode
from broker.store.base import (
    EntityFilter,
    InstanceQuery,
    SnapshotRecord,
    Store,
    TemporalEntityRecord,
    TemporalInstance,
    WritePlan,
)
from broker.temporal.times import from_micros, parse_duration, to_micros

log = logging.getLogger("agora.snapshots")

NGSI_LD: Final = "https://uri.etsi.org/ngsi-ld/"
ID_PREFIX: Final = "urn:ngsi-ld:Snapshot:"
#: Between the owner's tenant name and the random part of a content tenant: NGSILD-Tenant never holds it.
CONTENT_MARK: Final = "\x1fsnapshot\x1f"
DEFAULT_LIFETIME: Final = "P1D"
DEFAULT_PRIORITY: Final = 5
#: Expired snapshots are removed at most this often per process, on the way of creating one (reads ignore them).
PURGE_INTERVAL_S: Final = 60.0
#: Entities written to a content tenant per store write.
_BATCH: Final = 100
#: Every match of a snapshot's temporal query, not a page of them.
_ALL: Final = Paging(limit=2**62)

#: Members a client sends on creation (5.2.41); the rest are the broker's.
CREATE_MEMBERS: Final = frozenset(
    {
        "id",
        "type",
        "snapshotQueries",
        "snapshotTemporalQueries",
        "snapshotPriority",
        "snapshotLifetime",
        "expiresAt",
        "endpoint",
        "receiverInfo",
    }
)
#: What Update Snapshot Status (5.16.4) may change, and what a Clone Snapshot body (5.16.2) may set.
MUTABLE: Final = frozenset({"snapshotPriority", "snapshotLifetime", "expiresAt", "endpoint", "receiverInfo"})
CLONE_MEMBERS: Final = MUTABLE | {"id", "type"}
#: Members of the status the broker writes.
OUTPUT_ONLY: Final = frozenset(
    {
        "snapshotStatus",
        "snapshotQueriesDetails",
        "snapshotTemporalQueriesDetails",
        "createdAt",
        "modifiedAt",
        "lastUsedAt",
    }
)
#: Members a Purge Snapshots q may name (5.16.7: "restricted to members of the Snapshot data type").
QUERYABLE: Final = frozenset(
    {
        "snapshotPriority",
        "snapshotLifetime",
        "snapshotStatus",
        "expiresAt",
        "endpoint",
        "createdAt",
        "modifiedAt",
    }
)
QUERYABLE_IRIS: Final = frozenset(NGSI_LD + name for name in QUERYABLE)
_NULL: Final = "urn:ngsi-ld:null"


@dataclass(frozen=True)
class Capture:
    """One Query of snapshotQueries or snapshotTemporalQueries, parsed: one query per EntitySelector, and for a
    temporal one its temporalQ (4.11)."""

    queries: list[Query]
    time: TimeQuery | None = None


def content_tenant(owner: str) -> str:
    return f"{owner}{CONTENT_MARK}{uuid.uuid4().hex}"


def is_content_tenant(tenant: str) -> bool:
    return CONTENT_MARK in tenant


def check_snapshot_id(snapshot_id: str) -> str:
    """5.16.3.4, 5.16.4.4, 5.16.5.4: a Snapshot id that is not a valid URI is BadRequestData."""
    if not is_uri(snapshot_id):
        raise BadRequestData(f"{snapshot_id!r} is not a valid Snapshot id (a URI)")
    return snapshot_id


def document(record: SnapshotRecord) -> dict[str, Any]:
    """The Snapshot status (5.2.41) as clients see it."""
    return dict(record.body)


#: Sends one SnapshotNotification: (endpoint, body, headers from receiverInfo).
Notify = Callable[[str, dict[str, Any], dict[str, str]], Coroutine[Any, Any, None]]
NOTIFY_TIMEOUT_S: Final = 10.0


async def post_notification(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    """One HTTP POST of a SnapshotNotification; a failure is logged (5.16.6 asks for no retry or status)."""
    try:
        async with httpx.AsyncClient(timeout=NOTIFY_TIMEOUT_S) as client:
            response = await client.post(
                url, content=orjson.dumps(body), headers={**headers, "Content-Type": "application/json"}
            )
        if response.status_code >= 300:
            log.warning("SnapshotNotification to %s answered %s", url, response.status_code)
    except httpx.HTTPError as exc:
        log.warning("SnapshotNotification to %s failed: %s", url, exc)


class Snapshots:
    def __init__(self, store: Store, queries: Queries, temporal: Temporal, notify: Notify = post_notification) -> None:
        self.store = store
        self.queries = queries
        self.temporal = temporal
        self.notify = notify
        self._sending: set[asyncio.Task[None]] = set()
        self._last_purge = 0.0

    def _notify(self, record: SnapshotRecord) -> None:
        """5.16.6: with an endpoint, a SnapshotNotification once the queries ran and the status is written, and
        after every status update; sent in the background, so that the answer does not wait for the receiver."""
        body = record.body
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str):
            return
        task = asyncio.get_running_loop().create_task(
            self.notify(endpoint, notification(body), {kv["key"]: kv["value"] for kv in body.get("receiverInfo", [])})
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the notifications being sent (tests, shutdown)."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    # -- Create Snapshot (5.16.1) ----------------------------------------------------------------------------------
    async def create(
        self, caller: Caller, body: Any, captures: list[Capture], temporal_captures: list[Capture]
    ) -> SnapshotRecord:
        await self._may(caller)
        members = check_members(body, CREATE_MEMBERS, "Snapshot")
        if not captures and not temporal_captures:
            raise BadRequestData("a Snapshot needs snapshotQueries or snapshotTemporalQueries (clause 5.2.41)")
        await self._purge_now_and_then()
        snapshot_id = await self._new_id(caller, members)
        now = now_iso()
        status = {**_lifecycle(members, now), "createdAt": now, "modifiedAt": now}
        base = {"id": snapshot_id, "type": "Snapshot", **_without(members, {"id", "type"}), **status}
        content = content_tenant(caller.tenant)
        record = SnapshotRecord(caller.tenant, snapshot_id, content, _expiry(base), base)

        async def fill() -> dict[str, Any]:
            details, temporal_details = await self._capture(caller, content, captures, temporal_captures)
            found = any(d["resultStatus"] == "success" for d in details + temporal_details)
            final: dict[str, Any] = {"snapshotStatus": "success" if found else "empty"}
            if captures:
                final["snapshotQueriesDetails"] = details
            if temporal_captures:
                final["snapshotTemporalQueriesDetails"] = temporal_details
            return final

        return await self._made(record, fill)

    async def _made(
        self, record: SnapshotRecord, fill: Callable[[], Coroutine[Any, Any, dict[str, Any]]]
    ) -> SnapshotRecord:
        """Store `record` as "preparing" (AlreadyExists when its id is taken), fill its content, then store the
        final status that `fill` returns. A failed fill removes the snapshot again; a process that dies meanwhile
        leaves a preparing snapshot that expires and is swept with its content."""
        preparing = replace(record, body={**record.body, "snapshotStatus": "preparing"})
        if not await self.store.create_snapshot(preparing):
            raise AlreadyExists(f"a Snapshot {record.id} already exists")
        try:
            final = await fill()
        except Exception:
            await self.store.delete_snapshot(record.tenant, record.id)
            await self._drop_content(record.content)
            raise
        done = replace(record, body={**record.body, **final})
        if not await self.store.replace_snapshot(done):  # deleted or purged while it was filled
            await self._drop_content(record.content)
            raise ResourceNotFound(f"the Snapshot {record.id} was deleted while it was made")
        self._notify(done)
        return done

    async def _purge_now_and_then(self) -> None:
        """An expired snapshot nobody asks for again would keep its content forever: creations sweep them, at most
        once per PURGE_INTERVAL_S per process."""
        now = time.monotonic()
        if now - self._last_purge >= PURGE_INTERVAL_S:
            self._last_purge = now
            await self.purge_expired()

    async def _new_id(self, caller: Caller, members: dict[str, Any]) -> str:
        if "id" not in members:
            return f"{ID_PREFIX}{uuid.uuid4()}"
        snapshot_id = members["id"]
        if not isinstance(snapshot_id, str):
            raise BadRequestData("Snapshot.id is a URI")
        check_snapshot_id(snapshot_id)
        if await self._live(caller.tenant, snapshot_id) is not None:
            raise AlreadyExists(f"a Snapshot {snapshot_id} already exists")
        return snapshot_id

    async def _capture(
        self, caller: Caller, content: str, captures: list[Capture], temporal_captures: list[Capture]
    ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """Copy what the queries select into `content`: (ExecutionResultDetails of each query, of each temporal
        query). Whole entities; for the temporal queries, the instances in their interval."""
        entities: dict[str, Entity] = {}
        details = []
        for capture in captures:
            found = await self.queries.select(caller, capture.queries)
            for entity in found:
                entities.setdefault(entity["id"], entity)
            details.append(_result(bool(found)))
        history: dict[str, tuple[dict[str, Any], list[TemporalInstance]]] = {}
        temporal_details = []
        for capture in temporal_captures:
            found_any = False
            for query in capture.queries:
                view = TemporalView(time=capture.time or TimeQuery())
                page = await self.temporal.query(caller, query, view, _ALL)
                for found_entity in page.entities:
                    record = found_entity.record
                    _, instances = history.setdefault(record.id, (_head(record), []))
                    seen = {(i.attr, i.instance_id) for i in instances}
                    instances += [
                        i for per in found_entity.attrs.values() for i in per if (i.attr, i.instance_id) not in seen
                    ]
                    found_any = True
            temporal_details.append(_result(found_any))
        await self._write_content(content, list(entities.values()), history)
        return details, temporal_details

    async def _write_content(
        self, content: str, entities: list[Entity], history: dict[str, tuple[dict[str, Any], list[TemporalInstance]]]
    ) -> None:
        """The content tenant made, holding `entities`, and as temporal evolution exactly `history`: the history a
        write records is dropped, since a snapshot's evolution is what its temporal queries selected."""
        if not entities:
            await self._make_tenant(content)
        for start in range(0, len(entities), _BATCH):
            batch = entities[start : start + _BATCH]
            states: dict[str, Entity | None] = {e["id"]: e for e in batch}
            await self.store.write(content, list(states), _plan(states), create_tenant=True)
        await self._drop_history(content, [e["id"] for e in entities])
        for entity_id, (head, instances) in history.items():
            await self.store.temporal_add(content, entity_id, head, instances, create=True)

    async def _make_tenant(self, content: str) -> None:
        """A tenant exists once something was written in it (Store contract): an empty snapshot's tenant is made
        by writing and deleting a placeholder, so that queries on it answer an empty list, not NonexistentTenant."""
        placeholder = f"{ID_PREFIX}placeholder"
        entity: Entity = {"id": placeholder, "type": [NGSI_LD + "Snapshot"], "attrs": {}}
        now = now_iso()
        entity["createdAt"] = entity["modifiedAt"] = now
        await self.store.write(
            content, [placeholder], lambda _: WritePlan(writes={placeholder: entity}), create_tenant=True
        )
        await self.store.write(content, [placeholder], lambda _: WritePlan(writes={placeholder: None}))
        await self._drop_history(content, [placeholder])

    async def _drop_history(self, content: str, ids: Iterable[str]) -> None:
        if not self.store.history.record:
            return
        for entity_id in ids:
            await self.store.temporal_delete(content, entity_id)

    # -- Retrieve / Update / Delete (5.16.3-5.16.5), scoping (5.5.15) --------------------------------------------
    async def retrieve(self, caller: Caller, snapshot_id: str) -> SnapshotRecord:
        """Retrieve Snapshot Status (5.16.3)."""
        return await self._require(caller, snapshot_id)

    async def content_of(self, caller: Caller, snapshot_id: str) -> str:
        """The tenant an operation with NGSILD-Snapshot works on (5.5.15): the live snapshot's content tenant."""
        return (await self._require(caller, snapshot_id)).content

    async def update(self, caller: Caller, snapshot_id: str, fragment: Any) -> SnapshotRecord:
        """Update Snapshot Status (5.16.4): the members of MUTABLE, merged as 5.5.8 says (urn:ngsi-ld:null
        removes endpoint or receiverInfo); id and type may only repeat what they are."""
        record = await self._require(caller, snapshot_id)
        removed: set[str] = set()
        if isinstance(fragment, dict):
            removed = {n for n in ("endpoint", "receiverInfo") if fragment.get(n) == _NULL}
            fragment = {k: v for k, v in fragment.items() if k not in removed}
        members = check_members(fragment, MUTABLE | {"id", "type"}, "Snapshot fragment", read_only=True)
        if members.get("id", snapshot_id) != snapshot_id:
            raise BadRequestData("the id of a Snapshot cannot be changed")
        changes = _without(members, {"id", "type"})
        if not changes and not removed:
            raise BadRequestData(f"a Snapshot fragment changes one of {', '.join(sorted(MUTABLE))}")
        body = {k: v for k, v in record.body.items() if k not in removed}
        if "snapshotLifetime" in changes and "expiresAt" in changes:
            raise BadRequestData("a Snapshot fragment sets snapshotLifetime or expiresAt, not both")
        body.update(changes)
        if "snapshotLifetime" in changes:
            body["expiresAt"] = _after(body["createdAt"], changes["snapshotLifetime"])
        elif "expiresAt" in changes:
            body.pop("snapshotLifetime", None)
        body["modifiedAt"] = now_iso()
        updated = SnapshotRecord(record.tenant, record.id, record.content, _expiry(body), body)
        if not await self.store.replace_snapshot(updated):
            raise ResourceNotFound(f"no Snapshot {snapshot_id}")
        await self._expire_if_due(updated)
        self._notify(updated)
        return updated

    async def delete(self, caller: Caller, snapshot_id: str) -> None:
        """Delete Snapshot (5.16.5): the record first, so that no operation reaches the content meanwhile."""
        record = await self._require(caller, snapshot_id)
        if not await self.store.delete_snapshot(caller.tenant, record.id):
            raise ResourceNotFound(f"no Snapshot {snapshot_id}")
        await self._drop_content(record.content)

    async def purge(self, caller: Caller, q: QNode) -> list[str]:
        """Purge Snapshots (5.16.7): delete the caller's snapshots whose members meet `q`; their ids."""
        await self._may(caller)
        purged = []
        for record in await self.store.list_snapshots(caller.tenant):
            if await self._expire_if_due(record):
                continue
            if matches(_as_entity(record.body), q) and await self.store.delete_snapshot(caller.tenant, record.id):
                await self._drop_content(record.content)
                purged.append(record.id)
        return purged

    # -- Clone Snapshot (5.16.2) -----------------------------------------------------------------------------------
    async def clone(self, caller: Caller, snapshot_id: str, body: Any) -> SnapshotRecord:
        """A new snapshot holding a copy of the content and temporal evolution of `snapshot_id`. The body names
        the clone and its lifecycle (CLONE_MEMBERS); the clone keeps the source's queries and their details,
        which describe what it holds."""
        source = await self._require(caller, snapshot_id)
        if isinstance(body, dict) and ({"snapshotQueries", "snapshotTemporalQueries"} & set(body)):
            raise BadRequestData("a clone copies its source's content: its body has no snapshotQueries")
        members = check_members(body, CLONE_MEMBERS, "Snapshot")
        await self._purge_now_and_then()
        clone_id = await self._new_id(caller, members)
        now = now_iso()
        kept = {k: v for k, v in source.body.items() if k in _DESCRIBES_CONTENT}
        body_out = {
            "id": clone_id,
            "type": "Snapshot",
            **kept,
            **_without(members, {"id", "type"}),
            **_lifecycle(members, now),
            "createdAt": now,
            "modifiedAt": now,
        }
        content = content_tenant(caller.tenant)
        record = SnapshotRecord(caller.tenant, clone_id, content, _expiry(body_out), body_out)

        async def fill() -> dict[str, Any]:
            await self._copy_content(source.content, content)
            return {"snapshotStatus": source.body.get("snapshotStatus", "success")}

        return await self._made(record, fill)

    async def _copy_content(self, source: str, target: str) -> None:
        entities = await self.store.scan(source, EntityFilter())
        history: dict[str, tuple[dict[str, Any], list[TemporalInstance]]] = {}
        records = await self.store.temporal_entities(source, EntityFilter())
        if records:
            instances = await self.store.temporal_instances(source, [r.id for r in records], InstanceQuery())
            for r in records:
                history[r.id] = (_head(r), [i for attr in instances.get(r.id, {}).values() for i in attr])
        await self._write_content(target, entities, history)

    # -- what others need: GDPR erasure, expiry ----------------------------------------------------------------------
    async def holding(self, entity_id: str, tenant: str | None = None) -> list[SnapshotRecord]:
        """The live snapshots (of `tenant`, or of every tenant) whose content holds the entity or its temporal
        evolution: what an erasure of that entity's data has to reach too."""
        found = []
        for record in await self.store.list_snapshots(tenant):
            if await self._expire_if_due(record):
                continue
            entities = await self.store.get(record.content, [entity_id])
            if entities or await self.store.temporal_entities(record.content, EntityFilter(ids=frozenset([entity_id]))):
                found.append(record)
        return found

    async def purge_expired(self) -> int:
        """Remove every expired snapshot of every tenant with its content; the number removed."""
        removed = 0
        for record in await self.store.list_snapshots():
            removed += await self._expire_if_due(record)
        return removed

    async def _may(self, caller: Caller) -> None:
        """Snapshots copy a tenant's content whole and give it a tenant of its own: taking, changing and using
        them is the `admin` action's (record 0221), so a snapshot never holds what its maker could not see."""
        await self.queries.access.require(caller, "admin", "take, change or use snapshots")

    async def _require(self, caller: Caller, snapshot_id: str) -> SnapshotRecord:
        await self._may(caller)
        record = await self._live(caller.tenant, check_snapshot_id(snapshot_id))
        if record is None:
            raise ResourceNotFound(f"no Snapshot {snapshot_id}")
        return record

    async def _live(self, tenant: str, snapshot_id: str) -> SnapshotRecord | None:
        record = await self.store.get_snapshot(tenant, snapshot_id)
        if record is None or await self._expire_if_due(record):
            return None
        return record

    async def _expire_if_due(self, record: SnapshotRecord) -> bool:
        """Whether `record` has expired; an expired one is deleted with its content (whichever process sees it
        first does it; the others find nothing left)."""
        if record.expires_at is None or record.expires_at > _now_micros():
            return False
        if await self.store.delete_snapshot(record.tenant, record.id):
            await self._drop_content(record.content)
        return True

    async def _drop_content(self, content: str) -> None:
        """Every entity and temporal evolution of a content tenant (the tenant name itself stays: tenants are never
        deleted, and a content tenant's name is never used again)."""
        ids = await self.store.find_ids(content, EntityFilter()) if await self.store.tenant_exists(content) else []
        for start in range(0, len(ids), _BATCH):
            gone: dict[str, Entity | None] = dict.fromkeys(ids[start : start + _BATCH])
            await self.store.write(content, list(gone), _plan(gone))
        try:
            records = await self.store.temporal_entities(content, EntityFilter())
        except Exception:
            return
        for r in records:
            await self.store.temporal_delete(content, r.id)


#: Members a clone takes over from its source: they describe the content it copies.
_DESCRIBES_CONTENT: Final = frozenset(
    {
        "snapshotQueries",
        "snapshotTemporalQueries",
        "snapshotStatus",
        "snapshotQueriesDetails",
        "snapshotTemporalQueriesDetails",
    }
)


def notification(body: dict[str, Any]) -> dict[str, Any]:
    """A SnapshotNotification (5.3.4) of a Snapshot status (decision record 0154)."""
    out: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "SnapshotNotification",
        "snapshotId": body["id"],
        "snapshotStatus": body["snapshotStatus"],
        "notifiedAt": now_iso(),
    }
    if "expiresAt" in body:
        out["expiresAt"] = body["expiresAt"]
    if "snapshotQueriesDetails" in body:
        out["snapshotQueriesDetails"] = body["snapshotQueriesDetails"]
    if "snapshotTemporalQueriesDetails" in body:  # the member name of Table 5.3.4-1
        out["temporalSnapshotQueriesDetails"] = body["snapshotTemporalQueriesDetails"]
    return out


def check_members(body: Any, allowed: frozenset[str], what: str, *, read_only: bool = False) -> dict[str, Any]:
    """The members of a Snapshot (or fragment) body without @context, checked against 5.2.41: type is
    "Snapshot", members outside `allowed` are refused (a broker-written one with a message saying so)."""
    if not isinstance(body, dict):
        raise BadRequestData(f"a {what} is a JSON object")
    members = {k: v for k, v in body.items() if k != "@context"}
    if members.get("type", "Snapshot") != "Snapshot":
        raise BadRequestData(f'the type of a {what} is "Snapshot"')
    if not read_only and "type" not in members:
        raise BadRequestData(f'a {what} has "type": "Snapshot"')
    written = sorted(set(members) & (OUTPUT_ONLY | (CREATE_MEMBERS - allowed)))
    if written:
        raise BadRequestData(f"{', '.join(written)} cannot be set by a client here (clause 5.2.41)")
    unknown = sorted(set(members) - allowed)
    if unknown:
        raise BadRequestData(f"unknown member(s) of {what}: {', '.join(unknown)}")
    check_values(members)
    return members


def check_values(members: dict[str, Any]) -> None:
    """The data types and restrictions of the client's members (5.2.41)."""
    if "snapshotPriority" in members:
        priority = members["snapshotPriority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10:
            raise BadRequestData("snapshotPriority is an integer from 1 (minimum) to 10 (maximum) (clause 5.5.15)")
    if "snapshotLifetime" in members:
        lifetime = members["snapshotLifetime"]
        if not isinstance(lifetime, str):
            raise BadRequestData("snapshotLifetime is an ISO 8601 duration string, e.g. PT1H")
        if parse_duration(lifetime, "snapshotLifetime").is_zero:
            raise BadRequestData("snapshotLifetime is a duration above zero")
    if "expiresAt" in members:
        expires = members["expiresAt"]
        if not isinstance(expires, str):
            raise BadRequestData("expiresAt is a DateTime string")
        check_datetime(expires, "expiresAt")
        if to_micros(expires) <= _now_micros():
            raise BadRequestData("expiresAt is in the future")
    if "endpoint" in members:
        endpoint = members["endpoint"]
        if not is_uri(endpoint):
            raise BadRequestData("endpoint is a URI")
        if not endpoint.startswith(("http://", "https://")):
            raise OperationNotSupported("SnapshotNotifications are sent over HTTP: the endpoint is an http(s) URL")
    if "receiverInfo" in members:
        info = members["receiverInfo"]
        ok = isinstance(info, list) and all(
            isinstance(kv, dict) and set(kv) == {"key", "value"} and all(isinstance(v, str) for v in kv.values())
            for kv in info
        )
        if not ok:
            raise BadRequestData('receiverInfo is an array of {"key": string, "value": string} (KeyValuePair)')


def check_purge_q(q: QNode) -> None:
    """5.16.7.4: a q naming anything but a member of the Snapshot data type (QUERYABLE) is BadRequestData."""
    for path in _paths(q):
        if not isinstance(path, AttrPath) or len(path.names) != 1 or path.member or path.keys:
            raise BadRequestData("the q of Purge Snapshots names members of Snapshot, without sub-paths")
        if path.names[0] not in QUERYABLE_IRIS:
            raise BadRequestData(f"the q of Purge Snapshots names members of Snapshot: {', '.join(sorted(QUERYABLE))}")


def _paths(node: QNode) -> list[Path]:
    if isinstance(node, And | Or):
        return [path for term in node.terms for path in _paths(term)]
    assert isinstance(node, Exists) or hasattr(node, "path")
    return [node.path]


def _lifecycle(members: dict[str, Any], now: str) -> dict[str, Any]:
    """snapshotPriority (default 5) and expiresAt: from snapshotLifetime, as given, or one day from now."""
    if "snapshotLifetime" in members and "expiresAt" in members:
        raise BadRequestData("a Snapshot sets snapshotLifetime or expiresAt, not both")
    out: dict[str, Any] = {"snapshotPriority": members.get("snapshotPriority", DEFAULT_PRIORITY)}
    if "expiresAt" in members:
        out["expiresAt"] = from_micros(to_micros(members["expiresAt"]))
    else:
        out["expiresAt"] = _after(now, members.get("snapshotLifetime", DEFAULT_LIFETIME))
    return out


def _after(start: str, lifetime: str) -> str:
    duration = parse_duration(lifetime, "snapshotLifetime")
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=to_micros(start))
    end = duration.add_to(instant)
    return from_micros((end - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))


def _expiry(body: dict[str, Any]) -> int | None:
    expires = body.get("expiresAt")
    return to_micros(expires) if isinstance(expires, str) else None


def _without(members: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {k: v for k, v in members.items() if k not in names}


def _plan(states: dict[str, Entity | None]) -> Callable[[Mapping[str, Entity | None]], WritePlan[None]]:
    """A write that sets `states` whatever the current state is (a snapshot's content is only the copy)."""

    def plan(_: Mapping[str, Entity | None]) -> WritePlan[None]:
        return WritePlan(writes=states)

    return plan


def _head(record: TemporalEntityRecord) -> dict[str, Any]:
    """The types and scope of a temporal entity, as temporal_add takes them."""
    return {"type": record.type, **({"scope": record.scope} if record.scope else {})}


def _result(found: bool) -> dict[str, str]:
    """ExecutionResultDetails (5.2.42) of one query that ran."""
    return {"resultStatus": "success" if found else "empty"}


def _as_entity(body: dict[str, Any]) -> Entity:
    """A Snapshot status as an entity of Properties, so that the q evaluator decides Purge Snapshots (5.16.7)."""
    attrs = {NGSI_LD + k: [{"type": "Property", "value": v}] for k, v in body.items() if k in QUERYABLE}
    return {"id": body["id"], "type": [NGSI_LD + "Snapshot"], "attrs": attrs}


def _now_micros() -> int:
    return to_micros(now_iso())
