"""Entity conformance: JSON Schemas of the project's entity types, and the @context, unit and geometry checks.

The schemas (``ontologies/schemas/**/<Type>.schema.json``) describe the key-values form, as the Smart Data Models
schemas they derive from do (decision 0034); an entity in normalized form is checked through its key-values
projection (:func:`key_values`). Used by ``agora import --validate`` and by ``agora validate``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import httpx
import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from adapters.base import Entity
from broker.core.errors import BadRequestData, NgsiLdError
from broker.core.geojson import looks_like_geometry, validate_geometry
from broker.ld.termmap import TermMap
from ontologies import units

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
def fast_validator(entity_type: str) -> Any:
    """A jsonschema-rs validator (about 100 times faster) that only says yes or no: a no is explained by
    :func:`validator`, which decides. Formats are checked, so it never accepts what the Python validator refuses."""
    schema = schemas().get(entity_type)
    if schema is None:
        return None
    return jsonschema_rs.validator_for(schema, validate_formats=True)


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
    simple = key_values(entity)
    fast = fast_validator(entity_type)
    if fast is not None and fast.is_valid(simple):
        return []
    errors = sorted(checker.iter_errors(simple), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in errors]


# -- conformance: structure, units, geometry, terms (agora validate; decision 0038) --------------------------------
ATTRIBUTE_TYPES = frozenset(VALUE_MEMBER)
GEO_ATTRIBUTES = frozenset({"location", "observationSpace", "operationSpace"})
# Members of an attribute instance that are not sub-attributes (clause 4.5).
INSTANCE_MEMBERS = frozenset(VALUE_MEMBER.values()) | {
    "type", "observedAt", "unitCode", "datasetId", "objectType", "lang", "createdAt", "modifiedAt", "deletedAt",
    "instanceId", "previousValue", "previousObject", "previousLanguageMap", "entity", "entityList",
}  # fmt: skip


def _is_uri(text: Any) -> bool:
    return isinstance(text, str) and ":" in text and not text.startswith(":") and " " not in text


def _observed_at_error(stamp: Any) -> str | None:
    if not isinstance(stamp, str):
        return "observedAt is not a string"
    try:
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return f"observedAt {stamp!r} is not an ISO 8601 date-time"
    return None


def _instance_errors(where: str, name: str, instance: Any) -> Iterator[str]:
    if not isinstance(instance, dict):
        yield f"{where}: an attribute is a JSON object with a type (normalized form), got {type(instance).__name__}"
        return
    kind = instance.get("type")
    if kind not in ATTRIBUTE_TYPES:
        yield f"{where}: type {kind!r} is not an NGSI-LD attribute type"
        return
    member = VALUE_MEMBER[str(kind)]
    if member not in instance:
        yield f"{where}: a {kind} needs '{member}'"
        return
    value = instance[member]
    if name in GEO_ATTRIBUTES and kind != "GeoProperty":
        yield f"{where}: {name} must be a GeoProperty (a GeoJSON geometry, [longitude, latitude]), not a {kind}"
    elif kind == "Property" and looks_like_geometry(value):
        yield f"{where}: the value is a GeoJSON geometry: make it a GeoProperty"
    if kind == "GeoProperty":
        try:
            validate_geometry(value, f"{where}.value")
        except BadRequestData as exc:
            yield str(exc)
    elif kind == "Relationship":
        targets = value if isinstance(value, list) else [value]
        if not targets or not all(_is_uri(t) for t in targets):
            yield f"{where}: a Relationship object is a URI (or a list of URIs), got {value!r}"
    elif kind == "LanguageProperty" and not (
        isinstance(value, dict) and value and all(isinstance(v, str | list) for v in value.values())
    ):
        yield f"{where}: a languageMap maps language tags to strings"
    if "unitCode" in instance and not units.is_code(str(instance["unitCode"])):
        yield f"{where}: unitCode {instance['unitCode']!r} is not a UN/CEFACT common code"
    if "observedAt" in instance and (problem := _observed_at_error(instance["observedAt"])):
        yield f"{where}: {problem}"
    for sub, attribute in instance.items():
        if sub not in INSTANCE_MEMBERS:
            yield from _attribute_errors(f"{where}.{sub}", sub, attribute)


def _attribute_errors(where: str, name: str, attribute: Any) -> Iterator[str]:
    instances = attribute if isinstance(attribute, list) else [attribute]
    for i, instance in enumerate(instances):
        yield from _instance_errors(f"{where}[{i}]" if isinstance(attribute, list) else where, name, instance)


def structure_errors(entity: Entity) -> list[str]:
    """NGSI-LD normalized-form problems: attribute types and members, geometries, unit codes, observedAt."""
    problems: list[str] = []
    if not _is_uri(entity.get("id")):
        problems.append(f"id: {entity.get('id')!r} is not a URI")
    for name, attribute in entity.items():
        if name not in CORE_MEMBERS:
            problems += _attribute_errors(name, name, attribute)
    return problems


@lru_cache(maxsize=1)
def project_termmap() -> TermMap:
    """The project @context (followed by the core context, as a broker applies it)."""
    from adapters.importer import project_context

    return TermMap.build(project_context()["@context"], {})


def _terms(entity: Entity) -> Iterator[str]:
    yield from (t for t in ([entity["type"]] if isinstance(entity.get("type"), str) else entity.get("type") or []))
    for name, attribute in entity.items():
        if name in CORE_MEMBERS:
            continue
        yield name
        for instance in attribute if isinstance(attribute, list) else [attribute]:
            if isinstance(instance, dict):
                yield from (sub for sub in instance if sub not in INSTANCE_MEMBERS)


def term_errors(entity: Entity, project: TermMap, own: TermMap | None = None) -> list[str]:
    """Terms that fall back to the default vocabulary, or (with the entity's own @context) expand elsewhere."""
    problems: list[str] = []
    for term in dict.fromkeys(_terms(entity)):
        intended = project.expand_term(term)
        if intended.startswith(project.vocab):
            problems.append(f"{term}: not a term of the project @context (falls back to {intended})")
        elif own is not None and (actual := own.expand_term(term)) != intended:
            problems.append(f"{term}: the entity's @context expands it to {actual}, the project's IRI is {intended}")
    return problems


def entity_problems(entity: Entity, project: TermMap) -> list[str]:
    """Everything `agora validate` checks on one entity ([] when it conforms)."""
    own: TermMap | None = None
    problems: list[str] = []
    if "@context" in entity:
        try:
            own = TermMap.build(entity["@context"], {})
        except NgsiLdError as exc:
            problems.append(f"@context: cannot be processed offline ({exc}); terms checked against the project's")
    return problems + structure_errors(entity) + term_errors(entity, project, own) + schema_errors(entity)


# -- the `agora validate` command ----------------------------------------------------------------------------------
class ValidateFailed(Exception):
    """The file or the broker cannot be read at all."""


def read_file(path: str) -> Iterator[Entity]:
    """Entities of a JSON file (an array, one entity) or of JSON lines (`agora import --dry-run` output)."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096).lstrip()[:1]
            f.seek(0)
            if head == "[":
                document = json.load(f)
                if not isinstance(document, list):
                    raise ValidateFailed(f"{path}: a JSON array of entities was expected")
                yield from document
                return
            first = True
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield _parse_line(path, number, line, f, first)
                    first = False
    except OSError as exc:
        raise ValidateFailed(f"{path}: cannot be read ({exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidateFailed(f"{path}: not JSON ({exc})") from exc


def _parse_line(path: str, number: int, line: str, rest: Any, first: bool) -> Entity:
    try:
        entity: Entity = json.loads(line)
        return entity
    except json.JSONDecodeError:
        if not first:
            raise ValidateFailed(f"{path} line {number}: not a JSON object") from None
    # Not JSON lines: the whole file is one (pretty-printed) entity.
    whole: Entity = json.loads(line + rest.read())
    return whole


def read_broker(broker: str, entity_type: str, tenant: str | None, context: str | None) -> Iterator[Entity]:
    """The entities of ``entity_type`` in the broker, compacted with the project @context, page by page."""
    from adapters.importer import API, LINK_REL, PAGE, ImportFailed, hosted_copy, project_context

    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    try:
        with httpx.Client(base_url=broker, timeout=60, headers=headers) as client:
            url = context or hosted_copy(client, project_context())
            if url is None:
                raise ValidateFailed("the broker hosts no copy of the project @context: give its URL with --context")
            link = {"Link": f"<{url}>; {LINK_REL}"}
            offset = 0
            while True:
                params: dict[str, str | int] = {"type": entity_type, "limit": PAGE, "offset": offset}
                response = client.get(f"{API}/entities", params=params, headers=link)
                if response.status_code != 200:
                    raise ValidateFailed(f"the broker refused the query: HTTP {response.status_code} {response.text}")
                page = response.json()
                yield from page
                if len(page) < PAGE:
                    return
                offset += PAGE
    except (httpx.HTTPError, ImportFailed) as exc:
        raise ValidateFailed(f"cannot talk to the broker at {broker}: {exc}") from exc


def command(args: Any) -> int:
    """`agora validate`: 0 every entity conforms, 3 some do not, 1 unreadable input, 2 usage."""
    if bool(args.file) == bool(args.broker):
        print("agora validate: give a FILE or --broker URL (not both)", file=sys.stderr)
        return 2
    if args.broker and not args.type:
        print("agora validate: --broker needs --type T", file=sys.stderr)
        return 2
    project = project_termmap()
    checked = failing = 0
    source = read_file(args.file) if args.file else read_broker(args.broker, args.type, args.tenant, args.context)
    try:
        for entity in source:
            if args.file and args.type and entity.get("type") != args.type:
                continue
            checked += 1
            problems = entity_problems(entity, project) if isinstance(entity, dict) else ["not a JSON object"]
            if problems:
                failing += 1
                print(f"{entity.get('id') if isinstance(entity, dict) else '?'}:")
                for problem in problems:
                    print(f"  - {problem}")
    except ValidateFailed as exc:
        print(f"agora validate: {exc}", file=sys.stderr)
        return 1
    print(f"checked {checked} entities: {checked - failing} conform, {failing} do not", file=sys.stderr)
    return 3 if failing else 0
