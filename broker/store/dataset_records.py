"""Open datasets (issue 19, records 0340-0343) on every backend: one mixin per backend, as
broker.store.policy_records does for access policies.

A dataset is what an administrator published: a small JSON document by its id (the entity type and network it
selects, its title, licence, publisher, update frequency). Beside it the store keeps the dataset's *state*, which
the regeneration job writes after each pass (entity count, bounding box, temporal coverage, when it ran): kept
apart so that the job never overwrites an administrator's change to the document, nor the other way round.
Deleting a dataset removes both.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Protocol

from broker.store import _common as common

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (id TEXT PRIMARY KEY, body BLOB NOT NULL, state BLOB) WITHOUT ROWID;
"""


class MemoryDatasets:
    _dataset_docs: dict[str, bytes]
    _dataset_states: dict[str, bytes]

    def _datasets(self) -> dict[str, bytes]:
        if not hasattr(self, "_dataset_docs"):
            self._dataset_docs, self._dataset_states = {}, {}
        return self._dataset_docs

    async def put_dataset(self, doc: dict[str, Any]) -> bool:
        new = doc["id"] not in self._datasets()
        self._datasets()[doc["id"]] = common.dumps(doc)
        return new

    async def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        raw = self._datasets().get(dataset_id)
        return None if raw is None else common.loads(raw)

    async def list_datasets(self) -> list[dict[str, Any]]:
        return [common.loads(self._datasets()[k]) for k in sorted(self._datasets())]

    async def delete_dataset(self, dataset_id: str) -> bool:
        self._datasets()
        self._dataset_states.pop(dataset_id, None)
        return self._datasets().pop(dataset_id, None) is not None

    async def set_dataset_state(self, dataset_id: str, state: dict[str, Any]) -> bool:
        if dataset_id not in self._datasets():
            return False
        self._dataset_states[dataset_id] = common.dumps(state)
        return True

    async def get_dataset_state(self, dataset_id: str) -> dict[str, Any] | None:
        self._datasets()
        raw = self._dataset_states.get(dataset_id)
        return None if raw is None else common.loads(raw)


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


class SqliteDatasets:
    """One row per dataset; each method is one statement on an autocommitting connection: atomic as it is."""

    async def put_dataset(self: _HasConnection, doc: dict[str, Any]) -> bool:
        # An upsert that keeps the state column; the look-up and the write in one transaction.
        sql = "INSERT INTO datasets (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body"
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                new = conn.execute("SELECT 1 FROM datasets WHERE id = ?", (doc["id"],)).fetchone() is None
                conn.execute(sql, (doc["id"], common.dumps(doc)))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return new

    async def get_dataset(self: _HasConnection, dataset_id: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute("SELECT body FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return None if row is None else common.loads(row[0])

    async def list_datasets(self: _HasConnection) -> list[dict[str, Any]]:
        with self._connection() as conn:
            rows = conn.execute("SELECT body FROM datasets ORDER BY id").fetchall()
        return [common.loads(row[0]) for row in rows]

    async def delete_dataset(self: _HasConnection, dataset_id: str) -> bool:
        with self._connection() as conn:
            return conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)).rowcount > 0

    async def set_dataset_state(self: _HasConnection, dataset_id: str, state: dict[str, Any]) -> bool:
        with self._connection() as conn:
            sql = "UPDATE datasets SET state = ? WHERE id = ?"
            return conn.execute(sql, (common.dumps(state), dataset_id)).rowcount > 0

    async def get_dataset_state(self: _HasConnection, dataset_id: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute("SELECT state FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return None if row is None or row[0] is None else common.loads(row[0])


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


# KEYS[1] the documents, KEYS[2] the states (both in the global key space: one slot on a cluster). A state is
# written only beside a document that exists, and a deletion takes both: each a one-step script.
_SET_STATE = (
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1 end"
    " return 0"
)
_DELETE = "redis.call('HDEL', KEYS[2], ARGV[1]) return redis.call('HDEL', KEYS[1], ARGV[1])"


class RedisDatasets:
    """The documents in one hash and the states in another, field the dataset id."""

    async def put_dataset(self: _HasRedis, doc: dict[str, Any]) -> bool:
        return bool(await self._redis.hset(self._gkey("datasets"), doc["id"], common.dumps(doc)))

    async def get_dataset(self: _HasRedis, dataset_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hget(self._gkey("datasets"), dataset_id)
        return None if raw is None else common.loads(raw)

    async def list_datasets(self: _HasRedis) -> list[dict[str, Any]]:
        found = await self._redis.hgetall(self._gkey("datasets"))
        return [common.loads(found[k]) for k in sorted(found)]

    async def delete_dataset(self: _HasRedis, dataset_id: str) -> bool:
        keys = self._gkey("datasets"), self._gkey("datasets:state")
        return bool(await self._redis.eval(_DELETE, 2, *keys, dataset_id))

    async def set_dataset_state(self: _HasRedis, dataset_id: str, state: dict[str, Any]) -> bool:
        keys = self._gkey("datasets"), self._gkey("datasets:state")
        return bool(await self._redis.eval(_SET_STATE, 2, *keys, dataset_id, common.dumps(state)))

    async def get_dataset_state(self: _HasRedis, dataset_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hget(self._gkey("datasets:state"), dataset_id)
        return None if raw is None else common.loads(raw)


__all__ = ["SQLITE_SCHEMA", "MemoryDatasets", "RedisDatasets", "SqliteDatasets"]
