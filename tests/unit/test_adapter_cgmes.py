"""The CGMES adapter: one entity per CIM object of a translated class across profiles, state variables folded,
relationships by CIM role, GL locations, errors naming file, line and field."""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError
from adapters.energy.cgmes import CLASSES, CgmesAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "energy"
CIGRE = FIXTURES / "cgmes-cigre-mv.zip"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())


def translate(path: Path | str, **kwargs: Any) -> tuple[list[Entity], CgmesAdapter]:
    adapter = CgmesAdapter(**kwargs)
    return list(adapter.entities(str(path))), adapter


@pytest.fixture(scope="module")
def cigre() -> tuple[list[Entity], CgmesAdapter]:
    return translate(CIGRE, network="cigre")


def defined_objects() -> Counter[str]:
    """``<cim:Class rdf:ID=...>`` per translated class, counted in the raw XML of every profile."""
    counts: Counter[str] = Counter()
    with zipfile.ZipFile(CIGRE) as archive:
        for name in archive.namelist():
            for cls in re.findall(r"<cim:(\w+) rdf:ID=", archive.read(name).decode()):
                if cls in CLASSES:
                    counts[CLASSES[cls]] += 1
    return counts


def test_one_entity_per_cim_object(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    entities, adapter = cigre
    assert adapter.rejections == []
    assert Counter(e["type"] for e in entities) == defined_objects()
    assert defined_objects() == Counter({"Terminal": 47, "EnergyConsumer": 18, "Substation": 15, "VoltageLevel": 15,
                                         "TopologicalNode": 15, "ACLineSegment": 12, "PowerTransformerEnd": 4,
                                         "PowerTransformer": 2, "BaseVoltage": 2, "GeographicalRegion": 1,
                                         "SubGeographicalRegion": 1, "ExternalNetworkInjection": 1})  # fmt: skip
    assert len({e["id"] for e in entities}) == len(entities)


def test_ids_are_stable_mrids(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    ids = {e["id"] for e in cigre[0]}
    assert "urn:ngsi-ld:ACLineSegment:cigre:L12-13" in ids
    assert "urn:ngsi-ld:BaseVoltage:cigre:a5b4e1c5-b844-4a1a-870c-1ee07662d7b4" in ids  # leading "_" dropped
    assert [e["id"] for e in translate(CIGRE, network="cigre")[0]] == [e["id"] for e in cigre[0]]


def test_relationships_resolve(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    entities = cigre[0]
    ids = {e["id"] for e in entities}
    relationships = [(e["id"], n, a["object"]) for e in entities for n, a in e.items()
                     if isinstance(a, dict) and a.get("type") == "Relationship"]  # fmt: skip
    assert len(relationships) > 100
    assert [r for r in relationships if r[2] not in ids] == []


def test_profiles_merge_into_one_entity(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    by_id = {e["id"]: e for e in cigre[0]}
    terminal = by_id["urn:ngsi-ld:Terminal:cigre:E-288"]  # EQ: equipment; TP: node; SV: power flow
    assert terminal["ConductingEquipment"]["object"] == "urn:ngsi-ld:EnergyConsumer:cigre:Load7-I"
    assert terminal["TopologicalNode"]["object"] == "urn:ngsi-ld:TopologicalNode:cigre:N7"
    assert terminal["connected"]["value"] is True
    assert terminal["activePower"]["unitCode"] == "KWT"
    node = by_id["urn:ngsi-ld:TopologicalNode:cigre:N12"]
    assert node["v"] == {"type": "Property", "value": 19.605385, "unitCode": "KVT"}
    assert node["angle"] == {"type": "Property", "value": -3.57295, "unitCode": "DD"}


def test_units_and_containment(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    by_id = {e["id"]: e for e in cigre[0]}
    line = by_id["urn:ngsi-ld:ACLineSegment:cigre:L12-13"]
    assert line["length"] == {"type": "Property", "value": 4890.0, "unitCode": "MTR"}  # 4.89 km
    assert line["r"] == {"type": "Property", "value": 1.64793, "unitCode": "OHM"}
    ends = [e for e in cigre[0] if e["type"] == "PowerTransformerEnd"]
    assert sorted(e["ratedU"]["value"] for e in ends) == [20.0, 20.0, 110.0, 110.0]
    assert {e["ratedS"]["unitCode"] for e in ends} == {"KVA"}
    level = next(e for e in cigre[0] if e["type"] == "VoltageLevel")
    assert level["Substation"]["object"].startswith("urn:ngsi-ld:Substation:cigre:")


def test_every_term_is_in_the_project_context(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    terms = CONTEXT["@context"]
    for e in cigre[0]:
        assert e["type"] in terms
        assert [n for n in e if n not in terms and n not in ("id", "type", "location")] == []


def test_a_directory_of_profiles_gives_the_same_entities(tmp_path: Path,
                                                         cigre: tuple[list[Entity], CgmesAdapter]) -> None:  # fmt: skip
    with zipfile.ZipFile(CIGRE) as archive:
        archive.extractall(tmp_path / "model")
    assert translate(tmp_path / "model", network="cigre")[0] == cigre[0]


MODEL = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:cim="http://iec.ch/TC57/2013/CIM-schema-cim16#">
  <cim:Substation rdf:ID="_S1"><cim:IdentifiedObject.name>Main</cim:IdentifiedObject.name></cim:Substation>
  <cim:Breaker rdf:ID="_B1">
    <cim:IdentifiedObject.name>B1</cim:IdentifiedObject.name>
    <cim:Switch.normalOpen>maybe</cim:Switch.normalOpen>
    <cim:Equipment.EquipmentContainer rdf:resource="#_S1"/>
  </cim:Breaker>
  <cim:Terminal rdf:ID="_T1">
    <cim:Terminal.ConductingEquipment rdf:resource="#_B1"/>
    <cim:Terminal.ConnectivityNode rdf:resource="#_CN404"/>
    <cim:Terminal.phases rdf:resource="http://iec.ch/TC57/2013/CIM-schema-cim16#PhaseCode.ABC"/>
  </cim:Terminal>
  <cim:CoordinateSystem rdf:ID="_CS">
    <cim:CoordinateSystem.crsUrn>urn:ogc:def:crs:EPSG::4326</cim:CoordinateSystem.crsUrn></cim:CoordinateSystem>
  <cim:Location rdf:ID="_L1">
    <cim:Location.PowerSystemResources rdf:resource="#_S1"/>
    <cim:Location.CoordinateSystem rdf:resource="#_CS"/>
  </cim:Location>
  <cim:PositionPoint rdf:ID="_P1">
    <cim:PositionPoint.Location rdf:resource="#_L1"/>
    <cim:PositionPoint.xPosition>7.85</cim:PositionPoint.xPosition>
    <cim:PositionPoint.yPosition>47.99</cim:PositionPoint.yPosition>
  </cim:PositionPoint>
</rdf:RDF>
"""


def test_switch_kinds_locations_and_rejections(tmp_path: Path) -> None:
    source = tmp_path / "model_EQ.xml"
    source.write_text(MODEL)
    entities, adapter = translate(source)
    by_id = {e["id"]: e for e in entities}
    breaker = by_id["urn:ngsi-ld:Switch:model_EQ:B1"]
    assert breaker["switchType"]["value"] == "Breaker" and "normalOpen" not in breaker
    substation = by_id["urn:ngsi-ld:Substation:model_EQ:S1"]
    assert substation["location"] == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.85, 47.99]}}
    terminal = by_id["urn:ngsi-ld:Terminal:model_EQ:T1"]
    assert terminal["phases"]["value"] == "ABC" and "ConnectivityNode" not in terminal
    assert [str(r) for r in adapter.rejections] == [
        "model_EQ.xml row 6 field Switch.normalOpen: not a valid value: 'maybe'; attribute left out",
        "model_EQ.xml row 11 field Terminal.ConnectivityNode: refers to 'CN404', which is not in the model "
        "(or not of a translated class); relationship left out",
    ]


def test_broken_xml_names_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "broken_EQ.xml"
    source.write_text(MODEL.replace("</cim:Breaker>", "</cim:Breakr>"))
    with pytest.raises(SourceError, match=r"broken_EQ\.xml: not well-formed XML at line 8"):
        translate(source)
    with pytest.raises(SourceError, match="no such file"):
        translate(tmp_path / "absent.xml")
    empty = tmp_path / "empty.xml"
    empty.write_text('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>')
    with pytest.raises(SourceError, match="no CIM equipment"):
        translate(empty)


def test_every_entity_passes_the_project_checks(cigre: tuple[list[Entity], CgmesAdapter]) -> None:
    from adapters.validate import entity_problems, project_termmap, schema_errors

    termmap = project_termmap()
    assert [(e["id"], p) for e in cigre[0] if (p := entity_problems(e, termmap))] == []
    terminal = next(e for e in cigre[0] if e["type"] == "Terminal")
    assert schema_errors({**terminal, "sequenceNumber": {"type": "Property", "value": "first"}}) != []
