"""The usgs-nwis adapter: one WaterQualityObserved per site, parameters to SDM terms, UTC, units, qualifiers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError, TemporalFragment
from adapters.water.usgs import UsgsNwisAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "water"
NWIS = FIXTURES / "usgs-nwis-iv-2sites.json"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
SITE = "urn:ngsi-ld:WaterQualityObserved:usgs:USGS-01491000"


def translate(path: Path) -> tuple[list[Entity], list[TemporalFragment], UsgsNwisAdapter]:
    adapter = UsgsNwisAdapter()
    out = list(adapter.entities(str(path)))
    fragments = [e for e in out if isinstance(e, TemporalFragment)]
    return [e for e in out if not isinstance(e, TemporalFragment)], fragments, adapter


def source_values() -> dict[tuple[str, str], int]:
    series = json.loads(NWIS.read_text())["value"]["timeSeries"]
    return {(ts["sourceInfo"]["siteCode"][0]["value"], ts["variable"]["variableCode"][0]["value"]):
            sum(len(block["value"]) for block in ts["values"]) for ts in series}  # fmt: skip


def test_one_station_per_site_with_every_value() -> None:
    entities, fragments, adapter = translate(NWIS)
    assert adapter.rejections == []
    assert sorted(e["id"] for e in entities) == [SITE, "urn:ngsi-ld:WaterQualityObserved:usgs:USGS-01645000"]
    counts = source_values()
    for e in entities:
        site = e["id"].rsplit("-", 1)[1]
        for attribute, code in (("flow", "00060"), ("gaugeHeight", "00065")):
            earlier = sum(len(f.get(attribute, [])) for f in fragments if f["id"] == e["id"])
            assert earlier + 1 == counts[(site, code)]


def test_station_location_units_and_utc() -> None:
    entities, fragments, _ = translate(NWIS)
    station = next(e for e in entities if e["id"] == SITE)
    assert station["name"]["value"] == "CHOPTANK RIVER NEAR GREENSBORO, MD"
    assert station["location"]["value"] == {"type": "Point", "coordinates": [-75.7858056, 38.9971944]}
    first = next(f for f in fragments if f["id"] == SITE)["flow"][0]
    assert first["observedAt"] == "2019-02-14T05:00:00Z"  # 00:00 at -05:00
    assert first["unitCode"] == "G51" and first["value"] == pytest.approx(974 * 28.316846592)
    assert first["qualifiers"]["value"] == ["A"] and first["measurementQuality"]["value"] == "good"
    assert station["gaugeHeight"]["unitCode"] == "MTR"


def test_every_term_is_in_the_project_context() -> None:
    entities, fragments, _ = translate(NWIS)
    terms = CONTEXT["@context"]
    for e in [*entities, *fragments]:
        assert e["type"] in terms
        for name, attr in e.items():
            if name in ("id", "type", "location"):
                continue
            assert name in terms
            for i in attr if isinstance(attr, list) else [attr]:
                assert [k for k in i if k not in terms and k not in ("type", "value", "observedAt", "unitCode")] == []


def edited(tmp_path: Path, change: Any) -> Path:
    document = json.loads(NWIS.read_text())
    change(document["value"]["timeSeries"])
    path = tmp_path / "nwis.json"
    path.write_text(json.dumps(document))
    return path


def test_bad_values_name_the_series_and_value(tmp_path: Path) -> None:
    def change(series: list[dict[str, Any]]) -> None:
        series[0]["values"][0]["value"][1]["value"] = "-999999"
        series[0]["values"][0]["value"][2]["value"] = "Ice"
        series[1]["variable"]["variableCode"][0]["value"] = "99999"

    _, _, adapter = translate(edited(tmp_path, change))
    messages = [str(r) for r in adapter.rejections]
    assert messages[0] == ("nwis.json row 2 field timeSeries[0].values.value[2]: the no-data value -999999.0: "
                           "nothing to keep")
    assert messages[1].startswith("nwis.json row 3 field timeSeries[0].values.value[3]: not a value with a dateTime")
    assert messages[2] == ("nwis.json row 2 field timeSeries[1].variable.variableCode: parameter 99999 is not "
                           "mapped; series left out")
    assert len(messages) == 3


def test_not_nwis_is_a_source_error(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"value": {}}')
    with pytest.raises(SourceError, match=r"other\.json: no value\.timeSeries"):
        translate(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SourceError, match=r"broken\.json: not JSON \(line 1"):
        translate(broken)


def test_every_entity_passes_the_project_checks() -> None:
    from adapters.validate import entity_problems, project_termmap

    entities, fragments, _ = translate(NWIS)
    termmap = project_termmap()
    assert [(e["id"], p) for e in [*entities, *fragments] if (p := entity_problems(e, termmap))] == []
