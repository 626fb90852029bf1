"""The temporal history tables of the SQLite store and the SQL that reads and writes them.

One row per recorded attribute instance, with the instant members as integer microseconds (so that any UTC offset
or precision a client wrote orders right) and the numeric value of a Property, on which aggregations run in SQL.
Everything here runs inside the caller's transaction or connection: sqlite.py owns both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from broker.core.model import Entity
from broker.store import _common as common
from broker.store.base import (
    ALL_DATASETS,
    EntityFilter,
    InstanceQuery,
    TemporalEntityRecord,
    TemporalHistory,
    TemporalInstance,
)
from broker.temporal import history

SCHEMA = """
CREATE TABLE IF NOT EXISTS temporal_entities (
    tenant TEXT NOT NULL, id TEXT NOT NULL, head BLOB NOT NULL, created_at TEXT NOT NULL, modified_at TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS temporal_instances (
    tenant TEXT NOT NULL, entity_id TEXT NOT NULL, attr TEXT NOT NULL, instance_id TEXT NOT NULL,
    dataset_id TEXT, observed INTEGER, created INTEGER, modified INTEGER, deleted INTEGER, num REAL,
    body BLOB NOT NULL
);
-- Covering for aggregations (num, dataset_id): they read the index alone, never the table.
DROP INDEX IF EXISTS temporal_by_observed;
CREATE INDEX IF NOT EXISTS temporal_observed_cover ON temporal_instances
    (tenant, entity_id, attr, observed, num, dataset_id);
-- No index by modifiedAt: a third B-tree page written by every recorded instance cost 6% of a PATCH, and a query
-- bounded on modifiedAt (or createdAt, deletedAt) reads the attribute's instances through the index above.
DROP INDEX IF EXISTS temporal_by_modified;
"""

#: timeproperty -> column
COLUMNS = {"observedAt": "observed", "createdAt": "created", "modifiedAt": "modified", "deletedAt": "deleted"}
_INSERT = (
    "INSERT INTO temporal_instances (tenant, entity_id, attr, instance_id, dataset_id, observed, created, modified, "
    "deleted, num, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def record_change(
    conn: sqlite3.Connection,
    tenant: str,
    before: Entity | None,
    after: Entity | None,
    at: str,
    policy: Any,
    changed: frozenset[str] | None = None,
    rows: list[tuple[Any, ...]] | None = None,
) -> None:
    """The history of one committed change, in the write's transaction (`changed`: the attributes that differ).
    With `rows`, the instance rows are appended there for the caller to insert with those of the other entities
    of its write, in one statement (`insert_rows`), instead of being inserted here."""
    update = history.history_update(policy, before, after, at, changed)
    if update is None:
        return
    if update.drop:
        delete_entity(conn, tenant, update.entity_id)
        return
    if before is not None and update.head is not None and update.head == history.entity_head(before):
        # Same types and scope as before: the record only has to exist (history may have been off, or deleted).
        conn.execute(
            "INSERT OR IGNORE INTO temporal_entities (tenant, id, head, created_at, modified_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (tenant, update.entity_id, common.dumps(update.head), at, at),
        )
        _insert(conn, tenant, update.entity_id, update.instances, rows)
        return
    add(conn, tenant, update.entity_id, update.head, update.instances, at, rows)


def add(
    conn: sqlite3.Connection,
    tenant: str,
    entity_id: str,
    head: dict[str, Any] | None,
    instances: list[TemporalInstance],
    at: str,
    rows: list[tuple[Any, ...]] | None = None,
) -> bool:
    """Add instances (and merge `head` into the temporal entity, made when missing); True when it was made.
    `rows`: as in record_change."""
    row = conn.execute("SELECT head FROM temporal_entities WHERE tenant = ? AND id = ?", (tenant, entity_id)).fetchone()
    old: dict[str, Any] = common.loads(row[0]) if row is not None else {"type": []}
    merged = dict(old)
    if head is not None:
        merged["type"] = list(dict.fromkeys([*old.get("type", []), *head.get("type", [])]))
        if "scope" in head:
            merged["scope"] = head["scope"]
    if row is None:
        conn.execute(
            "INSERT INTO temporal_entities (tenant, id, head, created_at, modified_at) VALUES (?, ?, ?, ?, ?)",
            (tenant, entity_id, common.dumps(merged), at, at),
        )
    elif merged != old:  # the record changes with its types or scope, not with every instance (record 0070)
        conn.execute(
            "UPDATE temporal_entities SET head = ?, modified_at = ? WHERE tenant = ? AND id = ?",
            (common.dumps(merged), at, tenant, entity_id),
        )
    _insert(conn, tenant, entity_id, instances, rows)
    return row is None


def _insert(
    conn: sqlite3.Connection,
    tenant: str,
    entity_id: str,
    instances: list[TemporalInstance],
    rows: list[tuple[Any, ...]] | None = None,
) -> None:
    made = [(tenant, entity_id, i.attr, i.instance_id, *history.index_row(i), common.dumps(i.body)) for i in instances]
    if rows is None:
        insert_rows(conn, made)
    else:
        rows += made


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Instance rows gathered by record_change, in one statement."""
    if rows:
        conn.executemany(_INSERT, rows)


def exists(conn: sqlite3.Connection, tenant: str, entity_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM temporal_entities WHERE tenant = ? AND id = ?", (tenant, entity_id)).fetchone()
    return row is not None


def entities(conn: sqlite3.Connection, tenant: str, flt: EntityFilter) -> list[TemporalEntityRecord]:
    clauses, params = ["tenant = ?"], [tenant]
    if flt.ids is not None:
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(common.dumps(sorted(flt.ids)).decode())
    rows = conn.execute(
        f"SELECT id, head, created_at, modified_at FROM temporal_entities WHERE {' AND '.join(clauses)} ORDER BY id",
        params,
    ).fetchall()
    out = []
    for eid, raw, created, modified in rows:
        head = common.loads(raw)
        if common.matches_id_and_types(eid, head.get("type", []), flt):
            out.append(TemporalEntityRecord(eid, head.get("type", []), created, modified, head.get("scope")))
    return out


def instances(conn: sqlite3.Connection, tenant: str, ids: Iterable[str], query: InstanceQuery) -> TemporalHistory:
    out: TemporalHistory = {}
    for eid in common.unique_ids(ids):
        attrs = [a for (a,) in conn.execute(_ATTRS_OF_ENTITY, (tenant, eid, tenant, eid))]
        found: dict[str, list[TemporalInstance]] = {}
        for attr in attrs:
            if query.attrs is not None and attr not in query.attrs:
                continue
            chosen = _attr_instances(conn, tenant, eid, attr, query)
            if chosen:
                found[attr] = chosen
        if found:
            out[eid] = found
    return out


# The attributes of one entity's history by seeking from one to the next in the index: SELECT DISTINCT would
# read every instance (100,000 for a long history) to find a handful of names.
_ATTRS_OF_ENTITY = """
WITH RECURSIVE names(attr) AS (
    SELECT MIN(attr) FROM temporal_instances WHERE tenant = ? AND entity_id = ?
    UNION ALL
    SELECT (
        SELECT MIN(t.attr) FROM temporal_instances AS t
        WHERE t.tenant = ? AND t.entity_id = ? AND t.attr > names.attr
    )
    FROM names WHERE names.attr IS NOT NULL
)
SELECT attr FROM names WHERE attr IS NOT NULL
"""


def _attr_instances(
    conn: sqlite3.Connection, tenant: str, eid: str, attr: str, query: InstanceQuery
) -> list[TemporalInstance]:
    column = COLUMNS[query.timeproperty]
    where, params = time_where(tenant, eid, attr, query)
    direction = "DESC" if query.newest_first and query.per_attr is not None else "ASC"
    limit = "" if query.per_attr is None else f" LIMIT {int(query.per_attr)}"
    select = f"SELECT rowid, instance_id, body, {{key}} FROM temporal_instances WHERE {where} {{only}} "
    order = f"ORDER BY {{key}} {direction}, rowid {direction}{limit}"
    if query.start is not None or query.end is not None:  # every selected row has the column: the index orders
        rows = conn.execute((select + order).format(key=column, only=""), params).fetchall()
    else:
        # Rows without the column sit by modifiedAt (else createdAt). Two index-ordered reads, merged, instead of
        # one sort over an expression that no index holds (a lastN over 100,000 instances: 150 ms -> 1 ms).
        fallback = "modified" if column != "modified" else "created"
        rows = (
            conn.execute((select + order).format(key=column, only=f"AND {column} IS NOT NULL"), params).fetchall()
            + conn.execute(
                (select + order).format(key=f"COALESCE({fallback}, 0)", only=f"AND {column} IS NULL"), params
            ).fetchall()
        )
        rows.sort(key=lambda r: (r[3], r[0]), reverse=direction == "DESC")
        if query.per_attr is not None:
            rows = rows[: query.per_attr]
    if direction == "DESC":
        rows.reverse()
    return [TemporalInstance(attr, iid, common.loads(body)) for _, iid, body, _ in rows]


def time_where(tenant: str, eid: str, attr: str, query: InstanceQuery) -> tuple[str, list[Any]]:
    """The WHERE clause selecting one attribute's instances by time bounds and datasetIds."""
    column = COLUMNS[query.timeproperty]
    clauses = ["tenant = ?", "entity_id = ?", "attr = ?"]
    params: list[Any] = [tenant, eid, attr]
    if query.start is not None:
        clauses.append(f"{column} >= ?")
        params.append(query.start)
    if query.end is not None:
        clauses.append(f"{column} < ?")
        params.append(query.end)
    if query.datasets is not None:
        named = sorted(d for d in query.datasets if d is not None)
        parts = ["dataset_id IN (SELECT value FROM json_each(?))"] if named else []
        params += [common.dumps(named).decode()] if named else []
        if None in query.datasets:
            parts.append("dataset_id IS NULL")
        clauses.append(f"({' OR '.join(parts)})")
    return " AND ".join(clauses), params


def delete_entity(conn: sqlite3.Connection, tenant: str, entity_id: str) -> bool:
    conn.execute("DELETE FROM temporal_instances WHERE tenant = ? AND entity_id = ?", (tenant, entity_id))
    cur = conn.execute("DELETE FROM temporal_entities WHERE tenant = ? AND id = ?", (tenant, entity_id))
    return cur.rowcount > 0


def delete_attr(conn: sqlite3.Connection, tenant: str, entity_id: str, attr: str, dataset: str | None) -> int:
    sql = "DELETE FROM temporal_instances WHERE tenant = ? AND entity_id = ? AND attr = ?"
    params: list[Any] = [tenant, entity_id, attr]
    if dataset != ALL_DATASETS:
        sql += " AND dataset_id IS ?"
        params.append(dataset)
    return conn.execute(sql, params).rowcount


def replace_instance(conn: sqlite3.Connection, tenant: str, entity_id: str, inst: TemporalInstance) -> bool:
    cur = conn.execute(
        "UPDATE temporal_instances SET dataset_id = ?, observed = ?, created = ?, modified = ?, deleted = ?, num = ?, "
        "body = ? WHERE tenant = ? AND entity_id = ? AND attr = ? AND instance_id = ?",
        (*history.index_row(inst), common.dumps(inst.body), tenant, entity_id, inst.attr, inst.instance_id),
    )
    return cur.rowcount > 0


def delete_instance(conn: sqlite3.Connection, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
    cur = conn.execute(
        "DELETE FROM temporal_instances WHERE tenant = ? AND entity_id = ? AND attr = ? AND instance_id = ?",
        (tenant, entity_id, attr, instance_id),
    )
    return cur.rowcount > 0


def retain_older(conn: sqlite3.Connection, older_than: int, batch: int) -> int:
    """Delete up to `batch` instances last modified before `older_than`."""
    return conn.execute(
        "DELETE FROM temporal_instances WHERE rowid IN "
        "(SELECT rowid FROM temporal_instances WHERE COALESCE(modified, created, 0) < ? LIMIT ?)",
        (older_than, batch),
    ).rowcount


def attribute_keys(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return conn.execute("SELECT DISTINCT tenant, entity_id, attr FROM temporal_instances").fetchall()


def retain_count(conn: sqlite3.Connection, key: tuple[str, str, str], max_count: int) -> int:
    """Keep the newest `max_count` instances (by modifiedAt) of one attribute."""
    return conn.execute(
        "DELETE FROM temporal_instances WHERE tenant = ? AND entity_id = ? AND attr = ? AND rowid NOT IN "
        "(SELECT rowid FROM temporal_instances WHERE tenant = ? AND entity_id = ? AND attr = ? "
        "ORDER BY COALESCE(modified, created, 0) DESC, rowid DESC LIMIT ?)",
        (*key, *key, max_count),
    ).rowcount


#: Up to this many periods, each is one indexed range query (no sorter); beyond, one GROUP BY query.
_RANGE_QUERIES_UP_TO = 5000
Bucket = tuple[int, int, float, float, float, float, int]


#: What each aggregation method needs computed per period (beyond the count and the datasetId check).
_NEEDS: dict[str, tuple[str, ...]] = {
    "sum": ("SUM(num)",),
    "avg": ("SUM(num)",),
    "stddev": ("SUM(num)", "SUM(num * num)"),
    "sumsq": ("SUM(num * num)",),
    "min": ("MIN(num)",),
    "max": ("MAX(num)",),
    "distinctCount": ("COUNT(DISTINCT num)",),
}
_STATS = ("SUM(num)", "SUM(num * num)", "MIN(num)", "MAX(num)", "COUNT(DISTINCT num)")


def numeric_buckets(
    conn: sqlite3.Connection,
    tenant: str,
    eid: str,
    attr: str,
    query: InstanceQuery,
    origin: int,
    period: int,
    methods: frozenset[str] | None = None,
) -> list[Bucket] | None:
    """Per period (bucket number from `origin`, `period` microseconds wide): count, sum, sum of squares, min,
    max, distinct count of the numeric values; None when some selected instance is not a number or the selected
    instances span several datasetIds (the caller then aggregates in Python). Only what `methods` need is
    computed (None: all); the rest reads 0. Every aggregate costs a pass of work per row: computing all of them
    for an hourly average of 100,000 instances took twice the time of what the average needs."""
    column = COLUMNS[query.timeproperty]
    period = max(period, 1)
    where, params = time_where(tenant, eid, attr, query)
    end = query.end
    if end is None:
        (last,) = conn.execute(f"SELECT MAX({column}) FROM temporal_instances WHERE {where}", params).fetchone()
        if last is None:
            return []
        end = int(last) + 1
    wanted = set(_STATS) if methods is None else {need for m in methods for need in _NEEDS.get(m, ())}
    computed = [stat if stat in wanted else "0" for stat in _STATS]
    datasets = ["MIN(COALESCE(dataset_id, ''))", "MAX(COALESCE(dataset_id, ''))"]
    stats = ", ".join(["COUNT(*)", "COUNT(num)", *computed, *datasets])
    periods = -(-(end - origin) // period)
    if periods <= _RANGE_QUERIES_UP_TO:
        # One range per period, clamped to the query's bounds: a second pair of bounds in the same WHERE would
        # leave SQLite free to scan the whole interval for every period.
        rows = []
        where, params = time_where(tenant, eid, attr, replace(query, start=None, end=None))
        sql = f"SELECT {stats} FROM temporal_instances WHERE {where} AND {column} >= ? AND {column} < ?"
        low, high = query.start, query.end
        for k in range(max(periods, 0)):
            start, stop = origin + k * period, origin + (k + 1) * period
            start, stop = max(start, low) if low is not None else start, min(stop, high) if high is not None else stop
            row = conn.execute(sql, [*params, start, stop]).fetchone()
            if row[0]:
                rows.append((k, *row))
    else:
        rows = conn.execute(
            f"SELECT ({column} - ?) / ? AS bucket, {stats} FROM temporal_instances WHERE {where} "
            f"GROUP BY bucket ORDER BY bucket",
            [origin, period, *params],
        ).fetchall()
    return _buckets(rows)


def _buckets(rows: list[Any]) -> list[Bucket] | None:
    if len({(row[-2], row[-1]) for row in rows}) > 1:
        return None  # several datasetIds: they are aggregated apart, from the instances
    out = []
    for bucket, total, numeric, total_sum, squares, low, high, distinct, first_dataset, last_dataset in rows:
        if total != numeric or first_dataset != last_dataset:
            return None
        out.append(
            (int(bucket), int(total), float(total_sum or 0), float(squares or 0), float(low or 0), float(high or 0),
             int(distinct or 0))
        )  # fmt: skip
    return out
