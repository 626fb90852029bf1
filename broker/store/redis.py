"""RedisStore: the shared backend, on one Redis server (redis://, rediss://) or a Redis Cluster (redis+cluster://,
rediss+cluster://), through redis-py's asyncio client with hiredis. Several broker processes and hosts share one
store.

Key design (decision record 0040): the data is split into `shards` (16 on a cluster, 1 on one server by default).
An entity lives in the shard its (tenant, id) hashes to; every key of a shard carries the same hash tag, chosen so
that the shards' slots spread evenly over the cluster, so a shard's keys can be written by one Lua script:

    {prefix}:{tag}:e:<tenant>             hash  id -> entity (canonical expanded form, orjson)
    {prefix}:{tag}:v:<tenant>             hash  id -> version of the entity (the id of its latest change event)
    {prefix}:{tag}:ids:<tenant>           zset  ids (score 0: lexicographic = code-point order)
    {prefix}:{tag}:t:<tenant>\\0<type>      zset  ids of that type
    {prefix}:{tag}:n:<tenant>\\0<attr>      zset  id\\0value scored by each number of a top-level attribute
    {prefix}:{tag}:g:<tenant>\\0<attr>      zset  id\\0box scored by the box's west edge (min longitude)
    {prefix}:{tag}:gp:<tenant>\\0<attr>     geo   id\\0point of each GeoProperty point (GEOSEARCH)
    {prefix}:{tag}:tenants                set   tenants with something written in this shard
    {prefix}:{tag}:feed                   stream the shard's change events (cluster only), appended by the write
    {prefix}:{tag}:lock:<tenant>\\0<id>     string a multi-shard writer's lock on one entity
    {prefix}:{tag}:th/tv:<tenant>         hash  temporal entity records / history versions by id
    {prefix}:{tag}:ti:<tenant>\\0<id>       list  the entity's temporal instances in recording order
    {prefix}:{tag}:tr:<tenant>            hash  id -> the order of its instance list, as retention knows it

A write of entities of one shard is optimistic: read, run the plan, then one script checks that every entity is
still at the version read (and not locked), writes the entities, their index entries and their change events, or
does nothing (the plan then runs again). A write over several shards (batch operations, which NGSI-LD does not
require to be atomic across entities) first locks its entities shard by shard, then commits each shard atomically.

The global change feed with its integer sequence numbers lives under one more hash tag, with the cursors, the
contexts (and their change stream, which keeps every process's @context cache coherent), the subscriptions,
the leases and the schema version (`schema`, record 0241). On a cluster, `changes_since` first moves the shards'
new events into it (a check-and-set script per move, so concurrent readers never assign two numbers to one event),
then reads it; on one server the write's own script numbers its events and appends them to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import math
import os
import random
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, TypeVar

from redis import exceptions as rx
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from broker.background import stop_tasks
from broker.core.errors import ResourceNotFound
from broker.core.model import Entity, now_iso
from broker.requestid import REQUEST_ID
from broker.store import _common as common
from broker.store.apikey_records import RedisApiKeys
from broker.store.base import (
    ALL_DATASETS,
    DEFAULT_TENANT,
    Box,
    Change,
    ContextRecord,
    Delivery,
    EntityFilter,
    EntityMapRecord,
    InstanceQuery,
    SchemaTooNew,
    Store,
    SubscriptionRecord,
    TemporalEntityRecord,
    TemporalHistory,
    TemporalInstance,
    WriteFn,
    WritePlan,
    now_micros,
)
from broker.store.csource_records import RedisCsourceSubscriptions
from broker.store.dataset_records import RedisDatasets
from broker.store.erasure_records import RedisErasure
from broker.store.policy_records import RedisPolicies
from broker.store.redis_client import (
    Batcher,
    RedisUrl,
    cluster_client,
    parse_url,
    server_client,
)
from broker.store.registration_records import RedisRegistrations
from broker.store.snapshot_records import RedisSnapshots
from broker.temporal import history

T = TypeVar("T")
U = TypeVar("U")
log = logging.getLogger("agora.store.redis")

SLOTS = 16384
LOCK_MS = 30_000  # a multi-shard writer's locks expire after this, should its process die holding them
LEASE_MS = 5_000  # a leader that stops renewing (killed, hung) is replaced after this
_RELEASE_TIMEOUT = 1.0  # seconds that the leases of a closing store get, in all, to be released
MAX_ATTEMPTS = 1000
PUMP_BATCH = 1000
SELECTIVE_RANGE = 2000  # a numeric range hint matching at most this many values is read from its index
SCAN_PAGE = 500  # fields per HSCAN call when a listing walks a hash
SCATTERED_REMOVALS = 64  # instances a history edit removes one by one before it rewrites the list instead
RETAIN_PAGE = 128  # instances retention by age reads first from a list's head; each next page is twice as long
RETAIN_PAGE_MAX = 8192

# Check preconditions, then run a list of commands, all in one script: Redis runs it atomically. Every key is
# passed in KEYS (Redis Cluster routes the script by them; they share one hash slot).
#   ARGV: mark, mark key index or 0, mark field, ncheck, (kind, key index, field, [expected])*,
#         nop, (command, key index, nargs, args...)*
#   mark: '' or a token unique to this write; ENTITY ops then end the versions they set with '/' .. mark, and a
#         failed check returns 2 when the hash field (mark key, mark field) already ends so: the script was resent
#         after its first run wrote and its reply was lost (decision record 0083).
#   kinds: eq (hash field equals the expected value), nil (field absent), has (field present),
#          free (string key absent or holding the expected token)
#   XADDSEQ stream (counter key index, fields...): XADD with the id <INCR counter>-0 (the numbered change feed)
#   ENTITY entities (versions key index, feed key index, counter key index or 0, id, body or '', event fields...):
#     one entity's write and its change event. The event gets the body as field 'a'; its id is the entity's new
#     version: <INCR counter>-0 when a counter is given (one server: the numbered global feed), else the id XADD
#     gives in the shard's feed. The body crosses into Lua once and is stored twice (Lua strings cost Redis about
#     a nanosecond per byte each way, the bulk of a write's cost).
# Returns 1 when it wrote, 0 when a precondition failed (nothing written), 2 when this very write was applied before.
_APPLY = """
local mark, mark_key, mark_field = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local function refused()
  if mark ~= '' and mark_key > 0 then
    local version = redis.call('HGET', KEYS[mark_key], mark_field)
    if version and string.sub(version, -#mark - 1) == '/' .. mark then return 2 end
  end
  return 0
end
local i = 4
local nchecks = tonumber(ARGV[i]); i = i + 1
for _ = 1, nchecks do
  local kind, key, field = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]
  i = i + 3
  if kind == 'eq' then
    if redis.call('HGET', key, field) ~= ARGV[i] then return refused() end
    i = i + 1
  elseif kind == 'nil' then
    if redis.call('HEXISTS', key, field) == 1 then return refused() end
  elseif kind == 'has' then
    if redis.call('HEXISTS', key, field) == 0 then return refused() end
  elseif kind == 'free' then
    local holder = redis.call('GET', key)
    if holder and holder ~= field then return refused() end
  end
end
local nops = tonumber(ARGV[i]); i = i + 1
for _ = 1, nops do
  local command, key, n = ARGV[i], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
  i = i + 3
  if command == 'XADDSEQ' then
    local seq = redis.call('INCR', KEYS[tonumber(ARGV[i])])
    redis.call('XADD', key, seq .. '-0', unpack(ARGV, i + 1, i + n - 1))
  elseif command == 'ENTITY' then
    local versions, feed, counter = KEYS[tonumber(ARGV[i])], KEYS[tonumber(ARGV[i + 1])], tonumber(ARGV[i + 2])
    local id, body, version = ARGV[i + 3], ARGV[i + 4], '*'
    if counter > 0 then version = redis.call('INCR', KEYS[counter]) .. '-0' end
    version = redis.call('XADD', feed, version, 'a', body, unpack(ARGV, i + 5, i + n - 1))
    if body == '' then
      redis.call('HDEL', key, id)
      redis.call('HDEL', versions, id)
    else
      redis.call('HSET', key, id, body)
      if mark ~= '' then version = version .. '/' .. mark end
      redis.call('HSET', versions, id, version)
    end
  else
    redis.call(command, key, unpack(ARGV, i, i + n - 1))
  end
  i = i + n
end
return 1
"""

# Move shard events into the global feed: KEYS = changes stream, seq counter, moved-pointer hash.
#   ARGV: nshards, (shard, expected moved id, new moved id)*, nevents, (tenant, id, before, after, at, request id)*
#   before/after are "" for None (an entity body is never empty), the request id "" for none. Returns the last
#   seq, or -1 when another reader moved some of these events first (nothing written).
_PUMP = """
local n = tonumber(ARGV[1])
local i = 2
for _ = 1, n do
  local moved = redis.call('HGET', KEYS[3], ARGV[i]) or '0-0'
  if moved ~= ARGV[i + 1] then return -1 end
  i = i + 3
end
i = 2
for _ = 1, n do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
  i = i + 3
end
local count = tonumber(ARGV[i]); i = i + 1
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
for _ = 1, count do
  seq = seq + 1
  redis.call('XADD', KEYS[1], seq .. '-0', 't', ARGV[i], 'e', ARGV[i + 1], 'b', ARGV[i + 2], 'a', ARGV[i + 3],
             'at', ARGV[i + 4], 'r', ARGV[i + 5])
  i = i + 6
