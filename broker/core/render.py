"""Output representations of an entity (clause 4.5): normalized, concise, simplified; sysAttrs; lang; attrs.

Works on the canonical entity, compacts it with the request's term map, then reshapes it. Projection (which
attributes) happens before compaction so that nothing is compacted only to be thrown away.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from broker.core.errors import BadRequestData, ResourceNotFound
from broker.core.geojson import looks_like_geometry
from broker.core.linked import relationship_targets
from broker.core.model import CONTENT_MEMBER, SYSTEM_MEMBERS, Entity
from broker.ld.codec import compact_entity
from broker.ld.termmap import TermMap
from broker.query.projection import ENTITY_MEMBERS, Projection, project

FORMATS = ("normalized", "concise", "simplified")


@dataclass(frozen=True)
class View:
    """How to show an entity: format, sysAttrs, language, and which members and attributes (clause 4.21)."""

    format: str = "normalized"
    sys_attrs: bool = False
    lang: str | None = None
    pick: Projection | None = None
    omit: Projection | None = None
    #: `datasetId=` (clause 6.4.3.2): only the instances with these datasetIds (None = the default instance).
    datasets: frozenset[str | None] | None = None


def parse_format(format_param: str | None, options: list[str]) -> tuple[str, bool]:
    """(format, sysAttrs) from `format=` and `options=` (clause 6.3.7); keyValues is a synonym of simplified."""
    names = {"keyValues": "simplified", "simplified": "simplified", "concise": "concise", "normalized": "normalized"}
    chosen = [names[o] for o in options if o in names]
    if format_param is not None:
        if format_param not in names:
            raise BadRequestData(f"format={format_param!r} is not one of normalized, concise, simplified, keyValues")
        chosen.insert(0, names[format_param])
    if len(set(chosen)) > 1:
        raise BadRequestData(f"conflicting representations requested: {', '.join(dict.fromkeys(chosen))}")
    return (chosen[0] if chosen else "normalized"), "sysAttrs" in options


def require_projected_attributes(entity: Entity, view: View) -> None:
    """Retrieve Entity (clause 5.7.1.4): "If the optional Attribute list is present and the NGSI-LD endpoint does
    know about a matching Entity ..., but this Entity does not have any of the Attributes in the Attribute list,
    then an error of type ResourceNotFound shall be raised." `pick` is the list's successor (attrs is its
    deprecated form), so a pick naming attributes of which the entity has none is that case; an omit that leaves
    none of the attributes the entity has is read the same way (decision record 0105)."""
    held = entity["attrs"]
    if view.pick is not None:
        wanted = view.pick.names() - ENTITY_MEMBERS
        if wanted and not wanted & held.keys():
            raise ResourceNotFound(f"{entity['id']} has none of the attributes asked for")
    if view.omit is not None and held and not held.keys() - view.omit.names():
        raise ResourceNotFound(f"omit removes every attribute of {entity['id']}")


def render(entity: Entity, tm: TermMap, view: View) -> dict[str, Any]:
    projected = _project(entity, view)
    doc = compact_entity(projected, tm, system=view.sys_attrs)
    if view.lang is not None:
        apply_lang(doc, view.lang)
    if view.format == "concise":
        return {k: (v if k in _HEAD else _concise_attr(v)) for k, v in doc.items()}
    if view.format == "simplified":
        return {k: (v if k in _HEAD else _simplified_attr(v)) for k, v in doc.items()}
    return doc


_HEAD = frozenset({"id", "type", "scope", "@context"}) | SYSTEM_MEMBERS


def _project(entity: Entity, view: View) -> Entity:
    if view.pick is not None or view.omit is not None:
        entity = project(entity, view.pick, view.omit)
    if view.datasets is not None:
        kept = {
            iri: [i for i in instances if i.get("datasetId") in view.datasets]
            for iri, instances in entity["attrs"].items()
        }
        entity = {**entity, "attrs": {iri: instances for iri, instances in kept.items() if instances}}
    return entity


def _instances(val: Any) -> list[dict[str, Any]]:
    return val if isinstance(val, list) else [val]


def apply_lang(doc: dict[str, Any], lang: str) -> None:
    """A LanguageProperty shown in one language becomes a Property with that string and a `lang` member."""
    for key, val in doc.items():
        if key in _HEAD:
            continue
        for inst in _instances(val):
            if inst.get("type") == "LanguageProperty" and inst.get("languageMap"):
                tag, text = _pick_language(inst.pop("languageMap"), lang)
                inst["type"] = "Property"
                inst["value"] = text
                inst["lang"] = tag


def _pick_language(langmap: dict[str, Any], wanted: str) -> tuple[str, Any]:
    """Clause 4.15: the best match for a list of tags with optional q-weights; else @none, else any."""
    tags = []
    for part in wanted.split(","):
        tag, _, weight = part.strip().partition(";q=")
        tags.append((_weight(weight, wanted), tag))
    for _, tag in sorted(tags, key=lambda t: -t[0]):
        if tag == "*":  # "return LanguageProperties as a string in any supported language" (clause 4.15)
            break
        if tag in langmap:
            return tag, langmap[tag]
        for key in langmap:
            if key.split("-")[0] == tag.split("-")[0]:
                return key, langmap[key]
    if "@none" in langmap:
        return "@none", langmap["@none"]
    first = next(iter(langmap))
    return first, langmap[first]


def _weight(text: str, wanted: str) -> float:
    """A q-value of the language filter (RFC 9110 weights: 0 to 1, default 1)."""
    if not text:
        return 1.0
    try:
        weight = float(text)
    except ValueError:
        weight = -1.0
    if not 0.0 <= weight <= 1.0:
        raise BadRequestData(f"lang={wanted!r}: the weight q={text} is not a number from 0 to 1")
    return weight


def _concise_attr(val: Any) -> Any:
    instances = [_concise_instance(i) for i in _instances(val)]
    return instances if isinstance(val, list) else instances[0]


def _concise_instance(inst: dict[str, Any]) -> Any:
    kind = inst.get("type")
    out = {k: v for k, v in inst.items() if k != "type"}
    for key, sub in list(out.items()):
        if key not in CONTENT_MEMBER.values() and isinstance(sub, (dict, list)) and key not in {"objectType"}:
            out[key] = _concise_attr(sub)
    only_value = set(out) == {"value"}
    if only_value and kind in ("Property", "GeoProperty") and not _ambiguous(out["value"], kind):
        return out["value"]
    return out


def _ambiguous(value: Any, kind: str | None) -> bool:
    """A bare value that would read back as something else must keep its {"value": ...} wrapper."""
    if kind == "GeoProperty":
        return False
    return (
        isinstance(value, dict)
        or (isinstance(value, list) and bool(value) and isinstance(value[0], dict))
        or (looks_like_geometry(value))
    )


def _simplified_attr(val: Any) -> Any:
    instances = _instances(val)
    if len(instances) == 1 and "datasetId" not in instances[0]:
        return _simplified_value(instances[0])
    return {"dataset": {inst.get("datasetId", "@none"): _simplified_value(inst) for inst in instances}}


def _simplified_value(inst: dict[str, Any]) -> Any:
    member = CONTENT_MEMBER.get(str(inst.get("type")), "value")
    if inst.get("type") == "Property" and "lang" in inst:
        return inst.get("value")
    return inst.get(member)


def as_feature(doc: dict[str, Any], entity: Entity, geometry_iri: str) -> dict[str, Any]:
    """An entity as a GeoJSON Feature (clause 6.3.15): the geometry of `geometry_iri`, the rest as properties."""
    instances = entity["attrs"].get(geometry_iri) or []
    geometry = next((i.get("value") for i in instances if i.get("type") == "GeoProperty"), None)
    return {
        "id": entity["id"],
        "type": "Feature",
        "geometry": geometry,
        "properties": {k: v for k, v in doc.items() if k != "id"},
    }


def linked_view(view: View, relationship: str) -> View:
    """The view of the entities `relationship` links to. A projection item `rel{a,b}` (clause 4.21: "a
    Relationship name followed by an Attribute name within the Linked Entity") projects them to a, b (and their
    id, as at the root); otherwise the answer's own projection applies to them (clause 5.7.1.5: "applies to all
    Entities in the payload in the case of Linked Entity retrieval"). Decision record 0107."""
    pick, omit = _inner(view.pick, relationship), _inner(view.omit, relationship)
    if pick is None and omit is None:
        return view
    return replace(view, pick=pick if pick is not None else view.pick, omit=omit)


