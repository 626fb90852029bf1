"""Rules every store backend shares, kept in one place so that all backends answer the same way.

Write semantics pinned down here (the contract in base.py leaves them open):

* the ids handed to a write are deduplicated, first occurrence wins the order;
* a plan may only write ids it was given, and a written entity's "id" must be its key (ValueError otherwise);
* writing None over an entity that does not exist is a no-op: no change event, nothing written;
* change events of one write are appended in the order of `plan.writes` and share one timestamp;
* `create_tenant` creates the tenant only when the write commits at least one change event;
* reads on a tenant that does not exist answer empty; only `write` raises NonexistentTenant;
* an EntityFilter member that is an empty set matches nothing; `id_pattern` uses `re.search` semantics;
* ids order is code-point order, which is also SQLite's BINARY order over UTF-8 text.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from shapely.geometry import shape

from broker.core.errors import NonexistentTenant
from broker.core.model import Entity
from broker.query.evaluate import comparable
from broker.query.q import Literal
from broker.store.base import Box, Delivery, EntityFilter, WritePlan


def dumps(value: Any) -> bytes:
    """The one serialisation of stored documents. orjson raises TypeError on anything that is not plain JSON,
    but writes NaN and infinities as null: they are refused here instead (ValueError), since a silent null
    would turn a Property into an invalid one."""
    data = orjson.dumps(value)
    # Only a document with a null in it can hide a non-finite number: the walk is skipped for nearly all writes.
    if b"null" in data and _has_non_finite(value):
        raise ValueError("NaN and infinite numbers cannot be stored: JSON has no representation for them")
    return data


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_non_finite(v) for v in value)
    return False


def loads(data: bytes) -> Any:
    return orjson.loads(data)


def clone(value: Any) -> Any:
    """A deep copy through JSON: as fast as any copy, and it refuses what a persistent backend could not store."""
    return orjson.loads(dumps(value))


def unique_ids(ids: Iterable[str]) -> list[str]:
    """The requested ids without duplicates, in first-seen order (a str is refused: it is not a list of ids)."""
    if isinstance(ids, str):
        raise TypeError("ids must be an iterable of ids, not a single str")
    return list(dict.fromkeys(ids))


def nonexistent_tenant(tenant: str) -> NonexistentTenant:
    return NonexistentTenant(f"Tenant {tenant!r} does not exist")


def checked_writes(plan: object, ids: list[str]) -> dict[str, Entity | None]:
    """The writes of `plan` once it is known to touch only `ids`, with entities whose "id" matches their key."""
    if not isinstance(plan, WritePlan):
        raise TypeError(f"a write function must return a WritePlan, not {type(plan).__name__}")
    writes: dict[str, Entity | None] = plan.writes
    allowed = set(ids)
    for eid, entity in writes.items():
        if eid not in allowed:
            raise ValueError(f"write function wrote {eid!r}, which it was not given")
        if entity is not None and entity.get("id") != eid:
            raise ValueError(f"entity written under {eid!r} has id {entity.get('id')!r}")
    return writes


def entity_types(entity: Mapping[str, Any]) -> frozenset[str]:
    """The type IRIs of a canonical entity (a list; a lone string is tolerated)."""
    raw = entity.get("type")
    if isinstance(raw, str):
        return frozenset((raw,))
    if isinstance(raw, list):
        return frozenset(t for t in raw if isinstance(t, str))
    return frozenset()


@functools.lru_cache(maxsize=256)
def compile_id_pattern(pattern: str) -> re.Pattern[str]:
    """Compiled once per pattern: SQLite calls REGEXP per row. An invalid pattern raises re.error."""
    return re.compile(pattern)


def matches(entity: Mapping[str, Any], flt: EntityFilter) -> bool:
    """Whether an entity passes a filter; the reference semantics the SQL pushdown must agree with."""
    return matches_id_and_types(entity["id"], entity_types(entity), flt)


def matches_id_and_types(entity_id: str, types: Iterable[str], flt: EntityFilter) -> bool:
    """`matches` for what a filter decides on (id, id pattern, types; its hints only narrow), given those alone:
    a temporal entity record has no attributes."""
    if flt.ids is not None and entity_id not in flt.ids:
        return False
    if flt.types is not None and flt.types.isdisjoint(types):
        return False
    return flt.id_pattern is None or compile_id_pattern(flt.id_pattern).search(entity_id) is not None


_ANY_NUMBER = Literal("number", 0)
#: The box of a geometry whose extent is not a plain one within [-180, 180] x [-90, 90]: a candidate for every box.
WORLD: Box = (-1e30, -1e30, 1e30, 1e30)


#: Every member of an instance that holds a value a q condition may compare.
_VALUE_MEMBERS = ("value", "json", "valueList", "vocab", "object", "objectList")


def changed_attrs(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The attributes whose instances differ between two states of an entity; None (all of them) when either
    state is missing. A write then re-indexes only these: most updates touch one attribute of many."""
    if before is None or after is None:
        return None
    old, new = before.get("attrs", {}), after.get("attrs", {})
    return frozenset(a for a in old.keys() | new.keys() if old.get(a) != new.get(a))


