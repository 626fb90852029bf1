"""The EPANET adapter: one entity per object, stable ids, links to end nodes, units, CRS, errors naming the line."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError
from adapters.water.epanet import EpanetAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "water"
NET1 = FIXTURES / "Net1.inp"
NET3 = FIXTURES / "Net3.inp"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
CORE_TERMS = {"id", "type", "location"}
SECTION_TYPES = {"JUNCTIONS": "Junction", "RESERVOIRS": "Reservoir", "TANKS": "Tank", "PIPES": "Pipe",
                 "PUMPS": "Pump", "VALVES": "Valve"}  # fmt: skip


def translate(path: Path | str, **kwargs: Any) -> tuple[list[Entity], EpanetAdapter]:
    adapter = EpanetAdapter(**kwargs)
    return list(adapter.entities(str(path))), adapter


def section_counts(path: Path) -> Counter[str]:
    """Data lines per object section, and distinct ids in [PATTERNS] and [CURVES]: counted from the text alone."""
    counts: Counter[str] = Counter()
    ids: dict[str, set[str]] = {"Pattern": set(), "Curve": set()}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.split(";")[0].strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and section in SECTION_TYPES:
            counts[SECTION_TYPES[section]] += 1
        elif line and section in ("PATTERNS", "CURVES"):
            ids["Pattern" if section == "PATTERNS" else "Curve"].add(line.split()[0])
    counts.update({kind: len(found) for kind, found in ids.items() if found})
    counts["WaterNetwork"] = 1
    return counts


def by_id(entities: list[Entity]) -> dict[str, Entity]:
    return {e["id"]: e for e in entities}


@pytest.mark.parametrize("path", [NET1, NET3], ids=["Net1", "Net3"])
def test_one_entity_per_object(path: Path) -> None:
    entities, adapter = translate(path)
    assert Counter(e["type"] for e in entities) == section_counts(path)
    assert adapter.rejections == []
    assert len(by_id(entities)) == len(entities)


def test_counts_of_the_samples() -> None:
    assert section_counts(NET1) == Counter({"Junction": 9, "Reservoir": 1, "Tank": 1, "Pipe": 12, "Pump": 1,
                                            "Pattern": 1, "Curve": 1, "WaterNetwork": 1})  # fmt: skip
    assert section_counts(NET3)["Pipe"] == 117 and section_counts(NET3)["Junction"] == 92


def test_ids_are_stable_and_carry_the_network() -> None:
    first, _ = translate(NET1)
    second, _ = translate(NET1)
    assert [e["id"] for e in first] == [e["id"] for e in second]
    ids = by_id(first)
    assert "urn:ngsi-ld:Junction:Net1:10" in ids and "urn:ngsi-ld:Pipe:Net1:10" in ids  # same native id, two types
    assert "urn:ngsi-ld:WaterNetwork:Net1" in ids
    renamed, _ = translate(NET1, network="city-water")
    assert renamed[1]["id"].startswith("urn:ngsi-ld:Junction:city-water:")


@pytest.mark.parametrize("path", [NET1, NET3], ids=["Net1", "Net3"])
def test_relationships_resolve_to_emitted_entities(path: Path) -> None:
    entities, _ = translate(path)
    ids = by_id(entities)
    targets = [(e["id"], name, a["object"]) for e in entities for name, a in e.items()
               if isinstance(a, dict) and a.get("type") == "Relationship"]  # fmt: skip
    assert targets
    assert [t for t in targets if t[2] not in ids] == []
    pipes = [e for e in entities if e["type"] in ("Pipe", "Pump", "Valve")]
    assert all("startsAt" in p and "endsAt" in p for p in pipes)


def test_links_point_at_the_right_node_types() -> None:
    ids = by_id(translate(NET1)[0])
    pipe_110 = ids["urn:ngsi-ld:Pipe:Net1:110"]  # tank 2 -> junction 12
    assert pipe_110["startsAt"]["object"] == "urn:ngsi-ld:Tank:Net1:2"
    assert pipe_110["endsAt"]["object"] == "urn:ngsi-ld:Junction:Net1:12"
    pump = ids["urn:ngsi-ld:Pump:Net1:9"]  # reservoir 9 -> junction 10, curve 1
    assert pump["startsAt"]["object"] == "urn:ngsi-ld:Reservoir:Net1:9"
    assert pump["headCurve"]["object"] == "urn:ngsi-ld:Curve:Net1:1"
    assert ids["urn:ngsi-ld:WaterNetwork:Net1"]["demandPattern"]["object"] == "urn:ngsi-ld:Pattern:Net1:1"


def test_us_units_become_canonical_si() -> None:
    ids = by_id(translate(NET1)[0])
    junction = ids["urn:ngsi-ld:Junction:Net1:11"]
    assert junction["elevation"] == {"type": "Property", "value": pytest.approx(216.408), "unitCode": "MTR"}
    assert junction["baseDemand"]["unitCode"] == "G51"
    assert junction["baseDemand"]["value"] == pytest.approx(150 * 0.0630901964)  # 150 gpm in L/s
    assert junction["initialQuality"] == {"type": "Property", "value": 0.5, "unitCode": "M1"}
    pipe = ids["urn:ngsi-ld:Pipe:Net1:10"]
    assert pipe["diameter"]["value"] == pytest.approx(18 * 0.0254) and pipe["diameter"]["unitCode"] == "MTR"
    assert pipe["length"]["value"] == pytest.approx(10530 * 0.3048)
    assert pipe["roughness"] == {"type": "Property", "value": 100.0}  # Hazen-Williams C: no unit
    curve = ids["urn:ngsi-ld:Curve:Net1:1"]
    assert curve["curveType"]["value"] == "PUMP"
    assert curve["xData"]["unitCode"] == "G51" and curve["yData"]["value"] == [pytest.approx(250 * 0.3048)]
    pattern = ids["urn:ngsi-ld:Pattern:Net1:1"]
    assert pattern["multipliers"]["value"] == [1.0, 1.2, 1.4, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.6, 0.8]
    assert pattern["timeStep"] == {"type": "Property", "value": 7200.0, "unitCode": "SEC"}


def test_status_section_overrides_the_initial_status() -> None:
    ids = by_id(translate(NET3)[0])
    assert ids["urn:ngsi-ld:Pump:Net3:10"]["initialStatus"]["value"] == "CLOSED"
    assert ids["urn:ngsi-ld:Pipe:Net3:330"]["initialStatus"]["value"] == "CLOSED"
    assert ids["urn:ngsi-ld:Pump:Net3:335"]["initialStatus"]["value"] == "OPEN"


def test_every_term_is_in_the_project_context() -> None:
    terms = CONTEXT["@context"]
    for path in (NET1, NET3):
        for e in translate(path, crs="EPSG:3857")[0]:
            assert e["type"] in terms
            assert [name for name in e if name not in terms and name not in CORE_TERMS] == []


def test_no_location_without_a_crs() -> None:
    entities, _ = translate(NET3)
    assert not any("location" in e for e in entities)


def test_a_crs_gives_wgs84_points_and_line_strings() -> None:
    # A local transverse Mercator frame in feet centred near Freiburg: the drawing units of Net3 as feet.
    crs = "+proj=tmerc +lat_0=48.0 +lon_0=7.85 +k=1 +x_0=0 +y_0=0 +units=us-ft"
    entities, adapter = translate(f"{NET3}?crs={crs.replace('+', '%2B').replace(' ', '%20')}")
    assert adapter.rejections == []
    ids = by_id(entities)
    junction = ids["urn:ngsi-ld:Junction:Net3:10"]["location"]["value"]
    assert junction["type"] == "Point"
    lon, lat = junction["coordinates"]
    assert 7.84 < lon < 7.86 and 47.99 < lat < 48.01
    pipes = [e for e in entities if e["type"] == "Pipe"]
    assert all(p["location"]["value"]["type"] == "LineString" for p in pipes)
    pipe = ids["urn:ngsi-ld:Pipe:Net3:329"]  # 61 -> 123
    start = ids[pipe["startsAt"]["object"]]["location"]["value"]["coordinates"]
    assert pipe["location"]["value"]["coordinates"][0] == start
    for e in entities:
        if "location" in e and e["location"]["value"]["type"] == "Point":
            lon, lat = e["location"]["value"]["coordinates"]
            assert -180 <= lon <= 180 and -90 <= lat <= 90


def test_crs_given_to_the_constructor_and_to_the_source_agree() -> None:
    by_arg = translate(NET1, crs="EPSG:3857")[0]
    by_source = translate(f"{NET1}?crs=EPSG:3857")[0]
    assert by_arg == by_source
    assert by_arg[1]["location"]["value"]["type"] == "Point"


def test_unknown_crs_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="crs 'EPSG:999999'"):
        translate(NET1, crs="EPSG:999999")


SI_NET = """[TITLE]
SI test
[JUNCTIONS]
 J1  100  2.5  P1
 J2  95
 J3  90
