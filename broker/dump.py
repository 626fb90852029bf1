"""`agora dump` and `agora restore` (record 0245): everything a store holds, as a streamed, versioned archive that
any backend can be restored from into any other (SQLite to Redis and back).

The archive is gzip-compressed JSON lines. The first line is the header, `{"format": "agora-dump", "version": 1,
...}`; each other line is one record, `{"kind": K, ...}` (a store record's fields under "record"), written as
the store is read (nothing is held whole in memory): contexts, entities per tenant (their canonical, expanded
form: no @context is needed to read them back), temporal history per temporal entity, subscriptions, context
source registrations and subscriptions, snapshots, access policies, API keys and published open datasets. It goes
through the Store contract only, so it works on every backend, and a restore is written with history recording off
(the history is restored as it was, not recorded again).

Not in the archive: entity maps (they live an hour by default and a day at most), the change feed and the
notifiers' cursors (the restored broker notifies only what happens after it starts), the subscriptions' delivery
counters (timesSent and the like begin again), and the audit log. A hosted @context keeps the URL it was given
on the source broker; the restored broker serves it by id under its own address.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import orjson

from broker.core.errors import OperationNotSupported
from broker.core.model import now_iso
from broker.store.base import (
    ApiKeyRecord,
    ContextRecord,
    EntityFilter,
    HistoryPolicy,
    InstanceQuery,
    SnapshotRecord,
    Store,
    TemporalInstance,
    WritePlan,
)

FORMAT = "agora-dump"
VERSION = 1
BATCH = 200  # entities per store write, temporal entities per history read


class DumpError(ValueError):
    """An archive that cannot be restored (not an Agora dump, a newer format, a damaged line)."""


async def _optional(read: Callable[[], Any]) -> list[Any]:
    """What a backend keeps of an optional kind of record; nothing when it keeps none."""
    try:
        return list(await read())
    except OperationNotSupported:
        return []


async def records(store: Store) -> AsyncIterator[dict[str, Any]]:
    """Every record of the store, in the order a restore needs them (contexts first, history after entities)."""
    for context in await store.list_contexts():
        yield {"kind": "context", "record": dataclasses.asdict(context)}
    tenants = await store.list_tenants()
    for tenant in tenants:
        async for batch in store.scan_batches(tenant, EntityFilter(), BATCH):
            for entity in batch:
                yield {"kind": "entity", "tenant": tenant, "entity": entity}
    for tenant in tenants:
        async for record in _history(store, tenant):
            yield record
    for sub in await store.list_subscriptions():
        yield {"kind": "subscription", "tenant": sub.tenant, "id": sub.id, "body": sub.body}
    for reg in await _optional(store.list_registrations):
        yield {"kind": "registration", "record": dataclasses.asdict(reg)}
    for csub in await _optional(store.list_csource_subscriptions):
        yield {"kind": "csource_subscription", "tenant": csub.tenant, "id": csub.id, "body": csub.body}
    for snapshot in await _optional(store.list_snapshots):
        yield {"kind": "snapshot", "record": dataclasses.asdict(snapshot)}
    for policy in await _optional(store.list_policies):
        yield {"kind": "policy", "body": policy}
    for key in await _optional(store.list_api_keys):
        yield {"kind": "api_key", "record": dataclasses.asdict(key)}
    for dataset in await _optional(store.list_datasets):  # not their survey: the restored broker regenerates it
        yield {"kind": "dataset", "body": dataset}


async def _history(store: Store, tenant: str) -> AsyncIterator[dict[str, Any]]:
    try:
        heads = await store.temporal_entities(tenant, EntityFilter())
    except OperationNotSupported:
        return
    for start in range(0, len(heads), BATCH):
        chunk = heads[start : start + BATCH]
        history = await store.temporal_instances(tenant, [h.id for h in chunk], InstanceQuery(timeproperty="createdAt"))
        for head in chunk:
            attrs = history.get(head.id, {})
            instances = [
                {"attr": i.attr, "instance_id": i.instance_id, "body": i.body}
                for found in attrs.values()
                for i in found
            ]
            yield {"kind": "temporal", "tenant": tenant, "head": dataclasses.asdict(head), "instances": instances}


async def dump(store: Store, out: IO[bytes], on_progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the archive of `store` to `out` (a binary file); the count of records by kind."""
    counts: dict[str, int] = {}
    with gzip.GzipFile(fileobj=out, mode="wb") as archive:
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created": now_iso(),
            "store": type(store).__name__,
            "schemaVersion": await store.stored_schema_version(),
        }
        archive.write(orjson.dumps(header) + b"\n")
        async for record in records(store):
            archive.write(orjson.dumps(record) + b"\n")
            counts[record["kind"]] = counts.get(record["kind"], 0) + 1
            if on_progress is not None:
                on_progress(sum(counts.values()))
    return counts


