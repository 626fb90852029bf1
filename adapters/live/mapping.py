"""The declarative mapping of live field data (MQTT, OPC UA, Modbus) to NGSI-LD attribute updates (record 0380).

A mapping file (YAML) holds ``rules``; each rule takes its data from exactly one source kind and says what the
readings become::

    rules:
      - match: "city/weather/{device}/attrs"   # MQTT topic pattern: {name} is one level, a final # the rest
        format: json                            # json | ultralight | senml | sparkplug
        type: WeatherObserved
        id: "urn:ngsi-ld:WeatherObserved:city:{device}"
        observedAt: ts                          # the payload member with the observation time (else arrival time)
        attributes:                             # payload key -> attribute (unit: the unit the value comes in)
          t: {name: temperature, unit: CEL}
          p: {name: atmosphericPressure, unit: bar, scale: 0.001}
        autoProvision: true                     # unknown devices and keys accepted (keys keep their own name)
        devices:                                # provisioned devices: written at start-up, may override id/type
          ws-1: {id: "urn:ngsi-ld:WeatherObserved:city:north", static: {name: North station}}
      - opcua:                                  # OPC UA nodes subscribed to
          - {node: "ns=2;s=Pump1.Pressure", device: pump-1, key: pressure}
        type: Pump
        id: "urn:ngsi-ld:Pump:plant:{device}"
        attributes: {pressure: {unit: bar}}
      - modbus:                                 # Modbus registers polled
          - {device: meter-1, key: power, table: holding, address: 0, datatype: float32, unit_id: 1}
        ...

Every protocol hands this module the same thing, a :class:`Reading` (device, key, value, observedAt), and gets
back :class:`Update` values (entity id, type, attributes in normalized form with unitCode and observedAt).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from adapters.base import _quote
from adapters.units import UnknownUnit, normalise, unit_code

FORMATS = ("json", "ultralight", "senml", "sparkplug")
SOURCES = ("match", "opcua", "modbus")
DATATYPES = ("number", "integer", "boolean", "text")


class MappingError(ValueError):
    """The mapping file cannot be used: the message names the rule and the member."""


@dataclass(frozen=True)
class Reading:
    """One value a device reported: ``key`` is the payload member, SenML name, Sparkplug metric, node or register."""

    device: str
    key: str
    value: Any
    observed_at: str | None = None  # NGSI-LD DateTime in UTC; None: the caller stamps the arrival time
    unit: str | None = None  # the unit the payload itself names (SenML u, Sparkplug engUnit), a native spelling


@dataclass(frozen=True)
class JsonValue:
    """A reading whose value is a JSON structure (a Sparkplug DataSet or Template instance, record 0383): written as
    a JsonProperty (clause 4.5.24), whose ``json`` no @context expands, with ``properties`` as its sub-attributes
    (name -> attribute in normalized form)."""

    json: Any
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Update:
    """Attributes of one entity to write (normalized NGSI-LD, each with observedAt)."""

    entity_id: str
    entity_type: str
    attrs: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class AttributeMap:
    name: str
    unit: str | None = None  # UN/CEFACT code (or native spelling) of the incoming value
    scale: float = 1.0
    offset: float = 0.0
    datatype: str | None = None  # None: numbers stay numbers, the rest text

    def attribute(self, value: Any, observed_at: str, payload_unit: str | None) -> dict[str, Any]:
        """The attribute instance of one reading; a number goes to the canonical unit of its kind."""
        if isinstance(value, JsonValue):
            return self._json_attribute(value, observed_at)
        value = _typed(value, self.datatype)
        attr: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed_at}
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = value * self.scale + self.offset if (self.scale, self.offset) != (1.0, 0.0) else value
            unit = self.unit or payload_unit
            if unit is not None:
                try:
                    attr["value"], attr["unitCode"] = normalise(float(value), unit)
                except UnknownUnit:  # a unit only the payload names: kept as given, not converted
                    attr["value"] = value
            else:
                attr["value"] = value
        return attr

    def _json_attribute(self, value: JsonValue, observed_at: str) -> dict[str, Any]:
        if self.datatype is not None or self.unit is not None or (self.scale, self.offset) != (1.0, 0.0):
            raise ValueRefused(f"{self.name}: a JSON structure (DataSet, Template) takes no datatype, unit, scale "
                               "or offset")  # fmt: skip
        return {"type": "JsonProperty", "json": value.json, "observedAt": observed_at, **value.properties}


class ValueRefused(ValueError):
    """A reading's value does not fit the datatype its mapping declares."""


def _typed(value: Any, datatype: str | None) -> Any:
    if isinstance(value, str) and datatype in (None, "number", "integer"):
        try:
            if datatype == "integer" or (datatype is None and value.strip().lstrip("+-").isdigit()):
                return int(value)
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        except ValueError:
            if datatype is None:
                return value
            raise ValueRefused(f"{value!r} is not {'an integer' if datatype == 'integer' else 'a number'}") from None
    if datatype == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "false", "0"):
            return str(value).lower() in ("true", "1")
        raise ValueRefused(f"{value!r} is not a boolean")
    if datatype == "text":
        return str(value)
    return value


