"""The adapter contract and the adapter registry (ARCHITECTURE decision 7).

An adapter turns one native source (a GTFS zip, a historian export, ...) into a stream of NGSI-LD entities in
normalized form, whose attribute names and types are terms of the project @context
(``ontologies/agora-context.jsonld``). Adapters never talk to a broker: the importer (``adapters.importer``) writes
their entities through the NGSI-LD API, so they feed any NGSI-LD broker.

Writing an adapter::

    class MyAdapter(Adapter):
        name = "my-format"
        description = "My format (files *.my) into MyType entities"

        def entities(self, source: str) -> Iterator[Entity]:
            for row_number, row in enumerate(read(source), start=2):
                if not row.ok:
                    self.reject("data.my", row_number, "speed", f"not a number: {row.speed!r}")
                    continue
                yield {"id": self.entity_id("MyType", row.id), "type": "MyType", ...}

and register it in the ``agora.adapters`` entry-point group of your distribution::

    [project.entry-points."agora.adapters"]
    my-format = "my_package.module:MyAdapter"

Rules: stream (never hold the whole source in memory), give every entity a stable id with :meth:`entity_id` so a
re-import updates instead of duplicating, raise :class:`SourceError` for a source that cannot be read at all
(missing file or column, broken archive), and report every row that cannot be translated with :meth:`reject`
(never drop it silently).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

from adapters.progress import ByteMeter

Entity = dict[str, Any]

ENTRY_POINT_GROUP = "agora.adapters"

# Used when the distribution metadata is missing (running from a source tree that was never installed).
BUILTIN_ADAPTERS: dict[str, str] = {
    "gtfs": "adapters.gtfs:GtfsAdapter",
    "epanet": "adapters.water.epanet:EpanetAdapter",
    "pandapower": "adapters.energy.pandapower:PandapowerAdapter",
    "cgmes": "adapters.energy.cgmes:CgmesAdapter",
    "historian": "adapters.energy.historian:HistorianAdapter",
    "usgs-nwis": "adapters.water.usgs:UsgsNwisAdapter",
    "wqx": "adapters.water.wqx:WqxAdapter",
    "waterml2": "adapters.water.waterml2:WaterMl2Adapter",
    "links": "adapters.links:LinksAdapter",
    "gtfs-rt": "adapters.gtfs_rt:GtfsRtAdapter",
    "scl": "adapters.energy.scl:SclAdapter",
    "comtrade": "adapters.energy.comtrade:ComtradeAdapter",
}


class TemporalFragment(dict[str, Any]):
    """An entity's temporal evolution (clause 5.2.20): ``{"id", "type", <attribute>: [instance, ...]}``, each
    instance with its ``observedAt``.

    A telemetry adapter yields these among its entities, after the entities that carry the latest values: the
    importer sends the entities by batch upsert as usual and each fragment through the temporal API
    (POST /temporal/entities, clause 5.6.11 / 6.18.3.1), which adds the instances to the entity's history.
    """


class SourceError(Exception):
    """The source cannot be translated at all: unreadable archive, missing required file or column."""


@dataclass(frozen=True)
class Rejection:
    """One source row that could not be translated; ``row`` counts lines of the file, the header being line 1."""

    file: str
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} row {self.row} field {self.field}: {self.reason}"


class Adapter(ABC):
    """Translate one native source into NGSI-LD entities (normalized form, terms of the project @context)."""

    name: ClassVar[str]
    description: ClassVar[str]
    # Every entity type the adapter can emit: `agora import --prune` looks for stale entities of these types.
    entity_types: ClassVar[tuple[str, ...]] = ()
    # What SOURCE is and the ?options it takes: `agora import ADAPTER --help` shows it (description when empty).
    source_help: ClassVar[str] = ""

    def __init__(self, *, network: str | None = None) -> None:
        self.network = network
        self.rejections: list[Rejection] = []
        # False when the source turned out to be a partial update (a differential GTFS-Realtime feed): what it lacks
        # is unchanged, not gone, so `agora import --prune` must not delete it.
        self.complete = True
        # What the summary should say beyond rejected rows: parts of the source the adapter does not translate at all.
        self.notes: list[str] = []
        # The bytes of the source to read and read so far, for the progress bar of `agora import`: an adapter that
        # reads through it (``self.meter.open(path)``) gets a bar with a percentage, one that does not a spinner.
        self.meter = ByteMeter()

    @abstractmethod
    def entities(self, source: str) -> Iterator[Entity]:
        """Yield the entities of ``source`` one by one; report untranslatable rows with :meth:`reject`."""

    def reject(self, file: str, row: int, field: str, reason: str) -> None:
        self.rejections.append(Rejection(file, row, field, reason))

    def entity_id(self, entity_type: str, *native_id: str) -> str:
        """``urn:ngsi-ld:<Type>:<network>:<native id>``, stable across imports.

        Each part is percent-encoded (``:`` included), and a native id made of several fields (a stop time is its
        trip and its stop sequence) joins them with ``:``.
        """
        parts = [self.network or "default", *native_id]
        return f"urn:ngsi-ld:{entity_type}:" + ":".join(_quote(p) for p in parts)


def _quote(text: str) -> str:
    return quote(text, safe="-._~")


def split_source(source: str) -> tuple[str, dict[str, str]]:
    """``path?key=value&key=value`` -> ``(path, {key: value})``: adapter options ride on SOURCE (``agora import
    epanet 'Net1.inp?crs=EPSG:32632'``). A path that exists as given is never split."""
    if "?" not in source or Path(source).exists():
        return source, {}
    path, _, query = source.partition("?")
    return path, dict(parse_qsl(query, keep_blank_values=True))


def _load(target: str) -> type[Adapter]:
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise TypeError(f"{target} is not an Adapter subclass")
    return obj


def registered() -> dict[str, str]:
    """Adapter name -> ``module:Class``, from the ``agora.adapters`` entry points plus the built-in fallback."""
    found = dict(BUILTIN_ADAPTERS)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return dict(sorted(found.items()))


def load_adapter(name: str) -> type[Adapter]:
    targets = registered()
    if name not in targets:
        raise KeyError(f"no adapter named {name!r}; known: {', '.join(targets) or 'none'}")
    return _load(targets[name])
