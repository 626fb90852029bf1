"""Context source registrations (clauses 4.3.6, 4.20, 5.2.9, 5.2.10, 5.2.34, 5.9, 5.10; HTTP binding 6.8, 6.9).

A registration is validated member by member (each error names its member), then stored with its entity types,
attribute names and additional members expanded to IRIs (decision record 0160) and re-compacted with the reader's
@context on the way out, so two clients with different @contexts see their own terms for one registration.

The planner's entry point (decision record 0164) is `Registrations.matching(tenant, operation, ...)`: an
in-memory index of every live registration of every tenant, compiled once and rebuilt only when the store's
registration version moves (any process) or this process changed one. It answers "which registrations may hold
this entity type / id / attribute / area for this operation" without reading the store.
"""

from __future__ import annotations

import math
import re
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from broker.core.geojson import validate_geometry
from broker.core.model import NULL_URI, now_iso
from broker.core.normalize import check_datetime, check_name, check_uri, parse_scopes
from broker.core.query import Paging
from broker.guards import OutboundPolicy
from broker.ld.termmap import TermMap
from broker.query import Query
from broker.query.common import DEFAULT_LIMITS, compile_regex
from broker.query.geo import relation_holds
from broker.query.q import And, AttrPath, LinkedPath, Or, QNode
from broker.query.scope import matches_scope
from broker.query.types import matches_types
from broker.store.base import RegistrationRecord, Store
from broker.temporal.times import parse_duration

TYPE: Final = "ContextSourceRegistration"
MODES: Final = ("inclusive", "exclusive", "redirect", "auxiliary")

# -- operation names and groups (clause 4.20, Tables 4.20-1 and 4.20-2) ------------------------------------------
PROVISION_OPS: Final = [
    "createEntity",
    "updateEntity",
    "appendAttrs",
    "updateAttrs",
    "deleteAttrs",
    "deleteEntity",
    "createBatch",
    "upsertBatch",
    "updateBatch",
    "deleteBatch",
    "upsertTemporal",
    "appendAttrsTemporal",
    "deleteAttrsTemporal",
    "updateAttrInstanceTemporal",
    "deleteAttrInstanceTemporal",
    "deleteTemporal",
    "mergeEntity",
    "replaceEntity",
    "replaceAttrs",
    "mergeBatch",
    "purgeEntity",
]
CONSUMPTION_OPS: Final = [
    "retrieveEntity",
    "queryEntity",
    "queryBatch",
    "retrieveTemporal",
    "queryTemporal",
    "retrieveEntityTypes",
    "retrieveEntityTypeDetails",
    "retrieveEntityTypeInfo",
    "retrieveAttrTypes",
    "retrieveAttrTypeDetails",
    "retrieveAttrTypeInfo",
]
SUBSCRIPTION_OPS: Final = [
    "createSubscription",
    "updateSubscription",
    "retrieveSubscription",
    "querySubscription",
    "deleteSubscription",
]
MAP_OPS: Final = [
    "retrieveEntityMap",
    "updateEntityMap",
    "deleteEntityMap",
    "createEntityMapQueryEntity",
    "createEntityMapQueryTemporal",
    "retrieveContextSourceIdentity",
]
OPERATIONS: Final = frozenset(PROVISION_OPS + CONSUMPTION_OPS + SUBSCRIPTION_OPS + MAP_OPS)
_DISCOVERY_OPS: Final = CONSUMPTION_OPS[5:]
_IDENTITY: Final = ["retrieveContextSourceIdentity"]
GROUPS: Final[dict[str, frozenset[str]]] = {
    "federationOps": frozenset(CONSUMPTION_OPS[:3] + _DISCOVERY_OPS + SUBSCRIPTION_OPS + MAP_OPS[:4] + _IDENTITY),
    "associationOps": frozenset(CONSUMPTION_OPS[:3] + _DISCOVERY_OPS + SUBSCRIPTION_OPS + _IDENTITY),
    "updateOps": frozenset({"updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"}),
    "retrieveOps": frozenset({"retrieveEntity", "queryEntity"}),
    "redirectionOps": frozenset(
        [
            "createEntity",
            "updateEntity",
            "appendAttrs",
            "updateAttrs",
            "deleteAttrs",
            "deleteEntity",
            "mergeEntity",
            "replaceEntity",
            "replaceAttrs",
            "retrieveEntity",
            "queryEntity",
            "purgeEntity",
            *_DISCOVERY_OPS,
            *MAP_OPS[:4],
            *_IDENTITY,
        ]
    ),
}
DEFAULT_OPERATIONS: Final = "federationOps"
#: The operations on temporal evolutions (Table 4.20-1): matched to registrations with a time interval only.
TEMPORAL_OPS: Final = frozenset(op for op in PROVISION_OPS + CONSUMPTION_OPS + MAP_OPS if "Temporal" in op)
#: What an auxiliary registration may name (clause 4.3.6.2: "limited to context information consumption
#: operations (see clause 5.7)"); decision record 0162.
AUXILIARY_OPS: Final = frozenset(CONSUMPTION_OPS)

