"""The GTFS static adapter: one entity per row, stable ids, locations, relationships, rejected rows, errors."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError
from adapters.gtfs import GtfsAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gtfs"
GOOGLE = FIXTURES / "google-sample-gtfs.zip"
PYGTFS = FIXTURES / "pygtfs-sample-feed-with-transfers.zip"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())

FILE_TYPES = {
    "agency.txt": ["GtfsAgency"],
    "stops.txt": ["GtfsStop", "GtfsStation", "GtfsAccessPoint"],
    "routes.txt": ["GtfsRoute"],
    "trips.txt": ["GtfsTrip"],
    "stop_times.txt": ["GtfsStopTime"],
    "calendar.txt": ["GtfsCalendarRule"],
    "calendar_dates.txt": ["GtfsCalendarDateRule"],
    "frequencies.txt": ["GtfsFrequency"],
    "transfers.txt": ["GtfsTransferRule"],
    "feed_info.txt": ["GtfsFeedInfo"],
    "fare_attributes.txt": ["GtfsFareClass"],
    "fare_rules.txt": ["GtfsFareRule"],
    "rider_trip.txt": ["GtfsRiderTrip"],
}


def translate(path: Path, **kwargs: Any) -> tuple[list[Entity], GtfsAdapter]:
    adapter = GtfsAdapter(**kwargs)
    return list(adapter.entities(str(path))), adapter


def data_rows(path: Path, name: str) -> int:
    with zipfile.ZipFile(path) as z:
        if name not in z.namelist():
            return 0
        return sum(1 for _ in csv.DictReader(io.TextIOWrapper(z.open(name), encoding="utf-8-sig")))


def feed(tmp_path: Path, changes: dict[str, str | None], base: Path = GOOGLE) -> Path:
    """A copy of ``base`` with files replaced (text) or removed (None)."""
    out = tmp_path / "feed.zip"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name not in changes:
                dst.writestr(name, src.read(name))
        for name, text in changes.items():
            if text is not None:
                dst.writestr(name, text)
    return out


def by_id(entities: list[Entity]) -> dict[str, Entity]:
    return {e["id"]: e for e in entities}


@pytest.mark.parametrize("path", [GOOGLE, PYGTFS], ids=["google", "pygtfs"])
def test_one_entity_per_row_of_each_file(path: Path) -> None:
    entities, adapter = translate(path)
    assert adapter.rejections == []
    counts = Counter(e["type"] for e in entities)
    for name, types in FILE_TYPES.items():
        assert sum(counts[t] for t in types) == data_rows(path, name), name
    assert len(by_id(entities)) == len(entities)  # no two rows share an id
    assert counts["GtfsService"] == 2  # FULLW and WE, from calendar.txt and calendar_dates.txt


def test_ids_are_stable_and_carry_the_network() -> None:
    first, _ = translate(PYGTFS)
    again, _ = translate(PYGTFS)
    assert first == again
    ids = by_id(first)
    assert "urn:ngsi-ld:GtfsStop:DTA:FUR_CREEK_RES" in ids
    assert "urn:ngsi-ld:GtfsStopTime:DTA:STBA:1" in ids
    named, _ = translate(PYGTFS, network="nye county")
    assert "urn:ngsi-ld:GtfsStop:nye%20county:FUR_CREEK_RES" in by_id(named)


def test_stop_location_is_a_lon_lat_point() -> None:
    stop = by_id(translate(GOOGLE)[0])["urn:ngsi-ld:GtfsStop:DTA:FUR_CREEK_RES"]
    assert stop["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [-117.133162, 36.425288]},
    }
    assert stop["name"] == {"type": "Property", "value": "Furnace Creek Resort (Demo)"}
    assert "description" not in stop  # empty columns give no attribute


def test_relationships_between_the_files() -> None:
    ids = by_id(translate(PYGTFS)[0])
    route = ids["urn:ngsi-ld:GtfsRoute:DTA:EXT"]
    assert route["operatedBy"] == {"type": "Relationship", "object": "urn:ngsi-ld:GtfsAgency:DTA:DTA"}
    assert route["routeType"]["value"] == "103"  # extended route types are kept
    trip = ids["urn:ngsi-ld:GtfsTrip:DTA:AB1"]
    assert trip["hasRoute"]["object"] == "urn:ngsi-ld:GtfsRoute:DTA:AB"
    assert trip["hasService"]["object"] == "urn:ngsi-ld:GtfsService:DTA:FULLW"
    assert trip["direction"]["value"] == 0
    stop_time = ids["urn:ngsi-ld:GtfsStopTime:DTA:STBA:2"]
    assert stop_time["hasTrip"]["object"] == "urn:ngsi-ld:GtfsTrip:DTA:STBA"
    assert stop_time["hasStop"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:BEATTY_AIRPORT"
    assert stop_time["stopSequence"]["value"] == 2
    assert stop_time["arrivalTime"]["value"] == "6:20:00"
    calendar = ids["urn:ngsi-ld:GtfsCalendarRule:DTA:WE"]
    assert calendar["saturday"]["value"] is True and calendar["monday"]["value"] is False
    assert calendar["startDate"]["value"] == "2007-01-01"
    exception = ids["urn:ngsi-ld:GtfsCalendarDateRule:DTA:FULLW:2007-06-04"]
    assert exception["exceptionType"]["value"] == "2"
    transfer = ids["urn:ngsi-ld:GtfsTransferRule:DTA:FUR_CREEK_RES:BEATTY_AIRPORT"]
    assert transfer["hasOrigin"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:FUR_CREEK_RES"
    assert transfer["transferType"]["value"] == "0"
    service = ids["urn:ngsi-ld:GtfsService:DTA:FULLW"]
    assert service["operatedBy"]["object"] == "urn:ngsi-ld:GtfsAgency:DTA:DTA"


def test_stations_access_points_and_times_past_midnight(tmp_path: Path) -> None:
    stops = (
        "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,wheelchair_boarding\n"
        "ST,Central,36.9,-116.7,1,,1\n"
        "P1,Central platform 1,36.9001,-116.7001,0,ST,\n"
        "E1,Central entrance,36.9002,-116.7002,2,ST,\n"
        "N1,Central node,,,3,ST,\n"
        "B1,Boarding area,,,4,P1,\n"
    )
    times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nAB1,25:10:00,25:12:00,P1,1\n"
    transfers = "from_stop_id,to_stop_id,transfer_type\nST,P1,2\n"
    ids = by_id(translate(feed(tmp_path, {"stops.txt": stops, "stop_times.txt": times, "transfers.txt": transfers}))[0])
    transfer = ids["urn:ngsi-ld:GtfsTransferRule:DTA:ST:P1"]
    assert transfer["hasOrigin"]["object"] == "urn:ngsi-ld:GtfsStation:DTA:ST"
    assert transfer["hasDestination"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:P1"
    assert ids["urn:ngsi-ld:GtfsStation:DTA:ST"]["wheelChairAccessible"]["value"] == "1"
    assert ids["urn:ngsi-ld:GtfsStop:DTA:P1"]["hasParentStation"]["object"] == "urn:ngsi-ld:GtfsStation:DTA:ST"
    assert ids["urn:ngsi-ld:GtfsAccessPoint:DTA:E1"]["location"]["value"]["coordinates"] == [-116.7002, 36.9002]
    assert "location" not in ids["urn:ngsi-ld:GtfsAccessPoint:DTA:N1"]
    assert ids["urn:ngsi-ld:GtfsAccessPoint:DTA:B1"]["hasParentStation"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:P1"
    assert ids["urn:ngsi-ld:GtfsStopTime:DTA:AB1:1"]["arrivalTime"]["value"] == "25:10:00"


def test_shapes_are_line_strings_ordered_by_sequence(tmp_path: Path) -> None:
    shapes = (
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
        "S1,36.2,-116.2,20,2.0\n"
        "S2,37.0,-117.0,1,\n"
        "S1,36.0,-116.0,1,0\n"
        "S2,37.1,-117.1,2,\n"
        "S1,36.1,-116.1,10,1.5\n"
    )
    entities, adapter = translate(feed(tmp_path, {"shapes.txt": shapes}))
    assert adapter.rejections == []
    shapes_out = {e["id"]: e for e in entities if e["type"] == "GtfsShape"}
    assert len(shapes_out) == 2
    s1 = shapes_out["urn:ngsi-ld:GtfsShape:DTA:S1"]
    assert s1["location"]["value"] == {
        "type": "LineString",
        "coordinates": [[-116.0, 36.0], [-116.1, 36.1], [-116.2, 36.2]],
    }
    assert s1["distanceTravelled"]["value"] == [0.0, 1.5, 2.0]
    assert "distanceTravelled" not in shapes_out["urn:ngsi-ld:GtfsShape:DTA:S2"]


def test_bad_rows_are_reported_with_file_row_and_field(tmp_path: Path) -> None:
    stops = (
        "stop_id,stop_name,stop_lat,stop_lon\n"
        "GOOD,Good,36.9,-116.7\n"
        "BADLAT,Bad latitude,north,-116.7\n"
        "FAR,Too far,36.9,-200\n"
    )
    routes = "route_id,agency_id,route_short_name,route_type,route_sort_order\nR1,DTA,1,3,first\nR2,DTA,2,bus,\n"
    shapes = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nS1,36.0,-116.0,1\nS1,36.1,-116.1,x\n"
    path = feed(tmp_path, {"stops.txt": stops, "routes.txt": routes, "shapes.txt": shapes})
    entities, adapter = translate(path)
    found = {(r.file, r.row, r.field) for r in adapter.rejections}
    assert found == {
        ("stops.txt", 3, "stop_lat"),
        ("stops.txt", 4, "stop_lon"),
        ("routes.txt", 2, "route_sort_order"),
        ("routes.txt", 3, "route_type"),
        ("shapes.txt", 3, "shape_pt_sequence"),
        ("shapes.txt", 2, "shape_pt_sequence"),  # S1 is left with one point
    }
    ids = by_id(entities)
    assert "urn:ngsi-ld:GtfsStop:DTA:GOOD" in ids and "urn:ngsi-ld:GtfsStop:DTA:BADLAT" not in ids
    # A bad optional value leaves the attribute out but keeps the entity; a bad required one drops the row.
    assert "routeSortOrder" not in ids["urn:ngsi-ld:GtfsRoute:DTA:R1"]
    assert "urn:ngsi-ld:GtfsRoute:DTA:R2" not in ids
    assert not any(e["type"] == "GtfsShape" for e in entities)
    assert "not a number: 'north'" in str(adapter.rejections[0])


RIDER_TRIPS = (  # GTFS-ride rider_trip.txt (ODOT, 2018): the Google sample's trips, two riders
    "rider_id,trip_id,boarding_stop_id,alighting_stop_id,boarding_date,boarding_time,alighting_date,alighting_time,"
    "rider_type,fare_paid,fare_method,accompanying_device,transfer_status\n"
    "C-17,AB1,BEATTY_AIRPORT,BULLFROG,20070604,8:00:00,20070604,8:10:00,5,2.5,4,2,0\n"
    "C-17,AB1,BEATTY_AIRPORT,BULLFROG,20070605,8:00:00,,,0,2.5,4,0,0\n"
    "C-99,STBA,STAGECOACH,,,,,,13,-1,4,,1\n"
    ",AB1,,,,,,,,,,,\n"
)


def test_gtfs_ride_rider_trips_carry_the_ticket_holder_and_its_marks(tmp_path: Path) -> None:
    from ontologies.personal_data import personal_in

    entities, adapter = translate(feed(tmp_path, {"rider_trip.txt": RIDER_TRIPS}))
    rides = {e["id"]: e for e in entities if e["type"] == "GtfsRiderTrip"}
    assert sorted(rides) == [
        "urn:ngsi-ld:GtfsRiderTrip:DTA:C-17:AB1:2007-06-04:8%3A00%3A00",
        "urn:ngsi-ld:GtfsRiderTrip:DTA:C-17:AB1:2007-06-05:8%3A00%3A00",  # the same trip the next day
        "urn:ngsi-ld:GtfsRiderTrip:DTA:C-99:STBA",
    ]
    first = rides["urn:ngsi-ld:GtfsRiderTrip:DTA:C-17:AB1:2007-06-04:8%3A00%3A00"]
    assert first["ticketHolder"] == {"type": "Property", "value": "C-17"}
    assert first["hasTrip"]["object"] == "urn:ngsi-ld:GtfsTrip:DTA:AB1"
    assert first["alightingStop"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:BULLFROG"
    assert (first["boardingDate"]["value"], first["alightingTime"]["value"]) == ("2007-06-04", "8:10:00")
    assert (first["riderType"]["value"], first["farePaid"]["value"], first["accompanyingDevice"]["value"]) == (
        "5", 2.5, "2")
    # Bad optional codes leave their attribute out; a row without its rider is refused.
    assert {"riderType", "farePaid"}.isdisjoint(rides["urn:ngsi-ld:GtfsRiderTrip:DTA:C-99:STBA"])
    assert {(r.row, r.field) for r in adapter.rejections} == {(4, "rider_type"), (4, "fare_paid"), (5, "rider_id")}
    # The marks the GDPR layer and the access policies act on (ontologies/personal_data.csv).
    terms = CONTEXT["@context"]
    types = [terms["GtfsRiderTrip"]]
    marks = {name: personal_in(types, terms[name]) for name in ("ticketHolder", "riderType", "boardingStop")}
    assert {name: mark.category for name, mark in marks.items() if mark} == {
        "ticketHolder": "identifier", "riderType": "health", "boardingStop": "location-trace"}  # fmt: skip


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    path = feed(tmp_path, {"stop_times.txt": "trip_id,arrival_time,departure_time,stop_id\nAB1,6:00:00,6:00:00,X\n"})
    with pytest.raises(SourceError, match=r"stop_times\.txt: missing required column stop_sequence"):
        list(GtfsAdapter().entities(str(path)))


def test_missing_required_file_and_broken_zip(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing required file trips\.txt"):
        list(GtfsAdapter().entities(str(feed(tmp_path, {"trips.txt": None}))))
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(GOOGLE.read_bytes()[:1000])
    with pytest.raises(SourceError, match="not a readable GTFS zip"):
        list(GtfsAdapter().entities(str(truncated)))


def test_every_emitted_term_is_in_the_project_context(tmp_path: Path) -> None:
    shapes = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\nS1,36.0,-116.0,1\nS1,36.1,-116.1,2\n"
    entities = translate(PYGTFS)[0] + translate(feed(tmp_path, {"shapes.txt": shapes}))[0]
    terms = CONTEXT["@context"]
    for entity in entities:
        assert entity["type"] in terms
        for name in entity:
            assert name in ("id", "type", "location") or name in terms, name


def test_a_large_feed_streams_in_bounded_memory(tmp_path: Path) -> None:
    trips = 1_000
    stop_times = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "".join(
        f"T{t},{6 + s}:00:00,{6 + s}:01:00,STAGECOACH,{s}\n" for t in range(trips) for s in range(10)
    )
    shapes = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n" + "".join(
        f"S{p % 50},36.{p},-116.{p},{p}\n"
        for p in range(5_000)  # shapes interleaved: rows not grouped
    )
    path = feed(tmp_path, {"stop_times.txt": stop_times, "shapes.txt": shapes})
    adapter = GtfsAdapter()
    tracemalloc.start()
    try:
        counts = Counter(e["type"] for e in adapter.entities(str(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts["GtfsStopTime"] == trips * 10 and counts["GtfsShape"] == 50
    assert adapter.rejections == []
    assert peak < 4_000_000, peak  # holding the 10,000 stop time entities alone would take far more
