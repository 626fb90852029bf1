"""The reference evaluator of q (clause 4.9) over canonical entities (broker.core.model), in plain Python.

It is the executable meaning of a query: a store may translate queries to SQL for speed, and its results must
equal what `matches` says. Rules:

* A condition holds when ANY instance of the attribute (any datasetId), and for sub-attribute paths any
  instance at every level, satisfies it.
* Each instance yields the values a condition looks at: the `value` of a Property (elements, when the value
  is an array), `object`/`objectList` of relationships, the strings of a languageMap (or of one language with
  `name[fr]`), `vocab` IRIs, `valueList` elements, the `json` of a JsonProperty; or the member named by
  `.observedAt` and the like. Compound keys `[a.b]` walk into JSON objects (expanded keys for Property values,
  keys as written for JsonProperty and GeoProperty values, which JSON-LD does not expand).
* `==` holds when some value equals the literal (or one of a list, or lies in a range); `!=` holds when the
  instance has values and none of them does; a missing attribute satisfies neither.
* Values of different kinds never compare (1 vs "1" is false), except that strings holding a DateTime, Date
  or Time compare with DateTime/Date/Time literals as their parsed values.
* Relationships compare their object URIs with == and != only; ordering and patterns are false for them.
"""

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
    LinkedPath,
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


#: Attribute type -> the member holding what a condition compares, and whether compound keys are the keys as
#: written (JSON values, which JSON-LD does not expand) rather than expanded IRIs.
_MEMBER_OF: Final[dict[str, tuple[str, bool]]] = {
    "JsonProperty": ("json", True),
    "GeoProperty": ("value", True),
    "ListProperty": ("valueList", False),
}
_DEFAULT_MEMBER: Final = ("value", False)
_REFERENCE_MEMBER: Final = {"Relationship": "object", "ListRelationship": "objectList", "VocabProperty": "vocab"}


def _content(instance: Instance, keys: tuple[Key, ...]) -> tuple[Any, ...] | None:
    """The values an instance offers for a path ending in `keys`, None when the path does not exist in it."""
    kind = instance.get("type", "Property")
    if kind == "LanguageProperty":
        lang_map = instance.get("languageMap") or {}
        if len(keys) > 1 or (keys and keys[0].term not in lang_map):
            return None
        return _spread([lang_map[keys[0].term]] if keys else lang_map.values())
    reference = _REFERENCE_MEMBER.get(kind)
    if reference is not None:
        return None if keys else _spread([instance.get(reference)])
    member, raw_keys = _MEMBER_OF.get(kind, _DEFAULT_MEMBER)
    if member not in instance:
        return None
    if not keys:
        value = instance[member]
        return tuple(value) if isinstance(value, list) else (value,)
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


def _literal_value(kind: str, lit: Literal) -> Any:
    """The literal as the target sees it: vocab values compare with the expanded term."""
    if kind == "VocabProperty" and lit.expanded is not None:
        return lit.expanded
    return lit.value


def _equals(kind: str, stored: Any, lit: Literal) -> bool:
    if kind in _RELATIONSHIPS and lit.kind not in ("uri", "string"):
        return False
    value = comparable(stored, lit)
    return value is not None and value == _literal_value(kind, lit)


def _in_range(kind: str, stored: Any, rng: Range) -> bool:
    if kind in _RELATIONSHIPS:
        return False
    value = comparable(stored, rng.low)
    return value is not None and bool(rng.low.value <= value <= rng.high.value)


def _equal_any(kind: str, stored: Any, value: Literal | Range | ValueList) -> bool:
    if isinstance(value, Range):
        return _in_range(kind, stored, value)
    if isinstance(value, ValueList):
        return any(_equals(kind, stored, item) for item in value.items)
    return _equals(kind, stored, value)


#: A test of one target: its kind (the instance's attribute type, or "member") and its values.
Check = Callable[[str, tuple[Any, ...]], bool]