@dataclass(frozen=True)
class Device:
    """A provisioned device: its own entity id or type, attributes written once at start-up."""

    entity_id: str | None = None
    entity_type: str | None = None
    static: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    name: str
    entity_type: str
    entity_id: str  # template: {device}, {type}, the pattern's captures
    attributes: dict[str, AttributeMap]
    auto_provision: bool = True
    devices: dict[str, Device] = field(default_factory=dict)
    match: str | None = None  # MQTT topic pattern
    format: str = "json"
    observed_at: str | None = None  # the payload member holding the observation time
    points: tuple[dict[str, Any], ...] = ()  # opcua nodes or modbus registers
    source: str = "match"

    def attribute_of(self, key: str) -> AttributeMap | None:
        found = self.attributes.get(key)
        if found is None and self.auto_provision:
            return AttributeMap(name=key)
        return found

    def entity_of(self, device: str, captures: Mapping[str, str]) -> tuple[str, str] | None:
        """(entity id, type) of a device, None when it is neither provisioned nor may be auto-provisioned."""
        provisioned = self.devices.get(device)
        if provisioned is None and not self.auto_provision:
            return None
        entity_type = (provisioned and provisioned.entity_type) or self.entity_type
        if provisioned is not None and provisioned.entity_id:
            return provisioned.entity_id, entity_type
        values = {k: _quote(v) for k, v in captures.items()}
        values.update(device=_quote(device), type=entity_type)
        return self.entity_id.format_map(_Missing(values)), entity_type

    def updates(self, readings: Iterable[Reading], captures: Mapping[str, str], now: str) -> tuple[list[Update], int]:
        """The updates of a payload's readings, and how many readings nothing maps. Readings of one entity share
        an update, except a second value of the same attribute (a SenML series): it starts another, in order."""
        out: list[Update] = []
        latest: dict[str, Update] = {}
        skipped = 0
        for reading in readings:
            target = self.entity_of(reading.device, captures)
            mapped = self.attribute_of(reading.key)
            if target is None or mapped is None:
                skipped += 1
                continue
            update = latest.get(target[0])
            if update is None or mapped.name in update.attrs:
                update = latest[target[0]] = Update(target[0], target[1], {})
                out.append(update)
            update.attrs[mapped.name] = mapped.attribute(reading.value, reading.observed_at or now, reading.unit)
        return out, skipped

    def provisioned(self) -> list[dict[str, Any]]:
        """The entities of the listed devices, with their static attributes (written once at start-up)."""
        out = []
        for device, spec in self.devices.items():
            target = self.entity_of(device, {})
            assert target is not None  # a listed device is always accepted
            entity: dict[str, Any] = {"id": target[0], "type": target[1]}
            for name, value in spec.static.items():
                is_attr = isinstance(value, dict) and "type" in value
                entity[name] = value if is_attr else {"type": "Property", "value": value}
            out.append(entity)
        return out


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise MappingError(f"the id template names {{{key}}}, which neither the topic nor the reading gives")


# -- topic patterns ---------------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def topic_filter(pattern: str) -> str:
    """The MQTT subscription filter of a topic pattern: each ``{name}`` level becomes ``+``."""
    return "/".join("+" if _PLACEHOLDER.match(level) else level for level in pattern.split("/"))


def topic_captures(pattern: str, topic: str) -> dict[str, str] | None:
    """The values of a pattern's ``{name}`` levels in ``topic`` (``+`` and ``#`` match as in MQTT), None when the
    topic does not match."""
    want, have = pattern.split("/"), topic.split("/")
    captures: dict[str, str] = {}
    for position, level in enumerate(want):
        if level == "#":
            return captures
        if position >= len(have):
            return None
        found = _PLACEHOLDER.match(level)
        if found:
            captures[found.group(1)] = have[position]
        elif level != "+" and level != have[position]:
            return None
    return captures if len(want) == len(have) else None


# -- loading ----------------------------------------------------------------------------------------------------
ROUTES_KEPT = 100_000  # topics whose route is remembered (a device publishes on the same few topics)


@dataclass(frozen=True)
class IngestMapping:
    rules: tuple[Rule, ...]
    # topic -> its route: matching each rule's pattern was a fifth of a message's translation (bench/ingest_profile)
    _routes: dict[str, tuple[Rule, Mapping[str, str]] | None] = field(default_factory=dict, compare=False, repr=False)

    def for_source(self, source: str) -> list[Rule]:
        return [r for r in self.rules if r.source == source]

    def route(self, topic: str) -> tuple[Rule, Mapping[str, str]] | None:
        """The first MQTT rule whose pattern matches ``topic``, with the captures (shared: not to be changed)."""
        if topic in self._routes:
            return self._routes[topic]
        found: tuple[Rule, Mapping[str, str]] | None = None
        for rule in self.for_source("match"):
            assert rule.match is not None
            captures = topic_captures(rule.match, topic)
            if captures is not None:
                found = rule, MappingProxyType(captures)
                break
        if len(self._routes) >= ROUTES_KEPT:
            self._routes.clear()
        self._routes[topic] = found
        return found


