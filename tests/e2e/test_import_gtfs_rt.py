"""`agora import gtfs-rt` against a real broker, on top of the static feed it refers to: links, joins, re-import."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from google.transit import gtfs_realtime_pb2 as rt

from tests.e2e.helpers import agora_cli
from tests.support.servers import BrokerProcess, running_broker

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "tests" / "fixtures" / "gtfs" / "google-sample-gtfs.zip"
REALTIME = ROOT / "tests" / "fixtures" / "gtfs-rt" / "synthetic-google-sample-feed.pb"
API = "/ngsi-ld/v1"
EXPECTED = {"GtfsTripUpdate": 1, "GtfsStopTimeUpdate": 2, "GtfsVehiclePosition": 1, "GtfsAlert": 1}
SYS_ATTRS = {"createdAt", "modifiedAt"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("import-gtfs-rt")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as process:
        yield process


agora = agora_cli


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def realtime_snapshot(http: httpx.Client, headers: dict[str, str]) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    r = http.get(f"{API}/entities", params={"type": ",".join(EXPECTED), "limit": 100}, headers=headers)
    assert r.status_code == 200, r.text
    for e in r.json():
        found[e["id"]] = {k: v for k, v in e.items() if k not in SYS_ATTRS}
    return found


def test_realtime_import_links_to_the_static_feed(broker: BrokerProcess, tmp_path: Path) -> None:
    static = agora("import", "gtfs", str(STATIC), "--broker", broker.url)
    assert static.returncode == 0, static.stderr
    first = agora("import", "gtfs-rt", str(REALTIME), "--broker", broker.url, "--network", "DTA")
    assert first.returncode == 0, first.stderr
    assert f"created: {sum(EXPECTED.values())}, updated: 0" in first.stderr
    assert "rejected rows: 0" in first.stderr

    with httpx.Client(base_url=broker.url, timeout=10) as http:
        hosted = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()
        assert len(hosted) == 1  # the static and the realtime import share the one project context
        headers = link(hosted[0])
        for entity_type, expected in EXPECTED.items():
            r = http.get(f"{API}/entities", params={"type": entity_type, "count": "true", "limit": 0}, headers=headers)
            assert int(r.headers["NGSILD-Results-Count"]) == expected, entity_type

        # A stop time update joins to the static stop time, stop and trip.
        joined = http.get(f"{API}/entities/urn:ngsi-ld:GtfsStopTimeUpdate:DTA:AB1:20090101:2",
                          params={"join": "inline"}, headers=headers)  # fmt: skip
        assert joined.status_code == 200, joined.text
        body = joined.json()
        assert body["arrivalDelay"]["value"] == 120 and body["arrivalDelay"]["unitCode"] == "SEC"
        assert body["arrivalDelay"]["observedAt"] == "2009-01-01T09:00:00Z"
        assert body["hasStop"]["entity"]["name"]["value"] == "Bullfrog (Demo)"
        assert body["hasStopTime"]["entity"]["hasStop"]["object"] == "urn:ngsi-ld:GtfsStop:DTA:BULLFROG"
        assert body["hasTrip"]["entity"]["type"] == "GtfsTrip"

        # Query by relationship: the delays reported at one stop.
        at_stop = http.get(
            f"{API}/entities",
            headers=headers,
            params={"type": "GtfsStopTimeUpdate", "q": 'hasStop=="urn:ngsi-ld:GtfsStop:DTA:BULLFROG";arrivalDelay>60'},
        )
        assert [e["id"] for e in at_stop.json()] == ["urn:ngsi-ld:GtfsStopTimeUpdate:DTA:AB1:20090101:2"]

        # The vehicle is found by a geo query, and the alert keeps its language map.
        near = http.get(f"{API}/entities", headers=headers, params={
            "type": "GtfsVehiclePosition", "georel": "near;maxDistance==50", "geometry": "Point",
            "coordinates": "[-116.7845,36.868]"})  # fmt: skip
        assert [e["id"] for e in near.json()] == ["urn:ngsi-ld:GtfsVehiclePosition:DTA:bus-42"]
        alert = http.get(f"{API}/entities/urn:ngsi-ld:GtfsAlert:DTA:alert-1", headers=headers).json()
        assert alert["headerText"]["languageMap"] == {"en": "Bullfrog stop moved 50 m"}

        before = realtime_snapshot(http, headers)
        assert len(before) == sum(EXPECTED.values())
        again = agora("import", "gtfs-rt", str(REALTIME), "--broker", broker.url, "--network", "DTA")
        assert again.returncode == 0, again.stderr
        assert f"created: 0, updated: {sum(EXPECTED.values())}" in again.stderr
        assert realtime_snapshot(http, headers) == before

        # A newer snapshot where only the vehicle moved: --changed-only writes that one entity.
        feed = rt.FeedMessage()
        feed.ParseFromString(REALTIME.read_bytes())
        for entity in feed.entity:
            if entity.HasField("vehicle"):
                entity.vehicle.position.latitude = 36.87
        moved = tmp_path / "moved.pb"
        moved.write_bytes(feed.SerializeToString())
        newer = agora("import", "gtfs-rt", str(moved), "--broker", broker.url, "--network", "DTA", "--changed-only")
        assert newer.returncode == 0, newer.stderr
        assert f"created: 0, updated: 1, unchanged: {sum(EXPECTED.values()) - 1}," in newer.stderr
        vehicle = http.get(f"{API}/entities/urn:ngsi-ld:GtfsVehiclePosition:DTA:bus-42", headers=headers).json()
        assert vehicle["location"]["value"]["coordinates"] == [-116.7845, 36.87]


def test_realtime_import_without_network_fails_clearly(broker: BrokerProcess) -> None:
    result = agora("import", "gtfs-rt", str(REALTIME), "--broker", broker.url)
    assert result.returncode == 1
    assert "--network" in result.stderr


class FeedSequence:
    """A local HTTP server that answers the n-th GET with the n-th feed (the last one repeats)."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies, self.count = bodies, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.bodies[min(owner.count, len(owner.bodies) - 1)]
                owner.count += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/feed.pb"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_follow_applies_only_the_changes(broker: BrokerProcess) -> None:
    first = REALTIME.read_bytes()
    feed = rt.FeedMessage()
    feed.ParseFromString(first)
    moved = [e for e in feed.entity if not e.HasField("alert")]  # the alert is over
    del feed.entity[:]
    feed.entity.extend(moved)
    for entity in feed.entity:
        if entity.HasField("vehicle"):
            entity.vehicle.position.longitude = -116.80
    server = FeedSequence([first, first, feed.SerializeToString()])
    try:
        result = agora("import", "gtfs-rt", server.url, "--broker", broker.url, "--network", "FOLLOW",
                       "--follow", "0.2", "--rounds", "3", "--prune")  # fmt: skip
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    rounds = [line for line in result.stderr.splitlines() if line.startswith("round")]
    assert rounds == [
        "round 1: sent 5 (created 5, updated 0), unchanged 0, refused 0, invalid 0, rejected rows 0, pruned 0",
        "round 2: sent 0 (created 0, updated 0), unchanged 5, refused 0, invalid 0, rejected rows 0, pruned 0",
        "round 3: sent 1 (created 0, updated 1), unchanged 3, refused 0, invalid 0, rejected rows 0, pruned 1",
    ]
    assert server.count == 3
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        hosted = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()
        headers = link(hosted[0])
        vehicle = http.get(f"{API}/entities/urn:ngsi-ld:GtfsVehiclePosition:FOLLOW:bus-42", headers=headers).json()
        assert vehicle["location"]["value"]["coordinates"] == [-116.8, 36.868]
        gone = http.get(f"{API}/entities/urn:ngsi-ld:GtfsAlert:FOLLOW:alert-1", headers=headers)
        assert gone.status_code == 404
        kept = http.get(f"{API}/entities/urn:ngsi-ld:GtfsTripUpdate:FOLLOW:AB1:20090101", headers=headers)
        assert kept.status_code == 200


def test_a_differential_feed_never_prunes(broker: BrokerProcess, tmp_path: Path) -> None:
    full = agora("import", "gtfs-rt", str(REALTIME), "--broker", broker.url, "--network", "DIFF")
    assert full.returncode == 0, full.stderr
    feed = rt.FeedMessage()
    feed.ParseFromString(REALTIME.read_bytes())
    feed.header.incrementality = rt.FeedHeader.DIFFERENTIAL
    vehicles = [e for e in feed.entity if e.HasField("vehicle")]
    del feed.entity[:]
    feed.entity.extend(vehicles)
    partial = tmp_path / "differential.pb"
    partial.write_bytes(feed.SerializeToString())
    result = agora("import", "gtfs-rt", str(partial), "--broker", broker.url, "--network", "DIFF", "--prune")
    assert result.returncode == 0, result.stderr
    assert "pruned: 0 (skipped: partial source)" in result.stderr
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        headers = link(http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0])
        alert = http.get(f"{API}/entities/urn:ngsi-ld:GtfsAlert:DIFF:alert-1", headers=headers)
        assert alert.status_code == 200  # absent from the differential feed, but not gone
