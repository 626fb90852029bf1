"""The operations records of the console's Operations view (issue 21, records 0404, 0405) through the HTTP API: the
import runs of the metrics files `agora import --metrics-file` writes, the newest JSON report of the conformance
kit, who may read them, and the precise errors of settings left empty, directories missing and files that are not
what they should be. The files are written by the importer's and the kit's own writers."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.import_metrics import write_import_metrics
from adapters.importer import ImportReport
from broker.core import operations
from broker.http.app import create_app
from broker.settings import Settings
from conformance.kit import Case, Exchange
from conformance.reports import REPORT_FORMAT, RunInfo, write_report
from conformance.runner import FAILED, PASSED, Result
from tests.unit.test_policies_http import make_keys

IMPORTS = "/ngsi-ld/v1/agora/imports"
LATEST = "/ngsi-ld/v1/agora/conformance/latest"


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    imports, reports = tmp_path / "imports", tmp_path / "reports"
    imports.mkdir()
    reports.mkdir()
    return imports, reports


def _client(tmp_path: Path, **settings: Any) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    url = f"sqlite:///{tmp_path}/agora.db"
    keys = make_keys(url, admin="admin", operator="water-operator")
    with TestClient(create_app(Settings(store=url, auth="required", **settings))) as client:
        yield client, keys


@pytest.fixture()
def broker(tmp_path: Path, dirs: tuple[Path, Path]) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    yield from _client(tmp_path, import_metrics_dir=str(dirs[0]), conformance_reports_dir=str(dirs[1]))


def _at(path: Path, when: dt.datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def _import(path: Path, adapter: str, report: ImportReport, rejected: int = 0) -> None:
    write_import_metrics(str(path), adapter, report, rejected, 2.5)


def test_the_import_runs_of_the_metrics_files(broker: tuple[TestClient, Any], dirs: tuple[Path, Path]) -> None:
    client, keys = broker
    imports = dirs[0]
    done = ImportReport(sent=Counter({"GtfsStop": 9, "GtfsRoute": 5}), created=12, updated=2)
    _import(imports / "gtfs.prom", "gtfs", done)
    partial = ImportReport(sent=Counter({"Junction": 4}), created=3, failed=[("urn:j:4", "refused")])
    _import(imports / "epanet.prom", "epanet", partial, rejected=7)
    _at(imports / "epanet.prom", dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC))
    (imports / "node.prom").write_text("# TYPE node_load1 gauge\nnode_load1 0.5\n")  # another exporter's file
    (imports / "broken.prom").write_text("agora_import_last_entities{adapter=\n")
    (imports / "gtfs.prom.123.456").write_text("garbage")  # the importer's file aside, before its rename
    (imports / "notes.txt").write_text("not metrics")

    response = client.get(IMPORTS, headers=keys["admin"])
    assert response.status_code == 200, response.text
    runs = {run["file"]: run for run in response.json()}
    assert set(runs) == {"gtfs.prom", "epanet.prom", "broken.prom"}
    gtfs = runs["gtfs.prom"]
    assert (gtfs["adapter"], gtfs["succeeded"], gtfs["durationSeconds"]) == ("gtfs", True, 2.5)
    assert gtfs["counts"] == {
        "created": 12,
        "updated": 2,
        "unchanged": 0,
        "refused": 0,
        "invalid": 0,
        "pruned": 0,
        "rejectedRows": 0,
    }
    assert gtfs["sent"] == {"GtfsRoute": 5, "GtfsStop": 9}
    epanet = runs["epanet.prom"]
    # no success timestamp after a partial run: it ended when its file was written
    assert (epanet["succeeded"], epanet["endedAt"]) == (False, "2026-12-01T08:00:00Z")
    assert (epanet["counts"]["refused"], epanet["counts"]["rejectedRows"], epanet["counts"]["created"]) == (1, 7, 3)
    assert runs["broken.prom"]["problem"].startswith("not an import metrics file")
    ended = [run.get("endedAt", "") for run in response.json()]
    assert ended == sorted(ended, reverse=True) and ended[0] == gtfs["endedAt"]  # newest first


def test_only_an_administrator_reads_them(broker: tuple[TestClient, Any]) -> None:
    client, keys = broker
    for path, what in ((IMPORTS, "read the import runs"), (LATEST, "read the conformance reports")):
        refused = client.get(path, headers=keys["operator"])
        assert refused.status_code == 403, path
        assert refused.json()["title"] == "Forbidden" and what in refused.json()["detail"], refused.json()
        assert client.get(path).status_code == 401, path
        unknown = client.get(path, params={"limit": "10"}, headers=keys["admin"])
        assert unknown.status_code == 400 and "limit" in unknown.json()["detail"], path


def test_settings_left_empty_are_resources_this_broker_lacks(tmp_path: Path) -> None:
    for client, keys in _client(tmp_path):
        for path, setting in ((IMPORTS, "import_metrics_dir"), (LATEST, "conformance_reports_dir")):
            response = client.get(path, headers=keys["admin"])
            assert response.status_code == 404, path
            assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
            assert f"the setting {setting} is not set" in response.json()["detail"]


def test_a_directory_that_cannot_be_read_is_503_never_500(tmp_path: Path) -> None:
    missing, a_file = tmp_path / "nowhere", tmp_path / "a-file"
    a_file.write_text("")
    for directory, why in ((missing, "No such file or directory"), (a_file, "Not a directory")):
        for client, keys in _client(
            tmp_path, import_metrics_dir=str(directory), conformance_reports_dir=str(directory)
        ):
            for path, setting in ((IMPORTS, "import_metrics_dir"), (LATEST, "conformance_reports_dir")):
                response = client.get(path, headers=keys["admin"])
                assert response.status_code == 503, (path, response.text)
                assert response.headers["content-type"] == "application/json"
                assert response.json()["detail"] == f"the {setting} {directory} cannot be read: {why}"


def _results() -> list[Result]:
    # fmt: off
    exchange = Exchange("POST", "http://b/ngsi-ld/v1/entities", {}, "{}", 500, {}, "{}")
    return [
        Result(Case("entities.ok", "5.6.1", "Create answers 201.", lambda k: None), PASSED),
        Result(Case("entities.bad", "5.6.1", "A second create is 409.", lambda k: None), FAILED, "got 500", 0.1,
               [exchange]),
        Result(Case("types.list", "5.7.5", "Types are listed.", lambda k: None), PASSED),
    ]
    # fmt: on


def _report(path: Path, broker: str, when: dt.datetime) -> None:
    write_report(path, _results(), RunInfo(broker, None, when, 3.0))
    _at(path, when)


def test_the_newest_report_of_the_kit(broker: tuple[TestClient, Any], dirs: tuple[Path, Path]) -> None:
    client, keys = broker
    reports = dirs[1]
    _report(reports / "older.json", "http://old", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    _report(reports / "newer.json", "http://new", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    (reports / "newer.md").write_text("# not read")
    _at(reports / "newer.md", dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    response = client.get(LATEST, headers=keys["admin"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["file"], report["broker"], report["format"]) == ("newer.json", "http://new", REPORT_FORMAT)
    assert report["counts"] == {"passed": 2, "failed": 1, "notImplemented": 0, "knownGap": 0}
    assert [(c["clause"], c["counts"]["passed"], c["counts"]["failed"]) for c in report["clauses"]] == [
        ("5.6.1", 1, 1),
        ("5.7.5", 1, 0),
    ]
    [failed] = [c for c in report["cases"] if c["outcome"] == "failed"]
    assert failed["name"] == "entities.bad" and "< 500" in failed["exchanges"][0]


def test_no_report_yet_and_a_newest_file_that_is_no_report(
    broker: tuple[TestClient, Any], dirs: tuple[Path, Path]
) -> None:
    client, keys = broker
    reports = dirs[1]
    empty = client.get(LATEST, headers=keys["admin"])
    assert empty.status_code == 404
    assert empty.json()["detail"].startswith(f"no conformance report in {reports} yet")
    _report(reports / "good.json", "http://b", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    for name, text, why in (
        ("cut.json", '{"format": "agora-conf', "Unterminated string"),
        ("other.json", json.dumps({"format": "someone-else/2"}), "its format is 'someone-else/2'"),
        ("list.json", "[]", "not a JSON object"),
        ("thin.json", json.dumps({"format": REPORT_FORMAT, "started": "x"}), "counts, clauses, cases missing"),
        ("latin.json", "\xe9".encode("latin-1"), "codec can't decode"),
    ):
        path = reports / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        _at(path, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
        response = client.get(LATEST, headers=keys["admin"])
        assert response.status_code == 503, name
        detail = response.json()["detail"]
        assert detail.startswith(f"the newest file of conformance_reports_dir, {name}, is not a JSON report"), detail
        assert why in detail, detail
        path.unlink()
    assert client.get(LATEST, headers=keys["admin"]).json()["file"] == "good.json"


@pytest.mark.parametrize(
    ("metric", "value", "why"),
    [
        ('agora_import_last_entities{adapter="x",outcome="created"}', "1.5", "1.5 is not a count"),
        ('agora_import_last_entities{adapter="x",outcome="created"}', "-1", "-1 is not a count"),
        ('agora_import_last_entities_sent{adapter="x",type="T"}', "+Inf", "inf is not a count"),
        ('agora_import_last_duration_seconds{adapter="x"}', "NaN", "nan is not a duration"),
        ('agora_import_last_success_timestamp_seconds{adapter="x"}', "1e300", "1e+300 is not a time"),
    ],
)
def test_values_that_are_no_counts_or_times_make_a_file_a_problem(metric: str, value: str, why: str) -> None:
    name = metric.split("{")[0]
    with pytest.raises(ValueError, match=re.escape(why)):
        operations.parse_import_metrics("x.prom", f"# TYPE {name} gauge\n{metric} {value}\n", 0.0)


def test_the_broker_reads_the_format_the_kit_writes() -> None:
    assert operations.REPORT_FORMAT == REPORT_FORMAT
