"""The web console (issue 21) in headless Chromium (Debian's, driven by Playwright): one broker under uvicorn holding
the GTFS sample (imported by `agora import --metrics-file`, whose run the Operations view shows) and a few water and
grid entities, one browser, one page, under the console's strict CSP.

Screenshots are kept under tmp/artefacts/console (AGORA_TEST_ARTEFACTS moves them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.helpers import ROOT, agora_cli, link, wait_for
from tests.e2e.test_conformance_kit import _BrokenBroker
from tests.support.receiver import running_receiver
from tests.support.servers import BrokerProcess, free_port, running_broker

CHROMIUM = "/usr/bin/chromium"
GTFS = ROOT / "tests" / "fixtures" / "gtfs" / "google-sample-gtfs.zip"
AXE = ROOT / "tests" / "e2e" / "console_vendor" / "axe.min.js"
API = "/ngsi-ld/v1"
ARTEFACTS = Path(os.environ.get("AGORA_TEST_ARTEFACTS", ROOT / "tmp" / "artefacts")) / "console"
METER = "urn:ngsi-ld:Junction:RHINE:J1"
#: The instances of the meter's pressure: one a day at noon, 2026-11-01 to 2026-11-12.
READINGS = [(f"2026-11-{day:02d}T12:00:00Z", 40.0 + day) for day in range(1, 13)]


def _junction(n: int, lon: float, lat: float) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Junction:RHINE:J{n}",
        "type": "Junction",
        "elevation": {"type": "Property", "value": 100 + n, "unitCode": "MTR"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
    }


def _pipe(n: int, a: tuple[float, float], b: tuple[float, float]) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Pipe:RHINE:P{n}",
        "type": "Pipe",
        "location": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [list(a), list(b)]}},
        "startsAt": {"type": "Relationship", "object": "urn:ngsi-ld:Junction:RHINE:J1"},
    }


SEED = [
    _junction(1, -116.76, 36.90),
    _junction(2, -116.74, 36.91),
    _junction(3, -116.72, 36.92),
    _pipe(1, (-116.76, 36.90), (-116.74, 36.91)),
    _pipe(2, (-116.74, 36.91), (-116.72, 36.92)),
    {
        "id": "urn:ngsi-ld:BusbarSection:GRID:B1",
        "type": "BusbarSection",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-116.70, 36.88]}},
    },
]


@pytest.fixture(scope="module")
def operations_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The directories of the import runs' metrics files and of the conformance kit's reports (records 0404, 0405)."""
    tmp = tmp_path_factory.mktemp("operations")
    (tmp / "imports").mkdir()
    (tmp / "reports").mkdir()
    return tmp / "imports", tmp / "reports"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, operations_dirs: tuple[Path, Path]) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("console")
    imports, reports = operations_dirs
    env = {"AGORA_IMPORT_METRICS_DIR": str(imports), "AGORA_CONFORMANCE_REPORTS_DIR": str(reports)}
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=env) as process:
        # a real `agora import`, whose run the Operations view shows from its metrics file
        done = agora_cli("import", "gtfs", str(GTFS), "--broker", process.url, "--network", "DEMO",
                         "--metrics-file", str(imports / "gtfs-demo.prom"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "created: 76, updated: 0, unchanged: 0, refused by the broker: 0" in done.stderr, done.stderr
        with httpx.Client(base_url=process.url, timeout=10) as http:
            context = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]
            http.headers.update(link(context))
            created = http.post(f"{API}/entityOperations/create", json=SEED)
            assert created.status_code == 201, created.text
            pressure = [{"type": "Property", "value": v, "unitCode": "BAR", "observedAt": t} for t, v in READINGS]
            history = http.post(f"{API}/temporal/entities/{METER}/attrs", json={"pressure": pressure})
            assert history.status_code == 204, history.text
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the console tests need Debian's chromium at {CHROMIUM}: run 'make console-browser' (as root)")
    with sync_playwright() as playwright:
        # SwiftShader: WebGL (MapLibre) without a GPU
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(broker: BrokerProcess, browser: Browser) -> Iterator[Page]:
    shutil.rmtree(ARTEFACTS, ignore_errors=True)
    ARTEFACTS.mkdir(parents=True)
    the_page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    the_page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    the_page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    the_page.set_default_timeout(5_000)
    the_page.goto(f"{broker.url}/console")
    the_page.wait_for_function("() => window.agora && window.agora.ready", timeout=15_000)
    setattr(the_page, "problems", problems)  # noqa: B010 - read by the tests below
    yield the_page
    the_page.close()


def _entity_count(broker: BrokerProcess, type_name: str) -> int:
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        found = http.get(f"{API}/entities", params={"type": type_name, "count": "true", "limit": 0})
        return int(found.headers["NGSILD-Results-Count"])


def test_the_map_shows_every_layer_with_its_features(page: Page, broker: BrokerProcess) -> None:
    page.wait_for_function("() => document.querySelectorAll('#layers li').length === 4")
    counts = page.evaluate("() => window.agora.sourceCounts()")
    stops = _entity_count(broker, "https://smartdatamodels.org/dataModel.UrbanMobility/GtfsStop")
    assert stops == 9  # the sample's stops, every one with a location
    assert counts == {"GtfsStop": stops, "Junction": 3, "Pipe": 2, "BusbarSection": 1}
    assert page.locator("#map canvas").count() == 1
    page.screenshot(path=str(ARTEFACTS / "map.png"))
    assert page.problems == []  # type: ignore[attr-defined] # no CSP violation, no failed request, no error


def test_a_search_finds_a_stop_and_opens_it(page: Page) -> None:
    page.click("button[data-view=entities]")
    page.select_option("#s-type", label="GtfsStop")
    page.fill("#s-q", "name~=Furnace")
    page.click("#search button[type=submit]")
    result = page.locator("#results button", has_text="urn:ngsi-ld:GtfsStop:DEMO:FUR_CREEK_RES")
    result.wait_for()
    assert page.locator("#results li").count() == 1
    result.click()
    page.locator("#entity h3", has_text="FUR_CREEK_RES").wait_for()
    assert "Furnace Creek Resort (Demo)" in page.locator("#entity table").inner_text()
    page.screenshot(path=str(ARTEFACTS / "entity.png"))


def test_a_relationship_is_a_link_and_units_are_named(page: Page, broker: BrokerProcess) -> None:
    page.evaluate("() => document.querySelector('#s-id').value = ''")
    page.select_option("#s-type", label="Pipe")
    page.fill("#s-q", "")
    page.click("#search button[type=submit]")
    page.locator("#results button", has_text="urn:ngsi-ld:Pipe:RHINE:P1").click()
    page.locator("#entity button.link", has_text=METER).click()
    page.locator("#entity h3", has_text=METER).wait_for()
    row = page.locator("#entity tr", has_text="elevation").inner_text()
    assert "101" in row and "m (MTR)" in row


def test_a_patch_appears_in_the_live_feed_within_a_second(page: Page, broker: BrokerProcess) -> None:
    page.click("button[data-view=live]")
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        http.headers.update(link(http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]))
        sent = time.monotonic()
        patched = http.patch(f"{API}/entities/urn:ngsi-ld:Junction:RHINE:J2/attrs", json={"elevation": 250})
        assert patched.status_code == 204, patched.text
    page.locator("#feed li[data-id='urn:ngsi-ld:Junction:RHINE:J2']").wait_for(timeout=5_000)
    assert time.monotonic() - sent < 1.0
    assert "changed elevation" in page.locator("#feed li").first.inner_text()
    page.screenshot(path=str(ARTEFACTS / "live.png"))


