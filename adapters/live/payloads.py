"""Payload formats of live field data into :class:`Reading` values (record 0380).

- ``json``: an object of key -> value (or a list of them); the rule's ``observedAt`` names the time member.
- ``ultralight``: FIWARE UltraLight 2.0, ``key|value|key|value``, several measure groups joined by ``#``; the key
  ``TimeInstant`` gives the observation time, as in the IoT Agent.
- ``senml``: SenML in JSON (RFC 8428): base name, time, unit and value resolved (clause 4.6), a relative time
  (under 2^28 s, clause 4.5.3) counted from the arrival.
- ``sparkplug``: Sparkplug B (Eclipse Sparkplug 3.0.0) NBIRTH/DBIRTH/NDATA/DDATA payloads on
  ``spBv1.0/<group>/<type>/<edge node>[/<device>]``; metric aliases are learnt from the births (clause 6.4.3).

A payload that cannot be read raises :class:`PayloadError` with the reason: the caller counts and logs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from adapters.live.mapping import JsonValue, Reading, Rule
from adapters.live.sparkplug_b import DATATYPES, Payload
from adapters.telemetry import utc

RELATIVE_LIMIT = 2**28  # SenML: smaller times are relative to now (RFC 8428 clause 4.5.3)

# SenML units (RFC 8428 clause 12.1 and the IANA registry) -> the spellings adapters.units knows.
SENML_UNITS = {
    "Cel": "CEL", "K": "KEL", "%RH": "P1", "%": "P1", "%EL": "P1", "/": "C62", "W": "WTT", "V": "VLT", "A": "AMP",
    "Pa": "PAL", "m": "MTR", "m/s": "MTS", "Hz": "HTZ", "s": "SEC", "m3/s": "MQS", "l/s": "G51", "Ohm": "OHM",
    "S": "SIE", "S/m": None, "lx": None, "kg": None, "Wh": None, "J": None, "dBm": None, "rad": None,
}  # fmt: skip


class PayloadError(ValueError):
    """A payload that is not what its rule's format says."""


@dataclass
class Decoded:
    readings: list[Reading]
    captures: dict[str, str] = field(default_factory=dict)  # more template values (Sparkplug: group, node)
    ignored: bool = False  # a message that carries no readings by design (Sparkplug death, command, state)
    untranslated: list[tuple[str, str]] = field(default_factory=list)  # (kind, reason) of values left out


# whole seconds formatted: a message's stamps (its payload's time, its arrival) fall in a few recent seconds
_SECONDS: dict[float, str] = {}


