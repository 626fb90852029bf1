"""The IEC 61850 SCL adapter on the two openscd files: counts per type against the source text, containment,
allocations, communication addresses, links to the CGMES/pandapower entities of the same grid, unsafe XML."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError
from adapters.energy.scl import SclAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "energy" / "scl"
B4 = FIXTURES / "openscd-valid2007B4.scd"
ADDRESSES = FIXTURES / "openscd-104-valid-addresses.scd"
TAGS = {"SclSubstation": "Substation", "SclVoltageLevel": "VoltageLevel", "SclBay": "Bay",
        "SclConductingEquipment": "ConductingEquipment", "SclConnectivityNode": "ConnectivityNode", "IED": "IED",
        "AccessPoint": "AccessPoint", "LogicalDevice": "LDevice"}  # fmt: skip


def translate(path: Path | str, **kwargs: Any) -> tuple[list[Entity], SclAdapter]:
    adapter = SclAdapter(**kwargs)
    return list(adapter.entities(str(path))), adapter


def text_counts(path: Path) -> Counter[str]:
    """Entities per type expected from the file's text alone (regular expressions, not an XML parser)."""
    text = path.read_text()
    counts = Counter({kind: len(re.findall(rf"<{tag}[\s>/]", text)) for kind, tag in TAGS.items()})
    counts["LogicalNode"] = len(re.findall(r"<LN0?\s", text))
    dos = {m.group(1): len(re.findall(r"<DO\s", m.group(2)))
           for m in re.finditer(r'<LNodeType\s[^>]*id="([^"]+)"[^>]*>(.*?)</LNodeType>', text, re.S)}  # fmt: skip
    counts["DataObject"] = sum(dos.get(t, 0) for t in re.findall(r'<LN0?\s[^>]*lnType="([^"]+)"', text))
    return +counts


@pytest.mark.parametrize("path", [B4, ADDRESSES], ids=["2007B4", "104-addresses"])
def test_one_entity_per_element_as_counted_in_the_text(path: Path) -> None:
    entities, _ = translate(path)
    assert Counter(e["type"] for e in entities) == text_counts(path)
    assert len({e["id"] for e in entities}) == len(entities)


def test_the_counts_of_the_samples() -> None:
    assert text_counts(B4) == Counter({"DataObject": 172, "LogicalNode": 34, "SclConductingEquipment": 5,
                                       "LogicalDevice": 5, "AccessPoint": 4, "SclBay": 3, "IED": 3,
                                       "SclVoltageLevel": 2, "SclSubstation": 1, "SclConnectivityNode": 1})  # fmt: skip


@pytest.mark.parametrize("path", [B4, ADDRESSES], ids=["2007B4", "104-addresses"])
def test_every_relationship_resolves(path: Path) -> None:
    entities, _ = translate(path)
    ids = {e["id"] for e in entities}
    targets = [(e["id"], name, a["object"]) for e in entities for name, attr in e.items()
               for a in (attr if isinstance(attr, list) else [attr])
               if isinstance(a, dict) and a.get("type") == "Relationship"]  # fmt: skip
    assert len(targets) > len(entities) - 5  # everything but the substations and IEDs is part of something
    assert [t for t in targets if t[2] not in ids] == []


def test_containment_voltage_terminals_and_allocations() -> None:
    entities, adapter = translate(B4, network="aa1")
    ids = {e["id"]: e for e in entities}
    level = ids["urn:ngsi-ld:SclVoltageLevel:aa1:AA1:E1"]
    assert level["nominalVoltage"] == {"type": "Property", "value": 110.0, "unitCode": "KVT"}
    assert level["nominalFrequency"] == {"type": "Property", "value": 50.0, "unitCode": "HTZ"}
    assert level["isPartOf"]["object"] == "urn:ngsi-ld:SclSubstation:aa1:AA1"
    assert ids["urn:ngsi-ld:SclVoltageLevel:aa1:AA1:J1"]["nominalVoltage"]["value"] == 20.0
    switch = ids["urn:ngsi-ld:SclConductingEquipment:aa1:AA1:E1:COUPLING_BAY:QC11"]
    assert switch["equipmentType"]["value"] == "DIS"
    assert switch["connectedTo"] == {
        "type": "Relationship",
        "datasetId": "urn:ngsi-ld:Dataset:terminal:T1",
        "object": "urn:ngsi-ld:SclConnectivityNode:aa1:AA1:E1:COUPLING_BAY:L2",
    }
    assert switch["grounded"]["value"] is True  # its terminal T2 goes to cNodeName "grounded"
    # <LNode iedName="IED2" ldInst="CBSW" lnClass="XSWI" lnInst="2"/> sits in the equipment QB1
    xswi = ids["urn:ngsi-ld:LogicalNode:aa1:IED2:CBSW:XSWI2"]
    assert xswi["allocatedTo"]["object"] == "urn:ngsi-ld:SclConductingEquipment:aa1:AA1:E1:COUPLING_BAY:QB1"
    assert ids["urn:ngsi-ld:LogicalNode:aa1:IED2:CBSW:XSWI3"]["allocatedTo"]["object"].endswith(":COUPLING_BAY")
    # the LN whose LNodeType is missing from DataTypeTemplates is reported with its line
    assert [str(r) for r in adapter.rejections] == [
        "openscd-valid2007B4.scd row 255 field LN@lnType: no LNodeType 'Dummy.THARDE' in DataTypeTemplates"
    ]


