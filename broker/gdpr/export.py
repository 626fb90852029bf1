"""Subject access and portability (GDPR art. 15, 20; record 0321): everything the store holds about a subject.

`collect` gathers, in every tenant, the subject's entities (broker.gdpr.subject), every temporal instance of them,
the subscriptions that watch them by id or that the subject owns, and the audit records that name them or were made
by the subject. `jsonld` writes it as one JSON-LD document (the project @context, then the core one, so entities
read as NGSI-LD); `csv_bundle` as a zip of CSV files, one row per attribute instance, for spreadsheets (art. 20:
"structured, commonly used and machine-readable").
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Final

from broker.core.model import Entity, now_iso
from broker.core.subscriptions import OWNER
from broker.gdpr.subject import Holdings, every_holding
from broker.ld.codec import compact_entity
from broker.ld.core import CORE_CONTEXT_URL
from broker.ld.termmap import TermMap
from broker.store.base import (
    AuditQuery,
    AuditRecord,
    EntityFilter,
    InstanceQuery,
    Store,
    SubscriptionRecord,
    TemporalHistory,
)
from ontologies.personal_data import personal_in

GDPR_NS: Final = "https://w3id.org/agora/gdpr#"
#: The terms of the export document's own members: subscriptions and audit records are JSON literals.
EXPORT_TERMS: Final = {
    "gdpr": GDPR_NS,
    "SubjectAccessExport": "gdpr:SubjectAccessExport",
    "dataSubject": "gdpr:dataSubject",
    "generatedAt": {"@id": "gdpr:generatedAt", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
    "holdings": {"@id": "gdpr:holdings", "@container": "@set"},
    "tenant": "gdpr:tenant",
    "entities": {"@id": "gdpr:entities", "@container": "@set"},
    "temporalEvolution": {"@id": "gdpr:temporalEvolution", "@container": "@set"},
    "subscriptions": {"@id": "gdpr:subscriptions", "@type": "@json"},
    "auditRecords": {"@id": "gdpr:auditRecords", "@type": "@json"},
}
AUDIT_PAGE: Final = 1000
_BUNDLE_README: Final = (
    "Data held about {subject}, exported {at} (GDPR art. 15 and 20). Attribute names are expanded IRIs; values\n"
    "are JSON unless text. entities.csv: the current state; temporal.csv: every recorded instance.\n"
)


@dataclass
class TenantExport:
    holdings: Holdings
    history: TemporalHistory = field(default_factory=dict)
    types: dict[str, list[str]] = field(default_factory=dict)  # temporal entity id -> its types


@dataclass
class SubjectExport:
    subject: str
    generated_at: str
    tenants: list[TenantExport]
    subscriptions: list[SubscriptionRecord]
    audit: list[AuditRecord]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset().union(*(t.holdings.ids for t in self.tenants))


async def collect(store: Store, subject: str) -> SubjectExport:
    tenants = [await _tenant_export(store, h) for h in await every_holding(store, subject)]
    ids = frozenset().union(*(t.holdings.ids for t in tenants))
    subs = [s for s in await store.list_subscriptions() if watches(s, ids) or owned_by(s, subject)]
    return SubjectExport(subject, now_iso(), tenants, subs, await audit_of(store, ids, subject))


async def _tenant_export(store: Store, found: Holdings) -> TenantExport:
    out = TenantExport(found)
    if found.temporal:
        out.history = await store.temporal_instances(found.tenant, sorted(found.temporal), InstanceQuery())
        records = await store.temporal_entities(found.tenant, _ids_filter(found.temporal))
        out.types = {r.id: list(r.type) for r in records}
    return out


def _ids_filter(ids: Iterable[str]) -> EntityFilter:
    return EntityFilter(ids=frozenset(ids))


def watches(record: SubscriptionRecord, ids: frozenset[str]) -> bool:
    """Whether a subscription's entity selectors name one of `ids`."""
    selectors = record.body.get("entities") or []
    return any(isinstance(s, dict) and s.get("id") in ids for s in selectors)


def owned_by(record: SubscriptionRecord, subject: str) -> bool:
    owner = record.body.get(OWNER)
    return isinstance(owner, dict) and owner.get("subject") == subject


async def audit_of(store: Store, ids: frozenset[str], subject: str) -> list[AuditRecord]:
    """The audit records that name one of the entities, or whose caller is the subject, newest first."""
    found: dict[str, AuditRecord] = {}
    queries = [AuditQuery(entity_id=eid, limit=AUDIT_PAGE) for eid in sorted(ids)]
    queries.append(AuditQuery(subject=subject, limit=AUDIT_PAGE))
    for query in queries:
        offset = 0
        while True:
            page = await store.read_audit(replace(query, offset=offset))
            found.update({_audit_key(r): r for r in page})
            if len(page) < AUDIT_PAGE:
                break
            offset += AUDIT_PAGE
    return sorted(found.values(), key=lambda r: r.at, reverse=True)


