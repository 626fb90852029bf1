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
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.attrs import Attr, entity, line_string, point, prop, quantity, rel, valid_wgs84
from adapters.base import Adapter, Entity, SourceError, split_source

US_FLOW_UNITS = {"CFS", "GPM", "MGD", "IMGD", "AFD"}
# litres per second in one native flow unit
FLOW_TO_LPS = {
    "CFS": 28.316846592, "GPM": 0.0630901964, "MGD": 43.8126364, "IMGD": 52.6168042, "AFD": 14.2764102,
    "LPS": 1.0, "LPM": 1 / 60, "MLD": 1000000 / 86400, "CMH": 1000 / 3600, "CMD": 1000 / 86400,
}  # fmt: skip
KPA_PER_METRE_OF_WATER = 9.80665
NODE_SECTIONS = {"JUNCTIONS": "Junction", "RESERVOIRS": "Reservoir", "TANKS": "Tank"}
CURVE_KINDS = ("PUMP", "EFFICIENCY", "VOLUME", "HEADLOSS")
UNTRANSLATED = ("DEMANDS", "SOURCES")
TIME = re.compile(r"^(\d+(?:\.\d*)?)(?::(\d{1,2}))?(?::(\d{1,2}))?$")


@dataclass
class Line:
    number: int
    tokens: list[str]
    comment: str = ""


@dataclass
class Model:
    sections: dict[str, list[Line]] = field(default_factory=lambda: defaultdict(list))
    title: list[str] = field(default_factory=list)


def read_inp(path: str) -> Model:
    """Split an .inp file into its sections; a line's comment (after ``;``) is kept for [CURVES]."""
    model = Model()
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot be read as an EPANET .inp file ({exc})") from exc
    section = ""
    pending_comment = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section, pending_comment = stripped[1:-1].upper(), ""
            continue
        if section == "TITLE":
            if stripped:
                model.title.append(stripped)
            continue
        data, _, comment = raw.partition(";")
        tokens = data.split()
        if not tokens:
            pending_comment = comment.strip() or pending_comment
            continue
        model.sections[section].append(Line(number, tokens, pending_comment))
    if not any(name in model.sections for name in NODE_SECTIONS):
        raise SourceError(f"{path}: no [JUNCTIONS], [RESERVOIRS] or [TANKS] section: not an EPANET .inp file")
    return model


def parse_hours(text: str, unit: str | None = None) -> float:
    """EPANET times: ``H:MM[:SS]`` or a decimal number of hours, or a number with a unit word (SEC, MIN, HOURS,
    DAYS)."""
    match = TIME.match(text)
    if match is None:
        raise ValueError(text)
    hours, minutes, seconds = match.groups()
    if minutes is None and unit:
        scale = {"SEC": 1 / 3600, "MIN": 1 / 60, "HOU": 1.0, "DAY": 24.0}.get(unit.upper()[:3])
        if scale is None:
            raise ValueError(f"{text} {unit}")
        return float(hours) * scale
    return float(hours) + int(minutes or 0) / 60 + int(seconds or 0) / 3600


