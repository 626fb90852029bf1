"""What GDPR erasure (art. 17, broker.gdpr, record 0322) needs of each backend beyond deleting entities and their
history: the change events of erased entities removed from the feed, the entity maps that list them deleted, the
audit records that name them removed, and the files compacted so that the deleted bytes leave the disk.

One mixin per backend, as broker.store.policy_records does. Redis streams need care: XDEL only flags an entry as
deleted inside its listpack node, whose bytes then still reach dump.rdb, so a stream that loses entries is
rewritten whole (DEL, then the kept entries added again with their ids) by one script.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from redis.exceptions import ResponseError

from broker.store import _common as common
from broker.store.base import Change, EntityMapRecord

_SCAN = 1000

# Rewrite a stream without the entries ARGV names, keeping the ids of the others and the stream's last id (the
# feed's numbering and the shard pointers stay valid). An emptied stream keeps its last id through an entry
# trimmed at once (MAXLEN 0).
_REWRITE_STREAM = """
local drop = {}
for i = 1, #ARGV do drop[ARGV[i]] = true end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last = nil
for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
redis.call('DEL', KEYS[1])
local kept, gone = 0, 0
for _, entry in ipairs(entries) do
  if drop[entry[1]] then gone = gone + 1 else
    redis.call('XADD', KEYS[1], entry[1], unpack(entry[2]))
    kept = kept + 1
  end
