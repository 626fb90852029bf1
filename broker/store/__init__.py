"""Store backends, chosen by URL scheme through the entry-point group `agora.stores`.

    store = open_store("sqlite:///data/agora.db")   # or sqlite:////abs/path.db?synchronous=full, memory://,
                                                     # redis://host:6379/0, redis+cluster://host:7000,host:7001,
                                                     # rediss:// and rediss+cluster:// (TLS)
    await store.open()

A backend is a Store subclass with a `from_url(url)` classmethod, registered under its scheme. The built-in ones
are registered the same way in pyproject.toml, and also listed below so that a source checkout whose package
metadata is not installed still finds them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Protocol

from broker.store.base import Store

ENTRY_POINT_GROUP = "agora.stores"

# Keep in step with [project.entry-points."agora.stores"] in pyproject.toml (a contract test checks it).
BUILTIN_BACKENDS: dict[str, str] = {
    "sqlite": "broker.store.sqlite:SqliteStore",
    "memory": "broker.store.memory:MemoryStore",
    "redis": "broker.store.redis:RedisStore",
    "rediss": "broker.store.redis:RedisStore",
    "redis+cluster": "broker.store.redis:RedisStore",
    "rediss+cluster": "broker.store.redis:RedisStore",
}


class StoreFactory(Protocol):
    """What a registered backend must provide: a Store class's `from_url` classmethod."""

    def from_url(self, url: str) -> Store: ...


def known_backends() -> dict[str, str]:
    """Scheme -> "module:attr" of every backend: the built-ins, overridden by installed entry points."""
    backends = dict(BUILTIN_BACKENDS)
    backends.update({ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})
    return backends


def open_store(url: str) -> Store:
    """The (not yet opened) store for `url`; raises ValueError for a scheme no backend registered."""
    scheme, sep, _ = url.partition(":")
    backends = known_backends()
    target = backends.get(scheme.lower()) if sep else None
    if target is None:
        raise ValueError(f"unknown store URL {url!r}: known schemes are {', '.join(sorted(backends))}")
    store = _load(target).from_url(url)
    if not isinstance(store, Store):
        raise TypeError(f"backend {target} returned {type(store).__name__}, not a Store")
    return store


def _load(target: str) -> StoreFactory:
    """Import "module:attr" (the entry-point value syntax)."""
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(getattr(obj, "from_url", None)):
        raise TypeError(f"store backend {target} has no from_url(url) classmethod")
    return obj  # type: ignore[return-value]
