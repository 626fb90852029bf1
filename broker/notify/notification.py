"""The Notification body (clause 5.3.1): id, type, subscriptionId, notifiedAt, data, triggerReason."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from broker.core.model import CONTENT_MEMBER, NULL_URI, Entity
from broker.core.render import as_feature, render, render_inline
from broker.core.subscriptions import Compiled
from broker.ld.codec import compact_types
from broker.ld.termmap import TermMap
from broker.store.base import Change

GEO_JSON = "application/geo+json"

# Fixed namespace for notification ids (uuid5), so the same change to the same subscription always gets one id.
_NAMESPACE = uuid.UUID("5f0c6a52-8d0e-4c4e-9a55-3c1f3f8a9e21")


def notification_id(tenant: str, sub_id: str, seq: int | str) -> str:
    """Deterministic: a redelivery after a restart carries the id of the first attempt (decision record 0022)."""
    name = "\n".join((tenant, sub_id, str(seq)))
    return f"urn:ngsi-ld:Notification:{uuid.uuid5(_NAMESPACE, name)}"


def build(
    sub: Compiled,
    changes: list[tuple[Change, frozenset[str]]],
    reason: str,
    tm: TermMap,
    now: str,
    linked: dict[str, Entity] | None = None,
) -> dict[str, Any]:
    """The notification of one or more changes (in feed order), each with the attribute IRIs whose deletion it
    reports. Its id follows from the changes it carries, so a redelivery carries the same id. `linked` are the
    entities notification.join brings in (clause 4.5.23): inline inside the Relationships, or flat after them."""
    shown = [
        (_data(sub, change, deleted, tm, linked or {}), change.after or change.before or {})
        for change, deleted in changes
    ]
    shown = with_joined(sub, tm, shown, linked or {})
    seqs = [change.seq for change, _ in changes]
    return {
        "id": notification_id(sub.tenant, sub.id, seqs[0] if len(seqs) == 1 else f"{seqs[0]}-{seqs[-1]}-{len(seqs)}"),
        "type": "Notification",
        "subscriptionId": sub.id,
        "notifiedAt": now,
        "data": as_data(sub, shown, tm),
        "triggerReason": reason,
    }


def render_entity(sub: Compiled, tm: TermMap, entity: Entity, linked: dict[str, Entity]) -> dict[str, Any]:
    """One notified entity as the subscription shows it; with join=inline, the `linked` entities inside its
    Relationships (clause 4.5.23)."""
    shown = dataset_instances(entity, sub.dataset_ids)
    if sub.join[0] == "inline" and linked:
        return render_inline(shown, tm, sub.view, linked, sub.join[1])
    return render(shown, tm, sub.view)


def with_joined(
    sub: Compiled, tm: TermMap, shown: list[tuple[dict[str, Any], Entity]], linked: dict[str, Entity]
) -> list[tuple[dict[str, Any], Entity]]:
    """With join=flat, the `linked` entities follow the notified ones in `data`."""
    if sub.join[0] == "flat" and linked:
        return [*shown, *((render_entity(sub, tm, e, {}), e) for e in linked.values())]
    return shown


def as_data(sub: Compiled, shown: list[tuple[dict[str, Any], Entity]], tm: TermMap) -> Any:
    """The `data` member: the rendered entities, or for an endpoint that accepts application/geo+json a GeoJSON
    FeatureCollection of them, each Feature's geometry its `location` (clause 6.3.15, decision record 0024)."""
    if sub.endpoint.accept != GEO_JSON:
        return [doc for doc, _ in shown]
    location = tm.expand_term("location")
    return {"type": "FeatureCollection", "features": [as_feature(doc, entity, location) for doc, entity in shown]}


def _data(
    sub: Compiled, change: Change, deleted: frozenset[str], tm: TermMap, linked: dict[str, Entity]
) -> dict[str, Any]:
    if change.after is None:
        assert change.before is not None
        return _deleted_entity(sub, change.entity_id, change.before, change.at, tm)
    doc = render_entity(sub, tm, change.after, linked)
    before_attrs = change.before.get("attrs", {}) if change.before is not None else {}
    for iri in sorted(deleted):
        instances = dataset_instances({"attrs": {iri: before_attrs.get(iri, [])}}, sub.dataset_ids)["attrs"]
        doc[tm.compact_iri(iri)] = deleted_attribute(sub, instances.get(iri, []), change.at)
    if sub.show_changes and change.before is not None and sub.view.format != "simplified":
        normalized = replace(sub.view, format="normalized", lang=None)
        _add_previous(doc, render(dataset_instances(change.before, sub.dataset_ids), tm, normalized))
    return doc


