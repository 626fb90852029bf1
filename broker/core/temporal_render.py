"""Temporal representations of an entity: normalized (clause 4.5.7/4.5.8), simplified `temporalValues`
(clause 4.5.9) and `aggregatedValues` (clause 4.5.19), compacted with the request's term map."""

from __future__ import annotations

from typing import Any, Final

from broker.core.model import CONTENT_MEMBER, Entity
from broker.core.render import apply_lang
from broker.core.temporal import TemporalEntity, TemporalView
from broker.ld.codec import compact_entity
from broker.ld.termmap import TermMap
from broker.query.projection import Projection, project

#: Clause 4.5.9: the member holding the list of [content, instant] pairs, and whether the content is wrapped.
SIMPLIFIED: Final = {
    "Property": ("values", None),
    "GeoProperty": ("values", None),
    "Relationship": ("objects", None),
    "ListRelationship": ("objectLists", None),
    "ListProperty": ("valueLists", None),
    "LanguageProperty": ("languageMaps", "languageMap"),
    "JsonProperty": ("jsons", "json"),
    "VocabProperty": ("vocabs", "vocab"),
}
_HEAD: Final = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "@context"})


def canonical(entity: TemporalEntity, view: TemporalView) -> Entity:
    """The temporal entity in the canonical entity shape, each instance with its instanceId; system members
    (createdAt, modifiedAt) only with sysAttrs, deletedAt always (it is what marks a deletion)."""
    record = entity.record
    out: Entity = {"id": record.id, "type": record.type}
    if record.scope:
        out["scope"] = record.scope
    if view.sys_attrs:
        out["createdAt"], out["modifiedAt"] = record.created_at, record.modified_at
    attrs = {}
    for iri, instances in entity.attrs.items():
        shown = []
        for inst in instances:
            body = {**inst.body, "instanceId": inst.instance_id}
            # The simplified pairs take their instant from the timeproperty (createdAt, modifiedAt too), else
            # modifiedAt: those stay for it, and it shows only the pairs.
            if not view.sys_attrs and view.representation != "temporalValues":
                body.pop("createdAt", None)
                body.pop("modifiedAt", None)
            shown.append(body)
        attrs[iri] = shown
    out["attrs"] = attrs
    return out


def render_temporal(
    entity: TemporalEntity,
    tm: TermMap,
    view: TemporalView,
    pick: Projection | None = None,
    omit: Projection | None = None,
) -> dict[str, Any]:
    shaped = canonical(entity, view)
    if pick is not None or omit is not None:
        shaped = project(shaped, pick, omit)
    doc = compact_entity(shaped, tm, system=True)
    if view.lang is not None:
        apply_lang(doc, view.lang)
    if view.representation == "temporalValues":
        return {k: (v if k in _HEAD else _simplified(v, view.time.timeproperty)) for k, v in doc.items()}
    if view.representation == "aggregatedValues":
        return _aggregated(doc, entity, shaped, tm)
    return doc


def _instances(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


def _by_dataset(instances: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for inst in instances:
        groups.setdefault(inst.get("datasetId"), []).append(inst)
    return groups


def _one_or_many(items: list[dict[str, Any]]) -> Any:
    return items[0] if len(items) == 1 else items


def _simplified(value: Any, prop: str) -> Any:
    out = []
    for dataset, instances in _by_dataset(_instances(value)).items():
        kind = str(instances[0].get("type", "Property"))
        member, wrapper = SIMPLIFIED.get(kind, ("values", None))
        content = CONTENT_MEMBER.get(kind, "value")
        pairs = []
        for inst in instances:
            item = inst.get(content)
            if kind == "ListRelationship" and isinstance(item, list):
                # 4.5.9: "an ordered array of Relationship objects (URIs)", the URIs themselves
                item = [i.get("object") if isinstance(i, dict) else i for i in item]
            stamp = inst.get(prop) or inst.get("deletedAt") or inst.get("modifiedAt")
            pairs.append([{wrapper: item} if wrapper else item, stamp])
        shown: dict[str, Any] = {"type": kind, member: pairs}
        if dataset is not None:
            shown["datasetId"] = dataset
        out.append(shown)
    return _one_or_many(out)


def _aggregated(doc: dict[str, Any], entity: TemporalEntity, shaped: Entity, tm: TermMap) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k in _HEAD}
    aggregates = entity.aggregates or {}
    for iri, instances in shaped["attrs"].items():
        groups = []
        kinds = {inst.get("datasetId"): str(inst.get("type", "Property")) for inst in instances}
        for dataset, methods in aggregates.get(iri, []):
            shown: dict[str, Any] = {"type": kinds.get(dataset, "Property"), **methods}
            if dataset is not None:
                shown["datasetId"] = dataset
            groups.append(shown)
        if groups:
            out[tm.compact_iri(iri)] = _one_or_many(groups)
    return out
