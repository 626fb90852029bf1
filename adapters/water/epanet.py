"""EPANET input files (.inp) into the Smart Data Models WaterDistributionManagementEPANET types (docs/decisions/0060).

One entity per source object: the network itself (WaterNetwork), each junction, reservoir, tank, pipe, pump,
valve, curve and pattern. Links point at their end nodes with ``startsAt``/``endsAt`` Relationships, at their
curves and patterns with Relationships too. Quantities leave in the project's canonical units (adapters.units):
an .inp file in US units (CFS, GPM, MGD, IMGD, AFD) has feet, inches, psi and horsepower, one in SI units has
metres, millimetres and kW; both come out in metres, L/s, kPa and kW.

Coordinates: EPANET's [COORDINATES] are plain X/Y numbers in whatever frame the modeller drew (Net1 and Net3 use
a unitless drawing frame, 0-100). They become a WGS84 ``location`` only when the caller names their coordinate
reference system (``Net1.inp?crs=EPSG:32632``, through pyproj); without one the entities carry no location.

The file is read once into memory, section by section: links need the type of their end nodes, and the sections
may come in any order. EPANET models are small (a large city model is a few MB).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.attrs import Attr, entity, line_string, point, prop, quantity, rel, valid_wgs84
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.water.epanet_controls import Control, RuleReader, parse_control
from adapters.water.epanet_inp import (
    NODE_SECTIONS,
    OPTION_KEYS,
    TIME_KEYS,
    Checker,
    Line,
    index,
    keyed,
    parse_hours,
    read_inp,
)

US_FLOW_UNITS = {"CFS", "GPM", "MGD", "IMGD", "AFD"}
# litres per second in one native flow unit
FLOW_TO_LPS = {
    "CFS": 28.316846592, "GPM": 0.0630901964, "MGD": 43.8126364, "IMGD": 52.6168042, "AFD": 14.2764102,
    "LPS": 1.0, "LPM": 1 / 60, "MLD": 1000000 / 86400, "CMH": 1000 / 3600, "CMD": 1000 / 86400,
}  # fmt: skip
KPA_PER_METRE_OF_WATER = 9.80665
CURVE_KINDS = ("PUMP", "EFFICIENCY", "VOLUME", "HEADLOSS")
# Sections read and checked but not model data: how EPANET draws and reports the network (decision 0360).
PRESENTATION = ("REPORT", "LABELS", "BACKDROP")
MAX_LISTED = 50  # errors listed in the refusal (all are counted)


class EpanetAdapter(Adapter):
    name = "epanet"
    description = "EPANET .inp network into WaterDistributionManagementEPANET entities (?crs=EPSG:n for WGS84)"
    source_help = ("an EPANET 2.2 .inp file, read strictly (any error refuses it, naming file, line and field); "
                   "?crs=EPSG:n: the CRS of its [COORDINATES], for WGS84 locations")
    entity_types = ("WaterNetwork", "Junction", "Reservoir", "Tank", "Pipe", "Pump", "Valve", "Curve", "Pattern")

    def __init__(self, *, network: str | None = None, crs: str | None = None) -> None:
        super().__init__(network=network)
        self.crs = crs

    def entities(self, source: str) -> Iterator[Entity]:
        """The whole file is read, checked and translated before the first entity leaves: a file with any error
        is refused as a whole (SourceError listing every error), so nothing of it reaches a broker."""
        path, options = split_source(source)
        self.file = Path(path).name
        self.model = read_inp(path, self._line_error, self.meter)
        if self.network is None:
            self.network = Path(path).stem
        self._transform = self._transformer(options.get("crs") or self.crs)
        self.ids = index(self.model, self._line_error)
        Checker(self.model, self.ids, self._line_error).run()
        self.rules = RuleReader(self.ids.nodes, self.ids.links, self._line_error).read(
            self.model.sections.get("RULES", []))  # fmt: skip
        self._refuse_if_rejected()
        self._options = self._keyed("OPTIONS", OPTION_KEYS)
        self._times = self._keyed("TIMES", TIME_KEYS)
        self.flow_units = (self._options.get("UNITS", ("GPM", 0))[0].split() or ["GPM"])[0].upper()
        self.us = self.flow_units in US_FLOW_UNITS
        self._index()
        built = [self._network(), *self._nodes(), *self._links(), *self._patterns(), *self._curves()]
        self._refuse_if_rejected()
        present = [f"[{name}]" for name in PRESENTATION if name in self.model.seen]
        if present:
            self.notes.append(f"{self.file}: {', '.join(present)} checked; drawing and report settings, not "
                              "network data, so not translated (decision 0360)")  # fmt: skip
        yield from built

    def _line_error(self, number: int, column: str, reason: str) -> None:
        self.reject(self.file, number, column, reason)

    def _refuse_if_rejected(self) -> None:
        if not self.rejections:
            return
        listed = [f"  {r.file} line {r.row} field {r.field}: {r.reason}" for r in self.rejections[:MAX_LISTED]]
        more = len(self.rejections) - len(listed)
        raise SourceError(f"{self.file}: {len(self.rejections)} error(s), nothing imported\n" + "\n".join(listed)
                          + (f"\n  ... and {more} more" if more else ""))  # fmt: skip

    # -- reading helpers -----------------------------------------------------------------------------------------
    def _transformer(self, crs: str | None) -> Callable[[float, float], tuple[float, float]] | None:
        if not crs:
            return None
        try:
            from pyproj import Transformer
            from pyproj.exceptions import CRSError
        except ImportError as exc:  # pragma: no cover - pyproj is a dependency
            raise SourceError("the crs option needs pyproj installed") from exc
        try:
            transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        except CRSError as exc:
            raise SourceError(f"crs {crs!r} is not a coordinate reference system pyproj knows ({exc})") from exc

        def transform(x: float, y: float) -> tuple[float, float]:
            lon, lat = transformer.transform(x, y)
            return float(lon), float(lat)

        return transform

    def _keyed(self, section: str, keys: dict[str, str] | tuple[str, ...]) -> dict[str, tuple[str, int]]:
        """[OPTIONS]/[TIMES]: key -> (the words after it, line); the longest known key wins (``Specific Gravity``)."""
        result: dict[str, tuple[str, int]] = {}
        for line in self.model.sections.get(section, []):
            key, rest = keyed(line, keys)
            result[key or line.tokens[0].upper()] = (" ".join(rest), line.number)
        return result

    def _number(self, line: Line, index: int, column: str, required: bool = False) -> float | None:
        if index >= len(line.tokens):
            if required:
                self.reject(self.file, line.number, column, "required value is missing")
            return None
        raw = line.tokens[index]
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.reject(self.file, line.number, column, f"not a number: {raw!r}" + ("" if required else
                        "; attribute left out"))  # fmt: skip
            return None
        return value

    def _token(self, line: Line, index: int) -> str | None:
        return line.tokens[index] if index < len(line.tokens) else None

    # -- indexes over sections -----------------------------------------------------------------------------------
    def _index(self) -> None:
        self.node_types = self.ids.nodes
        self.patterns: dict[str, list[float]] = {}
        for line in self.model.sections.get("PATTERNS", []):
            values = [self._number(line, i, f"multiplier {i}", True) for i in range(1, len(line.tokens))]
            self.patterns.setdefault(line.tokens[0], []).extend(v for v in values if v is not None)
        self.curves: dict[str, list[tuple[float, float]]] = {}
        self.curve_kinds: dict[str, str] = {}
        for line in self.model.sections.get("CURVES", []):
            x, y = self._number(line, 1, "X-Value", True), self._number(line, 2, "Y-Value", True)
            self.curves.setdefault(line.tokens[0], [])
            kind = line.comment.split(":", 1)[0].strip().upper()
            if kind in CURVE_KINDS:
                self.curve_kinds.setdefault(line.tokens[0], kind)
            if x is not None and y is not None:
                self.curves[line.tokens[0]].append((x, y))
        self.coordinates: dict[str, tuple[float, float]] = {}
        self.coordinate_lines: dict[str, int] = {}
        for line in self.model.sections.get("COORDINATES", []):
            self.coordinates[line.tokens[0]] = (float(line.tokens[1]), float(line.tokens[2]))
            self.coordinate_lines[line.tokens[0]] = line.number
        self.vertices: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for line in self.model.sections.get("VERTICES", []):
            self.vertices[line.tokens[0]].append((float(line.tokens[1]), float(line.tokens[2])))
        self.per_object: dict[str, dict[str, Line]] = {
            name: {line.tokens[0]: line for line in self.model.sections.get(name, [])}
            for name in ("EMITTERS", "MIXING", "STATUS", "SOURCES")
        }
        self.tags = {(line.tokens[0].upper(), line.tokens[1]): line.tokens[2]
                     for line in self.model.sections.get("TAGS", [])}  # fmt: skip
        self.demands: dict[str, list[Line]] = defaultdict(list)
        for line in self.model.sections.get("DEMANDS", []):
            self.demands[line.tokens[0]].append(line)
        self.quality: dict[str, float] = {}
        for line in self.model.sections.get("QUALITY", []):
            for node in self._span(line.tokens[:-1], self.node_types):
                self.quality[node] = float(line.tokens[-1])
        self.reactions: dict[tuple[str, str], float] = {}  # (BULK|WALL|TANK, id) -> coefficient
        self.global_reactions: dict[str, float] = {}  # ORDER BULK, GLOBAL WALL, LIMITING POTENTIAL, ...
        for line in self.model.sections.get("REACTIONS", []):
            head = line.tokens[0].upper()
            if head in ("BULK", "WALL", "TANK"):
                known = self.ids.links if head != "TANK" else self.node_types
                for native in self._span(line.tokens[1:-1], known):
                    self.reactions[(head, native)] = float(line.tokens[-1])
            else:
                self.global_reactions[" ".join(t.upper() for t in line.tokens[:2])] = float(line.tokens[2])

    @staticmethod
    def _span(ids: list[str], known: dict[str, str]) -> list[str]:
        """One id, or the ids of a range ``first last`` ([QUALITY], [REACTIONS]): compared as numbers when both
        ends are numbers, else as text, as EPANET does."""
        if len(ids) == 1:
            return ids if ids[0] in known else []
        low, high = ids
        try:
            a, b = float(low), float(high)
            numeric = [k for k in known if k.replace(".", "", 1).isdigit()]
            return [k for k in numeric if a <= float(k) <= b]
        except ValueError:
            return [k for k in known if low <= k <= high]

    # -- units ---------------------------------------------------------------------------------------------------
    def _length(self, value: float | None) -> Attr | None:
        return quantity(value, "FOT" if self.us else "MTR")

    def _diameter(self, value: float | None) -> Attr | None:
        return quantity(value, "INH" if self.us else "MMT")

    def _flow(self, value: float | None) -> Attr | None:
        return None if value is None else quantity(value * FLOW_TO_LPS[self.flow_units], "G51")

    def _pressure(self, value: float | None) -> Attr | None:
        if value is None:
            return None
        return quantity(value, "PS") if self.us else quantity(value * KPA_PER_METRE_OF_WATER, "KPA")

    def _quality_unit(self) -> str | None:
        words = self._options.get("QUALITY", ("NONE", 0))[0].split() or ["NONE"]
        # AGE is in hours, TRACE in percent of the traced node's water, a chemical in the unit its line names
        unit = {"AGE": "HUR", "TRACE": "P1", "NONE": "mg/L"}.get(words[0].upper(), words[-1] if len(words) > 1
                                                                 else "mg/L")  # fmt: skip
        return unit

    def _concentration(self, value: float | None) -> Attr | None:
        try:
            return quantity(value, self._quality_unit() or "mg/L")
        except ValueError:  # a unit outside the table: keep the number, claim no unit
            return prop(value)

    def _quality(self, node: str) -> Attr | None:
        return self._concentration(self.quality.get(node))

    # -- entities ------------------------------------------------------------------------------------------------
    def _id(self, entity_type: str, native: str) -> str:
        return self.entity_id(entity_type, native)

    def _location(self, node: str) -> Attr | None:
        if self._transform is None or node not in self.coordinates:
            return None
        lon, lat = self._transform(*self.coordinates[node])
        if not valid_wgs84(lon, lat):
            self.reject(self.file, self.coordinate_lines[node], "X-Coord", f"node {node!r} is not a WGS84 position "
                        "under the given crs")  # fmt: skip
            return None
        return point(lon, lat)

    def _link_location(self, link: str, start: str, end: str) -> Attr | None:
        if self._transform is None or start not in self.coordinates or end not in self.coordinates:
            return None
        xy = [self.coordinates[start], *self.vertices.get(link, []), self.coordinates[end]]
        coordinates = [self._transform(x, y) for x, y in xy]
        if not all(valid_wgs84(lon, lat) for lon, lat in coordinates):
            return None
        return line_string(coordinates)

    def _ref(self, entity_type: str, native: str | None, known: dict[str, Any], line: Line, column: str) -> Attr | None:
        if native is None:
            return None
        if native not in known:
            self.reject(self.file, line.number, column, f"unknown {entity_type.lower()} {native!r}; attribute left out")
            return None
        return rel(self._id(entity_type, native))

    def _tag(self, kind: str, native: str) -> Attr | None:
        return prop(self.tags.get((kind, native)))

    def _network(self) -> Entity:
        options, times = self._options, self._times

        def seconds(key: str) -> Attr | None:
            if key not in times or key == "START CLOCKTIME":
                return None
            words = times[key][0].split()
            return quantity(parse_hours(words[0], words[1] if len(words) > 1 else None) * 3600, "SEC")

        def number(key: str) -> Attr | None:
            return prop(float(options[key][0])) if key in options else None

        def text(key: str, source: dict[str, tuple[str, int]] = options) -> Attr | None:
            return prop(source[key][0].upper()) if key in source else None

        title = self.model.title
        default_pattern = options.get("PATTERN", ("", 0))[0] or None
        reactions = self.global_reactions
        return entity(self.entity_id("WaterNetwork"), "WaterNetwork", {
            "name": prop(title[0] if title else self.network),
            "description": prop(" ".join(title[1:]) or None),
            "flowUnits": prop(self.flow_units),
            "headlossFormula": prop(options.get("HEADLOSS", ("H-W", 0))[0].upper()),
            "hydraulics": prop(options["HYDRAULICS"][0] if "HYDRAULICS" in options else None),
            "specificGravity": number("SPECIFIC GRAVITY"),
            "viscosity": number("VISCOSITY"),
            "trials": number("TRIALS"),
            "accuracy": number("ACCURACY"),
            "headError": number("HEADERROR") or number("HEAD ERROR"),
            "flowChange": number("FLOWCHANGE") or number("FLOW CHANGE"),
            "checkFrequency": number("CHECKFREQ"),
            "maxCheck": number("MAXCHECK"),
            "dampLimit": number("DAMPLIMIT"),
            "unbalanced": text("UNBALANCED"),
            "demandModel": text("DEMAND MODEL"),
            "minimumPressure": self._pressure(float(options["MINIMUM PRESSURE"][0]))
            if "MINIMUM PRESSURE" in options else None,
            "requiredPressure": self._pressure(float(options["REQUIRED PRESSURE"][0]))
            if "REQUIRED PRESSURE" in options else None,
            "pressureExponent": number("PRESSURE EXPONENT"),
            "demandMultiplier": number("DEMAND MULTIPLIER"),
            "emitterExponent": number("EMITTER EXPONENT"),
            "diffusivity": number("DIFFUSIVITY"),
            "tolerance": number("TOLERANCE"),
            "qualityType": prop(options["QUALITY"][0] if "QUALITY" in options else None),
            "demandPattern": rel(self._id("Pattern", default_pattern))
            if default_pattern in self.patterns else None,
            "duration": seconds("DURATION"),
            "hydraulicTimeStep": seconds("HYDRAULIC TIMESTEP"),
            "qualityTimeStep": seconds("QUALITY TIMESTEP"),
            "ruleTimeStep": seconds("RULE TIMESTEP"),
            "patternStep": seconds("PATTERN TIMESTEP"),
            "patternStart": seconds("PATTERN START"),
            "reportStep": seconds("REPORT TIMESTEP"),
            "reportStart": seconds("REPORT START"),
            "startClockTime": prop(times["START CLOCKTIME"][0] if "START CLOCKTIME" in times else None),
            "statistic": text("STATISTIC", times),
            "bulkOrder": prop(reactions.get("ORDER BULK")),
            "wallOrder": prop(reactions.get("ORDER WALL")),
            "tankOrder": prop(reactions.get("ORDER TANK")),
            "globalBulkCoeff": prop(reactions.get("GLOBAL BULK")),
            "globalWallCoeff": prop(reactions.get("GLOBAL WALL")),
            "limitingPotential": prop(reactions.get("LIMITING POTENTIAL")),
            "roughnessCorrelation": prop(reactions.get("ROUGHNESS CORRELATION")),
            **self._global_energy(),
            "operationalControl": prop([self._control(c) for c in self._controls()] or None),
            "controlRule": prop([rule.value() for rule in self.rules] or None),
        })  # fmt: skip

    def _global_energy(self) -> dict[str, Attr | None]:
        found: dict[str, Attr | None] = {}
        for line in self.model.sections.get("ENERGY", []):
            words = [t.upper() for t in line.tokens]
            if words[:2] == ["DEMAND", "CHARGE"]:
                found["demandCharge"] = prop(float(words[2]))
            elif words[0] == "GLOBAL" and words[1].startswith("EFFIC"):
                found["globalEfficiency"] = quantity(float(words[2]), "P1")
            elif words[0] == "GLOBAL" and words[1] == "PRICE":
                found["globalPrice"] = prop(float(words[2]))
            elif words[0] == "GLOBAL" and words[1] == "PATTERN":
                found["globalPattern"] = rel(self._id("Pattern", line.tokens[2]))
        return found

    def _controls(self) -> list[Control]:
        return [parse_control(line.tokens, self.ids.nodes, self.ids.links)
                for line in self.model.sections.get("CONTROLS", [])]  # fmt: skip

    def _control(self, control: Control) -> dict[str, Any]:
        """The Smart Data Models operationalControl item (ids as entity ids, numbers in canonical units)."""
        item: dict[str, Any] = {
            "controlledLink": self._id(self.ids.links[control.link], control.link),
            "controlType": control.control_type,
            "statement": control.statement,
        }
        if control.status is not None:
            item["status"] = control.status
        else:
            setting = self._setting(control.link, control.setting)
            item["setting"] = setting["value"] if setting else control.setting
        if control.node is not None:
            node_type = self.node_types[control.node]
            item["monitoredNode"] = self._id(node_type, control.node)
            # EPANET compares a tank's level, and a junction's (or reservoir's) pressure
            level = self._length(control.level) if node_type == "Tank" else self._pressure(control.level)
            if level is not None:
                item["triggerLevel"], item["triggerLevelUnitCode"] = level["value"], level["unitCode"]
        if control.seconds is not None:
            item["time"] = control.seconds
        return item

    def _setting(self, link: str, value: float | None) -> Attr | None:
        """A link's numeric setting in its own kind: a pump's relative speed, a pressure valve's pressure, a flow
        control valve's flow, a pipe's or throttle valve's loss coefficient."""
        if value is None:
            return None
        if self.ids.links.get(link) == "Valve":
            valves = self.model.sections["VALVES"]
            valve_type = next(line.tokens[4].upper() for line in valves if line.tokens[0] == link)
            if valve_type in ("PRV", "PSV", "PBV"):
                return self._pressure(value)
            if valve_type == "FCV":
                return self._flow(value)
        return prop(value)

    def _source(self, native: str) -> Attr | None:
        """[SOURCES] as the Smart Data Models sourceCategory: the type as value, strength and pattern inside."""
        line = self.per_object["SOURCES"].get(native)
        if line is None:
            return None
        typed = line.tokens[1].upper() in ("CONCEN", "MASS", "FLOWPACED", "SETPOINT")
        source_type = line.tokens[1].upper() if typed else "CONCEN"
        at = 2 if typed else 1
        strength = float(line.tokens[at])
        # A MASS source's strength is a mass flow (mass per minute), the others a concentration
        quality = prop(strength) if source_type == "MASS" else self._concentration(strength)
        attr: Attr = {"type": "Property", "value": source_type, "sourceType": prop(source_type),
                      "sourceQuality": quality}  # fmt: skip
        if at + 1 < len(line.tokens):
            attr["sourcePattern"] = rel(self._id("Pattern", line.tokens[at + 1]))
        return attr

    def _node_common(self, native: str) -> dict[str, Attr | None]:
        return {
            "initialQuality": self._quality(native),
            "sourceCategory": self._source(native),
            "tag": self._tag("NODE", native),
            "location": self._location(native),
        }

    def _demand_categories(self, line: Line) -> tuple[list[Attr] | None, Attr | None, Attr | None]:
        """[DEMANDS] of a junction: replace its [JUNCTIONS] demand (EPANET 2.2 manual, [DEMANDS]); one
        ``demandCategory`` instance per line (datasetId by position), the first as the junction's baseDemand and
        demandPattern (EPANET's primary demand category). Without [DEMANDS] lines, [JUNCTIONS] gives them."""
        native = line.tokens[0]
        lines = self.demands.get(native)
        if not lines:
            return None, self._flow(self._number(line, 2, "Demand")), self._ref(
                "Pattern", self._token(line, 3), self.patterns, line, "Pattern")  # fmt: skip
        categories: list[Attr] = []
        for position, demand in enumerate(lines, start=1):
            item: Attr = {"type": "Property", "value": demand.comment or f"category {position}",
                          "datasetId": f"urn:ngsi-ld:Dataset:demandCategory:{position}",
                          "baseDemand": self._flow(float(demand.tokens[1]))}  # fmt: skip
            if len(demand.tokens) > 2:
                item["demandPattern"] = rel(self._id("Pattern", demand.tokens[2]))
            categories.append(item)
        first = lines[0]
        pattern = rel(self._id("Pattern", first.tokens[2])) if len(first.tokens) > 2 else None
        return categories, self._flow(float(first.tokens[1])), pattern

    def _nodes(self) -> Iterator[Entity]:
        seen: set[str] = set()
        for section, entity_type in NODE_SECTIONS.items():
            for line in self.model.sections.get(section, []):
                native = line.tokens[0]
                if native in seen or self.node_types.get(native) != entity_type:
                    continue  # a duplicate, already reported
                seen.add(native)
                built = getattr(self, f"_{entity_type.lower()}")(line)
                if built is not None:
                    yield built

    def _junction(self, line: Line) -> Entity | None:
        native = line.tokens[0]
        elevation = self._number(line, 1, "Elev", True)
        if elevation is None:
            return None
        emitter = self.per_object["EMITTERS"].get(native)
        categories, demand, pattern = self._demand_categories(line)
        junction = entity(self._id("Junction", native), "Junction", {
            "name": prop(native),  # EPANET ids are the names modellers give
            "elevation": self._length(elevation),
            "baseDemand": demand,
            "demandPattern": pattern,
            "emitterCoefficient": prop(self._number(emitter, 1, "Coefficient")) if emitter else None,
            **self._node_common(native),
        })  # fmt: skip
        if categories:
            junction["demandCategory"] = categories  # a multi-attribute: one instance per category (clause 4.5.5)
        return junction

    def _reservoir(self, line: Line) -> Entity | None:
        native = line.tokens[0]
        head = self._number(line, 1, "Head", True)
        if head is None:
            return None
        return entity(self._id("Reservoir", native), "Reservoir", {
            "name": prop(native),  # EPANET ids are the names modellers give
            "reservoirHead": self._length(head),
            "headPattern": self._ref("Pattern", self._token(line, 2), self.patterns, line, "Pattern"),
            **self._node_common(native),
        })  # fmt: skip

    def _tank(self, line: Line) -> Entity | None:
        native = line.tokens[0]
        columns = ("Elevation", "InitLevel", "MinLevel", "MaxLevel", "Diameter")
        values = [self._number(line, i, column, True) for i, column in enumerate(columns, start=1)]
        if any(v is None for v in values):
            return None
        elevation, init, low, high, diameter = values
        mixing = self.per_object["MIXING"].get(native)
        return entity(self._id("Tank", native), "Tank", {
            "name": prop(native),  # EPANET ids are the names modellers give
            "elevation": self._length(elevation),
            "initLevel": self._length(init),
            "minLevel": self._length(low),
            "maxLevel": self._length(high),
            "nominalDiameter": self._length(diameter),
            "minVolume": quantity(self._number(line, 6, "MinVol"), "FTQ" if self.us else "MTQ"),
            "volumeCurve": self._ref("Curve", self._token(line, 7) if len(line.tokens) > 7 and line.tokens[7] != "*"
                                     else None, self.curves, line, "VolCurve"),
            "mixingModel": prop(mixing.tokens[1].upper()) if mixing and len(mixing.tokens) > 1 else None,
            "mixingFraction": prop(self._number(mixing, 2, "Fraction")) if mixing else None,
            "overflow": prop(line.tokens[8].upper() == "YES") if len(line.tokens) > 8 else None,
            "bulkReactionCoefficient": prop(self.reactions.get(("TANK", native))),
            **self._node_common(native),
        })  # fmt: skip

    def _ends(self, line: Line) -> tuple[str, str] | None:
        start, end = self._token(line, 1), self._token(line, 2)
        for column, node in (("Node1", start), ("Node2", end)):
            if node is None:
                self.reject(self.file, line.number, column, "required value is missing")
                return None
            if node not in self.node_types:
                self.reject(self.file, line.number, column, f"unknown node {node!r}")
                return None
        assert start is not None and end is not None
        return start, end

    def _link_common(self, line: Line, ends: tuple[str, str]) -> dict[str, Attr | None]:
        start, end = ends
        return {
            "startsAt": rel(self._id(self.node_types[start], start)),
            "endsAt": rel(self._id(self.node_types[end], end)),
            "tag": self._tag("LINK", line.tokens[0]),
            "location": self._link_location(line.tokens[0], start, end),
        }

    def _status(self, native: str, default: str | None) -> Attr | None:
        """The [STATUS] word of a link, else its own; a numeric [STATUS] is a setting (:meth:`_initial_setting`)."""
        line = self.per_object["STATUS"].get(native)
        if line is not None and line.tokens[1].upper() in ("OPEN", "CLOSED", "ACTIVE"):
            return prop(line.tokens[1].upper())
        return prop(default)

    def _initial_setting(self, native: str) -> Attr | None:
        line = self.per_object["STATUS"].get(native)
        if line is None or line.tokens[1].upper() in ("OPEN", "CLOSED", "ACTIVE"):
            return None
        return self._setting(native, float(line.tokens[1]))

    def _links(self) -> Iterator[Entity]:
        for kind, entity_type in (("PIPES", "Pipe"), ("PUMPS", "Pump"), ("VALVES", "Valve")):
            seen: set[str] = set()
            for line in self.model.sections.get(kind, []):
                if line.tokens[0] in seen or self.ids.links.get(line.tokens[0]) != entity_type:
                    continue  # a duplicate, already reported
                seen.add(line.tokens[0])
                ends = self._ends(line)
                if ends is None:
                    continue
                built = getattr(self, f"_{entity_type.lower()}")(line, ends)
                if built is not None:
                    yield built

    def _roughness(self, value: float | None) -> Attr | None:
        formula = self._options.get("HEADLOSS", ("H-W", 0))[0].upper()
        if value is None or formula != "D-W":
            return prop(value)  # Hazen-Williams C and Chezy-Manning n are dimensionless coefficients
        return quantity(value * 0.001, "FOT" if self.us else "MTR")  # millifeet or millimetres

    def _pipe(self, line: Line, ends: tuple[str, str]) -> Entity | None:
        native = line.tokens[0]
        length = self._number(line, 3, "Length", True)
        diameter = self._number(line, 4, "Diameter", True)
        roughness = self._number(line, 5, "Roughness", True)
        if length is None or diameter is None or roughness is None:
            return None
        status = (self._token(line, 7) or "OPEN").upper()
        if status not in ("OPEN", "CLOSED", "CV"):
            self.reject(self.file, line.number, "Status", f"not OPEN, CLOSED or CV: {status!r}")
            return None
        return entity(self._id("Pipe", native), "Pipe", {
            "name": prop(native),  # EPANET ids are the names modellers give
            **self._link_common(line, ends),
            "length": self._length(length),
            "diameter": self._diameter(diameter),
            "roughness": self._roughness(roughness),
            "minorLoss": prop(self._number(line, 6, "MinorLoss")),
            "initialStatus": self._status(native, status),
            "initialSetting": self._initial_setting(native),
            "bulkCoeff": prop(self.reactions.get(("BULK", native))),
            "wallCoeff": prop(self.reactions.get(("WALL", native))),
        })  # fmt: skip

    def _pump(self, line: Line, ends: tuple[str, str]) -> Entity | None:
        native = line.tokens[0]
        params = {line.tokens[i].upper(): line.tokens[i + 1] for i in range(3, len(line.tokens) - 1, 2)}
        if "HEAD" not in params and "POWER" not in params:
            self.reject(self.file, line.number, "Parameters", "a pump needs HEAD curve or POWER")
            return None
        power: float | None = None
        if "POWER" in params:
            try:
                power = float(params["POWER"])
            except ValueError:
                self.reject(self.file, line.number, "POWER", f"not a number: {params['POWER']!r}")
                return None
        energy = self._pump_energy(native)
        speed = params.get("SPEED")
        return entity(self._id("Pump", native), "Pump", {
            "name": prop(native),  # EPANET ids are the names modellers give
            **self._link_common(line, ends),
            "headCurve": self._ref("Curve", params.get("HEAD"), self.curves, line, "HEAD"),
            "power": quantity(power, "K43" if self.us else "KWT"),
            "pumpSpeed": prop(float(speed)) if speed and speed.replace(".", "", 1).isdigit() else None,
            "pumpPattern": self._ref("Pattern", params.get("PATTERN"), self.patterns, line, "PATTERN"),
            "initialStatus": self._status(native, "OPEN"),
            "initialSetting": self._initial_setting(native),
            "efficCurve": energy.get("efficCurve"),
            "energyPrice": energy.get("energyPrice"),
            "energyPattern": energy.get("energyPattern"),
        })  # fmt: skip

    def _pump_energy(self, native: str) -> dict[str, Attr | None]:
        found: dict[str, Attr | None] = {}
        for line in self.model.sections.get("ENERGY", []):
            words = [t.upper() for t in line.tokens]
            if len(words) < 4 or words[0] != "PUMP" or line.tokens[1] != native:
                continue
            value = line.tokens[3]
            if words[2].startswith("EFFIC"):
                found["efficCurve"] = self._ref("Curve", value, self.curves, line, "Efficiency")
            elif words[2] == "PRICE":
                found["energyPrice"] = prop(self._number(line, 3, "Price"))
            elif words[2] == "PATTERN":
                found["energyPattern"] = self._ref("Pattern", value, self.patterns, line, "Pattern")
        return found

    def _valve(self, line: Line, ends: tuple[str, str]) -> Entity | None:
        native = line.tokens[0]
        diameter = self._number(line, 3, "Diameter", True)
        valve_type = (self._token(line, 4) or "").upper()
        if valve_type not in ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV", "PCV"):
            self.reject(self.file, line.number, "Type", f"not an EPANET valve type: {valve_type!r}")
            return None
        if diameter is None:
            return None
        setting: Attr | None
        curve: Attr | None = None
        if valve_type == "GPV":
            setting, curve = None, self._ref("Curve", self._token(line, 5), self.curves, line, "Setting")
        else:
            value = self._number(line, 5, "Setting", True)
            if value is None:
                return None
            # pressure valves are set in pressure, flow control valves in flow, TCV by a loss coefficient
            if valve_type in ("PRV", "PSV", "PBV"):
                setting = self._pressure(value)
            else:
                setting = self._flow(value) if valve_type == "FCV" else prop(value)
        return entity(self._id("Valve", native), "Valve", {
            "name": prop(native),  # EPANET ids are the names modellers give
            **self._link_common(line, ends),
            "diameter": self._diameter(diameter),
            "valveType": prop(valve_type),
            "setting": setting,
            "headCurve": curve,
            "minorLoss": prop(self._number(line, 6, "MinorLoss")),
            "initialStatus": self._status(native, "ACTIVE"),
            "initialSetting": self._initial_setting(native),
        })  # fmt: skip

    def _patterns(self) -> Iterator[Entity]:
        times = self._times
        step = times.get("PATTERN TIMESTEP", ("1:00", 0))[0].split()
        try:
            step_seconds = parse_hours(step[0], step[1] if len(step) > 1 else None) * 3600
        except (ValueError, IndexError):
            step_seconds = 3600.0
        for native, multipliers in self.patterns.items():
            yield entity(self._id("Pattern", native), "Pattern", {
                "name": prop(native),
                "multipliers": prop(multipliers),
                "timeStep": quantity(step_seconds, "SEC"),
            })  # fmt: skip

    def _curves(self) -> Iterator[Entity]:
        usage = self._curve_usage()
        for native, points in self.curves.items():
            kind = self.curve_kinds.get(native) or usage.get(native)
            xs, ys = [x for x, _ in points], [y for _, y in points]
            x_attr, y_attr = self._curve_axes(kind, xs, ys)
            yield entity(self._id("Curve", native), "Curve", {
                "name": prop(native),
                "curveType": prop(kind),
                "xData": x_attr,
                "yData": y_attr,
            })  # fmt: skip

    def _curve_usage(self) -> dict[str, str]:
        """The kind of each curve from what refers to it, for files without ``;PUMP:`` comments."""
        usage: dict[str, str] = {}
        for line in self.model.sections.get("PUMPS", []):
            params = {line.tokens[i].upper(): line.tokens[i + 1] for i in range(3, len(line.tokens) - 1, 2)}
            if "HEAD" in params:
                usage[params["HEAD"]] = "PUMP"
        for line in self.model.sections.get("TANKS", []):
            if len(line.tokens) > 7:
                usage[line.tokens[7]] = "VOLUME"
        for line in self.model.sections.get("ENERGY", []):
            if len(line.tokens) >= 4 and line.tokens[0].upper() == "PUMP" and line.tokens[2].upper().startswith("EFF"):
                usage[line.tokens[3]] = "EFFICIENCY"
        return usage

    def _curve_axes(self, kind: str | None, xs: list[float], ys: list[float]) -> tuple[Attr | None, Attr | None]:
        def values(attrs: list[Attr | None]) -> Attr | None:
            present = [a for a in attrs if a is not None]
            if not present:
                return None
            return {"type": "Property", "value": [a["value"] for a in present], "unitCode": present[0]["unitCode"]}

        length = "FOT" if self.us else "MTR"
        if kind in ("PUMP", "HEADLOSS"):
            return values([self._flow(x) for x in xs]), values([quantity(y, length) for y in ys])
        if kind == "EFFICIENCY":
            return values([self._flow(x) for x in xs]), values([quantity(y, "P1") for y in ys])
        if kind == "VOLUME":
            return values([quantity(x, length) for x in xs]), values([quantity(y, "FTQ" if self.us else "MTQ")
                                                                       for y in ys])  # fmt: skip
        return prop(xs), prop(ys)  # a curve nothing refers to: native numbers, no unit to claim
