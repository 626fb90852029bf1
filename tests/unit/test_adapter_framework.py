"""The adapter framework: registry, ids, the importer's accounting of upsert answers, and the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters import base, importer
from adapters.base import Adapter, Entity, Rejection, load_adapter, registered
from adapters.gtfs import GtfsAdapter
from adapters.progress import Progress
from broker import cli

GOOGLE = Path(__file__).resolve().parents[1] / "fixtures" / "gtfs" / "google-sample-gtfs.zip"


def test_registry_finds_the_builtin_gtfs_adapter() -> None:
    assert registered()["gtfs"] == "adapters.gtfs:GtfsAdapter"
    assert load_adapter("gtfs") is GtfsAdapter
    with pytest.raises(KeyError, match="no adapter named 'nope'"):
        load_adapter("nope")


def test_registry_falls_back_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base.importlib.metadata, "entry_points", lambda group: [])
    assert load_adapter("gtfs") is GtfsAdapter


def test_entity_ids_encode_each_part() -> None:
    class Dummy(Adapter):
        name = "dummy"
        description = "test"

        def entities(self, source: str) -> Iterator[Entity]:
            yield from ()

    adapter = Dummy(network="My Net")
    assert adapter.entity_id("GtfsStopTime", "a:b", "3") == "urn:ngsi-ld:GtfsStopTime:My%20Net:a%3Ab:3"
    adapter.reject("stops.txt", 4, "stop_lat", "bad")
    assert adapter.rejections == [Rejection("stops.txt", 4, "stop_lat", "bad")]
    assert str(adapter.rejections[0]) == "stops.txt row 4 field stop_lat: bad"


def fake_broker(answers: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/jsonldContexts") and request.method == "GET":
            return httpx.Response(200, json=["http://broker/ngsi-ld/v1/jsonldContexts/other"])
        if request.url.path.endswith("/jsonldContexts/other"):
            return httpx.Response(200, json={"@context": {"x": "http://example.org/x"}})
        if request.url.path.endswith("/jsonldContexts"):
            return httpx.Response(201, headers={"Location": "/ngsi-ld/v1/jsonldContexts/abc"})
        return answers.pop(0)

    return httpx.MockTransport(handle)


def test_importer_counts_created_updated_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    entities = [{"id": f"urn:ngsi-ld:T:n:{i}", "type": "T"} for i in range(5)]
    answers = [
        httpx.Response(201, json=["urn:ngsi-ld:T:n:0"]),
        httpx.Response(204),
        httpx.Response(207, json={"success": [], "errors": [{"entityId": "urn:ngsi-ld:T:n:4", "error": {
            "type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "detail": "bad"}}]}),
    ]  # fmt: skip
    seen: list[httpx.Request] = []
    transport = fake_broker(answers, seen)
    real_client = httpx.Client
    monkeypatch.setattr(importer.httpx, "Client", lambda **kw: real_client(transport=transport, **kw))
    report = importer.run_import(entities, "http://broker", tenant="t1", chunk_size=2)
    assert report.sent == {"T": 5}
    assert (report.created, report.updated) == (1, 3)
    assert report.failed == [("urn:ngsi-ld:T:n:4", "https://uri.etsi.org/ngsi-ld/errors/BadRequestData: bad")]
    upserts = [r for r in seen if "upsert" in r.url.path]
    assert [len(json.loads(r.content)) for r in upserts] == [2, 2, 1]
    assert upserts[0].url.params["options"] == "update"
    assert upserts[0].headers["NGSILD-Tenant"] == "t1"
    assert upserts[0].headers["Link"].startswith("<http://broker/ngsi-ld/v1/jsonldContexts/abc>;")


def test_importer_fails_clearly_when_the_broker_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = fake_broker([httpx.Response(400, json={"type": "x", "title": "nope"})], [])
    real_client = httpx.Client
    monkeypatch.setattr(importer.httpx, "Client", lambda **kw: real_client(transport=transport, **kw))
    with pytest.raises(importer.ImportFailed, match="batch upsert refused: HTTP 400"):
        importer.run_import([{"id": "urn:x:1", "type": "T"}], "http://broker", context="http://ctx/c.jsonld")


def test_progress_printer_plain_when_not_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(out, every=0)
    progress.update(10)
    progress.done(20)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("10 entities, ") and lines[1].startswith("20 entities, ")
    assert "\r" not in out.getvalue()


def test_cli_lists_adapters(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["adapters"]) == 0
    assert "gtfs" in capsys.readouterr().out


def test_cli_dry_run_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["import", "gtfs", str(GOOGLE), "--dry-run", "--network", "demo"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    # 70 entities of the files translated since the start, plus 2 fare classes and 4 fare rules (decision 0039)
    assert len(lines) == 76 and lines[0]["id"] == "urn:ngsi-ld:GtfsAgency:demo:DTA"
    assert "GtfsStopTime             28" in captured.err
    assert "GtfsFareClass            2" in captured.err and "GtfsFareRule             4" in captured.err


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["import", "gtfs", str(GOOGLE)]) == 2  # no --broker
    assert cli.main(["import", "nope", str(GOOGLE), "--dry-run"]) == 2
    missing = tmp_path / "missing.zip"
    assert cli.main(["import", "gtfs", str(missing), "--dry-run"]) == 1
    assert "not a readable GTFS zip" in capsys.readouterr().err
