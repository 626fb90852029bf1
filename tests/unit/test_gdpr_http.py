"""The GDPR admin API (broker.http.gdpr, records 0321-0323): administrators only, with a ProblemDetails 403 for
anyone else and nothing erased; content negotiation of the export and the records of processing."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings
from tests.unit.test_policies_http import make_keys

GDPR = "/ngsi-ld/v1/agora/gdpr"
SUBJECT = "urn:ngsi-ld:Person:c-1"


def test_only_an_administrator_reads_or_erases_a_subject(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/agora.db"
    keys = make_keys(url, admin="admin", operator="water-operator")
    meter = {"id": "urn:m:1", "type": "SmartMeteringObservation", "dataSubject": {"type": "Relationship",
             "object": SUBJECT}, "totalConsumption": {"type": "Property", "value": 12.5}}  # fmt: skip
    with TestClient(create_app(Settings(store=url, auth="required", gdpr_controller="City DPO"))) as client:
        assert client.post("/ngsi-ld/v1/entities", json=meter, headers=keys["admin"]).status_code == 201
        for method, path in (("GET", f"/subjects/{SUBJECT}"), ("DELETE", f"/subjects/{SUBJECT}"), ("GET", "/records")):
            refused = client.request(method, GDPR + path, headers=keys["operator"])
            assert refused.status_code == 403, (method, path)
            assert {"type", "title", "status"} <= refused.json().keys()  # a ProblemDetails
        assert client.get("/ngsi-ld/v1/entities/urn:m:1", headers=keys["admin"]).status_code == 200  # not erased
        # Written with the core @context only, the type and attribute are default-vocabulary IRIs, not the marked
        # ones of the project @context: the entity is found as a subject by its own id (rule 1 of record 0321).
        zipped = client.get(f"{GDPR}/subjects/urn:m:1", headers={**keys["admin"], "Accept": "application/zip"})
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
        assert "entities.csv" in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
        assert (
            client.get(f"{GDPR}/subjects/urn:m:1", headers={**keys["admin"], "Accept": "text/csv"}).status_code == 406
        )
        text = client.get(f"{GDPR}/records", headers={**keys["admin"], "Accept": "text/markdown"})
        assert text.status_code == 200 and "Controller: City DPO" in text.text
        assert client.get(f"{GDPR}/records?x=1", headers=keys["admin"]).status_code == 400
        client.get("/ngsi-ld/v1/entities/urn:m:1", headers=keys["admin"])  # audited, naming the entity
        erased = client.delete(f"{GDPR}/subjects/urn:m:1", headers=keys["admin"])
        assert erased.status_code == 200 and erased.json()["entities"] == 1
        deadline, audit = time.monotonic() + 5, []
        while f"DELETE {GDPR}/subjects/{{subject}}" not in [r["operation"] for r in audit]:  # flushed each 0.25 s
            assert time.monotonic() < deadline
            audit = client.get("/ngsi-ld/v1/agora/audit", params={"limit": 1000}, headers=keys["admin"]).json()
        assert next(r for r in audit if r["operation"].startswith("GDPR erasure"))["entityIds"] == []
        assert "urn:m:1" not in json.dumps(audit)  # the export's, the reads' and the erasure's own records
        assert client.get("/ngsi-ld/v1/entities/urn:m:1", headers=keys["admin"]).status_code == 404
