"""The historian adapter: long and wide forms, tag map, OPC quality, time zones, units, latest value + history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError, TemporalFragment
from adapters.energy.historian import HistorianAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "energy"
LONG = FIXTURES / "historian-long.csv"
WIDE = FIXTURES / "historian-wide.csv"
TAGS = FIXTURES / "historian-tagmap.csv"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
TRAFO = "urn:ngsi-ld:PowerTransformer:oberrhein:114"


def translate(source: str) -> tuple[list[Entity], list[TemporalFragment], HistorianAdapter]:
    adapter = HistorianAdapter()
    out = list(adapter.entities(source))
    fragments = [e for e in out if isinstance(e, TemporalFragment)]
    entities = [e for e in out if not isinstance(e, TemporalFragment)]
    assert out == entities + fragments  # latest values first, then the history
    return entities, fragments, adapter


def with_tags(path: Path, tags: Path = TAGS, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"tagmap": str(tags), **options}.items())
    return f"{path}?{query}"


def history(fragments: list[TemporalFragment], entity_id: str, attribute: str) -> list[dict[str, Any]]:
    return [i for f in fragments if f["id"] == entity_id for i in f.get(attribute, [])]


def test_long_form_latest_values_and_history() -> None:
    entities, fragments, adapter = translate(with_tags(LONG))
    assert {e["id"] for e in entities} == {TRAFO, "urn:ngsi-ld:ConnectivityNode:oberrhein:0",
                                           "urn:ngsi-ld:ACLineSegment:oberrhein:0"}  # fmt: skip
    trafo = next(e for e in entities if e["id"] == TRAFO)
    assert trafo["type"] == "PowerTransformer"
    assert trafo["activePower"]["observedAt"] == "2024-01-15T23:45:00Z"
    assert trafo["activePower"]["unitCode"] == "KWT"  # MW in the export, kW canonical
    earlier = history(fragments, TRAFO, "activePower")
    assert len(earlier) == 95  # 96 readings, the latest is on the entity
    assert earlier[0] == {"type": "Property", "value": 19204.0, "observedAt": "2024-01-15T00:00:00Z",
                          "unitCode": "KWT", "measurementQuality": {"type": "Property", "value": "good"},
                          "qualityCode": {"type": "Property", "value": 192}}  # fmt: skip
    times = [i["observedAt"] for i in earlier]
    assert times == sorted(times)
    total = sum(len(v) for f in fragments for v in f.values() if isinstance(v, list)) + 4
    assert total == 4 * 96 - 2  # every reading with a value, whatever its quality
    assert [str(r) for r in adapter.rejections] == [
        "historian-long.csv row 165 field value: no value (quality bad): nothing to keep",
        "historian-long.csv row 169 field value: no value (quality bad): nothing to keep",
    ]


def test_bad_quality_values_are_kept_and_flagged() -> None:
    _, fragments, _ = translate(with_tags(LONG))
    voltage = history(fragments, "urn:ngsi-ld:ConnectivityNode:oberrhein:0", "v")
    flagged = [i for i in voltage if i["measurementQuality"]["value"] != "good"]
    assert flagged == [{"type": "Property", "value": 20.43, "observedAt": "2024-01-15T15:00:00Z", "unitCode": "KVT",
                        "measurementQuality": {"type": "Property", "value": "uncertain"},
                        "qualityCode": {"type": "Property", "value": 68}}]  # fmt: skip


def test_wide_form_gives_the_same_readings_as_the_long_form() -> None:
    def plain(entities: list[Entity], fragments: list[TemporalFragment]) -> set[tuple[str, str, str, float, str]]:
        found = set()
        for e in [*entities, *fragments]:
            for name, attr in e.items():
                for i in attr if isinstance(attr, list) else [attr] if isinstance(attr, dict) else []:
                    found.add((e["id"], name, i["observedAt"], i["value"], i["unitCode"]))
        return found

    long_entities, long_fragments, _ = translate(with_tags(LONG))
    wide_entities, wide_fragments, adapter = translate(with_tags(WIDE))
    assert plain(wide_entities, wide_fragments) == plain(long_entities, long_fragments)
    assert "measurementQuality" not in wide_entities[0]["current"]  # the wide form carries no quality
    assert len(adapter.rejections) == 2


def test_time_zones_are_normalised_to_utc(tmp_path: Path) -> None:
    export = tmp_path / "local.csv"
    export.write_text("tag,timestamp,value,quality,unit\n"
                      "OBR/Trafo0/HV/P_MW,2024-07-01T12:00:00,1.5,192,MW\n"
                      "OBR/Trafo0/HV/P_MW,2024-07-01T13:00:00+02:00,1.6,192,MW\n"
                      "OBR/Trafo0/HV/P_MW,1719838800000,1.7,192,MW\n")  # fmt: skip
    entities, fragments, _ = translate(with_tags(export, tz="Europe/Berlin"))
    times = [i["observedAt"] for i in history(fragments, TRAFO, "activePower")]
    assert times == ["2024-07-01T10:00:00Z", "2024-07-01T11:00:00Z"]  # summer time: UTC+2
    assert entities[0]["activePower"]["observedAt"] == "2024-07-01T13:00:00Z"
    assert entities[0]["activePower"]["value"] == 1700.0


def test_every_term_is_in_the_project_context() -> None:
    entities, fragments, _ = translate(with_tags(LONG))
    terms = CONTEXT["@context"]
    for e in [*entities, *fragments]:
        for name, attr in e.items():
            if name in ("id", "type"):
                continue
            assert name in terms
            for i in attr if isinstance(attr, list) else [attr]:
                assert [k for k in i if k not in terms and k not in ("type", "value", "observedAt", "unitCode")] == []


def test_bad_rows_name_file_row_and_field(tmp_path: Path) -> None:
    export = tmp_path / "bad.csv"
    export.write_text("tag,timestamp,value,quality,unit\n"
                      "OBR/Trafo0/HV/P_MW,yesterday,1.5,192,MW\n"
                      "OBR/Trafo0/HV/P_MW,2024-01-01T00:00:00Z,abc,192,MW\n"
                      "OBR/Unknown,2024-01-01T00:00:00Z,1,192,MW\n"
                      "OBR/Unknown,2024-01-01T00:15:00Z,1,192,MW\n"
                      "OBR/Trafo0/HV/P_MW,2024-01-01T00:00:00Z,1,high,MW\n"
                      "OBR/Trafo0/HV/P_MW,2024-01-01T00:00:00Z,1,192,furlongs\n"
                      "OBR/Trafo0/HV/P_MW,2024-01-01T00:30:00Z,2,192,\n")  # fmt: skip
    entities, _, adapter = translate(with_tags(export))
    assert [str(r) for r in adapter.rejections] == [
        "bad.csv row 2 field timestamp: not an ISO 8601 date-time or epoch milliseconds: 'yesterday'",
        "bad.csv row 3 field value: not a number: 'abc'",
        "bad.csv row 4 field tag: tag 'OBR/Unknown' is not in the tag map; its readings are left out",
        "bad.csv row 6 field quality: not an OPC quality code: 'high'",
        "bad.csv row 7 field unit: unknown unit 'furlongs'",
    ]
    # the unit missing from row 8 comes from the tag map (MW)
    latest = entities[0]["activePower"]
    assert (latest["value"], latest["unitCode"], latest["observedAt"]) == (2000.0, "KWT", "2024-01-01T00:30:00Z")


def test_unusable_sources_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="the tag map cannot be read"):
        translate(with_tags(LONG, tmp_path / "none.csv"))
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SourceError, match=r"odd\.csv: header \['a', 'b', 'c'\] is neither the long form"):
        translate(with_tags(odd))
    tags = tmp_path / "tags.csv"
    tags.write_text("tag,entity,attribute\nX,not-a-urn,p\n")
    with pytest.raises(SourceError, match=r"tags\.csv row 2: entity must be a urn:ngsi-ld"):
        translate(with_tags(LONG, tags))
    with pytest.raises(SourceError, match="is not a time zone name"):
        translate(with_tags(LONG, tz="Mars/Olympus"))


def test_every_entity_and_fragment_passes_the_project_checks() -> None:
    from adapters.validate import entity_problems, project_termmap

    entities, fragments, _ = translate(with_tags(LONG))
    termmap = project_termmap()
    assert [(e["id"], p) for e in [*entities, *fragments] if (p := entity_problems(e, termmap))] == []


def test_water_scada_pressure_flow_and_level(tmp_path: Path) -> None:
    """The same historian form feeds the water network: native US units end in the canonical ones."""
    tags = tmp_path / "water-tags.csv"
    tags.write_text("tag,entity,attribute,unit\n"
                    "NET3/J10/PRESS,urn:ngsi-ld:Junction:net3:10,pressure,psi\n"
                    "NET3/P335/FLOW,urn:ngsi-ld:Pump:net3:335,flow,gpm\n"
                    "NET3/T1/LEVEL,urn:ngsi-ld:Tank:net3:1,level,ft\n")  # fmt: skip
    export = tmp_path / "scada.csv"
    export.write_text("t_stamp,NET3/J10/PRESS,NET3/P335/FLOW,NET3/T1/LEVEL\n"
                      "1705276800000,50,1000,20\n1705277700000,51,1100,21\n")  # fmt: skip
    entities, fragments, adapter = translate(with_tags(export, tags))
    assert adapter.rejections == []
    by_id = {e["id"]: e for e in entities}
    assert by_id["urn:ngsi-ld:Junction:net3:10"]["pressure"]["unitCode"] == "KPA"
    assert by_id["urn:ngsi-ld:Junction:net3:10"]["pressure"]["value"] == pytest.approx(51 * 6.89475789)
    assert by_id["urn:ngsi-ld:Pump:net3:335"]["flow"]["value"] == pytest.approx(1100 * 0.0630902)
    assert by_id["urn:ngsi-ld:Tank:net3:1"]["level"] == {"type": "Property", "value": pytest.approx(21 * 0.3048),
                                                         "observedAt": "2024-01-15T00:15:00Z", "unitCode": "MTR"}
    assert {f["id"] for f in fragments} == set(by_id)
    terms = CONTEXT["@context"]
    assert {"pressure", "flow", "level"} <= set(terms)


def test_instances_already_in_the_history_are_not_sent_again() -> None:
    import httpx

    from adapters.telemetry import new_instances

    asked: list[httpx.Request] = []

    def broker(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        stored = [{"type": "Property", "value": 1.0, "observedAt": "2024-01-15T00:00:00.000Z"}]
        return httpx.Response(200, json={"id": TRAFO, "type": "PowerTransformer", "activePower": stored})

    fragment = TemporalFragment(id=TRAFO, type="PowerTransformer", activePower=[
        {"type": "Property", "value": 1.0, "observedAt": "2024-01-15T00:00:00Z"},
        {"type": "Property", "value": 2.0, "observedAt": "2024-01-15T00:15:00Z"}])  # fmt: skip
    with httpx.Client(transport=httpx.MockTransport(broker), base_url="http://broker") as client:
        kept = new_instances(client, fragment, {})
    assert kept["activePower"] == [fragment["activePower"][1]]
    params = asked[0].url.params
    assert (params["timerel"], params["timeAt"], params["endTimeAt"]) == (
        "between", "2024-01-15T00:00:00.000Z", "2024-01-15T00:15:00.001Z")
    assert asked[0].url.raw_path.startswith(b"/ngsi-ld/v1/temporal/entities/urn%3Angsi-ld%3APowerTransformer%3A")

    def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"})

    with httpx.Client(transport=httpx.MockTransport(empty), base_url="http://broker") as client:
        assert new_instances(client, fragment, {}) is fragment
