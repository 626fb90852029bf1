"""`agora import gtfs` against a real broker: counts per type, geo query, join, and an idempotent re-import."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import agora_cli
from tests.support.servers import BrokerProcess, running_broker

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "tests" / "fixtures" / "gtfs" / "pygtfs-sample-feed-with-transfers.zip"
API = "/ngsi-ld/v1"
EXPECTED = {
    "GtfsAgency": 1, "GtfsStop": 9, "GtfsRoute": 6, "GtfsTrip": 11, "GtfsStopTime": 28, "GtfsCalendarRule": 2,
    "GtfsCalendarDateRule": 1, "GtfsFrequency": 11, "GtfsTransferRule": 3, "GtfsFeedInfo": 1, "GtfsService": 2,
    "GtfsFareClass": 2, "GtfsFareRule": 4,
}  # fmt: skip
SYS_ATTRS = {"createdAt", "modifiedAt"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("import-gtfs")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as process:
        yield process


def run_import(broker: BrokerProcess, *extra: str) -> subprocess.CompletedProcess[str]:
    return agora_cli("import", "gtfs", str(FEED), "--broker", broker.url, *extra)


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def snapshot(http: httpx.Client, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    entities: dict[str, dict[str, Any]] = {}
    for entity_type in EXPECTED:
        r = http.get(f"{API}/entities", params={"type": entity_type, "limit": 1000}, headers=headers)
        assert r.status_code == 200, r.text
        for e in r.json():
            entities[e["id"]] = {k: v for k, v in e.items() if k not in SYS_ATTRS}
    return entities


def test_import_then_reimport(broker: BrokerProcess) -> None:
    first = run_import(broker)
    assert first.returncode == 0, first.stderr
    assert f"created: {sum(EXPECTED.values())}, updated: 0" in first.stderr
    assert "rejected rows: 0" in first.stderr

    with httpx.Client(base_url=broker.url, timeout=10) as http:
        hosted = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()
        assert len(hosted) == 1
        headers = link(hosted[0])
        for entity_type, expected in EXPECTED.items():
            r = http.get(f"{API}/entities", params={"type": entity_type, "count": "true", "limit": 0}, headers=headers)
            assert r.status_code == 200, r.text
            assert int(r.headers["NGSILD-Results-Count"]) == expected, entity_type

        near = http.get(
            f"{API}/entities",
            params={"type": "GtfsStop", "georel": "near;maxDistance==100", "geometry": "Point",
                    "coordinates": "[-116.76821,36.914893]"},
            headers=headers,
        )  # fmt: skip
        assert near.status_code == 200, near.text
        assert [e["id"] for e in near.json()] == ["urn:ngsi-ld:GtfsStop:DTA:NADAV"]

        joined = http.get(
            f"{API}/entities/urn:ngsi-ld:GtfsStopTime:DTA:STBA:2", params={"join": "inline"}, headers=headers
        )
        assert joined.status_code == 200, joined.text
        stop = joined.json()["hasStop"]["entity"]
        assert stop["id"] == "urn:ngsi-ld:GtfsStop:DTA:BEATTY_AIRPORT"
        assert stop["name"]["value"] == "Nye County Airport (Demo)"
        assert joined.json()["hasTrip"]["entity"]["id"] == "urn:ngsi-ld:GtfsTrip:DTA:STBA"

        before = snapshot(http, headers)
        assert len(before) == sum(EXPECTED.values())

        # A second import, with the context URL given, updates every entity and changes no data.
        second = run_import(broker, "--context", hosted[0])
        assert second.returncode == 0, second.stderr
        assert f"created: 0, updated: {sum(EXPECTED.values())}" in second.stderr
        assert snapshot(http, headers) == before
        everything = http.get(f"{API}/entities", params={"type": ",".join(EXPECTED), "count": "true", "limit": 0},
                              headers=headers)  # fmt: skip
        assert int(everything.headers["NGSILD-Results-Count"]) == sum(EXPECTED.values())

        # A third import without --context re-uses the hosted copy of the project context.
        third = run_import(broker)
        assert third.returncode == 0, third.stderr
        assert http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json() == hosted
        assert snapshot(http, headers) == before

        # With --changed-only the importer reads what is stored first and writes nothing that is already there:
        # modifiedAt does not move.
        stamps = {
            e["id"]: e["modifiedAt"]
            for t in EXPECTED
            for e in http.get(
                f"{API}/entities", params={"type": t, "limit": 1000, "options": "sysAttrs"}, headers=headers
            ).json()
        }
        fourth = run_import(broker, "--changed-only")
        assert fourth.returncode == 0, fourth.stderr
        assert f"created: 0, updated: 0, unchanged: {sum(EXPECTED.values())}," in fourth.stderr
        assert stamps == {
            e["id"]: e["modifiedAt"]
            for t in EXPECTED
            for e in http.get(
                f"{API}/entities", params={"type": t, "limit": 1000, "options": "sysAttrs"}, headers=headers
            ).json()
        }


def test_import_fails_clearly_without_a_broker(tmp_path: Path) -> None:
    result = agora_cli("import", "gtfs", str(FEED), "--broker", "http://127.0.0.1:9", timeout=60)
    assert result.returncode == 1
    assert "cannot talk to the broker" in result.stderr
