"""Issue 19 end to end: a historian export with two customer meters imported into a real broker (SQLite), one
customer's data exported (HTTP JSON-LD, CLI CSV bundle) and erased (HTTP DELETE); a subscriber gets the deletion
notice, the other customer and the grid keep their data, and the raw bytes of the SQLite file and its WAL hold no
trace of the erased customer's ids or readings."""

from __future__ import annotations

import csv
import io
import json
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.helpers import agora_cli, wait_for
from tests.support.servers import BrokerProcess, running_broker

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "tests" / "fixtures" / "energy" / "historian-customers.csv"
TAGS = ROOT / "tests" / "fixtures" / "energy" / "historian-customers-tagmap.csv"
CUSTOMER = "urn:ngsi-ld:Person:oberrhein:customer-4711"
METER = "urn:ngsi-ld:SmartMeteringObservation:oberrhein:meter-4711"
OTHER_METER = "urn:ngsi-ld:SmartMeteringObservation:oberrhein:meter-4712"
TRAFO = "urn:ngsi-ld:PowerTransformer:oberrhein:114"
METER_TYPE = "https://smartdatamodels.org/dataModel.Device/SmartMeteringObservation"
GDPR = "/ngsi-ld/v1/agora/gdpr/subjects/"


class Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        Receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/notify"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("gdpr-customer")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as process:
        yield process, tmp / "agora.db"


def raw_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def found_in_files(db: Path, needles: set[bytes]) -> bool:
    """Whether the files hold every needle, read again until they do (5 s at most): the broker checkpoints its WAL
    while it runs, and a page read from neither file between the copy and the WAL's reuse would hide one."""
    try:
        wait_for(lambda: needles <= {n for n in needles if n in raw_bytes(db)}, timeout=5)
    except AssertionError:
        return False
    return True


def test_a_customer_is_exported_and_erased_and_leaves_no_bytes(
    broker: tuple[BrokerProcess, Path], receiver: str, tmp_path: Path
) -> None:
    process, db = broker
    imported = agora_cli("import", "historian", f"{EXPORT}?tagmap={TAGS}", "--broker", process.url)
    assert imported.returncode == 0, imported.stderr
    with httpx.Client(base_url=process.url, timeout=30) as client:
        sub = {
            "type": "Subscription",
            "entities": [{"type": METER_TYPE}],
            "notification": {"endpoint": {"uri": receiver}},
        }
        assert client.post("/ngsi-ld/v1/subscriptions", json=sub).status_code == 201

        # Subject access: JSON-LD over HTTP, the CSV bundle from the CLI.
        doc = client.get(GDPR + quote(CUSTOMER, safe=""), headers={"Accept": "application/ld+json"}).json()
        [holding] = doc["holdings"]
        assert [e["id"] for e in holding["entities"]] == [METER]
        [series] = holding["temporalEvolution"]
        assert len(series["totalConsumption"]) == 8 and len(series["activePower"]) == 8
        # The kWh register readings (18342.71 ...) are the customer's only: a short power reading (0.8) could be
        # any byte string of the file.
        readings = [str(i["value"]).encode() for i in series["totalConsumption"]]
        bundle = tmp_path / "customer.zip"
        exported = agora_cli("gdpr", "--store", f"sqlite:///{db}", "export", "--subject", CUSTOMER, "--format",
                             "csv", "--output", str(bundle))  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        rows = list(csv.DictReader(io.StringIO(zipfile.ZipFile(bundle).read("temporal.csv").decode())))
        assert {r["entityId"] for r in rows} == {METER}
        per_attr = Counter((r["attribute"].rsplit("#", 1)[-1].rsplit("/", 1)[-1], r["personalCategory"]) for r in rows)
        assert per_attr == {("totalConsumption", "consumption-profile"): 8, ("activePower", "consumption-profile"): 8,
                            ("dataSubject", "identifier"): 1}  # fmt: skip
        secrets = {CUSTOMER.encode(), METER.encode(), b"customer-4711", b"meter-4711", *readings}
        assert found_in_files(db, secrets)  # what the check below must not find

        # Erasure over HTTP: counts only, a deletion notice, the rest kept.
        erased = client.delete(GDPR + quote(CUSTOMER, safe=""))
        assert erased.status_code == 200, erased.text
        report = erased.json()
        assert (report["entities"], report["temporal_entities"], report["notices_sent"]) == (1, 1, 1)
        wait_for(lambda: Receiver.bodies, timeout=10)
        [notice] = Receiver.bodies
        assert notice["triggerReason"] == "entityDeleted" and [d["id"] for d in notice["data"]] == [METER]
        assert set(notice["data"][0]) <= {"id", "type", "deletedAt"}  # no reading goes out with it
        assert client.get(f"/ngsi-ld/v1/entities/{quote(METER, safe='')}").status_code == 404
        assert client.get(f"/ngsi-ld/v1/temporal/entities/{quote(METER, safe='')}").status_code == 404
        for kept in (OTHER_METER, TRAFO):
            assert client.get(f"/ngsi-ld/v1/entities/{quote(kept, safe='')}").status_code == 200
        assert client.get(GDPR + quote(CUSTOMER, safe="")).json()["holdings"] == []

    left = raw_bytes(db)
    assert {s for s in secrets if s in left} == set()
    assert found_in_files(db, {OTHER_METER.encode()})  # the bytes are read where the other customer's still are