def iso_ms(epoch_ms: float) -> str:
    """Epoch milliseconds as an NGSI-LD DateTime in UTC with milliseconds, the value rounded to the microsecond
    as ``datetime.fromtimestamp`` rounds it. strftime once per second: it was a tenth of the ingester's CPU
    (bench/ingest_profile.py)."""
    fraction, whole = math.modf(epoch_ms / 1000)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    text = _SECONDS.get(whole)
    if text is None:
        if len(_SECONDS) >= 256:
            _SECONDS.clear()
        text = _SECONDS[whole] = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{text}{micros // 1000:03d}Z"


def _time(value: Any, where: str) -> str:
    """An ISO 8601 date-time or epoch milliseconds (a number, or digits) as an NGSI-LD DateTime in UTC."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return iso_ms(float(value))
        return utc(str(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"{where}: not a date-time: {value!r}") from exc


def _json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {exc}") from exc


def decode_json(payload: bytes, rule: Rule, device: str, received_ms: float, state: SparkplugState) -> Decoded:
    document = _json(payload)
    objects = document if isinstance(document, list) else [document]
    readings = []
    for item in objects:
        if not isinstance(item, dict):
            raise PayloadError("a JSON payload is an object of key -> value, or a list of them")
        stamp = rule.observed_at
        when = _time(item[stamp], stamp) if stamp is not None and stamp in item else None
        for key, value in item.items():
            if key == rule.observed_at:
                continue
            if isinstance(value, dict | list) or value is None:
                raise PayloadError(f"member {key!r}: a value is a number, a string or a boolean")
            readings.append(Reading(device, key, value, when))
    return Decoded(readings)


def decode_ultralight(payload: bytes, rule: Rule, device: str, received_ms: float, state: SparkplugState) -> Decoded:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8 text: {exc}") from exc
    readings = []
    for group in text.split("#"):
        parts = group.split("|")
        if len(parts) % 2 or not group:
            raise PayloadError(f"measure group {group!r}: expected key|value pairs")
        pairs = list(zip(parts[::2], parts[1::2], strict=True))
        if any(not key.strip() for key, _ in pairs):
            raise PayloadError(f"measure group {group!r}: an empty key")
        stamps = [value for key, value in pairs if key == "TimeInstant"]
        when = _time(stamps[-1], "TimeInstant") if stamps else None
        readings += [Reading(device, key.strip(), value, when) for key, value in pairs if key != "TimeInstant"]
    return Decoded(readings)


def decode_senml(payload: bytes, rule: Rule, device: str, received_ms: float, state: SparkplugState) -> Decoded:
    records = _json(payload)
    if not isinstance(records, list) or not records:
        raise PayloadError("a SenML pack is a non-empty JSON array of records (RFC 8428 clause 4)")
    base_name, base_time, base_unit, base_value = "", 0.0, None, 0.0
    readings = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(f"record {i}: not an object")
        base_name = _member(record, "bn", str, base_name, i)
        base_time = _member(record, "bt", float, base_time, i)
        base_unit = _member(record, "bu", str, base_unit, i)
        base_value = _member(record, "bv", float, base_value, i)
        values = [k for k in ("v", "vs", "vb", "vd") if k in record]
        if "s" in record and not values:
            values = ["s"]
        if len(values) > 1 or (not values and "bv" not in record and "n" in record):
            raise PayloadError(f"record {i}: needs exactly one of v, vs, vb, vd, s")
        if not values:
            continue  # a record of base fields only
        own_name = _member(record, "n", str, "", i)
        if not base_name + own_name:
            raise PayloadError(f"record {i}: no name (bn + n is empty)")
        value = _senml_value(record, values[0], base_value, i)
        seconds = base_time + _member(record, "t", float, 0.0, i)
        if abs(seconds) < RELATIVE_LIMIT:
            seconds += received_ms / 1000
        unit = record.get("u", base_unit)
        when = _time(seconds * 1000, "t")
        readings.append(Reading(*_senml_key(base_name, own_name, device), value, when, _senml_unit(unit)))
    return Decoded(readings)


def _member(record: dict[str, Any], key: str, kind: type, default: Any, i: int) -> Any:
    if key not in record:
        return default
    value = record[key]
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    raise PayloadError(f"record {i}: {key} must be {'a number' if kind is float else 'a string'}")


def _senml_value(record: dict[str, Any], key: str, base_value: float, i: int) -> Any:
    value = record[key]
    checks: dict[str, Callable[[Any], bool]] = {
        "v": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "s": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "vs": lambda v: isinstance(v, str), "vd": lambda v: isinstance(v, str), "vb": lambda v: isinstance(v, bool),
    }  # fmt: skip
    if not checks[key](value):
        raise PayloadError(f"record {i}: {key} has the wrong type ({value!r})")
    return value + base_value if key == "v" else value


def _senml_key(base_name: str, name: str, device: str) -> tuple[str, str]:
    """(device, key) of a SenML record: the device is the topic's when it names one, else the base name without
    its final separator (``urn:dev:ow:10e2073a01080063:`` + ``temp``), else the head of the name; the key is
    the record's own name (``temp``)."""
    if base_name:
        return device or base_name.rstrip(":/.") or base_name, name or base_name
    if device:
        return device, name
    for separator in (":", "/", "."):
        head, sep, tail = name.rpartition(separator)
        if sep and head and tail:
            return head, tail
    return name, name


def _senml_unit(unit: Any) -> str | None:
    if not isinstance(unit, str):
        return None
    return SENML_UNITS.get(unit, unit)


# -- Sparkplug B ---------------------------------------------------------------------------------------------------
Scope = tuple[str, ...]  # (group, edge node) or (group, edge node, device)


@dataclass
class SparkplugState:
    """What the births taught (clause 6.4.3 "alias", 6.4.14 "Template"), per edge node or device: the metric
    aliases, the datatypes (DATA messages should not repeat them), the edge nodes' template definitions (NBIRTH
    only), and each template instance's last members (DATA may carry only those that changed)."""

    aliases: dict[Scope, dict[int, str]] = field(default_factory=dict)
    datatypes: dict[Scope, dict[str, int]] = field(default_factory=dict)
    templates: dict[Scope, dict[str, Any]] = field(default_factory=dict)  # (group, node) -> name -> definition
    instances: dict[Scope, dict[str, JsonValue]] = field(default_factory=dict)


_SIGNED = {1: 8, 2: 16, 3: 32, 4: 64}  # Int8..Int64 travel as their unsigned two's complement (clause 6.4.16)
_INTEGERS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 13})  # and DateTime, epoch milliseconds
_CARRIERS = {  # the protobuf fields a value of each basic type may travel in (Tahu writes UInt32 as a long)
    **dict.fromkeys(_INTEGERS, ("int_value", "long_value")), 9: ("float_value",), 10: ("double_value", "float_value"),
    11: ("boolean_value",), 12: ("string_value",), 14: ("string_value",), 15: ("string_value",),
}  # fmt: skip
_BASIC = range(1, 15)  # the basic types (clause 6.4.16), the only ones DataSet columns and parameters take


