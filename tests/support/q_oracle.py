"""The q evaluator as it was before it was compiled to closures (commit cbd6d18, broker/query/evaluate.py), kept
unchanged as the oracle of tests/property/test_q_compiled.py: the compiled evaluator must say what this one says."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from broker.core.model import Entity, Instance
from broker.query.q import (
    And,
    AttrPath,
    Compare,
    Exists,
    Key,
    Literal,
    Match,
    Or,
    Path,
    QNode,
    Range,
    ValueList,
    parse_date,
    parse_datetime,
    parse_time,
)

Resolver = Callable[[str], Entity | None]

_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_TEMPORAL: Final = {"datetime": parse_datetime, "date": parse_date, "time": parse_time}
_RELATIONSHIPS: Final = frozenset({"Relationship", "ListRelationship"})


@dataclass(frozen=True, slots=True)
class Target:
    """What one instance offers to a condition: its values and how they compare (`kind` is the instance's
    attribute type, or "member" for observedAt & co.)."""

    kind: str
    values: tuple[Any, ...]


# -- paths -----------------------------------------------------------------------------------------------------
def _instances(attrs: dict[str, list[Instance]], names: tuple[str, ...]) -> Iterator[Instance]:
    """Every instance at the end of an attribute/sub-attribute path, at any datasetId on every level."""
    for instance in attrs.get(names[0], ()):
        if len(names) == 1:
            yield instance
        else:
            yield from _instances(instance.get("attrs", {}), names[1:])


def _walk(value: Any, keys: Iterable[str]) -> list[Any]:
    """The values under `keys` in a JSON value; arrays on the way are walked element by element."""
    current = [value]
    for key in keys:
        following: list[Any] = []
        for item in current:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict) and key in element:
                    following.append(element[key])
        current = following
    return current


def _spread(values: Iterable[Any]) -> tuple[Any, ...]:
    """Arrays are multi-valued: each element is compared on its own."""
    out: list[Any] = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return tuple(out)


def _content(instance: Instance, keys: tuple[Key, ...]) -> tuple[Any, ...] | None:
    """The values an instance offers for a path ending in `keys`, None when the path does not exist in it."""
    kind = instance.get("type", "Property")
    if kind == "LanguageProperty":
        lang_map = instance.get("languageMap") or {}
        if len(keys) > 1 or (keys and keys[0].term not in lang_map):
            return None
        return _spread([lang_map[keys[0].term]] if keys else lang_map.values())
    if kind in _RELATIONSHIPS or kind == "VocabProperty":
        if keys:
            return None
        member = {"Relationship": "object", "ListRelationship": "objectList", "VocabProperty": "vocab"}[kind]
        return _spread([instance.get(member)])
    member, raw_keys = {
        "JsonProperty": ("json", True),
        "GeoProperty": ("value", True),
        "ListProperty": ("valueList", False),
    }.get(kind, ("value", False))
    if member not in instance:
        return None
    if not keys:
        return _spread([instance[member]])
    found = _walk(instance[member], [k.term if raw_keys else k.iri for k in keys])
    return _spread(found) if found else None


def targets(entity: Entity, path: AttrPath) -> Iterator[Target]:
    """The targets of a (non-linked) path in an entity, one per instance where the path exists."""
    for instance in _instances(entity.get("attrs", {}), path.names):
        if path.member is not None:
            if path.member in instance:
                yield Target("member", (instance[path.member],))
            continue
        values = _content(instance, path.keys)
        if values is not None:
            yield Target(instance.get("type", "Property"), values)


def _linked_ids(entity: Entity, path: AttrPath) -> list[str]:
    ids: list[str] = []
    for target in targets(entity, path):
        if target.kind in _RELATIONSHIPS:
            ids.extend(v for v in target.values if isinstance(v, str) and v not in ids)
    return ids


def _holds(entity: Entity, path: Path, check: Callable[[Target], bool], resolve: Resolver | None) -> bool:
    """Whether `check` holds for some target of `path`, following linked-entity paths through `resolve`."""
    if isinstance(path, AttrPath):
        return any(check(target) for target in targets(entity, path))
    if resolve is None:
        return False
    for entity_id in _linked_ids(entity, path.relationship):
        linked = resolve(entity_id)
        if linked is not None and _holds(linked, path.inner, check, resolve):
            return True
    return False


# -- comparisons -----------------------------------------------------------------------------------------------
def _unwrap(value: Any) -> Any:
    """A JSON-LD value object `{"@value": v, "@type": ...}` compares as `v`."""
    if isinstance(value, dict) and "@value" in value:
        return value["@value"]
    return value


def comparable(stored: Any, lit: Literal) -> Any:
    """`stored` converted to the literal's kind, or None when the two kinds do not compare."""
    stored = _unwrap(stored)
    kind = lit.kind
    if kind == "number":
        ok = isinstance(stored, (int, float)) and not isinstance(stored, bool)
        return stored if ok else None
    if kind == "boolean":
        return stored if isinstance(stored, bool) else None
    if not isinstance(stored, str):
        return None
    parse = _TEMPORAL.get(kind)
    return parse(stored) if parse is not None else stored