def test_a_chart_draws_the_instances_of_a_meter(page: Page) -> None:
    page.click("button[data-view=history]")
    page.fill("#h-id", METER)
    page.fill("#h-attr", "pressure")
    page.select_option("#h-aggr", "")
    page.click("#history button[type=submit]")
    page.wait_for_function(f"() => window.agora.chartPoints === {len(READINGS)}")
    assert page.locator("#chart canvas").count() == 1
    page.screenshot(path=str(ARTEFACTS / "history.png"))
    page.select_option("#h-aggr", "max")
    page.select_option("#h-period", "P1D")
    page.click("#history button[type=submit]")
    page.wait_for_function("() => document.querySelector('#h-status').textContent.includes('periods')")
    assert page.evaluate("() => window.agora.chartPoints") == len(READINGS)  # one reading a day: a period each


def _kit(broker_url: str, report: Path, *only: str) -> None:
    """A real run of the conformance kit writing its JSON report (in a tenant of its own: the console's data stay)."""
    done = agora_cli("conformance", "--broker", broker_url, "--tenant", "kit", "--only", ",".join(only),
                     "--report", str(report))  # fmt: skip
    assert report.exists(), done.stdout + done.stderr


def _subscription(http: httpx.Client, endpoint: str, headers: dict[str, str] | None = None) -> str:
    body = {"type": "Subscription", "entities": [{"type": "Junction"}], "watchedAttributes": ["elevation"],
            "notification": {"endpoint": {"uri": endpoint}}}  # fmt: skip
    created = http.post(f"{API}/subscriptions", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return created.headers["Location"].rsplit("/", 1)[1]


def _delivery(http: httpx.Client, sub_id: str) -> dict[str, Any]:
    notification: dict[str, Any] = http.get(f"{API}/subscriptions/{sub_id}").json()["notification"]
    return notification


def test_operations_show_imports_deliveries_registrations_and_the_kit(
    page: Page, broker: BrokerProcess, operations_dirs: tuple[Path, Path]
) -> None:
    reports = operations_dirs[1]
    with httpx.Client(base_url=broker.url, timeout=10) as http, running_receiver() as receiver:
        http.headers.update(link(http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]))
        # the run of the fixture's `agora import`, as the API gives it
        [run] = http.get(f"{API}/agora/imports").json()
        assert (run["file"], run["adapter"], run["succeeded"]) == ("gtfs-demo.prom", "gtfs", True)
        assert run["counts"]["created"] == 76 and sum(run["sent"].values()) == 76
        # one subscription that delivers, one whose endpoint answers nothing
        delivered = _subscription(http, f"{receiver.url}/ops")
        dead = _subscription(http, f"http://127.0.0.1:{free_port()}/nobody")
        patched = http.patch(f"{API}/entities/urn:ngsi-ld:Junction:RHINE:J3/attrs", json={"elevation": 130})
        assert patched.status_code == 204, patched.text
        wait_for(lambda: _delivery(http, delivered).get("timesSent") == 1)
        wait_for(lambda: _delivery(http, dead).get("timesFailed") == 1)
        registration = {"id": "urn:ngsi-ld:ContextSourceRegistration:weather", "type": "ContextSourceRegistration",
                        "information": [{"entities": [{"type": "WeatherObserved"}]}],
                        "endpoint": "http://127.0.0.1:9/weather"}  # fmt: skip
        assert http.post(f"{API}/csourceRegistrations", json=registration).status_code == 201
    _kit(broker.url, reports / "agora.json", "discovery")

    page.click("button[data-view=operations]")
    page.wait_for_function("() => window.agora.operations && window.agora.operations.conformance")
    row = page.locator("#imports tr[data-file='gtfs-demo.prom']")
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "gtfs" and cells[3:10] == ["76", "0", "0", "0", "0", "0", "0"], cells
    assert "GtfsStop 9" in cells[10] and cells[11] == "wrote everything", cells
    ok = page.locator(f"#subscriptions tr[data-id='{delivered}'] td").all_inner_texts()
    assert ok[:4] == ["active", "ok", "1", "0"] and ok[4], ok  # and its lastSuccess
    failed = page.locator(f"#subscriptions tr[data-id='{dead}'] td").all_inner_texts()
    assert failed[1:4] == ["failed", "1", "1"] and failed[5], failed  # sent once, failed once, its lastFailure
    reg = page.locator("#registrations tr[data-id='urn:ngsi-ld:ContextSourceRegistration:weather'] td")
    assert reg.all_inner_texts()[:3] == ["http://127.0.0.1:9/weather", "WeatherObserved", "inclusive"]
    summary = page.locator("#conformance-summary").inner_text()
    assert summary.startswith(f"agora.json: {broker.url} (tenant kit)") and " 0 failed" in summary, summary
    clauses = page.locator("#conformance-clauses tbody tr")
    assert clauses.count() == 8  # 5.7.5-5.7.10, 6.3.2, 6.33: the clauses of the discovery cases
    # 5.7.7: type_information, type_information_unknown_is_404, type_information_attribute_types
    assert page.locator("#conformance-clauses tr[data-clause='5.7.7'] td").all_inner_texts()[1:3] == ["3", "0"]
    assert page.locator("#conformance").get_by_text("No case failed.").count() == 1
    page.screenshot(path=str(ARTEFACTS / "operations.png"), full_page=True)

    # a newer report, of a broker that refuses every write: its failure is listed with its HTTP exchange
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenBroker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _kit(
            f"http://127.0.0.1:{server.server_address[1]}",
            reports / "broken.json",
            "entities.create_answers_201_with_location",
        )
    finally:
        server.shutdown()
        server.server_close()
    page.click("button[data-view=operations]")
    page.wait_for_function("() => window.agora.operations?.conformance?.file === 'broken.json'")
    failure = page.locator("#conformance-failures li[data-case='entities.create_answers_201_with_location']")
    assert "5.6.1, failed" in failure.inner_text()
    failure.locator("summary").click()
    assert "< 500" in failure.locator("pre").inner_text()
    assert page.locator("#conformance-clauses tr[data-clause='5.6.1'] td").all_inner_texts()[1:3] == ["0", "1"]
    assert page.problems == []  # type: ignore[attr-defined]


