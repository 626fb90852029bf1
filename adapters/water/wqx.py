"""WQX 3.0 result CSVs (Water Quality Portal, USGS Samples) into WaterQualityObserved stations and their history.

One WaterQualityObserved entity per monitoring location (``Location_Identifier``) with its name and location
(``Location_LatitudeStandardized``/``LongitudeStandardized``, NAD83 taken as WGS84), the latest result of each
characteristic, and the earlier ones as temporal instances (docs/decisions/0064). The activity's start date, time
and time zone give ``observedAt`` in UTC. A characteristic outside the table is reported once.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from adapters.attrs import entity, point, prop, valid_wgs84
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.telemetry import Reading, ReadingStore, utc
from adapters.water.observed import WQX_CHARACTERISTICS, reading

REQUIRED = ("Location_Identifier", "Activity_StartDate", "Result_Characteristic", "Result_Measure")
# the zone codes WQX uses (hours from UTC)
ZONES = {"UTC": 0, "GMT": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
         "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "AST": -4, "ADT": -3}  # fmt: skip
STATUS_QUALITY = {"accepted": "good", "final": "good", "validated": "good", "preliminary": "uncertain",
                  "provisional": "uncertain", "rejected": "bad"}  # fmt: skip


class WqxAdapter(Adapter):
    name = "wqx"
    description = "WQX 3.0 results CSV into WaterQualityObserved stations and temporal instances"
    entity_types = ("WaterQualityObserved",)

    def entities(self, source: str) -> Iterator[Entity]:
        path, _ = split_source(source)
        self.file = Path(path).name
        if self.network is None:
            self.network = "wqx"
        self._unmapped: set[str] = set()
        store = ReadingStore()
        try:
            for item in self._rows(path, store):
                store.add(item)
        except BaseException:
            store.close()
            raise
        yield from store.output()

    def _rows(self, path: str, store: ReadingStore) -> Iterator[Reading]:
        try:
            handle = self.meter.open_text(path, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        with handle:
            reader = csv.DictReader(handle)
            for column in REQUIRED:
                if column not in (reader.fieldnames or []):
                    raise SourceError(f"{self.file}: missing required column {column}")
            try:
                for number, row in enumerate(reader, start=2):
                    item = self._row(number, row, store)
                    if item is not None:
                        yield item
            except csv.Error as exc:
                raise SourceError(f"{self.file}: unreadable after row {reader.line_num} ({exc})") from exc

    def _row(self, number: int, row: dict[str, str], store: ReadingStore) -> Reading | None:
        location = (row.get("Location_Identifier") or "").strip()
        if not location:
            self.reject(self.file, number, "Location_Identifier", "required value is empty")
            return None
        entity_id = self.entity_id("WaterQualityObserved", location)
        store.describe(self._station(entity_id, number, row))
        characteristic = (row.get("Result_Characteristic") or "").strip()
        observed = WQX_CHARACTERISTICS.get(characteristic.lower())
        if observed is None:
            if characteristic not in self._unmapped:
                self._unmapped.add(characteristic)
                self.reject(self.file, number, "Result_Characteristic", f"{characteristic!r} is not mapped; its "
                            "results are left out")  # fmt: skip
            return None
        raw = (row.get("Result_Measure") or "").strip()
        try:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
        except ValueError:
            self.reject(self.file, number, "Result_Measure", f"not a number: {raw!r}")
            return None
        when = self._when(number, row)
        if when is None:
            return None
        status = (row.get("Result_MeasureStatusIdentifier") or "").strip()
        return reading(entity_id, observed, when, value, (row.get("Result_MeasureUnit") or "").strip() or None,
                       STATUS_QUALITY.get(status.lower()), (("measureStatus", status),) if status else ())  # fmt: skip

    def _station(self, entity_id: str, number: int, row: dict[str, str]) -> Entity:
        location = None
        try:
            lat = float(row.get("Location_LatitudeStandardized") or row.get("Location_Latitude") or "nan")
            lon = float(row.get("Location_LongitudeStandardized") or row.get("Location_Longitude") or "nan")
            if valid_wgs84(lon, lat):
                location = point(lon, lat)
        except ValueError:
            pass
        return entity(entity_id, "WaterQualityObserved", {
            "name": prop((row.get("Location_Name") or "").strip() or None),
            "location": location,
        })  # fmt: skip

    def _when(self, number: int, row: dict[str, str]) -> str | None:
        date = (row.get("Activity_StartDate") or "").strip()
        time = (row.get("Activity_StartTime") or "").strip() or "00:00:00"
        zone_name = (row.get("Activity_StartTimeZone") or "").strip().upper() or "UTC"
        if zone_name not in ZONES:
            self.reject(self.file, number, "Activity_StartTimeZone", f"unknown time zone {zone_name!r}")
            return None
        try:
            local = datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=timezone(timedelta(hours=ZONES[zone_name])))
        except ValueError:
            self.reject(self.file, number, "Activity_StartDate", f"not a date and time: {date!r} {time!r}")
            return None
        return utc(local.isoformat())
