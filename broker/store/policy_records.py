"""Access policy rules and the audit log (issue 18, decision records 0220, 0224) on every backend: one mixin per
backend, as broker.store.apikey_records does for API keys.

A rule is a small JSON document by its id, with a version counter that steps with every change (so each broker
process recompiles its views only when a rule changed). The audit log is append-only: records are added, read
newest first, and removed only by age (the retention).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from broker.store import _common as common
from broker.store.base import AuditQuery, AuditRecord

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policies_version (k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO policies_version (k, v) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
"""


def _encode(record: AuditRecord) -> bytes:
    return common.dumps(record.to_doc())


def _decode(raw: bytes) -> AuditRecord:
    return AuditRecord.from_doc(common.loads(raw))


def _page(records: Iterable[AuditRecord], query: AuditQuery) -> list[AuditRecord]:
    """The admitted records of `records` (newest first) from the query's offset, at most its limit."""
    out: list[AuditRecord] = []
    skipped = 0
    for record in records:
        if not query.admits(record):
            continue
        if skipped < query.offset:
            skipped += 1
            continue
        out.append(record)
        if len(out) >= query.limit:
            break
    return out


class MemoryPolicies:
    _policy_docs: dict[str, bytes]
    _policy_version: int
    _audit: list[bytes]

    def _policies(self) -> dict[str, bytes]:
        if not hasattr(self, "_policy_docs"):
            self._policy_docs, self._policy_version, self._audit = {}, 0, []
        return self._policy_docs

    async def put_policy(self, doc: dict[str, Any]) -> bool:
        new = doc["id"] not in self._policies()
        self._policies()[doc["id"]] = common.dumps(doc)
        self._policy_version += 1
        return new

    async def delete_policy(self, rule_id: str) -> bool:
        if self._policies().pop(rule_id, None) is None:
            return False
        self._policy_version += 1
        return True

    async def list_policies(self) -> list[dict[str, Any]]:
        return [common.loads(self._policies()[k]) for k in sorted(self._policies())]

    async def policies_version(self) -> int:
        self._policies()
        return self._policy_version

    async def append_audit(self, records: list[AuditRecord]) -> None:
        self._policies()
        self._audit.extend(_encode(r) for r in records)

    async def read_audit(self, query: AuditQuery) -> list[AuditRecord]:
        self._policies()
        return _page((_decode(raw) for raw in reversed(self._audit)), query)

    async def trim_audit(self, before: str) -> int:
        self._policies()
        kept = [raw for raw in self._audit if _decode(raw).at >= before]
        gone = len(self._audit) - len(kept)
        self._audit = kept
        return gone


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