# -- members (Table 5.2.9-1, 5.2.9-2) ----------------------------------------------------------------------------
_MEMBERS: Final = frozenset(
    {
        "id",
        "type",
        "registrationName",
        "description",
        "endpoint",
        "contextSourceInfo",
        "information",
        "contextSourceAlias",
        "datasetId",
        "expiresAt",
        "location",
        "observationSpace",
        "operationSpace",
        "management",
        "managementInterval",
        "observationInterval",
        "mode",
        "operations",
        "refreshRate",
        "scope",
        "tenant",
    }
)
#: Read-only members (Table 5.2.9-2, and the system attributes): "NGSI-LD implementations shall ignore them".
READ_ONLY: Final = frozenset(
    {"status", "timesSent", "timesFailed", "lastSuccess", "lastFailure", "createdAt", "modifiedAt", "@context"}
)
_INFO: Final = frozenset({"entities", "propertyNames", "relationshipNames"})
_ENTITY_INFO: Final = frozenset({"id", "idPattern", "type"})
_MANAGEMENT: Final = frozenset({"localOnly", "cacheDuration", "timeout", "cooldown"})
_INTERVAL: Final = frozenset({"startAt", "endAt"})
_GEO_MEMBERS: Final = ("location", "observationSpace", "operationSpace")
_MANDATORY: Final = ("type", "endpoint", "information")
#: Keys of contextSourceInfo with a meaning of their own (clause 4.3.6.6) and the values they take.
_CSI_MEDIA: Final = ("application/json", "application/ld+json")
_VERSION: Final = re.compile(r"^\d+\.\d+$")
#: Where the additional members of a registration (any other member name, decision record 0160) are kept.
EXTRA: Final = "agora:extra"


def _fail(message: str) -> BadRequestData:
    return BadRequestData(message)


