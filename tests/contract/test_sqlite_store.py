"""What only the SQLite backend promises: URL options, WAL, sharing one file between processes, and durability
of every acknowledged write when the process is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from broker.store import sqlite as sqlite_store
from broker.store.base import DEFAULT_TENANT, ContextRecord, EntityFilter
from broker.store.sqlite import SqliteStore
from tests.contract.contract_helpers import entity, put, write_entities

HERE = Path(__file__).parent
REPO = HERE.parent.parent
WRITER = HERE / "sqlite_writer.py"
A, B = "urn:ngsi-ld:Vehicle:A", "urn:ngsi-ld:Vehicle:B"


# -- URLs and settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path", "synchronous"),
    [
        ("sqlite:///data/agora.db", "data/agora.db", "normal"),
        ("sqlite:////var/lib/agora/agora.db", "/var/lib/agora/agora.db", "normal"),
        ("sqlite:////tmp/a.db?synchronous=full", "/tmp/a.db", "full"),
        ("sqlite:///a.db?synchronous=FULL&busy_timeout=250", "a.db", "full"),
    ],
)
def test_from_url(url: str, path: str, synchronous: str) -> None:
    store = SqliteStore.from_url(url)
    assert (store.path, store.synchronous) == (path, synchronous)


def test_from_url_reads_busy_timeout() -> None:
    assert SqliteStore.from_url("sqlite:///a.db?busy_timeout=250").busy_timeout_ms == 250


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/a.db",  # no host part in a file URL
        "sqlite:///",  # no path
        "sqlite:///a.db?synchronus=full",  # misspelt option: never silently fall back to the default
        "sqlite:///a.db?synchronous=sometimes",
        "memory://",
    ],
)
def test_from_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        SqliteStore.from_url(url)


def pragma(store: SqliteStore, name: str) -> object:
    """A PRAGMA as the store's own connection sees it (synchronous is per connection, so it must be that one)."""
    conn = store._conn
    assert conn is not None
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_wal_and_synchronous_normal_by_default(tmp_path: Path) -> None:
    store = SqliteStore.from_url(f"sqlite:///{tmp_path}/a.db")
    await store.open()
    try:
        assert pragma(store, "journal_mode") == "wal"
        assert pragma(store, "synchronous") == 1  # NORMAL
        assert pragma(store, "busy_timeout") == 10_000
    finally:
        await store.close()


async def test_synchronous_full_from_url(tmp_path: Path) -> None:
    store = SqliteStore.from_url(f"sqlite:///{tmp_path}/a.db?synchronous=full&busy_timeout=1234")
    await store.open()
    try:
        assert pragma(store, "synchronous") == 2  # FULL
        assert pragma(store, "busy_timeout") == 1234
    finally:
        await store.close()


async def test_relative_path_and_missing_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStore.from_url("sqlite:///data/sub/agora.db")
    await store.open()
    await store.close()
    assert (tmp_path / "data" / "sub" / "agora.db").is_file()


async def test_using_a_closed_store_raises(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a.db")
    with pytest.raises(RuntimeError, match="not open"):
        await store.get(DEFAULT_TENANT, [A])
    await store.open()
    await store.open()  # idempotent
    await store.close()
    await store.close()


# -- several store objects / processes on one file ------------------------------------------------------------


async def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    one, two = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "a.db")
    await one.open()
    await two.open()
    try:
        await write_entities(one, DEFAULT_TENANT, entity(A))
        await write_entities(two, "cityA", entity(B))
        assert await two.get(DEFAULT_TENANT, [A]) == {A: entity(A)}
        assert await one.list_tenants() == [DEFAULT_TENANT, "cityA"]
        await two.write(DEFAULT_TENANT, [A], put(entity(A, speed=3)))
        seqs = [c.seq for c in await one.changes_since(0)]
        assert seqs == sorted(seqs) and len(seqs) == 3
        assert await one.get(DEFAULT_TENANT, [A]) == {A: entity(A, speed=3)}
    finally:
        await one.close()
        await two.close()


async def _seen_after(seen: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    for _ in range(100):
        if len(seen) >= count:
            break
        await asyncio.sleep(0.05)
    return seen


async def test_context_changes_reach_the_watchers_of_other_store_objects(tmp_path: Path) -> None:
    """Workers sharing one file keep their @context caches coherent (decision record 0082)."""
    one, two = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "a.db")
    await one.open()
    await one.put_context(ContextRecord("old", "http://h/old", "Hosted", {"@context": {}}, "2026-01-01T00:00:00Z"))
    await two.open()
    seen: list[tuple[str, str]] = []
    try:
        two.watch_contexts(lambda cid, url: seen.append((cid, url)))  # from now on: "old" is not reported
        body = {"@context": {"x": "https://example.org/x"}}
        await one.put_context(ContextRecord("c1", "http://h/c1", "Hosted", body, "2026-01-01T00:00:00Z"))
        assert await one.delete_context("c1")
        assert not await one.delete_context("c1")  # nothing deleted, nothing announced
        assert await _seen_after(seen, 2) == [("c1", "http://h/c1"), ("c1", "http://h/c1")]
    finally:
        await one.close()
        await two.close()


