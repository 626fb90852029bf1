"""Context source registration subscriptions (clauses 5.11, 6.12, 6.13) on every backend: one mixin per backend,
mixed into its Store class as broker.store.registration_records does for registrations.

A subscription is kept as two records, as entity subscriptions are (broker.store.base.SubscriptionRecord): the
document clients edit and the delivery state only the csource notifier writes, so that neither writer overwrites
what the other changed. The state also keeps `initial`: the modifiedAt of the document whose initial notification
(clauses 5.11.2.4, 5.11.3.4) was sent, so that a notification still owed survives a restart (decision record 0172).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any, Protocol

from broker.store import _common as common
from broker.store.base import Delivery, SubscriptionRecord
from broker.store.registration_records import changing

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS csource_subscriptions (
    tenant TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL, state BLOB NOT NULL, PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
"""


def folded(state: dict[str, Any], delivery: Delivery | None, initial: str | None) -> dict[str, Any]:
    out = dict(state) if delivery is None else common.folded_state(state, delivery)
    if initial is not None:
        out["initial"] = initial
    return out


class MemoryCsourceSubscriptions:
    _csource_subs: dict[tuple[str, str], SubscriptionRecord]

    def _csubs(self) -> dict[tuple[str, str], SubscriptionRecord]:
        if not hasattr(self, "_csource_subs"):
            self._csource_subs = {}
        return self._csource_subs

    async def create_csource_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        common.dumps(body)  # refuse what a persistent backend could not store
        if (tenant, sub_id) in self._csubs():
            return False
        self._csubs()[(tenant, sub_id)] = SubscriptionRecord(tenant, sub_id, common.clone(body), {})
        return True

    async def replace_csource_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        found = self._csubs().get((tenant, sub_id))
        if found is None:
            return False
        found.body = common.clone(body)
        return True

    async def get_csource_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        found = self._csubs().get((tenant, sub_id))
        return None if found is None else _copy(found)

    async def list_csource_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        keys = sorted(k for k in self._csubs() if tenant is None or k[0] == tenant)
        return [_copy(self._csubs()[k]) for k in keys]

    async def delete_csource_subscription(self, tenant: str, sub_id: str) -> bool:
        return self._csubs().pop((tenant, sub_id), None) is not None

    async def record_csource_delivery(
        self, tenant: str, sub_id: str, delivery: Delivery | None, initial: str | None = None
    ) -> None:
        found = self._csubs().get((tenant, sub_id))
        if found is not None:
            found.state = folded(found.state, delivery, initial)


def _copy(record: SubscriptionRecord) -> SubscriptionRecord:
    return SubscriptionRecord(record.tenant, record.id, common.clone(record.body), dict(record.state))


class _HasConnection(Protocol):
    def _connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


_SELECT = "SELECT tenant, id, body, state FROM csource_subscriptions"


def _row(row: tuple[Any, ...]) -> SubscriptionRecord:
    return SubscriptionRecord(row[0], row[1], common.loads(row[2]), common.loads(row[3]))