def read_archive(path: str | Path) -> tuple[dict[str, Any], Any]:
    """The header of an archive and an iterator of its records; DumpError when it is not one this code reads."""
    handle = gzip.open(path, "rb")  # noqa: SIM115 - closed by the iterator it is handed to, or below
    try:
        first = handle.readline()
        header = orjson.loads(first) if first else None
    except (OSError, orjson.JSONDecodeError, EOFError) as exc:
        handle.close()
        raise DumpError(f"{path} is not an Agora dump (a gzip file of JSON lines): {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        handle.close()
        raise DumpError(f"{path} is not an Agora dump: its first line is no {FORMAT} header")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        handle.close()
        raise DumpError(f"{path} is a dump of format version {header.get('version')}; this Agora reads {VERSION}")

    def lines() -> Any:
        with handle:
            for number, line in enumerate(handle, start=2):
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise DumpError(f"{path}, line {number}: not JSON ({exc})") from exc

    return header, lines()


class _Restorer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: dict[str, dict[str, Any]] = {}  # tenant -> {id: entity}, written BATCH at a time

    async def add(self, record: dict[str, Any]) -> None:
        kind = record.pop("kind", None)
        store = self.store
        if kind == "entity":
            batch = self.pending.setdefault(record["tenant"], {})
            batch[record["entity"]["id"]] = record["entity"]
            if len(batch) >= BATCH:
                await self._flush(record["tenant"])
            return
        await self.flush()  # entities first: history and the rest refer to them
        if kind == "context":
            await store.put_context(ContextRecord(**record["record"]))
        elif kind == "temporal":
            head = record["head"]
            meta: dict[str, Any] = {"type": head["type"]}
            if head.get("scope") is not None:
                meta["scope"] = head["scope"]
            instances = [TemporalInstance(i["attr"], i["instance_id"], i["body"]) for i in record["instances"]]
            tenant, created, modified = record["tenant"], head["created_at"], head["modified_at"]
            if modified != created:
                # The record's modifiedAt moves only when its types or scope change (record 0070): made untyped at
                # its creation time, it takes them at its modification time, as it did on the source.
                await store.temporal_add(tenant, head["id"], {"type": []}, [], create=True, at=created)
            await store.temporal_add(tenant, head["id"], meta, instances, create=True, at=modified)
        elif kind == "subscription":
            await store.create_subscription(record["tenant"], record["id"], record["body"])
        elif kind == "registration":
            reg = record["record"]
            await store.create_registration(reg["tenant"], reg["id"], reg["body"])
        elif kind == "csource_subscription":
            await store.create_csource_subscription(record["tenant"], record["id"], record["body"])
        elif kind == "snapshot":
            await store.create_snapshot(SnapshotRecord(**record["record"]))
        elif kind == "policy":
            await store.put_policy(record["body"])
        elif kind == "dataset":
            await store.put_dataset(record["body"])
        elif kind == "api_key":
            key = record["record"]
            key["roles"] = tuple(key["roles"])
            key["tenants"] = None if key["tenants"] is None else tuple(key["tenants"])
            await store.create_api_key(ApiKeyRecord(**key))
        else:
            raise DumpError(f"unknown record kind {kind!r}")

    async def _flush(self, tenant: str) -> None:
        batch = self.pending.pop(tenant, {})
        if batch:
            await self.store.write(tenant, list(batch), lambda _: WritePlan(dict(batch)), create_tenant=True)

    async def flush(self) -> None:
        for tenant in list(self.pending):
            await self._flush(tenant)


async def restore(store: Store, lines: Any, on_progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the records of an archive into `store` (open, and empty: the caller checks); counts by kind."""
    store.history = HistoryPolicy(record=False)  # the archive's history is restored, not recorded again
    restorer = _Restorer(store)
    counts: dict[str, int] = {}
    for record in lines:
        kind = str(record.get("kind"))
        await restorer.add(record)
        counts[kind] = counts.get(kind, 0) + 1
        if on_progress is not None:
            on_progress(sum(counts.values()))
    await restorer.flush()
    return counts


async def is_empty(store: Store) -> bool:
    """No entity, temporal entity, subscription or context in any tenant."""
    if await store.list_contexts() or await store.list_subscriptions():
        return False
    for tenant in await store.list_tenants():
        if await store.find_ids(tenant, EntityFilter()):
            return False
        try:
            if await store.temporal_entities(tenant, EntityFilter()):
                return False
        except OperationNotSupported:
            pass
    return True
