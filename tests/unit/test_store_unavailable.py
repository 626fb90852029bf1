"""The HTTP error layer answers a store outage 503 Service Unavailable with Retry-After (decision record 0047), and
only an outage: which exceptions mean one is the store's word (Store.unavailable_errors, Store.is_unavailable).

The SQLite cases are real: another connection holds the file's write lock past the store's busy timeout, or drops a
table under it. The Redis exceptions are classified here; tests/e2e/test_store_unavailable.py kills a real Redis.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.exceptions as rx
from starlette.testclient import TestClient

from broker.core.errors import RETRY_AFTER_SECONDS, StoreUnavailable
from broker.http.app import create_app
from broker.http.errors import EXCEPTION_HANDLERS, handle_store_error, problem_response, store_unavailable_classes
from broker.notify.outage import Outage
from broker.settings import Settings
from broker.store.memory import MemoryStore
from broker.store.redis import RedisStore
from broker.store.sqlite import SqliteStore

BASE = "/ngsi-ld/v1"


def busy_error(path: Path) -> sqlite3.OperationalError:
    """The error SQLite raises when another connection holds the write lock past the busy timeout."""
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, isolation_level=None)
    try:
        waiter.execute("PRAGMA busy_timeout = 10")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiter.execute("BEGIN IMMEDIATE")
        return caught.value
    finally:
        holder.close()
        waiter.close()


def test_sqlite_names_only_busy_as_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    busy = busy_error(path)
    assert str(busy) == "database is locked"
    assert SqliteStore.is_unavailable(busy)
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.OperationalError) as no_table:
        conn.execute("SELECT * FROM nowhere")
    assert not SqliteStore.is_unavailable(no_table.value)
    assert not SqliteStore.is_unavailable(sqlite3.OperationalError("database is locked"))  # no SQLite error code
    assert not SqliteStore.is_unavailable(sqlite3.IntegrityError("UNIQUE constraint failed"))


@pytest.mark.parametrize(
    "exc",
    [
        rx.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        rx.TimeoutError("Timeout reading from socket"),
        rx.BusyLoadingError("Redis is loading the dataset in memory"),
        rx.MaxConnectionsError("Too many connections"),
        rx.ClusterDownError("CLUSTERDOWN The cluster is down"),
        rx.MasterDownError("MASTERDOWN Link with MASTER is down"),
        rx.SlotNotCoveredError('Slot "42" is not covered by the cluster.'),
    ],
)
def test_redis_outages_are_unavailable(exc: Exception) -> None:
    assert RedisStore.is_unavailable(exc)


@pytest.mark.parametrize(
    "exc", [rx.ResponseError("WRONGTYPE"), rx.NoScriptError("NOSCRIPT"), rx.DataError("bad"), ValueError("x")]
)
def test_redis_errors_that_are_not_outages_stay_bugs(exc: Exception) -> None:
    assert not RedisStore.is_unavailable(exc)
    assert not MemoryStore.is_unavailable(exc)


def test_every_backends_outage_classes_have_the_store_handler() -> None:
    classes = store_unavailable_classes()
    for cls in (*RedisStore.unavailable_errors, *SqliteStore.unavailable_errors):
        assert cls in classes
        assert EXCEPTION_HANDLERS[cls] is handle_store_error


def test_store_unavailable_is_a_503_problem_with_retry_after() -> None:
    response = problem_response(StoreUnavailable("redis", log_detail="RedisStore unavailable: ConnectionError"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.headers["content-type"] == "application/json"
    assert response.body == (
        b'{"type":"about:blank","title":"Service Unavailable","status":503,'
        b'"detail":"the broker\'s redis store is unavailable; retry the request in 5 s"}'
    )


@pytest.fixture
def locked_db(tmp_path: Path) -> Iterator[tuple[TestClient, sqlite3.Connection]]:
    """The broker in-process over a SQLite file with a 100 ms busy timeout, and another connection to that file."""
    path = tmp_path / "agora.db"
    app = create_app(Settings(store=f"sqlite:///{path}?busy_timeout=100"))
    with TestClient(app, raise_server_exceptions=False) as client:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            yield client, other
        finally:
            other.close()


def test_a_write_while_another_process_holds_the_sqlite_file_is_503_and_changes_nothing(
    locked_db: tuple[TestClient, sqlite3.Connection],
) -> None:
    client, other = locked_db
    entity = {"id": "urn:ngsi-ld:Meter:locked", "type": "Meter", "n": 1}
    other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        r = client.post(f"{BASE}/entities", json=entity)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5" and r.headers["content-type"] == "application/json"
        assert r.json() == {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "the broker's sqlite store is unavailable; retry the request in 5 s",
        }
        assert client.get(f"{BASE}/entities/{entity['id']}").status_code == 404  # WAL: reads go on meanwhile
    finally:
        other.execute("ROLLBACK")
    assert client.get(f"{BASE}/entities/{entity['id']}").status_code == 404
    assert client.post(f"{BASE}/entities", json=entity).status_code == 201


def test_any_other_sqlite_operational_error_stays_a_500(locked_db: tuple[TestClient, sqlite3.Connection]) -> None:
    client, other = locked_db
    other.execute("DROP TABLE subscriptions")  # a broken file: a bug to look into, not an outage to wait out
    r = client.get(f"{BASE}/subscriptions")
    assert r.status_code == 500, r.text
    assert "retry-after" not in r.headers
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/InternalError"


def test_an_outage_is_logged_once_and_its_end_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(SqliteStore(tmp_path / "x.db"), "notifier")
    busy = busy_error(tmp_path / "x.db")
    with caplog.at_level(logging.WARNING, logger="agora.notify"):
        for _ in range(5):
            outage.failed(busy, "a look at the change feed")
        assert outage.down
        outage.ok()
        outage.ok()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("notifier paused: the store is unavailable (OperationalError: database is locked)")
    assert messages[1].startswith("notifier resumed: the store is back")
    assert not outage.down and all(r.exc_info is None for r in caplog.records)


def test_a_failure_that_is_not_an_outage_keeps_its_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(SqliteStore(tmp_path / "x.db"), "notifier")
    with caplog.at_level(logging.WARNING, logger="agora.notify"):
        outage.failed(KeyError("bug"), "a look at the change feed")
    assert not outage.down
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
