"""GTFS translations (LanguageProperty), levels, pathways and time zones; every such entity conforms."""

from __future__ import annotations

import zipfile
from pathlib import Path

from adapters.base import Entity
from adapters.gtfs import GtfsAdapter, language_tag
from adapters.validate import entity_problems, project_termmap

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gtfs"
GOOGLE = FIXTURES / "google-sample-gtfs.zip"
PYGTFS = FIXTURES / "pygtfs-sample-feed-with-transfers.zip"

STATION_STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,level_id,stop_timezone\n"
    "ST,Central,36.9,-116.7,1,,,America/Los_Angeles\n"
    "P1,Platform 1,36.9001,-116.7001,0,ST,L-1,\n"
    "E1,Main entrance,36.9002,-116.7002,2,ST,L0,Mars/Olympus\n"
    "BEATTY_AIRPORT,Nye County Airport (Demo),36.868446,-116.784582,,,,\n"
)
LEVELS = "level_id,level_index,level_name\nL0,0,Street\nL-1,-1,Platforms\nLX,down,Bad\n"
PATHWAYS = (
    "pathway_id,from_stop_id,to_stop_id,pathway_mode,is_bidirectional,length,traversal_time,stair_count,"
    "signposted_as\n"
    "PW1,E1,P1,2,1,12.5,30,-24,To the trains\n"
    "PW2,P1,E1,4,0,-3,20,,\n"
    "PW3,E1,P1,9,1,,,,\n"
)
TRANSLATIONS = (
    "table_name,field_name,language,translation,record_id,record_sub_id,field_value\n"
    "stops,stop_name,fr,Plateforme 1,P1,,\n"
    "stops,stop_name,DE,Bahnsteig 1,P1,,\n"
    "routes,route_long_name,es,Aeropuerto - Bullfrog,,,Airport - Bullfrog\n"
    "stop_times,stop_headsign,fr,Vers l'aéroport,STBA,1,\n"
    "pathways,signposted_as,fr,Vers les trains,PW1,,\n"
    "feed_info,feed_publisher_name,fr,Agence de démonstration,,,\n"
    "nowhere,stop_name,fr,X,P1,,\n"
    "stops,stop_name,fr,Y,,,\n"
)
FEED_INFO = "feed_publisher_name,feed_publisher_url,feed_lang\nDemo publisher,http://example.org,en\n"
STOP_TIMES = (
    "trip_id,arrival_time,departure_time,stop_id,stop_sequence,stop_headsign\n"
    "STBA,6:00:00,6:00:00,P1,1,To the airport\n"
)


def feed(tmp_path: Path, changes: dict[str, str | None]) -> Path:
    out = tmp_path / "feed.zip"
    with zipfile.ZipFile(GOOGLE) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name not in changes:
                dst.writestr(name, src.read(name))
        for name, text in changes.items():
            if text is not None:
                dst.writestr(name, text)
    return out


def translate(path: Path) -> tuple[dict[str, Entity], GtfsAdapter]:
    adapter = GtfsAdapter()
    return {e["id"]: e for e in adapter.entities(str(path))}, adapter


def station_feed(tmp_path: Path) -> Path:
    return feed(tmp_path, {"stops.txt": STATION_STOPS, "levels.txt": LEVELS, "pathways.txt": PATHWAYS,
                           "translations.txt": TRANSLATIONS, "feed_info.txt": FEED_INFO, "stop_times.txt": STOP_TIMES})


def test_language_tags() -> None:
    assert [language_tag(t) for t in ("EN", "pt-br", "zh-Hant-tw", " he ")] == ["en", "pt-BR", "zh-Hant-TW", "he"]