def sparkplug(topic: str, payload: bytes, received_ms: float, state: SparkplugState) -> Decoded:
    """The readings of one Sparkplug B message; its topic gives the group, edge node and device."""
    levels = topic.split("/")
    if len(levels) not in (4, 5) or levels[0] != "spBv1.0":
        if levels[:2] == ["spBv1.0", "STATE"]:
            return Decoded([], ignored=True)
        raise PayloadError(f"{topic}: not a Sparkplug B topic (spBv1.0/group/type/edge node[/device])")
    group, kind, node = levels[1], levels[2], levels[3]
    device = levels[4] if len(levels) == 5 else node
    captures = {"group": group, "node": node, "device": device}
    if kind not in ("NBIRTH", "DBIRTH", "NDATA", "DDATA"):
        return Decoded([], captures, ignored=True)  # deaths, commands
    try:
        message = Payload.FromString(payload)
    except DecodeError as exc:
        raise PayloadError(f"not a Sparkplug B payload: {exc}") from exc
    reader = _Message(state, (group, node, *levels[4:]), kind, topic)
    decoded = Decoded([], captures)
    default_time = message.timestamp if message.HasField("timestamp") else received_ms
    for metric in reader.metrics(message):
        name, value = reader.translate(metric, decoded)
        if value is not None:
            stamp = metric.timestamp if metric.HasField("timestamp") else default_time
            decoded.readings.append(Reading(device, name, value, iso_ms(stamp), _eng_unit(metric)))
    return decoded


