"""`agora validate --broker URL --type T` on entities imported into a real broker, and on one written wrongly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import agora_cli
from tests.support.servers import BrokerProcess, running_broker

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "tests" / "fixtures" / "gtfs" / "google-sample-gtfs.zip"
API = "/ngsi-ld/v1"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("validate")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as process:
        yield process


agora = agora_cli


def test_validate_entities_stored_in_a_broker(broker: BrokerProcess) -> None:
    before = agora("validate", "--broker", broker.url, "--type", "GtfsStop")
    assert before.returncode == 1
    assert "hosts no copy of the project @context" in before.stderr

    imported = agora("import", "gtfs", str(FEED), "--broker", broker.url)
    assert imported.returncode == 0, imported.stderr
    for entity_type, count in (("GtfsStop", 9), ("GtfsStopTime", 28), ("GtfsRoute", 5)):
        result = agora("validate", "--broker", broker.url, "--type", entity_type)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"checked {count} entities: {count} conform, 0 do not" in result.stderr

    with httpx.Client(base_url=broker.url, timeout=10) as http:
        url = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]
        link = {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}
        # A stop written by hand: a location in [lat, lon] order as a plain Property, an unknown term, no name.
        bad = {
            "id": "urn:ngsi-ld:GtfsStop:DTA:HANDMADE",
            "type": "GtfsStop",
            "location": {"type": "Property", "value": [36.9, -116.7]},
            "platformColour": {"type": "Property", "value": "red"},
        }
        created = http.post(f"{API}/entities", json=bad, headers=link)
        assert created.status_code == 201, created.text

    result = agora("validate", "--broker", broker.url, "--type", "GtfsStop", "--context", url)
    assert result.returncode == 3
    assert "checked 10 entities: 9 conform, 1 do not" in result.stderr
    report = result.stdout
    assert report.startswith("urn:ngsi-ld:GtfsStop:DTA:HANDMADE:\n")
    assert "location must be a GeoProperty" in report
    assert "platformColour: not a term of the project @context" in report
    assert "'name' is a required property" in report
