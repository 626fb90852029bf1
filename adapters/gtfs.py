"""GTFS static (a feed zip) into the Smart Data Models UrbanMobility types; choices in docs/decisions/0030, 0039.

Every file is streamed row by row (zipfile + csv.DictReader). Kept in memory: the agency ids (routes that omit
agency_id need the feed's single agency), the ids of stations and access points (a transfer may start at a
station), the service ids (one GtfsService each), and translations.txt (read first: its texts become the
languages of the translated fields' LanguageProperties). shapes.txt, the one file whose rows must be grouped, goes
through a temporary SQLite file sorted on (shape_id, shape_pt_sequence): memory holds one shape's points at a time.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sqlite3
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.base import Adapter, Entity, SourceError

REQUIRED_FILES = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
TIME = re.compile(r"^\d{1,3}:[0-5]\d:[0-5]\d$")
STOP_TYPES = {"": "GtfsStop", "0": "GtfsStop", "1": "GtfsStation", "2": "GtfsAccessPoint", "3": "GtfsAccessPoint",
              "4": "GtfsAccessPoint"}  # fmt: skip


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def geo(geometry_type: str, coordinates: Any) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": geometry_type, "coordinates": coordinates}}


class _Row:
    """One CSV row with typed readers; a bad value is reported, and a bad *required* value rejects the row."""

    def __init__(self, adapter: Adapter, file: str, line: int, data: dict[str, str | None]) -> None:
        self.adapter, self.file, self.line, self.data = adapter, file, line, data
        self.ok = True

    def fail(self, column: str, reason: str, required: bool) -> None:
        self.adapter.reject(self.file, self.line, column, reason + ("" if required else "; attribute left out"))
        if required:
            self.ok = False

    def text(self, column: str, required: bool = False) -> str | None:
        value = (self.data.get(column) or "").strip()
        if value:
            return value
        if required:
            self.fail(column, "required value is empty", True)
        return None

    def _parse(self, column: str, required: bool, kind: str, parse: Any) -> Any:
        raw = self.text(column, required)
        if raw is None:
            return None
        try:
            return parse(raw)
        except ValueError:
            self.fail(column, f"not {kind}: {raw!r}", required)
            return None

    def integer(self, column: str, required: bool = False) -> int | None:
        value: int | None = self._parse(column, required, "an integer", int)
        return value

    def number(self, column: str, required: bool = False) -> float | None:
        def parse(raw: str) -> float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value

        result: float | None = self._parse(column, required, "a number", parse)
        return result

    def nonnegative(self, column: str, integer: bool = False) -> float | None:
        value: float | None = self.integer(column) if integer else self.number(column)
        if value is not None and value < 0:
            self.fail(column, f"negative: {value}", False)
            return None
        return value

    def coordinate(self, column: str, limit: float, required: bool) -> float | None:
        value = self.number(column, required)
        if value is not None and not -limit <= value <= limit:
            self.fail(column, f"out of range [-{limit:g}, {limit:g}]: {value}", required)
            return None
        return value

    def flag(self, column: str, required: bool = False) -> bool | None:
        def parse(raw: str) -> bool:
            if raw not in ("0", "1"):
                raise ValueError(raw)
            return raw == "1"

        value: bool | None = self._parse(column, required, "0 or 1", parse)
        return value

    def date(self, column: str, required: bool = False) -> str | None:
        value: str | None = self._parse(
            column, required, "a YYYYMMDD date", lambda raw: datetime.strptime(raw, "%Y%m%d").date().isoformat()
        )
        return value

    def timezone(self, column: str, required: bool = False) -> str | None:
        """An IANA time zone name that the system's zone database knows (GTFS times are local to it)."""

        def parse(raw: str) -> str:
            try:
                ZoneInfo(raw)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(raw) from exc
            return raw

        value: str | None = self._parse(column, required, "an IANA time zone", parse)
        return value

    def time(self, column: str, required: bool = False) -> str | None:
        def parse(raw: str) -> str:
            if not TIME.match(raw):
                raise ValueError(raw)
            return raw

        value: str | None = self._parse(column, required, "a H:MM:SS time", parse)
        return value


def _entity(entity_id: str, entity_type: str, attrs: dict[str, dict[str, Any] | None]) -> Entity:
    """An entity with the attributes whose value is present (a Property of None is left out)."""
    entity: Entity = {"id": entity_id, "type": entity_type}
    for name, attr in attrs.items():
        if attr is None or all(attr.get(member) is None for member in ("value", "object", "languageMap")):
            continue
        entity[name] = attr
    return entity


