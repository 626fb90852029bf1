"""The distributions of an open dataset (issue 19, record 0341): GeoJSON, CSV, NGSI-LD JSON and Turtle, streamed.

Every format is an async generator of byte chunks over the store's pages (`Store.scan_batches`): one page of
entities is in memory at a time, whatever the size of the dataset, so a dump of 1,000,000 entities needs what a
dump of 1,000 does (measured in bench/run.py). Before any format sees an entity, the attributes the ontology marks
as personal data are removed (`published`, record 0342). Attribute names are compacted with the project @context,
the vocabulary the adapters write (ARCHITECTURE decision 7).

The first pass over a dataset (`survey`) finds what the catalogue says of it and what the CSV needs before its
first row: the entity count, the bounding box of the locations, the temporal coverage and the attribute columns.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final

import orjson
from shapely.geometry import shape

from adapters.importer import project_context
from broker.core.model import NGSI_LD, Entity, Instance, now_iso
from broker.core.render import View, as_feature, render
from broker.ld.core import CORE_CONTEXT_URL
from broker.ld.termmap import TermMap
from broker.opendata.spec import DatasetSpec
from broker.store.base import Store
from ontologies.personal_data import personal_in

LOCATION: Final = NGSI_LD + "location"
PAGE: Final = 500
_SIMPLIFIED: Final = View(format="simplified")
_NORMALIZED: Final = View()


@dataclass(frozen=True)
class Format:
    name: str  # the download file's extension
    media_type: str
    file_type: str  # the code of the EU Publications Office's file-type authority table
    title: str


FORMATS: Final = {
    f.name: f
    for f in (
        Format("geojson", "application/geo+json", "GEOJSON", "GeoJSON FeatureCollection"),
        Format("csv", "text/csv", "CSV", "CSV, one row per entity"),
        Format("jsonld", "application/ld+json", "JSON_LD", "NGSI-LD entities (normalized, JSON-LD)"),
        Format("ttl", "text/turtle", "RDF_TURTLE", "RDF Turtle"),
    )
}


@cache
def project_termmap() -> TermMap:
    return TermMap.build(project_context()["@context"], {})


# -- what is published of an entity ---------------------------------------------------------------------------
def published(entity: Entity) -> Entity:
    """`entity` without the attributes (and sub-attributes) the ontology marks as personal data."""
    types = tuple(entity["type"])
    attrs = {iri: _clean(instances, types) for iri, instances in entity["attrs"].items() if not _personal(types, iri)}
    return {**entity, "attrs": attrs}


@lru_cache(maxsize=4096)
def _personal(types: tuple[str, ...], attr: str) -> bool:
    """personal_in, asked once per (types, attribute): a dump asks it for every attribute of every entity."""
    return personal_in(types, attr) is not None


def _clean(instances: list[Instance], types: tuple[str, ...]) -> list[Instance]:
    out = []
    for instance in instances:
        sub = instance.get("attrs")
        if sub:
            kept = {iri: _clean(v, types) for iri, v in sub.items() if not _personal(types, iri)}
            instance = {**instance, "attrs": kept}
        out.append(instance)
    return out


async def entities(store: Store, spec: DatasetSpec) -> AsyncIterator[list[Entity]]:
    """The published form of the dataset's entities, a page at a time, in id order."""
    if not await store.tenant_exists(spec.tenant):
        return
    async for batch in store.scan_batches(spec.tenant, spec.entity_filter(), PAGE):
        yield [published(e) for e in batch]
        # A SQLite page is read without suspending: give the event loop its turn between pages, so that a broker
        # regenerating a large dataset (or streaming it to one client) keeps answering the others.
        await asyncio.sleep(0)


