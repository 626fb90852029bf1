"""GTFS-Realtime (TripUpdate, VehiclePosition, Alert) into entities linked to the GTFS static ones (decision 0033).

The feed is one protobuf FeedMessage (a file path or an http(s) URL), decoded with gtfs-realtime-bindings. A feed
message cannot be parsed piecewise, but it is small (one snapshot of a network); the entities are still yielded one
by one. Every Relationship points at the stable id the ``gtfs`` adapter gives the static entity
(``urn:ngsi-ld:<Type>:<network>:<native id>``), so ``--network`` must name the static feed's network.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.transit import gtfs_realtime_pb2 as rt

from adapters.base import Adapter, Entity, SourceError
from adapters.gtfs import _entity, geo
from adapters.progress import ByteMeter

FETCH_TIMEOUT = 30.0


def iso(epoch: int) -> str:
    """POSIX seconds as an ISO 8601 UTC date-time (the form NGSI-LD uses for observedAt)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gtfs_date(raw: str) -> str | None:
    try:
        return datetime.strptime(raw, "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def _has(message: Message, field: str) -> bool:
    return bool(message.HasField(field))


def _enum(message: Message, field: str) -> str | None:
    """The name of an enum field that the feed sets (SCHEDULED, IN_TRANSIT_TO, ...), None when unset."""
    if not _has(message, field):
        return None
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    return str(descriptor.values_by_number[getattr(message, field)].name)


def _text(message: Message, field: str) -> str | None:
    return str(getattr(message, field)) if _has(message, field) and getattr(message, field) != "" else None


def _number(message: Message, field: str) -> Any:
    """A numeric field the feed sets; float32 fields keep their 7 significant digits (36.868, not 36.867999267)."""
    if not _has(message, field):
        return None
    value = getattr(message, field)
    if message.DESCRIPTOR.fields_by_name[field].type == FieldDescriptor.TYPE_FLOAT:
        return float(f"{value:.7g}")
    return value


def languages(translated: Message) -> dict[str, str] | None:
    """A TranslatedString as a LanguageProperty languageMap; a translation without a language is ``@none``."""
    found = {(t.language or "@none"): t.text for t in translated.translation if t.text}
    return found or None


def read_feed(source: str, meter: ByteMeter | None = None) -> rt.FeedMessage:
    """The feed of a file or URL; ``meter`` counts its bytes (a URL's size is not known before it is fetched)."""
    meter = meter or ByteMeter()
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=FETCH_TIMEOUT, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceError(f"{source}: cannot be fetched ({exc})") from exc
        data = response.content
        meter.expect(None)
        meter.advance(source, len(data))
    else:
        try:
            data = meter.read_bytes(source)
        except OSError as exc:
            raise SourceError(f"{source}: cannot be read ({exc})") from exc
    feed = rt.FeedMessage()
    try:
        feed.ParseFromString(data)
    except DecodeError as exc:
        raise SourceError(f"{source}: not a GTFS-Realtime FeedMessage ({exc})") from exc
    if not feed.IsInitialized() or not feed.header.gtfs_realtime_version:
        raise SourceError(f"{source}: not a GTFS-Realtime FeedMessage (no header.gtfs_realtime_version)")
    return feed


class GtfsRtAdapter(Adapter):
    name = "gtfs-rt"
    description = "GTFS-Realtime feed (protobuf file or URL): trip updates, vehicle positions, alerts"
    entity_types = ("GtfsTripUpdate", "GtfsStopTimeUpdate", "GtfsVehiclePosition", "GtfsAlert")

    def entities(self, source: str) -> Iterator[Entity]:
        if not self.network:
            raise SourceError("gtfs-rt: give --network, the network of the static GTFS feed the updates refer to")
        feed = read_feed(source, self.meter)
        self._file = Path(source).name or source
        self.complete = feed.header.incrementality != rt.FeedHeader.DIFFERENTIAL
        header_time = feed.header.timestamp if _has(feed.header, "timestamp") else None
        deleted = 0
        for index, item in enumerate(feed.entity, start=1):
            self._row = index
            if item.is_deleted:  # carries only the feed's entity id, from which no NGSI-LD id can be derived
                deleted += 1
                continue
            translated = False
            if _has(item, "trip_update"):
                translated = True
                yield from self._trip_update(item.id, item.trip_update, header_time)
            if _has(item, "vehicle"):
                translated = True
                yield from self._vehicle(item.id, item.vehicle, header_time)
            if _has(item, "alert"):
                translated = True
                yield from self._alert(item.id, item.alert, header_time)
            if not translated:
                self.reject(self._file, index, "entity", f"entity {item.id!r} has no trip_update, vehicle or alert")
        if deleted:
            self.notes.append(f"{self._file}: {deleted} is_deleted entities not removed (a full feed + --prune does)")

    # -- helpers --------------------------------------------------------------------------------------------------
    def _ref(self, entity_type: str, *native_id: str | None) -> dict[str, Any] | None:
        if any(part is None for part in native_id):
            return None
        return {"type": "Relationship", "object": self.entity_id(entity_type, *(str(p) for p in native_id))}

    @staticmethod
    def _observed(attrs: dict[str, dict[str, Any] | None], when: int | None) -> dict[str, dict[str, Any] | None]:
        """Stamp every attribute with the feed's observation time (observedAt, clause 4.5.2)."""
        if when is None:
            return attrs
        stamp = iso(when)
        return {name: (None if attr is None else {**attr, "observedAt": stamp}) for name, attr in attrs.items()}

    def _trip(self, trip: Message, field_prefix: str) -> dict[str, dict[str, Any] | None]:
        start_date = _text(trip, "start_date")
        day = gtfs_date(start_date) if start_date else None
        if start_date and day is None:
            self.reject(self._file, self._row, f"{field_prefix}.start_date", f"not a YYYYMMDD date: {start_date!r}")
        return {
            "hasTrip": self._ref("GtfsTrip", _text(trip, "trip_id")),
            "hasRoute": self._ref("GtfsRoute", _text(trip, "route_id")),
            "direction": _p(_number(trip, "direction_id")),
            "startDate": _p(day),
            "startTime": _p(_text(trip, "start_time")),
            "scheduleRelationship": _p(_enum(trip, "schedule_relationship")),
        }

    # -- messages -------------------------------------------------------------------------------------------------
    def _trip_update(self, feed_id: str, update: Any, header_time: int | None) -> Iterator[Entity]:
        trip = update.trip
        trip_id = _text(trip, "trip_id")
        start_date = _text(trip, "start_date")
        # A trip instance is its trip and its service day; without a trip_id only the feed's entity id is left.
        native = [trip_id, start_date] if trip_id and start_date else [trip_id or feed_id]
        when = update.timestamp if _has(update, "timestamp") else header_time
        update_id = self.entity_id("GtfsTripUpdate", *native)
        vehicle_id = _text(update.vehicle, "id") if _has(update, "vehicle") else None
        attrs = self._trip(trip, "trip_update.trip")
        attrs["delay"] = _seconds(_number(update, "delay"))
        attrs["hasVehicle"] = self._ref("GtfsVehiclePosition", vehicle_id)
        yield _entity(update_id, "GtfsTripUpdate", self._observed(attrs, when))
        for position, stu in enumerate(update.stop_time_update):
            sequence = _number(stu, "stop_sequence")
            stop_id = _text(stu, "stop_id")
            if sequence is None and stop_id is None:
                field = f"trip_update.stop_time_update[{position}]"
                self.reject(self._file, self._row, field, "neither stop_sequence nor stop_id is given")
                continue
            key = str(sequence) if sequence is not None else f"stop:{stop_id}"
            yield _entity(self.entity_id("GtfsStopTimeUpdate", *native, key), "GtfsStopTimeUpdate", self._observed({
                "hasTripUpdate": {"type": "Relationship", "object": update_id},
                "hasTrip": self._ref("GtfsTrip", trip_id),
                "hasStop": self._ref("GtfsStop", stop_id),
                "hasStopTime": self._ref("GtfsStopTime", trip_id, None if sequence is None else str(sequence)),
                "stopSequence": _p(sequence),
                "scheduleRelationship": _p(_enum(stu, "schedule_relationship")),
                **self._event(stu, "arrival"),
                **self._event(stu, "departure"),
            }, when))  # fmt: skip

    def _event(self, stu: Any, kind: str) -> dict[str, dict[str, Any] | None]:
        if not _has(stu, kind):
            return {}
        event = getattr(stu, kind)
        time = _number(event, "time")
        return {
            f"{kind}Delay": _seconds(_number(event, "delay")),
            f"predicted{kind.capitalize()}Time": _p(iso(time) if time else None),
            f"{kind}Uncertainty": _seconds(_number(event, "uncertainty")),
        }

    def _vehicle(self, feed_id: str, vehicle: Any, header_time: int | None) -> Iterator[Entity]:
        descriptor = vehicle.vehicle if _has(vehicle, "vehicle") else None
        vehicle_id = _text(descriptor, "id") if descriptor is not None else None
        when = vehicle.timestamp if _has(vehicle, "timestamp") else header_time
        attrs = self._trip(vehicle.trip, "vehicle.trip") if _has(vehicle, "trip") else {}
        position = vehicle.position if _has(vehicle, "position") else None
        if position is not None and not (-90 <= position.latitude <= 90 and -180 <= position.longitude <= 180):
            self.reject(self._file, self._row, "vehicle.position", "latitude or longitude out of range")
            position = None
        attrs.update({
            "location": geo("Point", [_number(position, "longitude"), _number(position, "latitude")])
            if position is not None else None,
            "bearing": _unit(_number(position, "bearing"), "DD") if position is not None else None,
            "speed": _unit(_number(position, "speed"), "MTS") if position is not None else None,
            "odometer": _unit(_number(position, "odometer"), "MTR") if position is not None else None,
            "hasStop": self._ref("GtfsStop", _text(vehicle, "stop_id")),
            "currentStopSequence": _p(_number(vehicle, "current_stop_sequence")),
            "currentStatus": _p(_enum(vehicle, "current_status")),
            "congestionLevel": _p(_enum(vehicle, "congestion_level")),
            "occupancyStatus": _p(_enum(vehicle, "occupancy_status")),
            "occupancyPercentage": _unit(_number(vehicle, "occupancy_percentage"), "P1"),
            "name": _p(_text(descriptor, "label")) if descriptor is not None else None,
            "licensePlate": _p(_text(descriptor, "license_plate")) if descriptor is not None else None,
        })  # fmt: skip
        yield _entity(self.entity_id("GtfsVehiclePosition", vehicle_id or feed_id), "GtfsVehiclePosition",
                      self._observed(attrs, when))  # fmt: skip

    def _alert(self, feed_id: str, alert: Any, header_time: int | None) -> Iterator[Entity]:
        targets: dict[str, list[str]] = {"affectsAgency": [], "affectsRoute": [], "affectsTrip": [], "affectsStop": []}
        route_types: list[str] = []
        for position, selector in enumerate(alert.informed_entity):
            route_type = _number(selector, "route_type")
            if route_type is not None and str(route_type) not in route_types:
                route_types.append(str(route_type))  # every route of that mode, as a code like the route's routeType
            found = [
                ("affectsAgency", "GtfsAgency", _text(selector, "agency_id")),
                ("affectsRoute", "GtfsRoute", _text(selector, "route_id")),
                ("affectsTrip", "GtfsTrip", _text(selector.trip, "trip_id") if _has(selector, "trip") else None),
                ("affectsStop", "GtfsStop", _text(selector, "stop_id")),
            ]
            if not any(native for _, _, native in found) and route_type is None:
                field = f"alert.informed_entity[{position}]"
                self.reject(self._file, self._row, field, "selects no agency, route, trip, stop or route type")
            for attribute, entity_type, native in found:
                if native is not None and (target := self.entity_id(entity_type, native)) not in targets[attribute]:
                    targets[attribute].append(target)
        periods = [
            {key: iso(getattr(period, key)) for key in ("start", "end") if _has(period, key)}
            for period in alert.active_period
        ]
        attrs: dict[str, dict[str, Any] | None] = {
            "cause": _p(_enum(alert, "cause")),
            "effect": _p(_enum(alert, "effect")),
            "severityLevel": _p(_enum(alert, "severity_level")),
            "headerText": _lang(alert, "header_text"),
            "descriptionText": _lang(alert, "description_text"),
            "alertUrl": _lang(alert, "url"),
            "activePeriod": _p(periods or None),
            "affectsRouteType": _p(route_types or None),
        }
        for attribute, objects in targets.items():
            if objects:
                attrs[attribute] = {"type": "Relationship", "object": objects[0] if len(objects) == 1 else objects}
        yield _entity(self.entity_id("GtfsAlert", feed_id), "GtfsAlert", self._observed(attrs, header_time))


def _p(value: Any) -> dict[str, Any] | None:
    return None if value is None else {"type": "Property", "value": value}


def _unit(value: Any, code: str) -> dict[str, Any] | None:
    """A Property with its UN/CEFACT unit code (clause 4.5.2: unitCode)."""
    return None if value is None else {"type": "Property", "value": value, "unitCode": code}


def _seconds(value: Any) -> dict[str, Any] | None:
    return _unit(value, "SEC")


def _lang(message: Message, field: str) -> dict[str, Any] | None:
    if not _has(message, field):
        return None
    found = languages(getattr(message, field))
    return None if found is None else {"type": "LanguageProperty", "languageMap": found}