end
redis.call('SET', KEYS[2], seq)
return seq
"""

# Lease: KEYS = lease key; ARGV = token, ms. Take it when free, renew it when held; 1 when held after the call.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RANGE_BOUNDS = {
    "<": ("-inf", "{}"),
    "<=": ("-inf", "{}"),
    ">": ("{}", "+inf"),
    ">=": ("{}", "+inf"),
    "==": ("{}", "{}"),
}


def shard_tags(prefix: str, shards: int) -> list[str]:
    """A hash tag per shard whose slot lies in the shard's equal part of the slot range, so that however the
    cluster assigns contiguous slot ranges to its masters, the shards spread evenly over them."""
    tags = []
    for shard in range(shards):
        low, high = shard * SLOTS // shards, (shard + 1) * SLOTS // shards
        for n in itertools.count():
            tag = f"{prefix}-{shard}-{n}"
            if low <= key_slot(tag.encode()) < high:
                tags.append(tag)
                break
    return tags


class _Keys:
    """The KEYS of one script call: each distinct key once, referred to by its 1-based index."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            self.keys.append(key)
            index = self._index[key] = len(self.keys)
        return index


class _Script:
    """Checks and commands for one `_APPLY` call."""

    def __init__(self) -> None:
        self.keys = _Keys()
        self.mark: tuple[str, int, str] = ("", 0, "")  # (token, versions key index, entity id): see _APPLY
        self.checks: list[Any] = []
        self.ncheck = 0
        self.ops: list[Any] = []
        self.nop = 0

    def check(self, kind: str, key: str, field: str | bytes, expected: bytes | None = None) -> None:
        self.checks += [kind, self.keys(key), field]
        if kind == "eq":
            self.checks.append(expected)
        self.ncheck += 1

    def op(self, command: str, key: str, *args: Any) -> None:
        self.ops += [command, self.keys(key), len(args), *args]
        self.nop += 1

    def argv(self) -> list[Any]:
        return [*self.mark, self.ncheck, *self.checks, self.nop, *self.ops]


#: One change event of a write: (shard, entity id, new body or None, new entity or None, position in the write).
Event = tuple[int, str, bytes | None, Entity | None, int]


@dataclass
class _Read:
    """What a write read before planning, by entity id: bodies, their versions, temporal entity records."""

    bodies: dict[str, bytes]
    versions: dict[str, bytes]
    heads: dict[str, bytes]


class Conflict(Exception):
    """An optimistic write found its entities changed, or a multi-shard writer lost a lock: try again."""