def _attrs_among(entity: Mapping[str, Any], only: frozenset[str] | None) -> Iterable[tuple[str, Any]]:
    attrs: Mapping[str, Any] = entity.get("attrs", {})
    if only is None:
        return attrs.items()
    return ((a, attrs[a]) for a in only if a in attrs)


def has_geo(entity: Mapping[str, Any], only: frozenset[str] | None = None) -> bool:
    """Whether any instance of the attributes `only` (all when None) is a GeoProperty."""
    return any(i.get("type") == "GeoProperty" for _, instances in _attrs_among(entity, only) for i in instances)


def numbers(entity: Mapping[str, Any], only: frozenset[str] | None = None) -> set[tuple[str, float]]:
    """(attribute, value) for each number a numeric q condition on a top-level attribute might compare, as
    doubles: a superset of what the reference evaluator reads (broker.query.evaluate._content picks one of these
    members by attribute type), gathered without its per-type dispatch since this runs on every write. Rounding
    to a double is monotonic, so a store comparing non-strictly against the rounded bound never misses a match.
    `only`: the attributes to look at (all when None)."""
    found: set[tuple[str, float]] = set()
    for attr, instances in _attrs_among(entity, only):
        for instance in instances:
            held = [instance[m] for m in _VALUE_MEMBERS if m in instance]
            lang_map = instance.get("languageMap")
            if isinstance(lang_map, dict):
                held += lang_map.values()
            for value in held:
                for element in value if isinstance(value, list) else (value,):
                    number = comparable(element, _ANY_NUMBER)
                    if number is not None:
                        found.add((attr, as_double(number)))
    return found


def as_double(number: float) -> float:
    """A number as a double; integers beyond the double range become infinities, which still order right."""
    try:
        return float(number)
    except OverflowError:
        return math.copysign(math.inf, number)


def geo_boxes(entity: Mapping[str, Any]) -> set[tuple[str, Box]]:
    """(attribute, bounding box) of each GeoProperty instance the geo evaluator reads (broker.query.geo)."""
    found: set[tuple[str, Box]] = set()
    for attr, instances in entity.get("attrs", {}).items():
        for instance in instances:
            value = instance.get("value")
            if instance.get("type") != "GeoProperty" or not isinstance(value, dict):
                continue
            try:
                min_lon, min_lat, max_lon, max_lat = _point_bounds(value) or shape(value).bounds
            except Exception:  # the evaluator skips what shapely cannot read, so may the index
                continue
            plain = -180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90  # false for NaN (empty)
            found.add((attr, (min_lon, min_lat, max_lon, max_lat) if plain else WORLD))
    return found


def _point_bounds(value: Mapping[str, Any]) -> Box | None:
    """The bounds of a plain Point (2 or 3 numbers) as shapely gives them, without building a shapely Point: most
    GeoProperties are Points, and shapely's construction was a tenth of a batch upsert's CPU. None otherwise."""
    if value.get("type") != "Point":
        return None
    coords = value.get("coordinates")
    if not isinstance(coords, list) or not 2 <= len(coords) <= 3:
        return None
    if not all(type(c) in (int, float) for c in coords):  # bool, str, nested: shapely decides (or refuses)
        return None
    lon, lat = float(coords[0]), float(coords[1])
    return (lon, lat, lon, lat)


def folded_state(state: Mapping[str, Any], delivery: Delivery) -> dict[str, Any]:
    """A subscription delivery state with one more notification outcome in it (every backend folds the same way)."""
    out = dict(state)
    out["timesSent"] = int(out.get("timesSent", 0)) + 1
    out["lastNotification"] = delivery.at
    if delivery.ok:
        out["lastSuccess"] = delivery.at
        out["status"] = "ok"
    else:
        out["timesFailed"] = int(out.get("timesFailed", 0)) + 1
        out["lastFailure"] = delivery.at
        out["status"] = "failed"
    return out
