"""The pandapower adapter: one entity per table row, terminals to buses, WGS84 geometry, units, errors."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import shape

from adapters.base import Entity, SourceError
from adapters.energy.pandapower import PandapowerAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "energy"
OBERRHEIN = FIXTURES / "pandapower-mv_oberrhein.json.gz"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
TABLE_TYPES = {"bus": "ConnectivityNode", "line": "ACLineSegment", "trafo": "PowerTransformer", "switch": "Switch",
               "load": "EnergyConsumer", "sgen": "GeneratingUnit", "gen": "GeneratingUnit",
               "ext_grid": "ExternalNetworkInjection"}  # fmt: skip


def translate(path: Path, **kwargs: Any) -> tuple[list[Entity], PandapowerAdapter]:
    adapter = PandapowerAdapter(**kwargs)
    return list(adapter.entities(str(path))), adapter


def tables(path: Path) -> dict[str, dict[str, Any]]:
    net = json.loads(gzip.decompress(path.read_bytes()))["_object"]
    return {name: json.loads(raw["_object"]) for name, raw in net.items()
            if isinstance(raw, dict) and raw.get("_class") == "DataFrame"}  # fmt: skip


@pytest.fixture(scope="module")
def oberrhein() -> tuple[list[Entity], PandapowerAdapter]:
    return translate(OBERRHEIN, network="oberrhein")


def test_one_entity_per_row(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    entities, adapter = oberrhein
    assert adapter.rejections == []
    rows = {name: len(frame["index"]) for name, frame in tables(OBERRHEIN).items()}
    expected: Counter[str] = Counter()
    for table, entity_type in TABLE_TYPES.items():
        expected[entity_type] += rows.get(table, 0)
    counts = Counter(e["type"] for e in entities)
    assert {t: counts[t] for t in expected} == dict(expected)
    assert counts["ConnectivityNode"] == 179 and counts["ACLineSegment"] == 181 and counts["Switch"] == 322
    assert counts["PowerTransformerEnd"] == 2 * rows["trafo"]
    switches = tables(OBERRHEIN)["switch"]
    bus_bus = sum(1 for row in switches["data"] if row[switches["columns"].index("et")] == "b")
    sides = 2 * rows["line"] + 2 * rows["trafo"] + rows["load"] + rows["sgen"] + rows["ext_grid"]
    assert counts["Terminal"] == sides + rows["switch"] + bus_bus
    assert len({e["id"] for e in entities}) == len(entities)


def test_ids_are_stable(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    again, _ = translate(OBERRHEIN, network="oberrhein")
    assert [e["id"] for e in again] == [e["id"] for e in oberrhein[0]]
    assert translate(OBERRHEIN)[0][0]["id"] == "urn:ngsi-ld:ConnectivityNode:pandapower-mv_oberrhein:0"


def test_relationships_resolve(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    entities = oberrhein[0]
    ids = {e["id"] for e in entities}
    dangling = [(e["id"], name, a["object"]) for e in entities for name, a in e.items()
                if isinstance(a, dict) and a.get("type") == "Relationship" and a["object"] not in ids]  # fmt: skip
    assert dangling == []


def test_a_line_has_two_terminals_on_its_buses(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    by_id = {e["id"]: e for e in oberrhein[0]}
    line = "urn:ngsi-ld:ACLineSegment:oberrhein:0"
    terminals = [e for e in oberrhein[0] if e["type"] == "Terminal" and e["ConductingEquipment"]["object"] == line]
    nodes = sorted((t["sequenceNumber"]["value"], t["ConnectivityNode"]["object"]) for t in terminals)
    node = "urn:ngsi-ld:ConnectivityNode:oberrhein:"
    assert nodes == [(1, node + "238"), (2, node + "109")]
    assert by_id[line]["length"] == {"type": "Property", "value": pytest.approx(586.3662), "unitCode": "MTR"}
    assert by_id[line]["r"]["value"] == pytest.approx(0.161 * 0.5863662)


def test_units_are_canonical(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    by_id = {e["id"]: e for e in oberrhein[0]}
    load = by_id["urn:ngsi-ld:EnergyConsumer:oberrhein:0"]
    assert load["activePower"] == {"type": "Property", "value": 250.0, "unitCode": "KWT"}  # 0.25 MW
    assert load["reactivePower"]["unitCode"] == "KVR"
    bus = by_id["urn:ngsi-ld:ConnectivityNode:oberrhein:0"]
    assert bus["nominalVoltage"] == {"type": "Property", "value": 20.0, "unitCode": "KVT"}
    trafo = by_id["urn:ngsi-ld:PowerTransformer:oberrhein:114"]
    assert trafo["ratedS"] == {"type": "Property", "value": 25000.0, "unitCode": "KVA"}
    ends = [by_id[f"urn:ngsi-ld:PowerTransformerEnd:oberrhein:114:{n}"]["ratedU"]["value"] for n in (1, 2)]
    assert ends == [110.0, 20.0]


def test_geometry_is_valid_wgs84(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    located = [e for e in oberrhein[0] if "location" in e]
    kinds = Counter((e["type"], e["location"]["value"]["type"]) for e in located)
    assert kinds == {("ConnectivityNode", "Point"): 179, ("ACLineSegment", "LineString"): 181}
    for e in located:
        geometry = shape(e["location"]["value"])
        assert geometry.is_valid
        minx, miny, maxx, maxy = geometry.bounds
        assert 7.0 < minx <= maxx < 9.0 and 47.5 < miny <= maxy < 49.0  # the Upper Rhine, lon/lat order


def test_switch_states(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    switches = [e for e in oberrhein[0] if e["type"] == "Switch"]
    frame = tables(OBERRHEIN)["switch"]
    closed = frame["columns"].index("closed")
    assert sum(1 for s in switches if s["open"]["value"]) == sum(1 for row in frame["data"] if not row[closed])
    assert switches[0]["controlledEquipment"]["object"] == "urn:ngsi-ld:ACLineSegment:oberrhein:0"


def test_every_term_is_in_the_project_context(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    terms = CONTEXT["@context"]
    for e in oberrhein[0]:
        assert e["type"] in terms
        assert [n for n in e if n not in terms and n not in ("id", "type", "location")] == []


def small_net(tmp_path: Path, bus_rows: list[list[Any]], line_rows: list[list[Any]]) -> Path:
    def frame(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
        body = {"columns": columns, "index": list(range(len(rows))), "data": rows}
        return {"_module": "pandas.core.frame", "_class": "DataFrame", "_object": json.dumps(body)}

    net = {"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": {
        "name": "tiny", "f_hz": 50.0,
        "bus": frame(["name", "vn_kv", "type", "zone", "in_service", "geo"], bus_rows),
        "line": frame(["name", "from_bus", "to_bus", "length_km", "r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km",
                       "max_i_ka", "parallel", "in_service", "geo"], line_rows),
    }}  # fmt: skip
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(net))
    return path


def test_bad_rows_are_reported_with_table_row_and_field(tmp_path: Path) -> None:
    point = '{"type": "Point", "coordinates": [7.8, 48.0]}'
    path = small_net(tmp_path, [
        ["A", 20.0, "b", None, True, point],
        ["B", "twenty", "b", None, True, '{"type": "Point", "coordinates": [3400000, 5300000]}'],
    ], [
        ["L0", 0, 1, 1.0, 0.1, 0.1, 200, 0.3, 1, True, None],
        ["L1", 0, 7, 1.0, 0.1, 0.1, 200, 0.3, 1, True, None],
    ])  # fmt: skip
    entities, adapter = translate(path)
    ids = {e["id"] for e in entities}
    assert "urn:ngsi-ld:ACLineSegment:tiny:0" in ids and "urn:ngsi-ld:ACLineSegment:tiny:1" not in ids
    bus_b = next(e for e in entities if e["id"] == "urn:ngsi-ld:ConnectivityNode:tiny:1")
    assert "nominalVoltage" not in bus_b and "location" not in bus_b
    messages = [str(r) for r in adapter.rejections]
    assert messages[0] == "tiny.json row 1 field bus.vn_kv: not a number: 'twenty'; attribute left out"
    assert messages[1].startswith("tiny.json row 1 field bus.geo: not a WGS84 GeoJSON Point or LineString")
    assert messages[2] == "tiny.json row 1 field line.to_bus: unknown bus 7"
    assert len(messages) == 3


def test_unreadable_sources_are_source_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"_object": {"bus": ')
    with pytest.raises(SourceError, match=r"broken\.json: not JSON \(line 1"):
        translate(broken)
    empty = tmp_path / "empty.json"
    empty.write_text('{"_object": {"name": "x"}}')
    with pytest.raises(SourceError, match=r"empty\.json: no bus table"):
        translate(empty)
    with pytest.raises(SourceError, match="missing"):
        translate(tmp_path / "missing.json")


def test_every_entity_passes_the_project_checks(oberrhein: tuple[list[Entity], PandapowerAdapter]) -> None:
    from adapters.validate import entity_problems, project_termmap

    termmap = project_termmap()
    assert [(e["id"], p) for e in oberrhein[0] if (p := entity_problems(e, termmap))] == []


def test_tables_not_translated_are_reported(tmp_path: Path) -> None:
    path = small_net(tmp_path, [["A", 20.0, "b", None, True, None]], [])
    net = json.loads(path.read_text())
    body = {"columns": ["name", "bus", "p_mw"], "index": [4], "data": [["bat", 0, 1.0]]}
    net["_object"]["storage"] = {"_module": "pandas.core.frame", "_class": "DataFrame", "_object": json.dumps(body)}
    path.write_text(json.dumps(net))
    _, adapter = translate(path)
    assert adapter.notes == ["tiny.json: table storage (1 rows) is not translated yet"]
    assert adapter.rejections == []