def load_mapping(path: str | Path) -> IngestMapping:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: {exc}") from exc
    return parse_mapping(document, str(path))


def parse_mapping(document: Any, where: str = "mapping") -> IngestMapping:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list) or not document["rules"]:
        raise MappingError(f"{where}: needs `rules`, a list of at least one rule")
    return IngestMapping(tuple(_rule(raw, f"{where} rule {i + 1}") for i, raw in enumerate(document["rules"])))


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: a rule is a mapping of members")
    unknown = set(raw) - {"name", "type", "id", "attributes", "autoProvision", "devices", "format", "observedAt",
                          *SOURCES}  # fmt: skip
    if unknown:
        raise MappingError(f"{where}: unknown member(s) {', '.join(sorted(unknown))}")
    sources = [s for s in SOURCES if s in raw]
    if len(sources) != 1:
        raise MappingError(f"{where}: give exactly one of match (MQTT), opcua or modbus")
    label = raw.get("name") or (raw["match"] if sources[0] == "match" else sources[0])
    where = f"{where} ({label})"
    for member in ("type", "id"):
        if not isinstance(raw.get(member), str) or not raw[member]:
            raise MappingError(f"{where}: `{member}` is required (a string)")
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise MappingError(f"{where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    attributes = _attributes(raw.get("attributes", {}), where)
    points = _points(raw, sources[0], where)
    rule = Rule(
        name=str(raw.get("name") or raw.get("match") or raw["type"]),
        entity_type=raw["type"],
        entity_id=raw["id"],
        attributes=attributes,
        auto_provision=bool(raw.get("autoProvision", True)),
        devices=_devices(raw.get("devices", {}), where),
        match=raw.get("match"),
        format=fmt,
        observed_at=raw.get("observedAt"),
        points=points,
        source=sources[0],
    )
    try:
        rule.provisioned()
    except MappingError as exc:
        raise MappingError(f"{where}: a listed device needs its own `id`: {exc}") from None
    return rule


def _attributes(raw: Any, where: str) -> dict[str, AttributeMap]:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: `attributes` maps payload keys to attributes")
    out = {}
    for key, spec in raw.items():
        spec = {"name": spec} if isinstance(spec, str) else spec or {}
        if not isinstance(spec, dict) or set(spec) - {"name", "unit", "scale", "offset", "datatype"}:
            raise MappingError(f"{where}: attribute {key!r} takes name, unit, scale, offset, datatype")
        unit = spec.get("unit")
        if unit is not None:
            try:
                unit_code(str(unit))
            except UnknownUnit as exc:
                raise MappingError(f"{where}: attribute {key!r}: {exc}") from exc
        if spec.get("datatype") not in (None, *DATATYPES):
            raise MappingError(f"{where}: attribute {key!r}: datatype is one of {', '.join(DATATYPES)}")
        try:
            scale, offset = float(spec.get("scale", 1.0)), float(spec.get("offset", 0.0))
        except (TypeError, ValueError):
            raise MappingError(f"{where}: attribute {key!r}: scale and offset are numbers") from None
        out[str(key)] = AttributeMap(str(spec.get("name", key)), unit, scale, offset, spec.get("datatype"))
    return out


def _devices(raw: Any, where: str) -> dict[str, Device]:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: `devices` maps device ids to their provisioning")
    out = {}
    for device, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - {"id", "type", "static"}:
            raise MappingError(f"{where}: device {device!r} takes id, type, static")
        if not isinstance(spec.get("static", {}), dict):
            raise MappingError(f"{where}: device {device!r}: static maps attribute names to values")
        out[str(device)] = Device(spec.get("id"), spec.get("type"), dict(spec.get("static", {})))
    return out


def _points(raw: Any, source: str, where: str) -> tuple[dict[str, Any], ...]:
    if source == "match":
        if not isinstance(raw["match"], str) or not raw["match"]:
            raise MappingError(f"{where}: `match` is an MQTT topic pattern")
        return ()
    points = raw[source]
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise MappingError(f"{where}: `{source}` is a list of points")
    needed = ("node", "device", "key") if source == "opcua" else ("device", "key", "address")
    for i, point in enumerate(points, start=1):
        missing = [m for m in needed if m not in point]
        if missing:
            raise MappingError(f"{where}: {source} point {i} lacks {', '.join(missing)}")
    return tuple(points)
