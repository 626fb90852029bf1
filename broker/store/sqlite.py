"""SqliteStore: the embedded default backend, one SQLite file that several processes (uvicorn workers) share.

Durability: WAL journal; with `synchronous=NORMAL` (the default) a committed write survives the process being
killed, with `?synchronous=full` it also survives power loss. Every write is one `BEGIN IMMEDIATE` transaction
(read, plan, write entities and change events, commit), so writers on the file are serialised and the change
feed's sequence numbers follow commit order across processes.

The methods are async but run SQLite synchronously on the calling thread: a statement takes microseconds and a
thread hop would cost more. Between the BEGIN and the COMMIT of a write there is no await, so coroutines sharing
this store never interleave inside a transaction; a lock covers callers on other threads.

Group commit: the entity writes that arrive in the same turn of the event loop share one transaction (one BEGIN,
one COMMIT, the pages they share appended to the WAL once), each in a savepoint of its own, so that one write's
failure undoes only that write; every caller is answered after the common COMMIT.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import parse_qs

from broker.background import stop_tasks
from broker.core.errors import ResourceNotFound
from broker.core.model import Entity, now_iso
from broker.requestid import REQUEST_ID
from broker.store import _common as common
from broker.store import sqlite_entitymaps as entitymaps_sql
from broker.store import sqlite_temporal as temporal_sql
from broker.store.apikey_records import SQLITE_SCHEMA as API_KEYS_SCHEMA
from broker.store.apikey_records import SqliteApiKeys
from broker.store.base import (
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
    now_micros,
)
from broker.store.csource_records import SQLITE_SCHEMA as CSOURCE_SCHEMA
from broker.store.csource_records import SqliteCsourceSubscriptions
from broker.store.dataset_records import SQLITE_SCHEMA as DATASETS_SCHEMA
from broker.store.dataset_records import SqliteDatasets
from broker.store.erasure_records import SqliteErasure
from broker.store.policy_records import SQLITE_SCHEMA as POLICIES_SCHEMA
from broker.store.policy_records import SqlitePolicies
from broker.store.registration_records import SQLITE_SCHEMA as REGISTRATIONS_SCHEMA
from broker.store.registration_records import SqliteRegistrations
from broker.store.snapshot_records import SQLITE_SCHEMA as SNAPSHOTS_SCHEMA
from broker.store.snapshot_records import SqliteSnapshots

T = TypeVar("T")
# sqlite3 binds int, float and str parameters as they are, but sends bytes and None through its adaptation
# protocol, which looks for `__adapt__` on its protocol class and raises (and clears) an AttributeError each time:
# measured, 8% of a batch upsert's instructions (a body, a change-feed state and ten history rows per entity,
# half of whose columns are NULL). Identity adapters, both C callables, are found in the registry first.
sqlite3.register_adapter(bytes, bytes)
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))  # {}.get(None) is None

log = logging.getLogger("agora.store.sqlite")

SYNCHRONOUS_MODES = frozenset({"off", "normal", "full", "extra"})
DEFAULT_BUSY_TIMEOUT_MS = 10_000
CONTEXT_POLL_S = 0.5  # how soon a context changed through another process leaves this process's cache
CONTEXT_CHANGES_KEPT = 10_000  # rows of context_changes kept: a watcher asleep past that many changes rereads all

# Entities are rowid tables (bodies may be kilobytes); the small index tables are WITHOUT ROWID.
SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entities (
    tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (tenant, type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, entity_id TEXT NOT NULL,
    before BLOB, after BLOB, at TEXT NOT NULL, request_id TEXT
);
CREATE TABLE IF NOT EXISTS contexts (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL, created_at TEXT NOT NULL,
    extra BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS contexts_by_url ON contexts (url, id);
-- Every put or delete of a context record, for the other processes sharing the file (watch_contexts).
CREATE TABLE IF NOT EXISTS context_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
"""

