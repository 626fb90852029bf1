"""`agora source gtfs-rt FEED --register BROKER` (issue 22, record 0382): the translation served as a read-only
NGSI-LD context source, queried directly and through the broker's distributed reads, refreshed from the feed, and
unregistered on exit."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from google.transit import gtfs_realtime_pb2 as rt

from tests.e2e.helpers import wait_for
from tests.support.servers import BrokerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "tests" / "fixtures" / "gtfs-rt" / "synthetic-google-sample-feed.pb"
API = "/ngsi-ld/v1"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
BUS = "urn:ngsi-ld:GtfsVehiclePosition:DTA:bus-42"
ALERT = "urn:ngsi-ld:GtfsAlert:DTA:alert-1"




def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(e["id"] for e in response.json())


def test_a_feed_served_as_a_context_source_is_federated_by_the_broker(broker_server: BrokerProcess,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    feed = tmp_path / "feed.pb"
    feed.write_bytes(FEED.read_bytes())
    port = free_port()
    log = tmp_path / "source.log"
    command = [sys.executable, "-m", "broker.cli", "source", "gtfs-rt", str(feed), "--network", "DTA", "--port",
               str(port), "--register", broker_server.url, "--refresh", "0.2"]  # fmt: skip
    with open(log, "wb") as out:
        source = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    source_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "registered as" in log.read_text() or source.poll() is not None)
        text = log.read_text()
        assert source.poll() is None, text
        context = re.search(r"@context (\S+)\)", text).group(1)  # type: ignore[union-attr]
        registration = re.search(r"registered as (\S+)", text).group(1)  # type: ignore[union-attr]
        link = {"Link": f"<{context}>; {LINK_REL}"}
        with httpx.Client(base_url=source_url + API, headers=link, timeout=10) as direct:
            # the source answers as a broker: type, id, attrs, q
            assert _ids(direct.get("/entities", params={"type": "GtfsVehiclePosition"})) == [BUS]
            stops = direct.get("/entities", params={"type": "GtfsStopTimeUpdate", "q": "stopSequence>1"})
            assert [e["stopSequence"]["value"] for e in stops.json()] and all(
                e["stopSequence"]["value"] > 1 for e in stops.json())  # fmt: skip
            picked = direct.get(f"/entities/{BUS}", params={"attrs": "location"})
            assert picked.status_code == 200 and set(picked.json()) == {"id", "type", "location"}
            posted = direct.post("/entityOperations/query", json={"type": "Query", "entities": [{"type": "GtfsAlert"}]})
            assert _ids(posted) == [ALERT]  # a query by POST only reads
            refused = direct.post("/entities", json={"id": "urn:ngsi-ld:X:1", "type": "X"})
            assert refused.status_code == 422 and refused.json()["type"].endswith("/OperationNotSupported")
        with httpx.Client(base_url=broker_server.url + API, headers=link, timeout=10) as broker:
            federated = broker.get("/entities", params={"type": "GtfsVehiclePosition,GtfsAlert"})
            assert _ids(federated) == [ALERT, BUS] and "NGSILD-Warning" not in federated.headers
            assert broker.get(f"/entities/{BUS}").json()["location"]["value"]["type"] == "Point"
            assert broker.get(f"/entities/{BUS}", params={"local": "true"}).status_code == 404  # never imported

            message = rt.FeedMessage.FromString(FEED.read_bytes())
            kept = [e for e in message.entity if not e.HasField("alert")]
            del message.entity[:]
            message.entity.extend(kept)
            feed.write_bytes(message.SerializeToString())  # the feed drops its alert: so does the source
            wait_for(lambda: _ids(broker.get("/entities", params={"type": "GtfsAlert"})) == [], 10)
    finally:
        source.send_signal(signal.SIGTERM)
        source.wait(timeout=20)
    assert source.returncode == 0, log.read_text()
    gone = httpx.get(f"{broker_server.url}{API}/csourceRegistrations/{registration}", timeout=10)
    assert gone.status_code == 404  # unregistered on exit