end
if kept == 0 then redis.call('XADD', KEYS[1], 'MAXLEN', '0', last, 'x', '') else redis.call('XSETID', KEYS[1], last) end
return gone
"""


def _names_any(doc_ids: list[str], ids: frozenset[str]) -> bool:
    return not ids.isdisjoint(doc_ids)


def audit_names_any(raw: bytes, ids: frozenset[str]) -> bool:
    """Whether an audit record names one of `ids`: among its entity ids, or as a segment of its operation's path
    (``GET /ngsi-ld/v1/entities/urn:x/attrs/a``)."""
    doc = common.loads(raw)
    segments = str(doc.get("operation", "")).partition(" ")[2].split("/")
    return _names_any(doc.get("entityIds", []), ids) or _names_any(segments, ids)


# -- memory -----------------------------------------------------------------------------------------------------
class MemoryErasure:
    _changes: list[Change]
    _entity_maps: dict[tuple[str, str], EntityMapRecord]
    _audit: list[bytes]

    async def erase_changes(self, tenant: str, ids: frozenset[str]) -> int:
        kept = [c for c in self._changes if c.tenant != tenant or c.entity_id not in ids]
        gone = len(self._changes) - len(kept)
        self._changes[:] = kept
        return gone

    async def erase_entity_maps(self, tenant: str, ids: frozenset[str]) -> int:
        hit = [key for key, rec in self._entity_maps.items() if key[0] == tenant and _names_any(rec.ids, ids)]
        for key in hit:
            del self._entity_maps[key]
        return len(hit)

    async def erase_audit(self, ids: frozenset[str]) -> int:
        audit = getattr(self, "_audit", [])
        kept = [raw for raw in audit if not audit_names_any(raw, ids)]
        gone = len(audit) - len(kept)
        if gone:
            self._audit = kept
        return gone

    async def compact(self) -> None:
        """Nothing reaches a disk."""


# -- SQLite -----------------------------------------------------------------------------------------------------
class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


def _in_list(ids: frozenset[str]) -> str:
    return common.dumps(sorted(ids)).decode()


class SqliteErasure:
    async def erase_changes(self: _HasConnection, tenant: str, ids: frozenset[str]) -> int:
        sql = "DELETE FROM changes WHERE tenant = ? AND entity_id IN (SELECT value FROM json_each(?))"
        with self._connection() as conn, _transaction(conn):
            return int(conn.execute(sql, (tenant, _in_list(ids))).rowcount)

    async def erase_entity_maps(self: _HasConnection, tenant: str, ids: frozenset[str]) -> int:
        hit = (
            "SELECT DISTINCT map_id FROM entity_map_ids WHERE tenant = ? AND entity_id IN "
            "(SELECT value FROM json_each(?))"
        )
        with self._connection() as conn, _transaction(conn):
            maps = [row[0] for row in conn.execute(hit, (tenant, _in_list(ids)))]
            for map_id in maps:
                conn.execute("DELETE FROM entity_map_ids WHERE tenant = ? AND map_id = ?", (tenant, map_id))
                conn.execute("DELETE FROM entity_maps WHERE tenant = ? AND id = ?", (tenant, map_id))
        return len(maps)

    async def erase_audit(self: _HasConnection, ids: frozenset[str]) -> int:
        # instr() finds the candidates (an id is in the record's bytes), the decoded record decides.
        find = "SELECT seq, body FROM audit_log WHERE instr(CAST(body AS TEXT), ?) > 0"
        with self._connection() as conn, _transaction(conn):
            candidates = {seq: body for eid in ids for seq, body in conn.execute(find, (eid,))}
            drop = [(seq,) for seq, body in candidates.items() if audit_names_any(body, ids)]
            conn.executemany("DELETE FROM audit_log WHERE seq = ?", drop)
        return len(drop)

    async def compact(self: _HasConnection) -> None:
        """VACUUM rewrites the file without the freed pages; the WAL, which still holds the pages as they were
        before the deletes, is checkpointed and truncated to zero bytes before and after."""
        with self._connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if busy:
                raise sqlite3.OperationalError("the WAL could not be truncated: another connection reads it")


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


# -- Redis ------------------------------------------------------------------------------------------------------
class _HasRedis(Protocol):
    prefix: str
    tags: list[str]

    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...

    def _key(self, shard: int, kind: str, tenant: str = "", name: str | None = None) -> str: ...

    async def _move_events(self) -> None: ...


async def _entries(store: _HasRedis, key: str) -> AsyncIterator[tuple[bytes, dict[bytes, bytes]]]:
    low = "-"
    while True:
        entries = await store._redis.xrange(key, min=low, max="+", count=_SCAN)
        for entry in entries:
            yield entry
        if len(entries) < _SCAN:
            return
        low = "(" + entries[-1][0].decode()


async def _rewrite(store: _HasRedis, key: str, drop: list[bytes]) -> int:
    if not drop:
        return 0
    return int(await store._redis.eval(_REWRITE_STREAM, 1, key, *drop))


def _is_change_of(fields: dict[bytes, bytes], tenant: bytes, ids: frozenset[bytes]) -> bool:
    return fields.get(b"t") == tenant and fields.get(b"e") in ids


class RedisErasure:
    async def erase_changes(self: _HasRedis, tenant: str, ids: frozenset[str]) -> int:
        await self._move_events()  # a cluster's shard streams keep the last moved event: cleaned below too
        wanted, name = frozenset(i.encode() for i in ids), tenant.encode()
        keys = [self._gkey("changes"), *(self._key(s, "feed") for s in range(len(self.tags)))]
        counts = []
        for key in keys:
            drop = [entry_id async for entry_id, fields in _entries(self, key) if _is_change_of(fields, name, wanted)]
            counts.append(await _rewrite(self, key, drop))
        return counts[0]  # the shard streams only held copies of moved events

    async def erase_entity_maps(self: _HasRedis, tenant: str, ids: frozenset[str]) -> int:
        """A map's keys carry their own hash tag made from a digest of tenant and map id (broker.store.redis
        _map_keys), found by SCAN on every node; the tenant cannot be read back from the digest, so a map listing
        one of the ids is deleted in whatever tenant: maps expire anyway, and a client asks its query again."""
        del tenant
        gone = 0
        async for key in _scan(self, f"{self.prefix}:{{{self.prefix}-m-*}}:emapids"):
            members = {m.decode() for m in await self._redis.lrange(key, 0, -1)}
            if not ids.isdisjoint(members):
                gone += int(await self._redis.delete(key[: -len(b"emapids")] + b"emap", key) > 0)
        return gone

    async def erase_audit(self: _HasRedis, ids: frozenset[str]) -> int:
        key = self._gkey("audit")
        drop = [
            entry_id
            async for entry_id, fields in _entries(self, key)
            if audit_names_any(fields[b"r"], ids)
        ]
        return await _rewrite(self, key, drop)

    async def compact(self: _HasRedis) -> None:
        """Rewrite the append-only file where AOF is on (it holds every command ever run, deleted values too);
        the RDB snapshot is the dataset as it is, so the next save has no trace."""
        for node in _primaries(self._redis):
            reply = await _on(self._redis, node, "CONFIG", "GET", "appendonly")
            values = list(reply.values()) if isinstance(reply, dict) else list(reply)[1::2]
            if any(v in (b"yes", "yes") for v in values):
                await _rewrite_aof(self._redis, node)


async def _rewrite_aof(client: Any, node: Any, patience: float = 60.0) -> None:
    """BGREWRITEAOF; a rewrite already running started before the erasure (it may copy what was just erased), so
    the next one is asked once it is done."""
    deadline = time.monotonic() + patience
    while True:
        try:
            await _on(client, node, "BGREWRITEAOF")
            return
        except ResponseError as exc:
            if "already in progress" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _scan(store: _HasRedis, pattern: str) -> AsyncIterator[bytes]:
    async for key in store._redis.scan_iter(match=pattern, count=_SCAN):
        yield key if isinstance(key, bytes) else str(key).encode()


def _primaries(client: Any) -> Iterator[Any]:
    getter = getattr(client, "get_primaries", None)
    yield from (getter() if getter is not None else [None])


async def _on(client: Any, node: Any, *command: Any) -> Any:
    if node is None:
        return await client.execute_command(*command)
    return await client.execute_command(*command, target_nodes=node)


__all__ = ["MemoryErasure", "RedisErasure", "SqliteErasure"]