class _Message:
    """One NBIRTH, DBIRTH, NDATA or DDATA message read against (and, for births, into) the state."""

    def __init__(self, state: SparkplugState, scope: Scope, kind: str, topic: str) -> None:
        self.birth = kind.endswith("BIRTH")
        self.kind, self.topic, self.scope, self.node = kind, topic, scope, scope[:2]
        self.aliases = state.aliases.setdefault(scope, {}) if self.birth else state.aliases.get(scope, {})
        self.datatypes = state.datatypes.setdefault(scope, {})
        self.instances = state.instances.setdefault(scope, {})
        if kind == "NBIRTH":  # a new birth defines the node's templates afresh
            state.templates[self.node] = {}
        self.templates = state.templates.get(self.node, {})

    def metrics(self, message: Any) -> list[Any]:
        """The metrics that carry values: an NBIRTH's template definitions (clause 6.4.14, NBIRTH only) are taken
        first, so that its instances may name a definition that comes later in the same message."""
        values = []
        for metric in message.metrics:
            template = metric.template_value if metric.WhichOneof("value") == "template_value" else None
            if template is None or not template.is_definition:
                values.append(metric)
            elif self.kind != "NBIRTH":
                raise PayloadError(f"{self.topic}: template definition {metric.name!r} outside an NBIRTH "
                                   "(clause 6.4.14: definitions are in NBIRTH messages only)")  # fmt: skip
            else:
                self.templates[metric.name] = template
        return values

    def translate(self, metric: Any, decoded: Decoded) -> tuple[str, Any]:
        """(name, value) of a metric; value None when there is nothing to write (null, or not translated)."""
        if metric.HasField("name") and metric.HasField("alias"):
            self.aliases[metric.alias] = metric.name
        name = metric.name if metric.HasField("name") else self.aliases.get(metric.alias)
        if name is None:
            raise PayloadError(f"{self.topic}: metric alias {metric.alias} without a birth that names it")
        if metric.HasField("datatype") and self.birth:
            self.datatypes[name] = metric.datatype
        datatype = metric.datatype if metric.HasField("datatype") else self.datatypes.get(name, 0)
        kind = metric.WhichOneof("value")
        if kind is None or metric.is_null:
            return name, None
        if kind == "template_value":
            return name, self.instance(name, metric.template_value)
        if kind == "dataset_value":
            return name, JsonValue(self.dataset(metric.dataset_value, name))
        if kind in ("bytes_value", "extension_value"):
            label = "extension" if kind == "extension_value" else DATATYPES.get(datatype, "bytes")
            decoded.untranslated.append((label, f"metric {name!r}: a {label} value is not translated (record 0383)"))
            return name, None
        return name, _scalar(getattr(metric, kind), kind, datatype)

    # -- DataSet (clauses 6.4.11-6.4.13) -----------------------------------------------------------------------------
    def dataset(self, dataset: Any, where: str) -> dict[str, Any]:
        """``{"columns": [{"name", "type"}], "rows": [[value per column]]}``, each value read as its column's type."""
        names, types = list(dataset.columns), list(dataset.types)
        if len(names) != len(types):
            raise PayloadError(f"{where}: a DataSet has as many column names as types ({len(names)} != {len(types)})")
        if dataset.HasField("num_of_columns") and dataset.num_of_columns != len(types):
            raise PayloadError(f"{where}: num_of_columns {dataset.num_of_columns}, but {len(types)} columns")
        unknown = [t for t in types if t not in _BASIC]
        if unknown:
            raise PayloadError(f"{where}: DataSet column type {unknown[0]} is not a basic type (clause 6.4.11)")
        rows = []
        for i, row in enumerate(dataset.rows):
            if len(row.elements) != len(types):
                raise PayloadError(f"{where}: DataSet row {i} has {len(row.elements)} values for {len(types)} columns")
            rows.append([_typed_value(e, t, f"{where}: row {i} column {names[c]!r}")
                         for c, (e, t) in enumerate(zip(row.elements, types, strict=True))])  # fmt: skip
        return {"columns": [{"name": n, "type": DATATYPES[t]} for n, t in zip(names, types, strict=True)],
                "rows": rows}  # fmt: skip

    # -- Template instances (clauses 6.4.14, 6.4.15) ---------------------------------------------------------------
    def instance(self, name: str, template: Any) -> JsonValue:
        """A template instance: its members as a JSON object (nested instances nested), the definition it is of
        as the sub-property templateRef, its parameters (the definition's defaults where the instance gives none)
        as templateParameters. DATA may carry only the members that changed: the others keep their last value."""
        previous = None if self.birth else self.instances.get(name)
        definition = self._definition(template.template_ref, name)
        members = self.members(template, definition, previous.json if previous else None, name)
        properties: dict[str, dict[str, Any]] = {"templateRef": {"type": "Property", "value": template.template_ref}}
        version = template.version or definition.version
        if version:
            properties["templateVersion"] = {"type": "Property", "value": version}
        parameters = self.parameters(template, definition, name)
        if parameters is None and previous is not None:
            parameters = previous.properties.get("templateParameters", {}).get("json")
        if parameters:
            properties["templateParameters"] = {"type": "JsonProperty", "json": parameters}
        value = JsonValue(members, properties)
        self.instances[name] = value
        return value

    def _definition(self, ref: str, where: str) -> Any:
        if not ref:
            raise PayloadError(f"{where}: a template instance names its definition in template_ref (clause 6.4.14)")
        definition = self.templates.get(ref)
        if definition is None:
            raise PayloadError(f"{where}: template {ref!r} was defined by no NBIRTH of this edge node")
        return definition

    def members(self, template: Any, definition: Any, previous: dict[str, Any] | None, where: str) -> dict[str, Any]:
        defined = {m.name: m for m in definition.metrics}
        members = dict(previous or {})
        for member in template.metrics:
            spec = defined.get(member.name)
            if spec is None:
                raise PayloadError(f"{where}: member {member.name!r} is not in template {template.template_ref!r}")
            members[member.name] = self.member(member, spec, members.get(member.name), f"{where}/{member.name}")
        return members

    def member(self, member: Any, spec: Any, previous: Any, where: str) -> Any:
        kind = member.WhichOneof("value")
        if kind is None or member.is_null:
            return None
        datatype = member.datatype if member.HasField("datatype") else spec.datatype
        if kind == "template_value":
            nested = member.template_value
            defined = spec.template_value.template_ref if spec.WhichOneof("value") == "template_value" else ""
            inner = self._definition(nested.template_ref or defined, where)  # the definition names it too
            return self.members(nested, inner, previous if isinstance(previous, dict) else None, where)
        if kind == "dataset_value":
            return self.dataset(member.dataset_value, where)
        if kind in ("bytes_value", "extension_value"):
            raise PayloadError(f"{where}: a template member of type {DATATYPES.get(datatype, kind)} is not "
                               "translated (record 0383)")  # fmt: skip
        return _scalar(getattr(member, kind), kind, datatype)

    def parameters(self, template: Any, definition: Any, where: str) -> dict[str, Any] | None:
        """The parameters of an instance over the definition's defaults; None when the instance gives none."""
        if not template.parameters and not self.birth:
            return None
        types = {p.name: p.type for p in definition.parameters}
        values = {p.name: _typed_value(p, p.type, f"{where}: parameter {p.name!r}") for p in definition.parameters}
        for parameter in template.parameters:
            if parameter.name not in types:
                raise PayloadError(f"{where}: parameter {parameter.name!r} is not in template "
                                   f"{template.template_ref!r}")  # fmt: skip
            datatype = parameter.type if parameter.HasField("type") else types[parameter.name]
            values[parameter.name] = _typed_value(parameter, datatype, f"{where}: parameter {parameter.name!r}")
        return values