# -- the survey: count, coverage, columns ---------------------------------------------------------------------
@dataclass
class Survey:
    count: int = 0
    bbox: list[float] | None = None  # [west, south, east, north]
    start: str | None = None
    end: str | None = None
    columns: list[str] = field(default_factory=list)  # compacted attribute names, sorted
    generated_at: str = ""
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of each distribution file written after it
    #: The store's erasure marker when the pass began (broker.gdpr.erase.ERASURE_CURSOR): the files stand only
    #: while it has not moved (record 0325).
    erasure: int | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "bbox": self.bbox,
            "start": self.start,
            "end": self.end,
            "columns": self.columns,
            "generatedAt": self.generated_at,
            "bytes": self.sizes,
            "erasure": self.erasure,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Survey:
        return cls(
            state["count"], state.get("bbox"), state.get("start"), state.get("end"), state["columns"],
            state.get("generatedAt", ""), state.get("bytes", {}), state.get("erasure"),
        )  # fmt: skip


async def survey(store: Store, spec: DatasetSpec) -> Survey:
    """One pass over the dataset. The temporal coverage is the span of the observedAt of its attributes; a
    dataset without observations (a network's assets) covers the span of its entities' creation and last
    modification (record 0341)."""
    tm = project_termmap()
    names: set[str] = set()
    box = [math.inf, math.inf, -math.inf, -math.inf]
    observed: list[str] = []
    lived: list[str] = []
    count = 0
    async for batch in entities(store, spec):
        for entity in batch:
            count += 1
            names.update(entity["attrs"])
            _extend_box(box, entity["attrs"].get(LOCATION, ()))
            _span(observed, _observed_at(entity["attrs"]))
            _span(lived, [t for t in (entity.get("createdAt"), entity.get("modifiedAt")) if t])
    span = observed or lived
    return Survey(
        count=count,
        bbox=box if math.isfinite(box[0]) else None,
        start=span[0] if span else None,
        end=span[-1] if span else None,
        columns=sorted(tm.compact_iri(n) for n in names if n != LOCATION),
        generated_at=now_iso(),
    )


def _span(span: list[str], times: Iterable[str]) -> None:
    """Keep `span` as [earliest, latest] of what it held and `times` (ISO 8601 UTC strings order as instants)."""
    for t in times:
        if not span:
            span.extend([t, t])
        elif t < span[0]:
            span[0] = t
        elif t > span[1]:
            span[1] = t


def _observed_at(attrs: dict[str, list[Instance]]) -> list[str]:
    return [i["observedAt"] for instances in attrs.values() for i in instances if "observedAt" in i]


def _extend_box(box: list[float], instances: Iterable[Instance]) -> None:
    for instance in instances:
        value = instance.get("value")
        if isinstance(value, dict):
            for lon, lat in _positions(value):
                box[0], box[1] = min(box[0], lon), min(box[1], lat)
                box[2], box[3] = max(box[2], lon), max(box[3], lat)


def _positions(geometry: dict[str, Any]) -> Iterable[tuple[float, float]]:
    if geometry.get("type") == "GeometryCollection":
        for member in geometry.get("geometries", ()):
            yield from _positions(member)
        return
    stack: list[Any] = [geometry.get("coordinates")]
    while stack:
        item = stack.pop()
        if isinstance(item, list) and item and isinstance(item[0], int | float):
            yield float(item[0]), float(item[1])
        elif isinstance(item, list):
            stack.extend(item)


# -- the formats ----------------------------------------------------------------------------------------------
class Writer:
    """One format: its bytes before the first page, for each page of entities, and after the last. A writer
    holds no entity beyond the page it is given."""

    def __init__(self, found: Survey, base: str) -> None:
        self.found, self.base, self.tm = found, base, project_termmap()

    def head(self) -> bytes:
        return b""

    def page(self, batch: list[Entity]) -> bytes:
        raise NotImplementedError

    def tail(self) -> bytes:
        return b""


class _JsonArray(Writer):
    """Items of a JSON array, a page at a time, commas between pages too."""

    opening: bytes = b"["
    closing: bytes = b"]\n"
    _started = False

    def head(self) -> bytes:
        return self.opening

    def page(self, batch: list[Entity]) -> bytes:
        items = [orjson.dumps(self.item(entity)) for entity in batch]
        if not items:
            return b""
        out = (b"," if self._started else b"") + b",".join(items)
        self._started = True
        return out

    def item(self, entity: Entity) -> dict[str, Any]:
        raise NotImplementedError

    def tail(self) -> bytes:
        return self.closing


