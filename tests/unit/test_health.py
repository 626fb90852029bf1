"""GET /health and GET /ready (record 0240): liveness always, readiness only with a reachable store at the schema
version of this code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings
from broker.store.sqlite import SCHEMA_VERSION


def test_health_and_ready_answer_outside_the_ngsi_ld_base(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}"))) as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.headers["cache-control"] == "no-store"
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "store": "SqliteStore", "schemaVersion": SCHEMA_VERSION}
        assert client.get("/ngsi-ld/v1/health").status_code == 404
        refused = client.get("/ready", params={"verbose": "1"})
        assert refused.status_code == 400 and "verbose" in refused.json()["detail"]


def test_ready_is_503_when_the_store_holds_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with TestClient(create_app(Settings(store=f"sqlite:///{path}"))) as client:
        assert client.get("/ready").status_code == 200
        with sqlite3.connect(path) as other:  # as if an older Agora had rewritten the file meanwhile
            other.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["schemaVersion"] == SCHEMA_VERSION - 1
        assert "agora migrate" in ready.json()["detail"]
        assert client.get("/health").status_code == 200  # alive all the same: a restart would not help


def test_probes_need_no_credentials_when_authentication_is_required(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path / 'a.db'}", auth="required")
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.get("/ngsi-ld/v1/entities", params={"type": "T"}).status_code == 401
