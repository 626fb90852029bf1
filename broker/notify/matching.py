"""Which subscriptions a change concerns, and why (clause 5.2.12 notificationTrigger; decision record 0022)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.core.model import Entity
from broker.core.subscriptions import TRIGGERS, Compiled, Selector
from broker.query import matches
from broker.query.types import matches_types
from broker.store.base import Change

# Triggers that concern the entity as a whole: watchedAttributes does not restrict them.
_ENTITY_LEVEL = frozenset({"entityCreated", "entityDeleted"})


def fired(change: Change) -> dict[str, frozenset[str]]:
    """The triggers a change fires, each with the attribute IRIs it concerns.

    Creating an entity creates each of its attributes, so the default triggers (attributeCreated,
    attributeUpdated) notify creations; deleting an entity fires entityDeleted only.
    """
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