def _compare(node: Compare) -> Check:
    value = node.value
    if node.op == "==":
        return lambda kind, values: any(_equal_any(kind, v, value) for v in values)
    if node.op == "!=":
        return lambda kind, values: bool(values) and not any(_equal_any(kind, v, value) for v in values)
    assert isinstance(value, Literal)  # the parser allows only single literals with ordering operators
    order = _ORDER[node.op]
    bound = value.value

    def check(kind: str, values: tuple[Any, ...]) -> bool:
        if kind in _RELATIONSHIPS:
            return False
        for stored in values:
            converted = comparable(stored, value)
            if converted is not None and order(converted, bound):
                return True
        return False

    return check


def _match(node: Match) -> Check:
    def strings(kind: str, values: tuple[Any, ...]) -> list[str]:
        if kind in _RELATIONSHIPS:
            return []
        return [v for v in (_unwrap(x) for x in values) if isinstance(v, str)]

    search = node.regex.search
    if node.negate:
        return lambda kind, values: bool(found := strings(kind, values)) and not any(search(s) for s in found)
    return lambda kind, values: any(search(s) for s in strings(kind, values))


def _exists(kind: str, values: tuple[Any, ...]) -> bool:
    return True


# -- compilation -----------------------------------------------------------------------------------------------
# A q AST is turned once into nested closures, each node's decisions (operator, literal kind, path shape) taken
# at compile time, so that testing an entity runs no isinstance dispatch, no generator and no Target per instance.
# This is the evaluator, not a second one: `matches` runs the compiled form of its node.
Predicate = Callable[[Entity, Resolver | None], bool]


def _compile(node: QNode) -> Predicate:
    if isinstance(node, And | Or):
        terms = tuple(_compile(term) for term in node.terms)
        if len(terms) == 2:  # the usual `a;b` and `a|b`, without a generator
            first, second = terms
            if isinstance(node, And):
                return lambda entity, resolve: first(entity, resolve) and second(entity, resolve)
            return lambda entity, resolve: first(entity, resolve) or second(entity, resolve)
        if isinstance(node, And):
            return lambda entity, resolve: all(term(entity, resolve) for term in terms)
        return lambda entity, resolve: any(term(entity, resolve) for term in terms)
    if isinstance(node, Exists):
        return _compile_path(node.path, _exists)
    if isinstance(node, Match):
        return _compile_path(node.path, _match(node))
    return _compile_path(node.path, _compare(node))


def _compile_path(path: Path, check: Check) -> Predicate:
    """Whether `check` holds for some target of `path`, following linked-entity paths through `resolve`."""
    if isinstance(path, LinkedPath):
        inner = _compile_path(path.inner, check)
        relationship = path.relationship

        def linked(entity: Entity, resolve: Resolver | None) -> bool:
            if resolve is None:
                return False
            for entity_id in _linked_ids(entity, relationship):
                found = resolve(entity_id)
                if found is not None and inner(found, resolve):
                    return True
            return False

        return linked
    if len(path.names) == 1 and path.member is None and not path.keys:
        name = path.names[0]

        def plain(entity: Entity, resolve: Resolver | None) -> bool:
            for instance in entity.get("attrs", {}).get(name, ()):
                values = _content(instance, ())
                if values is not None and check(instance.get("type", "Property"), values):
                    return True
            return False

        return plain
    attr_path = path
    return lambda entity, resolve: any(check(t.kind, t.values) for t in targets(entity, attr_path))


_COMPILED: dict[int, tuple[QNode, Predicate]] = {}
#: Compiled forms kept; q ASTs live as long as their query or subscription, and a full memo starts again.
_COMPILED_LIMIT: Final = 4096


def compiled(node: QNode) -> Predicate:
    """The compiled form of `node`, memoised by identity: the memo holds the node, so its id is not reused while
    the entry lives (hashing the AST at every call would cost a good part of the evaluation it saves)."""
    hit = _COMPILED.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    predicate = _compile(node)
    if len(_COMPILED) >= _COMPILED_LIMIT:
        _COMPILED.clear()
    _COMPILED[id(node)] = (node, predicate)
    return predicate


def matches(entity: Entity, node: QNode, *, resolve: Resolver | None = None) -> bool:
    """Whether `entity` satisfies the q AST `node`; `resolve(id)` fetches linked entities (`rel{attr}`),
    without it linked-entity conditions are false."""
    return compiled(node)(entity, resolve)


__all__ = ["Resolver", "Target", "comparable", "compiled", "matches", "targets"]
