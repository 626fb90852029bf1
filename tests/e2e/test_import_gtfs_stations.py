"""Translations, levels and pathways of a GTFS feed in a real broker: LanguageProperty with lang=, joins, counts."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import agora_cli
from tests.support.servers import BrokerProcess, running_broker
from tests.unit.test_adapter_gtfs_extras import FEED_INFO, LEVELS, PATHWAYS, STATION_STOPS, STOP_TIMES, TRANSLATIONS

ROOT = Path(__file__).resolve().parents[2]
GOOGLE = ROOT / "tests" / "fixtures" / "gtfs" / "google-sample-gtfs.zip"
PYGTFS = ROOT / "tests" / "fixtures" / "gtfs" / "pygtfs-sample-feed-with-transfers.zip"
API = "/ngsi-ld/v1"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("stations")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as process:
        yield process


agora = agora_cli


def station_feed(tmp_path: Path) -> Path:
    changes = {"stops.txt": STATION_STOPS, "levels.txt": LEVELS, "pathways.txt": PATHWAYS,
               "translations.txt": TRANSLATIONS, "feed_info.txt": FEED_INFO, "stop_times.txt": STOP_TIMES}  # fmt: skip
    out = tmp_path / "stations.zip"
    with zipfile.ZipFile(GOOGLE) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name not in changes:
                dst.writestr(name, src.read(name))
        for name, text in changes.items():
            dst.writestr(name, text)
    return out


def test_translations_levels_and_pathways_round_trip(broker: BrokerProcess, tmp_path: Path) -> None:
    result = agora("import", "gtfs", str(station_feed(tmp_path)), "--broker", broker.url, "--network", "ST",
                   "--validate")  # fmt: skip
    assert result.returncode == 3, result.stderr  # the feed's bad rows are reported ...
    assert "rejected by --validate: 0" in result.stderr  # ... and every translated entity is valid
    older = agora("import", "gtfs", str(PYGTFS), "--broker", broker.url, "--network", "OLD", "--validate")
    assert older.returncode == 0, older.stderr

    with httpx.Client(base_url=broker.url, timeout=10) as http:
        url = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]
        http.headers["Link"] = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

        platform = http.get(f"{API}/entities/urn:ngsi-ld:GtfsStop:ST:P1").json()
        assert platform["name"] == {
            "type": "LanguageProperty",
            "languageMap": {"en": "Platform 1", "fr": "Plateforme 1", "de": "Bahnsteig 1"},
        }
        french = http.get(f"{API}/entities/urn:ngsi-ld:GtfsStop:ST:P1", params={"lang": "fr"}).json()
        assert french["name"]["value"] == "Plateforme 1"
        hebrew = http.get(f"{API}/entities/urn:ngsi-ld:GtfsStop:OLD:FUR_CREEK_RES", params={"lang": "he"}).json()
        assert hebrew["name"]["value"] == "אתר הנופש ערוץ הכבשן (דמו)"

        pathway = http.get(f"{API}/entities/urn:ngsi-ld:GtfsPathway:ST:PW1", params={"join": "inline"}).json()
        assert pathway["hasOrigin"]["entity"]["type"] == "GtfsAccessPoint"
        destination = pathway["hasDestination"]["entity"]
        assert destination["id"] == "urn:ngsi-ld:GtfsStop:ST:P1"
        assert destination["hasLevel"]["object"] == "urn:ngsi-ld:GtfsLevel:ST:L-1"
        below = http.get(f"{API}/entities", params={"type": "GtfsLevel", "q": "levelIndex<0"}).json()
        assert [e["id"] for e in below] == ["urn:ngsi-ld:GtfsLevel:ST:L-1"]

    stored = agora("validate", "--broker", broker.url, "--type", "GtfsStop")
    assert stored.returncode == 0, stored.stdout + stored.stderr