#: showChanges (clause 5.2.14): the member that carries the previous content of each attribute type.
PREVIOUS = {
    "value": "previousValue",
    "object": "previousObject",
    "languageMap": "previousLanguageMap",
    "valueList": "previousValueList",
    "objectList": "previousObjectList",
    "json": "previousJson",
    "vocab": "previousVocab",
}
_HEAD = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"})


def _add_previous(doc: dict[str, Any], before: dict[str, Any]) -> None:
    """Each attribute instance whose content changed gets its previous content beside the current one (in a
    creation there is none, so none is added)."""
    for name, shown in doc.items():
        if name in _HEAD or name not in before:
            continue
        old = {i.get("datasetId"): i for i in _listed(before[name]) if isinstance(i, dict)}
        items = _listed(shown)
        for n, inst in enumerate(items):
            if not isinstance(inst, dict):  # concise: a bare value stands for {"value": ...}
                inst = items[n] = {"value": inst}
            previous = old.get(inst.get("datasetId"))
            if previous is None:
                continue
            member = CONTENT_MEMBER.get(str(previous.get("type")), "value")
            content = inst.get(member, inst.get("value"))
            if previous.get(member) != content or "deletedAt" in inst:
                inst[PREVIOUS[member]] = previous.get(member)
        doc[name] = items if isinstance(shown, list) else items[0]


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def dataset_instances(entity: Entity, dataset_ids: frozenset[str | None] | None) -> Entity:
    """Only the attribute instances of the subscription's datasetIds (clause 5.2.12 datasetId); attributes left
    without instances are not shown."""
    if dataset_ids is None:
        return entity
    attrs = {}
    for iri, instances in entity.get("attrs", {}).items():
        kept = [i for i in instances if i.get("datasetId") in dataset_ids]
        if kept:
            attrs[iri] = kept
    return {**entity, "attrs": attrs}


def _deleted_entity(sub: Compiled, entity_id: str, before: Entity, at: str, tm: TermMap) -> dict[str, Any]:
    """Clause 5.8.6: a deleted entity is reported by its id, type and deletedAt; with sysAttrs also its createdAt
    and modifiedAt; with showChanges also each attribute it had, deleted, with its previous content."""
    out: dict[str, Any] = {"id": entity_id, "type": compact_types(before["type"], tm)}
    if sub.view.sys_attrs:
        out.update({k: before[k] for k in ("createdAt", "modifiedAt") if k in before})
    out["deletedAt"] = at
    if sub.show_changes and sub.view.format != "simplified":
        shown = dataset_instances(before, sub.dataset_ids)
        # The attributes the subscription shows (notification.attributes, pick, omit), as they were.
        previous = render(shown, tm, replace(sub.view, format="normalized", lang=None, sys_attrs=False))
        for iri, instances in sorted(shown.get("attrs", {}).items()):
            name = tm.compact_iri(iri)
            if name in previous and name not in _HEAD:
                out[name] = deleted_attribute(sub, instances, at)
        _add_previous(out, previous)
    return out


def deleted_attribute(sub: Compiled, instances: list[dict[str, Any]], at: str) -> Any:
    """Clause 5.8.6: a deleted attribute is its name with the value "urn:ngsi-ld:null", unless more is needed: a
    datasetId, the system attributes (sysAttrs, with deletedAt) or the previous content (showChanges). Then each
    instance is an object of the attribute's own type whose value, object or (LanguageProperty) languageMap
    {"@none": null} is the NGSI-LD Null (decision record 0134). The simplified format always shows the bare Null."""
    fmt = sub.view.format
    detailed = sub.view.sys_attrs or sub.show_changes or any("datasetId" in i for i in instances)
    if fmt == "simplified" or not detailed or not instances:
        return NULL_URI
    shown = [_deleted_instance(inst, fmt, sub.view.sys_attrs, at) for inst in instances]
    return shown[0] if len(shown) == 1 else shown


def _deleted_instance(inst: dict[str, Any], fmt: str, sys_attrs: bool, at: str) -> dict[str, Any]:
    kind = str(inst.get("type", "Property"))
    member = CONTENT_MEMBER.get(kind, "value")
    out: dict[str, Any] = {} if fmt == "concise" else {"type": kind}
    out[member] = _NULL_CONTENT.get(member, NULL_URI)
    if "datasetId" in inst:
        out["datasetId"] = inst["datasetId"]
    if sys_attrs:
        out.update({k: inst[k] for k in ("createdAt", "modifiedAt") if k in inst})
        out["deletedAt"] = at
    return out


#: The NGSI-LD Null of each content member that is not a plain value (clause 4.5.12 and 5.8.6).
_NULL_CONTENT: dict[str, Any] = {
    "languageMap": {"@none": NULL_URI},
    "valueList": [NULL_URI],
    "objectList": [{"object": NULL_URI}],
}
