"""The waterml2 adapter: one WaterQualityObserved per feature of interest, observed properties to terms, units
from the point metadata, errors naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.base import Entity, SourceError, TemporalFragment
from adapters.water.waterml2 import WaterMl2Adapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "water"
SOS = FIXTURES / "waterml2-52n-sos-getobservation.xml"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())


def translate(path: Path) -> tuple[list[Entity], list[TemporalFragment], WaterMl2Adapter]:
    adapter = WaterMl2Adapter(network="52n")
    out = list(adapter.entities(str(path)))
    fragments = [e for e in out if isinstance(e, TemporalFragment)]
    return [e for e in out if not isinstance(e, TemporalFragment)], fragments, adapter


def test_one_feature_with_its_series() -> None:
    entities, fragments, adapter = translate(SOS)
    assert adapter.rejections == []
    assert [e["id"] for e in entities] == [
        "urn:ngsi-ld:WaterQualityObserved:52n:http%3A%2F%2Fgeoviqua.dev.52north.org%2Fstations%2FVaisala-WXT520"]
    station = entities[0]
    assert station["name"]["value"] == "Vaisala_WXT520"
    assert station["airTemperature"] == {"type": "Property", "value": 12.5, "observedAt": "2014-07-01T01:16:41Z",
                                         "unitCode": "CEL"}  # fmt: skip
    assert [i["value"] for i in fragments[0]["airTemperature"]] == [12.2, 12.3, 12.0, 11.9, 12.1]
    terms = CONTEXT["@context"]
    assert all(n in terms for e in [*entities, *fragments] for n in e if n not in ("id", "type"))


def test_udunits_urns_and_unmapped_properties(tmp_path: Path) -> None:
    text = SOS.read_text()
    source = tmp_path / "water.xml"
    source.write_text(text.replace('code="degC"', 'code="urn:ogc:def:uom:udunits:2:Cel"')
                      .replace("properties/AirTemperature", "properties/WaterTemperature"))  # fmt: skip
    entities, _, adapter = translate(source)
    assert entities[0]["temperature"]["unitCode"] == "CEL" and adapter.rejections == []
    source.write_text(text.replace("properties/AirTemperature", "properties/Humidity")
                      .replace("<wml2:value>12.3</wml2:value>", "<wml2:value>n/a</wml2:value>"))  # fmt: skip
    _, _, adapter = translate(source)
    assert [str(r) for r in adapter.rejections] == [
        "water.xml row 4 field om:observedProperty: http://geoviqua.dev.52north.org/properties/Humidity is not "
        "mapped; observation left out"]  # fmt: skip
    source.write_text(text.replace("<wml2:value>12.3</wml2:value>", "<wml2:value>n/a</wml2:value>"))
    _, fragments, adapter = translate(source)
    assert [str(r) for r in adapter.rejections] == [
        "water.xml row 39 field wml2:MeasurementTVP: not a time and a value: '2014-07-01T00:16:42.000Z', 'n/a'"]
    assert len(fragments[0]["airTemperature"]) == 4


def test_broken_or_foreign_xml_is_a_source_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text(SOS.read_text().replace("</om:result>", ""))
    with pytest.raises(SourceError, match=r"broken\.xml: not well-formed XML at line \d+"):
        translate(broken)
    foreign = tmp_path / "foreign.xml"
    foreign.write_text("<a><b/></a>")
    with pytest.raises(SourceError, match=r"foreign\.xml: no om:OM_Observation"):
        translate(foreign)


def test_every_entity_passes_the_project_checks() -> None:
    from adapters.validate import entity_problems, project_termmap

    entities, fragments, _ = translate(SOS)
    termmap = project_termmap()
    assert [(e["id"], p) for e in [*entities, *fragments] if (p := entity_problems(e, termmap))] == []
