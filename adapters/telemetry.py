"""What the telemetry adapters share (historian, usgs-nwis, wqx, waterml2; docs/decisions/0064).

A reading is (entity id, entity type, attribute, observedAt in UTC, value, unit, quality). The readings of a source
go through a temporary SQLite file, so memory holds one entity's history at a time however long the export, and
leave as:

- one entity per target with the latest reading of each attribute (batch upsert: the entity's current state),
- then one :class:`TemporalFragment` per entity with the earlier readings (the temporal API adds them to the
  entity's history; the upsert of the latest value records that one itself, clause 5.6.11 and decision 0070).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

import httpx

from adapters.base import Entity, TemporalFragment
from adapters.units import normalise

FRAGMENT_SIZE = 1000  # instances per temporal fragment (one POST each)


@dataclass(frozen=True)
class Reading:
    entity_id: str
    entity_type: str
    attribute: str
    observed_at: str
    value: float | str
    unit: str | None = None
    quality: str | None = None  # good, uncertain, bad
    quality_code: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # further sub-properties (e.g. the method or the sample fraction)


def opc_quality(code: int) -> str:
    """OPC DA quality: the two high bits of the low byte (192-255 good, 64-127 uncertain, 0-63 bad)."""
    bits = code & 0xC0
    return "good" if bits == 0xC0 else "uncertain" if bits == 0x40 else "bad"


def utc(text: str, zone: tzinfo | None = None) -> str:
    """An ISO 8601 date-time (``Z``, an offset, or none: then in ``zone``, UTC by default) or epoch milliseconds,
    as an NGSI-LD DateTime in UTC."""
    raw = text.strip()
    if raw.isdigit() and len(raw) >= 12:
        moment = datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    else:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone or UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "") + "Z"


def instance(reading: Reading) -> dict[str, Any]:
    attr: dict[str, Any] = {"type": "Property", "value": reading.value, "observedAt": reading.observed_at}
    if reading.unit is not None and isinstance(reading.value, float):
        attr["value"], attr["unitCode"] = normalise(reading.value, reading.unit)
    if reading.quality is not None:
        attr["measurementQuality"] = {"type": "Property", "value": reading.quality}
    if reading.quality_code is not None:
        attr["qualityCode"] = {"type": "Property", "value": reading.quality_code}
    for name, value in reading.extra:
        attr[name] = {"type": "Property", "value": value}
    return attr


class ReadingStore:
    """Readings grouped by entity and attribute, ordered by time, in a temporary SQLite file."""

    def __init__(self) -> None:
        self._file = tempfile.NamedTemporaryFile(suffix=".sqlite")  # noqa: SIM115 - closed in close()
        self.db = sqlite3.connect(self._file.name)
        self.db.execute("CREATE TABLE r (eid TEXT, etype TEXT, attr TEXT, t TEXT, body TEXT)")
        self.db.execute("CREATE INDEX r_by_attr ON r (eid, attr, t)")
        self.static: dict[str, Entity] = {}  # entity id -> the attributes that are not readings (name, location)

    def describe(self, entity: Entity) -> None:
        """Attributes of a target that are not readings (a station's name and location): sent with its latest
        values."""
        self.static.setdefault(entity["id"], {}).update(entity)

    def add(self, reading: Reading) -> None:
        self.db.execute("INSERT INTO r VALUES (?, ?, ?, ?, ?)", (reading.entity_id, reading.entity_type,
                        reading.attribute, reading.observed_at, json.dumps(instance(reading))))  # fmt: skip

    def close(self) -> None:
        self.db.close()
        self._file.close()

    def latest(self) -> Iterator[Entity]:
        """One entity per target, with the latest instance of each attribute (ties: the last row read)."""
        rows = self.db.execute(
            "SELECT eid, etype, attr, body FROM r WHERE rowid IN (SELECT rowid FROM r AS x WHERE x.eid = r.eid AND "
            "x.attr = r.attr ORDER BY t DESC, rowid DESC LIMIT 1) ORDER BY eid, attr"
        )
        current: Entity | None = None
        seen: set[str] = set()
        for eid, etype, attr, body in rows:
            if current is None or current["id"] != eid:
                if current is not None:
                    yield current
                current = {"id": eid, "type": etype, **self.static.get(eid, {})}
                seen.add(eid)
            current[attr] = json.loads(body)
        if current is not None:
            yield current
        yield from (entity for eid, entity in self.static.items() if eid not in seen)

    def history(self) -> Iterator[TemporalFragment]:
        """The earlier instances (every one but the latest of each attribute), per entity, in fragments."""
        rows = self.db.execute(
            "SELECT eid, etype, attr, body FROM r WHERE rowid NOT IN (SELECT (SELECT rowid FROM r AS x WHERE "
            "x.eid = g.eid AND x.attr = g.attr ORDER BY t DESC, rowid DESC LIMIT 1) FROM (SELECT DISTINCT eid, attr "
            "FROM r) AS g) ORDER BY eid, attr, t, rowid"
        )
        fragment: TemporalFragment | None = None
        size = 0
        for eid, etype, attr, body in rows:
            if fragment is None or fragment["id"] != eid or size >= FRAGMENT_SIZE:
                if fragment is not None:
                    yield fragment
                fragment, size = TemporalFragment(id=eid, type=etype), 0
            fragment.setdefault(attr, []).append(json.loads(body))
            size += 1
        if fragment is not None:
            yield fragment

    def output(self) -> Iterator[Entity]:
        try:
            yield from self.latest()
            yield from self.history()
        finally:
            self.close()


# -- re-imports: instances already in the broker's history are not sent again -------------------------------------
def _instant(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def history_window(fragment: dict[str, Any]) -> dict[str, str] | None:
    """The query of GET /temporal/entities/{id} that lists the history of a fragment's attributes in the fragment's
    time window (clause 6.19: timerel=between is end-exclusive, hence the extra millisecond); None without times."""
    attributes = [name for name, value in fragment.items() if isinstance(value, list)]
    moments = [m for name in attributes for i in fragment[name] if (m := _instant(i.get("observedAt"))) is not None]
    if not moments:
        return None
    return {"attrs": ",".join(attributes), "timerel": "between", "timeAt": _z(min(moments)),
            "endTimeAt": _z(max(moments) + timedelta(milliseconds=1))}  # fmt: skip


def instants_in(body: Any, attributes: list[str]) -> set[tuple[str, datetime]]:
    """(attribute, observedAt) of the instances of a temporal entity (normalized representation)."""
    found: set[tuple[str, datetime]] = set()
    for name in attributes:
        stored = body.get(name, []) if isinstance(body, dict) else []
        for item in stored if isinstance(stored, list) else [stored]:
            moment = _instant(item.get("observedAt")) if isinstance(item, dict) else None
            if moment is not None:
                found.add((name, moment))
    return found


def temporal_path(entity_id: Any) -> str:
    return f"/ngsi-ld/v1/temporal/entities/{quote(str(entity_id), safe='')}"


def recorded_instants(
    client: httpx.Client, fragment: TemporalFragment, headers: dict[str, str]
) -> set[tuple[str, datetime]]:
    """(attribute, observedAt) of the fragment's attributes already in the entity's history, in its time window."""
    params = history_window(fragment)
    if params is None:
        return set()
    response = client.get(temporal_path(fragment["id"]), params=params, headers=headers)
    if response.status_code not in (200, 206):
        return set()  # nothing recorded yet (404), or a broker that cannot tell: send everything
    return instants_in(response.json(), params["attrs"].split(","))


def new_instances(client: httpx.Client, fragment: TemporalFragment, headers: dict[str, str]) -> TemporalFragment:
    """``fragment`` without the instances whose attribute and observedAt the history already has, so that importing
    the same telemetry twice does not record it twice (decision 0064)."""
    recorded = recorded_instants(client, fragment, headers)
    if not recorded:
        return fragment
    kept = TemporalFragment(id=fragment["id"], type=fragment["type"])
    for name, value in fragment.items():
        if isinstance(value, list):
            fresh = [i for i in value if (name, _instant(i.get("observedAt"))) not in recorded]
            if fresh:
                kept[name] = fresh
    return kept