class EpanetAdapter(Adapter):
    name = "epanet"
    description = "EPANET .inp network into WaterDistributionManagementEPANET entities (?crs=EPSG:n for WGS84)"
    entity_types = ("WaterNetwork", "Junction", "Reservoir", "Tank", "Pipe", "Pump", "Valve", "Curve", "Pattern")

    def __init__(self, *, network: str | None = None, crs: str | None = None) -> None:
        super().__init__(network=network)
        self.crs = crs

    def entities(self, source: str) -> Iterator[Entity]:
        path, options = split_source(source)
        self.file = Path(path).name
        self.model = read_inp(path)
        if self.network is None:
            self.network = Path(path).stem
        self._transform = self._transformer(options.get("crs") or self.crs)
        self._options = self._keyed("OPTIONS")
        self._times = self._keyed("TIMES")
        flow_units = (self._options.get("UNITS", ("GPM", 0))[0].split() or ["GPM"])[0].upper()
        if flow_units not in FLOW_TO_LPS:
            raise SourceError(f"{self.file}: [OPTIONS] Units {flow_units!r} is not an EPANET flow unit")
        self.flow_units = flow_units
        self.us = flow_units in US_FLOW_UNITS
        self._index()
        for section in UNTRANSLATED:  # sections that change the model's meaning: say they were not carried over
            lines = self.model.sections.get(section, [])
            if lines:
                self.reject(self.file, lines[0].number, section, f"[{section}] ({len(lines)} lines) is not translated")
        yield self._network()
        yield from self._nodes()
        yield from self._links()
        yield from self._patterns()
        yield from self._curves()

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

    def _keyed(self, section: str) -> dict[str, tuple[str, int]]:
        """[OPTIONS]/[TIMES]: the longest known key wins (``Specific Gravity 1.0``, ``Quality Chlorine mg/L``)."""
        known = ("SPECIFIC GRAVITY", "DEMAND MULTIPLIER", "EMITTER EXPONENT", "DEMAND MODEL", "MINIMUM PRESSURE",
                 "REQUIRED PRESSURE", "PRESSURE EXPONENT", "HYDRAULIC TIMESTEP", "QUALITY TIMESTEP", "RULE TIMESTEP",
                 "PATTERN TIMESTEP", "PATTERN START", "REPORT TIMESTEP", "REPORT START", "START CLOCKTIME")  # fmt: skip
        result: dict[str, tuple[str, int]] = {}
        for line in self.model.sections.get(section, []):
            words = " ".join(line.tokens)
            upper = words.upper()
            key = next((k for k in known if upper.startswith(k + " ")), line.tokens[0].upper())
            result[key] = (words[len(key) :].strip(), line.number)
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
        self.node_types: dict[str, str] = {}
        for section, entity_type in NODE_SECTIONS.items():
            for line in self.model.sections.get(section, []):
                if line.tokens[0] in self.node_types:
                    self.reject(self.file, line.number, "ID", f"duplicate node id {line.tokens[0]!r}")
                    continue
                self.node_types[line.tokens[0]] = entity_type
        self.patterns: dict[str, list[float]] = {}
        self._pattern_lines: dict[str, int] = {}
        for line in self.model.sections.get("PATTERNS", []):
            values = [self._number(line, i, f"multiplier {i}", True) for i in range(1, len(line.tokens))]
            self._pattern_lines.setdefault(line.tokens[0], line.number)
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
            x, y = self._number(line, 1, "X-Coord", True), self._number(line, 2, "Y-Coord", True)
            if x is not None and y is not None:
                self.coordinates[line.tokens[0]] = (x, y)
                self.coordinate_lines[line.tokens[0]] = line.number
        self.vertices: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for line in self.model.sections.get("VERTICES", []):
            x, y = self._number(line, 1, "X-Coord", True), self._number(line, 2, "Y-Coord", True)
            if x is not None and y is not None:
                self.vertices[line.tokens[0]].append((x, y))
        self.per_object: dict[str, dict[str, Line]] = {
            name: {line.tokens[0]: line for line in self.model.sections.get(name, [])}
            for name in ("QUALITY", "EMITTERS", "TAGS", "MIXING", "STATUS")
        }
        for line in self.model.sections.get("TAGS", []):  # TAGS lines are NODE|LINK id tag
            if len(line.tokens) >= 3:
                self.per_object["TAGS"][line.tokens[1]] = Line(line.number, line.tokens[1:])

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

    def _quality(self, node: str) -> Attr | None:
        line = self.per_object["QUALITY"].get(node)
        if line is None:
            return None
        value = self._number(line, 1, "InitQual")
        words = self._options.get("QUALITY", ("NONE", 0))[0].split() or ["NONE"]
        # AGE is in hours, TRACE in percent of the traced node's water, a chemical in the unit its line names
        unit = {"AGE": "HUR", "TRACE": "P1"}.get(words[0].upper(), words[-1] if len(words) > 1 else "mg/L")
        try:
            return quantity(value, unit)
        except ValueError:  # a unit outside the table: keep the number, claim no unit
            return prop(value)

    # -- entities ------------------------------------------------------------------------------------------------
    def _id(self, entity_type: str, native: str) -> str:
        return self.entity_id(entity_type, native)

    def _location(self, node: str) -> Attr | None:
        if self._transform is None or node not in self.coordinates:
            return None
        lon, lat = self._transform(*self.coordinates[node])
        if not valid_wgs84(lon, lat):
            self.reject(self.file, self.coordinate_lines[node], "X-Coord", f"node {node!r} is not a WGS84 position "
                        "under the given crs; location left out")  # fmt: skip
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

    def _tag(self, native: str) -> Attr | None:
        line = self.per_object["TAGS"].get(native)
        return prop(line.tokens[1]) if line is not None and len(line.tokens) > 1 else None

    def _network(self) -> Entity:
        options, times = self._options, self._times

        def seconds(key: str) -> Attr | None:
            if key not in times:
                return None
            text, number = times[key]
            words = text.split()
            try:
                hours = parse_hours(words[0], words[1] if len(words) > 1 else None)
            except (ValueError, IndexError):
                if key != "START CLOCKTIME":
                    self.reject(self.file, number, key.title(), f"not a time: {text!r}; attribute left out")
                return None
            return quantity(hours * 3600, "SEC")

        def number(key: str) -> Attr | None:
            if key not in options:
                return None
            text, line = options[key]
            try:
                return prop(float(text.split()[0]))
            except (ValueError, IndexError):
                self.reject(self.file, line, key.title(), f"not a number: {text!r}; attribute left out")
                return None

        title = self.model.title
        default_pattern = options.get("PATTERN", ("", 0))[0] or None
        return entity(self.entity_id("WaterNetwork"), "WaterNetwork", {
            "name": prop(title[0] if title else self.network),
            "description": prop(" ".join(title[1:]) or None),
            "flowUnits": prop(self.flow_units),
            "headlossFormula": prop(options.get("HEADLOSS", ("H-W", 0))[0].upper()),
            "specificGravity": number("SPECIFIC GRAVITY"),
            "trials": number("TRIALS"),
            "accuracy": number("ACCURACY"),
            "emitterExponent": number("EMITTER EXPONENT"),
            "diffusivity": number("DIFFUSIVITY"),
            "tolerance": number("TOLERANCE"),
            "qualityType": prop(options["QUALITY"][0] if "QUALITY" in options else None),
            "demandPattern": rel(self._id("Pattern", default_pattern))
            if default_pattern in self.patterns else None,
            "duration": seconds("DURATION"),
            "hydraulicTimeStep": seconds("HYDRAULIC TIMESTEP"),
            "qualityTimeStep": seconds("QUALITY TIMESTEP"),
            "patternStep": seconds("PATTERN TIMESTEP"),
            "reportStep": seconds("REPORT TIMESTEP"),
            "startClockTime": prop(times["START CLOCKTIME"][0] if "START CLOCKTIME" in times else None),
            "operationalControl": prop(self._controls() or None),
        })  # fmt: skip

    def _controls(self) -> list[str]:
        """[CONTROLS] statements, then [RULES] rule by rule, as EPANET text (kept whole rather than half-parsed)."""
        controls = [" ".join(line.tokens) for line in self.model.sections.get("CONTROLS", [])]
        rules: list[list[str]] = []
        for line in self.model.sections.get("RULES", []):
            if line.tokens[0].upper() == "RULE" or not rules:
                rules.append([])
            rules[-1].append(" ".join(line.tokens))
        return controls + ["\n".join(rule) for rule in rules]

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
        return entity(self._id("Junction", native), "Junction", {
            "name": prop(native),  # EPANET ids are the names modellers give
            "elevation": self._length(elevation),
            "baseDemand": self._flow(self._number(line, 2, "Demand")),
            "demandPattern": self._ref("Pattern", self._token(line, 3), self.patterns, line, "Pattern"),
            "emitterCoefficient": prop(self._number(emitter, 1, "Coefficient")) if emitter else None,
            "initialQuality": self._quality(native),
            "tag": self._tag(native),
            "location": self._location(native),
        })  # fmt: skip

    def _reservoir(self, line: Line) -> Entity | None:
        native = line.tokens[0]
        head = self._number(line, 1, "Head", True)
        if head is None:
            return None
        return entity(self._id("Reservoir", native), "Reservoir", {
            "name": prop(native),  # EPANET ids are the names modellers give
            "reservoirHead": self._length(head),
            "headPattern": self._ref("Pattern", self._token(line, 2), self.patterns, line, "Pattern"),
            "initialQuality": self._quality(native),
            "tag": self._tag(native),
            "location": self._location(native),
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
            "initialQuality": self._quality(native),
            "tag": self._tag(native),
            "location": self._location(native),
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
            "tag": self._tag(line.tokens[0]),
            "location": self._link_location(line.tokens[0], start, end),
        }

    def _status(self, native: str, default: str | None) -> Attr | None:
        line = self.per_object["STATUS"].get(native)
        if line is not None and len(line.tokens) > 1:
            return prop(line.tokens[1].upper())
        return prop(default)

    def _links(self) -> Iterator[Entity]:
        for kind in ("PIPES", "PUMPS", "VALVES"):
            seen: set[str] = set()
            for line in self.model.sections.get(kind, []):
                if line.tokens[0] in seen:
                    self.reject(self.file, line.number, "ID", f"duplicate {kind[:-1].lower()} id {line.tokens[0]!r}")
                    continue
                seen.add(line.tokens[0])
                ends = self._ends(line)
                if ends is None:
                    continue
                built = getattr(self, f"_{kind[:-1].lower()}")(line, ends)
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