def test_translations_become_language_properties(tmp_path: Path) -> None:
    entities, adapter = translate(station_feed(tmp_path))
    assert entities["urn:ngsi-ld:GtfsStop:DTA:P1"]["name"] == {
        "type": "LanguageProperty", "languageMap": {"en": "Platform 1", "fr": "Plateforme 1", "de": "Bahnsteig 1"}
    }  # fmt: skip
    assert entities["urn:ngsi-ld:GtfsStop:DTA:BEATTY_AIRPORT"]["name"]["type"] == "Property"
    route = entities["urn:ngsi-ld:GtfsRoute:DTA:AB"]  # matched by field_value
    assert route["name"]["languageMap"] == {"en": "Airport - Bullfrog", "es": "Aeropuerto - Bullfrog"}
    headsign = entities["urn:ngsi-ld:GtfsStopTime:DTA:STBA:1"]["stopHeadsign"]  # record_id + record_sub_id
    assert headsign["languageMap"] == {"en": "To the airport", "fr": "Vers l'aéroport"}
    feed_info = next(e for e in entities.values() if e["type"] == "GtfsFeedInfo")
    assert feed_info["name"]["languageMap"]["fr"] == "Agence de démonstration"
    pathway = entities["urn:ngsi-ld:GtfsPathway:DTA:PW1"]
    assert pathway["signpostedAs"]["languageMap"] == {"en": "To the trains", "fr": "Vers les trains"}
    reasons = {(r.file, r.row, r.field): r.reason for r in adapter.rejections}
    assert "not a table with translatable fields: 'nowhere'" in reasons[("translations.txt", 8, "table_name")]
    assert "neither record_id nor field_value" in reasons[("translations.txt", 9, "record_id")]


def test_the_older_translation_format_without_a_feed_language() -> None:
    entities, adapter = translate(PYGTFS)
    assert adapter.rejections == []
    name = entities["urn:ngsi-ld:GtfsStop:DTA:FUR_CREEK_RES"]["name"]
    assert name["type"] == "LanguageProperty"
    assert name["languageMap"]["@none"] == "Furnace Creek Resort (Demo)"  # the feed does not say its language
    assert name["languageMap"]["he"] == "אתר הנופש ערוץ הכבשן (דמו)"
    assert name["languageMap"]["en"] == "Furnace Creek Resort (Demo)"