class GeoJson(_JsonArray):
    """A FeatureCollection (IETF RFC 7946): the location as geometry, the other attributes simplified, as
    clause 6.3.15 builds a Feature."""

    opening = b'{"type":"FeatureCollection","features":['
    closing = b"]}\n"

    def item(self, entity: Entity) -> dict[str, Any]:
        doc = render(entity, self.tm, _SIMPLIFIED)
        doc.pop("location", None)
        return as_feature(doc, entity, LOCATION)


class NgsiLd(_JsonArray):
    """A JSON array of normalized NGSI-LD entities, each with the @context that reads it back: the project
    @context this broker serves (`/catalog/context.jsonld`) and the core @context."""

    def item(self, entity: Entity) -> dict[str, Any]:
        context = [f"{self.base}/catalog/context.jsonld", CORE_CONTEXT_URL]
        return {**render(entity, self.tm, _NORMALIZED), "@context": context}


class Csv(Writer):
    """One row per entity: id, type, the location's longitude and latitude (its centroid for a line or an
    area), then one column per attribute of the survey (simplified values; JSON for structured ones)."""

    def head(self) -> bytes:
        return _csv_lines([["id", "type", "longitude", "latitude", *self.found.columns]])

    def page(self, batch: list[Entity]) -> bytes:
        rows = []
        for entity in batch:
            doc = render(entity, self.tm, _SIMPLIFIED)
            lon, lat = _point(entity)
            cells = (_cell(doc.get(c)) for c in self.found.columns)
            rows.append([entity["id"], doc.get("type", ""), lon, lat, *cells])
        return _csv_lines(rows)


class Turtle(Writer):
    """Each entity as a subject (its id), typed by its types, one triple per attribute instance: a Property's
    value as a literal, a Relationship's object as an IRI, a GeoProperty as a GeoSPARQL WKT literal."""

    def head(self) -> bytes:
        return _TURTLE_PREFIXES

    def page(self, batch: list[Entity]) -> bytes:
        return "".join(_entity_triples(entity) for entity in batch).encode()


WRITERS: Final[dict[str, type[Writer]]] = {"geojson": GeoJson, "csv": Csv, "jsonld": NgsiLd, "ttl": Turtle}


async def stream(store: Store, spec: DatasetSpec, fmt: str, found: Survey, base: str) -> AsyncIterator[bytes]:
    """One distribution of the dataset, a store page per chunk."""
    writer = WRITERS[fmt](found, base)
    yield writer.head()
    async for batch in entities(store, spec):
        chunk = writer.page(batch)
        if chunk:
            yield chunk
    yield writer.tail()


async def write_all(
    store: Store, spec: DatasetSpec, found: Survey, base: str, files: dict[str, Path]
) -> dict[str, int]:
    """Every distribution of `files` (format -> path) from one pass over the dataset: each written to a temporary
    file beside its path, then renamed over it (a reader sees the old file or the new one, never half of one).
    The bytes written per format."""
    writers = {fmt: WRITERS[fmt](found, base) for fmt in files}
    partial = {fmt: path.with_name(f".{path.name}.{os.getpid()}.partial") for fmt, path in files.items()}
    sizes = dict.fromkeys(files, 0)
    with ExitStack() as stack:
        for path in files.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        outs = {fmt: stack.enter_context(path.open("wb")) for fmt, path in partial.items()}
        for leftover in partial.values():  # after a failure; a renamed file is gone from its partial name
            stack.callback(leftover.unlink, missing_ok=True)

        def put(fmt: str, chunk: bytes) -> None:
            outs[fmt].write(chunk)
            sizes[fmt] += len(chunk)

        for fmt, writer in writers.items():
            put(fmt, writer.head())
        async for batch in entities(store, spec):
            for fmt, writer in writers.items():
                put(fmt, writer.page(batch))
        for fmt, writer in writers.items():
            put(fmt, writer.tail())
            outs[fmt].close()
            os.replace(partial[fmt], files[fmt])
    return sizes