def _object(value: Any, allowed: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(f"{where}: unknown member(s) {', '.join(unknown)}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(f"{where} must be a non-empty string")
    return value


def _array(value: Any, where: str, *, allow_empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise _fail(f"{where} must be a non-empty array")
    return value


def _positive(value: Any, where: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise _fail(f"{where} must be a number greater than 0 (milliseconds)")
    return float(value)


def _duration(value: Any, where: str) -> str:
    text = _text(value, where)
    parse_duration(text, where)
    return text


def _utc(stamp: str) -> str:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")


# -- validation --------------------------------------------------------------------------------------------------
def _entity_info(value: Any, where: str, tm: TermMap) -> dict[str, Any]:
    """EntityInfo (clause 5.2.8): a type (one name or several), and an id or an idPattern."""
    doc = _object(value, _ENTITY_INFO, where)
    if "type" not in doc:
        raise _fail(f"{where}.type is mandatory")
    raw_types = doc["type"] if isinstance(doc["type"], list) else [doc["type"]]
    if not raw_types:
        raise _fail(f"{where}.type must name at least one entity type")
    out: dict[str, Any] = {"type": [tm.expand_term(check_name(t, f"{where}.type")) for t in raw_types]}
    if "id" in doc and "idPattern" in doc:
        raise _fail(f"{where}: id and idPattern are exclusive")
    if "id" in doc:
        out["id"] = check_uri(doc["id"], f"{where}.id")
    if "idPattern" in doc:
        pattern = _text(doc["idPattern"], f"{where}.idPattern")
        compile_regex(pattern, f"{where}.idPattern", DEFAULT_LIMITS)  # the limits of a query's idPattern
        out["idPattern"] = pattern
    return out


def _names(value: Any, where: str, tm: TermMap) -> list[str]:
    items = _array(value, where)
    return list(dict.fromkeys(tm.expand_term(check_name(n, f"{where}[{i}]")) for i, n in enumerate(items)))


def _information(value: Any, tm: TermMap) -> list[dict[str, Any]]:
    """RegistrationInfo (clause 5.2.10): at least one of entities, propertyNames, relationshipNames."""
    out = []
    for i, item in enumerate(_array(value, "information")):
        where = f"information[{i}]"
        doc = _object(item, _INFO, where)
        if not doc:
            raise _fail(f"{where} must hold entities, propertyNames or relationshipNames")
        info: dict[str, Any] = {}
        if "entities" in doc:
            entities = _array(doc["entities"], f"{where}.entities")
            info["entities"] = [_entity_info(e, f"{where}.entities[{j}]", tm) for j, e in enumerate(entities)]
        for member in ("propertyNames", "relationshipNames"):
            if member in doc:
                info[member] = _names(doc[member], f"{where}.{member}", tm)
        both = set(info.get("propertyNames", ())) & set(info.get("relationshipNames", ()))
        if both:
            raise _fail(f"{where}: {sorted(both)[0]} is both a property name and a relationship name")
        out.append(info)
    return out


def _interval(value: Any, where: str) -> dict[str, str]:
    """TimeInterval (clause 5.2.11): startAt, and an endAt after it when present."""
    doc = _object(value, _INTERVAL, where)
    if "startAt" not in doc:
        raise _fail(f"{where}.startAt is mandatory")
    out = {"startAt": check_datetime(doc["startAt"], f"{where}.startAt")}
    if "endAt" in doc:
        out["endAt"] = check_datetime(doc["endAt"], f"{where}.endAt")
        if _utc(out["endAt"]) <= _utc(out["startAt"]):
            raise _fail(f"{where}.endAt must be after {where}.startAt")
    return out


def _key_values(value: Any) -> list[dict[str, str]]:
    """contextSourceInfo (KeyValuePair[], clause 5.2.22), with the keys of clause 4.3.6.6 checked."""
    out = []
    for i, item in enumerate(_array(value, "contextSourceInfo")):
        where = f"contextSourceInfo[{i}]"
        doc = _object(item, frozenset({"key", "value"}), where)
        key, val = _text(doc.get("key"), f"{where}.key"), doc.get("value")
        if not isinstance(val, str):
            raise _fail(f"{where}.value must be a string")
        if key in ("accept", "contentType") and val not in _CSI_MEDIA:
            raise _fail(f"{where}: {key} must be one of {', '.join(_CSI_MEDIA)}")
        if key == "jsonldContext":
            check_uri(val, f"{where}.value (jsonldContext)")
        if key == "ngsildConformance" and not _VERSION.match(val):
            raise _fail(f"{where}: ngsildConformance must be major.minor, such as 1.9")
        if key.lower() in ("ngsild-tenant", "tenant"):
            # Clause 4.3.6.5: "As Tenant information ... is directly specified in the CSourceRegistration, it
            # shall not be part of contextSourceInfo."
            raise _fail(f"{where}: the tenant is the registration's tenant member, not a contextSourceInfo key")
        out.append({"key": key, "value": val})
    return out


def _management(value: Any) -> dict[str, Any]:
    doc = _object(value, _MANAGEMENT, "management")
    out: dict[str, Any] = {}
    if "localOnly" in doc:
        if not isinstance(doc["localOnly"], bool):
            raise _fail("management.localOnly must be true or false")
        out["localOnly"] = doc["localOnly"]
    if "cacheDuration" in doc:
        out["cacheDuration"] = _duration(doc["cacheDuration"], "management.cacheDuration")
    for member in ("timeout", "cooldown"):
        if member in doc:
            _positive(doc[member], f"management.{member}")
            out[member] = doc[member]
    return out


def _operations(value: Any) -> list[str]:
    ops = _array(value, "operations")
    for i, op in enumerate(ops):
        if not isinstance(op, str) or (op not in OPERATIONS and op not in GROUPS):
            raise _fail(f"operations[{i}]: {op!r} is neither an operation name nor an operation group (clause 4.20)")
    return list(dict.fromkeys(ops))


def operation_set(doc: Mapping[str, Any]) -> frozenset[str]:
    """The operation names a registration offers, its groups spelled out (federationOps when none is given)."""
    names: set[str] = set()
    for op in doc.get("operations") or [DEFAULT_OPERATIONS]:
        names |= GROUPS.get(op, {op})
    return frozenset(names)


def _extra(name: str, value: Any, tm: TermMap) -> tuple[str, Any]:
    """An additional member (decision record 0160): a valid attribute name, kept expanded, with any JSON value."""
    check_name(name, f"registration member {name!r}")
    if value is None:
        raise _fail(f"{name} must not be null")
    return tm.expand_term(name), value


def validated(body: Any, tm: TermMap) -> dict[str, Any]:
    """The document to store, read-only members dropped, or BadRequestData naming the first faulty member."""
    if not isinstance(body, dict):
        raise _fail("a context source registration must be a JSON object")
    doc = {k: v for k, v in body.items() if k not in READ_ONLY}
    for member in _MANDATORY:
        if member not in doc:
            raise _fail(f"{member} is mandatory in a context source registration")
    out: dict[str, Any] = {"id": check_uri(doc["id"], "id") if "id" in doc else new_registration_id()}
    if doc["type"] != TYPE:
        raise _fail(f"type must be {TYPE!r}, not {doc['type']!r}")
    out["type"] = TYPE
    endpoint = check_uri(doc["endpoint"], "endpoint")
    if not re.match(r"^https?://[^/?#]+", endpoint):
        raise _fail(f"endpoint {endpoint!r} must be a dereferenceable http or https URI")
    out["endpoint"] = endpoint
    out["information"] = _information(doc["information"], tm)
    extras: dict[str, Any] = {}
    for member, value in doc.items():
        if member in out:
            continue
        if member not in _MEMBERS:
            key, kept = _extra(member, value, tm)
            extras[key] = kept
            continue
        out[member] = _member(member, value)
    if extras:
        out[EXTRA] = extras
    _check_mode(out)
    return out


def _member(member: str, value: Any) -> Any:
    """One optional member of Table 5.2.9-1, checked."""
    if member in ("registrationName", "description", "contextSourceAlias", "tenant"):
        return _text(value, member)
    if member == "mode":
        if value not in MODES:
            raise _fail(f"mode must be one of {', '.join(MODES)}, not {value!r}")
        return value
    if member == "operations":
        return _operations(value)
    if member == "scope":
        return parse_scopes(value, "scope") if isinstance(value, list) else parse_scopes(value, "scope")[0]
    if member in _GEO_MEMBERS:
        validate_geometry(value, member)
        return value
    if member in ("observationInterval", "managementInterval"):
        return _interval(value, member)
    if member == "expiresAt":
        return check_datetime(value, "expiresAt")
    if member == "refreshRate":
        return _duration(value, "refreshRate")
    if member == "management":
        return _management(value)
    if member == "contextSourceInfo":
        return _key_values(value)
    # datasetId: valid URIs or "@none" (Table 5.2.9-1)
    items = _array(value, "datasetId")
    return [v if v == "@none" else check_uri(v, f"datasetId[{i}]") for i, v in enumerate(items)]


def _check_mode(doc: Mapping[str, Any]) -> None:
    """What clause 4.3.6 asks of each mode, beyond the shape of its members (decision records 0161, 0162)."""
    mode = doc.get("mode", "inclusive")
    if mode == "exclusive":
        for i, info in enumerate(doc["information"]):
            where = f"information[{i}]"
            entities = info.get("entities")
            if not entities or any("id" not in e for e in entities):
                # 4.3.6.3: "An entity id (i.e. an id pattern or Entity type defining a group of entities is not
                # supported for exclusive registrations)."
                raise _fail(f"{where}: an exclusive registration names each entity by its id (no idPattern)")
            if not info.get("propertyNames") and not info.get("relationshipNames"):
                raise _fail(f"{where}: an exclusive registration names the attributes it holds")
    if mode == "auxiliary":
        offered = operation_set(doc) - AUXILIARY_OPS
        if offered & (set(PROVISION_OPS) | set(SUBSCRIPTION_OPS) | set(MAP_OPS)) and "operations" in doc:
            first = sorted(offered)[0]
            raise _fail(f"operations: an auxiliary registration offers consumption operations only, not {first}")


def new_registration_id() -> str:
    return f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}"


# -- the compiled form, for matching --------------------------------------------------------------------------------
@dataclass(frozen=True)
class InfoMatch:
    """One RegistrationInfo: entity selectors (None: any entity) and attribute names (None: any attribute)."""

    selectors: tuple[tuple[frozenset[str], str | None, re.Pattern[str] | None], ...] | None
    attrs: frozenset[str] | None

    def may_hold(self, types: Iterable[str] | None, entity_id: str | None, attrs: Iterable[str] | None) -> bool:
        if attrs is not None and self.attrs is not None and not (self.attrs & set(attrs)):
            return False
        if self.selectors is None:
            return True
        wanted = None if types is None else set(types)
        for sel_types, sel_id, pattern in self.selectors:
            if wanted is not None and not (sel_types & wanted):
                continue
            if entity_id is not None and sel_id is not None and sel_id != entity_id:
                continue
            if entity_id is not None and pattern is not None and not pattern.search(entity_id):
                continue
            return True
        return False


@dataclass(frozen=True)
class Registration:
    """A live registration compiled for the planner: what it offers, where and until when."""

    tenant: str
    id: str
    endpoint: str
    mode: str
    operations: frozenset[str]
    infos: tuple[InfoMatch, ...]
    geometries: dict[str, BaseGeometry]
    expires_at: str | None
    doc: dict[str, Any] = field(repr=False, compare=False)

    @property
    def temporal(self) -> bool:
        """Whether the source holds temporal evolutions (an observationInterval or managementInterval): then it is
        one for the temporal operations only, and one without is for the latest data only (Table 5.2.9-1)."""
        return "observationInterval" in self.doc or "managementInterval" in self.doc

    def offers(self, operation: str) -> bool:
        return operation in self.operations

    def may_hold(
        self, types: Iterable[str] | None = None, entity_id: str | None = None, attrs: Iterable[str] | None = None
    ) -> bool:
        return any(info.may_hold(types, entity_id, attrs) for info in self.infos)


def _pattern(text: str) -> re.Pattern[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as compile_regex: a dubious pattern is not a server error
        return re.compile(text)


def compile_registration(tenant: str, doc: Mapping[str, Any]) -> Registration:
    infos = []
    for info in doc["information"]:
        selectors = None
        if info.get("entities"):
            selectors = tuple(
                (frozenset(e["type"]), e.get("id"), _pattern(e["idPattern"]) if "idPattern" in e else None)
                for e in info["entities"]
            )
        names = set(info.get("propertyNames", ())) | set(info.get("relationshipNames", ()))
        infos.append(InfoMatch(selectors, frozenset(names) if names else None))
    geometries = {m: shape(doc[m]) for m in _GEO_MEMBERS if m in doc}
    return Registration(
        tenant,
        doc["id"],
        doc["endpoint"],
        doc.get("mode", "inclusive"),
        operation_set(doc),
        tuple(infos),
        geometries,
        _utc(doc["expiresAt"]) if doc.get("expiresAt") else None,
        dict(doc),
    )


def is_live(reg: Registration, now: str) -> bool:
    return reg.expires_at is None or reg.expires_at > now


# -- conflicts (clause 4.3.6.3, decision record 0161) -------------------------------------------------------------
def _exclusive_keys(reg: Registration) -> list[tuple[str, frozenset[str], frozenset[str]]]:
    """(entity id, its types, attribute names) of each entity an exclusive registration holds attributes of."""
    keys = []
    for info in reg.infos:
        for types, entity_id, _ in info.selectors or ():
            if entity_id is not None and info.attrs is not None:
                keys.append((entity_id, types, info.attrs))
    return keys


def _covers(other: Registration, entity_id: str, types: frozenset[str], attrs: frozenset[str]) -> bool:
    return any(info.may_hold(types, entity_id, attrs) for info in other.infos)


def conflict(new: Registration, existing: Iterable[Registration]) -> Registration | None:
    """The live exclusive or redirect registration `new` may not coexist with: "Once an exclusive Context Source
    Registration has been created, no further exclusive or redirect Context Source Registrations can be created for
    that same combination of Entity ID and Attributes" (4.3.6.3). Inclusive and auxiliary ones never conflict."""
    if new.mode not in ("exclusive", "redirect"):
        return None
    for other in existing:
        if other.id == new.id or other.mode not in ("exclusive", "redirect"):
            continue
        if new.mode == "redirect" and other.mode == "redirect":
            continue  # "Potentially multiple distinct redirect registrations can apply at the same time."
        exclusive, proxied = (new, other) if new.mode == "exclusive" else (other, new)
        for entity_id, types, attrs in _exclusive_keys(exclusive):
            if _covers(proxied, entity_id, types, attrs):
                return other
    return None


# -- query (clause 5.10.2) -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeFilter:
    """timerel, timeAt, endTimeAt and timeproperty of Query Context Source Registrations (6.8.3.2)."""

    rel: str
    at: str
    end: str | None
    prop: str = "observedAt"


def _q_holds(node: QNode, reg: Registration) -> bool:
    """A q over entities selects a registration that may provide the attributes the q reads (decision record
    0163): the registrations hold no attribute values, only names."""
    if isinstance(node, And):
        return all(_q_holds(t, reg) for t in node.terms)
    if isinstance(node, Or):
        return any(_q_holds(t, reg) for t in node.terms)
    path = node.path
    while isinstance(path, LinkedPath):
        path = path.relationship
    assert isinstance(path, AttrPath)
    return reg.may_hold(attrs=[path.names[0]])


def _time_holds(flt: TimeFilter, reg: Registration) -> bool:
    member = "observationInterval" if flt.prop == "observedAt" else "managementInterval"
    interval = reg.doc.get(member)
    if interval is None:
        return False  # Table 5.2.9-1: only a registration with the interval can be queried for temporal data
    start, end = _utc(interval["startAt"]), _utc(interval["endAt"]) if "endAt" in interval else None
    at = _utc(flt.at)
    if flt.rel == "before":
        return start < at
    if flt.rel == "after":
        return end is None or end > at
    stop = _utc(flt.end) if flt.end else at
    return start <= stop and (end is None or end >= at)


def _pseudo_entity(reg: Registration, core: TermMap) -> dict[str, Any]:
    """The registration as an entity for csf and geo-queries: its members as Properties, its spaces as
    GeoProperties (core IRIs), its additional members under their IRIs."""
    attrs: dict[str, list[dict[str, Any]]] = {}
    for member, value in reg.doc.items():
        if member in ("id", "type", "information", EXTRA):
            continue
        kind = "GeoProperty" if member in _GEO_MEMBERS else "Property"
        attrs[core.expand_term(member)] = [{"type": kind, "value": value}]
    for iri, value in (reg.doc.get(EXTRA) or {}).items():
        attrs[iri] = [{"type": "Property", "value": value}]
    return {"id": reg.id, "type": [TYPE], "attrs": attrs}


def selects(reg: Registration, query: Query, attrs: frozenset[str] | None, when: TimeFilter | None) -> bool:
    """Whether Query Context Source Registrations selects `reg` (5.10.2): it may hold an entity the query asks for
    (ids, idPattern, type, attrs, q), its location relates to the geo-query's area, its interval overlaps the
    temporal query, and its own members satisfy csf."""
    from broker.query.types import AllTypes

    def info_ok(info: InfoMatch) -> bool:
        if attrs is not None and info.attrs is not None and not (info.attrs & attrs):
            return False
        if info.selectors is None:
            return True
        for types, sel_id, pattern in info.selectors:
            typed = query.types is not None and not isinstance(query.types, AllTypes)
            if typed and query.types is not None and not matches_types(sorted(types), query.types):
                continue
            if query.ids is not None and sel_id is not None and sel_id not in query.ids:
                continue
            if query.ids is not None and pattern is not None and not any(pattern.search(i) for i in query.ids):
                continue
            if query.id_pattern is not None and sel_id is not None and not query.id_pattern.search(sel_id):
                continue
            return True
        return False

    if not any(info_ok(info) for info in reg.infos):
        return False
    if query.q is not None and not _q_holds(query.q, reg):
        return False
    if query.geo is not None:
        # A registration without the geoproperty's space restricts nothing there (decision record 0163).
        member = {"https://uri.etsi.org/ngsi-ld/observationSpace": "observationSpace"}.get(query.geo.geoproperty)
        member = member or {"https://uri.etsi.org/ngsi-ld/operationSpace": "operationSpace"}.get(
            query.geo.geoproperty, "location"
        )
        geometry = reg.geometries.get(member)
        if geometry is not None and not _area_holds(query, geometry):
            return False
    if when is not None and not _time_holds(when, reg):
        return False
    if when is None and reg.temporal:
        # 5.10.2: "If no temporal query is present, only Context Source Registrations for Context Sources providing
        # latest information, i.e. without specified time intervals, are considered."
        return False
    if query.scope is not None and "scope" in reg.doc:
        scopes = reg.doc["scope"] if isinstance(reg.doc["scope"], list) else [reg.doc["scope"]]
        if not matches_scope(scopes, query.scope):
            return False
    return query.csf is None or csf_holds(reg, query.csf)


def csf_holds(reg: Registration, csf: QNode) -> bool:
    """Whether a registration's own members satisfy a context source filter (clause 4.9 over the registration as
    an entity, see `_pseudo_entity`)."""
    from broker.ld.termmap import core_termmap
    from broker.query import evaluate

    return evaluate.matches(_pseudo_entity(reg, core_termmap()), csf)


def _area_holds(query: Query, geometry: BaseGeometry) -> bool:
    """The area a registration covers relates to the query's as asked; for `within` and `contains`, whose
    direction is about entities inside the registration's area, an overlap is enough (an entity of the area may
    satisfy it)."""
    assert query.geo is not None
    relation = query.geo.relation
    if relation in ("within", "contains", "overlaps", "equals"):
        return bool(geometry.intersects(query.geo.geometry))
    if relation == "disjoint":
        return not bool(geometry.within(query.geo.geometry))
    return relation_holds(relation, geometry, query.geo)


# -- rendering -----------------------------------------------------------------------------------------------------
def rendered(record: RegistrationRecord, tm: TermMap, sys_attrs: bool) -> dict[str, Any]:
    """The registration in the reader's terms: types and attribute names compacted with its @context."""
    doc = record.body
    out: dict[str, Any] = {}
    for member, value in doc.items():
        if member == EXTRA:
            for iri, extra in value.items():
                out[tm.compact_iri(iri)] = extra
        elif member == "information":
            out[member] = [_render_info(info, tm) for info in value]
        elif member in ("createdAt", "modifiedAt"):
            if sys_attrs:
                out[member] = value
        else:
            out[member] = value
    return out


def _render_info(info: Mapping[str, Any], tm: TermMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "entities" in info:
        out["entities"] = []
        for e in info["entities"]:
            types = [tm.compact_iri(t) for t in e["type"]]
            shown: dict[str, Any] = {k: v for k, v in e.items() if k != "type"}
            shown["type"] = types[0] if len(types) == 1 else types
            out["entities"].append(shown)
    for member in ("propertyNames", "relationshipNames"):
        if member in info:
            out[member] = [tm.compact_iri(n) for n in info[member]]
    return out


# -- merge on update (clause 5.9.3, decision record 0165) -------------------------------------------------------
def merge_fragment(current: Mapping[str, Any], fragment: Any, tm: TermMap) -> dict[str, Any]:
    """Each member of the fragment replaces the stored one; null removes an optional member. `current` is in the
    request's terms (see `rendered`), so that the merged document is validated as a new one."""
    if not isinstance(fragment, dict) or not fragment:
        raise _fail("the registration fragment must be a non-empty JSON object")
    if fragment.get("id", current["id"]) != current["id"]:
        raise _fail("the id of a registration cannot be changed")
    if fragment.get("type", TYPE) != TYPE:
        raise _fail(f"type must be {TYPE!r}")
    out = {k: v for k, v in current.items() if k not in READ_ONLY}
    for key, value in fragment.items():
        if key in READ_ONLY:
            continue
        if value is None or value == NULL_URI:
            if key in _MANDATORY:
                raise _fail(f"{key} is mandatory and cannot be removed")
            out.pop(key, None)
        else:
            out[key] = value
    return out


# -- the operations ------------------------------------------------------------------------------------------------
#: Seconds the planner's index trusts itself before it asks the store whether another process changed a registration.
INDEX_STALENESS: Final = 1.0


class Registrations:
    """The operations of clause 5.9 and 5.10 over one store, and the index the planner matches with."""

    def __init__(
        self,
        store: Store,
        max_limit: int = 1000,
        outbound: OutboundPolicy | None = None,
        access: Access | None = None,
    ) -> None:
        self.store = store
        self.max_limit = max_limit
        self.access = access or Access(store)
        #: The context source endpoints a registration may name (broker.guards, record 0205); the forwarder
        #: checks again at each connection.
        self.outbound = outbound or OutboundPolicy.open()
        self._index: dict[str, list[Registration]] = {}
        self._version: int | None = None
        self._checked = 0.0

    # -- the planner's index --------------------------------------------------------------------------------------
    async def live(self, tenant: str) -> list[Registration]:
        """The live registrations of a tenant, compiled, in id order (the index, refreshed when stale)."""
        await self._fresh()
        held = self._index.get(tenant)
        if not held:
            return []  # the common case of a broker that federates nothing: no clock, no list
        if not any(r.expires_at for r in held):
            return list(held)  # nothing can have expired: no clock (formatting it costs more than the matching)
        stamp = _utc(now_iso())
        return [r for r in held if is_live(r, stamp)]

    async def any_live(self, tenant: str) -> bool:
        """Whether the tenant may have a live registration: the fast path of every read's plan (a dictionary
        look-up while the index is fresh, so that a broker without registrations pays nothing for federation)."""
        await self._fresh()
        return bool(self._index.get(tenant))

    async def _fresh(self) -> None:
        now = time.monotonic()
        if self._version is None or now - self._checked > INDEX_STALENESS:
            version = await self.store.registrations_version()
            self._checked = now
            if version != self._version:
                await self._rebuild(version)

    async def _rebuild(self, version: int) -> None:
        index: dict[str, list[Registration]] = {}
        for record in await self.store.list_registrations():
            index.setdefault(record.tenant, []).append(compile_registration(record.tenant, record.body))
        self._index, self._version = index, version

    def _invalidate(self) -> None:
        self._version = None

    async def matching(
        self,
        tenant: str,
        operation: str,
        *,
        types: Iterable[str] | None = None,
        entity_id: str | None = None,
        attrs: Iterable[str] | None = None,
        area: BaseGeometry | None = None,
    ) -> list[Registration]:
        """The live registrations of `tenant` that offer `operation` and may hold an entity of one of `types`
        (expanded), of that id, with one of those attributes (expanded), in that area; None asks nothing."""
        found = []
        temporal = operation in TEMPORAL_OPS
        for reg in await self.live(tenant):
            if not reg.offers(operation) or not reg.may_hold(types, entity_id, attrs):
                continue
            if reg.temporal != temporal:
                continue  # Table 5.2.9-1: a source of history and one of latest data are two registrations
            location = reg.geometries.get("location")
            if area is not None and location is not None and not location.intersects(area):
                continue
            found.append(reg)
        return found

    # -- clause 5.9 ------------------------------------------------------------------------------------------------
    async def _may(self, caller: Caller) -> None:
        await self.access.require(caller, "registrations", "read or manage context source registrations here")

    async def create(self, caller: Caller, body: Any, tm: TermMap) -> str:
        await self._may(caller)
        doc = validated(body, tm)
        if "expiresAt" in doc and _utc(doc["expiresAt"]) <= _utc(now_iso()):
            raise _fail("expiresAt is in the past")
        await self.outbound.check(doc["endpoint"], "endpoint")
        await self._check_conflicts(caller.tenant, doc)
        doc["createdAt"] = doc["modifiedAt"] = now_iso()
        created = await self.store.create_registration(caller.tenant, doc["id"], doc)
        self._invalidate()
        if not created:
            existing = await self.store.get_registration(caller.tenant, doc["id"])
            if existing is not None and self._expired(existing):
                await self.store.delete_registration(caller.tenant, doc["id"])  # an expired id is free again
                if await self.store.create_registration(caller.tenant, doc["id"], doc):
                    return str(doc["id"])
            raise AlreadyExists(f"registration {doc['id']} already exists")
        return str(doc["id"])

    async def _check_conflicts(self, tenant: str, doc: Mapping[str, Any]) -> None:
        self._invalidate()
        other = conflict(compile_registration(tenant, doc), await self.live(tenant))
        if other is not None:
            raise Conflict(
                f"registration {other.id} ({other.mode}) already registers the same entity id and attributes; "
                f"a {doc.get('mode')} registration cannot overlap an exclusive one (clause 4.3.6.3)",
                conflictingRegistration=other.id,
            )

    @staticmethod
    def _expired(record: RegistrationRecord) -> bool:
        expires = record.body.get("expiresAt")
        return expires is not None and _utc(expires) <= _utc(now_iso())

    async def retrieve(self, caller: Caller, reg_id: str) -> RegistrationRecord:
        check_uri(reg_id, "registration id")
        await self._may(caller)  # a registration names another broker's endpoint and what it holds
        record = await self.store.get_registration(caller.tenant, reg_id)
        if record is None or self._expired(record):
            raise ResourceNotFound(f"registration {reg_id} not found")
        return record

    async def query(
        self,
        caller: Caller,
        query: Query,
        attrs: frozenset[str] | None,
        when: TimeFilter | None,
        paging: Paging,
    ) -> tuple[list[RegistrationRecord], int]:
        await self._may(caller)
        records = await self.store.list_registrations(caller.tenant)
        chosen = []
        stamp = _utc(now_iso())
        for record in records:
            reg = compile_registration(record.tenant, record.body)
            if is_live(reg, stamp) and selects(reg, query, attrs, when):
                chosen.append(record)
        return chosen[paging.offset : paging.offset + paging.limit], len(chosen)

    async def update(self, caller: Caller, record: RegistrationRecord, doc: dict[str, Any], tm: TermMap) -> None:
        """Update Context Source Registration (5.9.3): `doc` is the merged document in the request's terms."""
        await self._may(caller)
        new = validated(doc, tm)
        expires = new.get("expiresAt")
        if expires is not None and expires != record.body.get("expiresAt") and _utc(expires) <= _utc(now_iso()):
            raise _fail("expiresAt is in the past")
        await self.outbound.check(new["endpoint"], "endpoint")
        await self._check_conflicts(caller.tenant, new)
        new["createdAt"] = record.body.get("createdAt")
        new["modifiedAt"] = now_iso()
        replaced = await self.store.replace_registration(caller.tenant, record.id, new)
        self._invalidate()
        if not replaced:
            raise ResourceNotFound(f"registration {record.id} not found")

    async def delete(self, caller: Caller, reg_id: str) -> None:
        await self._may(caller)
        record = await self.retrieve(caller, reg_id)
        deleted = await self.store.delete_registration(caller.tenant, record.id)
        self._invalidate()
        if not deleted:
            raise ResourceNotFound(f"registration {reg_id} not found")
