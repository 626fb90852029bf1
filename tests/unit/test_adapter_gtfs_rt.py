"""The GTFS-Realtime adapter: entities per message, links to the static ids, observedAt, units, bad feeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.transit import gtfs_realtime_pb2 as rt

from adapters.base import Entity, SourceError, load_adapter
from adapters.gtfs import GtfsAdapter
from adapters.gtfs_rt import GtfsRtAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLE = FIXTURES / "gtfs-rt" / "synthetic-google-sample-feed.pb"
STATIC = FIXTURES / "gtfs" / "google-sample-gtfs.zip"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
CORE_TERMS = {"id", "type", "location"}


def translate(path: Path, network: str | None = "DTA") -> tuple[dict[str, Entity], GtfsRtAdapter]:
    adapter = GtfsRtAdapter(network=network)
    entities = list(adapter.entities(str(path)))
    found = {e["id"]: e for e in entities}
    assert len(found) == len(entities)
    return found, adapter


def write_feed(tmp_path: Path, build: Any) -> Path:
    feed = rt.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = 1_700_000_000
    build(feed)
    out = tmp_path / "feed.pb"
    out.write_bytes(feed.SerializeToString())
    return out


def test_registered_as_gtfs_rt() -> None:
    assert load_adapter("gtfs-rt") is GtfsRtAdapter


def test_sample_feed_entities_and_links_to_the_static_ids() -> None:
    entities, adapter = translate(SAMPLE)
    assert adapter.rejections == []
    assert sorted(e["type"] for e in entities.values()) == [
        "GtfsAlert", "GtfsStopTimeUpdate", "GtfsStopTimeUpdate", "GtfsTripUpdate", "GtfsVehiclePosition"
    ]  # fmt: skip
    static_ids = {e["id"] for e in GtfsAdapter().entities(str(STATIC))}
    targets = [
        attr["object"]
        for entity in entities.values()
        for attr in entity.values()
        if isinstance(attr, dict) and attr.get("type") == "Relationship"
    ]
    # Every link reaches a static entity of the same network, or another entity of this feed.
    assert targets
    assert all(t in static_ids or t in entities for t in targets), set(targets) - static_ids - set(entities)

    update = entities["urn:ngsi-ld:GtfsTripUpdate:DTA:AB1:20090101"]
    assert update["hasTrip"]["object"] == "urn:ngsi-ld:GtfsTrip:DTA:AB1"
    assert update["hasRoute"]["object"] == "urn:ngsi-ld:GtfsRoute:DTA:AB"
    assert update["startDate"]["value"] == "2009-01-01"
    assert update["startDate"]["observedAt"] == "2009-01-01T09:00:00Z"  # TripUpdate.timestamp 1230800400

    stu = entities["urn:ngsi-ld:GtfsStopTimeUpdate:DTA:AB1:20090101:2"]
    assert stu["hasStopTime"]["object"] == "urn:ngsi-ld:GtfsStopTime:DTA:AB1:2"
    assert stu["hasStop"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:BULLFROG"
    assert stu["hasTripUpdate"]["object"] == update["id"]
    assert stu["arrivalDelay"] == {"type": "Property", "value": 120, "unitCode": "SEC",
                                   "observedAt": "2009-01-01T09:00:00Z"}  # fmt: skip

    vehicle = entities["urn:ngsi-ld:GtfsVehiclePosition:DTA:bus-42"]
    assert vehicle["location"]["value"] == {"type": "Point", "coordinates": [-116.7845, 36.868]}
    assert vehicle["bearing"]["value"] == 90.0 and vehicle["bearing"]["unitCode"] == "DD"
    assert vehicle["currentStatus"]["value"] == "IN_TRANSIT_TO"
    assert vehicle["currentStopSequence"]["value"] == 2

    alert = entities["urn:ngsi-ld:GtfsAlert:DTA:alert-1"]
    assert alert["cause"]["value"] == "CONSTRUCTION" and alert["effect"]["value"] == "DETOUR"
    assert alert["headerText"]["type"] == "LanguageProperty"
    assert alert["headerText"]["languageMap"] == {"en": "Bullfrog stop moved 50 m"}
    assert alert["affectsStop"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:BULLFROG"


def test_every_type_and_attribute_is_a_term_of_the_project_context() -> None:
    entities, _ = translate(SAMPLE)
    terms = set(CONTEXT["@context"])
    for entity in entities.values():
        assert entity["type"] in terms
        assert set(entity) - CORE_TERMS <= terms, set(entity) - CORE_TERMS - terms


def test_network_is_required() -> None:
    with pytest.raises(SourceError, match="--network"):
        list(GtfsRtAdapter().entities(str(SAMPLE)))


@pytest.mark.parametrize("content", [b"", b"not a protobuf at all \xff\xfe", b"\x0a\x02\x08"])
def test_unreadable_feeds_are_source_errors(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(content)
    with pytest.raises(SourceError, match=r"bad\.pb"):
        list(GtfsRtAdapter(network="DTA").entities(str(bad)))


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot be read"):
        list(GtfsRtAdapter(network="DTA").entities(str(tmp_path / "nope.pb")))


def test_bad_parts_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    def build(feed: rt.FeedMessage) -> None:
        empty = feed.entity.add()
        empty.id = "nothing"
        update = feed.entity.add()
        update.id = "tu"
        update.trip_update.trip.trip_id = "AB1"
        update.trip_update.trip.start_date = "2009-13-45"
        update.trip_update.stop_time_update.add().arrival.delay = 5  # neither stop_sequence nor stop_id
        good = update.trip_update.stop_time_update.add()
        good.stop_id = "BULLFROG"
        good.departure.time = 1_700_000_060
        good.departure.uncertainty = 30
        vehicle = feed.entity.add()
        vehicle.id = "vp"
        vehicle.vehicle.position.latitude = 95.0
        vehicle.vehicle.position.longitude = 0.0
        alert = feed.entity.add()
        alert.id = "al"
        alert.alert.informed_entity.add().route_type = 3
        alert.alert.informed_entity.add().direction_id = 1  # selects nothing by itself
        translation = alert.alert.description_text.translation.add()
        translation.text = "no language"
        deleted = feed.entity.add()
        deleted.id = "gone"
        deleted.is_deleted = True

    entities, adapter = translate(write_feed(tmp_path, build))
    reasons = {(r.row, r.field): r.reason for r in adapter.rejections}
    assert reasons[(1, "entity")].startswith("entity 'nothing' has no")
    assert "not a YYYYMMDD date" in reasons[(2, "trip_update.trip.start_date")]
    assert "neither stop_sequence nor stop_id" in reasons[(2, "trip_update.stop_time_update[0]")]
    assert "out of range" in reasons[(3, "vehicle.position")]
    assert "selects no agency, route, trip, stop or route type" in reasons[(4, "alert.informed_entity[1]")]
    assert len(adapter.rejections) == 5
    assert all(r.file == "feed.pb" for r in adapter.rejections)

    update = entities["urn:ngsi-ld:GtfsTripUpdate:DTA:AB1:2009-13-45"]
    assert "startDate" not in update
    assert update["hasTrip"]["observedAt"] == "2023-11-14T22:13:20Z"  # the header's timestamp
    stu = entities["urn:ngsi-ld:GtfsStopTimeUpdate:DTA:AB1:2009-13-45:stop%3ABULLFROG"]
    assert "hasStopTime" not in stu  # no stop_sequence: the static stop time cannot be named
    assert stu["predictedDepartureTime"]["value"] == "2023-11-14T22:14:20Z"
    assert stu["departureUncertainty"]["value"] == 30
    assert "location" not in entities["urn:ngsi-ld:GtfsVehiclePosition:DTA:vp"]
    assert entities["urn:ngsi-ld:GtfsAlert:DTA:al"]["descriptionText"]["languageMap"] == {"@none": "no language"}
    assert entities["urn:ngsi-ld:GtfsAlert:DTA:al"]["affectsRouteType"]["value"] == ["3"]
    from adapters.validate import entity_problems, project_termmap

    assert entity_problems(entities["urn:ngsi-ld:GtfsAlert:DTA:al"], project_termmap()) == []
    assert not any(":gone" in eid for eid in entities)
    assert adapter.notes == ["feed.pb: 1 is_deleted entities not removed (a full feed + --prune does)"]


def test_alert_with_several_stops_links_them_all_once(tmp_path: Path) -> None:
    def build(feed: rt.FeedMessage) -> None:
        alert = feed.entity.add()
        alert.id = "al"
        for stop in ("A", "B", "A"):
            alert.alert.informed_entity.add().stop_id = stop
        selector = alert.alert.informed_entity.add()
        selector.agency_id = "DTA"
        selector.trip.trip_id = "AB1"
        period = alert.alert.active_period.add()
        period.start = 1_700_000_000

    entities, adapter = translate(write_feed(tmp_path, build))
    assert adapter.rejections == []
    alert = entities["urn:ngsi-ld:GtfsAlert:DTA:al"]
    assert alert["affectsStop"]["object"] == ["urn:ngsi-ld:GtfsStop:DTA:A", "urn:ngsi-ld:GtfsStop:DTA:B"]
    assert alert["affectsAgency"]["object"] == "urn:ngsi-ld:GtfsAgency:DTA:DTA"
    assert alert["affectsTrip"]["object"] == "urn:ngsi-ld:GtfsTrip:DTA:AB1"
    assert alert["activePeriod"]["value"] == [{"start": "2023-11-14T22:13:20Z"}]


def test_vehicle_without_descriptor_uses_the_feed_entity_id(tmp_path: Path) -> None:
    def build(feed: rt.FeedMessage) -> None:
        vehicle = feed.entity.add()
        vehicle.id = "vp-9"
        vehicle.vehicle.position.latitude = 36.5
        vehicle.vehicle.position.longitude = -116.5
        vehicle.vehicle.position.speed = 12.3
        vehicle.vehicle.occupancy_percentage = 40

    entities, _ = translate(write_feed(tmp_path, build))
    vehicle = entities["urn:ngsi-ld:GtfsVehiclePosition:DTA:vp-9"]
    assert vehicle["speed"] == {"type": "Property", "value": 12.3, "unitCode": "MTS",
                                "observedAt": "2023-11-14T22:13:20Z"}  # fmt: skip
    assert vehicle["occupancyPercentage"]["unitCode"] == "P1"


def test_follow_reports_failed_rounds_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    args = ["import", "gtfs-rt", str(SAMPLE), "--broker", "http://127.0.0.1:9", "--network", "DTA"]
    assert main([*args, "--follow", "0.01", "--rounds", "2"]) == 1
    err = capsys.readouterr().err
    assert "round 1: failed: cannot talk to the broker" in err
    assert "round 2: failed: cannot talk to the broker" in err
    assert main([*args, "--follow", "0"]) == 2
    assert main([*args[:3], "--dry-run", "--follow", "1"]) == 2


def test_a_vehicle_position_carries_its_personal_data_marks(tmp_path: Path) -> None:
    """The plate is the vehicle's (and its driver's) identifier, the position series its trace (record 0320)."""
    from ontologies.personal_data import personal_in

    def build(feed: rt.FeedMessage) -> None:
        vehicle = feed.entity.add()
        vehicle.id = "vp-1"
        vehicle.vehicle.vehicle.id = "bus-7"
        vehicle.vehicle.vehicle.license_plate = "FR-123-AB"
        vehicle.vehicle.position.latitude = 36.5
        vehicle.vehicle.position.longitude = -116.5

    entities, _ = translate(write_feed(tmp_path, build))
    vehicle = entities["urn:ngsi-ld:GtfsVehiclePosition:DTA:bus-7"]
    assert vehicle["licensePlate"]["value"] == "FR-123-AB"
    terms = CONTEXT["@context"]
    types = [terms[vehicle["type"]]]
    plate, where = personal_in(types, terms["licensePlate"]), personal_in(types, terms["bearing"])
    assert plate is not None and plate.category == "identifier"
    assert where is not None and where.category == "location-trace"