def _audit_key(record: AuditRecord) -> str:
    return json.dumps(record.to_doc(), sort_keys=True)


# -- JSON-LD ----------------------------------------------------------------------------------------------------
@cache
def project_termmap() -> TermMap:
    from adapters.importer import project_context

    return TermMap.build(project_context()["@context"], {})


def context_value() -> list[Any]:
    from adapters.importer import project_context

    return [EXPORT_TERMS, project_context()["@context"], CORE_CONTEXT_URL]


def _temporal_entity(eid: str, types: list[str], attrs: dict[str, Any]) -> Entity:
    shown = {iri: [{**i.body, "instanceId": i.instance_id} for i in insts] for iri, insts in attrs.items()}
    return {"id": eid, "type": types, "attrs": shown}


def jsonld(export: SubjectExport) -> dict[str, Any]:
    tm = project_termmap()
    holdings = []
    for t in export.tenants:
        temporal = [
            compact_entity(_temporal_entity(eid, t.types.get(eid, []), attrs), tm)
            for eid, attrs in sorted(t.history.items())
        ]
        entities = [compact_entity(e, tm) for e in t.holdings.entities.values()]
        holdings.append({"tenant": t.holdings.tenant, "entities": entities, "temporalEvolution": temporal})
    return {
        "@context": context_value(),
        "id": f"urn:ngsi-ld:SubjectAccessExport:{export.generated_at}",
        "type": "SubjectAccessExport",
        "dataSubject": export.subject,
        "generatedAt": export.generated_at,
        "holdings": holdings,
        "subscriptions": [{"tenant": s.tenant, **s.body} for s in export.subscriptions],
        "auditRecords": [r.to_doc() for r in export.audit],
    }


# -- CSV bundle -------------------------------------------------------------------------------------------------
INSTANCE_COLUMNS: Final = (
    "tenant", "entityId", "entityType", "attribute", "personalCategory", "attributeType", "datasetId", "value",
    "unitCode", "observedAt", "modifiedAt", "instanceId",
)  # fmt: skip


def _content(inst: dict[str, Any]) -> str:
    for member in ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList"):
        if member in inst:
            content = inst[member]
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""


def _rows(tenant: str, eid: str, types: list[str], attrs: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    rows = []
    for attr, instances in sorted(attrs.items()):
        mark = personal_in(types, attr)
        for inst in instances:
            rows.append([
                tenant, eid, " ".join(types), attr, mark.category if mark else "", inst.get("type", ""),
                inst.get("datasetId", ""), _content(inst), inst.get("unitCode", ""), inst.get("observedAt", ""),
                inst.get("modifiedAt", ""), inst.get("instanceId", ""),
            ])  # fmt: skip
    return rows


def _csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def csv_bundle(export: SubjectExport) -> bytes:
    """A zip: entities.csv (current state), temporal.csv (every instance), subscriptions.csv, audit.csv."""
    current, temporal = [], []
    for t in export.tenants:
        tenant = t.holdings.tenant
        for e in t.holdings.entities.values():
            current += _rows(tenant, e["id"], e["type"], e["attrs"])
        for eid, attrs in sorted(t.history.items()):
            bodies = {a: [{**i.body, "instanceId": i.instance_id} for i in insts] for a, insts in attrs.items()}
            temporal += _rows(tenant, eid, t.types.get(eid, []), bodies)
    audit_cols = ("at", "subject", "operation", "tenant", "status", "outcome", "entityIds")
    audit = [
        [r.at, r.subject, r.operation, r.tenant, r.status, r.outcome, " ".join(r.entity_ids)] for r in export.audit
    ]
    subs = [[s.tenant, s.id, json.dumps(s.body, ensure_ascii=False)] for s in export.subscriptions]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("entities.csv", _csv(INSTANCE_COLUMNS, current))
        bundle.writestr("temporal.csv", _csv(INSTANCE_COLUMNS, temporal))
        bundle.writestr("subscriptions.csv", _csv(("tenant", "id", "document"), subs))
        bundle.writestr("audit.csv", _csv(audit_cols, audit))
        bundle.writestr("README.txt", _BUNDLE_README.format(subject=export.subject, at=export.generated_at))
    return buffer.getvalue()