async def test_a_watcher_that_missed_trimmed_changes_hears_of_every_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CONTEXT_CHANGES_KEPT", 5)
    one, two = SqliteStore(tmp_path / "a.db"), SqliteStore(tmp_path / "a.db")
    await one.open()
    await two.open()
    seen: list[tuple[str, str]] = []
    try:
        record = ContextRecord("c0", "http://h/c0", "Hosted", {"@context": {}}, "2026-01-01T00:00:00Z")
        await one.put_context(record)
        two.watch_contexts(lambda cid, url: seen.append((cid, url)))
        await _seen_after(seen, 0)
        assert two._watcher is not None
        two._watcher.cancel()  # asleep while 200 changes pass and the oldest are trimmed
        for n in range(100):
            await one.put_context(ContextRecord(f"k{n}", f"http://h/k{n}", "Hosted", {}, "2026-01-01T00:00:00Z"))
            assert await one.delete_context(f"k{n}")
        two._context_changes_since(1)  # what its watcher would have read next
        assert ("c0", "http://h/c0") in seen  # still stored, never announced in what was kept: re-read
        assert ("k99", "http://h/k99") in seen
    finally:
        await one.close()
        await two.close()


def run_writer(*args: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WRITER), *args], stdout=stdout, text=True, env=env, cwd=REPO)


async def test_concurrent_processes_read_modify_write_atomically(tmp_path: Path) -> None:
    """Three processes increment one counter: BEGIN IMMEDIATE serialises them, so no increment is lost."""
    url, per_process = f"sqlite:///{tmp_path}/a.db", 150
    writers = [run_writer("count", url, str(per_process)) for _ in range(3)]
    for writer in writers:
        with writer:
            assert writer.wait(timeout=60) == 0
    store = SqliteStore.from_url(url)
    await store.open()
    try:
        counter = (await store.get(DEFAULT_TENANT, ["urn:ngsi-ld:Counter:1"]))["urn:ngsi-ld:Counter:1"]
        assert counter["attrs"]["https://example.org/n"][0]["value"] == 3 * per_process
        changes = await store.changes_since(0, limit=10_000)
        assert len(changes) == 3 * per_process
        values = [c.after["attrs"]["https://example.org/n"][0]["value"] for c in changes if c.after]
        assert values == list(range(1, 3 * per_process + 1))  # feed order is commit order
    finally:
        await store.close()


# -- durability -----------------------------------------------------------------------------------------------


def acknowledged_until_killed(url: str, prefix: str, kill_after: int) -> list[str]:
    """Run an `ack` writer, SIGKILL it after `kill_after` acknowledgements, return every id it acknowledged."""
    acked: list[str] = []
    with run_writer("ack", url, prefix, stdout=subprocess.PIPE) as writer:
        assert writer.stdout is not None
        for line in writer.stdout:
            acked.append(line.rstrip("\n"))
            if len(acked) >= kill_after:
                writer.send_signal(signal.SIGKILL)
                break
        # Lines already in the pipe were printed after their write returned: they are acknowledged too.
        rest = writer.stdout.read()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    acked += rest.split("\n")[:-1]  # a last line without its newline was not finished
    return acked


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    acked: list[str] = []
    for round_ in range(3):  # the next writer opens the file a killed one left behind (WAL recovery)
        acked += acknowledged_until_killed(url, f"urn:ngsi-ld:Thing:r{round_}", kill_after=200 + 50 * round_)
    store = SqliteStore.from_url(url)
    await store.open()
    try:
        present = await store.find_ids(DEFAULT_TENANT, EntityFilter())
        assert set(acked) <= set(present)
        assert len(present) - len(acked) <= 3  # at most one committed-but-unprinted write per round
        # Entities, type index and change feed were committed together.
        things = EntityFilter(types=frozenset({"https://example.org/Thing"}))
        assert await store.find_ids(DEFAULT_TENANT, things) == present
        created = [c.entity_id for c in await store.changes_since(0, limit=100_000)]
        assert sorted(created) == present
    finally:
        await store.close()