def _csv_lines(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends
    return out.getvalue().encode()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _point(entity: Entity) -> tuple[Any, Any]:
    for instance in entity["attrs"].get(LOCATION, ()):
        value = instance.get("value")
        if isinstance(value, dict) and value.get("type") == "Point":
            return value["coordinates"][0], value["coordinates"][1]
        if isinstance(value, dict):
            centre = shape(value).centroid
            return round(centre.x, 7), round(centre.y, 7)
    return "", ""


_TURTLE_PREFIXES: Final = (
    b"@prefix geo: <http://www.opengis.net/ont/geosparql#> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
)
_RDF_JSON: Final = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON>"


def _entity_triples(entity: Entity) -> str:
    lines = [f"\n{_iri(entity['id'])} a {', '.join(_iri(t) for t in entity['type'])}"]
    for iri, instances in entity["attrs"].items():
        for instance in instances:
            for term in _objects(instance):
                lines.append(f" ;\n    {_iri(iri)} {term}")
    return "".join(lines) + " .\n"


def _objects(instance: Instance) -> list[str]:
    kind = instance.get("type")
    if kind == "Relationship":
        return _iris(instance.get("object"))
    if kind == "GeoProperty":
        return [f"{_string(_wkt(instance['value']))}^^geo:wktLiteral"]
    if kind == "LanguageProperty":
        return [_string(str(text)) + _tag(lang) for lang, text in instance.get("languageMap", {}).items()]
    if kind == "VocabProperty":
        return _iris(instance.get("vocab"))
    for member in ("value", "json", "valueList", "objectList"):
        if member in instance:
            return [_literal(instance[member])]
    return []


def _wkt(geometry: dict[str, Any]) -> str:
    """Well-known text; a Point (most entities) without the cost of a shapely geometry."""
    if geometry.get("type") == "Point":
        return "POINT (" + " ".join(repr(float(c)) for c in geometry["coordinates"]) + ")"
    return str(shape(geometry).wkt)


def _iris(value: Any) -> list[str]:
    return [_iri(str(v)) for v in (value if isinstance(value, list) else [value]) if v is not None]


_LANGUAGE_TAG: Final = re.compile(r"^[a-zA-Z]+(-[a-zA-Z0-9]+)*$")


def _tag(lang: str) -> str:
    """A language tag suffix; none for "@none" (a string without language, clause 4.5.18) or a malformed tag."""
    return f"@{lang}" if _LANGUAGE_TAG.match(lang) else ""


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return f'"{str(value).lower()}"^^xsd:boolean'
    if isinstance(value, int):
        return f'"{value}"^^xsd:integer'
    if isinstance(value, float):
        return f'"{value!r}"^^xsd:double' if math.isfinite(value) else _string(str(value))
    if isinstance(value, str):
        return _string(value)
    return f"{_string(json.dumps(value, ensure_ascii=False, separators=(',', ':')))}^^{_RDF_JSON}"


_STRING_ESCAPES: Final = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _string(text: str) -> str:
    return '"' + text.translate(_STRING_ESCAPES) + '"'


# Characters an IRIREF may not hold (Turtle grammar rule [18]); they are percent-encoded.
_IRI_ESCAPES: Final = {c: f"%{ord(c):02X}" for c in '<>"{}|^`\\ '} | {chr(i): f"%{i:02X}" for i in range(0x21)}


_IRI_UNSAFE: Final = re.compile(r'[<>"{}|^`\\\x00-\x20]')


def _iri(iri: str) -> str:
    if _IRI_UNSAFE.search(iri) is None:  # nearly every IRI: no character to escape
        return f"<{iri}>"
    return "<" + "".join(_IRI_ESCAPES.get(c, c) for c in iri) + ">"
