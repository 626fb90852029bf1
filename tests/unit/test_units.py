"""The UN/CEFACT unit table (ontologies/units.csv) and the conversions to SI of ontologies/units.py."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from adapters.gtfs_rt import GtfsRtAdapter
from ontologies import units
from ontologies.units import NoConversion, UnknownUnit

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_has_every_code_of_the_csv() -> None:
    with (ROOT / "ontologies" / "units.csv").open(encoding="utf-8") as f:
        codes = {row["unece_code"] for row in csv.DictReader(f)}
    assert len(codes) > 1400
    assert set(units.table()) == codes


@pytest.mark.parametrize(
    ("value", "code", "si", "si_code"),
    [
        (1.5, "KMT", 1500.0, "MTR"),
        (90.0, "KMH", 25.0, "MTS"),
        (20.0, "CEL", 293.15, "KEL"),
        (212.0, "FAH", 373.15, "KEL"),
        (2.0, "HUR", 7200.0, "SEC"),
        (1.0, "KWH", 3.6e6, "JOU"),
        (36.0, "MQH", 0.01, "MQS"),
        (2.5, "BAR", 250_000.0, "PAL"),
        (50.0, "P1", 0.5, "C62"),
        (180.0, "DD", 3.14159265, "C81"),
        (7.0, "MTR", 7.0, "MTR"),
    ],
)
def test_normalise_to_si(value: float, code: str, si: float, si_code: str) -> None:
    got, got_code = units.normalise(value, code)
    assert got == pytest.approx(si, rel=1e-8)
    assert got_code == si_code
    assert units.unit(code).from_si(got) == pytest.approx(value, rel=1e-9)


def test_codes_whose_rows_disagree_follow_the_un_cefact_meaning() -> None:
    assert units.to_si(1.0, "TNE") == 1000.0  # tonne, not the US short ton of another QUDT row
    assert units.to_si(1.0, "C26") == 0.001  # millisecond, not decisecond
    assert units.unit("C26").label == "millisecond"
    with pytest.raises(NoConversion, match="K54"):
        units.to_si(1.0, "K54")  # two kilocalorie-per-minute conversions, not settled: no guess


def test_units_without_a_linear_conversion() -> None:
    with pytest.raises(NoConversion, match="DBM"):
        units.normalise(3.0, "DBM")


def test_unknown_codes_and_spellings() -> None:
    assert not units.is_code("NTU")  # turbidity has no UN/CEFACT code
    with pytest.raises(UnknownUnit, match="NTU"):
        units.to_si(1.0, "NTU")
    assert units.code_for("km/h") == "KMH"
    assert units.code_for("Cel") == "CEL"  # UCUM
    assert units.code_for("°C") == "CEL"  # symbol
    assert units.code_for("MTS") == "MTS"
    with pytest.raises(UnknownUnit):
        units.code_for("furlongs per fortnight")


def test_the_realtime_adapter_emits_table_codes_only() -> None:
    fixture = ROOT / "tests" / "fixtures" / "gtfs-rt" / "synthetic-google-sample-feed.pb"
    codes = {
        attr["unitCode"]
        for entity in GtfsRtAdapter(network="DTA").entities(str(fixture))
        for attr in entity.values()
        if isinstance(attr, dict) and "unitCode" in attr
    }
    assert codes == {"SEC", "DD"}
    assert all(units.is_code(c) for c in codes | {"MTS", "MTR", "P1"})
