"""Historian CSV exports (SCADA telemetry, energy and water) into temporal instances (docs/decisions/0064).

Two forms, told apart by the header:

- long: ``tag,timestamp,value,quality[,unit]`` (one reading per row; OPC DA quality codes);
- wide: a time column (``t_stamp``, ``timestamp`` or ``time``) and one column per tag (no quality, no unit).

A tag map (CSV ``tag,entity,attribute[,unit][,type][,subject]``) binds each tag to the entity and attribute it
measures, and gives the unit of a tag whose export does not carry one. ``subject`` names the customer whose meter
the entity is (a URI, e.g. ``urn:ngsi-ld:Person:oberrhein:customer-4711``): the entity then carries it as the
``dataSubject`` Relationship, the mark that makes its readings the customer's personal data (records 0320, 0321).
Options ride on SOURCE: ``export.csv?tagmap=tags.csv&tz=Europe/Berlin`` (``tagmap`` defaults to ``tagmap.csv``
next to the export; ``tz`` is the zone of timestamps without an offset, UTC by default).

Every reading with a value is kept, whatever its quality, and flagged (``measurementQuality`` good, uncertain or
bad, and the raw ``qualityCode``); a row without a value has nothing to keep and is reported. A tag missing from
the tag map is reported once, with the first row that uses it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.telemetry import Reading, ReadingStore, opc_quality, utc
from adapters.units import UnknownUnit, unit_code

TIME_COLUMNS = ("t_stamp", "timestamp", "time", "datetime")


@dataclass(frozen=True)
class Binding:
    entity_id: str
    entity_type: str
    attribute: str
    unit: str | None
    subject: str | None = None  # the customer (GDPR data subject) of a customer meter


def read_tag_map(path: Path) -> dict[str, Binding]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SourceError(f"{path}: the tag map cannot be read ({exc})") from exc
    bindings: dict[str, Binding] = {}
    with handle:
        reader = csv.DictReader(handle)
        for column in ("tag", "entity", "attribute"):
            if column not in (reader.fieldnames or []):
                raise SourceError(f"{path.name}: missing required column {column}")
        for row_number, row in enumerate(reader, start=2):
            entity_id = (row.get("entity") or "").strip()
            parts = entity_id.split(":")
            entity_type = (row.get("type") or "").strip() or (parts[2] if len(parts) > 3 else "")
            if not entity_id.startswith("urn:") or not entity_type or not (row.get("attribute") or "").strip():
                raise SourceError(f"{path.name} row {row_number}: entity must be a urn:ngsi-ld:<Type>:... id "
                                  f"and attribute a name, got {entity_id!r}")  # fmt: skip
            unit = (row.get("unit") or "").strip() or None
            if unit is not None:
                try:
                    unit_code(unit)
                except UnknownUnit as exc:
                    raise SourceError(f"{path.name} row {row_number} field unit: {exc}") from exc
            subject = (row.get("subject") or "").strip() or None
            if subject is not None and ":" not in subject:
                raise SourceError(f"{path.name} row {row_number} field subject: a URI is needed, got {subject!r}")
            bindings[row["tag"].strip()] = Binding(entity_id, entity_type, row["attribute"].strip(), unit, subject)
    return bindings


def subject_link(binding: Binding) -> Entity:
    """The customer of a customer meter, as the entity carries it (a personal identifier, record 0320)."""
    return {
        "id": binding.entity_id,
        "type": binding.entity_type,
        "dataSubject": {"type": "Relationship", "object": binding.subject},
    }


class HistorianAdapter(Adapter):
    name = "historian"
    description = "historian CSV export (long or wide) + tag map into temporal instances and latest values"

    def entities(self, source: str) -> Iterator[Entity]:
        path, options = split_source(source)
        self.file = Path(path).name
        tag_map = Path(options["tagmap"]) if "tagmap" in options else Path(path).with_name("tagmap.csv")
        self.bindings = read_tag_map(tag_map)
        try:
            self.zone = ZoneInfo(options["tz"]) if options.get("tz") else None
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SourceError(f"tz {options['tz']!r} is not a time zone name") from exc
        self._unmapped: set[str] = set()
        store = ReadingStore()
        for binding in self.bindings.values():
            if binding.subject is not None:
                store.describe(subject_link(binding))
        try:
            for reading in self._readings(path):
                store.add(reading)
        except BaseException:
            store.close()
            raise
        yield from store.output()

    def _readings(self, path: str) -> Iterator[Reading]:
        try:
            handle = self.meter.open_text(path, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        with handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            try:
                if {"tag", "timestamp", "value"} <= set(header):
                    yield from self._long(reader, header)
                elif header and header[0].lower() in TIME_COLUMNS and len(header) > 1:
                    yield from self._wide(reader, header)
                else:
                    raise SourceError(f"{self.file}: header {header!r} is neither the long form "
                                      "(tag,timestamp,value,quality[,unit]) nor the wide form (a time column, "
                                      "then one column per tag)")  # fmt: skip
            except csv.Error as exc:
                raise SourceError(f"{self.file}: unreadable after row {reader.line_num} ({exc})") from exc

    def _binding(self, tag: str, row: int, field: str) -> Binding | None:
        binding = self.bindings.get(tag)
        if binding is None and tag not in self._unmapped:
            self._unmapped.add(tag)
            self.reject(self.file, row, field, f"tag {tag!r} is not in the tag map; its readings are left out")
        return binding

    def _time(self, raw: str, row: int, field: str) -> str | None:
        try:
            return utc(raw, self.zone)
        except (ValueError, OverflowError, OSError):
            self.reject(self.file, row, field, f"not an ISO 8601 date-time or epoch milliseconds: {raw!r}")
            return None

    def _value(self, raw: str, row: int, field: str, quality: str | None) -> float | None:
        text = raw.strip()
        if not text:
            flag = f" (quality {quality})" if quality else ""
            self.reject(self.file, row, field, f"no value{flag}: nothing to keep")
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.reject(self.file, row, field, f"not a number: {text!r}")
            return None
        return value

    def _unit(self, given: str | None, binding: Binding, row: int, field: str) -> tuple[bool, str | None]:
        unit = given or binding.unit
        if unit is None:
            return True, None
        try:
            unit_code(unit)
        except UnknownUnit as exc:
            self.reject(self.file, row, field, str(exc))
            return False, None
        return True, unit

    def _long(self, reader: Iterator[list[str]], header: list[str]) -> Iterator[Reading]:
        col = {name: header.index(name) for name in header}
        for row_number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            cell = dict(zip(header, values, strict=False))
            binding = self._binding(cell.get("tag", "").strip(), row_number, "tag")
            if binding is None:
                continue
            code: int | None = None
            if "quality" in col and cell.get("quality", "").strip():
                try:
                    code = int(cell["quality"])
                except ValueError:
                    self.reject(self.file, row_number, "quality", f"not an OPC quality code: {cell['quality']!r}")
                    continue
            quality = opc_quality(code) if code is not None else None
            observed = self._time(cell.get("timestamp", ""), row_number, "timestamp")
            value = self._value(cell.get("value", ""), row_number, "value", quality)
            ok, unit = self._unit(cell.get("unit", "").strip() or None, binding, row_number, "unit")
            if observed is None or value is None or not ok:
                continue
            yield Reading(binding.entity_id, binding.entity_type, binding.attribute, observed, value, unit, quality,
                          code)  # fmt: skip

    def _wide(self, reader: Iterator[list[str]], header: list[str]) -> Iterator[Reading]:
        bindings = {i: self._binding(tag, 1, tag) for i, tag in enumerate(header) if i > 0}
        for row_number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            observed = self._time(values[0], row_number, header[0])
            if observed is None:
                continue
            for i, binding in bindings.items():
                if binding is None or i >= len(values):
                    continue
                value = self._value(values[i], row_number, header[i], None)
                ok, unit = self._unit(None, binding, row_number, header[i])
                if value is not None and ok:
                    yield Reading(binding.entity_id, binding.entity_type, binding.attribute, observed, value, unit)
