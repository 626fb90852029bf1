"""Validation of client input and its translation into the normalized form (clauses 4.5, 4.6, 5.5.4).

The client may send the normalized, concise or (for merge) simplified representation. Everything leaves this
module as the normalized form with terms still unexpanded, where every attribute is a list of instance dicts with
an explicit `type` member, so that expansion (broker.ld.codec) and the operations in broker.core.entities see one
shape. Bad input raises BadRequestData naming where it is, and nothing is written.

An NGSI-LD Null ("urn:ngsi-ld:null", clause 4.5.12) is kept as the content of its instance, so that merge and
update can tell a deletion from a value after expansion (see `is_null_instance`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from broker.core.errors import BadRequestData
from broker.core.geojson import looks_like_geometry, validate_geometry
from broker.core.model import (
    ATTRIBUTE_TYPES,
    CONTENT_MEMBER,
    NULL_URI,
    RESERVED_ATTRIBUTE_NAMES,
    SYSTEM_MEMBERS,
)

# RFC 3986 absolute URI: a scheme, a colon and at least one character that is neither space nor a delimiter that
# RFC 3986 never allows unescaped.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
# Characters clause 4.6.2 forbids in names (attribute and type names), plus white space and control characters.
_BAD_NAME = re.compile(r"[<>\"'=;()\s\x00-\x1f\x7f]")
_SCOPE = re.compile(r"^/([^/#+\s]+(/[^/#+\s]+)*)?$")

# Members an instance may carry besides its sub-attributes, per attribute type.
_META: Final = {"type", "datasetId", "unitCode", "observedAt", "objectType", "lang"} | SYSTEM_MEMBERS
_CONCISE_KEYS: Final = {
    "value": "Property",
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 2048 and _URI.match(value) is not None


def check_uri(value: Any, where: str) -> str:
    if not is_uri(value):
        raise BadRequestData(f"{where}: {value!r} is not a valid URI")
    return str(value)


def check_name(name: Any, where: str) -> str:
    """An attribute or type name: a term or an IRI, without the characters clause 4.6.2 forbids."""
    if not isinstance(name, str) or not name or len(name) > 512 or _BAD_NAME.search(name):
        raise BadRequestData(f"{where}: {name!r} is not a valid name")
    return name


def check_datetime(value: Any, where: str) -> str:
    """An ISO 8601 DateTime that stays within years 1 to 9999 once in UTC (a "0001-01-01T00:00:00+01:00" would
    not: nothing could compare or aggregate it)."""
    if isinstance(value, str) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                parsed.astimezone(UTC)
            return value
        except (ValueError, OverflowError):
            pass
    raise BadRequestData(f"{where}: {value!r} is not an ISO 8601 DateTime (years 1 to 9999 in UTC)")


def parse_scopes(value: Any, where: str = "scope") -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    if not scopes:
        raise BadRequestData(f"{where}: an empty scope list")
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.match(scope) or scope == "/":
            raise BadRequestData(f"{where}: {scope!r} is not a scope such as /Madrid/Gardens")
    return list(dict.fromkeys(scopes))


def parse_types(value: Any, where: str = "type") -> list[str]:
    types = value if isinstance(value, list) else [value]
    if not types:
        raise BadRequestData(f"{where}: an entity needs at least one type")
    return list(dict.fromkeys(check_name(t, where) for t in types))


@dataclass(frozen=True)
class Rules:
    """What an operation accepts: NGSI-LD Nulls (merge, update) and the simplified representation (merge)."""

    allow_null: bool = False
    simplified: bool = False


CREATE = Rules()
PATCH = Rules(allow_null=True)


def parse_entity(
    doc: Any, rules: Rules = CREATE, *, require_id: bool = True, require_type: bool = True
) -> dict[str, Any]:
    """Validate an entity (or entity fragment) and return it in normalized form with unexpanded terms."""
    if not isinstance(doc, dict):
        raise BadRequestData("an entity must be a JSON object")
    out: dict[str, Any] = {}
    for key, raw in doc.items():
        if key == "@context" or key in SYSTEM_MEMBERS:
            continue  # the @context is handled by the caller; system attributes are the broker's to set
        if key == "id":
            out["id"] = check_uri(raw, "id")
        elif key == "type":
            out["type"] = parse_types(raw)
        elif key == "scope":
            out["scope"] = parse_scopes(raw)
        else:
            out[check_attribute_name(key)] = parse_attribute(raw, key, rules)
    if require_id and "id" not in out:
        raise BadRequestData("the entity has no id")
    if require_type and "type" not in out:
        raise BadRequestData("the entity has no type")
    return out


def check_attribute_name(name: str) -> str:
    if name in _GOOD_ATTRIBUTE_NAMES:  # names repeat across requests: a set hit instead of a regex per name
        return name
    check_name(name, "attribute name")
    if name in RESERVED_ATTRIBUTE_NAMES or name.startswith("@"):
        raise BadRequestData(f"attribute name {name!r} is reserved by the NGSI-LD core @context")
    if len(_GOOD_ATTRIBUTE_NAMES) < 65536:
        _GOOD_ATTRIBUTE_NAMES.add(name)
    return name


_GOOD_ATTRIBUTE_NAMES: set[str] = set()


def parse_attribute(raw: Any, name: str, rules: Rules) -> list[dict[str, Any]]:
    """One attribute of any representation, as a list of normalized instances with distinct datasetIds."""
    if isinstance(raw, list) and raw and all(_is_instance_like(item) for item in raw):
        instances = [parse_instance(item, name, rules) for item in raw]
    else:
        instances = [parse_instance(raw, name, rules)]
    seen: set[str | None] = set()
    for inst in instances:
        dataset = inst.get("datasetId")
        if dataset in seen:
            raise BadRequestData(f"{name}: two instances with datasetId {dataset!r}")
        seen.add(dataset)
    return instances


def _is_instance_like(item: Any) -> bool:
    """A dict that is an attribute instance (normalized or concise), not a plain JSON value."""
    if not isinstance(item, dict):
        return False
    declared = item.get("type")
    return (isinstance(declared, str) and declared in ATTRIBUTE_TYPES) or any(key in item for key in _CONCISE_KEYS)


def parse_instance(raw: Any, name: str, rules: Rules) -> dict[str, Any]:
    """One attribute instance: normalized, concise (type inferred) or simplified (a bare value)."""
    if raw is None:
        if rules.allow_null:
            return {"type": "Property", "value": NULL_URI}
        raise BadRequestData(f"{name}: null is not an attribute value")
    if not _is_instance_like(raw):
        return _bare_value(raw, name, rules)
    kind = raw.get("type") or _infer_type(raw)
    if not isinstance(kind, str) or kind not in ATTRIBUTE_TYPES:
        raise BadRequestData(f"{name}: {kind!r} is not an attribute type")
    inst: dict[str, Any] = {"type": kind}
    content = CONTENT_MEMBER[kind]
    if content not in raw:
        raise BadRequestData(f"{name}: a {kind} needs '{content}'")
    for key, member in raw.items():
        if key in _META or key == content:
            _set_member(inst, key, member, name, rules)
        elif key in _CONCISE_KEYS or key in {"instanceId", "@context", "expiresAt"}:
            raise BadRequestData(f"{name}: '{key}' does not belong in a {kind}")
        else:
            inst[check_attribute_name(key)] = parse_attribute(member, f"{name}.{key}", rules)
    return inst


def _infer_type(raw: dict[str, Any]) -> str:
    for key, kind in _CONCISE_KEYS.items():
        if key in raw:
            if kind == "Property" and looks_like_geometry(raw[key]):
                return "GeoProperty"
            return kind
    raise BadRequestData("an attribute without type or content")  # unreachable: callers checked a content key


def _bare_value(raw: Any, name: str, rules: Rules) -> dict[str, Any]:
    """A concise or simplified attribute given as its value alone."""
    if looks_like_geometry(raw):
        validate_geometry(raw, name)
        return {"type": "GeoProperty", "value": raw}
    if raw == NULL_URI and not rules.allow_null:
        raise BadRequestData(f"{name}: an NGSI-LD Null is only allowed in an update or merge")
    _check_value(raw, name)
    return {"type": "Property", "value": raw}


def _set_member(inst: dict[str, Any], key: str, member: Any, name: str, rules: Rules) -> None:
    where = f"{name}.{key}"
    if key in SYSTEM_MEMBERS or key == "type":
        return  # type already set; system attributes are the broker's
    if key == "datasetId":
        inst[key] = check_uri(member, where)
    elif key == "observedAt":
        inst[key] = check_datetime(member, where)
    elif key == "unitCode":
        if not isinstance(member, str) or not member:
            raise BadRequestData(f"{where}: a unitCode is a non-empty string (UN/CEFACT code)")
        inst[key] = member
    elif key == "lang":
        if not isinstance(member, str):
            raise BadRequestData(f"{where}: lang is a language tag")
        inst[key] = member
    elif key == "objectType":
        inst[key] = _names_or_one(member, where)
    else:
        inst[key] = _check_content(inst["type"], member, where, rules)


def _check_content(kind: str, member: Any, where: str, rules: Rules) -> Any:
    if _is_null(member):
        if not rules.allow_null:
            raise BadRequestData(f"{where}: an NGSI-LD Null is only allowed in an update or merge")
        return member
    check = _CONTENT_CHECKS[kind]
    check(member, where)
    return member


def _is_null(member: Any) -> bool:
    if isinstance(member, str):
        return member == NULL_URI
    if isinstance(member, list):
        return len(member) == 1 and member[0] == NULL_URI
    return isinstance(member, dict) and len(member) == 1 and member.get("@none") == NULL_URI


def is_null_instance(inst: dict[str, Any]) -> bool:
    """True when an (expanded or not) instance asks for deletion with an NGSI-LD Null."""
    return _is_null(inst.get(CONTENT_MEMBER.get(inst.get("type", ""), "value")))


def _check_value(value: Any, where: str) -> None:
    if value is None:
        raise BadRequestData(f"{where}: null is not a Property value")
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("@") and key not in {"@value", "@type", "@language"}:
                raise BadRequestData(f"{where}: JSON-LD keyword {key!r} is not allowed in a value")
            if key == "@context":
                raise BadRequestData(f"{where}: a nested @context is not allowed")
            if item is None:
                raise BadRequestData(f"{where}.{key}: null inside a Property value")
            _check_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")


def _check_object(value: Any, where: str) -> None:
    objects = value if isinstance(value, list) else [value]
    if not objects:
        raise BadRequestData(f"{where}: a Relationship needs at least one object")
    for obj in objects:
        check_uri(obj, where)


def _check_language_map(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not value:
        raise BadRequestData(f"{where}: a languageMap is a non-empty JSON object")
    for tag, text in value.items():
        texts = text if isinstance(text, list) else [text]
        if not isinstance(tag, str) or not tag or not all(isinstance(t, str) for t in texts):
            raise BadRequestData(f"{where}: languageMap maps language tags to strings")


def _check_vocab(value: Any, where: str) -> None:
    _names_or_one(value, where)


def _names_or_one(value: Any, where: str) -> Any:
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData(f"{where}: an empty list")
    for item in names:
        check_name(item, where)
    return value


def _check_json(value: Any, where: str) -> None:
    if value is None:
        raise BadRequestData(f"{where}: null is not a JSON value here")


def _check_value_list(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise BadRequestData(f"{where}: a valueList is a JSON array")
    _check_value(value, where)


def _check_object_list(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise BadRequestData(f"{where}: an objectList is a JSON array")
    for i, item in enumerate(value):
        obj = item.get("object") if isinstance(item, dict) else item
        check_uri(obj, f"{where}[{i}]")


_CONTENT_CHECKS: Final = {
    "Property": _check_value,
    "GeoProperty": validate_geometry,
    "Relationship": _check_object,
    "LanguageProperty": _check_language_map,
    "VocabProperty": _check_vocab,
    "JsonProperty": _check_json,
    "ListProperty": _check_value_list,
    "ListRelationship": _check_object_list,
}