def _typed_value(element: Any, datatype: int, where: str) -> Any:
    """A DataSetValue's or Parameter's value read as ``datatype``, a basic type: null when none is set."""
    kind = element.WhichOneof("value")
    if kind is None:
        return None
    if kind not in _CARRIERS.get(datatype, ()):
        raise PayloadError(f"{where}: a {DATATYPES.get(datatype, datatype)} value cannot travel as {kind}")
    return _scalar(getattr(element, kind), kind, datatype)


def _scalar(value: Any, kind: str, datatype: int) -> Any:
    """A scalar as its Sparkplug type says: signed integers from their carriers, Float to its 7 digits,
    DateTime (epoch milliseconds) as an ISO 8601 UTC string."""
    bits = _SIGNED.get(datatype)
    if bits and isinstance(value, int):
        value = _signed(value, bits, 64 if kind == "long_value" else 32)
    if kind == "float_value":
        value = float(f"{value:.7g}")  # float32: its 7 significant digits, as the gtfs-rt adapter does
    if datatype == 13 and isinstance(value, int):  # DateTime: epoch milliseconds
        value = iso_ms(value)
    return value


def _signed(value: int, bits: int, width: int) -> int:
    """A signed integer from its unsigned carrier: two's complement of the carrier's width (Tahu's encoding), or of
    the type's own width for Int8/Int16 values written that way."""
    if value >= 1 << (width - 1):
        return value - (1 << width)
    if bits < width and 1 << (bits - 1) <= value < 1 << bits:
        return value - (1 << bits)
    return value


def _eng_unit(metric: Any) -> str | None:
    """The unit a metric's properties name (``engUnit``, the Sparkplug property engineering tools write)."""
    if not metric.HasField("properties"):
        return None
    for key, value in zip(metric.properties.keys, metric.properties.values, strict=False):
        if key.lower() in ("engunit", "engunits", "unit") and value.WhichOneof("value") == "string_value":
            return str(value.string_value)
    return None


Decoder = Callable[[bytes, Rule, str, float, SparkplugState], Decoded]
DECODERS: dict[str, Decoder] = {"json": decode_json, "ultralight": decode_ultralight, "senml": decode_senml}


def decode(topic: str, payload: bytes, rule: Rule, device: str, received_ms: float, state: SparkplugState) -> Decoded:
    """The readings of one payload in its rule's format."""
    if rule.format == "sparkplug":
        return sparkplug(topic, payload, received_ms, state)
    return DECODERS[rule.format](payload, rule, device, received_ms, state)