[RESERVOIRS]
 R1  150
[PIPES]
 P1  R1  J1  1000  300  0.1  0  Open
 P2  J1  J2  500   200  0.1  0  Open
 P3  J1  J3  500   200  0.1  0  Open
[VALVES]
 V1  J1  J3  150  PRV  30  0
 V2  J1  J3  150  TCV  30  0
[PATTERNS]
 P1  1.0  2.0
[OPTIONS]
 Units  LPS
 Headloss  D-W
[TIMES]
 Pattern Timestep  0:30
[END]
"""


def test_si_units(tmp_path: Path) -> None:
    source = tmp_path / "si.inp"
    source.write_text(SI_NET)
    entities, adapter = translate(source)
    assert adapter.rejections == []
    ids = by_id(entities)
    assert ids["urn:ngsi-ld:Junction:si:J1"]["baseDemand"] == {"type": "Property", "value": 2.5, "unitCode": "G51"}
    assert ids["urn:ngsi-ld:Junction:si:J1"]["demandPattern"]["object"] == "urn:ngsi-ld:Pattern:si:P1"
    pipe = ids["urn:ngsi-ld:Pipe:si:P1"]
    assert pipe["diameter"]["value"] == pytest.approx(0.3) and pipe["length"]["value"] == 1000.0
    assert pipe["roughness"] == {"type": "Property", "value": pytest.approx(0.0001), "unitCode": "MTR"}
    valve = ids["urn:ngsi-ld:Valve:si:V1"]
    assert valve["setting"] == {"type": "Property", "value": pytest.approx(30 * 9.80665), "unitCode": "KPA"}
    assert ids["urn:ngsi-ld:Pattern:si:P1"]["timeStep"]["value"] == 1800.0


def refusal(tmp_path: Path, text: str, name: str = "bad.inp") -> list[str]:
    """The error lines of a refused file (SourceError), after checking nothing was yielded."""
    source = tmp_path / name
    source.write_text(text)
    adapter = EpanetAdapter()
    stream = adapter.entities(str(source))
    with pytest.raises(SourceError) as caught:
        next(stream)
    head, *lines = str(caught.value).splitlines()
    assert head == f"{name}: {len(adapter.rejections)} error(s), nothing imported"
    return [line.strip() for line in lines]


def test_malformed_lines_refuse_the_whole_file(tmp_path: Path) -> None:
    broken = SI_NET.replace(" J2  95\n", " J2  95   abc\n").replace("P2  J1  J2", "P2  J1  J9")
    broken = broken.replace("P3  J1  J3  500   200", "P3  J1  J3  500   xyz")
    broken = broken.replace("V2  J1  J3  150  TCV", "V2  J1  J3  150  XXV")
    assert refusal(tmp_path, broken, "si.inp") == [
        "si.inp line 5 field Demand: not a number: 'abc'",
        "si.inp line 11 field Node2: unknown node 'J9'",
        "si.inp line 12 field Diameter: not a number: 'xyz'",
        "si.inp line 15 field Type: 'XXV' is not one of PRV, PSV, PBV, FCV, TCV, GPV, PCV",
    ]


def test_an_unknown_section_is_refused_with_its_line(tmp_path: Path) -> None:
    text = (FIXTURES / "Net1.inp").read_text().replace("[END]", "[FOO]\n 1 2 3\n[END]")
    assert refusal(tmp_path, text, "net1-foo.inp") == ["net1-foo.inp line 178 field section: unknown section [FOO]"]


# One malformed line per section: (section, line, expected "field: reason")
MALFORMED = [
    ("JUNCTIONS", " J4  90  1  P1  extra", "field 5: unexpected value 'extra'"),
    ("JUNCTIONS", " J4", "Elev: required value is missing"),
    ("RESERVOIRS", " R2  abc", "Head: not a number: 'abc'"),
    ("TANKS", " T1  10  2  1  5", "Diameter: required value is missing"),
    ("TANKS", " T1  10  2  1  5  20  0  NOCURVE", "VolCurve: unknown curve 'NOCURVE'"),
    ("PIPES", " P9  J1  J3  100  200  0.1  0  HALFOPEN", "Status: 'HALFOPEN' is not one of OPEN, CLOSED, CV"),
    ("PUMPS", " U1  R1  J1  POWER 5 HEAD", "HEAD: a pump parameter keyword needs its value"),
    ("PUMPS", " U1  R1  J1  POWER 5 COLOR red", "Parameters: 'COLOR' is not one of HEAD, POWER, SPEED, PATTERN"),
    ("PUMPS", " U1  R1  J1  SPEED 1", "Parameters: a pump needs HEAD curve or POWER"),
    ("VALVES", " V9  J1  J3  150  GPV  NOCURVE", "Setting: unknown curve 'NOCURVE'"),
    ("TAGS", " NODE  J9  Zone1", "ID: unknown node 'J9'"),
    ("TAGS", " AREA  J1  Zone1", "Object: 'AREA' is not one of NODE, LINK"),
    ("DEMANDS", " R1  3.0", "Junction: unknown junction 'R1'"),
    ("DEMANDS", " J1  3.0  P7", "Pattern: unknown pattern 'P7'"),
    ("STATUS", " P1  HALF", "Status/Setting: not OPEN, CLOSED, ACTIVE or a number: 'HALF'"),
    ("STATUS", " J1  OPEN", "ID: unknown link 'J1'"),
    ("PATTERNS", " P1  1.0  x", "multiplier 2: not a number: 'x'"),
    ("CURVES", " C1  1.0", "Y-Value: required value is missing"),
    ("CONTROLS", " LINK P1 OPEN IF NODE J1 NEAR 3", "Condition: IF NODE id ABOVE|BELOW value"),
    ("CONTROLS", " LINK P7 OPEN AT TIME 3", "Link: unknown link 'P7'"),
    ("CONTROLS", " LINK P1 OPEN AT CLOCKTIME 25 PM", "Time: not a time: '25 PM'"),
    ("RULES", "RULE 1\nIF TANK J1 LEVEL ABOVE 3\nTHEN PIPE P1 STATUS IS OPEN", "ID: unknown tank 'J1'"),
    ("RULES", "RULE 1\nTHEN PIPE P1 STATUS IS OPEN", "THEN: out of order (IF, then THEN, then ELSE)"),
    ("RULES", "RULE 1\nIF SYSTEM TIME > 3\nTHEN PIPE P1 STATUS IS HALF", "Value: not OPEN, CLOSED or ACTIVE: 'HALF'"),
    ("ENERGY", " PUMP P1 PRICE 0.1", "Pump: unknown pump 'P1'"),
    ("ENERGY", " GLOBAL COST 3", "Keyword: 'COST' is not PRICE, PATTERN or EFFICIENCY"),
    ("EMITTERS", " J1  x", "Coefficient: not a number: 'x'"),
    ("QUALITY", " J9  1.0", "Node: unknown node 'J9'"),
    ("SOURCES", " J1  DOSE  1.0", "Type: 'DOSE' is not one of CONCEN, MASS, FLOWPACED, SETPOINT"),
    ("SOURCES", " J1  MASS  x", "Quality: not a number: 'x'"),
    ("REACTIONS", " ORDER PIPE 1", "Order: needs BULK/WALL/TANK and a number"),
    ("REACTIONS", " BULK P7 -0.5", "Pipe/Tank: unknown pipe 'P7'"),
    (
        "REACTIONS",
        " DECAY 1",
        "Type: 'DECAY' is not ORDER, GLOBAL, BULK, WALL, TANK, LIMITING POTENTIAL or ROUGHNESS CORRELATION",
    ),
    ("MIXING", " J1  MIXED", "Tank: unknown tank 'J1'"),
    ("TIMES", " Duration  soon", "Duration: not a time: 'soon'"),
    ("TIMES", " Lunch  12:00", "Time: unknown time option 'Lunch'"),
    ("REPORT", " Colours  Yes", "Keyword: unknown report option 'Colours'"),
    ("REPORT", " Nodes  J1  J9", "Nodes: unknown node 'J9'"),
    ("OPTIONS", " Units  GALLONS", "Units: 'GALLONS' is not one of CFS, GPM, MGD, IMGD, AFD, LPS, LPM, MLD, CMH, CMD"),
    ("OPTIONS", " Trials  many", "Trials: not a number: 'many'"),
    ("OPTIONS", " Colour  blue", "Option: unknown option 'Colour'"),
    ("OPTIONS", " Quality  Chlorine  g/m3", "Quality: the unit is mg/L or ug/L, not 'g/m3'"),
    ("COORDINATES", " J1  1.0", "Y-Coord: required value is missing"),
    ("VERTICES", " P7  1.0  2.0", "Link: unknown link 'P7'"),
    ("LABELS", ' 1.0  2.0  "Main street"  J9', "Anchor: unknown node 'J9'"),
    ("BACKDROP", " DIMENSIONS 0 0 100", "DIMENSIONS: needs 4 numbers: '0 0 100'"),
]


@pytest.mark.parametrize(("section", "text", "expected"), MALFORMED, ids=[f"{s}-{i}" for i, (s, _, _) in
                                                                          enumerate(MALFORMED)])  # fmt: skip
def test_every_section_checks_its_fields(tmp_path: Path, section: str, text: str, expected: str) -> None:
    body = SI_NET.replace("[END]", f"[{section}]\n{text}\n[END]")
    first = SI_NET.splitlines().index("[END]") + 2  # the line after the appended section header
    errors = refusal(tmp_path, body)
    assert len(errors) == 1, errors
    match = re.match(r"bad\.inp line (\d+) field (.*)$", errors[0])
    assert match is not None and match.group(2) == expected
    assert first <= int(match.group(1)) < first + text.count("\n") + 1


def test_a_refused_file_reaches_no_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`agora import` reads the file before it talks to the broker: the unreachable URL is never tried."""
    from broker.cli import main

    source = tmp_path / "bad.inp"
    source.write_text(SI_NET.replace("[END]", "[FOO]\n[END]"))
    assert main(["import", "epanet", str(source), "--broker", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err == ("agora import: bad.inp: 1 error(s), nothing imported\n"
                                       "  bad.inp line 23 field section: unknown section [FOO]\n")  # fmt: skip


def test_not_an_inp_file_is_a_source_error(tmp_path: Path) -> None:
    source = tmp_path / "notes.inp"
    source.write_text("hello\n[FOO]\n 1 2 3\n")
    with pytest.raises(SourceError, match=r"notes\.inp: no \[JUNCTIONS\]"):
        translate(source)
    with pytest.raises(SourceError, match=r"missing\.inp"):
        translate(tmp_path / "missing.inp")


def test_every_entity_passes_the_project_checks() -> None:
    """JSON Schema of its type, NGSI-LD structure, @context terms, unit codes, WGS84 (agora validate, 0038)."""
    from adapters.validate import entity_problems, project_termmap, schema_errors

    termmap = project_termmap()
    for path in (NET1, NET3):
        for e in translate(path, crs="EPSG:3857")[0]:
            assert entity_problems(e, termmap) == [], e["id"]
    pipe = by_id(translate(NET1)[0])["urn:ngsi-ld:Pipe:Net1:10"]
    broken = {**pipe, "diameter": {"type": "Property", "value": -1.0}, "endsAt": {"type": "Relationship",
              "object": "urn:ngsi-ld:Pattern:Net1:1"}}  # fmt: skip
    assert len(schema_errors(broken)) == 2


def test_coordinates_outside_the_crs_refuse_the_file(tmp_path: Path) -> None:
    text = SI_NET.replace("[END]", "[COORDINATES]\n J1  400000  5300000\n J3  1e12  1e12\n[END]")
    source = tmp_path / "far.inp"
    source.write_text(text)
    with pytest.raises(SourceError, match=r"far\.inp line 25 field X-Coord: node 'J3' is not a WGS84 position under "
                       "the given crs"):  # fmt: skip
        translate(source, crs="EPSG:32632")  # UTM 32N: J3 is off the earth


def test_controls_are_structured_and_rules_kept_clause_by_clause(tmp_path: Path) -> None:
    network = translate(NET1)[0][0]
    first = network["operationalControl"]["value"][0]
    assert first == {"controlledLink": "urn:ngsi-ld:Pump:Net1:9", "controlType": "LOWLEVEL", "status": "OPEN",
                     "monitoredNode": "urn:ngsi-ld:Tank:Net1:2", "triggerLevel": pytest.approx(110 * 0.3048),
                     "triggerLevelUnitCode": "MTR", "statement": "LINK 9 OPEN IF NODE 2 BELOW 110"}  # fmt: skip
    source = tmp_path / "rules.inp"
    rules = (
        "[RULES]\nRULE 1\nIF TANK T1 LEVEL ABOVE 5\nAND SYSTEM CLOCKTIME >= 7 AM\nTHEN PIPE P1 STATUS IS CLOSED\n"
        "ELSE PIPE P1 STATUS IS OPEN\nPRIORITY 2\n[CONTROLS]\n LINK V1 20 AT CLOCKTIME 6 PM\n"
    )
    tank = "[TANKS]\n T1  10  2  1  5  20\n"
    source.write_text(SI_NET.replace("[END]", rules + tank + "[END]"))
    network = translate(source)[0][0]
    assert network["controlRule"]["value"] == [{
        "ruleId": "1", "premises": ["IF TANK T1 LEVEL ABOVE 5", "AND SYSTEM CLOCKTIME >= 7 AM"],
        "thenActions": ["THEN PIPE P1 STATUS IS CLOSED"], "elseActions": ["ELSE PIPE P1 STATUS IS OPEN"],
        "priority": 2.0}]  # fmt: skip
    timed = network["operationalControl"]["value"][0]
    assert timed["controlType"] == "TIMEOFDAY" and timed["time"] == 18 * 3600
    assert timed["setting"] == pytest.approx(20 * 9.80665)  # a PRV setting: a pressure, kPa


def test_demand_categories_sources_and_reactions(tmp_path: Path) -> None:
    """The [SOURCES] the issue names, several [DEMANDS] categories, per-object [REACTIONS] and [STATUS] settings."""
    extra = (
        "[DEMANDS]\n J1  3.0  P1  ;Domestic\n J1  0.5  ;Fire\n[SOURCES]\n J1  MASS  12  P1\n R1  0.8\n"
        "[REACTIONS]\n BULK  P1  -0.3\n WALL  P1  -1.5\n Global Bulk  -0.5\n[STATUS]\n V1  25\n"
        "[OPTIONS]\n Quality  Chlorine  mg/L\n[QUALITY]\n R1  1.0\n"
    )
    source = tmp_path / "src.inp"
    source.write_text(SI_NET.replace("[END]", extra + "[END]"))
    ids = by_id(translate(source)[0])
    junction = ids["urn:ngsi-ld:Junction:src:J1"]
    categories = junction["demandCategory"]
    assert [c["value"] for c in categories] == ["Domestic", "Fire"]
    assert [c["baseDemand"]["value"] for c in categories] == [3.0, 0.5]
    assert categories[0]["demandPattern"] == {"type": "Relationship", "object": "urn:ngsi-ld:Pattern:src:P1"}
    assert "demandPattern" not in categories[1]
    assert len({c["datasetId"] for c in categories}) == 2
    assert junction["baseDemand"]["value"] == 3.0  # [DEMANDS] replace the [JUNCTIONS] demand (2.5)
    assert junction["sourceCategory"]["value"] == "MASS"
    assert junction["sourceCategory"]["sourceQuality"] == {"type": "Property", "value": 12.0}
    assert junction["sourceCategory"]["sourcePattern"]["object"] == "urn:ngsi-ld:Pattern:src:P1"
    reservoir = ids["urn:ngsi-ld:Reservoir:src:R1"]
    assert reservoir["sourceCategory"]["sourceType"]["value"] == "CONCEN"  # the type left out
    assert reservoir["sourceCategory"]["sourceQuality"] == {"type": "Property", "value": 0.8, "unitCode": "M1"}
    pipe = ids["urn:ngsi-ld:Pipe:src:P1"]
    assert pipe["bulkCoeff"]["value"] == -0.3 and pipe["wallCoeff"]["value"] == -1.5
    assert ids["urn:ngsi-ld:WaterNetwork:src"]["globalBulkCoeff"]["value"] == -0.5
    assert ids["urn:ngsi-ld:Valve:src:V1"]["initialSetting"]["value"] == pytest.approx(25 * 9.80665)
    from adapters.validate import entity_problems, project_termmap

    termmap = project_termmap()
    assert [p for e in ids.values() for p in entity_problems(e, termmap)] == []


def test_every_section_of_the_format_is_known() -> None:
    from adapters.water.epanet_inp import SECTIONS

    manual = [
        "TITLE",
        "JUNCTIONS",
        "RESERVOIRS",
        "TANKS",
        "PIPES",
        "PUMPS",
        "VALVES",
        "TAGS",
        "DEMANDS",
        "STATUS",
        "PATTERNS",
        "CURVES",
        "CONTROLS",
        "RULES",
        "ENERGY",
        "EMITTERS",
        "QUALITY",
        "SOURCES",
        "REACTIONS",
        "MIXING",
        "TIMES",
        "REPORT",
        "OPTIONS",
        "COORDINATES",
        "VERTICES",
        "LABELS",
        "BACKDROP",
        "END",
    ]
    assert sorted(SECTIONS) == sorted(manual)
    for path in (NET1, NET3):  # both examples have every section: all translated or checked, nothing refused
        _, adapter = translate(path)
        assert adapter.rejections == [] and len(adapter.notes) == 1


def test_net1_with_a_source_imports_completely(tmp_path: Path) -> None:
    """A standard example network whose [SOURCES] section has a line (Net2 style: the reservoir injects chlorine)."""
    text = NET1.read_text().replace(";Node            \tType        \tQuality     \tPattern\n",
                                    ";Node  Type  Quality  Pattern\n 9  CONCEN  1.2  1\n")  # fmt: skip
    assert " 9  CONCEN  1.2  1" in text
    source = tmp_path / "Net1src.inp"
    source.write_text(text)
    entities, adapter = translate(source)
    assert adapter.rejections == [] and len(entities) == sum(section_counts(NET1).values())
    reservoir = by_id(entities)["urn:ngsi-ld:Reservoir:Net1src:9"]
    assert reservoir["sourceCategory"] == {
        "type": "Property", "value": "CONCEN", "sourceType": {"type": "Property", "value": "CONCEN"},
        "sourceQuality": {"type": "Property", "value": 1.2, "unitCode": "M1"},
        "sourcePattern": {"type": "Relationship", "object": "urn:ngsi-ld:Pattern:Net1src:1"}}  # fmt: skip
