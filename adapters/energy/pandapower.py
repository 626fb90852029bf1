"""pandapower networks (the JSON of ``pandapower.to_json``) into EnergyCIM entities (docs/decisions/0063).

The file is a pandapowerNet whose tables are pandas DataFrames serialised with ``orient="split"`` (a JSON string
of columns, index and data). It is parsed here with the standard library: pandapower itself (with pandas, numpy
and scipy) is not needed to read it.

One entity per table row: bus -> ConnectivityNode, line -> ACLineSegment, trafo -> PowerTransformer (plus one
PowerTransformerEnd per winding), switch -> Switch, load -> EnergyConsumer, sgen and gen -> GeneratingUnit,
ext_grid -> ExternalNetworkInjection; and one Terminal per equipment side linking it to its bus. Power-flow
results (res_* tables) are not translated: they are a computation, not the network.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.attrs import Attr, entity, line_string, point, prop, quantity, rel, valid_wgs84
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.energy.cim import terminal

BUS_TYPES = {"b": "busbar", "n": "node", "m": "muff"}
SWITCH_ELEMENTS = {"b": "bus", "l": "line", "t": "trafo", "t3": "trafo3w"}
TRANSLATED = {"bus", "line", "trafo", "switch", "load", "sgen", "gen", "ext_grid"}
# Tables that are not network objects: results, geodata of older formats, cost functions, controllers, groups.
NOT_OBJECTS = ("res_", "bus_geodata", "line_geodata", "poly_cost", "pwl_cost", "controller", "group", "measurement")


class Table:
    """One DataFrame of the net: rows as dicts, keyed by the DataFrame index."""

    def __init__(self, name: str, raw: Any, file: str) -> None:
        self.name = name
        try:
            frame = json.loads(raw["_object"]) if isinstance(raw.get("_object"), str) else raw["_object"]
            columns, index, data = frame["columns"], frame["index"], frame["data"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{file}: table {name!r} is not a DataFrame in split orientation ({exc})") from exc
        self.rows = [(int(i), dict(zip(columns, values, strict=False))) for i, values in zip(index, data, strict=False)]


class PandapowerAdapter(Adapter):
    name = "pandapower"
    description = "pandapower network JSON into EnergyCIM entities (buses, lines, transformers, switches, ...)"
    entity_types = ("ConnectivityNode", "ACLineSegment", "PowerTransformer", "PowerTransformerEnd", "Switch",
                    "EnergyConsumer", "GeneratingUnit", "ExternalNetworkInjection", "Terminal")  # fmt: skip

    def entities(self, source: str) -> Iterator[Entity]:
        path, _ = split_source(source)
        self.file = Path(path).name
        net = self._load(path)
        if self.network is None:
            self.network = str(net.get("name") or "") or Path(path).name.split(".")[0]
        self.f_hz = float(net.get("f_hz") or 50.0)
        tables = {name: Table(name, raw, self.file) for name, raw in net.items()
                  if isinstance(raw, dict) and raw.get("_class") == "DataFrame"}  # fmt: skip
        if "bus" not in tables:
            raise SourceError(f"{self.file}: no bus table: not a pandapower network")
        self.buses = {index: row for index, row in tables["bus"].rows}
        for name, table in tables.items():  # never drop source objects silently: the summary names them
            if table.rows and name not in TRANSLATED and not name.startswith(NOT_OBJECTS):
                self.notes.append(f"{self.file}: table {name} ({len(table.rows)} rows) is not translated yet")
        yield from self._buses(tables["bus"])
        for name, translate in (("line", self._line), ("trafo", self._trafo), ("switch", self._switch),
                                ("load", self._load_row), ("sgen", self._generator), ("gen", self._generator),
                                ("ext_grid", self._ext_grid)):  # fmt: skip
            for index, row in tables[name].rows if name in tables else []:
                yield from translate(name, index, row)

    def _load(self, path: str) -> dict[str, Any]:
        try:
            with self.meter.open(path) as raw:  # a .gz: its compressed bytes, the file's size
                if path.endswith(".gz"):
                    with gzip.GzipFile(fileobj=raw) as unzipped:
                        document = json.load(io.TextIOWrapper(unzipped, encoding="utf-8"))
                else:
                    document = json.load(io.TextIOWrapper(raw, encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from exc
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        except ValueError as exc:
            raise SourceError(f"{path}: not JSON ({exc})") from exc
        net = document.get("_object") if isinstance(document, dict) else None
        if not isinstance(net, dict):
            raise SourceError(f"{path}: not a pandapower network (no pandapowerNet object)")
        return net

    # -- helpers -------------------------------------------------------------------------------------------------
    def _id(self, entity_type: str, *native: object) -> str:
        return self.entity_id(entity_type, *(str(n) for n in native))

    def _number(self, table: str, index: int, row: dict[str, Any], column: str) -> float | None:
        value = row.get(column)
        if value is None or isinstance(value, bool):
            return None
        if not isinstance(value, int | float) or not math.isfinite(value):
            self.reject(self.file, index, f"{table}.{column}", f"not a number: {value!r}; attribute left out")
            return None
        return float(value)

    def _bus_ref(self, table: str, index: int, row: dict[str, Any], column: str) -> str | None:
        bus = row.get(column)
        if not isinstance(bus, int) or bus not in self.buses:
            self.reject(self.file, index, f"{table}.{column}", f"unknown bus {bus!r}")
            return None
        return self._id("ConnectivityNode", bus)

    def _geometry(self, table: str, index: int, row: dict[str, Any]) -> Attr | None:
        raw = row.get("geo")
        if not raw:
            return None
        try:
            geometry = json.loads(raw) if isinstance(raw, str) else raw
            kind, coordinates = geometry["type"], geometry["coordinates"]
            if kind == "Point":
                lon, lat = float(coordinates[0]), float(coordinates[1])
                if valid_wgs84(lon, lat):
                    return point(lon, lat)
            elif kind == "LineString":
                pairs = [(float(c[0]), float(c[1])) for c in coordinates]
                if len(pairs) >= 2 and all(valid_wgs84(lon, lat) for lon, lat in pairs):
                    return line_string(pairs)
        except (TypeError, ValueError, KeyError, IndexError):
            pass
        self.reject(self.file, index, f"{table}.geo", f"not a WGS84 GeoJSON Point or LineString: {str(raw)[:80]!r}"
                    "; location left out")  # fmt: skip
        return None

    def _common(self, row: dict[str, Any]) -> dict[str, Attr | None]:
        name = row.get("name")
        in_service = row.get("in_service")
        return {
            "name": prop(str(name)) if name not in (None, "") else None,
            "inService": prop(in_service) if isinstance(in_service, bool) else None,
        }

    def _terminals(self, equipment: str, table: str, index: int, buses: list[str]) -> Iterator[Entity]:
        for sequence, bus in enumerate(buses, start=1):
            yield terminal(self._id("Terminal", table, index, sequence), equipment, bus, sequence, "ConnectivityNode")

    # -- tables --------------------------------------------------------------------------------------------------
    def _buses(self, table: Table) -> Iterator[Entity]:
        for index, row in table.rows:
            voltage = self._number("bus", index, row, "vn_kv")
            yield entity(self._id("ConnectivityNode", index), "ConnectivityNode", {
                **self._common(row),
                "nominalVoltage": quantity(voltage, "KVT"),
                "busType": prop(BUS_TYPES.get(str(row.get("type")), row.get("type"))),
                "zone": prop(row.get("zone")),
                "location": self._geometry("bus", index, row),
            })  # fmt: skip

    def _line(self, table: str, index: int, row: dict[str, Any]) -> Iterator[Entity]:
        start, end = self._bus_ref(table, index, row, "from_bus"), self._bus_ref(table, index, row, "to_bus")
        length = self._number(table, index, row, "length_km")
        if start is None or end is None or length is None:
            return
        parallel = self._number(table, index, row, "parallel") or 1.0

        def total(column: str, scale: float = 1.0) -> float | None:
            per_km = self._number(table, index, row, column)
            return None if per_km is None else per_km * length * scale / parallel

        c_nf = self._number(table, index, row, "c_nf_per_km")
        susceptance = None if c_nf is None else 2 * math.pi * self.f_hz * c_nf * 1e-9 * length * parallel
        max_i = self._number(table, index, row, "max_i_ka")
        line_id = self._id("ACLineSegment", index)
        yield entity(line_id, "ACLineSegment", {
            **self._common(row),
            "length": quantity(length, "KMT"),
            "r": quantity(total("r_ohm_per_km"), "OHM"),
            "x": quantity(total("x_ohm_per_km"), "OHM"),
            "bch": quantity(susceptance, "SIE"),
            "ratedCurrent": quantity(None if max_i is None else max_i * parallel, "B22"),
            "stdType": prop(row.get("std_type")),
            "location": self._geometry(table, index, row),
        })  # fmt: skip
        yield from self._terminals(line_id, table, index, [start, end])

    def _trafo(self, table: str, index: int, row: dict[str, Any]) -> Iterator[Entity]:
        hv, lv = self._bus_ref(table, index, row, "hv_bus"), self._bus_ref(table, index, row, "lv_bus")
        if hv is None or lv is None:
            return
        trafo_id = self._id("PowerTransformer", index)
        rated_s = self._number(table, index, row, "sn_mva")
        yield entity(trafo_id, "PowerTransformer", {
            **self._common(row),
            "stdType": prop(row.get("std_type")),
            "ratedS": quantity(rated_s, "MVA"),
            "vk": quantity(self._number(table, index, row, "vk_percent"), "P1"),
            "step": prop(self._number(table, index, row, "tap_pos")),
        })  # fmt: skip
        for end, (side, bus) in enumerate((("hv", hv), ("lv", lv)), start=1):
            terminal_id = self._id("Terminal", table, index, end)
            yield entity(self._id("PowerTransformerEnd", index, end), "PowerTransformerEnd", {
                "name": prop(f"{row.get('name') or index} {side.upper()}"),
                "endNumber": prop(end),
                "ratedU": quantity(self._number(table, index, row, f"vn_{side}_kv"), "KVT"),
                "ratedS": quantity(rated_s, "MVA"),
                "PowerTransformer": rel(trafo_id),
                "Terminal": rel(terminal_id),
            })  # fmt: skip
            yield terminal(terminal_id, trafo_id, bus, end, "ConnectivityNode")

    def _switch(self, table: str, index: int, row: dict[str, Any]) -> Iterator[Entity]:
        bus = self._bus_ref(table, index, row, "bus")
        kind = SWITCH_ELEMENTS.get(str(row.get("et")))
        element = row.get("element")
        if kind is None:
            self.reject(self.file, index, "switch.et", f"not one of b, l, t, t3: {row.get('et')!r}")
            return
        if bus is None:
            return
        switch_id = self._id("Switch", index)
        closed = row.get("closed")
        buses = [bus]
        controlled: str | None = None
        if kind == "bus":
            other = self._bus_ref(table, index, row, "element")
            if other is None:
                return
            buses.append(other)
        else:  # a switch at a line or transformer end: the bus-side terminal, and the equipment it switches
            controlled = self._id({"line": "ACLineSegment", "trafo": "PowerTransformer"}.get(kind, kind), element)
        in_ka = self._number(table, index, row, "in_ka")
        yield entity(switch_id, "Switch", {
            **self._common(row),
            "switchType": prop(row.get("type")),
            "open": prop(not closed) if isinstance(closed, bool) else None,
            "ratedCurrent": quantity(in_ka, "B22"),
            "controlledEquipment": rel(controlled),
        })  # fmt: skip
        yield from self._terminals(switch_id, table, index, buses)

    def _injection(self, table: str, index: int, row: dict[str, Any], entity_type: str,
                   extra: dict[str, Attr | None]) -> Iterator[Entity]:  # fmt: skip
        bus = self._bus_ref(table, index, row, "bus")
        if bus is None:
            return
        equipment_id = self._id(entity_type, table, index) if table == "gen" else self._id(entity_type, index)
        yield entity(equipment_id, entity_type, {**self._common(row), **extra})
        yield from self._terminals(equipment_id, table, index, [bus])

    def _powers(self, table: str, index: int, row: dict[str, Any]) -> dict[str, Attr | None]:
        return {
            "activePower": quantity(self._number(table, index, row, "p_mw"), "MW"),
            "reactivePower": quantity(self._number(table, index, row, "q_mvar"), "MVAR"),
        }

    def _load_row(self, table: str, index: int, row: dict[str, Any]) -> Iterator[Entity]:
        yield from self._injection(table, index, row, "EnergyConsumer", {
            **self._powers(table, index, row),
            "loadType": prop(row.get("type")),
            "scaling": prop(self._number(table, index, row, "scaling")),
        })  # fmt: skip

    def _generator(self, table: str, index: int, row: dict[str, Any]) -> Iterator[Entity]:
        yield from self._injection(table, index, row, "GeneratingUnit", {
            **self._powers(table, index, row),
            "ratedS": quantity(self._number(table, index, row, "sn_mva"), "MVA"),
            "generationType": prop(row.get("type")),
            "scaling": prop(self._number(table, index, row, "scaling")),
        })  # fmt: skip

    def _ext_grid(self, table: str, index: int, row: dict[str, Any]) -> Iterator[Entity]:
        yield from self._injection(table, index, row, "ExternalNetworkInjection", {
            "voltageSetPoint": prop(self._number(table, index, row, "vm_pu")),
        })  # fmt: skip
