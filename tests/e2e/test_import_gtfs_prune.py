"""`agora import --validate` and `--prune` against a real broker."""

from __future__ import annotations

import csv
import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import agora_cli
from tests.support.servers import BrokerProcess, running_broker

ROOT = Path(__file__).resolve().parents[2]
GOOGLE = ROOT / "tests" / "fixtures" / "gtfs" / "google-sample-gtfs.zip"
REALTIME = ROOT / "tests" / "fixtures" / "gtfs-rt" / "synthetic-google-sample-feed.pb"
API = "/ngsi-ld/v1"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    tmp = tmp_path_factory.mktemp("import-prune")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as process:
        yield process


def agora(*args: str) -> subprocess.CompletedProcess[str]:
    return agora_cli("import", *args)


def edited(tmp_path: Path, name: str, keep_rows: dict[str, object] | None = None,
           drop_files: tuple[str, ...] = (), replace: dict[str, str] | None = None) -> Path:  # fmt: skip
    """A copy of the Google feed; ``keep_rows`` maps a file to a predicate on its rows (dict) to keep."""
    out = tmp_path / name
    with zipfile.ZipFile(GOOGLE) as src, zipfile.ZipFile(out, "w") as dst:
        for member in src.namelist():
            if member in drop_files:
                continue
            text = src.read(member).decode("utf-8-sig")
            if replace and member in replace:
                text = replace[member]
            elif keep_rows and member in keep_rows:
                reader = csv.DictReader(io.StringIO(text))
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=reader.fieldnames or [], lineterminator="\n")
                writer.writeheader()
                keep = keep_rows[member]
                writer.writerows(row for row in reader if keep(row))  # type: ignore[operator]
                text = buffer.getvalue()
            dst.writestr(member, text)
    return out


def ids(http: httpx.Client, entity_type: str, prefix: str = "") -> set[str]:
    params = {"type": entity_type, "limit": 1000, "pick": "id"}
    if prefix:
        params["idPattern"] = f"^{prefix}"
    r = http.get(f"{API}/entities", params=params)
    assert r.status_code == 200, r.text
    return {e["id"] for e in r.json()}


def hosted_link(http: httpx.Client) -> dict[str, str]:
    url = http.get(f"{API}/jsonldContexts", params={"kind": "Hosted"}).json()[0]
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def test_prune_removes_what_the_newer_feed_no_longer_has(broker: BrokerProcess, tmp_path: Path) -> None:
    full = agora("gtfs", str(GOOGLE), "--broker", broker.url, "--validate")
    assert full.returncode == 0, full.stderr
    assert "rejected by --validate: 0" in full.stderr
    other = agora("gtfs", str(GOOGLE), "--broker", broker.url, "--network", "OTHER")
    assert other.returncode == 0, other.stderr
    realtime = agora("gtfs-rt", str(REALTIME), "--broker", broker.url, "--network", "DTA")
    assert realtime.returncode == 0, realtime.stderr

    # The newer feed lost stop AMV, trip AAMV1 with its 2 stop times, and frequencies.txt (11 rows).
    newer = edited(tmp_path, "newer.zip", drop_files=("frequencies.txt",), keep_rows={
        "stops.txt": lambda row: row["stop_id"] != "AMV",
        "trips.txt": lambda row: row["trip_id"] != "AAMV1",
        "stop_times.txt": lambda row: row["trip_id"] != "AAMV1",
    })  # fmt: skip
    result = agora("gtfs", str(newer), "--broker", broker.url, "--prune")
    assert result.returncode == 0, result.stderr
    assert "pruned: 15" in result.stderr

    with httpx.Client(base_url=broker.url, timeout=10) as http:
        http.headers.update(hosted_link(http))
        dta_stops = ids(http, "GtfsStop", "urn:ngsi-ld:GtfsStop:DTA:")
        assert "urn:ngsi-ld:GtfsStop:DTA:AMV" not in dta_stops and len(dta_stops) == 8
        assert ids(http, "GtfsFrequency", "urn:ngsi-ld:GtfsFrequency:DTA:") == set()
        assert "urn:ngsi-ld:GtfsTrip:DTA:AAMV1" not in ids(http, "GtfsTrip")
        assert not any(":AAMV1:" in i for i in ids(http, "GtfsStopTime", "urn:ngsi-ld:GtfsStopTime:DTA:"))
        # Another network and another adapter's types are left alone.
        assert "urn:ngsi-ld:GtfsStop:OTHER:AMV" in ids(http, "GtfsStop")
        assert len(ids(http, "GtfsFrequency", "urn:ngsi-ld:GtfsFrequency:OTHER:")) == 11
        assert ids(http, "GtfsTripUpdate") == {"urn:ngsi-ld:GtfsTripUpdate:DTA:AB1:20090101"}

    again = agora("gtfs", str(newer), "--broker", broker.url, "--prune")
    assert again.returncode == 0, again.stderr
    assert "pruned: 0" in again.stderr


def test_validate_reports_and_skips_failing_entities(broker: BrokerProcess, tmp_path: Path) -> None:
    routes = (
        "route_id,agency_id,route_short_name,route_long_name,route_type\n"
        "AB,DTA,10,Airport - Bullfrog,3\nBAD,DTA,99,Not a GTFS route type,9\n"
    )
    feed = edited(tmp_path, "bad-route.zip", replace={"routes.txt": routes})
    result = agora("gtfs", str(feed), "--broker", broker.url, "--network", "VALID", "--validate", "--prune")
    assert result.returncode == 3, result.stderr
    assert "rejected by --validate: 1" in result.stderr
    assert "invalid urn:ngsi-ld:GtfsRoute:VALID:BAD: routeType: '9' does not match" in result.stderr
    assert "pruned: 0 (skipped: not every entity was written)" in result.stderr
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        http.headers.update(hosted_link(http))
        assert ids(http, "GtfsRoute", "urn:ngsi-ld:GtfsRoute:VALID:") == {"urn:ngsi-ld:GtfsRoute:VALID:AB"}

    dry = agora("gtfs", str(feed), "--dry-run", "--validate")
    assert dry.returncode == 3
    assert "GtfsRoute:DTA:BAD" not in dry.stdout and "GtfsRoute:DTA:AB" in dry.stdout
