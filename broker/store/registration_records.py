"""Context source registrations (clauses 5.9, 5.10, 6.8, 6.9) on every backend: one mixin per backend, mixed into
its Store class, as broker.store.snapshot_records does for snapshots.

A registration is one small JSON document (its members with names and types expanded to IRIs, decision record
0160), kept per (tenant, id). Every change counts a version up in the same atomic step, so that the matcher of
broker.core.registrations, which holds every registration in memory, reads them again only when some process
changed one (`registrations_version`).

The version is also the sequence number of the registration change feed (`registration_changes_since`): each
create, replace and delete appends (seq, tenant, id, before, after, at) in that same atomic step, so that the
notifier of context source subscriptions (broker.notify.csource, clause 5.11.7) never misses a change, even when the
broker is killed right after the write (decision record 0172).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from broker.core.model import now_iso
from broker.store import _common as common
from broker.store.base import RegistrationChange, RegistrationRecord

#: The SQLite tables, created with the rest of the schema (SqliteStore.open): the documents, and the version row
#: each change counts up in its own transaction.
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS csource_registrations (
    tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS csource_registrations_version (k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO csource_registrations_version (k, v) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS csource_registration_changes (
    seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, id TEXT NOT NULL, before BLOB, after BLOB, at TEXT NOT NULL
);
"""


def _copy(record: RegistrationRecord) -> RegistrationRecord:
    return RegistrationRecord(record.tenant, record.id, common.clone(record.body))


