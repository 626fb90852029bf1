"""API keys of machine clients (issue 18, decision record 0203) on every backend: one mixin per backend, mixed into
its Store class, as broker.store.registration_records does for registrations.

A key is kept as a small JSON document by its key id: its name, the SHA-256 of its secret (never the secret), its
roles and tenants, when it was made and, once revoked, when it was revoked. Revoked keys stay listed: who had
which key is part of the record a security officer keeps.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any, Protocol

from broker.store import _common as common
from broker.store.base import ApiKeyRecord

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
"""


def _encode(record: ApiKeyRecord) -> bytes:
    return common.dumps(asdict(record))


def _decode(raw: bytes) -> ApiKeyRecord:
    doc = common.loads(raw)
    tenants = doc.get("tenants")
    return ApiKeyRecord(
        id=doc["id"],
        name=doc["name"],
        secret_hash=doc["secret_hash"],
        roles=tuple(doc.get("roles", ())),
        tenants=None if tenants is None else tuple(tenants),
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
    )


def _revoked(raw: bytes, at: str) -> bytes | None:
    """The record revoked at `at`, or None when it already was."""
    record = _decode(raw)
    if record.revoked_at is not None:
        return None
    record.revoked_at = at
    return _encode(record)


class MemoryApiKeys:
    _api_keys: dict[str, bytes]

    def _api_key_docs(self) -> dict[str, bytes]:
        if not hasattr(self, "_api_keys"):
            self._api_keys = {}
        return self._api_keys

    async def create_api_key(self, record: ApiKeyRecord) -> bool:
        if record.id in self._api_key_docs():
            return False
        self._api_key_docs()[record.id] = _encode(record)
        return True

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        raw = self._api_key_docs().get(key_id)
        return None if raw is None else _decode(raw)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        return [_decode(self._api_key_docs()[k]) for k in sorted(self._api_key_docs())]

    async def revoke_api_key(self, key_id: str, at: str) -> bool:
        raw = self._api_key_docs().get(key_id)
        changed = None if raw is None else _revoked(raw, at)
        if changed is not None:
            self._api_key_docs()[key_id] = changed
        return changed is not None


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


class SqliteApiKeys:
    async def create_api_key(self: _HasConnection, record: ApiKeyRecord) -> bool:
        with self._connection() as conn:
            sql = "INSERT OR IGNORE INTO api_keys (id, body) VALUES (?, ?)"
            return conn.execute(sql, (record.id, _encode(record))).rowcount > 0

    async def get_api_key(self: _HasConnection, key_id: str) -> ApiKeyRecord | None:
        with self._connection() as conn:
            row = conn.execute("SELECT body FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else _decode(row[0])

    async def list_api_keys(self: _HasConnection) -> list[ApiKeyRecord]:
        with self._connection() as conn:
            rows = conn.execute("SELECT body FROM api_keys ORDER BY id").fetchall()
        return [_decode(row[0]) for row in rows]

    async def revoke_api_key(self: _HasConnection, key_id: str, at: str) -> bool:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT body FROM api_keys WHERE id = ?", (key_id,)).fetchone()
                changed = None if row is None else _revoked(row[0], at)
                if changed is not None:
                    conn.execute("UPDATE api_keys SET body = ? WHERE id = ?", (changed, key_id))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return changed is not None


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


# KEYS[1] the hash of every key; ARGV[1] the key id, ARGV[2] the revoked document. Revocation replaces a document
# only while it is there and not yet revoked (checked by the caller on the document it read: the script makes the
# read and the write one step).
_REVOKE = (
    "local cur = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if cur and cur == ARGV[3] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0"
)


class RedisApiKeys:
    """One hash of every key, field the key id (under the global key space: one slot on a cluster)."""

    async def create_api_key(self: _HasRedis, record: ApiKeyRecord) -> bool:
        return bool(await self._redis.hsetnx(self._gkey("apikeys"), record.id, _encode(record)))

    async def get_api_key(self: _HasRedis, key_id: str) -> ApiKeyRecord | None:
        raw = await self._redis.hget(self._gkey("apikeys"), key_id)
        return None if raw is None else _decode(raw)

    async def list_api_keys(self: _HasRedis) -> list[ApiKeyRecord]:
        found = await self._redis.hgetall(self._gkey("apikeys"))
        return sorted((_decode(raw) for raw in found.values()), key=lambda r: r.id)

    async def revoke_api_key(self: _HasRedis, key_id: str, at: str) -> bool:
        raw = await self._redis.hget(self._gkey("apikeys"), key_id)
        changed = None if raw is None else _revoked(raw, at)
        if changed is None:
            return False
        return bool(await self._redis.eval(_REVOKE, 1, self._gkey("apikeys"), key_id, changed, raw))


__all__ = ["SQLITE_SCHEMA", "MemoryApiKeys", "RedisApiKeys", "SqliteApiKeys"]
