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
 J2  95   abc
 J3  90
[RESERVOIRS]
 R1  150
[PIPES]
 P1  R1  J1  1000  300  0.1  0  Open
 P2  J1  J9  500   200  0.1  0  Open
 P3  J1  J3  500   xyz  0.1  0  Open
[VALVES]
 V1  J1  J3  150  PRV  30  0
 V2  J1  J3  150  XXV  30  0
[PATTERNS]
 P1  1.0  2.0
[OPTIONS]
 Units  LPS
 Headloss  D-W
[TIMES]
 Pattern Timestep  0:30
[END]
"""


def test_si_units_and_rejected_lines(tmp_path: Path) -> None:
    source = tmp_path / "si.inp"
    source.write_text(SI_NET)
    entities, adapter = translate(source)
    ids = by_id(entities)
    assert ids["urn:ngsi-ld:Junction:si:J1"]["baseDemand"] == {"type": "Property", "value": 2.5, "unitCode": "G51"}
    assert ids["urn:ngsi-ld:Junction:si:J1"]["demandPattern"]["object"] == "urn:ngsi-ld:Pattern:si:P1"
    assert "baseDemand" not in ids["urn:ngsi-ld:Junction:si:J2"]  # bad optional value: attribute left out
    pipe = ids["urn:ngsi-ld:Pipe:si:P1"]
    assert pipe["diameter"]["value"] == pytest.approx(0.3) and pipe["length"]["value"] == 1000.0
    assert pipe["roughness"] == {"type": "Property", "value": pytest.approx(0.0001), "unitCode": "MTR"}
    valve = ids["urn:ngsi-ld:Valve:si:V1"]
    assert valve["setting"] == {"type": "Property", "value": pytest.approx(30 * 9.80665), "unitCode": "KPA"}
    assert ids["urn:ngsi-ld:Pattern:si:P1"]["timeStep"]["value"] == 1800.0
    assert "urn:ngsi-ld:Pipe:si:P2" not in ids and "urn:ngsi-ld:Pipe:si:P3" not in ids
    assert "urn:ngsi-ld:Valve:si:V2" not in ids
    messages = [str(r) for r in adapter.rejections]
    assert "si.inp row 5 field Demand: not a number: 'abc'; attribute left out" in messages
    assert "si.inp row 11 field Node2: unknown node 'J9'" in messages
    assert "si.inp row 12 field Diameter: not a number: 'xyz'" in messages
    assert any(re.match(r"si\.inp row 15 field Type: not an EPANET valve type", m) for m in messages)
    assert len(messages) == 4


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


def test_coordinates_outside_the_crs_are_reported_with_their_line(tmp_path: Path) -> None:
    source = tmp_path / "far.inp"
    source.write_text(SI_NET.replace("[END]", "[COORDINATES]\n J1  400000  5300000\n J3  1e12  1e12\n[END]"))
    entities, adapter = translate(source, crs="EPSG:32632")  # UTM 32N: J3 is off the earth
    ids = by_id(entities)
    assert "location" in ids["urn:ngsi-ld:Junction:far:J1"] and "location" not in ids["urn:ngsi-ld:Junction:far:J3"]
    assert "far.inp row 25 field X-Coord: node 'J3' is not a WGS84 position under the given crs; location left out" \
        in [str(r) for r in adapter.rejections]


def test_controls_and_rules_are_kept_as_text_and_untranslated_sections_reported(tmp_path: Path) -> None:
    network = translate(NET1)[0][0]
    assert network["operationalControl"]["value"] == ["LINK 9 OPEN IF NODE 2 BELOW 110",
                                                      "LINK 9 CLOSED IF NODE 2 ABOVE 140"]  # fmt: skip
    source = tmp_path / "rules.inp"
    rules = "[RULES]\nRULE 1\nIF TANK T1 LEVEL ABOVE 5\nTHEN PUMP P9 STATUS IS CLOSED\n"
    source.write_text(SI_NET.replace("[END]", rules + "[DEMANDS]\n J1  3.0  P1  Domestic\n[END]"))
    entities, adapter = translate(source)
    assert entities[0]["operationalControl"]["value"] == [
        "RULE 1\nIF TANK T1 LEVEL ABOVE 5\nTHEN PUMP P9 STATUS IS CLOSED"]
    messages = [str(r) for r in adapter.rejections]
    assert "rules.inp row 28 field DEMANDS: [DEMANDS] (1 lines) is not translated" in messages