def _p(value: Any) -> dict[str, Any] | None:
    return None if value is None else prop(value)


class GtfsAdapter(Adapter):
    name = "gtfs"
    description = "GTFS static feed (zip) into UrbanMobility Gtfs* entities (stops, routes, trips, stop times, ...)"
    entity_types = (
        "GtfsAgency", "GtfsStop", "GtfsStation", "GtfsAccessPoint", "GtfsRoute", "GtfsTrip", "GtfsStopTime",
        "GtfsCalendarRule", "GtfsCalendarDateRule", "GtfsService", "GtfsShape", "GtfsFrequency", "GtfsTransferRule",
        "GtfsFeedInfo", "GtfsLevel", "GtfsPathway", "GtfsFareClass", "GtfsFareRule", "GtfsRiderTrip",
    )  # fmt: skip

    def entities(self, source: str) -> Iterator[Entity]:
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise SourceError(f"{source}: not a readable GTFS zip ({exc})") from exc
        with archive:
            names = set(archive.namelist())
            for required in REQUIRED_FILES:
                if required not in names:
                    raise SourceError(f"{source}: missing required file {required}")
            if "calendar.txt" not in names and "calendar_dates.txt" not in names:
                raise SourceError(f"{source}: missing required file calendar.txt (or calendar_dates.txt)")
            self._zip, self._names = archive, names
            # every top-level .txt member is read: translated, or counted for the summary (_untranslated)
            self.meter.expect(sum(i.file_size for i in archive.infolist()
                                  if i.filename.endswith(".txt") and "/" not in i.filename))  # fmt: skip
            self._noted: set[str] = set()
            agencies = [row.text("agency_id") or row.text("agency_name") or "" for row in self._rows("agency.txt")]
            if self.network is None:
                self.network = agencies[0] if agencies and agencies[0] else Path(source).stem
            self._default_agency = agencies[0] if len(agencies) == 1 else None
            self._not_stops: dict[str, str] = {}  # stop_id -> type, for the stations and access points only
            self._services: set[str] = set()
            self._feed_lang = self._feed_language()
            self._translations = Translations()
            if "translations.txt" in names:
                self._load_translations()
            yield from self._agencies()
            yield from self._optional("levels.txt", self._levels)
            yield from self._stops()
            yield from self._routes()
            yield from self._trips()
            yield from self._stop_times()
            yield from self._optional("calendar.txt", self._calendar)
            yield from self._optional("calendar_dates.txt", self._calendar_dates)
            yield from self._service_entities()
            yield from self._optional("shapes.txt", self._shapes)
            yield from self._optional("frequencies.txt", self._frequencies)
            yield from self._optional("transfers.txt", self._transfers)
            yield from self._optional("feed_info.txt", self._feed_info)
            yield from self._optional("pathways.txt", self._pathways)
            yield from self._optional("fare_attributes.txt", self._fare_classes)
            yield from self._optional("fare_rules.txt", self._fare_rules)
            yield from self._optional("rider_trip.txt", self._rider_trips)
            self._untranslated()

    # -- reading --------------------------------------------------------------------------------------------------
    def _rows(self, file: str, columns: tuple[str, ...] = ()) -> Iterator[_Row]:
        try:
            raw = self.meter.counted(self._zip.open(file), file)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"{file}: cannot be read ({exc})") from exc
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            reader = csv.DictReader(text)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            for column in columns:
                if column not in header:
                    raise SourceError(f"{file}: missing required column {column}")
            self._note_columns(file, header)
            try:
                for number, data in enumerate(reader, start=2):
                    yield _Row(self, file, number, data)
            except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
                raise SourceError(f"{file}: unreadable after row {reader.line_num} ({exc})") from exc

    def _note_columns(self, file: str, header: list[str]) -> None:
        """Name, once per file, the columns no mapping reads (newer or extension fields), instead of ignoring them."""
        known = COLUMNS.get(file)
        unread = [c for c in header if c and known is not None and c not in known]
        if unread and file not in self._noted:
            self._noted.add(file)
            self.notes.append(f"{file}: columns not translated: {', '.join(unread)}")

    def _optional(self, file: str, translate: Any) -> Iterator[Entity]:
        if file in self._names:
            yield from translate()

    def _ref(self, entity_type: str, native_id: str | None) -> dict[str, Any] | None:
        return None if native_id is None else rel(self.entity_id(entity_type, native_id))

    # -- files ----------------------------------------------------------------------------------------------------
    def _agencies(self) -> Iterator[Entity]:
        for row in self._rows("agency.txt", ("agency_name", "agency_url", "agency_timezone")):
            name = row.text("agency_name", True)
            native = row.text("agency_id") or name
            zone = row.timezone("agency_timezone", True)
            if not row.ok or native is None:
                continue
            yield _entity(self.entity_id("GtfsAgency", native), "GtfsAgency", {
                "agencyName": self._text("agency", "agency_name", name, row.text("agency_id") or ""),
                "page": _p(row.text("agency_url")),
                "timezone": _p(zone),
                "language": _p(row.text("agency_lang")),
                "phone": _p(row.text("agency_phone")),
                "agency_fare_url": _p(row.text("agency_fare_url")),
                "agency_email": _p(row.text("agency_email")),
            })  # fmt: skip

    def _stops(self) -> Iterator[Entity]:
        for row in self._rows("stops.txt", ("stop_id",)):
            stop_id = row.text("stop_id", True)
            kind = row.text("location_type") or ""
            entity_type = STOP_TYPES.get(kind)
            if entity_type is None:
                row.fail("location_type", f"not one of 0-4: {kind!r}", True)
            # Generic nodes (3) and boarding areas (4) may have no position; the others must have one.
            located = kind not in ("3", "4")
            lat = row.coordinate("stop_lat", 90, located)
            lon = row.coordinate("stop_lon", 180, located)
            if not row.ok or stop_id is None or entity_type is None:
                continue
            parent = row.text("parent_station")
            parent_type = "GtfsStop" if kind == "4" else "GtfsStation"  # a boarding area belongs to a platform
            if entity_type != "GtfsStop":
                self._not_stops[stop_id] = entity_type
            yield _entity(self.entity_id(entity_type, stop_id), entity_type, {
                "name": self._text("stops", "stop_name", row.text("stop_name"), stop_id),
                "code": _p(row.text("stop_code")),
                "description": self._text("stops", "stop_desc", row.text("stop_desc"), stop_id),
                "location": geo("Point", [lon, lat]) if lat is not None and lon is not None else None,
                "zoneCode": _p(row.text("zone_id")),
                "page": _p(row.text("stop_url")),
                "timezone": _p(row.timezone("stop_timezone")),
                "wheelChairAccessible": _p(row.text("wheelchair_boarding")),
                "hasParentStation": self._ref(parent_type, parent),
                "hasLevel": self._ref("GtfsLevel", row.text("level_id")),
            })  # fmt: skip

    def _routes(self) -> Iterator[Entity]:
        for row in self._rows("routes.txt", ("route_id", "route_type")):
            route_id = row.text("route_id", True)
            route_type = row.integer("route_type", True)
            agency = row.text("agency_id") or self._default_agency
            if not row.ok or route_id is None:
                continue
            yield _entity(self.entity_id("GtfsRoute", route_id), "GtfsRoute", {
                "shortName": self._text("routes", "route_short_name", row.text("route_short_name"), route_id),
                "name": self._text("routes", "route_long_name", row.text("route_long_name"), route_id),
                "description": self._text("routes", "route_desc", row.text("route_desc"), route_id),
                "routeType": _p(str(route_type)),
                "page": _p(row.text("route_url")),
                "routeColor": _p(row.text("route_color")),
                "routeTextColor": _p(row.text("route_text_color")),
                "routeSortOrder": _p(row.integer("route_sort_order")),
                "operatedBy": self._ref("GtfsAgency", agency),
            })  # fmt: skip

    def _trips(self) -> Iterator[Entity]:
        for row in self._rows("trips.txt", ("route_id", "service_id", "trip_id")):
            trip_id = row.text("trip_id", True)
            route_id = row.text("route_id", True)
            service_id = row.text("service_id", True)
            if not row.ok or trip_id is None:
                continue
            yield _entity(self.entity_id("GtfsTrip", trip_id), "GtfsTrip", {
                "hasRoute": self._ref("GtfsRoute", route_id),
                "hasService": self._ref("GtfsService", service_id),
                "headSign": self._text("trips", "trip_headsign", row.text("trip_headsign"), trip_id),
                "shortName": self._text("trips", "trip_short_name", row.text("trip_short_name"), trip_id),
                "direction": _p(row.integer("direction_id")),
                "block": _p(row.text("block_id")),
                "hasShape": self._ref("GtfsShape", row.text("shape_id")),
                "wheelChairAccessible": _p(row.integer("wheelchair_accessible")),
                "bikesAllowed": _p(row.integer("bikes_allowed")),
            })  # fmt: skip

    def _stop_times(self) -> Iterator[Entity]:
        for row in self._rows("stop_times.txt", ("trip_id", "stop_id", "stop_sequence")):
            trip_id = row.text("trip_id", True)
            stop_id = row.text("stop_id", True)
            sequence = row.integer("stop_sequence", True)
            arrival, departure = row.time("arrival_time"), row.time("departure_time")
            if not row.ok or trip_id is None or sequence is None:
                continue
            yield _entity(self.entity_id("GtfsStopTime", trip_id, str(sequence)), "GtfsStopTime", {
                "hasTrip": self._ref("GtfsTrip", trip_id),
                "hasStop": self._ref("GtfsStop", stop_id),
                "stopSequence": _p(sequence),
                "arrivalTime": _p(arrival),
                "departureTime": _p(departure),
                "stopHeadsign": self._text("stop_times", "stop_headsign", row.text("stop_headsign"), trip_id,
                                           str(sequence)),
                "pickupType": _p(row.text("pickup_type")),
                "dropOffType": _p(row.text("drop_off_type")),
                "distanceTravelled": _p(row.number("shape_dist_traveled")),
                "timepoint": _p(row.text("timepoint")),
            })  # fmt: skip

    def _calendar(self) -> Iterator[Entity]:
        days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        for row in self._rows("calendar.txt", ("service_id", *days, "start_date", "end_date")):
            service_id = row.text("service_id", True)
            attrs: dict[str, dict[str, Any] | None] = {"hasService": self._ref("GtfsService", service_id)}
            attrs.update({day: _p(row.flag(day, True)) for day in days})
            attrs["startDate"] = _p(row.date("start_date", True))
            attrs["endDate"] = _p(row.date("end_date", True))
            if row.ok and service_id is not None:
                self._services.add(service_id)
                yield _entity(self.entity_id("GtfsCalendarRule", service_id), "GtfsCalendarRule", attrs)

    def _calendar_dates(self) -> Iterator[Entity]:
        for row in self._rows("calendar_dates.txt", ("service_id", "date", "exception_type")):
            service_id = row.text("service_id", True)
            day = row.date("date", True)
            exception = row.text("exception_type", True)
            if exception is not None and exception not in ("1", "2"):
                row.fail("exception_type", f"not 1 or 2: {exception!r}", True)
            if not row.ok or service_id is None or day is None:
                continue
            self._services.add(service_id)
            yield _entity(self.entity_id("GtfsCalendarDateRule", service_id, day), "GtfsCalendarDateRule", {
                "hasService": self._ref("GtfsService", service_id),
                "appliesOn": _p(day),
                "exceptionType": _p(exception),
            })  # fmt: skip

    def _service_entities(self) -> Iterator[Entity]:
        """One GtfsService per service_id of calendar.txt and calendar_dates.txt (the target of hasService)."""
        for service_id in sorted(self._services):
            yield _entity(self.entity_id("GtfsService", service_id), "GtfsService", {
                "name": prop(service_id),
                "operatedBy": self._ref("GtfsAgency", self._default_agency),
            })  # fmt: skip
        self._services.clear()

    def _shapes(self) -> Iterator[Entity]:
        columns = ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence")
        with tempfile.TemporaryDirectory(prefix="agora-gtfs-") as tmp:
            db = sqlite3.connect(Path(tmp) / "shapes.db")
            try:
                db.execute("CREATE TABLE p (shape TEXT, seq INTEGER, lon REAL, lat REAL, dist REAL, line INTEGER)")
                batch: list[tuple[Any, ...]] = []
                for row in self._rows("shapes.txt", columns):
                    shape_id = row.text("shape_id", True)
                    lat = row.coordinate("shape_pt_lat", 90, True)
                    lon = row.coordinate("shape_pt_lon", 180, True)
                    seq = row.integer("shape_pt_sequence", True)
                    dist = row.number("shape_dist_traveled")
                    if row.ok:
                        batch.append((shape_id, seq, lon, lat, dist, row.line))
                    if len(batch) >= 10_000:
                        db.executemany("INSERT INTO p VALUES (?, ?, ?, ?, ?, ?)", batch)
                        batch.clear()
                db.executemany("INSERT INTO p VALUES (?, ?, ?, ?, ?, ?)", batch)
                cursor = db.execute("SELECT shape, lon, lat, dist, line FROM p ORDER BY shape, seq, line")
                current: str | None = None
                points: list[list[float]] = []
                dists: list[float | None] = []
                first_line = 0
                for shape, lon, lat, dist, line in cursor:
                    if shape != current:
                        if current is not None:
                            yield from self._shape(current, points, dists, first_line)
                        current, points, dists, first_line = shape, [], [], line
                    points.append([lon, lat])
                    dists.append(dist)
                if current is not None:
                    yield from self._shape(current, points, dists, first_line)
            finally:
                db.close()

    def _shape(
        self, shape_id: str, points: list[list[float]], dists: list[float | None], line: int
    ) -> Iterator[Entity]:
        if len(points) < 2:
            self.reject("shapes.txt", line, "shape_pt_sequence", f"shape {shape_id!r} has fewer than two points")
            return
        yield _entity(self.entity_id("GtfsShape", shape_id), "GtfsShape", {
            "location": geo("LineString", points),
            "distanceTravelled": _p(dists) if all(d is not None for d in dists) else None,
        })  # fmt: skip

    def _frequencies(self) -> Iterator[Entity]:
        for row in self._rows("frequencies.txt", ("trip_id", "start_time", "end_time", "headway_secs")):
            trip_id = row.text("trip_id", True)
            start = row.time("start_time", True)
            end = row.time("end_time", True)
            headway = row.integer("headway_secs", True)
            exact = row.flag("exact_times")
            if not row.ok or trip_id is None or start is None:
                continue
            yield _entity(self.entity_id("GtfsFrequency", trip_id, start), "GtfsFrequency", {
                "hasTrip": self._ref("GtfsTrip", trip_id),
                "startTime": _p(start),
                "endTime": _p(end),
                "headwaySeconds": _p(headway),
                "exactTimes": _p(exact),
            })  # fmt: skip

    def _transfers(self) -> Iterator[Entity]:
        for row in self._rows("transfers.txt", ("from_stop_id", "to_stop_id", "transfer_type")):
            origin = row.text("from_stop_id", True)
            destination = row.text("to_stop_id", True)
            transfer_type = row.text("transfer_type") or "0"
            if not row.ok or origin is None or destination is None:
                continue
            scope = [row.text(c) or "" for c in ("from_route_id", "to_route_id", "from_trip_id", "to_trip_id")]
            native = [origin, destination, *scope] if any(scope) else [origin, destination]
            yield _entity(self.entity_id("GtfsTransferRule", *native), "GtfsTransferRule", {
                "hasOrigin": self._ref(self._not_stops.get(origin, "GtfsStop"), origin),
                "hasDestination": self._ref(self._not_stops.get(destination, "GtfsStop"), destination),
                "transferType": _p(transfer_type),
                "minimumTransferTime": _p(row.integer("min_transfer_time")),
            })  # fmt: skip

    def _feed_info(self) -> Iterator[Entity]:
        for row in self._rows("feed_info.txt", ("feed_publisher_name", "feed_publisher_url")):
            publisher = row.text("feed_publisher_name", True)
            if not row.ok:
                continue
            yield _entity(self.entity_id("GtfsFeedInfo", row.text("feed_id") or "feed"), "GtfsFeedInfo", {
                "name": self._text("feed_info", "feed_publisher_name", publisher, ""),
                "page": _p(row.text("feed_publisher_url")),
                "language": _p(row.text("feed_lang")),
                "startDate": _p(row.date("feed_start_date")),
                "endDate": _p(row.date("feed_end_date")),
                "version": _p(row.text("feed_version")),
            })  # fmt: skip

    # -- translations, levels, pathways (decision 0039) -------------------------------------------------------------
    def _feed_language(self) -> str | None:
        """The language of the feed's own texts: feed_info.feed_lang, else the single agency's agency_lang."""
        for file, column in (("feed_info.txt", "feed_lang"), ("agency.txt", "agency_lang")):
            if file in self._names:
                langs = {row.data.get(column, "") or "" for row in self._rows(file)}
                found = {lang.strip() for lang in langs if lang and lang.strip().lower() != "mul"}
                if len(found) == 1:
                    return language_tag(found.pop())
        return None

    def _load_translations(self) -> None:
        rows = self._rows("translations.txt")
        for row in rows:
            if "trans_id" in row.data:  # the older proposal: trans_id (the original text), lang, translation
                original, lang, text = row.text("trans_id", True), row.text("lang", True), row.text("translation", True)
                if row.ok and original and lang and text:
                    self._translations.by_value[("*", "*", original)][language_tag(lang)] = text
                continue
            table, field = row.text("table_name", True), row.text("field_name", True)
            lang, text = row.text("language", True), row.text("translation", True)
            record, value = row.text("record_id"), row.text("field_value")
            if table is not None and table not in TRANSLATABLE:
                row.fail("table_name", f"not a table with translatable fields: {table!r}", True)
            if table not in (None, "feed_info") and record is None and value is None:
                row.fail("record_id", "neither record_id nor field_value is given", True)
            if not row.ok or table is None or field is None or lang is None or text is None:
                continue
            tag = language_tag(lang)
            if record is not None:
                key = (table, field, record, row.text("record_sub_id") or "")
                self._translations.by_record[key][tag] = text
            else:
                self._translations.by_value[(table, field, value or "")][tag] = text

    def _text(self, table: str, field: str, value: str | None, record: str, sub: str = "") -> dict[str, Any] | None:
        """A text field: a Property, or a LanguageProperty when translations.txt translates it (clause 4.5.18)."""
        if value is None:
            return None
        found = self._translations.find(table, field, value, record, sub)
        if not found:
            return prop(value)
        # The original text under the feed's language (or @none when the feed does not say), unless translated.
        return {"type": "LanguageProperty", "languageMap": {self._feed_lang or "@none": value, **found}}

    def _levels(self) -> Iterator[Entity]:
        for row in self._rows("levels.txt", ("level_id", "level_index")):
            level_id = row.text("level_id", True)
            index = row.number("level_index", True)
            if not row.ok or level_id is None:
                continue
            yield _entity(self.entity_id("GtfsLevel", level_id), "GtfsLevel", {
                "levelIndex": _p(index),
                "name": self._text("levels", "level_name", row.text("level_name"), level_id),
            })  # fmt: skip

    def _pathways(self) -> Iterator[Entity]:
        columns = ("pathway_id", "from_stop_id", "to_stop_id", "pathway_mode", "is_bidirectional")
        for row in self._rows("pathways.txt", columns):
            pathway_id = row.text("pathway_id", True)
            origin, destination = row.text("from_stop_id", True), row.text("to_stop_id", True)
            mode = row.text("pathway_mode", True)
            if mode is not None and mode not in PATHWAY_MODES:
                row.fail("pathway_mode", f"not one of 1-7: {mode!r}", True)
            bidirectional = row.flag("is_bidirectional", True)
            if not row.ok or pathway_id is None or origin is None or destination is None:
                continue
            yield _entity(self.entity_id("GtfsPathway", pathway_id), "GtfsPathway", {
                "hasOrigin": self._ref(self._not_stops.get(origin, "GtfsStop"), origin),
                "hasDestination": self._ref(self._not_stops.get(destination, "GtfsStop"), destination),
                "pathwayMode": _p(mode),
                "isBidirectional": _p(bidirectional),
                "length": _unit(row.nonnegative("length"), "MTR"),
                "traversalTime": _unit(row.nonnegative("traversal_time", integer=True), "SEC"),
                "stairCount": _p(row.integer("stair_count")),
                "maxSlope": _p(row.number("max_slope")),
                "minWidth": _unit(row.nonnegative("min_width"), "MTR"),
                "signpostedAs": self._text("pathways", "signposted_as", row.text("signposted_as"), pathway_id),
                "reversedSignpostedAs": self._text(
                    "pathways", "reversed_signposted_as", row.text("reversed_signposted_as"), pathway_id
                ),
            })  # fmt: skip


    def _untranslated(self) -> None:
        """Say which files of the feed no mapping covers (GTFS-Fares v2, Flex, attributions...), with their rows."""
        for name in sorted(self._names - TRANSLATED_FILES):
            if name.endswith(".txt") and "/" not in name:
                rows = sum(1 for _ in self._rows(name))
                count = f"{rows} row" + ("" if rows == 1 else "s")
                self.notes.append(f"{name}: {count} not translated (no mapping in the project vocabulary yet)")

    # -- fares (GTFS-Fares v1; decision 0039) -------------------------------------------------------------------
    def _fare_classes(self) -> Iterator[Entity]:
        columns = ("fare_id", "price", "currency_type", "payment_method", "transfers")
        for row in self._rows("fare_attributes.txt", columns):
            fare_id = row.text("fare_id", True)
            price = row.number("price", True)
            if price is not None and price < 0:
                row.fail("price", f"negative: {price}", True)
            currency = row.text("currency_type", True)
            if currency is not None and not CURRENCY.match(currency):
                row.fail("currency_type", f"not an ISO 4217 code: {currency!r}", True)
            method = row.text("payment_method", True)
            if method is not None and method not in ("0", "1"):
                row.fail("payment_method", f"not 0 or 1: {method!r}", True)
            transfers = row.text("transfers")  # empty: unlimited transfers (GTFS)
            if transfers is not None and transfers not in ("0", "1", "2"):
                row.fail("transfers", f"not 0, 1, 2 or empty: {transfers!r}", True)
            if not row.ok or fare_id is None:
                continue
            yield _entity(self.entity_id("GtfsFareClass", fare_id), "GtfsFareClass", {
                "price": _p(price),
                "priceCurrency": _p(currency),
                "paymentMethod": _p(method),
                "transfers": _p(transfers),
                "transferDuration": _unit(row.nonnegative("transfer_duration", integer=True), "SEC"),
                "operatedBy": self._ref("GtfsAgency", row.text("agency_id") or self._default_agency),
            })  # fmt: skip

    def _fare_rules(self) -> Iterator[Entity]:
        for row in self._rows("fare_rules.txt", ("fare_id",)):
            fare_id = row.text("fare_id", True)
            if not row.ok or fare_id is None:
                continue
            scope = [row.text(c) or "" for c in ("route_id", "origin_id", "destination_id", "contains_id")]
            while scope and not scope[-1]:  # fixed positions: dropping the empty tail keeps ids distinct
                scope.pop()
            yield _entity(self.entity_id("GtfsFareRule", fare_id, *scope), "GtfsFareRule", {
                "hasFareClass": self._ref("GtfsFareClass", fare_id),
                "hasRoute": self._ref("GtfsRoute", row.text("route_id")),
                "originZone": _p(row.text("origin_id")),
                "destinationZone": _p(row.text("destination_id")),
                "containsZone": _p(row.text("contains_id")),
            })  # fmt: skip

    # -- GTFS-ride rider_trip.txt (record 0324): one rider's trip, the ticket holder's personal data -------------
    def _rider_trips(self) -> Iterator[Entity]:
        for row in self._rows("rider_trip.txt", ("rider_id", "trip_id")):
            rider = row.text("rider_id", True)
            trip_id = row.text("trip_id", True)
            codes = {column: _code(row, column, allowed) for column, allowed in RIDER_CODES.items()}
            fare = row.nonnegative("fare_paid")
            boarding_date, boarding_time = row.date("boarding_date"), row.time("boarding_time")
            if not row.ok or rider is None or trip_id is None:
                continue
            # The rider's rides of one trip are told apart by when they boarded (a rider takes a trip every day).
            when = [boarding_date or "", boarding_time or ""]
            while when and not when[-1]:
                when.pop()
            yield _entity(self.entity_id("GtfsRiderTrip", rider, trip_id, *when), "GtfsRiderTrip", {
                "ticketHolder": _p(rider),
                "hasTrip": self._ref("GtfsTrip", trip_id),
                "boardingStop": self._ref("GtfsStop", row.text("boarding_stop_id")),
                "alightingStop": self._ref("GtfsStop", row.text("alighting_stop_id")),
                "boardingDate": _p(boarding_date),
                "boardingTime": _p(boarding_time),
                "alightingDate": _p(row.date("alighting_date")),
                "alightingTime": _p(row.time("alighting_time")),
                "riderType": _p(codes["rider_type"]),
                "riderTypeDescription": _p(row.text("rider_type_description")),
                "farePaid": _p(fare),
                "fareMethod": _p(codes["fare_method"]),
                "accompanyingDevice": _p(codes["accompanying_device"]),
                "transferStatus": _p(codes["transfer_status"]),
            })  # fmt: skip