def test_levels_pathways_and_time_zones(tmp_path: Path) -> None:
    entities, adapter = translate(station_feed(tmp_path))
    assert entities["urn:ngsi-ld:GtfsLevel:DTA:L-1"]["levelIndex"]["value"] == -1.0
    assert "urn:ngsi-ld:GtfsLevel:DTA:LX" not in entities
    assert entities["urn:ngsi-ld:GtfsStop:DTA:P1"]["hasLevel"]["object"] == "urn:ngsi-ld:GtfsLevel:DTA:L-1"
    pw1 = entities["urn:ngsi-ld:GtfsPathway:DTA:PW1"]
    assert pw1["hasOrigin"]["object"] == "urn:ngsi-ld:GtfsAccessPoint:DTA:E1"
    assert pw1["hasDestination"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:P1"
    assert pw1["pathwayMode"]["value"] == "2" and pw1["isBidirectional"]["value"] is True
    assert pw1["length"] == {"type": "Property", "value": 12.5, "unitCode": "MTR"}
    assert pw1["traversalTime"] == {"type": "Property", "value": 30, "unitCode": "SEC"}
    assert pw1["stairCount"]["value"] == -24
    assert "length" not in entities["urn:ngsi-ld:GtfsPathway:DTA:PW2"]  # negative: reported, left out
    assert "urn:ngsi-ld:GtfsPathway:DTA:PW3" not in entities
    assert entities["urn:ngsi-ld:GtfsStation:DTA:ST"]["timezone"]["value"] == "America/Los_Angeles"
    assert "timezone" not in entities["urn:ngsi-ld:GtfsAccessPoint:DTA:E1"]
    reasons = {(r.file, r.row, r.field): r.reason for r in adapter.rejections}
    assert "not a number" in reasons[("levels.txt", 4, "level_index")]
    assert "negative: -3.0" in reasons[("pathways.txt", 3, "length")]
    assert "not one of 1-7: '9'" in reasons[("pathways.txt", 4, "pathway_mode")]
    assert "not an IANA time zone: 'Mars/Olympus'; attribute left out" in reasons[("stops.txt", 4, "stop_timezone")]


def test_an_agency_with_an_unknown_time_zone_is_rejected(tmp_path: Path) -> None:
    agency = "agency_id,agency_name,agency_url,agency_timezone\nDTA,Demo,http://example.org,America/Nowhere\n"
    entities, adapter = translate(feed(tmp_path, {"agency.txt": agency}))
    assert not any(e["type"] == "GtfsAgency" for e in entities.values())
    assert [str(r) for r in adapter.rejections] == [
        "agency.txt row 2 field agency_timezone: not an IANA time zone: 'America/Nowhere'"
    ]


def test_every_new_entity_conforms(tmp_path: Path) -> None:
    entities, _ = translate(station_feed(tmp_path))
    pygtfs, _ = translate(PYGTFS)
    project = project_termmap()
    problems = {eid: p for eid, e in [*entities.items(), *pygtfs.items()] if (p := entity_problems(e, project))}
    assert problems == {}
    assert {"GtfsLevel", "GtfsPathway"} <= {e["type"] for e in entities.values()}


def test_fares(tmp_path: Path) -> None:
    attributes = (
        "fare_id,price,currency_type,payment_method,transfers,agency_id,transfer_duration\n"
        "p,1.25,USD,0,,DTA,3600\nx,-1,USD,0,0,,\ny,2,usd,0,0,,\nz,2,EUR,3,5,,\n"
    )
    rules = "fare_id,route_id,origin_id,destination_id,contains_id\np,AB,,,\np,,Z1,Z2,\np,AB,Z1,,\n,AB,,,\n"
    entities, adapter = translate(feed(tmp_path, {"fare_attributes.txt": attributes, "fare_rules.txt": rules}))
    fare = entities["urn:ngsi-ld:GtfsFareClass:DTA:p"]
    assert fare["price"]["value"] == 1.25 and fare["priceCurrency"]["value"] == "USD"
    assert "transfers" not in fare  # empty: unlimited transfers
    assert fare["transferDuration"] == {"type": "Property", "value": 3600, "unitCode": "SEC"}
    assert fare["operatedBy"]["object"] == "urn:ngsi-ld:GtfsAgency:DTA:DTA"
    assert sorted(e for e in entities if e.startswith("urn:ngsi-ld:GtfsFareRule:")) == [
        "urn:ngsi-ld:GtfsFareRule:DTA:p::Z1:Z2",
        "urn:ngsi-ld:GtfsFareRule:DTA:p:AB",
        "urn:ngsi-ld:GtfsFareRule:DTA:p:AB:Z1",
    ]
    zones = entities["urn:ngsi-ld:GtfsFareRule:DTA:p::Z1:Z2"]
    assert zones["originZone"]["value"] == "Z1" and zones["destinationZone"]["value"] == "Z2"
    assert zones["hasFareClass"]["object"] == "urn:ngsi-ld:GtfsFareClass:DTA:p" and "hasRoute" not in zones
    assert [(r.file, r.row, r.field, r.reason) for r in adapter.rejections] == [
        ("fare_attributes.txt", 3, "price", "negative: -1.0"),
        ("fare_attributes.txt", 4, "currency_type", "not an ISO 4217 code: 'usd'"),
        ("fare_attributes.txt", 5, "payment_method", "not 0 or 1: '3'"),
        ("fare_attributes.txt", 5, "transfers", "not 0, 1, 2 or empty: '5'"),
        ("fare_rules.txt", 5, "fare_id", "required value is empty"),
    ]
    project = project_termmap()
    assert [p for e in entities.values() if "Fare" in e["type"] for p in entity_problems(e, project)] == []


def test_files_without_a_mapping_are_named_not_dropped_silently(tmp_path: Path, capsys: object) -> None:
    from broker.cli import main

    attributions = "attribution_id,organization_name,is_producer\nA1,Demo,1\nA2,Other,0\n"
    path = feed(tmp_path, {"attributions.txt": attributions, "fare_media.txt": "fare_media_id,fare_media_type\n"})
    _, adapter = translate(path)
    assert adapter.notes == [
        "attributions.txt: 2 rows not translated (no mapping in the project vocabulary yet)",
        "fare_media.txt: 0 rows not translated (no mapping in the project vocabulary yet)",
    ]
    assert translate(GOOGLE)[1].notes == [
        "attributions.txt: 1 row not translated (no mapping in the project vocabulary yet)"
    ]
    assert translate(PYGTFS)[1].notes == [  # columns no mapping reads are named too, once per file
        "agency.txt: columns not translated: nonexistent_column",
        "feed_info.txt: columns not translated: url_lang",
    ]
    assert main(["import", "gtfs", str(path), "--dry-run"]) == 0
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "note: attributions.txt: 2 rows not translated" in err
