"""The COMTRADE adapter on the real ASCII (2013, also as .cff) and binary (1999) records: sample counts and scaled
values against the files, times in UTC, every data file type, the link to the SCL IED, errors naming the line."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Entity, SourceError, TemporalFragment
from adapters.energy.comtrade import ComtradeAdapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "energy"
ASCII = FIXTURES / "comtrade" / "sample_ascii.cfg"
BINARY = FIXTURES / "comtrade" / "sample_bin.cfg"
CFF = FIXTURES / "comtrade" / "sample_ascii.cff"


def translate(path: Path | str, **kwargs: Any) -> tuple[list[Entity], ComtradeAdapter]:
    adapter = ComtradeAdapter(**kwargs)
    return list(adapter.entities(str(path))), adapter


def samples(entities: list[Entity], attribute: str, dataset: str) -> list[tuple[str, Any]]:
    """(observedAt, value) of one channel: the entity's instance and the temporal fragments', in time order."""
    found = []
    for e in entities:
        items = e.get(attribute, [])
        found += [(i["observedAt"], i["value"]) for i in (items if isinstance(items, list) else [items])
                  if i["datasetId"].endswith(dataset)]  # fmt: skip
    return sorted(found)


def test_ascii_record_sample_count_and_scaled_values() -> None:
    entities, adapter = translate(ASCII)
    assert adapter.rejections == []
    record, *history = entities
    assert all(isinstance(f, TemporalFragment) and f["id"] == record["id"] for f in history)
    rows = [line.split(",") for line in ASCII.with_suffix(".dat").read_text().splitlines() if line.strip()]
    assert record["sampleCount"]["value"] == len(rows) == 40
    ia = samples(entities, "analogValue", "analog:1")
    assert len(ia) == 40
    # IA: a=0.1138916015625, b=0.05694580078125 on the secondary side (S), 933:1 -> primary amperes
    for (_, value), row in zip(ia, rows, strict=True):
        assert value == pytest.approx((int(row[2]) * 0.1138916015625 + 0.05694580078125) * 933)
    assert ia[0][1] == pytest.approx(-8766.5213, abs=1e-3)
    status = samples(entities, "digitalState", "digital:4")  # 51N: the last column
    assert [v for _, v in status] == [int(row[9]) for row in rows]
    # 1200 samples per second from the start time; the 2013 time code -5h30 puts UTC 5 h 30 later
    assert ia[0][0] == "2011-01-12T11:25:30.075011Z" and ia[1][0] == "2011-01-12T11:25:30.075844Z"
    assert record["triggerTime"]["value"] == {"@type": "DateTime", "@value": "2011-01-12T11:25:30.078261Z"}
    assert sum(len(v) for e in entities for v in e.values() if isinstance(v, list)) == 40 * 8


def test_the_latest_instance_describes_its_channel() -> None:
    record = translate(ASCII)[0][0]
    first = record["analogValue"][0]
    assert first["unitCode"] == "AMP" and first["channelId"]["value"] == "IA"
    assert first["circuitComponent"]["value"] == "Line123" and first["scaledSide"]["value"] == "S"
    assert (first["primaryRatio"]["value"], first["secondaryRatio"]["value"]) == (933.0, 1.0)
    assert record["digitalState"][0]["channelId"]["value"] == "51A"
    assert record["analogChannelCount"]["value"] == 4 and record["digitalChannelCount"]["value"] == 4


def test_binary_record_against_the_bytes() -> None:
    entities, adapter = translate(BINARY)
    assert adapter.rejections == []
    data = BINARY.with_suffix(".dat").read_bytes()
    layout = struct.Struct("<II4hH")  # 4 analog int16, 16 status channels in one word
    rows = list(layout.iter_unpack(data))
    assert len(data) == 90 and len(rows) == entities[0]["sampleCount"]["value"] == 5
    va = samples(entities, "analogValue", "analog:1")
    assert [v for _, v in va] == [pytest.approx(r[2] * 0.000361849) for r in rows]  # kV, primary side (P)
    assert entities[0]["analogValue"][0]["unitCode"] == "KVT"
    st1 = samples(entities, "digitalState", "digital:1")
    assert [v for _, v in st1] == [r[6] & 1 for r in rows]
    assert va[1][0] == "2017-01-07T15:35:41.958333Z"  # 15360 samples per second: 65.1 us after the first
    assert sum(len(v) for e in entities for v in e.values() if isinstance(v, list)) == 5 * 20


def test_the_combined_file_gives_the_same_record() -> None:
    assert translate(CFF)[0] == translate(ASCII)[0]


@pytest.mark.parametrize(("file_type", "code"), [("BINARY32", "i"), ("FLOAT32", "f")])
def test_binary32_and_float32(tmp_path: Path, file_type: str, code: str) -> None:
    cfg = BINARY.read_text().replace("BINARY", file_type).replace("1999", "1999")
    (tmp_path / "r.cfg").write_text(cfg)
    values = [(1, 0, 1000, -2000, 30, 40, 0b101), (2, 65, 1100, -2100, 31, 41, 0b010)]
    (tmp_path / "r.dat").write_bytes(b"".join(struct.pack(f"<II4{code}H", *v) for v in values))
    entities, adapter = translate(tmp_path / "r.cfg")
    assert adapter.rejections == []
    assert [v for _, v in samples(entities, "analogValue", "analog:2")] == [
        pytest.approx(-2000 * 0.000365758), pytest.approx(-2100 * 0.000365758)]  # fmt: skip
    assert [v for _, v in samples(entities, "digitalState", "digital:3")] == [1, 0]


OLD_CFG = """ST 1,REL 7
3,2A,1D
1,VA,A,,V,0.5,0,0,-2048,2047
2,IA,A,,A,0.25,1,0,-2048,2047
1,TRIP,0
50
0
0,3
01/02/95,10:00:00.000000
01/02/95,10:00:00.010000
ASCII
"""


def test_a_1991_file_with_time_stamps_and_a_missing_value(tmp_path: Path) -> None:
    (tmp_path / "old.cfg").write_text(OLD_CFG)
    (tmp_path / "old.dat").write_text("1,0,10,4,0\n2,1000,99999,8,1\n3,2000,30,12,1\n")
    entities, adapter = translate(f"{tmp_path / 'old.cfg'}?utcOffset=+1")
    assert adapter.rejections == []
    va = samples(entities, "analogValue", "analog:1")
    # 10 and 30 * 0.5 V in kV, the canonical unit of voltage; 99999 is a missing value; no rate: the time stamps
    assert va == [("1995-01-02T09:00:00.000000Z", 0.005), ("1995-01-02T09:00:00.002000Z", 0.015)]
    assert [v for _, v in samples(entities, "analogValue", "analog:2")] == [2.0, 3.0, 4.0]
    assert entities[0]["analogValue"][0]["unitCode"] == "KVT"
    assert entities[0]["revisionYear"]["value"] == 1991


@pytest.mark.parametrize(("change", "expected"), [
    (("3,2A,1D", "3,2A,2D"), "line 2 field TT: 3,2A,2D: TT must be ##A + ##D"),
    (("2,IA,A,,A,0.25,1,0", "2,IA,A,,A,x,1,0"), "line 4 field a: not a number: 'x'"),
    (("01/02/95,10:00:00.010000", "31/31/95,10:00:00"), "line 10 field trigger date: not a date and time"),
    (("ASCII\n", "TEXT\n"), "line 11 field ft: not ASCII, BINARY, BINARY32 or FLOAT32: 'TEXT'"),
    (("ASCII\n", ""), "line 11 field ft: the file ends before this line"),
])  # fmt: skip
def test_configuration_errors_name_the_line_and_field(tmp_path: Path, change: tuple[str, str],
                                                      expected: str) -> None:  # fmt: skip
    (tmp_path / "bad.cfg").write_text(OLD_CFG.replace(*change))
    (tmp_path / "bad.dat").write_text("1,0,10,4,0\n")
    with pytest.raises(SourceError) as caught:
        translate(tmp_path / "bad.cfg")
    assert str(caught.value).startswith(f"bad.cfg {expected}")


def test_data_rows_that_do_not_fit_are_rejected_with_their_row(tmp_path: Path) -> None:
    (tmp_path / "r.cfg").write_text(OLD_CFG)
    (tmp_path / "r.dat").write_text("1,0,10,4,0\n2,1000,10,4\n3,2000,x,4,0\n")
    entities, adapter = translate(tmp_path / "r.cfg")
    assert [str(r) for r in adapter.rejections] == [
        "r.dat row 2 field sample: 4 fields, the .cfg announces 5",
        "r.dat row 3 field sample: not a number (could not convert string to float: 'x')"]  # fmt: skip
    assert entities[0]["sampleCount"]["value"] == 1


def test_linked_to_the_scl_ied_and_substation(tmp_path: Path) -> None:
    shutil.copy(ASCII, tmp_path / "r.cfg")
    shutil.copy(ASCII.with_suffix(".dat"), tmp_path / "r.dat")
    scd = (FIXTURES / "scl" / "openscd-valid2007B4.scd").read_text()
    (tmp_path / "station.scd").write_text(scd.replace('name="IED1"', 'name="IED123"').replace(
        '"IED1"', '"IED123"').replace('Substation name="AA1"', 'Substation name="SMARTSTATION"'))  # fmt: skip
    record = translate(f"{tmp_path / 'r.cfg'}?scl=station.scd&sclNetwork=aa1")[0][0]
    assert record["recordedBy"] == {"type": "Relationship", "object": "urn:ngsi-ld:IED:aa1:IED123"}
    assert record["recordedAt"]["object"] == "urn:ngsi-ld:SclSubstation:aa1:SMARTSTATION"
    unlinked, adapter = translate(f"{tmp_path / 'r.cfg'}?scl={FIXTURES / 'scl' / 'openscd-valid2007B4.scd'}")
    assert "recordedBy" not in unlinked[0] and "not linked" in adapter.notes[0]


def test_every_term_is_in_the_project_context() -> None:
    context = json.loads((Path(__file__).resolve().parents[2] / "ontologies" / "agora-context.jsonld").read_text())
    terms = context["@context"]
    for e in translate(ASCII)[0][:1] + translate(BINARY)[0][:1]:
        assert e["type"] in terms
        names = set(e) | {sub for a in ("analogValue", "digitalState") for i in e[a] for sub in i}
        assert sorted(n for n in names if n not in terms and n not in ("id", "type", "value", "unitCode",
                      "observedAt", "datasetId")) == []  # fmt: skip


def test_import_help_names_what_the_source_is(capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    assert main(["import", "comtrade", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: agora import") and "--broker" in out
    assert "SOURCE: a COMTRADE .cfg (its .dat beside it) or .cff" in out and "entity types: FaultRecord" in out


def test_every_record_passes_the_project_checks() -> None:
    from adapters.validate import entity_problems, project_termmap

    termmap = project_termmap()
    for path in (ASCII, BINARY):
        record = translate(path)[0][0]
        assert entity_problems(record, termmap) == [], record["id"]
