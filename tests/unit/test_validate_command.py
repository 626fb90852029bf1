"""`agora validate FILE`: schemas, @context terms, attribute structure, unit codes and WGS84 locations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity
from adapters.gtfs import GtfsAdapter
from adapters.gtfs_rt import GtfsRtAdapter
from adapters.validate import entity_problems, project_termmap
from broker.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STOP: Entity = {
    "id": "urn:ngsi-ld:GtfsStop:X:S1",
    "type": "GtfsStop",
    "name": {"type": "Property", "value": "Central"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-116.7, 36.9]}},
}


def problems_of(entity: Entity) -> list[str]:
    return entity_problems(entity, project_termmap())


def with_attrs(**attrs: Any) -> Entity:
    return {**STOP, **attrs}


def test_every_entity_of_the_transport_adapters_conforms() -> None:
    entities = [*GtfsAdapter().entities(str(FIXTURES / "gtfs" / "pygtfs-sample-feed-with-transfers.zip"))]
    entities += GtfsRtAdapter(network="DTA").entities(str(FIXTURES / "gtfs-rt" / "synthetic-google-sample-feed.pb"))
    assert {e["id"]: problems_of(e) for e in entities if problems_of(e)} == {}
    assert problems_of(STOP) == []


@pytest.mark.parametrize(
    ("entity", "expected"),
    [
        # The Smart Data Models DeviceMeasurement example's mistake: location as a Property in [lat, lon] order.
        (with_attrs(location={"type": "Property", "value": [36.9, -116.7]}), "location must be a GeoProperty"),
        (with_attrs(location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [36.9, -116.7]}}),
         "outside WGS84 bounds"),
        (with_attrs(code={"type": "Property", "value": {"type": "Point", "coordinates": [1, 2]}}),
         "make it a GeoProperty"),
        (with_attrs(zoneCode={"type": "Property", "value": 3, "unitCode": "NTU"}),
         "unitCode 'NTU' is not a UN/CEFACT common code"),
        (with_attrs(zoneCode={"type": "Property", "value": 3, "observedAt": "yesterday"}),
         "observedAt 'yesterday' is not an ISO 8601 date-time"),
        (with_attrs(hasParentStation={"type": "Relationship", "object": "not a uri"}),
         "a Relationship object is a URI"),
        (with_attrs(zoneCode={"type": "Property"}), "zoneCode: a Property needs 'value'"),
        (with_attrs(zoneCode={"type": "Attribute", "value": 1}), "'Attribute' is not an NGSI-LD attribute type"),
        (with_attrs(zoneCode="A"), "zoneCode: an attribute is a JSON object"),
        (with_attrs(colour={"type": "Property", "value": "red"}),
         "colour: not a term of the project @context (falls back to https://uri.etsi.org/ngsi-ld/default-context/colour)"),
        (with_attrs(zoneCode={"type": "Property", "value": "A", "precision": {"type": "Property", "value": 1}}),
         "precision: not a term of the project @context"),
        (with_attrs(**{"@context": {"name": "https://schema.org/name"}}),
         "name: the entity's @context expands it to https://schema.org/name, the project's IRI is "
         "https://smartdatamodels.org/name"),
        (with_attrs(**{"@context": "https://example.org/unreachable-context.jsonld"}), "cannot be processed offline"),
        ({k: v for k, v in STOP.items() if k != "name"}, "'name' is a required property"),
        (with_attrs(id="S1"), "id: 'S1' is not a URI"),
    ],
)
def test_non_conforming_entities_are_reported(entity: Entity, expected: str) -> None:
    found = problems_of(entity)
    assert any(expected in p for p in found), found


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_command_on_json_lines_arrays_and_single_entities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = with_attrs(id="urn:ngsi-ld:GtfsStop:X:BAD", location={"type": "Property", "value": [36.9, -116.7]})
    lines = write(tmp_path, "e.jsonl", json.dumps(STOP) + "\n\n" + json.dumps(bad) + "\n")
    assert main(["validate", lines]) == 3
    out, err = capsys.readouterr()
    assert out.startswith("urn:ngsi-ld:GtfsStop:X:BAD:\n  - location: location must be a GeoProperty")
    assert "checked 2 entities: 1 conform, 1 do not" in err

    array = write(tmp_path, "e.json", json.dumps([STOP, STOP]))
    assert main(["validate", array]) == 0
    assert "checked 2 entities: 2 conform" in capsys.readouterr().err

    single = write(tmp_path, "one.json", "\n" + json.dumps(STOP, indent=2))
    assert main(["validate", single]) == 0
    assert "checked 1 entities" in capsys.readouterr().err

    assert main(["validate", lines, "--type", "GtfsRoute"]) == 0
    assert "checked 0 entities" in capsys.readouterr().err


def test_command_usage_and_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert main(["validate", "--broker", "http://127.0.0.1:9"]) == 2
    assert "--broker needs --type" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.json")]) == 1
    assert "cannot be read" in capsys.readouterr().err
    assert main(["validate", write(tmp_path, "broken.json", "[{]")]) == 1
    assert "not JSON" in capsys.readouterr().err
    assert main(["validate", "--broker", "http://127.0.0.1:9", "--type", "GtfsStop"]) == 1
    assert "cannot talk to the broker" in capsys.readouterr().err
