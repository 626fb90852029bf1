"""Subscriptions (clauses 5.2.12, 5.2.14, 5.2.15, 5.8): validation, storage, retrieval form, and the compiled form
the notifier matches changes with.

A subscription is stored as the client wrote it (validated, read-only members dropped) together with the @context
it was written with (`@context`) and its system attributes; see decision record 0021. Terms are expanded with that
context when the subscription is compiled, and re-expressed in the reader's context on retrieval, so a client with
another @context sees its own terms. The delivery state (timesSent, lastSuccess, ...) is a separate record the
notifier updates (Store.record_delivery).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import orjson

from broker.core.access import Access
from broker.core.access import View as AccessView
from broker.core.caller import Caller
from broker.core.errors import AlreadyExists, BadRequestData, NgsiLdError, OperationNotSupported, ResourceNotFound
from broker.core.linked import parse_join
from broker.core.model import NULL_URI, now_iso
from broker.core.normalize import check_datetime, check_name, check_uri
from broker.core.query import Paging
from broker.core.render import View
from broker.guards import OutboundPolicy
from broker.ld.termmap import TermMap
from broker.query import Query
from broker.query.geo import GeoQuery, parse_geo_query
from broker.query.projection import (
    Projection,
    ProjectionItem,
    check_pick_omit,
    format_projection,
    parse_projection,
)
from broker.query.q import format_q, parse_q
from broker.query.scope import parse_scope_query
from broker.query.types import TypeExpr, format_types, parse_types
from broker.store.base import Store, SubscriptionRecord

TRIGGERS: Final = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
DEFAULT_TRIGGERS: Final = frozenset({"attributeCreated", "attributeUpdated"})
FORMATS: Final = {
    "normalized": "normalized",
    "concise": "concise",
    "simplified": "simplified",
    "keyValues": "simplified",
}
ACCEPTS: Final = ("application/json", "application/ld+json")

_TOP: Final = frozenset(
    {
        "id",
        "type",
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "notificationTrigger",
        "timeInterval",
        "q",
        "geoQ",
        "csf",
        "isActive",
        "notification",
        "expiresAt",
        "throttling",
        "scopeQ",
        "lang",
        "datasetId",
        "jsonldContext",
        "expandValues",
        "jsonKeys",
        "localOnly",
        "splitEntities",
        "ngsildConformance",
    }
)
# Members the broker maintains: a client may send them back (a retrieved document), they are ignored.
_TOP_READ_ONLY: Final = frozenset({"status", "createdAt", "modifiedAt", "@context"})
_NOTIFICATION: Final = frozenset(
    {"attributes", "sysAttrs", "format", "showChanges", "pick", "omit", "join", "joinLevel", "endpoint"}
)
STATE_MEMBERS: Final = ("timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure", "status")
# Kept in the stored document, never shown or accepted: the last pause of the subscription (decision record 0022).
PAUSED_AT: Final = "agora:pausedAt"
RESUMED_AT: Final = "agora:resumedAt"
# The URL of the ImplicitlyCreated @context that stands for a subscription's @context array or object in the Link
# header of its application/json notifications (clause 5.13.1, decision record 0136).
CONTEXT_URL: Final = "agora:contextUrl"
#: Who made the subscription: notifications are judged by its access policies at send time (record 0223).
OWNER: Final = "agora:owner"
INTERNAL_MEMBERS: Final = (PAUSED_AT, RESUMED_AT, CONTEXT_URL, OWNER)
#: Hosts an @context that is not one URL and answers its URL (broker.core.contexts.Contexts.implicit).
ContextHost = Callable[[Any], Awaitable[str | None]]
_ENDPOINT: Final = frozenset({"uri", "accept", "timeout", "cooldown", "receiverInfo", "notifierInfo"})
_GEOQ: Final = frozenset({"geometry", "coordinates", "georel", "geoproperty"})
#: The version notifications conform to (ngsildConformance, Table 5.2.12-1: "major.minor").
NGSILD_VERSION: Final = "1.9"
_VERSION = re.compile(r"^\d+\.\d+$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HTTP_SCHEMES: Final = frozenset({"http", "https"})
_MQTT_SCHEMES: Final = frozenset({"mqtt", "mqtts"})
# notifierInfo of an MQTT endpoint (clause 5.2.15): the only keys, and their allowed values (the first is the default).
MQTT_VERSIONS: Final = ("mqtt5.0", "mqtt3.1.1")
MQTT_QOS: Final = ("0", "1", "2")


# -- the compiled form ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    """One EntitySelector (clause 5.2.33): a type selection, and an id or an id pattern."""

    types: TypeExpr
    id: str | None = None
    id_pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Endpoint:
    uri: str
    accept: str = "application/json"
    timeout: float | None = None  # seconds (the document says milliseconds)
    cooldown: float | None = None  # seconds
    receiver_info: tuple[tuple[str, str], ...] = ()
    notifier_info: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Compiled:
    """Everything the notifier needs to match a change and shape its notification, with terms expanded."""

    tenant: str
    id: str
    selectors: tuple[Selector, ...]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    query: Query
    is_active: bool
    expires_at: str | None
    throttling: float | None
    view: View
    endpoint: Endpoint
    context: Any  # the @context of notifications: jsonldContext, else the one the subscription was written with
    created_at: str
    show_changes: bool = False
    join: tuple[str, int] = ("@none", 1)  # notification.join and joinLevel (clause 4.5.23)
    paused: tuple[str, str] | None = None  # the last pause: changes made from its start to its end notify nothing
    time_interval: float | None = None  # periodic notifications (seconds); changes then notify nothing
    dataset_ids: frozenset[str | None] | None = None  # instances to show; None stands for the default instance
    context_url: str | None = None  # the Link of application/json notifications when `context` is not one URL
    owner: Caller | None = None  # who made it (None: made before access policies, judged as the administrator)


def compile_subscription(tenant: str, doc: Mapping[str, Any], tm: TermMap) -> Compiled:
    """The compiled form of a stored (or about to be stored) document; `tm` is the term map of its @context.

    Raises BadRequestData for anything invalid, so validation is exactly "does it compile".
    """
    notification = doc["notification"]
    expand_values = _names(tm, doc.get("expandValues"), "expandValues")
    json_keys = _names(tm, doc.get("jsonKeys"), "jsonKeys")
    if expand_values is not None and json_keys is not None:  # never expanded, whatever expandValues says
        expand_values -= json_keys
    query = Query(
        q=parse_q(doc["q"], tm, expand_values=expand_values) if "q" in doc else None,
        scope=parse_scope_query(doc["scopeQ"]) if "scopeQ" in doc else None,
        geo=_geo_q(doc["geoQ"], tm) if "geoQ" in doc else None,
    )
    return Compiled(
        tenant=tenant,
        id=doc["id"],
        selectors=tuple(_selector(s, tm) for s in doc.get("entities", ())),
        watched=_names(tm, doc.get("watchedAttributes"), "watchedAttributes"),
        triggers=frozenset(doc.get("notificationTrigger") or DEFAULT_TRIGGERS),
        query=query,
        is_active=doc.get("isActive", True),
        expires_at=doc.get("expiresAt"),
        throttling=doc.get("throttling"),
        view=_view(doc, notification, tm),
        endpoint=_endpoint(notification["endpoint"]),
        context=doc.get("jsonldContext", doc.get("@context")),
        created_at=doc.get("createdAt", ""),
        show_changes=bool(notification.get("showChanges", False)),
        time_interval=doc.get("timeInterval"),
        join=_join(notification),
        paused=(doc[PAUSED_AT], doc[RESUMED_AT]) if PAUSED_AT in doc and RESUMED_AT in doc else None,
        dataset_ids=_dataset_ids(doc.get("datasetId")),
        context_url=doc.get(CONTEXT_URL),
        owner=_owner(tenant, doc.get(OWNER)),
    )


def owner_doc(caller: Caller) -> dict[str, Any]:
    return {
        "subject": caller.subject,
        "roles": list(caller.roles),
        "client": caller.client,
        "groups": list(caller.groups),
        "issuer": caller.issuer,
    }


def _owner(tenant: str, doc: Any) -> Caller | None:
    if not isinstance(doc, dict):
        return None
    roles, groups = tuple(doc.get("roles", ())), tuple(doc.get("groups", ()))
    return Caller(tenant, doc.get("subject", ""), roles, doc.get("client"), groups, doc.get("issuer"))


def _join(notification: Mapping[str, Any]) -> tuple[str, int]:
    level = notification.get("joinLevel")
    return parse_join(notification.get("join"), None if level is None else str(level))


def _dataset_ids(values: list[str] | None) -> frozenset[str | None] | None:
    if values is None:
        return None
    return frozenset(None if v == "@none" else v for v in values)


def _selector(sel: Mapping[str, Any], tm: TermMap) -> Selector:
    pattern = None
    if "idPattern" in sel and "id" not in sel:  # an id makes the pattern irrelevant (clause 5.2.33)
        try:
            pattern = re.compile(sel["idPattern"])
        except re.error as exc:
            raise BadRequestData(f"entities.idPattern: {sel['idPattern']!r} is not a valid regular expression") from exc
    return Selector(parse_types(sel["type"], tm), sel.get("id"), pattern)


def _names(tm: TermMap, names: list[str] | None, where: str) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset(tm.expand_term(check_name(n, where)) for n in names)


def _geo_q(geo: Mapping[str, Any], tm: TermMap) -> GeoQuery | None:
    """geoQ (clause 5.2.13), its errors naming geoQ."""
    try:
        return parse_geo_query(_geo_params(geo), tm)
    except BadRequestData as exc:
        raise BadRequestData(f"geoQ: {exc.detail}") from None


def _geo_params(geo: Mapping[str, Any]) -> dict[str, str]:
    """geoQ members as the query parameters the geo-query parser reads (coordinates as JSON text)."""
    params = {k: v for k, v in geo.items() if k != "coordinates"}
    coords = geo.get("coordinates")
    if coords is not None:
        params["coordinates"] = coords if isinstance(coords, str) else orjson.dumps(coords).decode()
    return params


def _view(doc: Mapping[str, Any], notification: Mapping[str, Any], tm: TermMap) -> View:
    pick = parse_projection(_text(notification["pick"]), tm, param="pick") if "pick" in notification else None
    if "attributes" in notification:
        # Like `attrs` on a query: the listed attributes, and the entity members always (decision record 0011).
        items = tuple(ProjectionItem(n) for n in sorted(_names(tm, notification["attributes"], "attributes") or ()))
        pick = Projection(items + tuple(ProjectionItem(m) for m in ("type", "scope", "createdAt", "modifiedAt")))
    omit = parse_projection(_text(notification["omit"]), tm, param="omit") if "omit" in notification else None
    with_attrs = "attributes" in notification
    check_pick_omit(None if with_attrs else pick, omit, attrs=with_attrs)  # clause 4.21, record 0102
    return View(
        format=FORMATS[notification.get("format", "normalized")],
        sys_attrs=bool(notification.get("sysAttrs", False)),
        lang=doc.get("lang"),
        pick=pick,
        omit=omit,
    )


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)


def _endpoint(ep: Mapping[str, Any]) -> Endpoint:
    def seconds(name: str) -> float | None:
        return None if ep.get(name) is None else float(ep[name]) / 1000.0

    info = tuple((kv["key"], kv["value"]) for kv in ep.get("receiverInfo", ()))
    notifier = tuple((kv["key"], kv["value"]) for kv in ep.get("notifierInfo", ()))
    return Endpoint(ep["uri"], ep.get("accept", ACCEPTS[0]), seconds("timeout"), seconds("cooldown"), info, notifier)


# -- validation of the document's shape -------------------------------------------------------------------------
def _fail(message: str) -> BadRequestData:
    return BadRequestData(message)


def _only(obj: Any, allowed: frozenset[str], where: str, ignored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`obj` as a dict without the ignored members; BadRequestData for anything else or an unknown member."""
    if not isinstance(obj, dict):
        raise _fail(f"{where} must be a JSON object")
    unknown = sorted(set(obj) - allowed - ignored)
    if unknown:
        raise _fail(f"{where}: unknown member(s) {', '.join(unknown)}")
    return {k: v for k, v in obj.items() if k not in ignored}


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(f"{where} must be a non-empty string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"{where} must be true or false")
    return value


def _number(value: Any, where: str, *, positive: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise _fail(f"{where} must be a {'positive' if positive else 'non-negative'} number")
    return float(value)


def _list(value: Any, where: str, item: Callable[[Any, str], Any]) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _fail(f"{where} must be a non-empty array")
    return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _name(value: Any, where: str) -> str:
    return check_name(value, where)


# The characters q itself is written with (clause 4.9 grammar), raw and percent-encoded.
_Q_SYNTAX: Final = re.compile(r"[=<>;|()\"']")
_Q_SYNTAX_ENCODED: Final = re.compile(r"%(?:3[BCDE]|2[0289]|21|22|27|7[BCD]|5[BD])", re.IGNORECASE)


def url_encoded_q(q: str) -> str:
    """A subscription's q as the broker reads it: decoded once when the whole of it came percent-encoded.

    Clause 4.9 asks for percent-encoding only where the q is part of a URI; clients that build subscriptions
    (ngsildclient's SubscriptionBuilder.query) encode it in the JSON body too, as for a URL parameter, and brokers
    decode it (record 0140). Only a q holding encoded q syntax and none raw is decoded, so a q written plainly is
    never changed, a quoted "100%3E" included."""
    if _Q_SYNTAX_ENCODED.search(q) and not _Q_SYNTAX.search(q):
        return unquote(q)
    return q


def _check_shape(doc: dict[str, Any], csource: bool = False) -> None:
    """Types and value sets of every member (clause 5.2.12); terms are checked when compiling."""
    if doc.get("type") != "Subscription":
        raise _fail("type must be 'Subscription'")
    check_uri(doc.get("id"), "id")
    for key in ("subscriptionName", "description", "q", "scopeQ", "lang", "csf"):
        if key in doc:
            _str(doc[key], key)
    if "q" in doc:
        doc["q"] = url_encoded_q(doc["q"])
    if "entities" in doc:
        doc["entities"] = _list(doc["entities"], "entities", _entity_selector)
    if "watchedAttributes" in doc:
        _list(doc["watchedAttributes"], "watchedAttributes", _name)
    for key in ("localOnly", "splitEntities"):
        if key in doc:
            _bool(doc[key], key)
    # Without context sources every subscription is local: localOnly=true changes nothing but what it allows.
    local = doc.get("localOnly") is True
    if "entities" not in doc and "watchedAttributes" not in doc and not local:
        raise _fail("a subscription needs entities or watchedAttributes (or both), unless localOnly is true")
    if "notificationTrigger" in doc:
        _list(doc["notificationTrigger"], "notificationTrigger", _trigger)
    for key in ("expandValues", "jsonKeys"):
        if key in doc:
            _list(doc[key], key, _name)
    if "datasetId" in doc:
        _list(doc["datasetId"], "datasetId", lambda v, w: v if v == "@none" else check_uri(v, w))
    if "isActive" in doc:
        _bool(doc["isActive"], "isActive")
    if "throttling" in doc:
        _number(doc["throttling"], "throttling", positive=True)
    if "timeInterval" in doc:
        _number(doc["timeInterval"], "timeInterval", positive=True)
        for excluded in ("watchedAttributes", "throttling"):
            if excluded in doc:
                raise _fail(f"timeInterval and {excluded} cannot be used together (clause 5.2.12)")
        if "entities" not in doc and not local:
            raise _fail("a periodic subscription (timeInterval) needs entities, unless localOnly is true")
    if "expiresAt" in doc:
        check_datetime(doc["expiresAt"], "expiresAt")
    if "jsonldContext" in doc:
        check_uri(doc["jsonldContext"], "jsonldContext")
    if "ngsildConformance" in doc and not _VERSION.match(str(_str(doc["ngsildConformance"], "ngsildConformance"))):
        raise _fail("ngsildConformance must be a version major.minor, e.g. 1.9")
    if "geoQ" in doc:
        doc["geoQ"] = _only(doc["geoQ"], _GEOQ, "geoQ")
    doc["notification"] = _notification(doc.get("notification"))
    _check_unsupported(doc, csource)


def _entity_selector(value: Any, where: str) -> dict[str, Any]:
    sel = _only(value, frozenset({"id", "idPattern", "type"}), where)
    if "type" not in sel:
        raise _fail(f"{where}: type is mandatory in an entity selector")
    _str(sel["type"], f"{where}.type")
    if "id" in sel:
        check_uri(sel["id"], f"{where}.id")
    if "idPattern" in sel:
        _str(sel["idPattern"], f"{where}.idPattern")
    return sel


def _trigger(value: Any, where: str) -> str:
    if value not in TRIGGERS:
        raise _fail(f"{where}: {value!r} is not one of {', '.join(TRIGGERS)}")
    return str(value)


def _notification(value: Any) -> dict[str, Any]:
    if value is None:
        raise _fail("notification is mandatory")
    note = _only(value, _NOTIFICATION, "notification", frozenset(STATE_MEMBERS))
    if "attributes" in note:
        _list(note["attributes"], "notification.attributes", _name)
        if "pick" in note:
            raise _fail("notification: attributes and pick cannot be used together")
    for key in ("pick", "omit"):
        if key in note and not isinstance(note[key], str):
            _list(note[key], f"notification.{key}", _name)
    for key in ("sysAttrs", "showChanges"):
        if key in note:
            _bool(note[key], f"notification.{key}")
    if "join" in note or "joinLevel" in note:
        level = note.get("joinLevel")
        if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
            raise _fail("notification.joinLevel must be an integer")
        try:
            parse_join(note.get("join"), None if level is None else str(level))
        except BadRequestData as exc:
            raise _fail(f"notification: {exc}") from exc
    if "format" in note and note["format"] not in FORMATS:
        raise _fail(f"notification.format: {note['format']!r} is not one of {', '.join(FORMATS)}")
    if "endpoint" not in note:
        raise _fail("notification.endpoint is mandatory")
    note["endpoint"] = _endpoint_doc(note["endpoint"])
    return note


def _endpoint_doc(value: Any) -> dict[str, Any]:
    ep = _only(value, _ENDPOINT, "notification.endpoint")
    uri = check_uri(ep.get("uri"), "notification.endpoint.uri")
    scheme = uri.split(":", 1)[0].lower()
    if scheme not in _HTTP_SCHEMES | _MQTT_SCHEMES:
        raise _fail(f"notification.endpoint.uri: scheme {scheme!r} is not http, https, mqtt or mqtts")
    if scheme in _HTTP_SCHEMES and not re.match(r"^https?://[^/?#\s]+", uri, re.IGNORECASE):
        raise _fail(f"notification.endpoint.uri: {uri!r} has no host")
    if scheme in _MQTT_SCHEMES:
        _mqtt_uri(uri)
    if "accept" in ep and ep["accept"] not in (*ACCEPTS, "application/geo+json"):
        raise _fail(f"notification.endpoint.accept: {ep['accept']!r} is not one of {', '.join(ACCEPTS)}")
    for key in ("timeout", "cooldown"):
        if key in ep:
            _number(ep[key], f"notification.endpoint.{key}", positive=False)
    for key in ("receiverInfo", "notifierInfo"):
        if key in ep:
            _list(ep[key], f"notification.endpoint.{key}", _key_value)
    if scheme in _MQTT_SCHEMES:
        _mqtt_notifier_info(ep.get("notifierInfo", []))
    return ep


_MQTT_URI = re.compile(
    r"^mqtts?://(?:[^@/?#\s]*@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/?#@\s\[\]]+)(?::(?P<port>\d+))?"
    r"/(?P<topic>[^?#]+)$",
    re.IGNORECASE,
)


def _mqtt_uri(uri: str) -> None:
    """mqtt[s]://[user[:password]@]host[:port]/topic (clause 7): a host, a valid port, a topic to publish to."""
    match = _MQTT_URI.match(uri)
    if match is None:
        raise _fail(f"notification.endpoint.uri: {uri!r} is not mqtt[s]://[user:password@]host[:port]/topic")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise _fail(f"notification.endpoint.uri: port {port} is out of range")
    topic = match["topic"]
    if "+" in topic or "#" in topic or "%00" in topic or "%23" in topic or "%2B" in topic.upper():
        raise _fail(f"notification.endpoint.uri: topic {topic!r} has a wildcard; a notification needs one topic")


def _mqtt_notifier_info(pairs: list[dict[str, str]]) -> None:
    """The keys clause 5.2.15 defines for MQTT, each at most once, with one of their values; nothing else."""
    allowed = {"MQTT-Version": MQTT_VERSIONS, "MQTT-QoS": MQTT_QOS}
    seen: set[str] = set()
    for kv in pairs:
        key, value = kv["key"], kv["value"]
        if key not in allowed:
            raise _fail(f"notification.endpoint.notifierInfo: {key!r} is not MQTT-Version or MQTT-QoS")
        if key in seen:
            raise _fail(f"notification.endpoint.notifierInfo: {key} is given twice")
        seen.add(key)
        if value not in allowed[key]:
            raise _fail(f"notification.endpoint.notifierInfo: {key} {value!r} is not one of {', '.join(allowed[key])}")


def _key_value(value: Any, where: str) -> dict[str, str]:
    kv = _only(value, frozenset({"key", "value"}), where)
    key, val = _str(kv.get("key"), f"{where}.key"), kv.get("value")
    if not isinstance(val, str) or "\r" in val or "\n" in val:
        raise _fail(f"{where}.value must be a string on one line")
    if not _HEADER_NAME.match(key):
        raise _fail(f"{where}.key: {key!r} is not a valid header name")
    return {"key": key, "value": val}


def _check_unsupported(doc: Mapping[str, Any], csource: bool) -> None:
    """Valid members whose behaviour this broker does not have yet: refused rather than silently ignored."""
    version = doc.get("ngsildConformance")
    if version is not None and version != NGSILD_VERSION:
        # Clause 4.3.6.8 backwards compatibility: notifications amended to an older version are not offered; the
        # broker's own version needs no amending (decision record 0138).
        raise OperationNotSupported(f"ngsildConformance {version}: notifications are sent as NGSI-LD {NGSILD_VERSION}")


# -- the operations ---------------------------------------------------------------------------------------------
def new_subscription_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


def validated(tenant: str, body: Any, tm: TermMap, context: Any, *, csource: bool = False) -> dict[str, Any]:
    """The document to store: shape checked, compiled once (which checks every term and query), system members set.
    With `csource`, a context source registration subscription (clause 5.11.2.3: the same data type, with temporalQ
    and csf, checked by broker.core.csource_subscriptions)."""
    doc = _only(body, _TOP | {"temporalQ"} if csource else _TOP, "subscription", _TOP_READ_ONLY)
    _check_shape(doc, csource)
    if context is not None:
        doc["@context"] = context
    compile_subscription(tenant, doc, tm)
    if csource:
        from broker.core.csource_subscriptions import check_csource

        check_csource(doc, tm)
    elif "csf" in doc:
        # Table 5.2.12-1: the filter "met by Context Source Registrations describing Context Sources to be used for
        # Entity Subscriptions"; checked (the grammar of q, clause 4.9) and kept (record 0186).
        from broker.query import parse_query

        parse_query({"csf": doc["csf"]}, tm)
    return doc


def status_of(doc: Mapping[str, Any], now: str) -> str:
    """Clause 5.2.12: active, paused (isActive false) or expired (expiresAt passed)."""
    if doc.get("expiresAt") is not None and _utc(doc["expiresAt"]) <= now:
        return "expired"
    return "active" if doc.get("isActive", True) else "paused"


def _utc(stamp: str) -> str:
    """A DateTime in the broker's own UTC spelling, so that stamps compare as strings."""
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")  # %Y does not pad years before 1000


def is_live(compiled: Compiled, now: str) -> bool:
    return compiled.is_active and (compiled.expires_at is None or _utc(compiled.expires_at) > now)


class Subscriptions:
    """The subscription operations of clause 5.8 over one store. Context source registration subscriptions
    (clause 5.11) are the same operations over their own records (broker.core.csource_subscriptions)."""

    csource = False  # validated as a context source registration subscription

    def __init__(
        self,
        store: Store,
        max_limit: int = 1000,
        outbound: OutboundPolicy | None = None,
        access: Access | None = None,
    ) -> None:
        self.store = store
        self.max_limit = max_limit
        self.outbound = outbound or OutboundPolicy.open()
        self.access = access or Access(store)

    async def _may(self, caller: Caller) -> AccessView:
        return await self.access.require(caller, "subscribe", "manage subscriptions in this tenant")

    @staticmethod
    def _mine(caller: Caller, view: AccessView, record: SubscriptionRecord) -> bool:
        """Whether the caller may see and manage `record`: the administrator every one, anyone else its own
        (another's endpoint and queries are not its business: record 0223)."""
        if view.unrestricted:
            return True
        owner = record.body.get(OWNER)
        return isinstance(owner, dict) and (owner.get("subject"), owner.get("issuer")) == (
            caller.subject,
            caller.issuer,
        )

    async def _check_endpoint(self, doc: Mapping[str, Any]) -> None:
        """The notification endpoint against the outbound policy (record 0205): 400 naming it when refused; the
        notifier checks again at each connection."""
        await self.outbound.check(doc["notification"]["endpoint"]["uri"], "notification.endpoint.uri")

    def validated(self, tenant: str, body: Any, tm: TermMap, context: Any) -> dict[str, Any]:
        return validated(tenant, body, tm, context, csource=self.csource)

    # The records these operations keep (overridden for context source registration subscriptions).
    async def _create(self, tenant: str, sub_id: str, doc: dict[str, Any]) -> bool:
        return await self.store.create_subscription(tenant, sub_id, doc)

    async def _replace(self, tenant: str, sub_id: str, doc: dict[str, Any]) -> bool:
        return await self.store.replace_subscription(tenant, sub_id, doc)

    async def _get(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        return await self.store.get_subscription(tenant, sub_id)

    async def _list(self, tenant: str) -> list[SubscriptionRecord]:
        return await self.store.list_subscriptions(tenant)

    async def _delete(self, tenant: str, sub_id: str) -> bool:
        return await self.store.delete_subscription(tenant, sub_id)

    async def create(
        self, caller: Caller, tm: TermMap, body: Any, context: Any, host: ContextHost | None = None
    ) -> str:
        await self._may(caller)
        if isinstance(body, dict) and "id" not in body:
            body = {"id": new_subscription_id(), **body}
        doc = self.validated(caller.tenant, body, tm, context)
        if "expiresAt" in doc and _utc(doc["expiresAt"]) <= now_iso():
            raise BadRequestData("expiresAt is in the past")
        await self._check_endpoint(doc)
        await _host_context(doc, host)
        doc["createdAt"] = doc["modifiedAt"] = now_iso()
        doc[OWNER] = owner_doc(caller)
        if not await self._create(caller.tenant, doc["id"], doc):
            raise AlreadyExists(f"subscription {doc['id']} already exists")
        return str(doc["id"])

    async def retrieve(self, caller: Caller, sub_id: str) -> SubscriptionRecord:
        check_uri(sub_id, "subscription id")
        view = await self._may(caller)
        record = await self._get(caller.tenant, sub_id)
        if record is None or not self._mine(caller, view, record):
            raise ResourceNotFound(f"subscription {sub_id} not found")
        return record

    async def query(self, caller: Caller, paging: Paging) -> tuple[list[SubscriptionRecord], int]:
        view = await self._may(caller)
        records = [r for r in await self._list(caller.tenant) if self._mine(caller, view, r)]
        return records[paging.offset : paging.offset + paging.limit], len(records)

    async def update(
        self, caller: Caller, record: SubscriptionRecord, doc: dict[str, Any], host: ContextHost | None = None
    ) -> None:
        """Update Subscription (clause 5.8.2): `doc` is the whole new document (see `merge_fragment`), validated
        like a new one; it replaces the stored one, and the delivery state stays (and its owner)."""
        if not self._mine(caller, await self._may(caller), record):
            raise ResourceNotFound(f"subscription {record.id} not found")
        await self._check_endpoint(doc)
        await _host_context(doc, host)
        now = now_iso()
        doc["createdAt"] = record.body.get("createdAt")
        doc["modifiedAt"] = now
        doc.update(_pause_marks(record.body, doc, now))
        if not await self._replace(caller.tenant, record.id, doc):
            raise ResourceNotFound(f"subscription {record.id} not found")

    async def delete(self, caller: Caller, sub_id: str) -> None:
        await self.retrieve(caller, sub_id)  # another's subscription is not found
        if not await self._delete(caller.tenant, sub_id):
            raise ResourceNotFound(f"subscription {sub_id} not found")


async def _host_context(doc: dict[str, Any], host: ContextHost | None) -> None:
    """Notifications use jsonldContext when given; else the subscription's own @context, which a Link header can
    name only when it is one URL: otherwise it is hosted as an ImplicitlyCreated @context (clause 5.13.1)."""
    if host is None or "jsonldContext" in doc:
        return
    url = await host(doc.get("@context"))
    if url is not None:
        doc[CONTEXT_URL] = url


def _pause_marks(old: Mapping[str, Any], new: Mapping[str, Any], now: str) -> dict[str, str]:
    """When the last pause began and ended: a change made in between is not notified even when the notifier only
    reads it after the resumption (isActive=false, clause 5.2.12: notifications shall not be delivered)."""
    was, is_ = old.get("isActive", True), new.get("isActive", True)
    marks = {k: old[k] for k in INTERNAL_MEMBERS if k in old}
    if was and not is_:
        return {PAUSED_AT: now}
    if not was and is_:
        return {PAUSED_AT: marks.get(PAUSED_AT, str(old.get("modifiedAt", now))), RESUMED_AT: now}
    return marks


def without_internal(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in INTERNAL_MEMBERS}


def merge_fragment(current: Mapping[str, Any], fragment: Any) -> dict[str, Any]:
    """Clause 5.8.2: each member of the fragment replaces the stored one; `notification` and its `endpoint` are
    merged one level down so that changing the format keeps the endpoint; null removes a member."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("the subscription fragment must be a non-empty JSON object")
    if fragment.get("id", current["id"]) != current["id"]:
        raise BadRequestData("the id of a subscription cannot be changed")
    expires = fragment.get("expiresAt")
    if expires is not None and expires != NULL_URI:
        # Clause 5.8.2.4: an expiresAt in the past is refused, whatever isActive says (decision record 0131).
        check_datetime(expires, "expiresAt")
        if _utc(expires) <= now_iso():
            raise BadRequestData("expiresAt is in the past")
    out = _merged(without_internal(current), fragment)
    if isinstance(fragment.get("notification"), dict) and isinstance(current.get("notification"), dict):
        note = _merged(current["notification"], fragment["notification"])
        ep = fragment["notification"].get("endpoint")
        if isinstance(ep, dict) and isinstance(current["notification"].get("endpoint"), dict):
            note["endpoint"] = _merged(current["notification"]["endpoint"], ep)
        out["notification"] = note
    return out


def _merged(current: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(current)
    for key, value in fragment.items():
        if value is None or value == NULL_URI:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# -- re-expressing a document in another @context ---------------------------------------------------------------
def express(doc: Mapping[str, Any], source: TermMap, target: TermMap, *, strict: bool = False) -> dict[str, Any]:
    """The document with every term written for `target` instead of `source` (names, types, q, pick, omit).

    With `strict`, a query text that would not read back the same in `target` is refused (BadRequestData): an
    update must not change the meaning of what it does not touch. (A q over full IRIs does not parse back as
    written today, so an update with another @context than the subscription's may be refused.)
    """
    out = {k: v for k, v in doc.items() if k != "@context"}
    if source.key == target.key:
        return out

    def name(n: str) -> str:
        return target.compact_iri(source.expand_term(n))

    if "entities" in out:
        out["entities"] = [{**s, "type": _retyped(s["type"], source, target, strict)} for s in out["entities"]]
    for key in ("watchedAttributes", "expandValues", "jsonKeys"):
        if key in out:
            out[key] = [name(n) for n in out[key]]
    if "q" in out:
        ast = parse_q(out["q"], source)
        out["q"] = format_q(ast, target)
        _check_round_trip(strict, "q", lambda: parse_q(out["q"], target) == ast)
    if "geoQ" in out and "geoproperty" in out["geoQ"]:
        out["geoQ"] = {**out["geoQ"], "geoproperty": name(out["geoQ"]["geoproperty"])}
    out["notification"] = _express_notification(out["notification"], source, target, name, strict)
    return out


def _retyped(text: str, source: TermMap, target: TermMap, strict: bool) -> str:
    ast = parse_types(text, source)
    written = format_types(ast, target)
    _check_round_trip(strict, "entities.type", lambda: parse_types(written, target) == ast)
    return written


def _check_round_trip(strict: bool, where: str, same: Callable[[], bool]) -> None:
    try:
        ok = not strict or same()
    except NgsiLdError:
        ok = False
    if not ok:
        raise BadRequestData(
            f"{where} of this subscription cannot be written with the request's @context; "
            "update it with the @context it was created with"
        )


def _express_notification(
    note: Mapping[str, Any], source: TermMap, target: TermMap, name: Callable[[str], str], strict: bool
) -> dict[str, Any]:
    out = dict(note)
    if "attributes" in out:
        out["attributes"] = [name(n) for n in out["attributes"]]
    for key in ("pick", "omit"):
        if key in out:
            ast = parse_projection(_text(out[key]), source, param=key)
            out[key] = format_projection(ast, target)
            _check_round_trip(strict, key, lambda: parse_projection(out[key], target, param=key) == ast)  # noqa: B023
    return out


def retrieval_form(record: SubscriptionRecord, source: TermMap, target: TermMap, sys_attrs: bool) -> dict[str, Any]:
    """What GET shows: the document in the reader's terms, its status, and the delivery state in `notification`."""
    out = express(without_internal(record.body), source, target)
    if not sys_attrs:
        out.pop("createdAt", None)
        out.pop("modifiedAt", None)
    # isActive is a client member (Table 5.2.12-1, 0..1, "true by default"): shown as written, never added; the
    # broker adds only the read-only members of Table 5.2.12-2 (decision record 0130).
    out["status"] = status_of(record.body, now_iso())
    out["notification"] = {**out["notification"], **{k: record.state[k] for k in STATE_MEMBERS if k in record.state}}
    return out
