"""The conformance kit against a real Agora (uvicorn, SQLite) and a real mosquitto: every case passes or is a listed
known gap; the three report formats parse; the CLI's exit status and closing line; the pytest plug-in."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, Namespace
from rdflib.namespace import RDF

from conformance.known_gaps import AGORA
from conformance.runner import load_cases
from tests.e2e.helpers import FAST_NOTIFY
from tests.support.mosquitto import Mosquitto, running_mosquitto
from tests.support.servers import BrokerProcess, free_port, running_broker

FAST = {
    **FAST_NOTIFY,
    # Fewer instances per attribute than the temporal paging cases create, so that their 206 answers are checked.
    "AGORA_TEMPORAL_INSTANCE_LIMIT": "50",
}
EARL = Namespace("http://www.w3.org/ns/earl#")
# Agora offers every optional feature of the kit: no case may say "not implemented".
ABSENT_FEATURES: set[str] = set()
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) not implemented, (\d+) known gaps$")


@dataclass
class KitRun:
    returncode: int
    stdout: str
    stderr: str
    reports: Path

    @property
    def summary(self) -> tuple[int, ...]:
        match = SUMMARY.match(self.stdout.strip().splitlines()[-1])
        assert match, self.stdout[-2000:]
        return tuple(int(n) for n in match.groups())


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", "conformance", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with running_mosquitto(tmp_path_factory.mktemp("kit-mosquitto")) as server:
        yield server


@pytest.fixture(scope="module")
def agora(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("kit-broker")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=FAST) as broker:
        yield broker


@pytest.fixture(scope="module")
def whole_run(agora: BrokerProcess, mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    """One run of the whole kit through the CLI, with the three reports (the kit takes seconds, not minutes)."""
    reports = tmp_path_factory.mktemp("kit-reports")
    done = run_cli(
        "--broker", agora.url, "--mqtt", f"mqtt://{mosquitto.host}:{mosquitto.port}",
        "--report", str(reports / "report.md"), "--report", str(reports / "report.xml"),
        "--report", str(reports / "report.ttl"), timeout=300,  # a loaded CI machine: the kit takes ~60 s when idle
    )  # fmt: skip
    return KitRun(done.returncode, done.stdout, done.stderr, reports)


def test_every_case_passes_or_is_a_known_gap(whole_run: KitRun, agora: BrokerProcess) -> None:
    passed, failed, not_implemented, gaps = whole_run.summary
    failures = [line for line in whole_run.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == 0 and not failures, "\n".join(failures) + "\n" + agora.log()[-3000:]
    assert whole_run.returncode == 0, whole_run.stderr
    assert passed + failed + not_implemented + gaps == len(load_cases())
    assert passed >= 150
    assert gaps == len(AGORA), "a known gap of conformance/known_gaps.py no longer reproduces: remove its row"
    assert "no longer reproduces" not in whole_run.stdout


def test_only_absent_features_are_not_implemented(whole_run: KitRun) -> None:
    skipped = ET.parse(whole_run.reports / "report.xml").getroot().iter("skipped")
    messages = [e.get("message", "") for e in skipped if e.get("type") == "not-implemented"]
    assert len(messages) == whole_run.summary[2]
    features = {message.removeprefix("not implemented: ").split(":")[0] for message in messages}
    assert features <= ABSENT_FEATURES, features


def test_mqtt_case_ran_against_mosquitto(whole_run: KitRun) -> None:
    assert re.search(r"^ok\s+7\s+subscriptions\.mqtt_notification$", whole_run.stdout, re.MULTILINE), whole_run.stdout


def test_junit_report(whole_run: KitRun) -> None:
    root = ET.parse(whole_run.reports / "report.xml").getroot()
    assert root.tag == "testsuites"
    cases = list(root.iter("testcase"))
    assert {c.get("name") for c in cases} == {case.name for case in load_cases()}
    assert sum(int(s.get("failures", "-1")) for s in root.iter("testsuite")) == 0
    gap_cases = {c.get("name") for c in cases if any(s.get("type") == "known-gap" for s in c.iter("skipped"))}
    assert gap_cases == set(AGORA)
    clauses = {p.get("value") for c in cases for p in c.iter("property") if p.get("name") == "clause"}
    assert {"5.6.1", "6.3.5", "4.9", "7"} <= clauses


def test_earl_report(whole_run: KitRun) -> None:
    graph = Graph().parse(whole_run.reports / "report.ttl", format="turtle")
    assertions = list(graph.subjects(RDF.type, EARL.Assertion))
    assert len(assertions) == len(load_cases())
    outcomes = [graph.value(graph.value(a, EARL.result), EARL.outcome) for a in assertions]
    passed = whole_run.summary[0]
    assert outcomes.count(EARL.passed) == passed
    assert outcomes.count(EARL.failed) == len(AGORA)
    assert outcomes.count(EARL.inapplicable) == whole_run.summary[2]


def test_markdown_report(whole_run: KitRun) -> None:
    text = (whole_run.reports / "report.md").read_text()
    assert "### 5.6.1 Create Entity" in text
    assert "| `entities.create_answers_201_with_location` |" in text
    assert all(f"`{name}`" in text for name in AGORA) and ("## Known gaps" in text) == bool(AGORA)
    assert "## Coverage of the inventory's clauses" in text and "Clauses without a case" in text
    # a known gap shows the HTTP exchange behind it (failures do too: test_cli_exits_1_when_a_case_fails)
    assert ("> POST " in text and "< 201" in text) == bool(AGORA)


class _BrokenBroker(BaseHTTPRequestHandler):
    """Answers every GET with an empty array and refuses every write with 500: not an NGSI-LD broker."""

    def do_GET(self) -> None:
        self._answer(200, b"[]")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(500, b"{}")

    do_DELETE = do_GET

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def broken_broker() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenBroker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_exits_1_when_a_case_fails(broken_broker: str, tmp_path: Path) -> None:
    report = tmp_path / "failed.md"
    done = run_cli(
        "--broker", broken_broker, "--only", "entities.create_answers_201_with_location", "--report", str(report)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 passed, 1 failed, 0 not implemented, 0 known gaps"
    assert "FAIL 5.6.1" in done.stdout and "expected HTTP 201, got 500" in done.stdout
    text = report.read_text()  # the report shows the HTTP exchange behind the failure
    assert "> POST " in text and "< 500" in text


def test_cli_exits_2_without_a_broker() -> None:
    done = run_cli("--broker", f"http://127.0.0.1:{free_port()}", "--only", "5.6.1")
    assert done.returncode == 2
    assert "no NGSI-LD broker answers" in done.stderr


def test_pytest_plugin_runs_the_same_cases(agora: BrokerProcess, tmp_path: Path) -> None:
    gap = next(iter(AGORA), None)  # a known gap, while Agora has one, shows as xfailed with its reason
    only = "discovery" + (f",{gap}" if gap else "")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rxs", "--broker-url", agora.url,
         "--conformance-only", only],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    expected = sum(1 for case in load_cases() if case.group == "discovery")
    assert done.returncode == 0, done.stdout[-3000:]
    summary = rf"\b{expected} passed" + (", 1 xfailed" if gap else "") + r" in\b"
    assert re.search(summary, done.stdout), done.stdout[-3000:]
    if gap:
        assert f"known gap ({AGORA[gap].ref})" in done.stdout


def test_the_kit_leaves_nothing_behind(whole_run: KitRun, agora: BrokerProcess) -> None:
    """Each case cleans up what it created, so the kit can run against a shared broker."""
    import httpx

    base = agora.url + "/ngsi-ld/v1"
    assert whole_run.summary[0] > 0
    assert httpx.get(base + "/types").json()["typeList"] == []
    assert httpx.get(base + "/subscriptions").json() == []
    assert httpx.get(base + "/jsonldContexts", params={"kind": "Hosted"}).json() == []


def test_a_feature_declared_absent_is_not_implemented(agora: BrokerProcess) -> None:
    """A broker without an optional feature gets "not implemented", never a wall of failures."""
    cases = [case for case in load_cases() if case.feature == "temporal"]
    groups = ",".join(sorted({case.group for case in cases}))  # temporal, temporal_provision, temporal_query, ...
    temporal = len(cases)
    done = run_cli("--broker", agora.url, "--only", groups, "--without", "temporal")
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1] == f"0 passed, 0 failed, {temporal} not implemented, 0 known gaps"
    assert "n/i " in done.stdout and "declared by --without" in done.stdout