def _inner(projection: Projection | None, relationship: str) -> Projection | None:
    if projection is None:
        return None
    return next((i.linked for i in projection.items if i.name == relationship and i.linked is not None), None)


def follow_shown(entity: Entity, view: View) -> Iterator[tuple[str, View]]:
    """The Relationships of `entity` that `view` shows (after pick/omit and datasetId), each target with the view
    its linked entity is shown in: what Linked Entity Retrieval follows (clause 5.7.1.5: "If any of the returned
    Attributes corresponds to an annotated Relationship")."""
    for iri, instances in _project(entity, view)["attrs"].items():
        child = linked_view(view, iri)
        for instance in instances:
            for target in relationship_targets(instance):
                yield target, child


def render_inline(
    entity: Entity,
    tm: TermMap,
    view: View,
    linked: dict[str, Entity],
    depth: int,
    encountered: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """`join=inline` (clause 4.5.23): each Relationship carries the entity it points to under `entity`
    (`entityList` for a ListRelationship), itself inlined `depth - 1` more levels; an entity already met on the
    way down from the root (`encountered`) is not inlined again, which ends cycles."""
    doc = render(entity, tm, view)
    if depth <= 0:
        return doc
    path = encountered | {entity["id"]}
    shown_attrs = _project(entity, view)["attrs"]
    for name, value in doc.items():
        if name in _HEAD:
            continue
        iri = tm.expand_term(name)
        instances = shown_attrs.get(iri) or []
        child = linked_view(view, iri)
        rendered = _instances(value)
        for i, (instance, shown) in enumerate(zip(instances, rendered, strict=False)):
            targets = [t for t in relationship_targets(instance) if t in linked and t not in path]
            if not targets:
                continue
            docs = [render_inline(linked[t], tm, child, linked, depth - 1, path) for t in targets]
            embedded: Any = docs if instance.get("type") == "ListRelationship" or len(docs) > 1 else docs[0]
            if isinstance(shown, dict):
                shown["entityList" if instance.get("type") == "ListRelationship" else "entity"] = embedded
            elif isinstance(value, list):
                value[i] = embedded
            else:
                doc[name] = embedded  # simplified: the linked entity stands where its id stood
    return doc
