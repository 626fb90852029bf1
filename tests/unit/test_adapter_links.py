"""Cross-network links: nearest and table rules over entity JSON lines, provenance, limits, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError
from adapters.energy.pandapower import PandapowerAdapter
from adapters.links import LinksAdapter, distance_m
from adapters.water.epanet import EpanetAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CRS = "+proj=tmerc +lat_0=48.4 +lon_0=7.85 +k=1 +x_0=0 +y_0=0 +units=us-ft"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())


def write_lines(path: Path, entities: list[Entity]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in entities))


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entity], list[Entity]]:
    folder = tmp_path_factory.mktemp("links")
    water = list(EpanetAdapter(network="net3", crs=CRS).entities(str(FIXTURES / "water" / "Net3.inp")))
    energy = list(PandapowerAdapter(network="oberrhein").entities(
        str(FIXTURES / "energy" / "pandapower-mv_oberrhein.json.gz")))
    write_lines(folder / "water.jsonl", water)
    write_lines(folder / "energy.jsonl", energy)
    return folder, water, energy


def run(folder: Path, rules: list[Any], **config: Any) -> tuple[list[Entity], LinksAdapter]:
    path = folder / "links.json"
    path.write_text(json.dumps({"name": "water-power", "entities": ["water.jsonl", "energy.jsonl"], "rules": rules,
                                **config}))  # fmt: skip
    adapter = LinksAdapter()
    return list(adapter.entities(str(path))), adapter


NEAREST = {"id": "pumps-to-nearest-bus", "method": "nearest", "relationship": "fedBy",
           "subjects": {"type": "Pump"}, "targets": {"type": "ConnectivityNode"}}  # fmt: skip


def test_each_pump_goes_to_the_nearest_bus(networks: tuple[Path, list[Entity], list[Entity]]) -> None:
    folder, water, energy = networks
    links, adapter = run(folder, [NEAREST])
    assert adapter.rejections == []
    assert sorted(e["id"] for e in links) == ["urn:ngsi-ld:Pump:net3:10", "urn:ngsi-ld:Pump:net3:335"]
    buses = {e["id"]: e["location"]["value"]["coordinates"] for e in energy if e["type"] == "ConnectivityNode"}
    for link in links:
        pump = next(e for e in water if e["id"] == link["id"])
        start = next(e for e in water if e["id"] == pump["startsAt"]["object"])["location"]["value"]["coordinates"]
        end = next(e for e in water if e["id"] == pump["endsAt"]["object"])["location"]["value"]["coordinates"]
        here = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)  # near the point the adapter takes on the line
        expected = min(buses, key=lambda b: distance_m(here, tuple(buses[b])))
        relationship = link["fedBy"]
        assert relationship["object"] == expected
        provenance = relationship["provenance"]["value"]
        assert provenance["configuration"] == "water-power" and provenance["rule"] == "pumps-to-nearest-bus"
        assert provenance["method"] == "nearest"
        assert provenance["distance"] == pytest.approx(distance_m(here, tuple(buses[expected])), abs=5)
        assert set(link) == {"id", "type", "fedBy"}  # only the new relationship: the upsert merges it


def test_max_distance_and_table_rules(networks: tuple[Path, list[Entity], list[Entity]]) -> None:
    folder, _, _ = networks
    links, _ = run(folder, [{**NEAREST, "maxDistance": 1.0}])
    assert links == []
    table = {"id": "by-hand", "method": "table", "relationship": "fedBy",
             "links": [{"subject": "urn:ngsi-ld:Pump:net3:10", "target": "urn:ngsi-ld:ConnectivityNode:oberrhein:0"}]}
    links, _ = run(folder, [NEAREST, table])
    pump_10 = next(e for e in links if e["id"] == "urn:ngsi-ld:Pump:net3:10")
    assert pump_10["type"] == "Pump"
    assert pump_10["fedBy"]["object"] == "urn:ngsi-ld:ConnectivityNode:oberrhein:0"  # the later rule wins
    assert pump_10["fedBy"]["provenance"]["value"] == {"configuration": "water-power", "rule": "by-hand",
                                                       "method": "table"}  # fmt: skip


def test_terms_are_in_the_project_context(networks: tuple[Path, list[Entity], list[Entity]]) -> None:
    links, _ = run(networks[0], [NEAREST])
    assert {"fedBy", "provenance"} <= set(CONTEXT["@context"])
    assert all(math.isfinite(link["fedBy"]["provenance"]["value"]["distance"]) for link in links)


def test_bad_rules_are_reported_and_bad_files_fail(networks: tuple[Path, list[Entity], list[Entity]],
                                                   tmp_path: Path) -> None:  # fmt: skip
    folder, _, _ = networks
    _, adapter = run(folder, [{"method": "closest"}, {**NEAREST, "targets": {"type": "Substation"}},
                              {"id": "t", "method": "table", "relationship": "fedBy", "links": [{"subject": "x"}]}])
    assert [str(r) for r in adapter.rejections] == [
        "links.json row 1 field rules[0]: a rule needs a relationship and a method (nearest or table)",
        "links.json row 2 field rules[1]: no Substation entity with a location to link to",
        "links.json row 3 field rules[2].links[0]: needs subject and target ids",
    ]
    with pytest.raises(SourceError, match="give the entities to link"):
        run(tmp_path, [NEAREST], entities=[])
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(SourceError, match=r"bad\.jsonl line 1: an entity needs id and type"):
        run(tmp_path, [NEAREST], entities=["bad.jsonl"])
