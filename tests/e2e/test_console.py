"""The web console (issue 21) in headless Chromium (Debian's, driven by Playwright): one broker under uvicorn holding
the GTFS sample (imported by `agora import --metrics-file`, whose run the Operations view shows), EPANET's Net3 placed
on the Upper Rhine (tests/support/area.py), pandapower's mv_oberrhein grid, the links of Net3's pumps to their
nearest buses (`agora import links`) and a few water and grid entities of its own; one browser, one page, under the
console's strict CSP. The numbers the map must show are read from the source files here, not from the broker.

Screenshots are kept under tmp/artefacts/console (AGORA_TEST_ARTEFACTS moves them)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.helpers import ROOT, agora_cli, link, wait_for
from tests.e2e.test_conformance_kit import _BrokenBroker
from tests.support.area import AREA_CRS, P
from tests.support.receiver import running_receiver
from tests.support.servers import BrokerProcess, free_port, running_broker

CHROMIUM = "/usr/bin/chromium"
FIXTURES = ROOT / "tests" / "fixtures"
GTFS = FIXTURES / "gtfs" / "google-sample-gtfs.zip"
NET3 = FIXTURES / "water" / "Net3.inp"
OBERRHEIN = FIXTURES / "energy" / "pandapower-mv_oberrhein.json.gz"
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


LINKS = {"name": "console-links", "rules": [{"id": "pumps-to-nearest-bus", "method": "nearest",
         "relationship": "fedBy", "subjects": {"type": "Pump"}, "targets": {"type": "ConnectivityNode"}}]}  # fmt: skip


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, operations_dirs: tuple[Path, Path]) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("console")
    imports, reports = operations_dirs
    env = {"AGORA_IMPORT_METRICS_DIR": str(imports), "AGORA_CONFORMANCE_REPORTS_DIR": str(reports)}
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp, extra_env=env) as process:
        # real `agora import`s, side by side (separate networks: no write of one touches another's entities); the
        # GTFS run's metrics file is the one the Operations view shows
        gtfs = _imports_at_once(
            ["gtfs", str(GTFS), "--network", "DEMO", "--metrics-file", str(imports / "gtfs-demo.prom")],
            ["epanet", f"{NET3}?crs={AREA_CRS}", "--network", "net3"],
            ["pandapower", str(OBERRHEIN), "--network", "oberrhein"],
            broker=process.url,
        )[0]
        assert "created: 76, updated: 0, unchanged: 0, refused by the broker: 0" in gtfs, gtfs
        (tmp / "links.json").write_text(json.dumps({**LINKS, "broker": process.url}))
        done = agora_cli("import", "links", str(tmp / "links.json"), "--broker", process.url)
        assert done.returncode == 0, done.stderr
        with httpx.Client(base_url=process.url, timeout=10) as http:
            context = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]
            http.headers.update(link(context))
            created = http.post(f"{API}/entityOperations/create", json=SEED)
            assert created.status_code == 201, created.text
            pressure = [{"type": "Property", "value": v, "unitCode": "BAR", "observedAt": t} for t, v in READINGS]
            history = http.post(f"{API}/temporal/entities/{METER}/attrs", json={"pressure": pressure})
            assert history.status_code == 204, history.text
        yield process


def _imports_at_once(*runs: list[str], broker: str) -> list[str]:
    """`agora import RUN --broker BROKER` for each run, as processes side by side: the stderr of each, once all
    succeeded."""
    pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "cwd": ROOT}
    started = [subprocess.Popen([sys.executable, "-m", "broker.cli", "import", *run, "--broker", broker], **pipes)
               for run in runs]  # fmt: skip
    outputs = [process.communicate(timeout=300) for process in started]
    for run, process, (_, err) in zip(runs, started, outputs, strict=True):
        assert process.returncode == 0, (run, err)
    return [err for _, err in outputs]


# -- what the map must show, read from the source files ----------------------------------------------------------
def _gtfs_stops() -> Counter[str]:
    with zipfile.ZipFile(GTFS) as feed:
        rows = csv.DictReader(io.TextIOWrapper(feed.open("stops.txt"), "utf-8-sig"))
        return Counter("GtfsStop" for r in rows if r.get("stop_lat") and r.get("stop_lon"))


def _inp_sections() -> dict[str, list[list[str]]]:
    """Net3.inp as EPANET reads it: [SECTION] headers, `;` comments, whitespace-separated tokens."""
    sections: dict[str, list[list[str]]] = {}
    current = ""
    for raw in NET3.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            current = line.strip("[]").upper()
        elif line:
            sections.setdefault(current, []).append(line.split())
    return sections


NODE_SECTIONS = {"JUNCTIONS": "Junction", "RESERVOIRS": "Reservoir", "TANKS": "Tank"}
LINK_SECTIONS = {"PIPES": "Pipe", "PUMPS": "Pump", "VALVES": "Valve"}


def _net3_links() -> list[tuple[str, str, str, str]]:
    """(type, id, start node, end node) of each link of Net3.inp."""
    sections = _inp_sections()
    return [(kind, r[0], r[1], r[2]) for name, kind in LINK_SECTIONS.items() for r in sections.get(name, [])]


def _net3_located() -> Counter[str]:
    """The nodes with [COORDINATES] and the links whose two ends have them: what gets a location (placed by a CRS)."""
    sections = _inp_sections()
    placed = {r[0] for r in sections.get("COORDINATES", [])}
    found = Counter(kind for name, kind in NODE_SECTIONS.items() for r in sections.get(name, []) if r[0] in placed)
    found.update(kind for kind, _, start, end in _net3_links() if start in placed and end in placed)
    return found


def _oberrhein_located() -> Counter[str]:
    """The grid's buses and lines with a `geo` value (pandapower's JSON: each table a DataFrame in split form)."""
    tables = json.loads(gzip.decompress(OBERRHEIN.read_bytes()))["_object"]
    found: Counter[str] = Counter()
    for table, kind in (("bus", "ConnectivityNode"), ("line", "ACLineSegment")):
        frame = json.loads(tables[table]["_object"])
        geo = frame["columns"].index("geo")
        found[kind] += sum(1 for row in frame["data"] if row[geo])
    return found


def _expected_layers() -> dict[str, int]:
    seeded = Counter(e["type"] for e in SEED if "location" in e)
    return dict(_gtfs_stops() + _net3_located() + _oberrhein_located() + seeded)


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
    expected = _expected_layers()
    assert expected["GtfsStop"] == 9 and expected["Pipe"] > 100 and expected["ACLineSegment"] > 100  # read them all
    page.click("button[data-view=map]")
    page.wait_for_function(f"() => document.querySelectorAll('#layers li').length === {len(expected)}")
    counts = page.evaluate("() => window.agora.sourceCounts()")
    assert counts == expected
    stops = _entity_count(broker, "https://smartdatamodels.org/dataModel.UrbanMobility/GtfsStop")
    assert stops == expected["GtfsStop"]  # every stop of the sample has a location
    assert page.locator("#map canvas").count() == 1
    page.screenshot(path=str(ARTEFACTS / "map.png"))
    assert page.problems == []  # type: ignore[attr-defined] # no CSP violation, no failed request, no error


def _search(page: Page, type_label: str, *, entity_id: str = "", q: str = "") -> None:
    """A search in the entity browser with every field set, whatever an earlier test left in the form (the tests
    of this module share one page, and pytest-xdist may run any of them first)."""
    page.click("button[data-view=entities]")
    page.select_option("#s-type", label=type_label)
    page.fill("#s-id", entity_id)
    page.fill("#s-q", q)
    page.click("#search button[type=submit]")


def test_a_search_finds_a_stop_and_opens_it(page: Page) -> None:
    _search(page, "GtfsStop", q="name~=Furnace")
    result = page.locator("#results button", has_text="urn:ngsi-ld:GtfsStop:DEMO:FUR_CREEK_RES")
    result.wait_for()
    assert page.locator("#results li").count() == 1
    result.click()
    page.locator("#entity h3", has_text="FUR_CREEK_RES").wait_for()
    assert "Furnace Creek Resort (Demo)" in page.locator("#entity table").inner_text()
    assert "null" not in page.locator("#entity").inner_text()  # no history link: nothing, not the word
    page.screenshot(path=str(ARTEFACTS / "entity.png"))


def test_a_relationship_is_a_link_and_units_are_named(page: Page, broker: BrokerProcess) -> None:
    _search(page, "Pipe")
    page.locator("#results button", has_text="urn:ngsi-ld:Pipe:RHINE:P1").click()
    page.locator("#entity button.link", has_text=METER).click()
    page.locator("#entity h3", has_text=METER).wait_for()
    row = page.locator("#entity tr", has_text="elevation").inner_text()
    assert "101" in row and "m (MTR)" in row


NET3_ID = "urn:ngsi-ld:{}:net3:{}"


def _graph(page: Page, entity_id: str) -> dict[str, set[tuple[str, str]]]:
    """The relationship graph the page drew for `entity_id`: (name, entity id) of each edge, per direction."""
    page.wait_for_function(f"() => window.agora.graph?.id === {json.dumps(entity_id)}")
    drawn = page.evaluate("() => window.agora.graph")
    edges = drawn["outgoing"] + drawn["incoming"]
    nodes = page.locator("#graph g.node").evaluate_all("ns => ns.map(n => n.dataset.id)")
    more = page.locator("#graph text.more").evaluate_all("ts => ts.map(t => parseInt(t.textContent.slice(1)))")
    assert set(nodes) <= {e["id"] for e in edges} and len(nodes) + sum(more) == len(edges)  # drawn, or counted
    return {side: {(e["name"], e["id"]) for e in drawn[side]} for side in ("outgoing", "incoming")}


def _open_pump(page: Page, pump_id: str) -> dict[str, set[tuple[str, str]]]:
    """Find the pump in the entity browser, open it, and give back the graph drawn for it."""
    _search(page, "Pump", entity_id=pump_id)
    page.locator("#results button", has_text=pump_id).click()
    return _graph(page, pump_id)


def test_the_relationship_graph_crosses_networks(page: Page, broker: BrokerProcess) -> None:
    """A Net3 pump points at its two end nodes (as Net3.inp says) and at a bus of the grid (the links import); the
    bus is styled as the grid's network and is pointed at by the pump and the grid's terminals; a junction is
    pointed at by every link of Net3.inp that ends at it (incoming edges, found by q on each relationship name the
    broker knows)."""
    links = _net3_links()
    kind, pump, start, end = next(link for link in links if link[0] == "Pump")
    pump_id = NET3_ID.format(kind, pump)
    graph = _open_pump(page, pump_id)
    nodes = {r[0]: kind for name, kind in NODE_SECTIONS.items() for r in _inp_sections().get(name, [])}
    ends = {("startsAt", NET3_ID.format(nodes[start], start)), ("endsAt", NET3_ID.format(nodes[end], end))}
    assert ends <= graph["outgoing"]
    [bus] = [target for name, target in graph["outgoing"] if name == "fedBy"]
    assert bus.startswith("urn:ngsi-ld:ConnectivityNode:oberrhein:")
    grid, water = page.evaluate("() => [window.agora.colourOf('oberrhein'), window.agora.colourOf('net3')]")
    assert grid != water
    node = page.locator(f"#graph g.node[data-id='{bus}']")
    assert node.get_attribute("data-network") == "oberrhein" and node.locator("circle").get_attribute("fill") == grid
    assert page.locator("#graph-networks li").evaluate_all("ls => ls.map(l => l.dataset.network)")[:1] == ["net3"]
    page.screenshot(path=str(ARTEFACTS / "graph-pump.png"), full_page=True)

    node.click()  # to the grid: the pump depends on the bus, and so may Net3's other pump (the nearest to it too)
    graph = _graph(page, bus)
    pumps = {("fedBy", NET3_ID.format("Pump", link[1])) for link in links if link[0] == "Pump"}
    assert ("fedBy", pump_id) in graph["incoming"]
    terminals = {i for _, i in graph["incoming"] - pumps}
    assert terminals and all(i.startswith("urn:ngsi-ld:Terminal:oberrhein:") for i in terminals)  # and the grid's

    page.locator(f"#graph g.node[data-id='{pump_id}']").click()
    _graph(page, pump_id)
    junction = NET3_ID.format(nodes[end], end)
    page.locator(f"#graph g.node[data-id='{junction}']").focus()
    page.keyboard.press("Enter")  # the nodes are buttons for the keyboard too
    graph = _graph(page, junction)
    at = {("startsAt", NET3_ID.format(k, i)) for k, i, a, _ in links if a == end}
    at |= {("endsAt", NET3_ID.format(k, i)) for k, i, _, b in links if b == end}
    assert graph["incoming"] == at
    assert page.locator("#graph-status").inner_text().endswith(f"{len(at)} incoming")
    page.screenshot(path=str(ARTEFACTS / "graph-junction.png"), full_page=True)
    assert page.problems == []  # type: ignore[attr-defined]


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


def patch_elevations(broker: BrokerProcess, entity_ids: list[str], first: int) -> None:
    """PATCH the elevation of each entity in turn (first, first + 1, ...), in the broker's hosted @context."""
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        http.headers.update(link(http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]))
        for n, entity_id in enumerate(entity_ids):
            patched = http.patch(f"{API}/entities/{entity_id}/attrs", json={"elevation": first + n})
            assert patched.status_code == 204, patched.text


