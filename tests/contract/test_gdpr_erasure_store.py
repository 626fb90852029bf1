"""GDPR erasure on every backend (broker.gdpr.erase, records 0321, 0322): the subject's entities, history, change
events, entity maps, subscriptions and audit records go, the rest stays, and on SQLite and Redis the bytes of the
subject's ids and values are gone from the files (the database and its WAL; dump.rdb after SAVE)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from broker.gdpr.erase import ERASED_ID, ERASURE_OPERATION, erase
from broker.gdpr.export import collect
from broker.store import open_store
from broker.store.base import (
    AuditQuery,
    AuditRecord,
    EntityFilter,
    EntityMapRecord,
    InstanceQuery,
    SnapshotRecord,
    Store,
    now_micros,
)
from tests.contract.conftest import Backend
from tests.contract.contract_helpers import STAMP, write_entities
from tests.support.redis_servers import running_redis

AGORA = "https://w3id.org/agora/terms#"
METER_T = "https://smartdatamodels.org/dataModel.Device/SmartMeteringObservation"
CONSUMPTION = "https://smartdatamodels.org/dataModel.Device/totalConsumption"
PIPE_T = "https://example.org/Pipe"
SUBJECT = "urn:ngsi-ld:Person:erasure-subject-90210"
METER = "urn:ngsi-ld:SmartMeteringObservation:meter-90210-x"
OTHER = "urn:ngsi-ld:Pipe:kept-pipe-1"
SECRET_VALUES = (b"73519.0625", b"73520.125")  # the meter's readings, which appear nowhere else


def meter(reading: float) -> dict[str, Any]:
    return {
        "id": METER, "type": [METER_T], "createdAt": STAMP, "modifiedAt": STAMP,
        "attrs": {
            AGORA + "dataSubject": [{"type": "Relationship", "object": SUBJECT}],
            CONSUMPTION: [{"type": "Property", "value": reading, "unitCode": "KWH", "observedAt": STAMP}],
        },
    }  # fmt: skip


def pipe() -> dict[str, Any]:
    return {
        "id": OTHER, "type": [PIPE_T], "createdAt": STAMP, "modifiedAt": STAMP,
        "attrs": {"https://example.org/pressure": [{"type": "Property", "value": 3.5}]},
    }  # fmt: skip


async def fill(store: Store) -> None:
    for reading in (73519.0625, 73520.125):  # two states: two temporal instances, two change events
        await write_entities(store, "", meter(reading), pipe())
    await store.put_entity_map("", EntityMapRecord("urn:map:1", now_micros() + 60_000_000, [METER, OTHER]))
    await store.create_subscription("", "urn:sub:watch", {"id": "urn:sub:watch", "type": "Subscription",
                                    "entities": [{"id": METER, "type": "SmartMeteringObservation"}]})  # fmt: skip
    await store.create_subscription("", "urn:sub:pipes", {"id": "urn:sub:pipes", "type": "Subscription",
                                    "entities": [{"type": "Pipe"}]})  # fmt: skip
    query = {"type": "Query", "entities": [{"id": METER, "type": "SmartMeteringObservation"}]}
    await store.create_snapshot(SnapshotRecord("", "urn:snap:1", "snap-content", None, {"snapshotQueries": [query]}))
    await store.append_audit([
        AuditRecord("2026-12-07T10:00:00.000000Z", "alice", "GET /ngsi-ld/v1/entities/{entityId}", "", 200,
                    "allowed", (METER,)),
        AuditRecord("2026-12-07T10:00:01.000000Z", "alice", "GET /ngsi-ld/v1/entities", "", 200, "allowed"),
    ])  # fmt: skip


def files_of(backend: Backend, store_url: str, request: pytest.FixtureRequest) -> list[Path]:
    """The files that hold the store's bytes, after the server saved them."""
    if backend.name == "sqlite":
        path = Path(store_url.removeprefix("sqlite:///"))
        return [p for p in (path, Path(f"{path}-wal")) if p.exists()]
    if backend.server is None:
        return []
    server = request.getfixturevalue(backend.server)
    nodes = getattr(server, "nodes", [server])
    for node in nodes:
        with node.client() as client:
            client.save()
    return [node.directory / "dump.rdb" for node in nodes]


def traces(files: list[Path]) -> set[bytes]:
    secrets = (SUBJECT.encode(), METER.encode(), b"meter-90210", *SECRET_VALUES)
    return {s for f in files for s in secrets if s in f.read_bytes()}


async def test_erasure_removes_the_subject_everywhere_and_keeps_the_rest(
    store: Store, backend: Backend, store_url: str, request: pytest.FixtureRequest
) -> None:
    await fill(store)
    held = await collect(store, SUBJECT)
    assert held.ids == {METER}
    assert [s.id for s in held.subscriptions] == ["urn:sub:watch"] and len(held.audit) == 1
    if backend.name != "memory":
        assert traces(files_of(backend, store_url, request))  # the check below can see the bytes

    report = await erase(store, SUBJECT, by="dpo@example.org")

    assert (report.entities, report.temporal_entities, report.subscriptions, report.audit_records) == (1, 1, 1, 1)
    assert report.entity_maps == 1 and report.changes >= 2
    kept = await store.get("", [METER, OTHER])
    assert list(kept) == [OTHER] and kept[OTHER]["attrs"] == pipe()["attrs"]
    assert [r.id for r in await store.temporal_entities("", EntityFilter())] == [OTHER]
    assert await store.temporal_instances("", [METER], InstanceQuery()) == {}
    assert all(c.entity_id != METER for c in await store.changes_since(0, 10_000))
    assert any(c.entity_id == OTHER for c in await store.changes_since(0, 10_000))
    assert await store.get_entity_map("", "urn:map:1") is None
    assert [s.id for s in await store.list_subscriptions()] == ["urn:sub:pipes"]
    [snapshot] = await store.list_snapshots()
    assert snapshot.body["snapshotQueries"][0]["entities"][0]["id"] == ERASED_ID and report.snapshots == 1
    audit = await store.read_audit(AuditQuery())
    assert [r.operation.startswith(ERASURE_OPERATION) for r in audit] == [True, False]
    assert audit[0].subject == "dpo@example.org" and METER not in audit[0].operation and not audit[0].entity_ids
    assert (await collect(store, SUBJECT)).ids == frozenset()
    assert traces(files_of(backend, store_url, request)) == set()


async def test_erasure_rewrites_the_redis_append_only_file(tmp_path: Path) -> None:
    """With AOF on, the file holds every command ever run: the erasure has Redis rewrite it (BGREWRITEAOF)."""
    with running_redis(tmp_path / "aof", appendonly=True) as server:
        store = open_store(server.url)
        await store.open()
        try:
            await fill(store)
            aof = [p for p in (server.directory / "appendonlydir").iterdir()]
            assert traces(aof)  # the commands that wrote the meter are in the log
            await erase(store, SUBJECT, by="dpo@example.org")
            with server.client() as client:
                deadline = time.monotonic() + 10
                while _rewriting(client.info("persistence")) and time.monotonic() < deadline:
                    time.sleep(0.02)
                client.save()
            files = [*(server.directory / "appendonlydir").iterdir(), server.directory / "dump.rdb"]
            assert traces(files) == set()
            assert await store.get("", [OTHER])  # the rest is still there
        finally:
            await store.close()


def _rewriting(info: dict[str, Any]) -> bool:
    return bool(info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"])
