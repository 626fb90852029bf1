"""Managing the access policies and reading the audit log (issue 18, records 0220, 0224): the operations behind
/ngsi-ld/v1/agora/policies, /ngsi-ld/v1/agora/audit and `agora policy` / `agora audit`.

A policy file (YAML, JSON or TOML) holds `rules`, a list of rule documents (broker.core.access), and may hold an
`@context` whose terms name the types and attributes; without one the terms expand with the core @context.
The audit log is written by the AuditLog of this module: records are buffered and flushed to the store a few times
a second, so that auditing costs a request no store round trip.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from broker.background import stop_tasks
from broker.core.access import Access, Rule, parse_rule, stored_rule
from broker.core.caller import Caller
from broker.core.errors import BadRequestData, ResourceNotFound
from broker.core.normalize import check_datetime
from broker.store.base import AuditQuery, AuditRecord, Store

log = logging.getLogger("agora.audit")

FLUSH_SECONDS: Final = 0.25
RETENTION_INTERVAL: Final = 3600.0


class Policies:
    """The admin operations on the rules; each needs the `admin` action (or role)."""

    def __init__(self, store: Store, access: Access) -> None:
        self.store = store
        self.access = access

    async def _admin(self, caller: Caller) -> None:
        await self.access.require(caller, "admin", "manage access policies or read the audit log")

    async def rules(self, caller: Caller) -> list[Rule]:
        await self._admin(caller)
        return [stored_rule(doc) for doc in await self.store.list_policies()]

    async def get(self, caller: Caller, rule_id: str) -> Rule:
        for rule in await self.rules(caller):
            if rule.id == rule_id:
                return rule
        raise ResourceNotFound(f"no policy rule {rule_id}")

    async def put(self, caller: Caller, docs: Any, expand: Callable[[str], str]) -> list[tuple[Rule, bool]]:
        """Add or replace the rule (or rules) of `docs`: all are checked before any is stored. (rule, new) pairs."""
        await self._admin(caller)
        rules = [parse_rule(doc, expand) for doc in (docs if isinstance(docs, list) else [docs])]
        if not rules:
            raise BadRequestData("give one rule or a non-empty list of rules")
        if len({r.id for r in rules}) != len(rules):
            raise BadRequestData("two rules of the request have the same id")
        out = [(rule, await self.store.put_policy(rule.to_doc())) for rule in rules]
        self.access.changed()
        return out

    async def delete(self, caller: Caller, rule_id: str) -> None:
        await self._admin(caller)
        if not await self.store.delete_policy(rule_id):
            raise ResourceNotFound(f"no policy rule {rule_id}")
        self.access.changed()

    async def audit(self, caller: Caller, query: AuditQuery) -> list[AuditRecord]:
        await self._admin(caller)
        return await self.store.read_audit(query)


def audit_time(value: str | None, where: str) -> str | None:
    """A since/until bound of an audit read in the records' own spelling (UTC, microseconds), so that bounds
    compare with the stored times as strings; BadRequestData when it is no ISO 8601 DateTime."""
    if value is None:
        return None
    check_datetime(value, where)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    utc = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")


def read_policy_file(path: str) -> tuple[list[Any], Any]:
    """(rule documents, @context or None) of a YAML, JSON or TOML policy file; ValueError says what is wrong."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        if path.endswith(".toml"):
            doc: Any = tomllib.loads(text)
        elif path.endswith(".json"):
            doc = json.loads(text)
        else:
            doc = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not a readable policy file: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise ValueError(f"{path}: a policy file holds `rules`, a list of rules")
    return doc["rules"], doc.get("@context")


# -- the audit log -----------------------------------------------------------------------------------------------
class AuditLog:
    """Buffers audit records and flushes them to the store; removes those older than `max_age` (0: kept)."""

    def __init__(self, store: Store, enabled: bool, max_age: float) -> None:
        self.store = store
        self.enabled = enabled
        self.max_age = max_age
        self._buffer: list[AuditRecord] = []
        self._tasks: list[asyncio.Task[None] | None] = []

    def record(self, record: AuditRecord) -> None:
        if self.enabled:
            self._buffer.append(record)

    def start(self) -> None:
        if self.enabled:
            self._tasks = [asyncio.create_task(self._flushing(), name="agora-audit")]
            if self.max_age > 0:
                self._tasks.append(asyncio.create_task(self._retaining(), name="agora-audit-retention"))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.flush()

    async def flush(self) -> None:
        records, self._buffer = self._buffer, []
        if records:
            try:
                await self.store.append_audit(records)
            except Exception:
                self._buffer = records + self._buffer  # kept for the next flush: the log loses nothing it can keep
                raise

    async def retain_once(self) -> int:
        before = datetime.now(UTC) - timedelta(seconds=self.max_age)
        return await self.store.trim_audit(before.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:  # the store is down: the records wait in the buffer
                log.warning("audit records not written yet (%d waiting)", len(self._buffer), exc_info=True)

    async def _retaining(self) -> None:
        while True:
            started = time.monotonic()
            try:
                if await self.store.try_lead("audit-retention"):
                    removed = await self.retain_once()
                    if removed:
                        log.info("audit retention removed %d records", removed)
            except Exception:
                log.warning("an audit retention pass failed", exc_info=True)
            await asyncio.sleep(max(1.0, RETENTION_INTERVAL - (time.monotonic() - started)))
