"""Every entity the transport adapters emit for the fixture feeds validates against the JSON Schema of its type."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from adapters.base import Entity
from adapters.gtfs import GtfsAdapter
from adapters.gtfs_rt import GtfsRtAdapter
from adapters.validate import fast_validator, key_values, schema_errors, schemas, validator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOOGLE = FIXTURES / "gtfs" / "google-sample-gtfs.zip"
PYGTFS = FIXTURES / "gtfs" / "pygtfs-sample-feed-with-transfers.zip"
REALTIME = FIXTURES / "gtfs-rt" / "synthetic-google-sample-feed.pb"
GTFS_TYPES = {
    "GtfsAgency", "GtfsStop", "GtfsStation", "GtfsAccessPoint", "GtfsRoute", "GtfsTrip", "GtfsStopTime",
    "GtfsService", "GtfsCalendarRule", "GtfsCalendarDateRule", "GtfsShape", "GtfsFrequency", "GtfsTransferRule",
    "GtfsFeedInfo", "GtfsTripUpdate", "GtfsStopTimeUpdate", "GtfsVehiclePosition", "GtfsAlert", "GtfsFareClass",
    "GtfsFareRule", "GtfsRiderTrip",
}  # fmt: skip


def rich_feed(tmp_path: Path) -> Path:
    """The Google feed plus stations, access points, shapes and times past midnight (the fixtures have none)."""
    changes = {
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,wheelchair_boarding\n"
        "ST,Central,36.9,-116.7,1,,1\nP1,Central platform 1,36.9001,-116.7001,0,ST,\n"
        "E1,Central entrance,36.9002,-116.7002,2,ST,\nN1,Central node,,,3,ST,\nB1,Boarding area,,,4,P1,\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint\n"
        "AB1,25:10:00,25:12:00,P1,0,1\nAB1,,,P1,1,0\n",
        "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
        "S1,36.0,-116.0,1,0\nS1,36.1,-116.1,2,1.5\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\n"
        "R0,DTA,0,Tram,0\nR11,DTA,11,Trolleybus,11\nR12,DTA,12,Monorail,12\nR700,DTA,700,Bus service,700\n"
        "R1700,DTA,1700,Miscellaneous,1700\n",
        "rider_trip.txt": "rider_id,trip_id,boarding_stop_id,alighting_stop_id,boarding_date,boarding_time,"
        "alighting_date,alighting_time,rider_type,rider_type_description,fare_paid,fare_method,accompanying_device,"
        "transfer_status\nC-17,AB1,P1,P1,20070604,25:10:00,20070605,1:20:00,8,Night owl,0,5,4,1\n"
        "C-18,AB1,,,,,,,,,,,,\n",
    }
    out = tmp_path / "rich.zip"
    with zipfile.ZipFile(GOOGLE) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name not in changes:
                dst.writestr(name, src.read(name))
        for name, text in changes.items():
            dst.writestr(name, text)
    return out


def emitted(tmp_path: Path) -> list[Entity]:
    entities: list[Entity] = []
    for path in (GOOGLE, PYGTFS, rich_feed(tmp_path)):
        adapter = GtfsAdapter()
        entities += adapter.entities(str(path))
        assert adapter.rejections == []
    realtime = GtfsRtAdapter(network="DTA")
    entities += realtime.entities(str(REALTIME))
    return entities


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert set(schemas()) >= GTFS_TYPES
    for entity_type, schema in schemas().items():
        Draft202012Validator.check_schema(schema)
        assert entity_type in str(schema["properties"]["type"] if "properties" in schema else schema["allOf"])


def test_every_emitted_entity_validates(tmp_path: Path) -> None:
    entities = emitted(tmp_path)
    assert {e["type"] for e in entities} == GTFS_TYPES  # every type is exercised
    failures = {e["id"]: errors for e in entities if (errors := schema_errors(e))}
    assert failures == {}
    assert Counter(e["type"] for e in entities)["GtfsShape"] == 1


@pytest.mark.parametrize(
    ("entity", "expected"),
    [
        ({"id": "urn:ngsi-ld:GtfsRoute:X:1", "type": "GtfsRoute", "routeType": {"type": "Property", "value": "9"}},
         "routeType: '9' does not match"),
        ({"id": "urn:ngsi-ld:GtfsStopTime:X:1", "type": "GtfsStopTime",
          "hasTrip": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsTrip:X:T"},
          "stopSequence": {"type": "Property", "value": 1}}, "'hasStop' is a required property"),
        ({"id": "urn:ngsi-ld:GtfsStopTime:X:1", "type": "GtfsStopTime",
          "hasTrip": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsTrip:X:T"},
          "hasStop": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsStop:X:S"},
          "stopSequence": {"type": "Property", "value": 1},
          "arrivalTime": {"type": "Property", "value": "8h00"}}, "arrivalTime: '8h00' does not match"),
        ({"id": "urn:ngsi-ld:GtfsAlert:X:1", "type": "GtfsAlert",
          "headerText": {"type": "LanguageProperty", "languageMap": {"en": 3}}}, "headerText/en: 3 is not of type"),
        ({"id": "urn:ngsi-ld:Nope:X:1", "type": "Nope"}, "no JSON Schema for the entity type 'Nope'"),
    ],
)
def test_bad_entities_fail_with_a_reason(entity: Entity, expected: str) -> None:
    errors = schema_errors(entity)
    assert any(expected in e for e in errors), errors


def test_key_values_takes_each_attribute_value() -> None:
    entity = {
        "id": "urn:x", "type": "T",
        "a": {"type": "Property", "value": 1, "unitCode": "SEC"},
        "b": {"type": "Relationship", "object": "urn:y"},
        "c": {"type": "LanguageProperty", "languageMap": {"en": "x"}},
        "d": [{"type": "Property", "value": 2}, {"type": "Property", "value": 3, "datasetId": "urn:d"}],
        "e": {"value": 4},
    }  # fmt: skip
    assert key_values(entity) == {"id": "urn:x", "type": "T", "a": 1, "b": "urn:y", "c": {"en": "x"}, "d": 2, "e": 4}


def test_the_fast_validator_never_accepts_what_jsonschema_refuses(tmp_path: Path) -> None:
    """jsonschema-rs answers first (speed); it must not let through an entity the reference validator refuses."""
    values = [None, 3, -1, "x", "99:99:99", "2020-13-01", [1], {"a": 1}, True, 1.5, "urn:x", {"en": 3}]
    refused = 0
    for entity in emitted(tmp_path)[::3]:
        for name in [k for k in entity if k not in ("id", "type")]:
            for value in values:
                simple = key_values({**entity, name: {"type": "Property", "value": value}})
                slow = validator(entity["type"])
                assert slow is not None
                if not slow.is_valid(simple):
                    refused += 1
                    assert not fast_validator(entity["type"]).is_valid(simple), (entity["id"], name, value)
    assert refused > 500