def _literal_value(target: Target, lit: Literal) -> Any:
    """The literal as the target sees it: vocab values compare with the expanded term."""
    if target.kind == "VocabProperty" and lit.expanded is not None:
        return lit.expanded
    return lit.value


def _equals(target: Target, stored: Any, lit: Literal) -> bool:
    if target.kind in _RELATIONSHIPS and lit.kind not in ("uri", "string"):
        return False
    value = comparable(stored, lit)
    return value is not None and value == _literal_value(target, lit)


def _in_range(target: Target, stored: Any, rng: Range) -> bool:
    if target.kind in _RELATIONSHIPS:
        return False
    value = comparable(stored, rng.low)
    return value is not None and bool(rng.low.value <= value <= rng.high.value)


def _equal_any(target: Target, stored: Any, value: Literal | Range | ValueList) -> bool:
    if isinstance(value, Range):
        return _in_range(target, stored, value)
    if isinstance(value, ValueList):
        return any(_equals(target, stored, item) for item in value.items)
    return _equals(target, stored, value)


def _compare(node: Compare) -> Callable[[Target], bool]:
    value = node.value
    if node.op == "==":
        return lambda t: any(_equal_any(t, v, value) for v in t.values)
    if node.op == "!=":
        return lambda t: bool(t.values) and not any(_equal_any(t, v, value) for v in t.values)
    assert isinstance(value, Literal)  # the parser allows only single literals with ordering operators
    order = _ORDER[node.op]

    def check(t: Target) -> bool:
        if t.kind in _RELATIONSHIPS:
            return False
        for stored in t.values:
            converted = comparable(stored, value)
            if converted is not None and order(converted, value.value):
                return True
        return False

    return check


def _match(node: Match) -> Callable[[Target], bool]:
    def strings(t: Target) -> list[str]:
        if t.kind in _RELATIONSHIPS:
            return []
        return [v for v in (_unwrap(x) for x in t.values) if isinstance(v, str)]

    if node.negate:
        return lambda t: bool(found := strings(t)) and not any(node.regex.search(s) for s in found)
    return lambda t: any(node.regex.search(s) for s in strings(t))


def matches(entity: Entity, node: QNode, *, resolve: Resolver | None = None) -> bool:
    """Whether `entity` satisfies the q AST `node`; `resolve(id)` fetches linked entities (`rel{attr}`),
    without it linked-entity conditions are false."""
    if isinstance(node, And):
        return all(matches(entity, term, resolve=resolve) for term in node.terms)
    if isinstance(node, Or):
        return any(matches(entity, term, resolve=resolve) for term in node.terms)
    if isinstance(node, Exists):
        return _holds(entity, node.path, lambda _: True, resolve)
    if isinstance(node, Match):
        return _holds(entity, node.path, _match(node), resolve)
    return _holds(entity, node.path, _compare(node), resolve)


__all__ = ["Resolver", "Target", "comparable", "matches", "targets"]
