"""Which subscriptions a change concerns, and why (clause 5.2.12 notificationTrigger; decision record 0022)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from broker.core.model import Entity
from broker.core.subscriptions import TRIGGERS, Compiled, Selector
from broker.query import matches
from broker.query.q import And, AttrPath, Compare, Literal, QNode
from broker.query.types import TypeName, matches_types
from broker.store.base import Change

T = TypeVar("T")

# Triggers that concern the entity as a whole: watchedAttributes does not restrict them.
_ENTITY_LEVEL = frozenset({"entityCreated", "entityDeleted"})


def fired(change: Change) -> dict[str, frozenset[str]]:
    """The triggers a change fires, each with the attribute IRIs it concerns.

    Creating an entity creates each of its attributes, so the default triggers (attributeCreated,
    attributeUpdated) notify creations; deleting an entity fires entityDeleted only. The notifier asks once per
    subscription for the same change: the last answer is kept.
    """
    last, answer = _last_fired[0]
    if last is change:
        return answer
    answer = _fired(change)
    _last_fired[0] = (change, answer)
    return answer


_last_fired: list[tuple[Change | None, dict[str, frozenset[str]]]] = [(None, {})]


def _fired(change: Change) -> dict[str, frozenset[str]]:
    before, after = change.before, change.after
    if before is None and after is not None:
        attrs = frozenset(after.get("attrs", {}))
        return {"entityCreated": attrs, "attributeCreated": attrs}
    if after is None:
        return {"entityDeleted": frozenset(before.get("attrs", {}) if before else ())}
    assert before is not None
    old, new = before.get("attrs", {}), after.get("attrs", {})
    created = frozenset(new.keys() - old.keys())
    deleted = frozenset(old.keys() - new.keys())
    updated = frozenset(k for k in new.keys() & old.keys() if new[k] != old[k])
    out = {
        name: attrs
        for name, attrs in (("attributeCreated", created), ("attributeUpdated", updated), ("attributeDeleted", deleted))
        if attrs
    }
    if out or _head(before) != _head(after):
        out["entityUpdated"] = created | updated | deleted
    return out


def _head(entity: Mapping[str, Any]) -> tuple[Any, Any]:
    return entity.get("type"), entity.get("scope")


def selected(entity: Entity, selectors: tuple[Selector, ...]) -> bool:
    """Any selector matches (no selectors: every entity, the subscription watches attributes only)."""
    if not selectors:
        return True
    return any(_one(entity, s) for s in selectors)


def _one(entity: Entity, sel: Selector) -> bool:
    if not matches_types(entity.get("type", []), sel.types):
        return False
    if sel.id is not None:
        return bool(entity.get("id") == sel.id)
    return sel.id_pattern is None or sel.id_pattern.search(str(entity.get("id", ""))) is not None


def trigger_reason(sub: Compiled, change: Change, triggers: Mapping[str, frozenset[str]]) -> str | None:
    """The first of the subscription's triggers (in the clause's order) that the change fires, considering
    watchedAttributes; None when the subscription is not concerned."""
    if sub.time_interval is not None:
        return None  # a periodic subscription notifies on its clock, not on changes (broker.notify.periodic)
    entity = change.after if change.after is not None else change.before
    if entity is None or not selected(entity, sub.selectors):
        return None
    reason = next((t for t in TRIGGERS if t in sub.triggers and _fires(sub, t, triggers)), None)
    if reason is None:
        return None
    # q, geoQ and scopeQ read the new state; a deleted entity is judged on its last state.
    return reason if matches(entity, sub.query) else None


def _fires(sub: Compiled, trigger: str, triggers: Mapping[str, frozenset[str]]) -> bool:
    if trigger not in triggers:
        return False
    if trigger in _ENTITY_LEVEL or sub.watched is None:
        return True
    return bool(triggers[trigger] & sub.watched)


# -- pre-selection of the subscriptions a change may concern ------------------------------------------------------
class SubscriptionIndex(Generic[T]):
    """The subscriptions of one tenant, indexed so that a change is matched only against those it may concern.

    Two necessary conditions narrow the candidates, both read from the compiled subscription: its entity types
    (when every EntitySelector names one type) and one `attr==number` conjunct of its q. The index only narrows:
    `trigger_reason` still decides on every candidate, so an entity whose attribute the index cannot read simply
    (not a Property with a number) makes every subscription keyed on that attribute a candidate. With 100
    subscriptions that never match, this turns 100 q evaluations per write into a few dictionary look-ups.
    """

    def __init__(self, subs: Iterable[tuple[Compiled, T]]) -> None:
        self._any: list[tuple[Compiled, T]] = []  # no usable type key
        self._by_type: dict[str, _Bucket[T]] = {}
        for entry in subs:
            sub = entry[0]
            if sub.time_interval is not None:
                continue  # notified on a clock, never on changes
            types = _selector_types(sub.selectors)
            if types is None:
                self._any.append(entry)
            else:
                for iri in types:
                    self._by_type.setdefault(iri, _Bucket()).add(entry, _number_equality(sub.query.q))

    def candidates(self, change: Change) -> list[tuple[Compiled, T]]:
        entity = change.after if change.after is not None else change.before
        if entity is None:
            return []
        found: dict[int, tuple[Compiled, T]] = {id(e[0]): e for e in self._any}
        for iri in entity.get("type", ()):
            bucket = self._by_type.get(iri)
            if bucket is not None:
                for entry in bucket.candidates(entity):
                    found.setdefault(id(entry[0]), entry)
        return list(found.values())


class _Bucket(Generic[T]):
    def __init__(self) -> None:
        self.plain: list[tuple[Compiled, T]] = []
        self.keyed: dict[str, dict[float, list[tuple[Compiled, T]]]] = {}

    def add(self, entry: tuple[Compiled, T], key: tuple[str, float] | None) -> None:
        if key is None:
            self.plain.append(entry)
        else:
            self.keyed.setdefault(key[0], {}).setdefault(key[1], []).append(entry)

    def candidates(self, entity: Entity) -> list[tuple[Compiled, T]]:
        out = list(self.plain)
        attrs = entity.get("attrs", {})
        for attr, by_value in self.keyed.items():
            values = _numbers(attrs.get(attr))
            if values is None:  # not readable simply: every subscription keyed on it is a candidate
                out.extend(e for entries in by_value.values() for e in entries)
            else:
                for value in values:
                    out.extend(by_value.get(value, ()))
        return out


def _selector_types(selectors: tuple[Selector, ...]) -> frozenset[str] | None:
    """The type IRIs an entity must have one of, when every selector names exactly one type; else None."""
    if not selectors or not all(isinstance(s.types, TypeName) for s in selectors):
        return None
    return frozenset(s.types.iri for s in selectors if isinstance(s.types, TypeName))


def _number_equality(q: QNode | None) -> tuple[str, float] | None:
    """One conjunct `attr==number` that every match must satisfy (top-level, plain attribute path)."""
    terms = q.terms if isinstance(q, And) else (q,) if q is not None else ()
    for term in terms:
        if (
            isinstance(term, Compare)
            and term.op == "=="
            and isinstance(term.path, AttrPath)
            and len(term.path.names) == 1
            and term.path.member is None
            and not term.path.keys
            and isinstance(term.value, Literal)
            and term.value.kind == "number"
        ):
            return term.path.names[0], float(term.value.value)
    return None


def _numbers(instances: list[Any] | None) -> set[float] | None:
    """The numbers an attribute's instances hold, when every instance is a Property with a number value; an absent
    attribute holds none (so `attr==n` cannot hold); None when some instance is anything else."""
    if instances is None:
        return set()
    out = set()
    for inst in instances:
        value = inst.get("value") if inst.get("type") == "Property" else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        out.add(float(value))
    return out