VIEWER_POLICY = "rules:\n  - {id: viewer, roles: [viewer], actions: [read, subscribe]}\n"


def _api_key(store: str, name: str, role: str) -> dict[str, str]:
    args = [sys.executable, "-m", "broker.cli", "keys", "--store", store, "create", "--name", name, "--role", role]
    made = subprocess.run(args, capture_output=True, text=True, check=True)
    return {"X-API-Key": made.stdout.strip()}


def test_operations_show_a_user_only_what_its_policy_allows(
    browser: Browser, operations_dirs: tuple[Path, Path], tmp_path: Path, broker: BrokerProcess
) -> None:
    """A broker that wants credentials, over the same directories (the module's broker wrote the import run and
    the reports): a viewer, who may read and subscribe but is no administrator, signs in with its API key."""
    imports, reports = operations_dirs
    store = f"sqlite:///{tmp_path / 'secured.db'}"
    admin, viewer = _api_key(store, "ops-admin", "admin"), _api_key(store, "ops-viewer", "viewer")
    (tmp_path / "policies.yaml").write_text(VIEWER_POLICY)
    env = {"AGORA_IMPORT_METRICS_DIR": str(imports), "AGORA_CONFORMANCE_REPORTS_DIR": str(reports)}
    args = ["--auth", "required", "--policies", str(tmp_path / "policies.yaml"), "--outbound-allow", "loopback"]
    with running_broker(store, tmp_path, extra_env=env, extra_args=args) as secured:
        with httpx.Client(base_url=secured.url, timeout=10) as http:
            assert http.get(f"{API}/agora/imports", headers=admin).json()[0]["file"] == "gtfs-demo.prom"
            assert http.get(f"{API}/agora/imports", headers=viewer).status_code == 403
            theirs = _subscription(http, "http://127.0.0.1:9/admin", admin)
            mine = _subscription(http, "http://127.0.0.1:9/viewer", viewer)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(5_000)
        try:
            page.goto(f"{secured.url}/console")
            page.fill("#apikey", viewer["X-API-Key"])
            page.click("#signin button[type=submit]")  # stored for the tab, then the page loads again
            page.locator("#who", has_text="API key in use").wait_for()
            page.click("button[data-view=operations]")
            page.wait_for_function("() => window.agora.operations")
            for part in ("imports", "registrations", "conformance"):
                note = page.locator(f"#{part}-note").inner_text()
                assert note.startswith("Not shown to you: ") and note.endswith("(HTTP 403)"), (part, note)
            assert page.locator("#imports tbody tr").count() == 0
            assert page.locator("#subscriptions-note").inner_text() == ""
            shown = page.locator("#subscriptions tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
            assert shown == [mine] and theirs not in shown  # another's subscription is not its business
            page.screenshot(path=str(ARTEFACTS / "operations-viewer.png"))
        finally:
            page.close()


def test_no_serious_accessibility_violations(page: Page) -> None:
    found: list[dict[str, Any]] = []
    for view in ("map", "entities", "history", "live", "operations"):
        page.click(f"button[data-view={view}]")
        page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP allows no injected script
        run = page.evaluate("async () => await axe.run(document)")
        assert len(run["passes"]) > 20, view  # axe did check the page
        result = run["violations"]
        found += [
            {"view": view, "id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in result
            if v["impact"] in ("serious", "critical")
        ]
    assert found == []