def _step_version(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE policies_version SET v = v + 1 WHERE k = 0")


class SqlitePolicies:
    """One row per rule, the version stepped in the same transaction; the log one row per record."""

    async def put_policy(self: _HasConnection, doc: dict[str, Any]) -> bool:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                new = conn.execute("SELECT 1 FROM policies WHERE id = ?", (doc["id"],)).fetchone() is None
                conn.execute("INSERT OR REPLACE INTO policies (id, body) VALUES (?, ?)", (doc["id"], common.dumps(doc)))
                _step_version(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return new

    async def delete_policy(self: _HasConnection, rule_id: str) -> bool:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                gone = conn.execute("DELETE FROM policies WHERE id = ?", (rule_id,)).rowcount > 0
                if gone:
                    _step_version(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return gone

    async def list_policies(self: _HasConnection) -> list[dict[str, Any]]:
        with self._connection() as conn:
            rows = conn.execute("SELECT body FROM policies ORDER BY id").fetchall()
        return [common.loads(row[0]) for row in rows]

    async def policies_version(self: _HasConnection) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT v FROM policies_version WHERE k = 0").fetchone()
        return 0 if row is None else int(row[0])

    async def append_audit(self: _HasConnection, records: list[AuditRecord]) -> None:
        rows = [(r.at, _encode(r)) for r in records]
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")  # one transaction for the flush, not one commit per record
            try:
                conn.executemany("INSERT INTO audit_log (at, body) VALUES (?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    async def read_audit(self: _HasConnection, query: AuditQuery) -> list[AuditRecord]:
        sql = "SELECT body FROM audit_log WHERE at >= ? AND at < ? ORDER BY seq DESC"
        with self._connection() as conn:
            rows: Iterator[tuple[bytes]] = conn.execute(sql, (query.since or "", query.until or "\uffff"))
            return _page((_decode(row[0]) for row in rows), query)

    async def trim_audit(self: _HasConnection, before: str) -> int:
        with self._connection() as conn:
            return conn.execute("DELETE FROM audit_log WHERE at < ?", (before,)).rowcount


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


# KEYS[1] the hash of every rule, KEYS[2] the version (both in the global key space: one slot on a cluster).
_PUT = "local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('INCR', KEYS[2]) return new"
_DELETE = "if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) return 1 end return 0"
#: Records read from the stream per round trip when a query scans it.
_SCAN = 500


class RedisPolicies:
    """The rules in one hash with a version counter beside it; the log one Redis Stream in append order."""

    async def put_policy(self: _HasRedis, doc: dict[str, Any]) -> bool:
        keys = self._gkey("policies"), self._gkey("policies:version")
        return bool(await self._redis.eval(_PUT, 2, *keys, doc["id"], common.dumps(doc)))

    async def delete_policy(self: _HasRedis, rule_id: str) -> bool:
        keys = self._gkey("policies"), self._gkey("policies:version")
        return bool(await self._redis.eval(_DELETE, 2, *keys, rule_id))

    async def list_policies(self: _HasRedis) -> list[dict[str, Any]]:
        found = await self._redis.hgetall(self._gkey("policies"))
        return [common.loads(found[k]) for k in sorted(found)]

    async def policies_version(self: _HasRedis) -> int:
        return int(await self._redis.get(self._gkey("policies:version")) or 0)

    async def append_audit(self: _HasRedis, records: list[AuditRecord]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for record in records:
            pipe.xadd(self._gkey("audit"), {"r": _encode(record)})
        await pipe.execute()

    async def read_audit(self: _HasRedis, query: AuditQuery) -> list[AuditRecord]:
        return _page([r async for r in _newest_first(self, query)], query)

    async def trim_audit(self: _HasRedis, before: str) -> int:
        """From the oldest entry on, while the records are older than `before` (the log is in append order, and
        flushes append records of about their time)."""
        removed, low = 0, "-"
        while True:
            entries = await self._redis.xrange(self._gkey("audit"), min=low, max="+", count=_SCAN)
            old = [entry_id for entry_id, fields in entries if _decode(fields[b"r"]).at < before]
            if old:
                removed += int(await self._redis.xdel(self._gkey("audit"), *old))
            if len(old) < len(entries) or len(entries) < _SCAN:
                return removed
            low = "(" + entries[-1][0].decode()


async def _newest_first(store: _HasRedis, query: AuditQuery) -> Any:
    """The stream's records newest first, read in rounds, until the query has its page or `since` is passed.
    The stream ids are the Redis server's clock, the records' times the broker's: only the records' times filter."""
    high, wanted, found = "+", query.offset + query.limit, 0
    while True:
        entries = await store._redis.xrevrange(store._gkey("audit"), max=high, min="-", count=_SCAN)
        for _, fields in entries:
            record = _decode(fields[b"r"])
            if query.since is not None and record.at < query.since:
                return
            found += query.admits(record)
            yield record
        if len(entries) < _SCAN or found >= wanted:
            return
        high = "(" + entries[-1][0].decode()


__all__ = ["SQLITE_SCHEMA", "MemoryPolicies", "RedisPolicies", "SqlitePolicies"]
