"""Live ingestion's pure parts (record 0380): the mapping model, the four payload formats, the write rounds."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.live.mapping import MappingError, Reading, Update, parse_mapping, topic_captures, topic_filter
from adapters.live.mqtt import Translator
from adapters.live.payloads import PayloadError, SparkplugState, decode
from adapters.live.sparkplug_b import Payload
from adapters.live.writer import Item, Stats, Writer, rounds

NOW_MS = 1_767_225_600_000.0  # 2026-01-01T00:00:00Z

MAPPING = parse_mapping(
    {
        "rules": [
            {"match": "city/{device}/attrs", "format": "json", "type": "WeatherObserved",
             "id": "urn:ngsi-ld:WeatherObserved:city:{device}", "observedAt": "ts",
             "attributes": {"t": {"name": "temperature", "unit": "FAH"}, "p": {"name": "pressure", "unit": "BAR"},
                            "raw": {"name": "level", "scale": 0.1, "offset": -5, "unit": "MTR"}}},
            {"match": "/{apikey}/{device}/attrs", "format": "ultralight", "type": "Sensor",
             "id": "urn:ngsi-ld:Sensor:{device}", "autoProvision": False,
             "attributes": {"s": {"name": "state", "datatype": "boolean"}, "c": {"name": "count"}},
             "devices": {"pump 1": {"static": {"name": "Pump one"}}, "v2": {"id": "urn:ngsi-ld:Valve:2",
                                                                           "type": "Valve"}}},
            {"match": "senml/#", "format": "senml", "type": "Device", "id": "urn:ngsi-ld:Device:{device}"},
            {"match": "spBv1.0/plant/#", "format": "sparkplug", "type": "Machine",
             "id": "urn:ngsi-ld:Machine:{node}:{device}", "attributes": {"rpm": {"name": "speed"}}},
        ]
    }
)  # fmt: skip


def _translate(topic: str, payload: bytes, translator: Translator | None = None) -> tuple[Item, Stats]:
    stats = Stats()
    translator = translator or Translator(MAPPING, stats)
    return translator.item(topic, payload, NOW_MS), translator.stats


def _attrs(item: Item) -> dict[str, dict[str, Any]]:
    return {u.entity_id: u.attrs for u in item.updates}


# -- mapping --------------------------------------------------------------------------------------------------
def test_topic_patterns_become_filters_and_captures() -> None:
    assert topic_filter("/{apikey}/{device}/attrs") == "/+/+/attrs"
    assert topic_captures("/{apikey}/{device}/attrs", "/k1/d1/attrs") == {"apikey": "k1", "device": "d1"}
    assert topic_captures("/{apikey}/{device}/attrs", "/k1/d1/cmd") is None
    assert topic_captures("senml/#", "senml/a/b") == {}
    assert topic_captures("a/+/{x}", "a/b") is None


def test_routes_are_remembered_per_topic_and_first_rule_wins() -> None:
    mapping = parse_mapping({"rules": [{"match": "a/{device}/x", "type": "T", "id": "urn:t:{device}"},
                                       {"match": "a/#", "type": "U", "id": "urn:u:all"}]})  # fmt: skip
    first, again = mapping.route("a/d1/x"), mapping.route("a/d1/x")
    assert first is not None and first is again and first[0].entity_type == "T" and first[1] == {"device": "d1"}
    with pytest.raises(TypeError):
        first[1]["device"] = "d2"  # type: ignore[index]  # shared by every message of the topic: read-only
    other = mapping.route("a/d1/y")
    assert other is not None and other[0].entity_type == "U"
    assert mapping.route("b/d1") is None and mapping.route("b/d1") is None


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"type": "T", "id": "x"}], "exactly one of match"),
        ([{"match": "a", "opcua": [], "type": "T", "id": "x"}], "exactly one of match"),
        ([{"match": "a", "type": "T"}], "`id` is required"),
        ([{"match": "a", "type": "T", "id": "x", "format": "xml"}], "format 'xml'"),
        ([{"match": "a", "type": "T", "id": "x", "attributes": {"t": {"unit": "furlong"}}}], "unknown unit"),
        ([{"match": "a", "type": "T", "id": "x", "colour": 1}], "unknown member(s) colour"),
        ([{"modbus": [{"device": "m"}], "type": "T", "id": "x"}], "lacks key, address"),
        ([{"match": "{k}/{device}", "type": "T", "id": "urn:x:{k}:{device}", "devices": {"d": {}}}], "{k}"),
    ],
)
def test_a_bad_mapping_is_refused_with_the_rule_and_member(rules: list[Any], message: str) -> None:
    with pytest.raises(MappingError, match="rule 1") as caught:
        parse_mapping({"rules": rules})
    assert message in str(caught.value)


def test_json_values_are_mapped_converted_and_stamped() -> None:
    body = json.dumps({"t": 212, "p": 1.5, "raw": 100, "humidity": 40, "ts": "2026-01-01T01:00:00+01:00"})
    item, stats = _translate("city/north 1/attrs", body.encode())
    attrs = _attrs(item)["urn:ngsi-ld:WeatherObserved:city:north%201"]
    assert attrs["temperature"] == {"type": "Property", "value": 100.0, "unitCode": "CEL",
                                    "observedAt": "2026-01-01T00:00:00Z"}  # fmt: skip
    assert attrs["pressure"]["value"] == 150.0 and attrs["pressure"]["unitCode"] == "KPA"
    assert attrs["level"]["value"] == 5.0 and attrs["level"]["unitCode"] == "MTR"
    assert attrs["humidity"]["value"] == 40  # auto-provisioned key, under its own name
    assert stats.received == 1 and not stats.malformed


def test_ultralight_provisioned_devices_only_and_typed_values() -> None:
    item, stats = _translate("/key/pump 1/attrs", b"s|true|c|7|x|1#c|8|TimeInstant|2026-01-01T00:00:05Z")
    assert len(item.updates) == 2  # two values of count: two updates, in order
    first, second = item.updates[0].attrs, item.updates[1].attrs
    assert item.updates[0].entity_id == item.updates[1].entity_id == "urn:ngsi-ld:Sensor:pump%201"
    assert first["state"]["value"] is True and first["count"]["value"] == 7
    assert first["count"]["observedAt"] == "2026-01-01T00:00:00.000Z"  # no TimeInstant: the arrival time
    assert second == {"count": {"type": "Property", "value": 8, "observedAt": "2026-01-01T00:00:05Z"}}
    assert stats.skipped == 1  # key x is not mapped (autoProvision false)
    item, stats = _translate("/key/v2/attrs", b"c|1")
    assert item.updates[0].entity_id == "urn:ngsi-ld:Valve:2" and item.updates[0].entity_type == "Valve"
    item, stats = _translate("/key/stranger/attrs", b"c|1")
    assert item.updates == [] and stats.skipped == 1  # not provisioned, no auto-provisioning


def test_provisioned_devices_and_their_static_attributes() -> None:
    assert MAPPING.rules[1].provisioned() == [
        {"id": "urn:ngsi-ld:Sensor:pump%201", "type": "Sensor", "name": {"type": "Property", "value": "Pump one"}},
        {"id": "urn:ngsi-ld:Valve:2", "type": "Valve"},
    ]
    assert MAPPING.rules[2].provisioned() == []


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("city/d/attrs", b"{nope", "not JSON"),
        ("city/d/attrs", b'{"t": {"nested": 1}}', "member 't'"),
        ("city/d/attrs", b'{"t": 1, "ts": "yesterday"}', "not a date-time"),
        ("/k/pump 1/attrs", b"s|true|c", "key|value pairs"),
        ("/k/pump 1/attrs", b"s|maybe", "not a boolean"),
        ("senml/x", b'{"n": "t", "v": 1}', "non-empty JSON array"),
        ("senml/x", b'[{"n": "t", "v": "1"}]', "wrong type"),
        ("senml/x", b'[{"n": "t", "v": 1, "vs": "a"}]', "exactly one of"),
        ("spBv1.0/plant/NDATA/n1", b"\xff\xff", "not a Sparkplug B payload"),
    ],
)
def test_a_malformed_payload_is_counted_not_raised(topic: str, payload: bytes, reason: str, caplog: Any) -> None:
    item, stats = _translate(topic, payload)
    assert item.updates == [] and sum(stats.malformed.values()) == 1
    assert reason in caplog.text


def test_senml_resolves_base_fields_and_relative_times() -> None:
    pack = [{"bn": "urn:dev:ow:10e2073a01080063:", "bt": 1.767225600e9, "bu": "Cel", "n": "temp", "v": 23.5},
            {"n": "hum", "u": "%RH", "v": 40, "t": 1},
            {"bn": "urn:dev:ow:other:", "n": "on", "vb": True, "t": -1}]  # fmt: skip
    item, _ = _translate("senml/a", json.dumps(pack).encode())
    attrs = _attrs(item)
    first = attrs["urn:ngsi-ld:Device:urn%3Adev%3Aow%3A10e2073a01080063"]
    assert first["temp"] == {"type": "Property", "value": 23.5, "unitCode": "CEL",
                             "observedAt": "2026-01-01T00:00:00.000Z"}  # fmt: skip
    assert first["hum"]["unitCode"] == "P1" and first["hum"]["observedAt"] == "2026-01-01T00:00:01.000Z"
    # bt is inherited: -1 is one second before the base time, not relative to now (bt + t is absolute)
    assert attrs["urn:ngsi-ld:Device:urn%3Adev%3Aow%3Aother"]["on"]["observedAt"] == "2025-12-31T23:59:59.000Z"
    item, _ = _translate("senml/a", b'[{"n": "dev7/t", "v": 1, "t": -2}]')  # relative to the arrival
    assert _attrs(item)["urn:ngsi-ld:Device:dev7"]["t"]["observedAt"] == "2025-12-31T23:59:58.000Z"


def _sparkplug(*metrics: dict[str, Any], timestamp: int = 1_767_225_600_000) -> bytes:
    message = Payload(timestamp=timestamp, seq=0)
    for metric in metrics:
        message.metrics.add(**metric)
    return bytes(message.SerializeToString())


def test_sparkplug_births_name_the_aliases_of_later_data() -> None:
    translator = Translator(MAPPING, Stats())
    birth = _sparkplug({"name": "rpm", "alias": 1, "datatype": 10, "double_value": 1500.0},
                       {"name": "temp", "alias": 2, "datatype": 3, "int_value": 2**32 - 5})  # Int32 -5
    item, _ = _translate("spBv1.0/plant/DBIRTH/edge1/m1", birth, translator)
    attrs = _attrs(item)["urn:ngsi-ld:Machine:edge1:m1"]
    assert attrs["speed"]["value"] == 1500.0 and attrs["temp"]["value"] == -5
    data = _sparkplug({"alias": 2, "timestamp": 1_767_225_601_000, "datatype": 3, "int_value": 7})
    item, _ = _translate("spBv1.0/plant/DDATA/edge1/m1", data, translator)
    assert _attrs(item)["urn:ngsi-ld:Machine:edge1:m1"]["temp"] == {
        "type": "Property", "value": 7, "observedAt": "2026-01-01T00:00:01.000Z"}  # fmt: skip
    item, stats = _translate("spBv1.0/plant/DDATA/edge9/m1", data, translator)  # no birth seen for edge9
    assert item.updates == [] and stats.malformed["sparkplug"] == 1
    item, stats = _translate("spBv1.0/plant/NDEATH/edge1", b"", translator)
    assert item.updates == [] and stats.malformed["sparkplug"] == 1  # a death is ignored, not malformed


def test_sparkplug_schema_reads_bytes_written_by_hand() -> None:
    # Payload{timestamp=5, metrics=[Metric{name="t", alias=1, datatype=10 (Double), double_value=2.5}], seq=3}:
    # field 1 varint, field 2 length-delimited, inside: 1 string, 2 varint, 4 varint, 13 fixed64; field 3 varint.
    wire = bytes.fromhex("0805" "1210" "0a0174" "1001" "200a" "690000000000000440" "1803")
    message = Payload.FromString(wire)
    assert (message.timestamp, message.seq) == (5, 3)
    metric = message.metrics[0]
    assert (metric.name, metric.alias, metric.datatype, metric.WhichOneof("value"), metric.double_value) == (
        "t", 1, 10, "double_value", 2.5)  # fmt: skip
    assert message.SerializeToString() == wire


# Sparkplug B payloads written from the specification's field numbers (clause 6.4; record 0383), by a protobuf wire
# encoder of its own: they check the descriptor of adapters/live/sparkplug_b.py as much as the translation.
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _v(number: int, value: int) -> bytes:  # varint field (wire type 0)
    return _varint(number << 3) + _varint(value)


def _s(number: int, *parts: bytes | str) -> bytes:  # length-delimited field (wire type 2): a string or a message
    body = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def _d(number: int, value: float) -> bytes:  # double (wire type 1)
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _f(number: int, value: float) -> bytes:  # float (wire type 5)
    return _varint(number << 3 | 5) + struct.pack("<f", value)


# Metric: name 1, alias 2, timestamp 3, datatype 4, is_null 7, int 10, long 11, float 12, double 13, boolean 14,
# string 15, bytes 16, dataset 17, template 18. DataSet: num_of_columns 1, columns 2, types 3, rows 4; Row:
# elements 1; DataSetValue: int 1, long 2, float 3, double 4, boolean 5, string 6. Template: version 1, metrics 2,
# parameters 3, template_ref 4, is_definition 5; Parameter: name 1, type 2, int 3, ... string 8.
INT32, INT64, FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, DATASET, BYTES, TEMPLATE = 3, 4, 9, 10, 11, 12, 13, 16, 17, 19
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _payload(*metrics: bytes, timestamp: int = T0) -> bytes:
    return _v(1, timestamp) + b"".join(_s(2, m) for m in metrics) + _v(3, 0)


def _dataset_metric(name: str, alias: int) -> bytes:
    """A DataSet of three columns (Int32, DateTime, String) and two rows, the second with a null string."""
    header = _v(1, 3) + _s(2, "delta") + _s(2, "at") + _s(2, "label") + _v(3, INT32) + _v(3, DATETIME) + _v(3, STRING)
    rows = _s(4, _s(1, _v(1, 2**32 - 7)), _s(1, _v(2, T0 + 500)), _s(1, _s(6, "start"))) + \
        _s(4, _s(1, _v(1, 12)), _s(1, _v(2, T0 + 1500)), _s(1, b""))  # fmt: skip
    return _s(1, name) + _v(2, alias) + _v(4, DATASET) + _s(17, header + rows)


def _metric(name: str, datatype: int, value: bytes = b"") -> bytes:
    return _s(1, name) + _v(4, datatype) + value


def _parameter(name: str, datatype: int, value: bytes) -> bytes:
    return _s(3, _s(1, name) + _v(2, datatype) + value)


MOTOR_DEFINITION = _metric("Motor", TEMPLATE, _s(18, _s(1, "2.1"), _v(5, 1),
    _s(2, _metric("rpm", INT32, _v(10, 0))), _s(2, _metric("temp", FLOAT, _f(12, 0.0))),
    _s(2, _metric("bearing", TEMPLATE, _s(18, _s(4, "Bearing"), _v(5, 0), _s(2, _metric("wear", DOUBLE))))),
    _parameter("serial", STRING, _s(8, "unknown")), _parameter("poles", INT32, _v(3, 4))))
BEARING_DEFINITION = _metric("Bearing", TEMPLATE, _s(18, _v(5, 1), _s(2, _metric("wear", DOUBLE))))
MOTOR_1 = _metric("Motor 1", TEMPLATE, _v(2, 5) + _s(18, _s(4, "Motor"), _v(5, 0),
    _s(2, _metric("rpm", INT32, _v(10, 1500))), _s(2, _metric("temp", FLOAT, _f(12, 41.3))),
    _s(2, _metric("bearing", TEMPLATE, _s(18, _s(4, "Bearing"), _v(5, 0),
                                          _s(2, _metric("wear", DOUBLE, _d(13, 0.25)))))),
    _parameter("serial", STRING, _s(8, "A-17"))))  # fmt: skip


def _birth(translator: Translator) -> None:
    """The edge node's NBIRTH with the template definitions (the nested one after its user), the device's DBIRTH."""
    item, stats = _translate("spBv1.0/plant/NBIRTH/edge1", _payload(MOTOR_DEFINITION, BEARING_DEFINITION),
                             translator)  # fmt: skip
    assert item.updates == [] and not stats.malformed  # definitions are no readings
    item, stats = _translate("spBv1.0/plant/DBIRTH/edge1/m1", _payload(MOTOR_1, _dataset_metric("log", 6)),
                             translator)  # fmt: skip
    assert not stats.malformed, stats


def test_sparkplug_dataset_becomes_a_json_property_of_typed_columns_and_rows() -> None:
    translator = Translator(MAPPING, Stats())
    _birth(translator)
    item, _ = _translate("spBv1.0/plant/DDATA/edge1/m1", _payload(_v(2, 6) + _s(17, _v(1, 1), _s(2, "n"),
                         _v(3, BOOLEAN), _s(4, _s(1, _v(5, 1)))), timestamp=T0 + 2000),
                         translator)  # fmt: skip
    attrs = _attrs(item)["urn:ngsi-ld:Machine:edge1:m1"]
    assert attrs["log"] == {"type": "JsonProperty", "observedAt": "2026-01-01T00:00:02.000Z",
                            "json": {"columns": [{"name": "n", "type": "Boolean"}], "rows": [[True]]}}  # fmt: skip
    item, _ = _translate("spBv1.0/plant/DBIRTH/edge1/m2", _payload(_dataset_metric("log", 6)), translator)
    assert _attrs(item)["urn:ngsi-ld:Machine:edge1:m2"]["log"]["json"] == {
        "columns": [{"name": "delta", "type": "Int32"}, {"name": "at", "type": "DateTime"},
                    {"name": "label", "type": "String"}],
        "rows": [[-7, "2026-01-01T00:00:00.500Z", "start"], [12, "2026-01-01T00:00:01.500Z", None]],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("dataset", "reason"),
    [
        (_s(2, "a") + _s(2, "b") + _v(3, INT32), "as many column names as types (2 != 1)"),
        (_v(1, 2) + _s(2, "a") + _v(3, INT32), "num_of_columns 2, but 1 columns"),
        (_s(2, "a") + _v(3, DATASET), "column type 16 is not a basic type"),
        (_s(2, "a") + _s(2, "b") + _v(3, INT32) + _v(3, INT32) + _s(4, _s(1, _v(1, 1))), "row 0 has 1 values for 2"),
        (_s(2, "a") + _v(3, INT32) + _s(4, _s(1, _s(6, "x"))), "row 0 column 'a': a Int32 value cannot travel as"),
    ],
)
def test_a_dataset_that_breaks_its_clause_is_malformed(dataset: bytes, reason: str, caplog: Any) -> None:
    metric = _metric("log", DATASET, _s(17, dataset))
    item, stats = _translate("spBv1.0/plant/DBIRTH/edge1/m1", _payload(metric))
    assert item.updates == [] and stats.malformed["sparkplug"] == 1
    assert reason in caplog.text


def test_sparkplug_template_instance_is_an_object_of_its_members_with_its_definition() -> None:
    translator = Translator(MAPPING, Stats())
    _birth(translator)
    item, _ = _translate("spBv1.0/plant/DBIRTH/edge1/m1", _payload(MOTOR_1), translator)
    motor = _attrs(item)["urn:ngsi-ld:Machine:edge1:m1"]["Motor 1"]
    assert motor == {
        "type": "JsonProperty", "observedAt": "2026-01-01T00:00:00.000Z",
        "json": {"rpm": 1500, "temp": 41.3, "bearing": {"wear": 0.25}},
        "templateRef": {"type": "Property", "value": "Motor"},
        "templateVersion": {"type": "Property", "value": "2.1"},  # the definition's, the instance gives none
        "templateParameters": {"type": "JsonProperty", "json": {"serial": "A-17", "poles": 4}},  # poles: default
    }  # fmt: skip
    # DDATA by alias with only the members that changed (clause 6.4.14), no datatypes (the definition's): the
    # others keep their last values, and so do the parameters
    change = _v(2, 5) + _s(18, _s(4, "Motor"), _v(5, 0), _s(2, _s(1, "rpm"), _v(10, 2**32 - 20)),
                           _s(2, _s(1, "bearing"), _s(18, _s(2, _s(1, "wear"), _d(13, 0.5)))))  # fmt: skip
    item, stats = _translate("spBv1.0/plant/DDATA/edge1/m1", _payload(_v(3, T0 + 9000) + change), translator)
    assert not stats.malformed
    motor = _attrs(item)["urn:ngsi-ld:Machine:edge1:m1"]["Motor 1"]
    assert motor["json"] == {"rpm": -20, "temp": 41.3, "bearing": {"wear": 0.5}}
    assert motor["observedAt"] == "2026-01-01T00:00:09.000Z"
    assert motor["templateParameters"]["json"] == {"serial": "A-17", "poles": 4}


@pytest.mark.parametrize(
    ("topic", "metric", "reason"),
    [
        ("DBIRTH/edge1/m1", _metric("x", TEMPLATE, _s(18, _s(4, "Pump"), _v(5, 0))),
         "template 'Pump' was defined by no NBIRTH"),
        ("DBIRTH/edge1/m1", _metric("x", TEMPLATE, _s(18, _v(5, 0))), "names its definition in template_ref"),
        ("DBIRTH/edge1/m1", _metric("x", TEMPLATE, _s(18, _s(4, "Motor"), _v(5, 0),
                                                      _s(2, _metric("colour", STRING, _s(15, "red"))))),
         "member 'colour' is not in template 'Motor'"),
        ("DBIRTH/edge1/m1", _metric("x", TEMPLATE, _s(18, _s(4, "Motor"), _v(5, 0),
                                                      _parameter("speed", INT32, _v(3, 1)))),
         "parameter 'speed' is not in template 'Motor'"),
        ("DDATA/edge1/m1", BEARING_DEFINITION, "outside an NBIRTH"),
    ],
)  # fmt: skip
def test_a_template_instance_without_its_definition_is_malformed(topic: str, metric: bytes, reason: str,
                                                                 caplog: Any) -> None:  # fmt: skip
    translator = Translator(MAPPING, Stats())
    _birth(translator)
    item, stats = _translate(f"spBv1.0/plant/{topic}", _payload(metric), translator)
    assert item.updates == [] and stats.malformed["sparkplug"] == 1
    assert reason in caplog.text


def test_a_bytes_value_is_counted_not_translated_and_the_rest_written(caplog: Any) -> None:
    translator = Translator(MAPPING, Stats())
    birth = _payload(_s(1, "image") + _v(2, 1) + _v(4, BYTES) + _s(16, b"\x89PNG"),
                     _s(1, "temp") + _v(2, 2) + _v(4, INT32) + _v(10, 2**32 - 3))  # fmt: skip
    item, stats = _translate("spBv1.0/plant/DBIRTH/edge1/m1", birth, translator)
    assert _attrs(item) == {"urn:ngsi-ld:Machine:edge1:m1": {
        "temp": {"type": "Property", "value": -3, "observedAt": "2026-01-01T00:00:00.000Z"}}}  # fmt: skip
    # DDATA without datatypes (clause 6.4.6: they should not repeat them): Int32 from the birth
    item, stats = _translate("spBv1.0/plant/DDATA/edge1/m1", _payload(_v(2, 1) + _s(16, b"\x89"),
                                                                     _v(2, 2) + _v(10, 2**32 - 4),
                                                                     _metric("hist", 24, _s(16, b"\x01\0\0\0"))),
                             translator)  # fmt: skip
    assert _attrs(item)["urn:ngsi-ld:Machine:edge1:m1"]["temp"]["value"] == -4
    assert stats.untranslated == {"sparkplug Bytes": 2, "sparkplug Int32Array": 1} and not stats.malformed
    assert caplog.text.count("a Bytes value is not translated") == 1  # logged once, counted every time
    assert ("sparkplug Bytes values not translated", 2) in stats.rows()


@pytest.mark.parametrize("spec", [{"datatype": "number"}, {"unit": "CEL"}, {"scale": 2}])
def test_a_json_structure_refuses_a_mapped_datatype_or_unit(spec: dict[str, Any], caplog: Any) -> None:
    mapping = parse_mapping({"rules": [{"match": "spBv1.0/#", "format": "sparkplug", "type": "M",
                                        "id": "urn:ngsi-ld:M:{device}", "attributes": {"log": spec}}]})  # fmt: skip
    stats = Stats()
    item = Translator(mapping, stats).item("spBv1.0/g/DBIRTH/e/d", _payload(_dataset_metric("log", 1)), NOW_MS)
    assert item.updates == [] and stats.malformed["sparkplug"] == 1
    assert "a JSON structure (DataSet, Template) takes no datatype, unit, scale or offset" in caplog.text


def test_decode_of_an_unknown_topic_is_unmatched() -> None:
    item, stats = _translate("elsewhere/x", b"{}")
    assert item.updates == [] and stats.unmatched == 1
    with pytest.raises(PayloadError):
        decode("spBv1.0/x", b"", MAPPING.rules[3], "", NOW_MS, SparkplugState())
    assert Reading("d", "k", 1).observed_at is None


# -- writes -----------------------------------------------------------------------------------------------------
def _update(entity: str, **attrs: int) -> Update:
    return Update(entity, "T", {k: {"type": "Property", "value": v} for k, v in attrs.items()})


def test_rounds_hold_one_value_per_attribute_of_an_entity_in_order() -> None:
    planned = rounds([_update("a", x=1), _update("b", x=1), _update("a", y=1), _update("a", x=2),
                      _update("a", y=2, x=3)])  # fmt: skip
    assert [[(f["id"], {k: v["value"] for k, v in f.items() if k not in ("id", "type")}) for f in r]
            for r in planned] == [
        [("a", {"x": 1, "y": 1}), ("b", {"x": 1})],
        [("a", {"x": 2})],
        [("a", {"y": 2, "x": 3})],
    ]


def test_messages_are_acknowledged_only_after_the_broker_took_their_writes() -> None:
    answers = iter([503, 503, 204, 207])
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        status = next(answers)
        if status == 207:
            return httpx.Response(207, json={"success": [], "errors": [
                {"entityId": "a", "error": {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"}}]})
        return httpx.Response(status)

    acked: list[int] = []

    async def scenario() -> Stats:
        stats = Stats()
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://broker") as client:
            writer = Writer(client, {}, stats)
            queue: asyncio.Queue[Item | None] = asyncio.Queue()
            for n, update in enumerate([_update("a", x=1), _update("a", x=2)]):
                queue.put_nowait(Item([update], ack=lambda n=n: acked.append(n)))  # type: ignore[misc]
            queue.put_nowait(Item([_update("b", x=1)], ack=lambda: acked.append(2)))
            queue.put_nowait(None)
            original = asyncio.sleep

            async def no_wait(delay: float) -> None:
                assert acked == []  # nothing acknowledged while the broker cannot take the write
                await original(0)

            asyncio.sleep = no_wait  # type: ignore[assignment]
            try:
                await writer.run(queue)
            finally:
                asyncio.sleep = original
        return stats

    stats = asyncio.run(scenario())
    assert acked == [0, 1, 2]
    assert stats.retries == 2 and stats.refused == 1 and stats.written == 2 and stats.handled == 3
    assert [[f["id"] for f in body] for body in bodies] == [["a", "b"], ["a", "b"], ["a", "b"], ["a"]]


# -- the commands' refusals ----------------------------------------------------------------------------------------
def test_agora_ingest_refuses_a_bad_mapping_or_source_before_connecting(tmp_path: Any, capsys: Any) -> None:
    from broker.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{match: 'a/{device}', type: T}]\n")
    assert main(["ingest", "mqtt", str(bad), "--broker", "http://127.0.0.1:9"]) == 2
    assert "`id` is required" in capsys.readouterr().err
    mqtt_only = tmp_path / "mqtt.yaml"
    mqtt_only.write_text("rules: [{match: 'a/{device}', type: T, id: 'urn:x:{device}'}]\n")
    assert main(["ingest", "modbus", str(mqtt_only), "--server", "h:502", "--broker", "http://127.0.0.1:9"]) == 2
    assert "no modbus rule" in capsys.readouterr().err
    register = tmp_path / "modbus.yaml"
    register.write_text("rules: [{modbus: [{device: m, key: k, address: 0, datatype: float16}], type: T, id: x}]\n")
    assert main(["ingest", "modbus", str(register), "--server", "h:502", "--broker", "http://127.0.0.1:9"]) == 2
    assert "datatype is one of" in capsys.readouterr().err
    node = tmp_path / "opcua.yaml"
    node.write_text("rules: [{opcua: [{node: 'not a node', device: m, key: k}], type: T, id: x}]\n")
    assert main(["ingest", "opcua", str(node), "--server", "opc.tcp://h:4840", "--broker", "http://127.0.0.1:9"]) == 2
    assert "not an OPC UA NodeId" in capsys.readouterr().err
    assert main(["ingest", "mqtt", str(mqtt_only), "--broker", "http://127.0.0.1:9", "--parallel", "0"]) == 2


def test_agora_source_refuses_an_unknown_adapter(capsys: Any) -> None:
    from broker.cli import main

    assert main(["source", "no-such-adapter", "feed.pb"]) == 2
    assert "no adapter named 'no-such-adapter'" in capsys.readouterr().err


def test_live_ingestion_logs_its_counts_periodically(caplog: Any) -> None:
    """No bar for a stream without an end: a line of counts every --stats-every seconds (received, handled with its
    rate, written, rejected, pending), and nothing at 0."""
    from adapters.live.run import _log_counts, counts_line

    stats = Stats(received=12, handled=9, written=20, refused=1, retries=3)
    stats.malformed["json"] = 2
    line = counts_line(stats, handled_before=4, seconds=0.5)
    assert line == ("received 12 messages, handled 9 (10/s), written 20 attribute instances, rejected 3 (malformed 2, "
                    "refused 1), pending 3, writes retried 3")  # fmt: skip
    assert "retried" not in counts_line(Stats(received=1, handled=1), 0, 1.0)

    async def run(every: float) -> None:
        task = asyncio.create_task(_log_counts(stats, every))
        await asyncio.sleep(0.25)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level("INFO", logger="agora.ingest"):
        asyncio.run(run(0.05))
    lines = [r.getMessage() for r in caplog.records if r.name == "agora.ingest"]
    assert len(lines) >= 3 and all(line.startswith("received 12 messages, handled 9 (0/s)") for line in lines)
    caplog.clear()
    with caplog.at_level("INFO", logger="agora.ingest"):
        asyncio.run(run(0))
    assert not caplog.records


@given(st.floats(min_value=-6.2e13, max_value=2.5e14, allow_nan=False) | st.integers(-6 * 10**13, 25 * 10**13))
def test_iso_ms_equals_the_datetime_formatting_it_replaced(epoch_ms: float) -> None:
    """iso_ms formats each second once and caches it: the text is the one datetime gave, rounding included."""
    from datetime import UTC, datetime

    from adapters.live.payloads import iso_ms

    for value in (epoch_ms, epoch_ms + 1000, epoch_ms + 0.5, epoch_ms):  # the cached second changes, and back
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        assert iso_ms(value) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
