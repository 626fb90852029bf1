"""A pytest plugin that runs the end-to-end suite with every broker over one real redis-server instead of SQLite:

    .venv/bin/python -m pytest -p tests.support.redis_e2e_plugin tests/e2e

Each SQLite URL a test asks for becomes its own key prefix on the one Redis, so tests stay as isolated as their
files were, and a broker restarted on the same URL finds what it wrote (decision record 0041)."""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import tests.support.servers as servers
from tests.support.redis_servers import running_redis

_resources = ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    server = _resources.enter_context(running_redis(Path(tempfile.mkdtemp(prefix="agora-e2e-redis-"))))
    original = servers.start_broker

    def start_broker(store_url: str, log_dir: Path, **kwargs: Any) -> servers.BrokerProcess:
        if store_url.startswith("sqlite:"):
            store_url = f"{server.url}?prefix=e2e{hashlib.sha1(store_url.encode()).hexdigest()[:12]}"
        return original(store_url, log_dir, **kwargs)

    # Before the test modules are imported, so that their `from tests.support.servers import start_broker` and
    # running_broker (which looks the name up in its module) both get this one.
    servers.start_broker = start_broker  # type: ignore[assignment]


def pytest_unconfigure(config: pytest.Config) -> None:
    _resources.close()
