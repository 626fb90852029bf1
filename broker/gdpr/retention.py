"""Retention per entity type and attribute (GDPR art. 5(1)(e), storage limitation; record 0323).

Rules are ``NAME=DURATION`` pairs, comma-separated (setting `gdpr_retention`, AGORA_GDPR_RETENTION):

    SmartMeteringObservation=P2Y,licensePlate=P30D,https://example.org/heartRate=P7D

NAME is a term of the project @context or a full IRI; DURATION an ISO 8601 duration (P1Y is 12 months). A rule
on an entity type deletes the entities of that type not modified for that long and the history instances of
those entities older than that; a rule on an attribute deletes the history instances of that attribute older
than that, in every entity. An instance's age is that of its observedAt, else of its modifiedAt (a historian
import records old readings today: their observation time is what the retention counts). The job runs in
every tenant, in the process that leads "gdpr-retention", every `history_retention_interval` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.background import stop_tasks
from broker.core.model import Entity
from broker.gdpr.export import project_termmap
from broker.notify.outage import Outage
from broker.store.base import EntityFilter, InstanceQuery, Store, TemporalInstance, WritePlan
from broker.temporal.times import Duration, parse_duration

log = logging.getLogger("agora.gdpr.retention")
LEAD = "gdpr-retention"


@dataclass(frozen=True)
class RetentionRule:
    iri: str
    duration: Duration
    text: str  # as configured, for the records of processing

    def cutoff(self, now: datetime) -> str:
        """The instant before which data is expired, as NGSI-LD writes times (they sort as text)."""
        back = Duration(-self.duration.months, -self.duration.micros)
        return back.add_to(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rules(text: str) -> list[RetentionRule]:
    """ValueError naming the bad pair; an empty text is no rule."""
    rules = []
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, duration = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"gdpr_retention: {pair!r} is not NAME=DURATION (e.g. SmartMeteringObservation=P2Y)")
        try:
            parsed = parse_duration(duration.strip(), "gdpr_retention")
        except Exception as exc:
            raise ValueError(str(exc)) from exc
        if parsed.months <= 0 and parsed.micros <= 0:
            raise ValueError(f"gdpr_retention: {pair!r} keeps nothing (a duration above zero is needed)")
        rules.append(RetentionRule(project_termmap().expand_term(name.strip()), parsed, pair))
    return rules


def _age_of(inst: TemporalInstance) -> str:
    return str(inst.body.get("observedAt") or inst.body.get("modifiedAt") or "")


async def _expire_instances(store: Store, tenant: str, ids: list[str], attrs: frozenset[str] | None, cut: str) -> int:
    gone = 0
    if not ids:
        return 0
    history = await store.temporal_instances(tenant, ids, InstanceQuery(attrs=attrs))
    for eid, by_attr in history.items():
        for attr, instances in by_attr.items():
            for inst in instances:
                if _age_of(inst) and _age_of(inst) < cut:
                    gone += await store.temporal_delete_instance(tenant, eid, attr, inst.instance_id)
    return gone


def _expired(entities: list[Entity], cut: str) -> dict[str, None]:
    return {e["id"]: None for e in entities if str(e.get("modifiedAt", "")) < cut}


async def apply_rule(store: Store, tenant: str, rule: RetentionRule, now: datetime) -> tuple[int, int]:
    """(entities, instances) deleted in one tenant by one rule."""
    cut = rule.cutoff(now)
    typed = await store.temporal_entities(tenant, EntityFilter(types=frozenset({rule.iri})))
    if typed or await store.find_ids(tenant, EntityFilter(types=frozenset({rule.iri}))):
        expired = _expired(await store.scan(tenant, EntityFilter(types=frozenset({rule.iri}))), cut)
        if expired:
            await store.write(tenant, sorted(expired), lambda _c: WritePlan(dict(expired)))
        instances = await _expire_instances(store, tenant, [r.id for r in typed], None, cut)
        return len(expired), instances
    every = [r.id for r in await store.temporal_entities(tenant, EntityFilter())]
    return 0, await _expire_instances(store, tenant, every, frozenset({rule.iri}), cut)


async def run_once(store: Store, rules: list[RetentionRule], now: datetime | None = None) -> tuple[int, int]:
    """Every rule in every tenant: (entities, instances) deleted."""
    moment = now or datetime.now(UTC)
    entities = instances = 0
    for tenant in await store.list_tenants():
        for rule in rules:
            e, i = await apply_rule(store, tenant, rule, moment)
            entities, instances = entities + e, instances + i
    return entities, instances


class GdprRetention:
    """The background job of `agora serve` (only with rules)."""

    def __init__(self, store: Store, rules: list[RetentionRule], interval: float) -> None:
        self.store, self.rules, self.interval = store, rules, max(interval, 1.0)
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(store, LEAD)

    def start(self) -> None:
        if self.rules:
            self._task = asyncio.create_task(self._run(), name="agora-gdpr-retention")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                if await self.store.try_lead(LEAD):
                    entities, instances = await run_once(self.store, self.rules)
                    if entities or instances:
                        log.info("GDPR retention: %d entities, %d instances expired", entities, instances)
                self._outage.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.store.is_unavailable(exc):
                    log.exception("GDPR retention pass failed")
                else:
                    self._outage.failed(exc, "GDPR retention")
            await asyncio.sleep(self.interval)