def test_the_live_feed_keeps_to_the_map_view(page: Page, broker: BrokerProcess) -> None:
    """Following the map's view over the Upper Rhine: a PATCH of a Net3 junction there shows, one of a junction in
    Nevada (sent first) does not; the area follows the map as it moves; then a box drawn on the map is the area."""
    inside, outside = NET3_ID.format("Junction", _inp_sections()["JUNCTIONS"][0][0]), "urn:ngsi-ld:Junction:RHINE:J2"
    page.click("button[data-view=map]")
    # (in braces: the Map that jumpTo returns is no value to send back)
    page.evaluate(f"() => {{ window.agora.map.jumpTo({{ center: [{P[0]}, {P[1]}], zoom: 6 }}); }}")
    page.wait_for_function("() => JSON.parse(window.agora.viewBox)[0][0][0] > 0")  # west of the view: Europe
    page.click("button[data-view=live]")
    page.select_option("#l-area", "view")
    page.click("#live button[type=submit]")
    page.locator("#l-status", has_text="in the map's view").wait_for()
    start = page.evaluate("() => window.agora.feed.length")
    patch_elevations(broker, [outside, inside], 300)
    page.wait_for_function(f"() => window.agora.feed.slice({start}).some(c => c.id === {json.dumps(inside)})")
    assert page.evaluate(f"() => window.agora.feed.slice({start}).map(c => c.id)") == [inside]
    page.screenshot(path=str(ARTEFACTS / "live-area.png"))

    # the map moves to Nevada: the feed follows it, and now the Nevada junction shows
    page.click("button[data-view=map]")
    page.evaluate("() => { window.agora.map.jumpTo({ center: [-116.74, 36.91], zoom: 6 }); }")
    page.wait_for_function("() => window.agora.feedArea[0][0] < 0")  # the feed asks for the new view
    patch_elevations(broker, [inside, outside], 310)
    page.wait_for_function(f"() => window.agora.feed.slice({start + 1}).some(c => c.id === {json.dumps(outside)})")
    assert page.evaluate(f"() => window.agora.feed.slice({start + 1}).map(c => c.id)") == [outside]

    # a box drawn around the Upper Rhine on a map that shows Nevada too: only the change in the box shows
    page.evaluate("() => { window.agora.map.jumpTo({ center: [-50, 42], zoom: 1.5 }); }")
    page.click("#draw")
    corners = page.evaluate(
        f"""() => {{ const box = window.agora.map.getCanvas().getBoundingClientRect();
        return [[{P[0] - 2}, {P[1] - 2}], [{P[0] + 2}, {P[1] + 2}]].map(c => window.agora.map.project(c))
          .map(p => [box.left + p.x, box.top + p.y]); }}"""
    )
    page.mouse.move(*corners[0])
    page.mouse.down()
    page.mouse.move(*corners[1], steps=5)
    page.mouse.up()
    drawn = page.evaluate("() => window.agora.drawnArea")
    assert drawn[0][0] < P[0] < drawn[2][0] and drawn[0][1] < P[1] < drawn[2][1], drawn
    assert page.get_attribute("#draw", "aria-pressed") == "false"  # one box a press
    page.screenshot(path=str(ARTEFACTS / "map-area.png"))
    page.click("button[data-view=live]")
    page.select_option("#l-area", "drawn")
    page.click("#live button[type=submit]")
    page.locator("#l-status", has_text="in the drawn area").wait_for()
    patch_elevations(broker, [outside, inside], 320)
    page.wait_for_function(f"() => window.agora.feed.slice({start + 2}).some(c => c.id === {json.dumps(inside)})")
    assert page.evaluate(f"() => window.agora.feed.slice({start + 2}).map(c => c.id)") == [inside]

    page.select_option("#l-area", "")
    page.click("#live button[type=submit]")
    page.locator("#l-status", has_text="Following every type").wait_for()
    assert page.problems == []  # type: ignore[attr-defined]


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
    # a row for every clause of the report the kit wrote, in its order (the discovery cases: 5.7.5-5.7.10, ...)
    written = [c["clause"] for c in json.loads((reports / "agora.json").read_text())["clauses"]]
    shown = page.locator("#conformance-clauses tbody tr").evaluate_all("rows => rows.map(r => r.dataset.clause)")
    assert shown == written and {"5.7.5", "5.7.10"} <= set(written), (shown, written)
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
    # an opened entity with its relationship graph, so that axe checks the graph too (whichever tests ran before)
    kind, pump, *_ = next(link for link in _net3_links() if link[0] == "Pump")
    _open_pump(page, NET3_ID.format(kind, pump))
    for view in ("map", "entities", "history", "live", "operations"):
        page.click(f"button[data-view={view}]")
        if view == "entities":
            assert page.locator("#graph svg g.node").count() > 0
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