# Query indexes, kept in the write transaction of their entity; they only narrow the candidates of a query
# (EntityFilter hints), the reference evaluator still decides. Queries read them as correlated lookups per entity
# (see _filter_sql), so attr_numbers needs no index by value: one cost a third of the time of an entity create.
INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS attr_numbers (
    tenant TEXT NOT NULL, id TEXT NOT NULL, attr TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (tenant, id, attr, value)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS geo_boxes USING rtree(box, min_lon, max_lon, min_lat, max_lat);
-- The exact box again (the R*Tree keeps 32-bit floats, rounded outwards), so that a write can tell what changed.
CREATE TABLE IF NOT EXISTS geo_box_owners (
    box INTEGER PRIMARY KEY, tenant TEXT NOT NULL, attr TEXT NOT NULL, id TEXT NOT NULL,
    min_lon REAL NOT NULL, min_lat REAL NOT NULL, max_lon REAL NOT NULL, max_lat REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS geo_box_owners_by_entity ON geo_box_owners (tenant, id);
"""

# Strict comparisons become non-strict: the index holds values rounded to doubles (see _common.numbers).
_INDEX_OPS = {"<": "<=", "<=": "<=", ">": ">=", ">=": ">=", "==": "="}
_BOX_TEST = "(b.min_lon <= ? AND b.max_lon >= ? AND b.min_lat <= ? AND b.max_lat >= ?)"

# A list of values travels as one JSON parameter: no limit on the number of SQL variables, one cached statement.
IN_LIST = "(SELECT value FROM json_each(?))"


#: The layout version of this code (PRAGMA user_version; record 0241). Tables are created at every open (CREATE
#: IF NOT EXISTS), so a table added later needs no migration; a migration is for what that cannot do: a column
#: added to an existing table, data rewritten or indexed again.
#:   0: a file from before versioning (maybe from before the query indexes, attr_numbers and geo_boxes)
#:   1: the query indexes hold every entity
#:   2: changes.request_id (the request id that notifications carry, record 0242)
SCHEMA_VERSION = 2


def _migrate(conn: sqlite3.Connection, path: str) -> list[str]:
    """Bring the file up to SCHEMA_VERSION inside the caller's write transaction; what was done, one line each."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the SQLite store {path} has schema version {version}, newer than this Agora's {SCHEMA_VERSION}: it "
            "was written by a newer Agora; run that version (or restore an `agora dump` made with it)"
        )
    indexed = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'attr_numbers'").fetchone() is not None
    schema = SCHEMA + INDEX_SCHEMA + temporal_sql.SCHEMA + entitymaps_sql.SCHEMA + SNAPSHOTS_SCHEMA
    schema += REGISTRATIONS_SCHEMA + API_KEYS_SCHEMA + POLICIES_SCHEMA + CSOURCE_SCHEMA + DATASETS_SCHEMA
    for statement in _statements(schema):  # one by one: executescript() would COMMIT the transaction first
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO tenants (name) VALUES (?)", (DEFAULT_TENANT,))
    applied = []
    if not indexed:  # version 0, or index tables dropped by hand: the index is rebuilt from the entities
        count = 0
        for tenant, eid, body in conn.execute("SELECT tenant, id, body FROM entities").fetchall():
            _index_entity(conn, tenant, eid, None, common.loads(body))
            count += 1
        if count:
            applied.append(f"1: indexed {count} entities for query pushdown")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(changes)")}
    if version < 2 and "request_id" not in columns:
        conn.execute("ALTER TABLE changes ADD COLUMN request_id TEXT")
        applied.append("2: added changes.request_id")
    if version != SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        applied.append(f"schema version {version} -> {SCHEMA_VERSION}")
    return applied


class SqliteStore(
    SqliteErasure,
    SqliteApiKeys,
    SqliteCsourceSubscriptions,
    SqliteDatasets,
    SqlitePolicies,
    SqliteRegistrations,
    SqliteSnapshots,
    Store,
):
    capabilities: ClassVar[frozenset[str]] = frozenset({"shared"})
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.OperationalError,)
    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        """Only SQLITE_BUSY ("database is locked": another process held the file's write lock past busy_timeout,
        decision record 0047); any other OperationalError (a bad statement, a full disk) stays a bug, a 500."""
        code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.OperationalError) else None
        return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY  # extended codes: SQLITE_BUSY_TIMEOUT, ...

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "normal",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        if synchronous.lower() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}, not {synchronous!r}")
        self.path = str(path)
        self.synchronous = synchronous.lower()
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._lead_fds: dict[str, int] = {}  # name -> the locked file of each singleton this process leads
        self._checkpointer: _Checkpointer | None = None
        # The entity writes waiting for the group commit of each event loop (see the module's docstring).
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[_Work, asyncio.Future[Any]]]] = {}
        self._context_watchers: list[Callable[[str, str], None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self.migrations_applied: list[str] = []

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, with optional query parameters
        `synchronous` (normal | full | extra | off) and `busy_timeout` (milliseconds)."""
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            raise ValueError(f"a SQLite store URL looks like sqlite:///path/to.db, not {url!r}")
        path, _, query = url[len(prefix) :].partition("?")
        if not path:
            raise ValueError(f"no database path in {url!r}")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True, strict_parsing=bool(query)).items()}
        unknown = set(params) - {"synchronous", "busy_timeout"}
        if unknown:
            # A misspelt durability option must not silently fall back to the default.
            raise ValueError(f"unknown SQLite store option(s) {sorted(unknown)} in {url!r}")
        busy = params.get("busy_timeout")
        return cls(
            path,
            synchronous=params.get("synchronous", "normal"),
            busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS if busy is None else int(busy),
        )

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: the module issues no implicit BEGIN; this class owns every transaction.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                self._configure(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            if self.path != ":memory:":
                self._checkpointer = _Checkpointer(self.path, self.busy_timeout_ms)
                self._checkpointer.start()

    def _configure(self, conn: sqlite3.Connection) -> None:
        # busy_timeout first: the statements below may wait for another process that holds the file.
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        # Checkpoints (the WAL copied into the database file, with an fsync) run in a background thread, not in the
        # commit of whichever request crossed the threshold: measured, that wait was 60% of an entity create.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.create_function("regexp", 2, _regexp, deterministic=True)
        # Several workers may open a fresh file at once: create the schema and migrate under the write lock.
        with _immediate(conn):
            self.migrations_applied = _migrate(conn, self.path)

    async def close(self) -> None:
        await stop_tasks([self._watcher])
        self._watcher = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            for fd in self._lead_fds.values():
                os.close(fd)  # releases the lead for another process
            self._lead_fds.clear()

    async def stored_schema_version(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("SqliteStore is not open (await store.open() first)")
            yield self._conn

    # -- tenants ---------------------------------------------------------------------------------------------
    async def tenant_exists(self, tenant: str) -> bool:
        with self._connection() as conn:
            return _tenant_exists(conn, tenant)

    async def list_tenants(self) -> list[str]:
        with self._connection() as conn:
            return [name for (name,) in conn.execute("SELECT name FROM tenants ORDER BY name")]

    # -- entities --------------------------------------------------------------------------------------------
    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, Entity]:
        id_list = common.unique_ids(ids)
        with self._connection() as conn:
            raw = _read_bodies(conn, tenant, id_list)
        return {eid: common.loads(raw[eid]) for eid in id_list if eid in raw}

    async def write(self, tenant: str, ids: Iterable[str], fn: WriteFn[T], *, create_tenant: bool = False) -> T | None:
        id_list = common.unique_ids(ids)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T | None] = loop.create_future()
        pending = self._pending.setdefault(loop, [])
        # Read here: the group commit runs in the context of the turn's first writer, not of each caller.
        rid = REQUEST_ID.get()
        pending.append((lambda conn: self._write_in_transaction(conn, tenant, id_list, fn, create_tenant, rid), done))
        if len(pending) == 1:  # the first write of this turn: the others of the turn join its transaction
            loop.call_soon(self._commit_group, loop)
        return await done

    def _commit_group(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._pending.pop(loop, [])
        outcomes: list[tuple[bool, Any]]
        try:
            with self._connection() as conn, _immediate(conn):
                if len(group) == 1:  # alone: no savepoint needed, a failure rolls the transaction back
                    outcomes = [(True, group[0][0](conn))]
                else:
                    outcomes = [_in_savepoint(work, conn) for work, _ in group]
        except Exception as exc:  # a lone write failed, or the transaction itself (the disk, the lock): none happened
            outcomes = [(False, exc)] * len(group)
        for (_, done), (ok, value) in zip(group, outcomes, strict=True):
            if done.done():  # the caller went away; its write stands, like any acknowledged-late write
                continue
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

    def _write_in_transaction(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        ids: list[str],
        fn: WriteFn[T],
        create_tenant: bool,
        request_id: str | None = None,
    ) -> T | None:
        if not create_tenant and not _tenant_exists(conn, tenant):
            raise common.nonexistent_tenant(tenant)
        raw = _read_bodies(conn, tenant, ids)
        current: dict[str, Entity | None] = {eid: common.loads(raw[eid]) if eid in raw else None for eid in ids}
        # Taken before fn runs: fn is meant to be pure but might still mutate what it was handed.
        old_types = {eid: common.entity_types(e) for eid, e in current.items() if e is not None}
        plan = fn(current)
        writes = common.checked_writes(plan, ids)
        at = now_iso()
        events: list[tuple[str, str, bytes | None, bytes | None, str, str | None]] = []
        instance_rows: list[tuple[Any, ...]] = []  # the history of all entities of the write: one statement
        for eid, after in writes.items():
            if after is None and eid not in raw:
                continue  # deleting what is not there changes nothing
            after_raw = None if after is None else common.dumps(after)
            # Decoded again: the plan may have changed `current` in place to make `after`.
            before = common.loads(raw[eid]) if eid in raw else None
            changed = common.changed_attrs(before, after)
            _put_entity(conn, tenant, eid, after_raw, old_types.get(eid, frozenset()), before, after, changed)
            events.append((tenant, eid, raw.get(eid), after_raw, at, request_id))
            if self.history.record:
                temporal_sql.record_change(conn, tenant, before, after, at, self.history, changed, instance_rows)
        temporal_sql.insert_rows(conn, instance_rows)
        if events:
            conn.executemany(
                "INSERT INTO changes (tenant, entity_id, before, after, at, request_id) VALUES (?, ?, ?, ?, ?, ?)",
                events,
            )
            conn.execute("INSERT OR IGNORE INTO tenants (name) VALUES (?)", (tenant,))
        return plan.result

    async def find_ids(self, tenant: str, flt: EntityFilter) -> list[str]:
        where, params = _filter_sql(tenant, flt)
        with self._connection() as conn:
            return [eid for (eid,) in conn.execute(f"SELECT id FROM entities WHERE {where} ORDER BY id", params)]

    async def scan(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        where, params = _filter_sql(tenant, flt)
        with self._connection() as conn:
            rows = conn.execute(f"SELECT body FROM entities WHERE {where} ORDER BY id", params).fetchall()
        return [common.loads(body) for (body,) in rows]

    async def scan_batches(self, tenant: str, flt: EntityFilter, size: int = 256) -> AsyncIterator[list[Entity]]:
        # Keyset paging (id > last) with a short read per batch: no cursor stays open across the awaits between
        # batches, so writers are never held up by a reader that stopped early.
        where, params = _filter_sql(tenant, flt)
        last = ""
        while True:
            with self._connection() as conn:
                rows = conn.execute(
                    f"SELECT id, body FROM entities WHERE {where} AND id > ? ORDER BY id LIMIT ?", [*params, last, size]
                ).fetchall()
            if not rows:
                return
            yield [common.loads(body) for (_, body) in rows]
            if len(rows) < size:
                return
            last = rows[-1][0]

    # -- temporal history (queries in sqlite_temporal) -----------------------------------------------------------
    async def temporal_entities(self, tenant: str, flt: EntityFilter) -> list[TemporalEntityRecord]:
        if flt.id_pattern is not None:
            common.compile_id_pattern(flt.id_pattern)
        with self._connection() as conn:
            return temporal_sql.entities(conn, tenant, flt)

    async def temporal_instances(self, tenant: str, ids: Iterable[str], query: InstanceQuery) -> TemporalHistory:
        with self._connection() as conn:
            return temporal_sql.instances(conn, tenant, ids, query)

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
        with self._connection() as conn, _immediate(conn):
            if not create and not temporal_sql.exists(conn, tenant, entity_id):
                raise ResourceNotFound(f"no temporal evolution of entity {entity_id}")
            conn.execute("INSERT OR IGNORE INTO tenants (name) VALUES (?)", (tenant,))
            return temporal_sql.add(conn, tenant, entity_id, head, instances, (at or now_iso()))

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        with self._connection() as conn, _immediate(conn):
            return temporal_sql.delete_entity(conn, tenant, entity_id)

    async def temporal_delete_attr(self, tenant: str, entity_id: str, attr: str, dataset: str | None) -> int:
        with self._connection() as conn, _immediate(conn):
            return temporal_sql.delete_attr(conn, tenant, entity_id, attr, dataset)

    async def temporal_replace_instance(self, tenant: str, entity_id: str, instance: TemporalInstance) -> bool:
        with self._connection() as conn, _immediate(conn):
            return temporal_sql.replace_instance(conn, tenant, entity_id, instance)

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        with self._connection() as conn, _immediate(conn):
            return temporal_sql.delete_instance(conn, tenant, entity_id, attr, instance_id)

    async def temporal_retain(self, older_than: int | None, max_count: int | None) -> int:
        removed = 0
        if older_than is not None:
            while True:  # short transactions: writers wait for one batch at most
                with self._connection() as conn, _immediate(conn):
                    n = temporal_sql.retain_older(conn, older_than, 5000)
                removed += n
                if n < 5000:
                    break
        if max_count is not None:
            with self._connection() as conn:
                keys = temporal_sql.attribute_keys(conn)
            for key in keys:
                with self._connection() as conn, _immediate(conn):
                    removed += temporal_sql.retain_count(conn, key, max_count)
        return removed

    async def temporal_numeric_buckets(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        query: InstanceQuery,
        origin: int,
        period: int,
        *,
        methods: frozenset[str] | None = None,
    ) -> list[tuple[int, int, float, float, float, float, int]] | None:
        with self._connection() as conn:
            return temporal_sql.numeric_buckets(conn, tenant, entity_id, attr, query, origin, period, methods)

    # -- entity maps (SQL in sqlite_entitymaps) ------------------------------------------------------------------
    async def put_entity_map(self, tenant: str, record: EntityMapRecord) -> None:
        with self._connection() as conn, _immediate(conn):
            entitymaps_sql.put(conn, tenant, record)

    async def get_entity_map(self, tenant: str, map_id: str) -> EntityMapRecord | None:
        with self._connection() as conn:
            return entitymaps_sql.get(conn, tenant, map_id, now_micros())

    async def entity_map_ids(self, tenant: str, map_id: str, start: int, stop: int) -> list[str] | None:
        with self._connection() as conn:
            return entitymaps_sql.ids(conn, tenant, map_id, start, stop, now_micros())

    async def set_entity_map_expiry(self, tenant: str, map_id: str, expires_at: int) -> bool:
        with self._connection() as conn:
            return entitymaps_sql.set_expiry(conn, tenant, map_id, expires_at, now_micros())

    async def delete_entity_map(self, tenant: str, map_id: str) -> bool:
        with self._connection() as conn, _immediate(conn):
            return entitymaps_sql.delete(conn, tenant, map_id, now_micros())

    async def purge_entity_maps(self) -> int:
        with self._connection() as conn, _immediate(conn):
            return entitymaps_sql.purge(conn, now_micros())

    # -- change feed -----------------------------------------------------------------------------------------
    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT seq, tenant, entity_id, before, after, at, request_id FROM changes WHERE seq > ? ORDER BY seq "
                "LIMIT ?",
                (seq, max(limit, 0)),
            ).fetchall()
        return [Change(s, t, eid, _load_optional(b), _load_optional(a), at, r) for s, t, eid, b, a, at, r in rows]

    async def trim_changes(self, up_to: int) -> int:
        removed = 0
        while True:  # in batches: a writer waits for one short transaction at most
            with self._connection() as conn, _immediate(conn):
                n = conn.execute(
                    "DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE seq <= ? ORDER BY seq LIMIT 5000)",
                    (up_to,),
                ).rowcount
            removed += n
            if n < 5000:
                return removed

    # -- @context documents ----------------------------------------------------------------------------------
    async def put_context(self, record: ContextRecord) -> None:
        row = (
            record.id,
            record.url,
            record.kind,
            common.dumps(record.body),
            record.created_at,
            common.dumps(record.extra),
        )
        with self._connection() as conn, _immediate(conn):
            conn.execute("INSERT OR REPLACE INTO contexts VALUES (?, ?, ?, ?, ?, ?)", row)
            _context_changed(conn, record.id, record.url)

    async def get_context(self, context_id: str) -> ContextRecord | None:
        return self._one_context("WHERE id = ?", (context_id,))

    async def find_context_by_url(self, url: str) -> ContextRecord | None:
        # Lowest id first, so that duplicates of a URL resolve the same way in every backend.
        return self._one_context("WHERE url = ? ORDER BY id LIMIT 1", (url,))

    async def list_contexts(self) -> list[ContextRecord]:
        with self._connection() as conn:
            rows = conn.execute(f"{_CONTEXT_SELECT} ORDER BY id").fetchall()
        return [_context_record(row) for row in rows]

    async def delete_context(self, context_id: str) -> bool:
        with self._connection() as conn, _immediate(conn):
            row = conn.execute("SELECT url FROM contexts WHERE id = ?", (context_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM contexts WHERE id = ?", (context_id,))
            _context_changed(conn, context_id, row[0])
            return True

    def watch_contexts(self, callback: Callable[[str, str], None]) -> None:
        """Several processes may share the file (`agora serve --workers N`): follow the context_changes table from
        now on, every CONTEXT_POLL_S, calling `callback(id, url)` for each change (decision record 0082)."""
        self._context_watchers.append(callback)
        if self._watcher is None or self._watcher.done():
            with self._connection() as conn:
                last = conn.execute("SELECT coalesce(max(seq), 0) FROM context_changes").fetchone()[0]
            self._watcher = asyncio.create_task(self._watch_contexts(last), name="agora-sqlite-contexts")

    async def _watch_contexts(self, last: int) -> None:
        while True:
            await asyncio.sleep(CONTEXT_POLL_S)
            try:
                last = self._context_changes_since(last)
            except sqlite3.Error as exc:  # the file busy for a moment: look again at the next poll
                log.warning("reading the context changes failed (%s); trying again", exc)

    def _context_changes_since(self, last: int) -> int:
        """Call the watchers for the changes after `last`; the last change seen. When the changes right after
        `last` were trimmed away (a process asleep for CONTEXT_CHANGES_KEPT changes), every record is reported."""
        with self._connection() as conn:
            rows = conn.execute("SELECT seq, id, url FROM context_changes WHERE seq > ? ORDER BY seq", (last,))
            changes = rows.fetchall()
            if changes and changes[0][0] > last + 1 and last > 0:
                lost = conn.execute(f"{_CONTEXT_SELECT} ORDER BY id").fetchall()
                changes += [(changes[-1][0], row[0], row[1]) for row in lost]
                log.warning("missed some context changes: every hosted context is read again")
        for _, context_id, url in changes:
            for callback in self._context_watchers:
                try:
                    callback(context_id, url)
                except Exception:
                    log.exception("a context watcher failed")
        return changes[-1][0] if changes else last

    def _one_context(self, clause: str, params: tuple[str, ...]) -> ContextRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"{_CONTEXT_SELECT} {clause}", params).fetchone()
        return None if row is None else _context_record(row)

    # -- subscriptions -------------------------------------------------------------------------------------------
    async def create_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        row = (tenant, sub_id, common.dumps(body), common.dumps({}))
        with self._connection() as conn, _immediate(conn):
            cur = conn.execute("INSERT OR IGNORE INTO subscriptions (tenant, id, body, state) VALUES (?, ?, ?, ?)", row)
            return _subscriptions_changed(conn, cur.rowcount > 0)

    async def replace_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        # Only the body column: the notifier's delivery state in the same row is left as it is.
        params = (common.dumps(body), tenant, sub_id)
        with self._connection() as conn, _immediate(conn):
            cur = conn.execute("UPDATE subscriptions SET body = ? WHERE tenant = ? AND id = ?", params)
            return _subscriptions_changed(conn, cur.rowcount > 0)

    async def get_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"{_SUBSCRIPTION_SELECT} WHERE tenant = ? AND id = ?", (tenant, sub_id)).fetchone()
        return None if row is None else _subscription_record(row)

    async def list_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        with self._connection() as conn:
            if tenant is None:
                rows = conn.execute(f"{_SUBSCRIPTION_SELECT} ORDER BY tenant, id").fetchall()
            else:
                rows = conn.execute(f"{_SUBSCRIPTION_SELECT} WHERE tenant = ? ORDER BY id", (tenant,)).fetchall()
        return [_subscription_record(row) for row in rows]

    async def delete_subscription(self, tenant: str, sub_id: str) -> bool:
        with self._connection() as conn, _immediate(conn):
            cur = conn.execute("DELETE FROM subscriptions WHERE tenant = ? AND id = ?", (tenant, sub_id))
            return _subscriptions_changed(conn, cur.rowcount > 0)

    async def subscriptions_version(self) -> int | None:
        with self._connection() as conn:
            row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (_SUBSCRIPTIONS_VERSION,)).fetchone()
        return 0 if row is None else int(row[0])

    async def record_delivery(self, tenant: str, sub_id: str, delivery: Delivery) -> None:
        # Read and write the state in one write transaction: another process may record a delivery meanwhile.
        with self._connection() as conn, _immediate(conn):
            key = (tenant, sub_id)
            row = conn.execute("SELECT state FROM subscriptions WHERE tenant = ? AND id = ?", key).fetchone()
            if row is None:
                return
            state = common.folded_state(common.loads(row[0]), delivery)
            conn.execute(
                "UPDATE subscriptions SET state = ? WHERE tenant = ? AND id = ?", (common.dumps(state), tenant, sub_id)
            )

    async def record_deliveries(self, outcomes: Mapping[tuple[str, str], list[Delivery]]) -> None:
        with self._connection() as conn, _immediate(conn):  # one transaction for the whole flush
            for (tenant, sub_id), deliveries in outcomes.items():
                key = (tenant, sub_id)
                row = conn.execute("SELECT state FROM subscriptions WHERE tenant = ? AND id = ?", key).fetchone()
                if row is None:
                    continue
                state = common.loads(row[0])
                for delivery in deliveries:
                    state = common.folded_state(state, delivery)
                conn.execute(
                    "UPDATE subscriptions SET state = ? WHERE tenant = ? AND id = ?", (common.dumps(state), *key)
                )

    # -- cursors -------------------------------------------------------------------------------------------------
    async def get_cursor(self, name: str) -> int | None:
        with self._connection() as conn:
            row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    async def set_cursor(self, name: str, seq: int) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                (name, seq),
            )

    async def last_seq(self) -> int:
        # sqlite_sequence remembers the highest AUTOINCREMENT value even after rows were deleted.
        with self._connection() as conn:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return 0 if row is None else int(row[0])

    async def try_lead(self, name: str) -> bool:
        """An exclusive flock on `<db>.<name>.lock`, one per singleton (notifier, periodic notifications,
        retention): the kernel drops it when the holder exits, even on SIGKILL, so the workers sharing the file
        elect one of each and a crashed one is replaced at once."""
        if self.path == ":memory:":
            return True
        with self._lock:
            if name in self._lead_fds:
                return True
            fd = os.open(f"{self.path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._lead_fds[name] = fd
            return True


class _Checkpointer(threading.Thread):
    """Copies the WAL into the database file every `interval` seconds on its own connection (PASSIVE: it never
    waits for readers or writers), so that no request pays for a checkpoint and its fsync. With synchronous=NORMAL
    a commit itself writes the WAL only; durability is unchanged (decision record 0008)."""

    def __init__(self, path: str, busy_timeout_ms: int, interval: float = 0.5) -> None:
        super().__init__(name="agora-sqlite-checkpoint", daemon=True)
        self.path, self.busy_timeout_ms, self.interval = path, busy_timeout_ms, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            while not self._stop_event.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    continue  # busy or locked now: the next round copies what this one could not
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


_SUBSCRIPTION_SELECT = "SELECT tenant, id, body, state FROM subscriptions"
_SUBSCRIPTIONS_VERSION = "subscriptions:version"  # a row of the cursors table, counted up by every document change


def _context_changed(conn: sqlite3.Connection, context_id: str, url: str) -> None:
    """Record a put or delete of a context record, in its transaction, for every process's watcher."""
    seq = conn.execute("INSERT INTO context_changes (id, url) VALUES (?, ?)", (context_id, url)).lastrowid
    if seq is not None and seq % 100 == 0:  # now and then, forget the oldest
        conn.execute("DELETE FROM context_changes WHERE seq <= ?", (seq - CONTEXT_CHANGES_KEPT,))


def _subscriptions_changed(conn: sqlite3.Connection, changed: bool) -> bool:
    """Count the subscriptions' version up, in the transaction of the change, when there was one."""
    if changed:
        conn.execute(
            "INSERT INTO cursors (name, seq) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET seq = seq + 1",
            (_SUBSCRIPTIONS_VERSION,),
        )
    return changed


def _subscription_record(row: tuple[Any, ...]) -> SubscriptionRecord:
    tenant, sub_id, body, state = row
    return SubscriptionRecord(tenant, sub_id, common.loads(body), common.loads(state))


_CONTEXT_SELECT = "SELECT id, url, kind, body, created_at, extra FROM contexts"


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: BEGIN IMMEDIATE takes the file's write lock up front (waiting up to busy_timeout),
    so the reads inside it see the state the writes are based on. Any exception rolls everything back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_Work = Callable[[sqlite3.Connection], Any]


def _in_savepoint(work: _Work, conn: sqlite3.Connection) -> tuple[bool, Any]:
    """(True, result) or (False, the exception) of one write of a group; a failed one leaves no trace."""
    conn.execute("SAVEPOINT w")
    try:
        result = work(conn)
    except Exception as exc:
        conn.execute("ROLLBACK TO w")
        conn.execute("RELEASE w")
        return False, exc
    conn.execute("RELEASE w")
    return True, result


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _regexp(pattern: str, value: str | None) -> bool:
    """SQLite's `value REGEXP pattern`, with NGSI-LD idPattern semantics: a match anywhere (re.search)."""
    return value is not None and common.compile_id_pattern(pattern).search(value) is not None


def _tenant_exists(conn: sqlite3.Connection, tenant: str) -> bool:
    return conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone() is not None


def _read_bodies(conn: sqlite3.Connection, tenant: str, ids: list[str]) -> dict[str, bytes]:
    if not ids:
        return {}
    if len(ids) == 1:  # the common single-entity case: an equality lookup costs half of a json_each join
        return dict(conn.execute("SELECT id, body FROM entities WHERE tenant = ? AND id = ?", (tenant, ids[0])))
    rows = conn.execute(
        f"SELECT id, body FROM entities WHERE tenant = ? AND id IN {IN_LIST}", (tenant, common.dumps(ids))
    )
    return dict(rows)


def _put_entity(
    conn: sqlite3.Connection,
    tenant: str,
    eid: str,
    body: bytes | None,
    old_types: frozenset[str],
    before: Entity | None,
    after: Entity | None,
    changed: frozenset[str] | None,
) -> None:
    """Store (or delete, when body is None) one entity and bring its rows in entity_types and the query indexes
    up to date."""
    if body is None:
        conn.execute("DELETE FROM entities WHERE tenant = ? AND id = ?", (tenant, eid))
    else:
        conn.execute(
            "INSERT INTO entities (tenant, id, body) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant, id) DO UPDATE SET body = excluded.body",
            (tenant, eid, body),
        )
    new_types = frozenset() if after is None else common.entity_types(after)
    _many(
        conn,
        "DELETE FROM entity_types WHERE tenant = ? AND type = ? AND id = ?",
        [(tenant, t, eid) for t in old_types - new_types],
    )
    _many(
        conn,
        "INSERT INTO entity_types (tenant, type, id) VALUES (?, ?, ?)",
        [(tenant, t, eid) for t in new_types - old_types],
    )
    _index_entity(conn, tenant, eid, before, after, changed)


def _many(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """executemany, skipped when there is no row: most writes leave most index tables alone, and each call makes
    a cursor and looks its statement up even for nothing."""
    if rows:
        conn.executemany(sql, rows)


def _index_entity(
    conn: sqlite3.Connection,
    tenant: str,
    eid: str,
    before: Entity | None,
    after: Entity | None,
    changed: frozenset[str] | None = None,
) -> None:
    """Bring the query index rows of one entity from `before` to `after` (None: absent). Only rows that changed
    are written: every page a write dirties costs WAL volume and checkpoint work. The rows of `before` are those
    the write that stored it made, so they are computed again, not read back, and only for the attributes that
    changed (`changed`, None for all): a PATCH of one number neither reads the entity's index rows nor parses its
    geometry."""
    key = (tenant, eid)
    if after is None:
        conn.execute("DELETE FROM attr_numbers WHERE tenant = ? AND id = ?", key)
        _index_boxes(conn, tenant, eid, set(), existed=before is not None)
        return
    old_numbers = set() if before is None else common.numbers(before, changed)
    numbers = common.numbers(after, changed)
    _many(
        conn,
        "DELETE FROM attr_numbers WHERE tenant = ? AND id = ? AND attr = ? AND value = ?",
        [(*key, attr, value) for attr, value in old_numbers - numbers],
    )
    _many(
        conn,
        "INSERT OR IGNORE INTO attr_numbers (tenant, id, attr, value) VALUES (?, ?, ?, ?)",
        [(*key, attr, value) for attr, value in numbers - old_numbers],
    )
    if before is None or common.has_geo(before, changed) or common.has_geo(after, changed):
        _index_boxes(conn, tenant, eid, common.geo_boxes(after), existed=before is not None)


def _index_boxes(
    conn: sqlite3.Connection, tenant: str, eid: str, boxes: set[tuple[str, Box]], *, existed: bool
) -> None:
    """The R*Tree rows of one entity made equal to `boxes`, keeping those that did not move."""
    old_boxes: dict[tuple[str, Box], int] = {}
    if existed:
        rows = conn.execute(
            "SELECT box, attr, min_lon, min_lat, max_lon, max_lat FROM geo_box_owners WHERE tenant = ? AND id = ?",
            (tenant, eid),
        )
        old_boxes = {(attr, (x0, y0, x1, y1)): box for box, attr, x0, y0, x1, y1 in rows}
    gone = [(box,) for owned, box in old_boxes.items() if owned not in boxes]
    _many(conn, "DELETE FROM geo_boxes WHERE box = ?", gone)
    _many(conn, "DELETE FROM geo_box_owners WHERE box = ?", gone)
    for attr, (min_lon, min_lat, max_lon, max_lat) in boxes - old_boxes.keys():
        box = conn.execute(
            "INSERT INTO geo_box_owners (tenant, attr, id, min_lon, min_lat, max_lon, max_lat) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tenant, attr, eid, min_lon, min_lat, max_lon, max_lat),
        ).lastrowid
        conn.execute("INSERT INTO geo_boxes VALUES (?, ?, ?, ?, ?)", (box, min_lon, max_lon, min_lat, max_lat))


def _filter_sql(tenant: str, flt: EntityFilter) -> tuple[str, list[Any]]:
    """The WHERE clause over `entities` for a filter; every part is pushed down to SQLite."""
    clauses = ["tenant = ?"]
    params: list[Any] = [tenant]
    if flt.ids is not None:
        clauses.append(f"id IN {IN_LIST}")
        params.append(common.dumps(sorted(flt.ids)))
    # Filters on other tables are correlated lookups, not IN lists: queries read entities in id order and most
    # stop after a page, and an IN list would be rebuilt in full for every batch read.
    if flt.types is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM entity_types AS t "
            f"WHERE t.tenant = ? AND t.type IN {IN_LIST} AND t.id = entities.id)"
        )
        params += [tenant, common.dumps(sorted(flt.types))]
    if flt.id_pattern is not None:
        common.compile_id_pattern(flt.id_pattern)  # an invalid pattern raises re.error here, as in every backend
        clauses.append("id REGEXP ?")
        params.append(flt.id_pattern)
    for attr, op, number in flt.attr_ranges or ():
        if op in _INDEX_OPS:  # a backend may ignore any hint; this one ignores unknown operators
            clauses.append(
                "EXISTS (SELECT 1 FROM attr_numbers AS n WHERE n.tenant = ? AND n.id = entities.id AND n.attr = ? "
                f"AND n.value {_INDEX_OPS[op]} ?)"
            )
            params += [tenant, attr, common.as_double(number)]
    if flt.bbox is not None:
        attr, boxes = flt.bbox
        clauses.append(
            "EXISTS (SELECT 1 FROM geo_box_owners AS o JOIN geo_boxes AS b ON b.box = o.box "
            f"WHERE o.tenant = ? AND o.id = entities.id AND o.attr = ? AND ({' OR '.join([_BOX_TEST] * len(boxes))}))"
            if boxes
            else "0"
        )
        params += [tenant, attr] if boxes else []
        for min_lon, min_lat, max_lon, max_lat in boxes:
            params += [max_lon, min_lon, max_lat, min_lat]
    return " AND ".join(clauses), params


def _load_optional(data: bytes | None) -> Entity | None:
    return None if data is None else common.loads(data)


def _context_record(row: tuple[Any, ...]) -> ContextRecord:
    cid, url, kind, body, created_at, extra = row
    return ContextRecord(cid, url, kind, common.loads(body), created_at, common.loads(extra))