def test_data_objects_carry_their_cdc_and_access_points_their_address() -> None:
    entities, adapter = translate(ADDRESSES, network="s1")
    assert adapter.rejections == []
    ids = {e["id"]: e for e in entities}
    point = ids["urn:ngsi-ld:AccessPoint:s1:B2:AP1"]
    assert point["ipAddress"]["value"] == "192.128.0.10" and point["subNetwork"]["value"] == "F1"
    assert point["communicationAddress"]["value"]["StationType"] == "controlled-station"
    objects = [e for e in entities if e["type"] == "DataObject"]
    assert all(e["cdc"]["value"] for e in objects)
    health = [e for e in objects if e["id"].endswith(":LLN0:Health")]
    assert health and all(e["cdc"]["value"] == "ENS" for e in health)


def named(tail: str, name: str) -> Entity:
    return {"id": f"urn:ngsi-ld:{tail}", "type": tail.split(":")[0], "name": {"type": "Property", "value": name}}


def test_grid_entities_of_the_same_names_are_linked(tmp_path: Path) -> None:
    """Entities of a CGMES import (`agora import cgmes --dry-run` lines) whose names match get correspondsTo."""
    grid = [
        named("Substation:cigre:_s1", "AA1"),
        named("VoltageLevel:cigre:_v1", "E1"),
        named("Switch:cigre:_b1", "QA1"),
        named("Switch:oberrhein:7", "QA1"),
        named("EnergyConsumer:cigre:_x", "QB1"),
    ]
    (tmp_path / "grid.jsonl").write_text("".join(json.dumps(e) + "\n" for e in grid))
    scd = tmp_path / "aa1.scd"
    scd.write_bytes(B4.read_bytes())
    ids = {e["id"]: e for e in translate(f"{scd}?grid=grid.jsonl", network="aa1")[0]}
    assert ids["urn:ngsi-ld:SclSubstation:aa1:AA1"]["correspondsTo"]["object"] == "urn:ngsi-ld:Substation:cigre:_s1"
    assert ids["urn:ngsi-ld:SclVoltageLevel:aa1:AA1:E1"]["correspondsTo"]["object"].endswith(":_v1")
    breaker = ids["urn:ngsi-ld:SclConductingEquipment:aa1:AA1:E1:COUPLING_BAY:QA1"]["correspondsTo"]
    assert {(b["datasetId"], b["object"]) for b in breaker} == {
        ("urn:ngsi-ld:Dataset:grid:cigre", "urn:ngsi-ld:Switch:cigre:_b1"),
        ("urn:ngsi-ld:Dataset:grid:oberrhein", "urn:ngsi-ld:Switch:oberrhein:7")}  # fmt: skip
    # a disconnector is not an energy consumer, whatever its name
    assert "correspondsTo" not in ids["urn:ngsi-ld:SclConductingEquipment:aa1:AA1:E1:COUPLING_BAY:QB1"]


BOMB = """<?xml version="1.0"?>
<!DOCTYPE SCL [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<SCL xmlns="http://www.iec.ch/61850/2003/SCL"><Substation name="&b;"/></SCL>"""


def test_unsafe_or_foreign_xml_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.scd"
    bomb.write_text(BOMB)
    with pytest.raises(SourceError, match="declares entities"):
        translate(bomb)
    other = tmp_path / "other.scd"
    other.write_text('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>')
    with pytest.raises(SourceError, match="not SCL"):
        translate(other)
    broken = tmp_path / "broken.scd"
    broken.write_text("<SCL><Substation></SCL>")
    with pytest.raises(SourceError, match="not well-formed"):
        translate(broken)


def test_missing_names_are_rejected_with_their_line(tmp_path: Path) -> None:
    scd = tmp_path / "noname.scd"
    scd.write_text('<SCL xmlns="http://www.iec.ch/61850/2003/SCL">\n<Substation name="S">\n<VoltageLevel desc="x"/>'
                   '\n</Substation>\n<IED name="I"/>\n</SCL>')  # fmt: skip
    entities, adapter = translate(scd)
    assert [e["type"] for e in entities] == ["SclSubstation", "IED"]
    assert [str(r) for r in adapter.rejections] == [
        "noname.scd row 3 field VoltageLevel@name: required attribute is missing"
    ]


def test_every_term_is_in_the_project_context() -> None:
    context = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
    terms = context["@context"]
    for path in (B4, ADDRESSES):
        for e in translate(path)[0]:
            assert e["type"] in terms
            assert [name for name in e if name not in terms and name not in ("id", "type")] == []


def test_every_entity_passes_the_project_checks() -> None:
    """JSON Schema of its type, NGSI-LD structure, @context terms (agora validate)."""
    from adapters.validate import entity_problems, project_termmap, schema_errors

    termmap = project_termmap()
    for path in (B4, ADDRESSES):
        for e in translate(path)[0]:
            assert entity_problems(e, termmap) == [], e["id"]
    level = next(e for e in translate(B4)[0] if e["type"] == "SclVoltageLevel")
    assert len(schema_errors({**level, "isPartOf": {"type": "Relationship", "object": "urn:ngsi-ld:IED:x:y"}})) == 1
