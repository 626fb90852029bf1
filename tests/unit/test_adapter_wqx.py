"""The wqx adapter: one WaterQualityObserved per monitoring location, characteristics to SDM terms, local times
to UTC, result status as quality, unmapped characteristics and bad rows reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.base import Entity, SourceError, TemporalFragment
from adapters.water.wqx import WqxAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "water"
WQP = FIXTURES / "wqp-wqx3-results.csv"
CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
STATION = "urn:ngsi-ld:WaterQualityObserved:wqx:WIDNR_WQX-10032762"


def translate(path: Path) -> tuple[list[Entity], list[TemporalFragment], WqxAdapter]:
    adapter = WqxAdapter()
    out = list(adapter.entities(str(path)))
    fragments = [e for e in out if isinstance(e, TemporalFragment)]
    return [e for e in out if not isinstance(e, TemporalFragment)], fragments, adapter


def test_wqp_results_become_one_station_with_its_history() -> None:
    entities, fragments, adapter = translate(WQP)
    assert adapter.rejections == []
    assert [e["id"] for e in entities] == [STATION]
    station = entities[0]
    assert station["location"]["value"] == {"type": "Point", "coordinates": [-89.51866, 43.102665]}
    latest = station["conductivity"]
    assert (latest["value"], latest["unitCode"], latest["observedAt"]) == (750.0, "G42", "2011-09-11T21:10:00Z")
    assert latest["measurementQuality"]["value"] == "good" and latest["measureStatus"]["value"] == "Final"
    earlier = fragments[0]["conductivity"]
    assert len(earlier) == 4  # five results in the file
    assert earlier[0]["observedAt"] < earlier[-1]["observedAt"] < latest["observedAt"]
    assert {"2011-08-08T18:55:00Z", "2011-07-06T13:35:00Z"} <= {i["observedAt"] for i in earlier}  # 13:55 CDT


def test_every_term_is_in_the_project_context() -> None:
    entities, fragments, _ = translate(WQP)
    terms = CONTEXT["@context"]
    for e in [*entities, *fragments]:
        assert [n for n in e if n not in terms and n not in ("id", "type", "location")] == []


HEADER = ("Location_Identifier,Location_Name,Location_LatitudeStandardized,Location_LongitudeStandardized,"
          "Activity_StartDate,Activity_StartTime,Activity_StartTimeZone,Result_Characteristic,Result_Measure,"
          "Result_MeasureUnit,Result_MeasureStatusIdentifier\n")  # fmt: skip


def test_units_without_a_code_dimensionless_ph_and_bad_rows(tmp_path: Path) -> None:
    source = tmp_path / "results.csv"
    source.write_text(HEADER
                      + "S1,Site,43.1,-89.5,2024-05-01,10:00:00,EST,pH,7.2,standard units,Accepted\n"
                      + "S1,Site,43.1,-89.5,2024-05-01,10:00:00,EST,Escherichia coli,41,MPN/100mL,Preliminary\n"
                      + "S1,Site,43.1,-89.5,2024-05-01,10:00:00,EST,Calcium,12,mg/L,Accepted\n"
                      + "S1,Site,43.1,-89.5,2024-05-01,10:00:00,EST,Calcium,13,mg/L,Accepted\n"
                      + "S1,Site,43.1,-89.5,2024-05-01,10:00:00,XYZ,pH,7.1,standard units,Accepted\n"
                      + "S1,Site,43.1,-89.5,2024-05-01,10:00:00,EST,Chloride,<1,mg/L,Accepted\n"
                      + "S1,Site,43.1,-89.5,2024-05-99,10:00:00,EST,Chloride,3,mg/L,Accepted\n"
                      + "S1,Site,43.1,-89.5,2024-05-02,,,Temperature, water,,,\n")  # fmt: skip
    entities, _, adapter = translate(source)
    station = entities[0]
    assert station["pH"] == {"type": "Property", "value": 7.2, "observedAt": "2024-05-01T15:00:00Z",
                             "measurementQuality": {"type": "Property", "value": "good"},
                             "measureStatus": {"type": "Property", "value": "Accepted"}}  # fmt: skip
    coli = station["escherichiaColi"]
    assert "unitCode" not in coli and coli["unitText"]["value"] == "MPN/100mL"
    assert coli["measurementQuality"]["value"] == "uncertain"
    assert [str(r) for r in adapter.rejections] == [
        "results.csv row 4 field Result_Characteristic: 'Calcium' is not mapped; its results are left out",
        "results.csv row 6 field Activity_StartTimeZone: unknown time zone 'XYZ'",
        "results.csv row 7 field Result_Measure: not a number: '<1'",
        "results.csv row 8 field Activity_StartDate: not a date and time: '2024-05-99' '10:00:00'",
        "results.csv row 9 field Result_Characteristic: 'Temperature' is not mapped; its results are left out",
    ]


def test_missing_column_is_a_source_error(tmp_path: Path) -> None:
    source = tmp_path / "short.csv"
    source.write_text("Location_Identifier,Activity_StartDate\nS1,2024-01-01\n")
    with pytest.raises(SourceError, match=r"short\.csv: missing required column Result_Characteristic"):
        translate(source)


def test_every_entity_passes_the_project_checks() -> None:
    from adapters.validate import entity_problems, project_termmap

    entities, fragments, _ = translate(WQP)
    termmap = project_termmap()
    assert [(e["id"], p) for e in [*entities, *fragments] if (p := entity_problems(e, termmap))] == []
