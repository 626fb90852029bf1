"""The kit's machinery without a broker: outcome classification, known gaps, the helper servers, the reports."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rdflib import Graph, Namespace
from rdflib.namespace import RDF

from conformance.features import offered
from conformance.helpers import ContextServer, Receiver
from conformance.kit import Case, CaseFailed, Exchange, FeatureMissing, Kit, RunContext
from conformance.known_gaps import KnownGap
from conformance.reports import REPORT_FORMAT, RunInfo, earl, json_report, junit, markdown, summary_line, write_report
from conformance.runner import FAILED, KNOWN_GAP, NOT_IMPLEMENTED, PASSED, Result, execute, fixed_gaps

EARL = Namespace("http://www.w3.org/ns/earl#")


def _passes(k: Kit) -> None:
    k.expect(True, "never")


def _fails(k: Kit) -> None:
    k.fail("the broker said no")


def _lacks(k: Kit) -> None:
    raise FeatureMissing("temporal", "GET /temporal/entities answered 501")


def _crashes(k: Kit) -> None:
    raise ZeroDivisionError("a bug in the case")


def _case(check: object, name: str = "demo.case", feature: str | None = None) -> Case:
    return Case(name, "5.6.1", "A requirement.", check, feature)  # type: ignore[arg-type]


@pytest.fixture
def run() -> RunContext:
    # nothing listens on port 9: the cases above never send a request
    return RunContext(broker="http://127.0.0.1:9")


def test_outcomes(run: RunContext) -> None:
    assert execute(_case(_passes), run, {}).outcome == PASSED
    failed = execute(_case(_fails), run, {})
    assert (failed.outcome, failed.message) == (FAILED, "the broker said no")
    assert execute(_case(_lacks), run, {}).outcome == NOT_IMPLEMENTED
    crashed = execute(_case(_crashes), run, {})
    assert crashed.outcome == FAILED and "ZeroDivisionError" in crashed.message


def test_a_missing_feature_is_not_implemented_without_running_the_case(run: RunContext) -> None:
    run.features["temporal"] = (False, "declared by --without")
    result = execute(_case(_fails, feature="temporal"), run, {})
    assert result.outcome == NOT_IMPLEMENTED and "declared by --without" in result.message


def test_known_gaps_are_reported_apart_and_noticed_when_fixed(run: RunContext) -> None:
    gaps = {"demo.case": KnownGap("lacks it", 4)}
    gap = execute(_case(_fails), run, gaps)
    assert gap.outcome == KNOWN_GAP and gap.gap == gaps["demo.case"]
    fixed = execute(_case(_passes), run, gaps)
    assert fixed.outcome == PASSED and fixed_gaps([gap, fixed]) == [fixed]


def test_feature_probe_reading() -> None:
    def answer(status: int, body: bytes = b"", content_type: str = "application/json") -> httpx.Response:
        request = httpx.Request("GET", "http://b/ngsi-ld/v1/temporal/entities")
        return httpx.Response(status, content=body, headers={"content-type": content_type}, request=request)

    assert offered(answer(200, b"[]"))
    assert offered(answer(400, b'{"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"}'))
    assert not offered(answer(501))
    assert not offered(answer(405))
    assert not offered(answer(404, b'{"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"}'))
    assert offered(answer(404, b'{"type": "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant"}'))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def test_receiver_keeps_notifications_per_path(receiver: Receiver) -> None:
    url, path = receiver.endpoint()
    failing_url, failing_path = receiver.endpoint(failing=True)
    assert httpx.post(url, json={"type": "Notification", "data": []}, headers={"X-A": "1"}).status_code == 200
    assert httpx.post(failing_url, content=b"not json").status_code == 500
    [got] = receiver.received(path)
    assert got.body == {"type": "Notification", "data": []} and got.headers["x-a"] == "1"
    assert receiver.received(failing_path)[0].body == "not json"


def test_receiver_advertises_the_public_host() -> None:
    server = Receiver("127.0.0.1", 0, public_host="kit.example.net")
    try:
        assert server.endpoint()[0].startswith(f"http://kit.example.net:{server.port}/notify/")
    finally:
        server.server.server_close()


def test_context_server_serves_what_is_published() -> None:
    server = ContextServer()
    server.start()
    try:
        url = server.publish({"@context": {"a": "https://example.org/a"}})
        response = httpx.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "application/ld+json"
        assert response.json() == {"@context": {"a": "https://example.org/a"}}
        assert httpx.get(server.missing_url()).status_code == 404
    finally:
        server.stop()


def _results() -> list[Result]:
    exchange = Exchange("POST", "http://b/ngsi-ld/v1/entities", {"content-type": "application/json"}, "{}", 500,
                        {"content-type": "application/json"}, '{"type": "x"}')  # fmt: skip
    return [
        Result(_case(_passes, "entities.ok"), PASSED, duration=0.01),
        Result(_case(_fails, "entities.bad"), FAILED, "expected HTTP 201, got 500", 0.02, [exchange]),
        Result(_case(_lacks, "temporal.absent", "temporal"), NOT_IMPLEMENTED, "temporal: answered 501"),
        Result(_case(_fails, "errors.gap"), KNOWN_GAP, "expected 411", 0.01, [exchange], KnownGap("lacks", None)),
    ]


def _info() -> RunInfo:
    started = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)
    return RunInfo("http://b", None, started, 1.5, {"temporal": (False, "501")}, [("6.4", "entities", 2)])


def test_summary_line() -> None:
    assert summary_line(_results()) == "1 passed, 1 failed, 1 not implemented, 1 known gaps"


def test_markdown_report() -> None:
    text = markdown(_results(), _info())
    assert "### 5.6.1 Create Entity" in text
    assert "| `entities.bad` | A requirement. | failed | expected HTTP 201, got 500 |" in text
    assert "> POST http://b/ngsi-ld/v1/entities" in text and "< 500" in text
    assert "| `errors.gap` | 5.6.1 | no issue yet | lacks |" in text
    assert "| temporal | no | 501 |" in text


def test_junit_report() -> None:
    root = ET.fromstring(junit(_results(), _info()))
    [suite_entities] = [s for s in root.iter("testsuite") if s.get("name") == "conformance.entities"]
    assert (suite_entities.get("tests"), suite_entities.get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["entities.bad"].find("failure") is not None
    assert "< 500" in (cases["entities.bad"].find("failure").text or "")  # type: ignore[union-attr]
    assert cases["temporal.absent"].find("skipped").get("type") == "not-implemented"  # type: ignore[union-attr]
    assert cases["errors.gap"].find("skipped").get("type") == "known-gap"  # type: ignore[union-attr]


def test_earl_report() -> None:
    graph = Graph().parse(data=earl(_results(), _info()), format="turtle")
    outcomes = sorted(str(graph.value(graph.value(a, EARL.result), EARL.outcome)).rsplit("#", 1)[1]
                      for a in graph.subjects(RDF.type, EARL.Assertion))  # fmt: skip
    assert outcomes == ["failed", "failed", "inapplicable", "passed"]
    assert (None, EARL.subject, None) in graph


def test_json_report() -> None:
    doc = json.loads(json_report(_results(), _info()))
    assert (doc["format"], doc["broker"], doc["started"]) == (REPORT_FORMAT, "http://b", "2026-11-26T01:00:00+00:00")
    assert doc["counts"] == {"passed": 1, "failed": 1, "notImplemented": 1, "knownGap": 1}
    assert doc["clauses"] == [{"clause": "5.6.1", "title": "Create Entity", "counts": doc["counts"]}]
    cases = {c["name"]: c for c in doc["cases"]}
    assert cases["entities.bad"]["outcome"] == "failed" and cases["entities.bad"]["detail"].endswith("got 500")
    assert "< 500" in cases["entities.bad"]["exchanges"][0]
    assert "exchanges" not in cases["entities.ok"]  # the exchanges of failures and known gaps only, as in Markdown
    assert cases["errors.gap"]["knownGap"] == {"ref": "no issue yet", "reason": "lacks"}
    assert doc["features"] == [{"name": "temporal", "offered": False, "decidedBy": "501"}]
    assert doc["coverage"] == [{"clause": "6.4", "title": "entities", "cases": 2}]


def test_a_report_is_written_whole_under_its_name(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("an older report")
    write_report(target, _results(), _info())
    assert json.loads(target.read_text())["format"] == REPORT_FORMAT
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # nothing left aside
    with pytest.raises(ValueError, match=re.escape("must be one of .md, .xml, .ttl, .json")):
        write_report(tmp_path / "run.html", _results(), _info())


def test_case_failed_is_an_assertion_error() -> None:
    assert issubclass(CaseFailed, AssertionError)