class SqliteCsourceSubscriptions:
    async def create_csource_subscription(self: _HasConnection, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        sql = "INSERT OR IGNORE INTO csource_subscriptions (tenant, id, body, state) VALUES (?, ?, ?, ?)"
        with self._connection() as conn:
            return bool(conn.execute(sql, (tenant, sub_id, common.dumps(body), common.dumps({}))).rowcount)

    async def replace_csource_subscription(
        self: _HasConnection, tenant: str, sub_id: str, body: dict[str, Any]
    ) -> bool:
        sql = "UPDATE csource_subscriptions SET body = ? WHERE tenant = ? AND id = ?"  # the state stays
        with self._connection() as conn:
            return bool(conn.execute(sql, (common.dumps(body), tenant, sub_id)).rowcount)

    async def get_csource_subscription(self: _HasConnection, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        with self._connection() as conn:
            row = conn.execute(f"{_SELECT} WHERE tenant = ? AND id = ?", (tenant, sub_id)).fetchone()
        return None if row is None else _row(row)

    async def list_csource_subscriptions(self: _HasConnection, tenant: str | None = None) -> list[SubscriptionRecord]:
        with self._connection() as conn:
            if tenant is None:
                rows = conn.execute(f"{_SELECT} ORDER BY tenant, id").fetchall()
            else:
                rows = conn.execute(f"{_SELECT} WHERE tenant = ? ORDER BY id", (tenant,)).fetchall()
        return [_row(row) for row in rows]

    async def delete_csource_subscription(self: _HasConnection, tenant: str, sub_id: str) -> bool:
        with self._connection() as conn:
            sql = "DELETE FROM csource_subscriptions WHERE tenant = ? AND id = ?"
            return bool(conn.execute(sql, (tenant, sub_id)).rowcount)

    async def record_csource_delivery(
        self: _HasConnection, tenant: str, sub_id: str, delivery: Delivery | None, initial: str | None = None
    ) -> None:
        with self._connection() as conn, changing(conn):  # read and write the state in one transaction
            sql = "SELECT state FROM csource_subscriptions WHERE tenant = ? AND id = ?"
            row = conn.execute(sql, (tenant, sub_id)).fetchone()
            if row is not None:
                state = folded(common.loads(row[0]), delivery, initial)
                sql = "UPDATE csource_subscriptions SET state = ? WHERE tenant = ? AND id = ?"
                conn.execute(sql, (common.dumps(state), tenant, sub_id))


class _HasRedis(Protocol):
    @property
    def _redis(self) -> Any: ...

    def _gkey(self, kind: str) -> str: ...


def _field(tenant: str, sub_id: str) -> str:
    return f"{tenant}\0{sub_id}"


def _rkeys(store: _HasRedis) -> tuple[str, str]:
    return store._gkey("cssubs"), store._gkey("cssubs:state")


# KEYS[1] the documents, KEYS[2] the delivery states (one slot: the global key space). Replace keeps the state.
_REPLACE = (
    "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"
    " return 1 end return 0"
)
_DELETE = "redis.call('HDEL', KEYS[2], ARGV[1]) return redis.call('HDEL', KEYS[1], ARGV[1])"


class RedisCsourceSubscriptions:
    async def create_csource_subscription(self: _HasRedis, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        return bool(await self._redis.hsetnx(_rkeys(self)[0], _field(tenant, sub_id), common.dumps(body)))

    async def replace_csource_subscription(self: _HasRedis, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        args = (_field(tenant, sub_id), common.dumps(body))
        return bool(await self._redis.eval(_REPLACE, 2, *_rkeys(self), *args))

    async def get_csource_subscription(self: _HasRedis, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        docs, states = _rkeys(self)
        field = _field(tenant, sub_id)
        raw, state = await self._redis.hget(docs, field), await self._redis.hget(states, field)
        if raw is None:
            return None
        return SubscriptionRecord(tenant, sub_id, common.loads(raw), common.loads(state) if state else {})

    async def list_csource_subscriptions(self: _HasRedis, tenant: str | None = None) -> list[SubscriptionRecord]:
        docs, states = _rkeys(self)
        found, kept = await self._redis.hgetall(docs), await self._redis.hgetall(states)
        records = []
        for field, raw in found.items():
            sub_tenant, _, sub_id = field.decode().partition("\0")
            if tenant is None or sub_tenant == tenant:
                state = kept.get(field)
                records.append(
                    SubscriptionRecord(sub_tenant, sub_id, common.loads(raw), common.loads(state) if state else {})
                )
        return sorted(records, key=lambda r: (r.tenant, r.id))

    async def delete_csource_subscription(self: _HasRedis, tenant: str, sub_id: str) -> bool:
        return bool(await self._redis.eval(_DELETE, 2, *_rkeys(self), _field(tenant, sub_id)))

    async def record_csource_delivery(
        self: _HasRedis, tenant: str, sub_id: str, delivery: Delivery | None, initial: str | None = None
    ) -> None:
        # Only the leading csource notifier writes states: a read and a write need no script.
        docs, states = _rkeys(self)
        field = _field(tenant, sub_id)
        if not await self._redis.hexists(docs, field):
            return
        raw = await self._redis.hget(states, field)
        state = folded(common.loads(raw) if raw else {}, delivery, initial)
        await self._redis.hset(states, field, common.dumps(state))


__all__ = ["SQLITE_SCHEMA", "MemoryCsourceSubscriptions", "RedisCsourceSubscriptions", "SqliteCsourceSubscriptions"]