class MemoryRegistrations:
    """Registrations in a dict of the process: the memory store's lifetime is the process's."""

    _registration_records: dict[tuple[str, str], RegistrationRecord]
    _registration_version: int
    _registration_changes: list[RegistrationChange]

    def _regs(self) -> dict[tuple[str, str], RegistrationRecord]:
        if not hasattr(self, "_registration_records"):
            self._registration_records = {}
            self._registration_version = 0
            self._registration_changes = []
        return self._registration_records

    def _bump(self, tenant: str, reg_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
        self._registration_version += 1
        kept = None if after is None else common.clone(after)
        change = RegistrationChange(self._registration_version, tenant, reg_id, before, kept, now_iso())
        self._registration_changes.append(change)
        return True

    async def create_registration(self, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        common.dumps(body)  # refuse what a persistent backend could not store
        if (tenant, reg_id) in self._regs():
            return False
        self._regs()[(tenant, reg_id)] = RegistrationRecord(tenant, reg_id, common.clone(body))
        return self._bump(tenant, reg_id, None, body)

    async def replace_registration(self, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        old = self._regs().get((tenant, reg_id))
        if old is None:
            return False
        self._regs()[(tenant, reg_id)] = RegistrationRecord(tenant, reg_id, common.clone(body))
        return self._bump(tenant, reg_id, old.body, body)

    async def get_registration(self, tenant: str, reg_id: str) -> RegistrationRecord | None:
        found = self._regs().get((tenant, reg_id))
        return None if found is None else _copy(found)

    async def list_registrations(self, tenant: str | None = None) -> list[RegistrationRecord]:
        keys = sorted(k for k in self._regs() if tenant is None or k[0] == tenant)
        return [_copy(self._regs()[k]) for k in keys]

    async def delete_registration(self, tenant: str, reg_id: str) -> bool:
        old = self._regs().pop((tenant, reg_id), None)
        return old is not None and self._bump(tenant, reg_id, old.body, None)

    async def registrations_version(self) -> int:
        self._regs()
        return self._registration_version

    async def registration_changes_since(self, seq: int, limit: int = 1000) -> list[RegistrationChange]:
        self._regs()
        return [c for c in self._registration_changes if c.seq > seq][:limit]

    async def trim_registration_changes(self, up_to: int) -> int:
        self._regs()
        kept = [c for c in self._registration_changes if c.seq > up_to]
        removed = len(self._registration_changes) - len(kept)
        self._registration_changes = kept
        return removed


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


_SELECT = "SELECT tenant, id, body FROM csource_registrations"


def _row(row: tuple[Any, ...]) -> RegistrationRecord:
    return RegistrationRecord(row[0], row[1], common.loads(row[2]))


@contextmanager
def changing(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (the connection autocommits otherwise); rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _changed(
    conn: sqlite3.Connection, rows: int, key: tuple[str, str], before: bytes | None, after: bytes | None
) -> bool:
    """Count the version up and append the change under it, in the transaction of the change, when a row changed."""
    if rows > 0:
        conn.execute("UPDATE csource_registrations_version SET v = v + 1 WHERE k = 0")
        conn.execute(
            "INSERT INTO csource_registration_changes (seq, tenant, id, before, after, at)"
            " SELECT v, ?, ?, ?, ?, ? FROM csource_registrations_version WHERE k = 0",
            (*key, before, after, now_iso()),
        )
    return rows > 0


def _old_body(conn: sqlite3.Connection, tenant: str, reg_id: str) -> bytes | None:
    sql = "SELECT body FROM csource_registrations WHERE tenant = ? AND id = ?"
    row = conn.execute(sql, (tenant, reg_id)).fetchone()
    return None if row is None else bytes(row[0])


def _sqlite_change(row: tuple[Any, ...]) -> RegistrationChange:
    before = None if row[3] is None else common.loads(row[3])
    after = None if row[4] is None else common.loads(row[4])
    return RegistrationChange(int(row[0]), row[1], row[2], before, after, row[5])


class SqliteRegistrations:
    """One row per registration; each change and its version step are one transaction."""

    async def create_registration(self: _HasConnection, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        with self._connection() as conn, changing(conn):
            sql = "INSERT OR IGNORE INTO csource_registrations (tenant, id, body) VALUES (?, ?, ?)"
            raw = common.dumps(body)
            return _changed(conn, conn.execute(sql, (tenant, reg_id, raw)).rowcount, (tenant, reg_id), None, raw)

    async def replace_registration(self: _HasConnection, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        with self._connection() as conn, changing(conn):
            sql = "UPDATE csource_registrations SET body = ? WHERE tenant = ? AND id = ?"
            old, raw = _old_body(conn, tenant, reg_id), common.dumps(body)
            return _changed(conn, conn.execute(sql, (raw, tenant, reg_id)).rowcount, (tenant, reg_id), old, raw)

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
        with self._connection() as conn, changing(conn):
            sql = "DELETE FROM csource_registrations WHERE tenant = ? AND id = ?"
            old = _old_body(conn, tenant, reg_id)
            return _changed(conn, conn.execute(sql, (tenant, reg_id)).rowcount, (tenant, reg_id), old, None)

    async def registrations_version(self: _HasConnection) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT v FROM csource_registrations_version WHERE k = 0").fetchone()
        return 0 if row is None else int(row[0])

    async def registration_changes_since(self: _HasConnection, seq: int, limit: int = 1000) -> list[RegistrationChange]:
        sql = "SELECT seq, tenant, id, before, after, at FROM csource_registration_changes WHERE seq > ? ORDER BY seq"
        with self._connection() as conn:
            rows = conn.execute(f"{sql} LIMIT ?", (seq, limit)).fetchall()
        return [_sqlite_change(row) for row in rows]

    async def trim_registration_changes(self: _HasConnection, up_to: int) -> int:
        with self._connection() as conn:
            return int(conn.execute("DELETE FROM csource_registration_changes WHERE seq <= ?", (up_to,)).rowcount)


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


# KEYS[1] the hash of every tenant's registrations, KEYS[2] the version, KEYS[3] the stream of changes (all under
# the global key space: one slot on a cluster). ARGV[1] the field, ARGV[2] the document, ARGV[3] the tenant, ARGV[4]
# the id, ARGV[5] the time. Each script changes the hash, counts the version up and appends the change (stream id
# "<version>-0") only together.
_APPEND = (
    " local v = redis.call('INCR', KEYS[2])"
    " redis.call('XADD', KEYS[3], v .. '-0', 'tenant', ARGV[3], 'id', ARGV[4], 'at', ARGV[5]%s)"
    " return 1 end return 0"
)
_CREATE = "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then" + _APPEND % ", 'after', ARGV[2]"
_REPLACE = (
    "local old = redis.call('HGET', KEYS[1], ARGV[1]) if old then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"
    + _APPEND % ", 'before', old, 'after', ARGV[2]"
)
_DELETE = (
    "local old = redis.call('HGET', KEYS[1], ARGV[1]) if old then redis.call('HDEL', KEYS[1], ARGV[1])"
    + _APPEND % ", 'before', old"
)


def _field(tenant: str, reg_id: str) -> str:
    return f"{tenant}\0{reg_id}"


def _decode(field: str, raw: bytes) -> RegistrationRecord:
    tenant, _, reg_id = field.partition("\0")
    return RegistrationRecord(tenant, reg_id, common.loads(raw))


def _keys(store: _HasRedis) -> tuple[str, str, str]:
    return store._gkey("csregs"), store._gkey("csregs:version"), store._gkey("csregs:changes")


async def _run(store: _HasRedis, script: str, tenant: str, reg_id: str, *body: str | bytes) -> bool:
    args = (_field(tenant, reg_id), *(body or (b"",)), tenant, reg_id, now_iso())
    return bool(await store._redis.eval(script, 3, *_keys(store), *args))


def _stream_change(entry_id: bytes | str, fields: dict[bytes, bytes]) -> RegistrationChange:
    seq = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-", 1)[0])
    before, after = fields.get(b"before"), fields.get(b"after")
    return RegistrationChange(
        seq,
        fields[b"tenant"].decode(),
        fields[b"id"].decode(),
        None if before is None else common.loads(before),
        None if after is None else common.loads(after),
        fields[b"at"].decode(),
    )


class RedisRegistrations:
    """One hash of every tenant's registrations, field tenant NUL id, and a version counter beside it."""

    async def create_registration(self: _HasRedis, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        return await _run(self, _CREATE, tenant, reg_id, common.dumps(body))

    async def replace_registration(self: _HasRedis, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        return await _run(self, _REPLACE, tenant, reg_id, common.dumps(body))

    async def delete_registration(self: _HasRedis, tenant: str, reg_id: str) -> bool:
        return await _run(self, _DELETE, tenant, reg_id)

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

    async def registration_changes_since(self: _HasRedis, seq: int, limit: int = 1000) -> list[RegistrationChange]:
        entries = await self._redis.xrange(_keys(self)[2], f"{seq + 1}-0", "+", count=limit)
        return [_stream_change(entry_id, fields) for entry_id, fields in entries]

    async def trim_registration_changes(self: _HasRedis, up_to: int) -> int:
        return int(await self._redis.xtrim(_keys(self)[2], minid=f"{up_to + 1}-0", approximate=False))


__all__ = ["SQLITE_SCHEMA", "MemoryRegistrations", "RedisRegistrations", "SqliteRegistrations"]