def _code(row: _Row, column: str, allowed: frozenset[str]) -> str | None:
    """A GTFS-ride enumeration code, kept as its text like the GTFS codes; an unknown one is reported."""
    code = row.text(column)
    if code is not None and code not in allowed:
        row.fail(column, f"not one of {', '.join(sorted(allowed, key=int))}: {code!r}", False)
        return None
    return code


#: The enumerations of GTFS-ride rider_trip.txt (rider_type 8-11 are the agency's own categories).
RIDER_CODES: dict[str, frozenset[str]] = {
    "rider_type": frozenset(str(n) for n in range(12)),
    "fare_method": frozenset("012345"),
    "accompanying_device": frozenset("01234"),
    "transfer_status": frozenset("01"),
}
CURRENCY = re.compile(r"^[A-Z]{3}$")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The columns each file's mapping reads; the others are named in a note (GTFS grows new optional columns often).
COLUMNS: dict[str, frozenset[str]] = {
    file: frozenset(columns.split())
    for file, columns in {
        "agency.txt": "agency_id agency_name agency_url agency_timezone agency_lang agency_phone agency_fare_url "
        "agency_email",
        "stops.txt": "stop_id stop_code stop_name stop_desc stop_lat stop_lon zone_id stop_url location_type "
        "parent_station stop_timezone wheelchair_boarding level_id",
        "routes.txt": "route_id agency_id route_short_name route_long_name route_desc route_type route_url route_color "
        "route_text_color route_sort_order",
        "trips.txt": "route_id service_id trip_id trip_headsign trip_short_name direction_id block_id shape_id "
        "wheelchair_accessible bikes_allowed",
        "stop_times.txt": "trip_id arrival_time departure_time stop_id stop_sequence stop_headsign pickup_type "
        "drop_off_type shape_dist_traveled timepoint",
        "calendar.txt": "service_id start_date end_date " + " ".join(_DAYS),
        "calendar_dates.txt": "service_id date exception_type",
        "shapes.txt": "shape_id shape_pt_lat shape_pt_lon shape_pt_sequence shape_dist_traveled",
        "frequencies.txt": "trip_id start_time end_time headway_secs exact_times",
        "transfers.txt": "from_stop_id to_stop_id transfer_type min_transfer_time from_route_id to_route_id "
        "from_trip_id to_trip_id",
        "feed_info.txt": "feed_publisher_name feed_publisher_url feed_lang feed_start_date feed_end_date "
        "feed_version feed_id",
        "translations.txt": "table_name field_name language translation record_id record_sub_id field_value "
        "trans_id lang",
        "levels.txt": "level_id level_index level_name",
        "pathways.txt": "pathway_id from_stop_id to_stop_id pathway_mode is_bidirectional length traversal_time "
        "stair_count max_slope min_width signposted_as reversed_signposted_as",
        "fare_attributes.txt": "fare_id price currency_type payment_method transfers agency_id transfer_duration",
        "fare_rules.txt": "fare_id route_id origin_id destination_id contains_id",
        "rider_trip.txt": "rider_id trip_id boarding_stop_id alighting_stop_id boarding_time boarding_date "
        "alighting_time alighting_date rider_type rider_type_description fare_paid fare_method accompanying_device "
        "transfer_status",
    }.items()
}
TRANSLATED_FILES = frozenset({
    "agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt", "calendar.txt", "calendar_dates.txt",
    "shapes.txt", "frequencies.txt", "transfers.txt", "feed_info.txt", "translations.txt", "levels.txt",
    "pathways.txt", "fare_attributes.txt", "fare_rules.txt", "rider_trip.txt",
})  # fmt: skip
TRANSLATABLE = frozenset(
    {"agency", "stops", "routes", "trips", "stop_times", "pathways", "levels", "feed_info", "attributions"}
)
PATHWAY_MODES = frozenset("1234567")


def language_tag(raw: str) -> str:
    """A GTFS language code as a BCP 47 tag in its usual case: ``EN`` -> ``en``, ``pt-br`` -> ``pt-BR``."""
    first, *rest = raw.strip().split("-")
    return "-".join([first.lower(), *(part.upper() if len(part) == 2 else part for part in rest)])


def _unit(value: Any, code: str) -> dict[str, Any] | None:
    return None if value is None else {"type": "Property", "value": value, "unitCode": code}


class Translations:
    """translations.txt: by (table, field, record_id, record_sub_id), and by (table, field, field_value)."""

    def __init__(self) -> None:
        self.by_record: defaultdict[tuple[str, str, str, str], dict[str, str]] = defaultdict(dict)
        self.by_value: defaultdict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)

    def find(self, table: str, field: str, value: str, record: str, sub: str) -> dict[str, str]:
        if not self.by_record and not self.by_value:
            return {}
        found: dict[str, str] = {}
        for key in (("*", "*", value), (table, field, value), (table, field, "")):
            found.update(self.by_value.get(key, {}))
        found.update(self.by_record.get((table, field, record, sub), {}))
        return found
