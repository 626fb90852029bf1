"""open_store: choosing a backend by URL scheme through the `agora.stores` entry points."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from broker.store import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, known_backends, open_store
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore

PYPROJECT = Path(__file__).parent.parent.parent / "pyproject.toml"


def test_builtins_match_the_entry_points_declared_in_pyproject() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert declared == BUILTIN_BACKENDS


def test_builtins_are_known_without_installed_metadata() -> None:
    assert {"sqlite", "memory"} <= set(known_backends())


def test_open_sqlite(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db?synchronous=full")
    assert isinstance(store, SqliteStore)
    assert (store.path, store.synchronous) == (f"{tmp_path}/a.db", "full")


def test_open_memory_gives_independent_stores() -> None:
    one, two = open_store("memory://"), open_store("memory://")
    assert isinstance(one, MemoryStore) and one is not two


@pytest.mark.parametrize("url", ["postgres://db/agora", "agora.db", "", "redis"])
def test_unknown_scheme_lists_known_schemes(url: str) -> None:
    with pytest.raises(ValueError, match=r"known schemes are .*memory, .*sqlite"):
        open_store(url)


class FakeStore(MemoryStore):
    """A third-party backend, as an installed distribution would register it."""

    url = ""

    @classmethod
    def from_url(cls, url: str) -> FakeStore:
        store = cls()
        store.url = url
        return store


def test_installed_entry_point_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = EntryPoint("fake", f"{__name__}:FakeStore", ENTRY_POINT_GROUP)
    monkeypatch.setattr("broker.store.entry_points", lambda group: [fake] if group == ENTRY_POINT_GROUP else [])
    store = open_store("fake://somewhere")
    assert isinstance(store, FakeStore) and store.url == "fake://somewhere"
    assert "fake" in known_backends() and "sqlite" in known_backends()


def test_backend_without_from_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = EntryPoint("bad", "builtins:dict", ENTRY_POINT_GROUP)
    monkeypatch.setattr("broker.store.entry_points", lambda group: [bad])
    with pytest.raises(TypeError, match="from_url"):
        open_store("bad://x")
