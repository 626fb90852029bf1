"""The entity map tables of the SQLite store (clauses 5.14, 6.32, 6.34) and the SQL that reads and writes them.

A map is one row of metadata and one row per entity id at its position, so that a page of a map reads only the
ids of that page. Expired maps are invisible to every read (their expiry is compared with now in the query) and
removed by `purge`. Everything here runs inside the caller's transaction or connection: sqlite.py owns both.
"""

from __future__ import annotations

import sqlite3

from broker.store import _common as common
from broker.store.base import EntityMapRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS entity_maps (
    tenant TEXT NOT NULL, id TEXT NOT NULL, expires_at INTEGER NOT NULL, extra BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_maps_by_expiry ON entity_maps (expires_at);
CREATE TABLE IF NOT EXISTS entity_map_ids (
    tenant TEXT NOT NULL, map_id TEXT NOT NULL, pos INTEGER NOT NULL, entity_id TEXT NOT NULL,
    PRIMARY KEY (tenant, map_id, pos)
) WITHOUT ROWID;
"""

_LIVE = "SELECT 1 FROM entity_maps WHERE tenant = ? AND id = ? AND expires_at > ?"


def put(conn: sqlite3.Connection, tenant: str, record: EntityMapRecord) -> None:
    """In the caller's write transaction: the map replaces any earlier one of that id."""
    _drop(conn, tenant, record.id)
    conn.execute(
        "INSERT INTO entity_maps (tenant, id, expires_at, extra) VALUES (?, ?, ?, ?)",
        (tenant, record.id, record.expires_at, common.dumps(record.extra)),
    )
    conn.executemany(
        "INSERT INTO entity_map_ids (tenant, map_id, pos, entity_id) VALUES (?, ?, ?, ?)",
        ((tenant, record.id, pos, eid) for pos, eid in enumerate(record.ids)),
    )


def get(conn: sqlite3.Connection, tenant: str, map_id: str, now: int) -> EntityMapRecord | None:
    row = conn.execute(
        "SELECT expires_at, extra FROM entity_maps WHERE tenant = ? AND id = ? AND expires_at > ?",
        (tenant, map_id, now),
    ).fetchone()
    if row is None:
        return None
    ids = conn.execute(
        "SELECT entity_id FROM entity_map_ids WHERE tenant = ? AND map_id = ? ORDER BY pos", (tenant, map_id)
    ).fetchall()
    return EntityMapRecord(map_id, row[0], [eid for (eid,) in ids], common.loads(row[1]))


def ids(conn: sqlite3.Connection, tenant: str, map_id: str, start: int, stop: int, now: int) -> list[str] | None:
    if conn.execute(_LIVE, (tenant, map_id, now)).fetchone() is None:
        return None
    rows = conn.execute(
        "SELECT entity_id FROM entity_map_ids WHERE tenant = ? AND map_id = ? AND pos >= ? AND pos < ? ORDER BY pos",
        (tenant, map_id, start, stop),
    )
    return [eid for (eid,) in rows]


def set_expiry(conn: sqlite3.Connection, tenant: str, map_id: str, expires_at: int, now: int) -> bool:
    cursor = conn.execute(
        "UPDATE entity_maps SET expires_at = ? WHERE tenant = ? AND id = ? AND expires_at > ?",
        (expires_at, tenant, map_id, now),
    )
    return cursor.rowcount > 0


def delete(conn: sqlite3.Connection, tenant: str, map_id: str, now: int) -> bool:
    """In the caller's write transaction: True when a live map was deleted."""
    if conn.execute(_LIVE, (tenant, map_id, now)).fetchone() is None:
        return False
    _drop(conn, tenant, map_id)
    return True


def purge(conn: sqlite3.Connection, now: int) -> int:
    """In the caller's write transaction: remove every expired map; the number removed."""
    expired = conn.execute("SELECT tenant, id FROM entity_maps WHERE expires_at <= ?", (now,)).fetchall()
    for tenant, map_id in expired:
        _drop(conn, tenant, map_id)
    return len(expired)


def _drop(conn: sqlite3.Connection, tenant: str, map_id: str) -> None:
    conn.execute("DELETE FROM entity_map_ids WHERE tenant = ? AND map_id = ?", (tenant, map_id))
    conn.execute("DELETE FROM entity_maps WHERE tenant = ? AND id = ?", (tenant, map_id))
