"""Snapshot records (clauses 5.16, 6.36-6.38) on every backend: one mixin per backend, mixed into its Store class.

A record is small (the Snapshot status document, its content tenant and expiry); the captured entities are not
here but in the record's content tenant, written and read through the entity and temporal methods of the store.
Each mixin relies only on what its backend class already has: the process-local dicts of the memory store, the
autocommitting connection of the SQLite store, the client and global key space of the Redis store.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Protocol

from broker.store import _common as common
from broker.store.base import SnapshotRecord

#: The SQLite table, created with the rest of the schema (SqliteStore.open).
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    tenant TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL, expires_at INTEGER, body BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
"""


def _copy(record: SnapshotRecord) -> SnapshotRecord:
    return SnapshotRecord(record.tenant, record.id, record.content, record.expires_at, common.clone(record.body))


class MemorySnapshots:
    """Records in a dict of the process: the memory store's lifetime is the process's."""

    _snapshot_records: dict[tuple[str, str], SnapshotRecord]

    def _records(self) -> dict[tuple[str, str], SnapshotRecord]:
        if not hasattr(self, "_snapshot_records"):
            self._snapshot_records = {}
        return self._snapshot_records

    async def create_snapshot(self, record: SnapshotRecord) -> bool:
        common.dumps(record.body)  # refuse what a persistent backend could not store
        key = (record.tenant, record.id)
        if key in self._records():
            return False
        self._records()[key] = _copy(record)
        return True

    async def get_snapshot(self, tenant: str, snapshot_id: str) -> SnapshotRecord | None:
        found = self._records().get((tenant, snapshot_id))
        return None if found is None else _copy(found)

    async def replace_snapshot(self, record: SnapshotRecord) -> bool:
        key = (record.tenant, record.id)
        if key not in self._records():
            return False
        self._records()[key] = _copy(record)
        return True

    async def list_snapshots(self, tenant: str | None = None) -> list[SnapshotRecord]:
        chosen = [r for (owner, _), r in self._records().items() if tenant is None or owner == tenant]
        return [_copy(r) for r in sorted(chosen, key=lambda r: (r.tenant, r.id))]

    async def delete_snapshot(self, tenant: str, snapshot_id: str) -> bool:
        return self._records().pop((tenant, snapshot_id), None) is not None


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


_SELECT = "SELECT tenant, id, content, expires_at, body FROM snapshots"


def _row(row: tuple[Any, ...]) -> SnapshotRecord:
    return SnapshotRecord(row[0], row[1], row[2], row[3], common.loads(row[4]))


class SqliteSnapshots:
    """One row per record. The connection autocommits, and each method is one statement: atomic as it is."""

    async def create_snapshot(self: _HasConnection, record: SnapshotRecord) -> bool:
        row = (record.tenant, record.id, record.content, record.expires_at, common.dumps(record.body))
        with self._connection() as conn:
            sql = "INSERT OR IGNORE INTO snapshots (tenant, id, content, expires_at, body) VALUES (?, ?, ?, ?, ?)"
            return conn.execute(sql, row).rowcount > 0

    async def get_snapshot(self: _HasConnection, tenant: str, snapshot_id: str) -> SnapshotRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"{_SELECT} WHERE tenant = ? AND id = ?", (tenant, snapshot_id)).fetchone()
        return None if row is None else _row(row)

    async def replace_snapshot(self: _HasConnection, record: SnapshotRecord) -> bool:
        params = (record.content, record.expires_at, common.dumps(record.body), record.tenant, record.id)
        with self._connection() as conn:
            sql = "UPDATE snapshots SET content = ?, expires_at = ?, body = ? WHERE tenant = ? AND id = ?"
            return conn.execute(sql, params).rowcount > 0

    async def list_snapshots(self: _HasConnection, tenant: str | None = None) -> list[SnapshotRecord]:
        with self._connection() as conn:
            if tenant is None:
                rows = conn.execute(f"{_SELECT} ORDER BY tenant, id").fetchall()
            else:
                rows = conn.execute(f"{_SELECT} WHERE tenant = ? ORDER BY id", (tenant,)).fetchall()
        return [_row(row) for row in rows]

    async def delete_snapshot(self: _HasConnection, tenant: str, snapshot_id: str) -> bool:
        with self._connection() as conn:
            return conn.execute("DELETE FROM snapshots WHERE tenant = ? AND id = ?", (tenant, snapshot_id)).rowcount > 0


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


# Replace only what exists: a plain HSET could bring back a record another process deleted meanwhile.
_REPLACE = (
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end"
    " return 0"
)


def _field(tenant: str, snapshot_id: str) -> str:
    return f"{tenant}\0{snapshot_id}"


def _encode(record: SnapshotRecord) -> bytes:
    return common.dumps({"c": record.content, "e": record.expires_at, "b": record.body})


def _decode(field: str, raw: bytes) -> SnapshotRecord:
    tenant, _, snapshot_id = field.partition("\0")
    doc = common.loads(raw)
    return SnapshotRecord(tenant, snapshot_id, doc["c"], doc["e"], doc["b"])


class RedisSnapshots:
    """One hash of every tenant's records under the store's global key space (one slot on a cluster), field
    tenant NUL id: creation is HSETNX, replacement a one-key script, both atomic on a cluster too."""

    async def create_snapshot(self: _HasRedis, record: SnapshotRecord) -> bool:
        key, field = self._gkey("snapshots"), _field(record.tenant, record.id)
        return bool(await self._redis.hsetnx(key, field, _encode(record)))

    async def get_snapshot(self: _HasRedis, tenant: str, snapshot_id: str) -> SnapshotRecord | None:
        field = _field(tenant, snapshot_id)
        raw = await self._redis.hget(self._gkey("snapshots"), field)
        return None if raw is None else _decode(field, raw)

    async def replace_snapshot(self: _HasRedis, record: SnapshotRecord) -> bool:
        key, field = self._gkey("snapshots"), _field(record.tenant, record.id)
        return bool(await self._redis.eval(_REPLACE, 1, key, field, _encode(record)))

    async def list_snapshots(self: _HasRedis, tenant: str | None = None) -> list[SnapshotRecord]:
        found = await self._redis.hgetall(self._gkey("snapshots"))
        records = [_decode(f.decode(), raw) for f, raw in found.items()]
        chosen = [r for r in records if tenant is None or r.tenant == tenant]
        return sorted(chosen, key=lambda r: (r.tenant, r.id))

    async def delete_snapshot(self: _HasRedis, tenant: str, snapshot_id: str) -> bool:
        return bool(await self._redis.hdel(self._gkey("snapshots"), _field(tenant, snapshot_id)))


__all__ = ["SQLITE_SCHEMA", "MemorySnapshots", "RedisSnapshots", "SqliteSnapshots"]
