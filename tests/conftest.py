"""Shared fixtures: an in-process client, and a real broker under uvicorn on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.settings import Settings
from tests.support.servers import BrokerProcess, running_broker


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The broker in-process over a fresh SQLite file (fast; same code path as the server)."""
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'agora.db'}"))
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def broker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One real `agora serve` process (uvicorn, SQLite) for the end-to-end tests of a session."""
    tmp = tmp_path_factory.mktemp("broker")
    with running_broker(f"sqlite:///{tmp / 'agora.db'}", tmp) as broker:
        yield broker


@pytest.fixture
def http(broker_server: BrokerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=broker_server.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def context_server() -> Iterator[str]:
    """Base URL of a local server of user @context documents (see tests/support/context_server.py)."""
    from tests.support.context_server import serve_contexts

    with serve_contexts() as url:
        yield url
