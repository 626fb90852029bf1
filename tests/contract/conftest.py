"""Fixtures of the store contract suite: every test taking `store` runs once per backend in BACKENDS.

Adding a backend is one line in BACKENDS: a name, and how to make a fresh store URL under a temporary directory.
A backend that needs a server names a session fixture that starts it (`server`): the URL function then gets the
server too, and empties it, so that every test starts from a fresh store.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from broker.store import open_store
from broker.store.base import Store
from tests.contract.contract_helpers import Reopen
from tests.support.redis_servers import RedisClusterServers, RedisServer, running_redis, running_redis_cluster


@dataclass(frozen=True)
class Backend:
    name: str
    url: Callable[[Path, Any], str]  # a fresh, empty store location (temporary directory, server or None)
    persistent: bool = True  # a store reopened on the same URL sees what the previous one wrote
    server: str | None = None  # the name of the session fixture that starts the backend's server


def _flushed(server: RedisServer | RedisClusterServers) -> str:
    server.flush()
    return server.url


BACKENDS = [
    Backend("memory", lambda tmp, _: "memory://", persistent=False),
    Backend("sqlite", lambda tmp, _: f"sqlite:///{tmp}/store.db"),
    Backend("redis", lambda tmp, server: _flushed(server), server="redis_server"),
    Backend("redis-cluster", lambda tmp, server: _flushed(server), server="redis_cluster"),
    Backend("redis-tls", lambda tmp, server: _flushed(server), server="redis_tls_server"),  # rediss://
    # rediss+cluster:// (record 0048)
    Backend("redis-cluster-tls", lambda tmp, server: _flushed(server), server="redis_cluster_tls"),
]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """TLS only, with a CA made for the session and client certificates required (decision record 0043)."""
    with running_redis(tmp_path_factory.mktemp("redis-tls"), tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    with running_redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_cluster_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """3 masters speaking TLS only, to clients and on the cluster bus, with a CA made for the session (0048)."""
    with running_redis_cluster(tmp_path_factory.mktemp("redis-cluster-tls"), tls=True) as cluster:
        yield cluster


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> None:
    """pytest-asyncio "auto mode" for this directory only: mark every `async def` test before it is collected
    (a marker added later, in pytest_collection_modifyitems, comes too late for pytest-asyncio)."""
    marks = getattr(obj, "pytestmark", [])
    if inspect.iscoroutinefunction(obj) and not any(mark.name == "asyncio" for mark in marks):
        pytest.mark.asyncio(obj)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every backend for each contract test; tests of reopening run only on backends that persist at all."""
    if "backend" in metafunc.fixturenames:
        chosen = [b for b in BACKENDS if b.persistent or "reopen" not in metafunc.fixturenames]
        metafunc.parametrize("backend", chosen, ids=[b.name for b in chosen])


@pytest.fixture
def store_url(backend: Backend, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    server = None if backend.server is None else request.getfixturevalue(backend.server)
    return backend.url(tmp_path, server)


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest_asyncio.fixture
async def reopen(backend: Backend, store_url: str) -> AsyncIterator[Reopen]:
    """Open another store object on the same URL as `store` (only requested on persistent backends)."""
    assert backend.persistent
    opened: list[Store] = []

    async def _reopen() -> Store:
        another = open_store(store_url)
        await another.open()
        opened.append(another)
        return another

    yield _reopen
    for another in opened:
        await another.close()
