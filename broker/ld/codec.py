"""Normalized NGSI-LD <-> the canonical entity form of broker.core.model, through a TermMap.

Only what a @context can change is touched: entity types, attribute and sub-attribute names, the keys of JSON
objects inside Property values (and ListProperty elements), and the IRIs of `vocab` and `objectType`. Everything
else (ids, objects, GeoJSON, JsonProperty payloads, language maps, dates) is the same in both forms and is
passed through by reference, never copied: these functions sit on every request, so they do dict look-ups and
build only the containers whose keys change. Callers must not mutate the input after handing it over.

The NGSI-LD member names of an instance (`type`, `value`, `object`, `datasetId`, ...) are recognised
structurally and never looked up in the term map: the core @context is processed last and protected, so a client
context cannot change their meaning, and doing no look-up for them is both faster and obviously right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from broker.core.errors import BadRequestData
from broker.core.model import ENTITY_MEMBERS, INSTANCE_MEMBERS, Entity, Instance
from broker.ld.termmap import TermMap

# Members of an instance in both forms; any other key of an instance is a sub-attribute. "attrs" is excluded:
# in the normalized form it is an ordinary (if odd) sub-attribute name, in the canonical form the container.
_MEMBERS: Final = INSTANCE_MEMBERS - {"attrs"}
# Top-level members of a normalized entity; any other key is an attribute.
_ENTITY_MEMBERS: Final = (ENTITY_MEMBERS - {"attrs"}) | {"@context"}
_SYSTEM: Final = ("createdAt", "modifiedAt", "deletedAt")


# -- expansion ------------------------------------------------------------------------------------------------
def expand_types(types: str | list[str], tm: TermMap) -> list[str]:
    """Entity types (one term or a list) -> expanded IRIs, in order, without duplicates."""
    if isinstance(types, str):
        return [_type_iri(types, tm)]
    out: list[str] = []
    for t in types:
        iri = _type_iri(t, tm)
        if iri not in out:
            out.append(iri)
    return out


def _type_iri(term: str, tm: TermMap) -> str:
    iri = tm.expand_term(term)
    if iri[:1] == "@":
        raise BadRequestData(f"The type {term!r} is a JSON-LD keyword in the @context, not an IRI")
    return iri


def expand_entity(doc: Mapping[str, Any], tm: TermMap) -> Entity:
    """A validated normalized entity (no @context member) -> the canonical Entity."""
    entity: Entity = {"id": doc["id"], "type": expand_types(doc["type"], tm)}
    scope = doc.get("scope")
    if scope is not None:
        entity["scope"] = [scope] if isinstance(scope, str) else scope
    for member in _SYSTEM:
        if member in doc:
            entity[member] = doc[member]
    entity["attrs"] = _expand_attrs(doc, tm, _ENTITY_MEMBERS)
    return entity


def expand_attrs(fragment_attrs: Mapping[str, Any], tm: TermMap) -> dict[str, list[Instance]]:
    """Attributes of a fragment (name -> instance list) -> IRI -> canonical instances.

    Every key is taken as an attribute name: the caller removes entity members (id, type, @context) first.
    """
    return _expand_attrs(fragment_attrs, tm, frozenset())


def _expand_attrs(src: Mapping[str, Any], tm: TermMap, skip: frozenset[str]) -> dict[str, list[Instance]]:
    out: dict[str, list[Instance]] = {}
    for name, instances in src.items():
        if name in skip:
            continue
        iri = tm.expand_term(name)
        if iri[:1] == "@":
            raise BadRequestData(f"The attribute name {name!r} is a JSON-LD keyword in the @context, not an IRI")
        if iri in out:
            raise BadRequestData(f"Two attribute names, one of them {name!r}, expand to the same IRI {iri}")
        if isinstance(instances, dict):
            out[iri] = [_expand_instance(instances, tm, name)]
        else:
            out[iri] = [_expand_instance(i, tm, name) for i in instances]
    return out


def _expand_instance(inst: Any, tm: TermMap, name: str) -> Instance:
    if not isinstance(inst, dict):
        raise BadRequestData(f"An instance of the attribute {name!r} is not a JSON object")
    # Copy the members in one C-level step and fix up the few a context changes: most are passed through.
    out: Instance = dict(inst)
    if not _MEMBERS.issuperset(inst):  # sub-attributes, in the order the client gave them
        subs = {k: out.pop(k) for k in inst if k not in _MEMBERS}
        out["attrs"] = _expand_attrs(subs, tm, frozenset())
    val = out.get("value")
    if isinstance(val, (dict, list)) and out.get("type") != "GeoProperty":
        out["value"] = _expand_value(val, tm)
    if "valueList" in out:
        out["valueList"] = _expand_value(out["valueList"], tm)
    if "vocab" in out:
        out["vocab"] = _expand_vocab(out["vocab"], tm)
    if "objectType" in out:
        out["objectType"] = _expand_vocab(out["objectType"], tm)
    return out


def _expand_vocab(val: Any, tm: TermMap) -> Any:
    if isinstance(val, str):
        return _type_iri(val, tm)
    if isinstance(val, list):
        return [_type_iri(v, tm) if isinstance(v, str) else v for v in val]
    return val


def _expand_value(val: Any, tm: TermMap) -> Any:
    """Keys of JSON objects at any depth -> expanded IRIs (JSON-LD semantics); everything else as it is."""
    if isinstance(val, dict):
        expand = tm.expand_term
        out = {expand(k): _expand_value(v, tm) for k, v in val.items()}
        if len(out) != len(val):
            raise BadRequestData(f"Two keys of the value {_excerpt(val)} expand to the same IRI")
        return out
    if isinstance(val, list) and _has_containers(val):
        return [_expand_value(v, tm) for v in val]
    return val


# -- compaction -----------------------------------------------------------------------------------------------
def compact_types(types: list[str], tm: TermMap) -> str | list[str]:
    """Expanded entity types -> terms; one type as a string, several as a list."""
    if len(types) == 1:
        return tm.compact_iri(types[0])
    return [tm.compact_iri(t) for t in types]


def compact_entity(entity: Mapping[str, Any], tm: TermMap, *, system: bool = True) -> dict[str, Any]:
    """A canonical Entity -> normalized form with the terms of `tm` (no @context member is added).

    System members (createdAt, modifiedAt, deletedAt) are copied as they are, at every level, or left out at
    every level with `system=False` (no `options=sysAttrs`), which spares the caller a second walk.
    """
    out: dict[str, Any] = {}
    # A projection (pick/omit, clause 4.21) may have left out the id or the type.
    if "id" in entity:
        out["id"] = entity["id"]
    if "type" in entity:
        out["type"] = compact_types(entity["type"], tm)
    scope = entity.get("scope")
    if scope is not None:
        out["scope"] = scope[0] if len(scope) == 1 else scope
    if system:
        for member in _SYSTEM:
            if member in entity:
                out[member] = entity[member]
    attrs = entity.get("attrs")
    if attrs:
        _compact_attrs_into(out, attrs, tm, _ENTITY_MEMBERS, system)
    return out


def compact_attrs(attrs: Mapping[str, list[Instance]], tm: TermMap, *, system: bool = True) -> dict[str, Any]:
    """IRI -> canonical instances => term -> one instance as an object, several as a list."""
    out: dict[str, Any] = {}
    _compact_attrs_into(out, attrs, tm, frozenset(), system)
    return out


def _compact_attrs_into(
    out: dict[str, Any], attrs: Mapping[str, list[Instance]], tm: TermMap, reserved: frozenset[str], system: bool
) -> None:
    compact = tm.compact_iri
    for iri, instances in attrs.items():
        name = compact(iri)
        # An attribute whose IRI happens to be that of a member (ngsi-ld:hasValue, ...) must not take the
        # member's place: keep its full IRI, which reads back to the same attribute.
        if name in reserved or name in out:
            name = iri
        if len(instances) == 1:
            out[name] = _compact_instance(instances[0], tm, system)
        else:
            out[name] = [_compact_instance(i, tm, system) for i in instances]


def _compact_instance(inst: Mapping[str, Any], tm: TermMap, system: bool) -> dict[str, Any]:
    out: dict[str, Any] = dict(inst)
    subs = out.pop("attrs", None)
    if not system:
        for member in _SYSTEM:
            out.pop(member, None)
    val = out.get("value")
    if isinstance(val, (dict, list)) and out.get("type") != "GeoProperty":
        out["value"] = _compact_value(val, tm)
    if "valueList" in out:
        out["valueList"] = _compact_value(out["valueList"], tm)
    if "vocab" in out:
        out["vocab"] = _compact_vocab(out["vocab"], tm)
    if "objectType" in out:
        out["objectType"] = _compact_vocab(out["objectType"], tm)
    if subs:
        _compact_attrs_into(out, subs, tm, _MEMBERS, system)
    return out


def _compact_vocab(val: Any, tm: TermMap) -> Any:
    if isinstance(val, str):
        return tm.compact_iri(val)
    if isinstance(val, list):
        return [tm.compact_iri(v) if isinstance(v, str) else v for v in val]
    return val


def _compact_value(val: Any, tm: TermMap) -> Any:
    if isinstance(val, dict):
        compact = tm.compact_iri
        return {compact(k): _compact_value(v, tm) for k, v in val.items()}
    if isinstance(val, list) and _has_containers(val):
        return [_compact_value(v, tm) for v in val]
    return val


# -- helpers --------------------------------------------------------------------------------------------------
def _has_containers(values: list[Any]) -> bool:
    """A list needs rebuilding only when it holds objects or lists; lists of scalars are shared as they are."""
    return any(isinstance(v, (dict, list)) for v in values)


def _excerpt(val: Any) -> str:
    text = repr(val)
    return text if len(text) <= 80 else text[:77] + "..."
