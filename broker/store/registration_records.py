"""Context source registrations (clauses 5.9, 5.10, 6.8, 6.9) on every backend: one mixin per backend, mixed into
its Store class, as broker.store.snapshot_records does for snapshots.

A registration is one small JSON document (its members with names and types expanded to IRIs, decision record
0160), kept per (tenant, id). Every change counts a version up in the same atomic step, so that the matcher of
broker.core.registrations, which holds every registration in memory, reads them again only when some process
changed one (`registrations_version`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from broker.store import _common as common
from broker.store.base import RegistrationRecord

#: The SQLite tables, created with the rest of the schema (SqliteStore.open): the documents, and the version row
#: each change counts up in its own transaction.
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS csource_registrations (
    tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS csource_registrations_version (k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO csource_registrations_version (k, v) VALUES (0, 0);
"""


def _copy(record: RegistrationRecord) -> RegistrationRecord:
    return RegistrationRecord(record.tenant, record.id, common.clone(record.body))


class MemoryRegistrations:
    """Registrations in a dict of the process: the memory store's lifetime is the process's."""

    _registration_records: dict[tuple[str, str], RegistrationRecord]
    _registration_version: int

    def _regs(self) -> dict[tuple[str, str], RegistrationRecord]:
        if not hasattr(self, "_registration_records"):
            self._registration_records = {}
            self._registration_version = 0
        return self._registration_records

    def _bump(self) -> bool:
        self._registration_version += 1
        return True

    async def create_registration(self, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        common.dumps(body)  # refuse what a persistent backend could not store
        if (tenant, reg_id) in self._regs():
            return False
        self._regs()[(tenant, reg_id)] = RegistrationRecord(tenant, reg_id, common.clone(body))
        return self._bump()

    async def replace_registration(self, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        if (tenant, reg_id) not in self._regs():
            return False
        self._regs()[(tenant, reg_id)] = RegistrationRecord(tenant, reg_id, common.clone(body))
        return self._bump()

    async def get_registration(self, tenant: str, reg_id: str) -> RegistrationRecord | None:
        found = self._regs().get((tenant, reg_id))
        return None if found is None else _copy(found)

    async def list_registrations(self, tenant: str | None = None) -> list[RegistrationRecord]:
        keys = sorted(k for k in self._regs() if tenant is None or k[0] == tenant)
        return [_copy(self._regs()[k]) for k in keys]

    async def delete_registration(self, tenant: str, reg_id: str) -> bool:
        return self._regs().pop((tenant, reg_id), None) is not None and self._bump()

    async def registrations_version(self) -> int:
        self._regs()
        return self._registration_version


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


_SELECT = "SELECT tenant, id, body FROM csource_registrations"


def _row(row: tuple[Any, ...]) -> RegistrationRecord:
    return RegistrationRecord(row[0], row[1], common.loads(row[2]))


@contextmanager
def _changing(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (the connection autocommits otherwise); rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _changed(conn: sqlite3.Connection, rows: int) -> bool:
    """Count the version up, in the transaction of the change, when a row changed."""
    if rows > 0:
        conn.execute("UPDATE csource_registrations_version SET v = v + 1 WHERE k = 0")
    return rows > 0


class SqliteRegistrations:
    """One row per registration; each change and its version step are one transaction."""

    async def create_registration(self: _HasConnection, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        with self._connection() as conn, _changing(conn):
            sql = "INSERT OR IGNORE INTO csource_registrations (tenant, id, body) VALUES (?, ?, ?)"
            return _changed(conn, conn.execute(sql, (tenant, reg_id, common.dumps(body))).rowcount)

    async def replace_registration(self: _HasConnection, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        with self._connection() as conn, _changing(conn):
            sql = "UPDATE csource_registrations SET body = ? WHERE tenant = ? AND id = ?"
            return _changed(conn, conn.execute(sql, (common.dumps(body), tenant, reg_id)).rowcount)

    async def get_registration(self: _HasConnection, tenant: str, reg_id: str) -> RegistrationRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"{_SELECT} WHERE tenant = ? AND id = ?", (tenant, reg_id)).fetchone()
        return None if row is None else _row(row)

    async def list_registrations(self: _HasConnection, tenant: str | None = None) -> list[RegistrationRecord]:
        with self._connection() as conn:
            if tenant is None:
                rows = conn.execute(f"{_SELECT} ORDER BY tenant, id").fetchall()
            else:
                rows = conn.execute(f"{_SELECT} WHERE tenant = ? ORDER BY id", (tenant,)).fetchall()
        return [_row(row) for row in rows]

    async def delete_registration(self: _HasConnection, tenant: str, reg_id: str) -> bool:
        with self._connection() as conn, _changing(conn):
            sql = "DELETE FROM csource_registrations WHERE tenant = ? AND id = ?"
            return _changed(conn, conn.execute(sql, (tenant, reg_id)).rowcount)

    async def registrations_version(self: _HasConnection) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT v FROM csource_registrations_version WHERE k = 0").fetchone()
        return 0 if row is None else int(row[0])


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


# KEYS[1] the hash of every tenant's registrations, KEYS[2] the version (both under the global key space: one slot
# on a cluster). ARGV[1] the field, ARGV[2] the document. Each script changes the hash and counts the version up
# only together.
_CREATE = (
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then redis.call('INCR', KEYS[2]) return 1 end return 0"
)
_REPLACE = (
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"
    " redis.call('INCR', KEYS[2]) return 1 end return 0"
)
_DELETE = "if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) return 1 end return 0"


def _field(tenant: str, reg_id: str) -> str:
    return f"{tenant}\0{reg_id}"


def _decode(field: str, raw: bytes) -> RegistrationRecord:
    tenant, _, reg_id = field.partition("\0")
    return RegistrationRecord(tenant, reg_id, common.loads(raw))


def _keys(store: _HasRedis) -> tuple[str, str]:
    return store._gkey("csregs"), store._gkey("csregs:version")


async def _run(store: _HasRedis, script: str, *args: Any) -> bool:
    hash_key, version_key = _keys(store)
    return bool(await store._redis.eval(script, 2, hash_key, version_key, *args))


class RedisRegistrations:
    """One hash of every tenant's registrations, field tenant NUL id, and a version counter beside it."""

    async def create_registration(self: _HasRedis, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        return await _run(self, _CREATE, _field(tenant, reg_id), common.dumps(body))

    async def replace_registration(self: _HasRedis, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        return await _run(self, _REPLACE, _field(tenant, reg_id), common.dumps(body))

    async def delete_registration(self: _HasRedis, tenant: str, reg_id: str) -> bool:
        return await _run(self, _DELETE, _field(tenant, reg_id))

    async def get_registration(self: _HasRedis, tenant: str, reg_id: str) -> RegistrationRecord | None:
        field = _field(tenant, reg_id)
        raw = await self._redis.hget(_keys(self)[0], field)
        return None if raw is None else _decode(field, raw)

    async def list_registrations(self: _HasRedis, tenant: str | None = None) -> list[RegistrationRecord]:
        found = await self._redis.hgetall(_keys(self)[0])
        records = [_decode(f.decode(), raw) for f, raw in found.items()]
        chosen = [r for r in records if tenant is None or r.tenant == tenant]
        return sorted(chosen, key=lambda r: (r.tenant, r.id))

    async def registrations_version(self: _HasRedis) -> int:
        return int(await self._redis.get(_keys(self)[1]) or 0)


__all__ = ["SQLITE_SCHEMA", "MemoryRegistrations", "RedisRegistrations", "SqliteRegistrations"]