class RedisStore(
    RedisErasure,
    RedisApiKeys,
    RedisCsourceSubscriptions,
    RedisDatasets,
    RedisPolicies,
    RedisRegistrations,
    RedisSnapshots,
    Store,
):
    capabilities: ClassVar[frozenset[str]] = frozenset({"shared"})
    unavailable_errors = (rx.ConnectionError, rx.TimeoutError, rx.ClusterDownError, rx.SlotNotCoveredError)  # 0047

    def __init__(self, config: RedisUrl) -> None:
        self.config = config
        self.prefix = config.prefix
        self.tags = shard_tags(config.prefix, config.shards)
        self._global = f"{config.prefix}:{{{config.prefix}-g}}"
        self._r: Any = None
        self._apply: Any = None
        self._batch: Batcher | None = None  # one server only: a cluster client routes each command by its keys
        self._pump: Any = None
        self._lease: Any = None
        self._release: Any = None
        self._known_tenants: set[str] = {DEFAULT_TENANT}
        # (tenant, shard) pairs this process saw recorded in the shard's tenants set: tenants are never deleted, so
        # a write need not add them again (a command less in every write's script).
        self._recorded: set[tuple[str, int]] = set()
        self._origin = uuid.uuid4().hex[:12]  # orders this process's events among those of one timestamp
        self._counter = itertools.count()
        self._leads: dict[str, str] = {}  # lease name -> our token
        self._renewer: asyncio.Task[None] | None = None
        # Subscription documents are written one at a time per process, in call order: calls running on several
        # pooled connections could otherwise reach Redis in another order than they were made.
        self._sub_lock = asyncio.Lock()
        self._context_watchers: list[Callable[[str, str], None]] = []
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(parse_url(url))

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._r is not None:
            return
        if self.config.cluster:
            self._r = cluster_client(self.config)
        else:
            self._r = server_client(self.config)
            self._batch = Batcher(self._r)
        await self._migrate()
        self._apply = self._r.register_script(_APPLY)
        self._pump = self._r.register_script(_PUMP)
        self._lease = self._r.register_script(_LEASE)
        self._release = self._r.register_script(_RELEASE)

    async def _migrate(self) -> None:
        """Record the schema version in a store that has none (record 0241): version 1 is the layout of every
        Redis store so far (the request id of change events is an optional field), so there is nothing to rewrite;
        a newer version is refused."""
        key = self._gkey("schema")
        if await self._redis.set(key, self.SCHEMA_VERSION, nx=True):
            self.migrations_applied = [f"schema version recorded: {self.SCHEMA_VERSION}"]
        version = await self.stored_schema_version()
        if version > self.SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the Redis store at {self.config.prefix}: has schema version {version}, newer than this Agora's "
                f"{self.SCHEMA_VERSION}: it was written by a newer Agora; run that version"
            )

    async def stored_schema_version(self) -> int:
        value = await self._redis.get(self._gkey("schema"))
        return 0 if value is None else int(value)

    async def close(self) -> None:
        if self._r is None:
            return
        await stop_tasks([self._renewer, self._watcher])
        self._renewer = self._watcher = None
        # A lease we cannot release expires on its own: a Redis that does not answer must not hold the stop for the
        # client's retries of every lease (16 s with five leases), so the releases get one second in all.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._release_leads(), timeout=_RELEASE_TIMEOUT)
        self._leads.clear()
        if self._batch is not None:
            await self._batch.close()
            self._batch = None
        client, self._r = self._r, None
        await client.aclose()

    async def _release_leads(self) -> None:
        for name, token in list(self._leads.items()):
            with contextlib.suppress(Exception):
                await self._release(keys=[self._lease_key(name)], args=[token])

    @property
    def _redis(self) -> Any:
        if self._r is None:
            raise RuntimeError("RedisStore is not open (await store.open() first)")
        return self._r

    # -- keys ------------------------------------------------------------------------------------------------
    def shard_of(self, tenant: str, eid: str) -> int:
        if len(self.tags) == 1:
            return 0
        return zlib.crc32(f"{tenant}\0{eid}".encode()) % len(self.tags)

    def _key(self, shard: int, kind: str, tenant: str = "", name: str | None = None) -> str:
        base = f"{self.prefix}:{{{self.tags[shard]}}}:{kind}"
        if kind in ("tenants", "feed"):
            return base
        return f"{base}:{tenant}" if name is None else f"{base}:{tenant}\0{name}"

    def _gkey(self, kind: str) -> str:
        return f"{self._global}:{kind}"

    def _lease_key(self, name: str) -> str:
        return self._gkey(f"lead:{name}")

    def _by_shard(self, tenant: str, ids: Iterable[str]) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = {}
        for eid in ids:
            grouped.setdefault(self.shard_of(tenant, eid), []).append(eid)
        return grouped

    # -- tenants ---------------------------------------------------------------------------------------------
    async def tenant_exists(self, tenant: str) -> bool:
        if tenant in self._known_tenants:
            return True  # tenants are never deleted
        r = self._redis
        found = await asyncio.gather(*(r.sismember(self._key(s, "tenants"), tenant) for s in range(len(self.tags))))
        if any(found):
            self._known_tenants.add(tenant)
            return True
        return False

    async def list_tenants(self) -> list[str]:
        r = self._redis
        members = await asyncio.gather(*(r.smembers(self._key(s, "tenants")) for s in range(len(self.tags))))
        names = {DEFAULT_TENANT} | {m.decode() for group in members for m in group}
        return sorted(names)

    # -- commands on the hot paths: batched on one server (Batcher) --------------------------------------------
    def _hmget(self, key: str, fields: list[str]) -> Awaitable[list[bytes | None]]:
        if self._batch is not None:
            return self._batch.call("HMGET", key, *fields)
        return self._redis.hmget(key, fields)  # type: ignore[no-any-return]

    async def _run(self, script: _Script) -> Any:
        """Run an `_APPLY` script. A Redis that lost its scripts (restarted without them) gets it loaded again."""
        keys, args = script.keys.keys, script.argv()
        if self._batch is not None:
            with contextlib.suppress(NoScriptError):
                return await self._batch.call("EVALSHA", self._apply.sha, len(keys), *keys, *args)
        return await self._apply(keys=keys, args=args)

    # -- entities --------------------------------------------------------------------------------------------
    async def _read_raw(self, tenant: str, ids: Sequence[str], kind: str = "e") -> dict[str, bytes]:
        groups = list(self._by_shard(tenant, ids).items())
        if len(groups) == 1:  # no gather: it would wrap the one call in a task
            replies = [await self._hmget(self._key(groups[0][0], kind, tenant), groups[0][1])]
        else:
            replies = await asyncio.gather(*(self._hmget(self._key(s, kind, tenant), group) for s, group in groups))
        return {
            eid: body
            for (_, group), bodies in zip(groups, replies, strict=True)
            for eid, body in zip(group, bodies, strict=True)
            if body is not None
        }

    async def _read_for_write(self, tenant: str, ids: Sequence[str]) -> _Read:
        """The entities of `ids` with their versions, and when writes record history their temporal records."""
        read = _Read({}, {}, {})
        if not ids:
            return read
        groups = list(self._by_shard(tenant, ids).items())
        if len(groups) == 1:
            replies = [await self._read_shard(tenant, groups[0][0], groups[0][1])]
        else:
            replies = await asyncio.gather(*(self._read_shard(tenant, s, group) for s, group in groups))
        for (_, group), columns in zip(groups, replies, strict=True):
            for target, column in zip((read.versions, read.bodies, read.heads), columns, strict=False):
                target.update((eid, value) for eid, value in zip(group, column, strict=True) if value is not None)
        return read

    async def _read_shard(self, tenant: str, shard: int, ids: list[str]) -> list[list[Any]]:
        """The versions, bodies (and temporal records) of one shard's ids, in one round trip. The versions are read
        first: a write landing between two of these reads leaves a version older than the body, which the commit's
        check then refuses, never a body older than its version."""
        kinds = ("v", "e", "th") if self.history.record else ("v", "e")
        if self._batch is not None:  # one batch, one connection: Redis runs them in this order
            return list(await asyncio.gather(*(self._hmget(self._key(shard, k, tenant), ids) for k in kinds)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for kind in kinds:
                pipe.hmget(self._key(shard, kind, tenant), ids)
            return list(await pipe.execute())

    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, Entity]:
        id_list = common.unique_ids(ids)
        raw = await self._read_raw(tenant, id_list) if id_list else {}
        return {eid: common.loads(raw[eid]) for eid in id_list if eid in raw}

    async def write(self, tenant: str, ids: Iterable[str], fn: WriteFn[T], *, create_tenant: bool = False) -> T | None:
        id_list = common.unique_ids(ids)
        if not create_tenant and not await self.tenant_exists(tenant):
            raise common.nonexistent_tenant(tenant)
        shards = self._by_shard(tenant, id_list)
        for attempt in range(MAX_ATTEMPTS):
            try:
                if len(shards) <= 1:
                    return await self._write_optimistic(tenant, id_list, fn)
                return await self._write_locked(tenant, id_list, shards, fn)
            except Conflict:
                # Spread the retries of writers that collided, so that they do not collide again.
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
        raise RuntimeError(f"write to {id_list[:3]} kept conflicting after {MAX_ATTEMPTS} attempts")

    async def _write_optimistic(self, tenant: str, ids: list[str], fn: WriteFn[T]) -> T | None:
        read = await self._read_for_write(tenant, ids)
        plan, events = self._plan(tenant, ids, read.bodies, fn)
        if events:
            script = self._commit_script(tenant, events, read, token="", stamp=self._stamp())
            if not await self._run(script):
                raise Conflict()
            self._tenant_recorded(tenant, events[0][0])
        return plan.result

    async def _write_locked(
        self, tenant: str, ids: list[str], shards: dict[int, list[str]], fn: WriteFn[T]
    ) -> T | None:
        token = uuid.uuid4().hex
        locked: list[int] = []
        try:
            for shard in sorted(shards):  # one order for every writer, so two of them never wait for each other
                script = _Script()
                for eid in shards[shard]:
                    key = self._key(shard, "lock", tenant, eid)
                    script.check("free", key, "")
                    script.op("SET", key, token, "PX", LOCK_MS)
                if not await self._apply(keys=script.keys.keys, args=script.argv()):
                    raise Conflict()
                locked.append(shard)
            read = await self._read_for_write(tenant, ids)
            plan, events = self._plan(tenant, ids, read.bodies, fn)
            stamp = self._stamp()
            for shard in sorted(shards):
                mine = [e for e in events if e[0] == shard]
                if not mine:
                    continue
                script = self._commit_script(tenant, mine, read, token=token, stamp=stamp)
                if not await self._apply(keys=script.keys.keys, args=script.argv()):
                    # Only when a lock expired under a writer slower than LOCK_MS: what is committed stays.
                    raise RuntimeError("a multi-entity write lost its locks; part of it may be written")
                self._tenant_recorded(tenant, shard)
            return plan.result
        finally:
            await self._unlock(tenant, shards, locked, token)

    async def _unlock(self, tenant: str, shards: dict[int, list[str]], locked: list[int], token: str) -> None:
        for shard in locked:
            script = _Script()
            for eid in shards[shard]:
                key = self._key(shard, "lock", tenant, eid)
                script.check("free", key, token)
                script.op("DEL", key)
            with contextlib.suppress(Exception):  # an unreleased lock expires after LOCK_MS
                await self._apply(keys=script.keys.keys, args=script.argv())

    def _plan(
        self, tenant: str, ids: list[str], raw: Mapping[str, bytes], fn: WriteFn[U]
    ) -> tuple[WritePlan[U], list[Event]]:
        """Run the plan over fresh copies of what was read; the events it makes, in the order of its writes."""
        current: dict[str, Entity | None] = {eid: common.loads(raw[eid]) if eid in raw else None for eid in ids}
        plan = fn(current)
        writes = common.checked_writes(plan, ids)
        events: list[Event] = []
        for eid, after in writes.items():
            if after is None and eid not in raw:
                continue  # deleting what is not there changes nothing
            after_raw = None if after is None else common.dumps(after)
            events.append((self.shard_of(tenant, eid), eid, after_raw, after, len(events)))
        return plan, events

    def _stamp(self) -> tuple[str, str]:
        """A write's timestamp, and the key that orders its events among others (see _merge)."""
        at = now_iso()
        return at, f"{at}|{self._origin}|{next(self._counter):012d}"

    def _commit_script(
        self, tenant: str, events: list[Event], read: _Read, *, token: str, stamp: tuple[str, str]
    ) -> _Script:
        """One shard's part of a write: the entities must still be at the versions read and not locked by another
        writer; then the bodies, the index entries and the change events. `stamp` is the write's (timestamp, order
        key). Only small values are checked and the body is sent once: Redis's cost is in the bytes a script moves."""
        script = _Script()
        at, order = stamp
        shard = events[0][0]
        entities, versions = self._key(shard, "e", tenant), self._key(shard, "v", tenant)
        feed = self._key(shard, "feed") if self.config.cluster else self._gkey("changes")
        counter = 0 if self.config.cluster else script.keys(self._gkey("seq"))
        kept = next((eid for _, eid, after_raw, _, _ in events if after_raw is not None), None)
        if kept is not None:  # a resent script can tell that it wrote already (a deletion alone cannot)
            script.mark = (order[len(at) + 1 :], script.keys(versions), kept)
        for _, eid, after_raw, after, n in events:
            before_raw = read.bodies.get(eid)
            self._version_check(script, shard, tenant, eid, before_raw, read.versions.get(eid))
            if len(self.tags) > 1:  # with one shard every write is optimistic: nobody ever takes these locks
                script.check("free", self._key(shard, "lock", tenant, eid), token)
            before = None if before_raw is None else common.loads(before_raw)
            fields = ["t", tenant, "e", eid, "b", _before_field(before_raw, before, after), "at", at]
            if (rid := REQUEST_ID.get()) is not None:
                fields += ["r", rid]
            if self.config.cluster:
                fields += ["k", f"{order}|{n:06d}"]
            script.op(
                "ENTITY", entities, script.keys(versions), script.keys(feed), counter, eid, after_raw or b"", *fields
            )
            changed = common.changed_attrs(before, after)  # compared once, for the indexes and the history
            self._index_ops(script, shard, tenant, eid, *_changed_parts(before, after, changed))
            if self.history.record:
                update = history.history_update(self.history, before, after, at, changed)
                self._history_ops(script, shard, tenant, update, read.heads, at)
        self._record_tenant(script, shard, tenant)
        return script

    def _record_tenant(self, script: _Script, shard: int, tenant: str) -> None:
        if (tenant, shard) not in self._recorded:
            script.op("SADD", self._key(shard, "tenants"), tenant)

    def _tenant_recorded(self, tenant: str, shard: int) -> None:
        """After a script of `_record_tenant` succeeded."""
        self._recorded.add((tenant, shard))
        self._known_tenants.add(tenant)

    def _version_check(
        self, script: _Script, shard: int, tenant: str, eid: str, body: bytes | None, version: bytes | None
    ) -> None:
        """That the entity is still what was read. Every write gives it a new version (the id of its change event,
        never reused), a delete removes both, so an unchanged version means an unchanged body. A body stored before
        versions existed has none: it must still be there and still have none."""
        if body is None:
            script.check("nil", self._key(shard, "e", tenant), eid)
        elif version is not None:
            script.check("eq", self._key(shard, "v", tenant), eid, version)
        else:
            script.check("has", self._key(shard, "e", tenant), eid)
            script.check("nil", self._key(shard, "v", tenant), eid)

    def _index_ops(
        self, script: _Script, shard: int, tenant: str, eid: str, before: Entity | None, after: Entity | None
    ) -> None:
        """The index entries to remove and add for an entity going from `before` to `after` (None: absent). They
        may be parts of the entities holding only what changed (see _changed_parts)."""
        ids_key = self._key(shard, "ids", tenant)
        if before is None:
            script.op("ZADD", ids_key, 0, eid)
        elif after is None:
            script.op("ZREM", ids_key, eid)
        old_types = common.entity_types(before) if before else frozenset()
        new_types = common.entity_types(after) if after else frozenset()
        for t in sorted(old_types - new_types):
            script.op("ZREM", self._key(shard, "t", tenant, t), eid)
        for t in sorted(new_types - old_types):
            script.op("ZADD", self._key(shard, "t", tenant, t), 0, eid)
        old_numbers = common.numbers(before) if before else set()
        new_numbers = common.numbers(after) if after else set()
        for attr, value in sorted(old_numbers - new_numbers):
            script.op("ZREM", self._key(shard, "n", tenant, attr), _member(eid, repr(value)))
        for attr, value in sorted(new_numbers - old_numbers):
            script.op("ZADD", self._key(shard, "n", tenant, attr), _score(value), _member(eid, repr(value)))
        old_boxes = common.geo_boxes(before) if before else set()
        new_boxes = common.geo_boxes(after) if after else set()
        for attr, box in sorted(old_boxes - new_boxes):
            kind = "gp" if _geo_point(box) else "g"
            script.op("ZREM", self._key(shard, kind, tenant, attr), _member(eid, _box_text(box)))
        for attr, box in sorted(new_boxes - old_boxes):
            member = _member(eid, _box_text(box))
            if _geo_point(box):  # a point Redis GEO can hold: found by GEOSEARCH
                script.op("GEOADD", self._key(shard, "gp", tenant, attr), box[0], box[1], member)
            else:
                script.op("ZADD", self._key(shard, "g", tenant, attr), _score(box[0]), member)

    # -- temporal history --------------------------------------------------------------------------------------
    # Per shard, next to the entities: `th:<tenant>` hash id -> temporal entity record, `tv:<tenant>` hash id ->
    # version of its history (bumped by every change to it), `ti:<tenant>\0<id>` list of its instances in the
    # order they were recorded. Writes append in their own script; rarer edits rewrite the list, checking the version.
    def _history_ops(
        self,
        script: _Script,
        shard: int,
        tenant: str,
        update: history.HistoryUpdate | None,
        heads: Mapping[str, bytes],
        at: str | None = None,
    ) -> bool:
        """Record `update` (True when the temporal entity is new); the record must still be what was read."""
        if update is None:
            return False
        eid = update.entity_id
        records, versions = self._key(shard, "th", tenant), self._key(shard, "tv", tenant)
        listing = self._key(shard, "ti", tenant, eid)
        head_raw = heads.get(eid)
        if head_raw is None:
            script.check("nil", records, eid)
        else:
            script.check("eq", records, eid, head_raw)
        if update.drop:
            for command, key in (("HDEL", records), ("HDEL", versions)):
                script.op(command, key, eid)
            script.op("DEL", listing)
            return False
        now = at or now_iso()
        record = common.loads(head_raw) if head_raw else {"type": [], "created_at": now, "scope": None}
        if update.head is not None:
            record["type"] = list(dict.fromkeys([*record["type"], *update.head.get("type", [])]))
            if "scope" in update.head:
                record["scope"] = list(update.head["scope"])
        record["modified_at"] = now
        script.op("HSET", records, eid, common.dumps(record))
        script.op("HINCRBY", versions, eid, 1)
        for start in range(0, len(update.instances), 500):  # Lua's unpack has a stack limit
            chunk = update.instances[start : start + 500]
            script.op("RPUSH", listing, *(_instance_bytes(i) for i in chunk))
        return head_raw is None

    async def temporal_entities(self, tenant: str, flt: EntityFilter) -> list[TemporalEntityRecord]:
        if flt.id_pattern is not None:
            common.compile_id_pattern(flt.id_pattern)
        out: dict[str, TemporalEntityRecord] = {}  # by id: HSCAN may hand out a field twice
        async for page in self._temporal_records(tenant, flt.ids):
            for eid, raw in page.items():
                record = common.loads(raw)
                if common.matches_id_and_types(eid, record["type"], flt):
                    out[eid] = TemporalEntityRecord(
                        eid, record["type"], record["created_at"], record["modified_at"], record["scope"]
                    )
        return [out[eid] for eid in sorted(out)]

    async def _temporal_records(self, tenant: str, ids: frozenset[str] | None) -> AsyncIterator[dict[str, bytes]]:
        """The stored temporal entity records of `ids` (None: all of them, page by page)."""
        if ids is not None:
            yield await self._read_raw(tenant, sorted(ids), "th")
            return
        async for page in self._scan_hashes("th", tenant):
            yield page

    async def _scan_hashes(self, kind: str, tenant: str) -> AsyncIterator[dict[str, bytes]]:
        """The fields of one hash per shard, a page (HSCAN, about SCAN_PAGE fields) at a time: a large history is
        neither sent in one reply nor held whole by Redis's output buffer, and Redis serves others in between."""
        for shard in range(len(self.tags)):
            key, cursor = self._key(shard, kind, tenant), 0
            while True:
                cursor, fields = await self._redis.hscan(key, cursor, count=SCAN_PAGE)
                if fields:
                    yield {k.decode(): v for k, v in fields.items()}
                if not cursor:
                    break

    async def _instances_of(self, tenant: str, eid: str) -> list[TemporalInstance]:
        stored = await self._redis.lrange(self._key(self.shard_of(tenant, eid), "ti", tenant, eid), 0, -1)
        return [_instance(data) for data in stored]

    async def temporal_instances(self, tenant: str, ids: Iterable[str], query: InstanceQuery) -> TemporalHistory:
        id_list = common.unique_ids(ids)
        lists = await asyncio.gather(*(self._instances_of(tenant, eid) for eid in id_list))
        out: TemporalHistory = {}
        for eid, instances in zip(id_list, lists, strict=True):
            by_attr: dict[str, list[TemporalInstance]] = {}
            for inst in instances:
                if query.attrs is None or inst.attr in query.attrs:
                    by_attr.setdefault(inst.attr, []).append(inst)
            found = {attr: chosen for attr, group in by_attr.items() if (chosen := history.select(group, query))}
            if found:
                out[eid] = found
        return out

    async def temporal_add(
        self,
        tenant: str,
        entity_id: str,
        head: dict[str, Any] | None,
        instances: list[TemporalInstance],
        *,
        create: bool,
        at: str | None = None,
    ) -> bool:
        for inst in instances:
            common.dumps(inst.body)  # refuse what cannot be stored, before changing anything
        shard = self.shard_of(tenant, entity_id)
        for attempt in range(MAX_ATTEMPTS):
            heads = await self._read_raw(tenant, [entity_id], "th")
            if entity_id not in heads and not create:
                raise ResourceNotFound(f"no temporal evolution of entity {entity_id}")
            script = _Script()
            created = self._history_ops(
                script, shard, tenant, history.HistoryUpdate(entity_id, head, instances), heads, (at or now_iso())
            )
            script.check("free", self._key(shard, "lock", tenant, entity_id), "")
            self._record_tenant(script, shard, tenant)
            if await self._apply(keys=script.keys.keys, args=script.argv()):
                self._tenant_recorded(tenant, shard)
                return created
            await asyncio.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise RuntimeError(f"history of {entity_id} kept conflicting")

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        shard = self.shard_of(tenant, entity_id)
        script = _Script()
        script.check("has", self._key(shard, "th", tenant), entity_id)
        script.op("HDEL", self._key(shard, "th", tenant), entity_id)
        script.op("HDEL", self._key(shard, "tv", tenant), entity_id)
        script.op("DEL", self._key(shard, "ti", tenant, entity_id))
        return bool(await self._apply(keys=script.keys.keys, args=script.argv()))

    async def _rewrite_instances(
        self, tenant: str, entity_id: str, edit: Callable[[list[TemporalInstance]], list[TemporalInstance]]
    ) -> int:
        """Replace the instance list of one temporal entity by `edit(list)`, atomically against every other change
        to it (its version must not move meanwhile); the number of instances `edit` removed. Only what changed is
        sent when it can be (see _list_ops), not the whole list. The list's order record (`tr`, see _Order) is
        dropped: the next retention by age reads the whole list once and makes it again."""
        shard = self.shard_of(tenant, entity_id)
        versions, listing = self._key(shard, "tv", tenant), self._key(shard, "ti", tenant, entity_id)
        for attempt in range(MAX_ATTEMPTS):
            version = await self._redis.hget(versions, entity_id)
            if version is None:
                return 0  # no history at all
            instances = await self._instances_of(tenant, entity_id)
            edited = edit(list(instances))
            if edited == instances:
                return 0
            script = _Script()
            script.check("eq", versions, entity_id, version)
            _list_ops(script, listing, instances, edited)
            script.op("HINCRBY", versions, entity_id, 1)
            # A correction moves an instance's modifiedAt: what retention knew of the list's order no longer holds.
            script.op("HDEL", self._key(shard, "tr", tenant), entity_id)
            if await self._apply(keys=script.keys.keys, args=script.argv()):
                return len(instances) - len(edited)
            await asyncio.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise RuntimeError(f"history of {entity_id} kept conflicting")

    async def temporal_delete_attr(self, tenant: str, entity_id: str, attr: str, dataset: str | None) -> int:
        def edit(instances: list[TemporalInstance]) -> list[TemporalInstance]:
            return [
                i
                for i in instances
                if i.attr != attr or (dataset != ALL_DATASETS and i.body.get("datasetId") != dataset)
            ]

        return await self._rewrite_instances(tenant, entity_id, edit)

    async def temporal_replace_instance(self, tenant: str, entity_id: str, instance: TemporalInstance) -> bool:
        found = False

        def edit(instances: list[TemporalInstance]) -> list[TemporalInstance]:
            nonlocal found
            for n, old in enumerate(instances):
                if old.attr == instance.attr and old.instance_id == instance.instance_id:
                    found = True
                    instances[n] = TemporalInstance(instance.attr, instance.instance_id, common.clone(instance.body))
                    break
            return instances

        await self._rewrite_instances(tenant, entity_id, edit)
        return found

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        def edit(instances: list[TemporalInstance]) -> list[TemporalInstance]:
            for n, old in enumerate(instances):
                if old.attr == attr and old.instance_id == instance_id:
                    del instances[n]
                    break
            return instances

        return await self._rewrite_instances(tenant, entity_id, edit) > 0

    async def temporal_retain(self, older_than: int | None, max_count: int | None) -> int:
        """Retention (record 0070) by age (record 0049: without reading whole lists), then by count; the same
        result as applying both at once, since the newest `max_count` of an attribute's instances young enough are
        the newest `max_count` left by age."""
        removed = 0
        if older_than is None and max_count is None:
            return 0
        for tenant in await self.list_tenants():
            done: set[str] = set()  # HSCAN may hand out a field twice
            async for page in self._scan_hashes("tv", tenant):
                ids = sorted(set(page) - done)
                done.update(ids)
                if older_than is not None:
                    for eid in ids:
                        removed += await self._retain_older(tenant, eid, older_than)
                if max_count is not None:
                    removed += await self._retain_count(tenant, ids, max_count)
            if older_than is not None:
                await self._drop_stale_orders(tenant, done)
        return removed

    async def _retain_count(self, tenant: str, ids: list[str], max_count: int) -> int:
        """Keep the newest `max_count` instances (by modifiedAt) of each attribute of `ids` (one page's)."""

        def edit(instances: list[TemporalInstance]) -> list[TemporalInstance]:
            kept: set[int] = set()
            for attr in dict.fromkeys(i.attr for i in instances):
                mine = sorted(
                    (n for n, i in enumerate(instances) if i.attr == attr),
                    key=lambda n: history.sort_time(instances[n], "modifiedAt"),
                )
                kept.update(mine[-max_count:] if max_count else [])
            return [i for n, i in enumerate(instances) if n in kept]

        # Only a list longer than max_count can hold an attribute with more than max_count instances.
        lengths = await self._list_lengths(tenant, ids)
        removed = 0
        for eid, n in zip(ids, lengths, strict=True):
            if n > max_count:
                removed += await self._rewrite_instances(tenant, eid, edit)
        return removed

    async def _retain_older(self, tenant: str, eid: str, older_than: int) -> int:
        """Remove the instances of one temporal entity last modified before `older_than` (record 0049): with the
        list's order record, only its tail since the last pass and its head up to the first instance surely young
        enough are read; without one, the whole list, and the record is made. Atomic against every other change:
        the history version must not move between the first read and the script."""
        shard = self.shard_of(tenant, eid)
        versions, orders = self._key(shard, "tv", tenant), self._key(shard, "tr", tenant)
        listing = self._key(shard, "ti", tenant, eid)
        for attempt in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hget(versions, eid)
                pipe.hget(orders, eid)
                pipe.llen(listing)
                version, order_raw, length = await pipe.execute()
            if version is None:
                return 0  # no history at all
            order = _Order.decode(order_raw)
            plan = await self._age_plan(listing, order, int(length), older_than)
            if plan is None:
                continue  # the list moved between two reads: read again
            if not plan.removed and plan.order == order:
                return 0
            script = _Script()
            script.check("eq", versions, eid, version)
            if plan.removed:
                _head_removal_ops(script, listing, plan.head, plan.removed)
                script.op("HINCRBY", versions, eid, 1)
            if plan.order is None:
                script.op("HDEL", orders, eid)
            else:
                script.op("HSET", orders, eid, plan.order.encode())
            if await self._apply(keys=script.keys.keys, args=script.argv()):
                return len(plan.removed)
            await asyncio.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise RuntimeError(f"history of {eid} kept conflicting")

    async def _age_plan(self, listing: str, order: _Order | None, length: int, older_than: int) -> _AgePlan | None:
        """What retention by age removes from one list (None: the list changed while it was read)."""
        tail: list[bytes] = []
        if order is not None and 0 < order.length <= length:
            tail = await self._redis.lrange(listing, order.length - 1, -1)
            if not tail or _digest(tail[0]) != order.last:
                order = None  # not the list the record was made for (deleted and recorded anew)
        else:
            order = None
        if order is None:
            return _whole_plan(await self._redis.lrange(listing, 0, -1), older_than)
        tail = tail[1:]
        tail_times = [_retain_time(raw) for raw in tail]
        known = order.extended(tail, tail_times)
        # An instance at or after `bound` proves every later one young enough: none is older by more than `lag`.
        bound = older_than + known.lag
        if known.first >= bound:
            return _AgePlan([], [], known)
        head: list[bytes] = []
        times: list[int] = []
        page = RETAIN_PAGE
        while len(head) < order.length:
            start = len(head)
            stop = min(start + page, order.length)
            got = await self._redis.lrange(listing, start, stop - 1)
            if len(got) != stop - start:
                return None
            for raw in got:
                at = _retain_time(raw)
                if at >= bound:  # the cut: nothing from here on is old
                    removed = [n for n, t in enumerate(times) if t < older_than]
                    first = next((t for t in times if t >= older_than), at)
                    kept = known.length - len(removed)
                    return _AgePlan(head, removed, replace(known, length=kept, first=first))
                head.append(raw)
                times.append(at)
            page = min(page * 2, RETAIN_PAGE_MAX)
        return _whole_plan(head + tail, older_than)  # no cut before the tail: the whole list is in hand

    async def _drop_stale_orders(self, tenant: str, seen: set[str]) -> None:
        """Order records of temporal entities deleted since (their history version is gone): deleting a history
        does not know of them."""
        async for page in self._scan_hashes("tr", tenant):
            for eid in sorted(set(page) - seen):
                shard = self.shard_of(tenant, eid)
                script = _Script()
                script.check("nil", self._key(shard, "tv", tenant), eid)
                script.op("HDEL", self._key(shard, "tr", tenant), eid)
                await self._apply(keys=script.keys.keys, args=script.argv())

    async def _list_lengths(self, tenant: str, ids: list[str]) -> list[int]:
        """LLEN of the instance lists of `ids` (one shard's), in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for eid in ids:
                pipe.llen(self._key(self.shard_of(tenant, eid), "ti", tenant, eid))
            return [int(n) for n in await pipe.execute()]

    # -- queries ---------------------------------------------------------------------------------------------
    async def find_ids(self, tenant: str, flt: EntityFilter) -> list[str]:
        pattern = None if flt.id_pattern is None else common.compile_id_pattern(flt.id_pattern)
        if flt.ids is not None:
            groups = self._by_shard(tenant, sorted(flt.ids))
        else:
            groups = {s: [] for s in range(len(self.tags))}
        per_shard = await asyncio.gather(*(self._shard_ids(s, tenant, flt, groups[s]) for s in groups))
        found = sorted(eid for ids in per_shard for eid in ids)
        return found if pattern is None else [eid for eid in found if pattern.search(eid)]

    async def _shard_ids(self, shard: int, tenant: str, flt: EntityFilter, wanted: list[str]) -> set[str]:
        """The ids of one shard that the filter's indexed parts let through (a superset for the hints). The
        narrowest sources are read (ids, the smallest numeric range, the boxes); the types are then checked on
        those candidates only, so a selective hint never reads a whole type index."""
        r = self._redis
        candidates: set[str] | None = None
        if flt.ids is not None:
            if not wanted:
                return set()
            scores = await r.zmscore(self._key(shard, "ids", tenant), wanted)
            candidates = {eid for eid, score in zip(wanted, scores, strict=True) if score is not None}
        ranges = self._range_queries(shard, tenant, flt)
        if ranges:
            counts = await asyncio.gather(*(r.zcount(key, low, high) for key, low, high in ranges))
            key, low, high = ranges[counts.index(min(counts))]  # the other ranges may be ignored: hints only narrow
            ranged = {_member_id(m) for m in await r.zrangebyscore(key, low, high)}
            candidates = ranged if candidates is None else candidates & ranged
        if flt.bbox is not None:
            attr, boxes = flt.bbox
            east = max((b[2] for b in boxes), default=None)
            members, points = await asyncio.gather(
                self._boxes_west_of(self._key(shard, "g", tenant, attr), east),
                self._points_near(self._key(shard, "gp", tenant, attr), boxes),
            )
            boxed = {_member_id(m) for m in [*members, *points] if _box_hits(m, boxes)}
            candidates = boxed if candidates is None else candidates & boxed
        if flt.types is not None:
            keys = [self._key(shard, "t", tenant, t) for t in sorted(flt.types)]
            if candidates is None:
                lists = await asyncio.gather(*(r.zrange(k, 0, -1) for k in keys))
                return {m.decode() for members in lists for m in members}
            listed = sorted(candidates)
            if not listed:
                return set()
            typed = await asyncio.gather(*(r.zmscore(k, listed) for k in keys))
            return {eid for n, eid in enumerate(listed) if any(scores[n] is not None for scores in typed)}
        if candidates is None:
            candidates = {m.decode() for m in await r.zrange(self._key(shard, "ids", tenant), 0, -1)}
        return candidates

    def _range_queries(self, shard: int, tenant: str, flt: EntityFilter) -> list[tuple[str, str, str]]:
        """(key, min, max) of ZRANGEBYSCORE for each numeric range hint with a known operator."""
        out = []
        for attr, op, number in flt.attr_ranges or ():
            bounds = _RANGE_BOUNDS.get(op)
            if bounds is not None:  # a hint may be ignored
                low, high = (b.format(_score(common.as_double(number))) for b in bounds)
                out.append((self._key(shard, "n", tenant, attr), low, high))
        return out

    async def _selective(self, tenant: str, flt: EntityFilter) -> bool:
        """Whether the numeric range hints are narrow enough to be read in full (else pages of the type index are
        read and the evaluator filters them, as a query needing its first page stops after it)."""
        counts = []
        for n in range(len(flt.attr_ranges or ())):
            one = EntityFilter(attr_ranges=(flt.attr_ranges or ())[n : n + 1])
            per_shard = [self._range_queries(s, tenant, one) for s in range(len(self.tags))]
            found = await asyncio.gather(*(self._redis.zcount(*q[0]) for q in per_shard if q))
            if found:
                counts.append(sum(found))
        return bool(counts) and min(counts) <= SELECTIVE_RANGE

    async def _boxes_west_of(self, key: str, east: float | None) -> list[bytes]:
        """The members of a box index whose west edge is at or west of `east` (None: no box asked, none)."""
        return [] if east is None else list(await self._redis.zrangebyscore(key, "-inf", _score(east)))

    async def _points_near(self, key: str, boxes: tuple[Box, ...]) -> list[bytes]:
        """The members of a GEO set that may lie in the boxes: per box, GEOSEARCH in a circle holding it (the
        caller tests each point against the boxes); a box too large for that reads the whole set."""
        circles = []
        for box in boxes:
            min_lon, max_lon = max(box[0], -180.0), min(box[2], 180.0)
            min_lat, max_lat = max(box[1], -GEO_MAX_LAT), min(box[3], GEO_MAX_LAT)
            if min_lon > max_lon or min_lat > max_lat:
                continue  # no point Redis GEO holds can be in it
            if max_lon - min_lon > 90.0 or max_lat - min_lat > 60.0:
                return list(await self._redis.zrange(key, 0, -1))
            lon, lat = (min_lon + max_lon) / 2, (min_lat + max_lat) / 2
            samples = [(x, y) for x in (min_lon, lon, max_lon) for y in (min_lat, lat, max_lat)]
            radius = max(_distance_m(lon, lat, x, y) for x, y in samples) * 1.01 + 50.0  # geohash precision
            circles.append((lon, lat, radius))
        found = await asyncio.gather(
            *(self._redis.geosearch(key, longitude=x, latitude=y, radius=r, unit="m") for x, y, r in circles)
        )
        return [m for members in found for m in members]

    async def scan(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        return [e for batch in [b async for b in self.scan_batches(tenant, flt, 1024)] for e in batch]

    async def scan_batches(self, tenant: str, flt: EntityFilter, size: int = 256) -> AsyncIterator[list[Entity]]:
        size = max(size, 1)
        if flt.ids is None and flt.bbox is None and not await self._selective(tenant, flt):
            pages = self._id_pages(tenant, flt, size)  # a query that needs one page reads about one page
        else:
            pages = _chunks(await self.find_ids(tenant, flt), size)
        async for chunk in pages:
            raw = await self._read_raw(tenant, chunk)
            # An entity deleted or changed since its id was found is left out when it no longer matches.
            batch = [e for eid in chunk if eid in raw and common.matches(e := common.loads(raw[eid]), flt)]
            if batch:
                yield batch

    async def _id_pages(self, tenant: str, flt: EntityFilter, size: int) -> AsyncIterator[list[str]]:
        """The ids of the type (or of all) index zsets of every shard, merged in id order, `size` at a time:
        keyset paging with ZRANGE BYLEX after the last id handed out."""
        pattern = None if flt.id_pattern is None else common.compile_id_pattern(flt.id_pattern)
        names = [None] if flt.types is None else sorted(flt.types)
        sources = [
            self._key(s, "ids", tenant) if t is None else self._key(s, "t", tenant, t)
            for s in range(len(self.tags))
            for t in names
        ]
        last: bytes | None = None
        while sources:
            start = b"-" if last is None else b"(" + last
            pages = await asyncio.gather(
                *(self._redis.zrange(k, start, b"+", bylex=True, offset=0, num=size) for k in sources)
            )
            # Past the end of a full page, a source may hold ids smaller than what other sources returned.
            full = [page[-1] for page in pages if len(page) == size]
            bound = min(full) if full else None
            merged = sorted({m for page in pages for m in page if bound is None or m <= bound})[:size]
            if not merged:
                return
            last = merged[-1]
            # A source is done once it returned a short page whose every id was handed out.
            sources = [k for k, page in zip(sources, pages, strict=True) if len(page) == size or page[-1:] > [last]]
            ids = [m.decode() for m in merged]
            ids = ids if pattern is None else [eid for eid in ids if pattern.search(eid)]
            if ids:
                yield ids

    # -- change feed -----------------------------------------------------------------------------------------
    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        if limit <= 0:
            return []
        await self._move_events()
        entries = await self._redis.xrange(self._gkey("changes"), f"{max(seq, 0) + 1}-0", "+", count=limit)
        return [_change(entry_id, fields) for entry_id, fields in entries]

    async def trim_changes(self, up_to: int) -> int:
        # The global feed's entry ids are "<seq>-0": MINID keeps every entry after `up_to`.
        feed, first_kept = self._gkey("changes"), f"{max(up_to, 0) + 1}-0"
        return int(await self._redis.xtrim(feed, minid=first_kept, approximate=False))

    async def last_seq(self) -> int:
        await self._move_events()
        value = await self._redis.get(self._gkey("seq"))
        return 0 if value is None else int(value)

    async def _move_events(self) -> None:
        """Give the shards' new events their global sequence numbers (until no shard has any left). On one server
        the writes number their events themselves and there is nothing to move."""
        while self.config.cluster:
            moved = await self._move_once()
            if moved < PUMP_BATCH:
                return

    async def _move_once(self) -> int:
        r = self._redis
        for _ in range(MAX_ATTEMPTS):
            pointers = await r.hgetall(self._gkey("moved"))
            starts = {s: pointers.get(str(s).encode(), b"0-0").decode() for s in range(len(self.tags))}
            replies = await asyncio.gather(
                *(r.xrange(self._key(s, "feed"), f"({starts[s]}", "+", count=PUMP_BATCH) for s in starts)
            )
            pending = {s: entries for s, entries in zip(starts, replies, strict=True) if entries}
            if not pending:
                return 0
            events = _merge(pending)
            args: list[Any] = [len(pending)]
            for s, entries in pending.items():
                args += [s, starts[s], entries[-1][0]]
            args.append(len(events))
            for fields in events:
                args += [fields[b"t"], fields[b"e"], fields[b"b"], fields[b"a"], fields[b"at"], fields.get(b"r", b"")]
            keys = [self._gkey("changes"), self._gkey("seq"), self._gkey("moved")]
            if await self._pump(keys=keys, args=args) >= 0:
                # The moved events are no longer needed in the shards (the last one marks where to go on).
                await asyncio.gather(
                    *(r.xtrim(self._key(s, "feed"), minid=entries[-1][0]) for s, entries in pending.items())
                )
                return max(len(entries) for entries in pending.values())
            await asyncio.sleep(random.uniform(0, 0.005))  # another reader moved them first: look again
        raise RuntimeError("could not move change events: too many concurrent readers")

    # -- @context documents ----------------------------------------------------------------------------------
    async def put_context(self, record: ContextRecord) -> None:
        record_bytes = _context_bytes(record)
        await self._context_script(
            record.id, record.url, None, ("HSET", self._gkey("contexts"), record.id, record_bytes)
        )

    async def _context_script(self, context_id: str, url: str, check: str | None, *ops: tuple[Any, ...]) -> bool:
        """Change a context record and tell every process (the `contexts:changed` stream) in one step."""
        script = _Script()
        if check is not None:
            script.check(check, self._gkey("contexts"), context_id)
        for command, key, *args in ops:
            script.op(command, key, *args)
        script.op("XADD", self._gkey("contexts:changed"), "MAXLEN", "~", 1000, "*", "i", context_id, "u", url)
        return bool(await self._apply(keys=script.keys.keys, args=script.argv()))

    async def get_context(self, context_id: str) -> ContextRecord | None:
        data = await self._redis.hget(self._gkey("contexts"), context_id)
        return None if data is None else _context(data)

    async def find_context_by_url(self, url: str) -> ContextRecord | None:
        # Lowest id first, so that duplicates of a URL resolve the same way in every backend.
        return next((r for r in await self.list_contexts() if r.url == url), None)

    async def list_contexts(self) -> list[ContextRecord]:
        stored = await self._redis.hgetall(self._gkey("contexts"))
        return [_context(stored[k]) for k in sorted(stored, key=lambda k: k.decode())]

    async def delete_context(self, context_id: str) -> bool:
        record = await self.get_context(context_id)
        if record is None:
            return False
        return await self._context_script(context_id, record.url, "has", ("HDEL", self._gkey("contexts"), context_id))

    def watch_contexts(self, callback: Callable[[str, str], None]) -> None:
        """Follow the `contexts:changed` stream from now on, calling `callback(id, url)` for every entry."""
        self._context_watchers.append(callback)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_contexts(), name="agora-redis-contexts")

    async def _watch_contexts(self) -> None:
        key = self._gkey("contexts:changed")
        last: bytes | str | None = None
        while self._r is not None:
            try:
                if last is None:  # from the newest entry on: what came before is already in every cache
                    newest = await self._redis.xrevrange(key, "+", "-", count=1)
                    last = newest[0][0] if newest else "0-0"
                # Blocking for less than the socket timeout, which would otherwise cut the wait.
                block = int(min(1.0, self.config.timeout / 2) * 1000)
                replies = await self._redis.xread({key: last}, count=100, block=block)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: look again shortly
                await asyncio.sleep(1.0)
                continue
            for _, entries in replies or []:
                for entry_id, fields in entries:
                    last = entry_id
                    for callback in self._context_watchers:
                        try:
                            callback(fields[b"i"].decode(), fields[b"u"].decode())
                        except Exception:
                            log.exception("a context watcher failed")

    # -- entity maps (decision record 0040: a hash tag of their own) -------------------------------------------
    def _map_keys(self, tenant: str, map_id: str) -> tuple[str, str]:
        """(metadata hash, id list) of one entity map. Their own hash tag, made from the tenant and id, puts both
        in one slot (one script writes them) and spreads maps over a cluster's masters; Redis expires both."""
        digest = hashlib.sha1(f"{tenant}\0{map_id}".encode()).hexdigest()[:16]
        base = f"{self.prefix}:{{{self.prefix}-m-{digest}}}"
        return f"{base}:emap", f"{base}:emapids"

    async def put_entity_map(self, tenant: str, record: EntityMapRecord) -> None:
        meta, ids = self._map_keys(tenant, record.id)
        expires_ms = record.expires_at // 1000 + 1
        script = _Script()
        script.op("DEL", meta)
        script.op("DEL", ids)
        script.op("HSET", meta, "e", record.expires_at, "x", common.dumps(record.extra))
        script.op("PEXPIREAT", meta, expires_ms)
        # Pushed in chunks: a script unpacks each command's arguments onto Lua's stack, which holds about 8,000.
        for start in range(0, len(record.ids), 1000):
            script.op("RPUSH", ids, *record.ids[start : start + 1000])
        if record.ids:
            script.op("PEXPIREAT", ids, expires_ms)
        await self._apply(keys=script.keys.keys, args=script.argv())

    async def _map_expiry(self, meta: str) -> int | None:
        """The expiry of a live map, None when it is gone (Redis expires keys to the millisecond only)."""
        raw = await self._redis.hget(meta, "e")
        return int(raw) if raw is not None and int(raw) > now_micros() else None

    async def get_entity_map(self, tenant: str, map_id: str) -> EntityMapRecord | None:
        meta, ids = self._map_keys(tenant, map_id)
        fields, members = await asyncio.gather(self._redis.hgetall(meta), self._redis.lrange(ids, 0, -1))
        if b"e" not in fields or int(fields[b"e"]) <= now_micros():
            return None
        return EntityMapRecord(map_id, int(fields[b"e"]), [m.decode() for m in members], common.loads(fields[b"x"]))

    async def entity_map_ids(self, tenant: str, map_id: str, start: int, stop: int) -> list[str] | None:
        meta, ids = self._map_keys(tenant, map_id)
        if stop <= start:
            return None if await self._map_expiry(meta) is None else []
        expiry, members = await asyncio.gather(self._map_expiry(meta), self._redis.lrange(ids, start, stop - 1))
        return None if expiry is None else [m.decode() for m in members]

    async def set_entity_map_expiry(self, tenant: str, map_id: str, expires_at: int) -> bool:
        meta, ids = self._map_keys(tenant, map_id)
        current = await self._redis.hget(meta, "e")
        if current is None or int(current) <= now_micros():
            return False
        script = _Script()
        script.check("eq", meta, "e", current)  # not deleted or moved in between
        script.op("HSET", meta, "e", expires_at)
        script.op("PEXPIREAT", meta, expires_at // 1000 + 1)
        script.op("PEXPIREAT", ids, expires_at // 1000 + 1)
        return bool(await self._apply(keys=script.keys.keys, args=script.argv()))

    async def delete_entity_map(self, tenant: str, map_id: str) -> bool:
        meta, ids = self._map_keys(tenant, map_id)
        if await self._map_expiry(meta) is None:
            return False
        script = _Script()
        script.check("has", meta, "e")
        script.op("DEL", meta)
        script.op("DEL", ids)
        return bool(await self._apply(keys=script.keys.keys, args=script.argv()))

    # -- subscriptions -------------------------------------------------------------------------------------------
    async def _subscription_script(self, kind: str, tenant: str, sub_id: str, *ops: tuple[Any, ...]) -> bool:
        script = _Script()
        field = _sub_field(tenant, sub_id)
        script.check(kind, self._gkey("subs"), field)
        for command, key, *args in ops:
            script.op(command, key, *args)
        # Applied only with the change it counts (the check above): the notifiers read the subscriptions again then.
        script.op("HINCRBY", self._gkey("subs:version"), "v", 1)
        async with self._sub_lock:
            return bool(await self._apply(keys=script.keys.keys, args=script.argv()))

    async def create_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        field = _sub_field(tenant, sub_id)
        return await self._subscription_script(
            "nil",
            tenant,
            sub_id,
            ("HSET", self._gkey("subs"), field, common.dumps(body)),
            ("HSET", self._gkey("substate"), field, b"{}"),
        )

    async def replace_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        field = _sub_field(tenant, sub_id)
        return await self._subscription_script(
            "has", tenant, sub_id, ("HSET", self._gkey("subs"), field, common.dumps(body))
        )

    async def get_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        field = _sub_field(tenant, sub_id)
        body, state = await asyncio.gather(
            self._redis.hget(self._gkey("subs"), field), self._redis.hget(self._gkey("substate"), field)
        )
        if body is None:
            return None
        return SubscriptionRecord(tenant, sub_id, common.loads(body), common.loads(state or b"{}"))

    async def list_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        bodies, states = await asyncio.gather(
            self._redis.hgetall(self._gkey("subs")), self._redis.hgetall(self._gkey("substate"))
        )
        records = []
        for field, body in bodies.items():
            owner, _, sub_id = field.decode().partition("\0")
            if tenant is None or owner == tenant:
                records.append(
                    SubscriptionRecord(owner, sub_id, common.loads(body), common.loads(states.get(field, b"{}")))
                )
        return sorted(records, key=lambda rec: (rec.tenant, rec.id))

    async def delete_subscription(self, tenant: str, sub_id: str) -> bool:
        field = _sub_field(tenant, sub_id)
        return await self._subscription_script(
            "has", tenant, sub_id, ("HDEL", self._gkey("subs"), field), ("HDEL", self._gkey("substate"), field)
        )

    async def subscriptions_version(self) -> int | None:
        return int(await self._redis.hget(self._gkey("subs:version"), "v") or 0)

    async def record_delivery(self, tenant: str, sub_id: str, delivery: Delivery) -> None:
        field = _sub_field(tenant, sub_id)
        for attempt in range(MAX_ATTEMPTS):
            current = await self._redis.hget(self._gkey("substate"), field)
            if current is None:
                return  # the subscription was deleted
            script = _Script()
            script.check("eq", self._gkey("substate"), field, current)
            script.op(
                "HSET",
                self._gkey("substate"),
                field,
                common.dumps(common.folded_state(common.loads(current), delivery)),
            )
            if await self._apply(keys=script.keys.keys, args=script.argv()):
                return
            await asyncio.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise RuntimeError(f"delivery state of {sub_id} kept conflicting")

    # -- cursors and the notifier's lead -------------------------------------------------------------------------
    async def get_cursor(self, name: str) -> int | None:
        value = await self._redis.hget(self._gkey("cursors"), name)
        return None if value is None else int(value)

    async def set_cursor(self, name: str, seq: int) -> None:
        await self._redis.hset(self._gkey("cursors"), name, seq)

    async def try_lead(self, name: str) -> bool:
        """A lease in Redis (SET with an expiry, renewed by this process every LEASE_MS / 3): a process that dies
        or hangs loses it after LEASE_MS and another takes over from the durable cursor."""
        token = self._leads.get(name) or f"{self._origin}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        held = bool(await self._lease(keys=[self._lease_key(name)], args=[token, LEASE_MS]))
        if held:
            self._leads[name] = token
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.create_task(self._renew(), name="agora-redis-lease")
        else:
            self._leads.pop(name, None)
        return held

    async def is_leading(self, name: str) -> bool:
        """Whether the lease `name` is still ours (the renewer drops it when Redis says another took it)."""
        return name in self._leads

    async def _renew(self) -> None:
        while self._leads:
            await asyncio.sleep(LEASE_MS / 3000)
            for name, token in list(self._leads.items()):
                try:
                    if not await self._lease(keys=[self._lease_key(name)], args=[token, LEASE_MS]):
                        self._leads.pop(name, None)
                except Exception:  # Redis unreachable for a moment: try again at the next beat
                    continue


def _context_bytes(record: ContextRecord) -> bytes:
    fields = {"id": record.id, "url": record.url, "kind": record.kind, "body": record.body}
    return common.dumps({**fields, "created_at": record.created_at, "extra": record.extra})


def _instance_bytes(inst: TemporalInstance) -> bytes:
    return common.dumps({"a": inst.attr, "i": inst.instance_id, "b": inst.body})


def _instance(data: bytes) -> TemporalInstance:
    d = common.loads(data)
    return TemporalInstance(d["a"], d["i"], d["b"])


def _list_ops(script: _Script, listing: str, old: list[TemporalInstance], new: list[TemporalInstance]) -> None:
    """Commands turning the stored list `old` into `new`: instances replaced in place are set (LSET), a removed
    head is trimmed (LTRIM), a few removals elsewhere become tombstones removed at once (LSET to "", which no
    instance is, then LREM); anything else rewrites the list. Each of LSET's walks costs up to the list's length,
    hence the bound on scattered removals."""
    if len(new) == len(old):
        for n, (before, after) in enumerate(zip(old, new, strict=True)):
            if before != after:
                script.op("LSET", listing, n, _instance_bytes(after))
        return
    removed = _removed_positions(old, new)
    if removed is not None and removed == list(range(len(removed))):
        script.op("LTRIM", listing, len(removed), -1)
        return
    if removed is not None and len(removed) <= SCATTERED_REMOVALS:
        for n in removed:
            script.op("LSET", listing, n, b"")
        script.op("LREM", listing, 0, b"")
        return
    script.op("DEL", listing)
    for start in range(0, len(new), 500):  # Lua's unpack has a stack limit
        script.op("RPUSH", listing, *(_instance_bytes(i) for i in new[start : start + 500]))


def _removed_positions(old: list[TemporalInstance], new: list[TemporalInstance]) -> list[int] | None:
    """The positions of `old` to remove to get `new`, when `new` is `old` with some removed (else None). Equal
    instances are interchangeable, so matching greedily gives the same list."""
    removed, kept = [], 0
    for n, inst in enumerate(old):
        if kept < len(new) and new[kept] == inst:
            kept += 1
        else:
            removed.append(n)
    return removed if kept == len(new) else None


@dataclass(frozen=True)
class _Order:
    """What retention by age knows of the order of one instance list by retention time (modifiedAt, else
    createdAt, else 0): kept in `tr:<tenant>` (record 0049). It describes the list's first `length` instances, the
    last of which has raw bytes of digest `last`: appends leave that true; every other edit of the list drops the
    record (_rewrite_instances) or makes it anew (_retain_older), and a list deleted and recorded anew has other
    instances (instance ids are never reused) at that place."""

    length: int
    last: str
    first: int  # the retention time of the first instance
    high: int  # the latest retention time among them
    lag: int  # no instance's time exceeds a later one's by more than this (0: in order), an upper bound

    def encode(self) -> bytes:
        return f"{self.length}:{self.last}:{self.first}:{self.high}:{self.lag}".encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> _Order | None:
        if raw is None:
            return None
        try:
            length, last, first, high, lag = raw.decode().split(":")
            return cls(int(length), last, int(first), int(high), int(lag))
        except ValueError:
            return None  # not one this version wrote: the next pass reads the whole list and writes one

    def extended(self, raws: list[bytes], times: list[int]) -> _Order:
        """The record of the list with `raws` (of retention times `times`) appended."""
        high, lag = self.high, self.lag
        for at in times:
            lag, high = max(lag, high - at), max(high, at)
        return _Order(self.length + len(raws), _digest(raws[-1]) if raws else self.last, self.first, high, lag)


def _order_of(raws: list[bytes], times: list[int]) -> _Order | None:
    """The exact record of a whole list (None for an empty one)."""
    if not raws:
        return None
    return _Order(1, _digest(raws[0]), times[0], times[0], 0).extended(raws[1:], times[1:])


@dataclass(frozen=True)
class _AgePlan:
    """Retention by age of one list: `removed` positions, all within `head` (the instances read from the list's
    head), and the list's order record afterwards."""

    head: list[bytes]
    removed: list[int]
    order: _Order | None


def _whole_plan(raws: list[bytes], older_than: int) -> _AgePlan:
    times = [_retain_time(raw) for raw in raws]
    removed = [n for n, at in enumerate(times) if at < older_than]
    gone = set(removed)
    kept = [n for n in range(len(raws)) if n not in gone]
    return _AgePlan(raws, removed, _order_of([raws[n] for n in kept], [times[n] for n in kept]))


def _retain_time(raw: bytes) -> int:
    """The time retention compares, as the other stores do: modifiedAt, else createdAt, else 0."""
    return history.sort_time(_instance(raw), "modifiedAt")


def _digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _head_removal_ops(script: _Script, listing: str, head: list[bytes], removed: list[int]) -> None:
    """Commands removing `removed` positions, all within the list's first len(head) instances (`head`): a removed
    head is one LTRIM; a few removals elsewhere are tombstones (LSET to "", which no instance is) removed by one LREM
    that stops at the last of them; more trim the whole head and push back what it keeps."""
    if removed == list(range(len(removed))):
        script.op("LTRIM", listing, len(removed), -1)
    elif len(removed) <= SCATTERED_REMOVALS:
        for n in removed:
            script.op("LSET", listing, n, b"")
        script.op("LREM", listing, len(removed), b"")
    else:
        gone = set(removed)
        kept = [raw for n, raw in enumerate(head) if n not in gone]
        script.op("LTRIM", listing, len(head), -1)
        backwards = kept[::-1]
        for start in range(0, len(backwards), 500):  # Lua's unpack has a stack limit
            script.op("LPUSH", listing, *backwards[start : start + 500])


def _sub_field(tenant: str, sub_id: str) -> str:
    return f"{tenant}\0{sub_id}"


def _member(eid: str, suffix: str) -> str:
    return f"{eid}\0{suffix}"


def _member_id(member: bytes) -> str:
    return member.decode().partition("\0")[0]


def _score(value: float) -> str:
    return repr(value) if value == value else "0"  # NaN never reaches here (refused on write); inf is "inf"


GEO_MAX_LAT = 85.05112878  # Redis GEO holds latitudes up to this (Web Mercator)
_GEO_EARTH_RADIUS_M = 6372797.560856  # the radius Redis GEO measures with


def _geo_point(box: Box) -> bool:
    """Whether an indexed box is a point Redis GEO can hold."""
    return box[0] == box[2] and box[1] == box[3] and -180 <= box[0] <= 180 and -GEO_MAX_LAT <= box[1] <= GEO_MAX_LAT


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine), as Redis GEO computes it."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * _GEO_EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _box_text(box: Box) -> str:
    return ",".join(repr(v) for v in box)


def _box_hits(member: bytes, boxes: tuple[Box, ...]) -> bool:
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in member.decode().partition("\0")[2].split(","))
    return any(
        min_lon <= q_max_lon and max_lon >= q_min_lon and min_lat <= q_max_lat and max_lat >= q_min_lat
        for q_min_lon, q_min_lat, q_max_lon, q_max_lat in boxes
    )


async def _chunks(items: list[str], size: int) -> AsyncIterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _merge(pending: dict[int, list[tuple[bytes, dict[bytes, bytes]]]]) -> list[dict[bytes, bytes]]:
    """The events of several shards in one sequence: each shard's in its own order, interleaved by the order key
    (timestamp, process, write, position), so that the events of one write stay in the order of its plan."""
    heads = {s: 0 for s in pending}
    merged = []
    while heads:
        shard = min(heads, key=lambda s: pending[s][heads[s]][1][b"k"])
        merged.append(pending[shard][heads[shard]][1])
        heads[shard] += 1
        if heads[shard] == len(pending[shard]):
            del heads[shard]
    return merged


def _change(entry_id: bytes, fields: dict[bytes, bytes]) -> Change:
    before, after = fields[b"b"], fields[b"a"]
    return Change(
        int(entry_id.split(b"-")[0]),
        fields[b"t"].decode(),
        fields[b"e"].decode(),
        _before(before, after),
        common.loads(after) if after else None,
        fields[b"at"].decode(),
        fields[b"r"].decode() if fields.get(b"r") else None,
    )


# The `before` of a change event is stored as what must be undone on `after` to get it back when that is smaller
# than the whole body (a PATCH of one attribute: a few hundred bytes instead of the entity): Redis spends about a
# nanosecond per byte a script moves, twice per byte stored. The marker cannot start a JSON object.
_DIFF = b"~"
_ABSENT = object()


def _before_field(before_raw: bytes | None, before: Entity | None, after: Entity | None) -> bytes:
    """The event's `before`: empty for a creation, the whole body for a deletion, else the smaller of the body and
    the reverse difference (see _before)."""
    if before_raw is None or before is None:
        return b""
    if after is None or ("attrs" in before) != ("attrs" in after):
        return before_raw
    attrs_before, attrs_after = before.get("attrs", {}), after.get("attrs", {})
    undo = {
        "set": {k: v for k, v in before.items() if k != "attrs" and after.get(k, _ABSENT) != v},
        "drop": [k for k in after if k != "attrs" and k not in before],
        "attrs": {k: v for k, v in attrs_before.items() if attrs_after.get(k, _ABSENT) != v},
        "drop_attrs": [k for k in attrs_after if k not in attrs_before],
    }
    diff = _DIFF + common.dumps(undo)
    return diff if len(diff) < len(before_raw) else before_raw


def _before(before: bytes, after: bytes) -> Entity | None:
    """The entity before a change, from the event's fields (see _before_field); a copy of its own."""
    if not before:
        return None
    if not before.startswith(_DIFF):
        return common.loads(before)  # type: ignore[no-any-return]
    undo, entity = common.loads(before[len(_DIFF) :]), common.loads(after)
    for key in undo["drop"]:
        del entity[key]
    entity.update(undo["set"])
    attrs = entity.get("attrs", {})
    for key in undo["drop_attrs"]:
        del attrs[key]
    attrs.update(undo["attrs"])
    return entity  # type: ignore[no-any-return]


def _changed_parts(
    before: Entity | None, after: Entity | None, changed: frozenset[str] | None
) -> tuple[Entity | None, Entity | None]:
    """`before` and `after` cut down to their types and the `changed` attributes (common.changed_attrs; None: all),
    for the index difference (the indexes read only types and attributes): a PATCH of one attribute then indexes
    one attribute, not all."""
    if before is None or after is None or changed is None:
        return before, after
    attrs_before, attrs_after = before.get("attrs", {}), after.get("attrs", {})
    return (
        {"type": before.get("type"), "attrs": {k: attrs_before[k] for k in changed if k in attrs_before}},
        {"type": after.get("type"), "attrs": {k: attrs_after[k] for k in changed if k in attrs_after}},
    )


def _context(data: bytes) -> ContextRecord:
    d = common.loads(data)
    return ContextRecord(d["id"], d["url"], d["kind"], d["body"], d["created_at"], d["extra"])
