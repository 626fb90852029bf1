"""Store schema versions and forward migrations (record 0241): an older layout is brought up to date at open and
by `agora migrate`, a newer one is refused with a message naming the store and both versions."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from broker.cli import main
from broker.http.app import create_app
from broker.requestid import REQUEST_ID
from broker.settings import Settings
from broker.store import open_store
from broker.store.base import EntityFilter, SchemaTooNew, WritePlan
from broker.store.redis import RedisStore
from broker.store.sqlite import SCHEMA_VERSION
from tests.support.redis_servers import RedisServer

SPEED = "https://uri.etsi.org/ngsi-ld/default-context/speed"
VEHICLE = "https://uri.etsi.org/ngsi-ld/default-context/Vehicle"

# The tables an Agora of before schema versions and query indexes wrote (no attr_numbers, no geo_boxes, changes
# without request_id), as that code created them; the later tables did not exist either.
OLD_LAYOUT = """
CREATE TABLE tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE entities (tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tenant, id));
CREATE TABLE entity_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (tenant, type, id)
) WITHOUT ROWID;
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, entity_id TEXT NOT NULL,
    before BLOB, after BLOB, at TEXT NOT NULL
);
CREATE TABLE contexts (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL, created_at TEXT NOT NULL,
    extra BLOB NOT NULL
);
CREATE TABLE subscriptions (
    tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tenant, id)
);
CREATE TABLE cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
"""


def _entity(eid: str, speed: float) -> dict[str, object]:
    return {
        "id": eid,
        "type": [VEHICLE],
        "attrs": {SPEED: [{"type": "Property", "value": speed, "createdAt": "2026-01-01T00:00:00Z"}]},
        "createdAt": "2026-01-01T00:00:00Z",
        "modifiedAt": "2026-01-01T00:00:00Z",
    }


def _old_store(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_LAYOUT)
        conn.execute("INSERT INTO tenants VALUES ('')")
        for eid, speed in (("urn:ngsi-ld:Vehicle:slow", 10.0), ("urn:ngsi-ld:Vehicle:fast", 90.0)):
            conn.execute("INSERT INTO entities VALUES ('', ?, ?)", (eid, orjson.dumps(_entity(eid, speed))))
            conn.execute("INSERT INTO entity_types VALUES ('', ?, ?)", (VEHICLE, eid))
            conn.execute(
                "INSERT INTO changes (tenant, entity_id, before, after, at) VALUES ('', ?, NULL, ?, ?)",
                (eid, orjson.dumps(_entity(eid, speed)), "2026-01-01T00:00:00Z"),
            )
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (0,)


def test_agora_migrate_brings_an_old_sqlite_file_up_to_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.db"
    _old_store(path)
    assert main(["migrate", "--store", f"sqlite:///{path}"]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 entities" in out and "added changes.request_id" in out
    assert f"schema version 0 -> {SCHEMA_VERSION}" in out
    assert main(["migrate", "--store", f"sqlite:///{path}"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    asyncio.run(_reads_the_migrated_file(path))


async def _reads_the_migrated_file(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        assert await store.stored_schema_version() == SCHEMA_VERSION
        # The range hint reads the query index the migration filled: without it, no entity would be a candidate.
        fast = EntityFilter(types=frozenset({VEHICLE}), attr_ranges=((SPEED, ">", 50.0),))
        assert await store.find_ids("", fast) == ["urn:ngsi-ld:Vehicle:fast"]
        old_changes = await store.changes_since(0)
        assert [c.request_id for c in old_changes] == [None, None]
        token = REQUEST_ID.set("req-1")
        try:
            await store.write("", ["urn:ngsi-ld:Vehicle:slow"], lambda _: WritePlan({"urn:ngsi-ld:Vehicle:slow": None}))
        finally:
            REQUEST_ID.reset(token)
        assert (await store.changes_since(old_changes[-1].seq))[0].request_id == "req-1"
    finally:
        await store.close()


def test_a_newer_sqlite_schema_is_refused_by_migrate_and_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    url = f"sqlite:///{path}"
    assert main(["migrate", "--store", url]) == 1
    err = capsys.readouterr().err
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this Agora's {SCHEMA_VERSION}" in err and str(path) in err
    assert main(["serve", "--store", url, "--port", "0"]) == 1
    assert "newer than this Agora's" in capsys.readouterr().err
    with sqlite3.connect(path) as conn:  # left alone: no table was created in it
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)


async def test_redis_records_its_schema_version_and_refuses_a_newer_one(redis_server: RedisServer) -> None:
    redis_server.flush()
    with redis_server.client() as client:  # a store of before schema versions: data, no version key
        client.sadd("agora:{agora-g}:unrelated", "x")
    store = open_store(redis_server.url)
    assert isinstance(store, RedisStore)
    await store.open()
    assert list(store.migrations_applied) == [f"schema version recorded: {RedisStore.SCHEMA_VERSION}"]
    assert await store.stored_schema_version() == RedisStore.SCHEMA_VERSION
    await store.close()
    with redis_server.client() as client:
        client.set("agora:{agora-g}:schema", RedisStore.SCHEMA_VERSION + 1)
    newer = open_store(redis_server.url)
    with pytest.raises(SchemaTooNew, match=f"newer than this Agora's {RedisStore.SCHEMA_VERSION}"):
        await newer.open()
    await newer.close()
    redis_server.flush()


def test_ready_is_503_while_redis_does_not_answer(tmp_path: Path) -> None:
    from tests.support.redis_servers import running_redis

    with running_redis(tmp_path / "redis") as server:
        app = create_app(Settings(store=server.url + "?timeout=1"))
        with TestClient(app) as client:
            assert client.get("/ready").status_code == 200
            server.kill()
            ready = client.get("/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["status"] == "unavailable" and "does not answer" in ready.json()["detail"]
            assert client.get("/health").status_code == 200
