"""Entity conformance: JSON Schemas of the project's entity types, and the @context, unit and geometry checks.

The schemas (``ontologies/schemas/**/<Type>.schema.json``) describe the key-values form, as the Smart Data Models
schemas they derive from do (decision 0034); an entity in normalized form is checked through its key-values
projection (:func:`key_values`). Used by ``agora import --validate`` and by ``agora validate``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from adapters.base import Entity

SCHEMA_SUFFIX = ".schema.json"
# The member that carries an attribute's value, per attribute type (clause 4.5).
VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "ListRelationship": "objectList",
    "ListProperty": "valueList",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
}
CORE_MEMBERS = {"id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"}


def _walk(folder: Traversable) -> Iterator[Traversable]:
    for item in folder.iterdir():
        if item.is_dir():
            yield from _walk(item)
        elif item.name.endswith(SCHEMA_SUFFIX):
            yield item


@lru_cache(maxsize=1)
def schemas() -> dict[str, dict[str, Any]]:
    """Entity type -> its JSON Schema, from every ``<Type>.schema.json`` under ``ontologies/schemas``."""
    found: dict[str, dict[str, Any]] = {}
    for item in _walk(resources.files("ontologies").joinpath("schemas")):
        entity_type = item.name.removesuffix(SCHEMA_SUFFIX)
        if entity_type in found:
            raise ValueError(f"two schemas for the entity type {entity_type}")
        found[entity_type] = json.loads(item.read_text(encoding="utf-8"))
    return found


@cache
def validator(entity_type: str) -> Draft202012Validator | None:
    schema = schemas().get(entity_type)
    if schema is None:
        return None
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _value(attribute: Any) -> Any:
    instance = attribute[0] if isinstance(attribute, list) and attribute else attribute
    if not isinstance(instance, dict):
        return instance
    member = VALUE_MEMBER.get(str(instance.get("type")))
    if member is None:  # no type: the member present says what it is (clause 4.5, type may be left out)
        member = next((m for m in ("value", "object", "languageMap", "objectList") if m in instance), "value")
    return instance.get(member)


def key_values(entity: Entity) -> dict[str, Any]:
    """The key-values projection of a normalized entity (clause 4.5.3): each attribute becomes its value."""
    simple: dict[str, Any] = {}
    for name, attribute in entity.items():
        if name in CORE_MEMBERS:
            simple[name] = attribute
        else:
            simple[name] = _value(attribute)
    return simple


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(entity)"
    return f"{where}: {error.message}"


def schema_errors(entity: Entity) -> list[str]:
    """Why ``entity`` does not validate against the schema of its type ([] when it does)."""
    entity_type = entity.get("type")
    if not isinstance(entity_type, str):
        return ["type: missing or not a single type name"]
    checker = validator(entity_type)
    if checker is None:
        return [f"type: no JSON Schema for the entity type {entity_type!r}"]
    errors = sorted(checker.iter_errors(key_values(entity)), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in errors]
