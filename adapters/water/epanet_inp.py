"""Reading an EPANET 2.2 input file strictly: sections, lines, tokens, and the checks of every line's fields.

EPANET refuses a file with an unknown section or a line it cannot read (error 201 "syntax error", 213 "illegal
option value", 203 "undefined node" ...); so does this reader, naming the file, the line and the field
(docs/decisions/0360). The checks here are those of the input format alone (field counts, numbers, keywords,
references between sections); the translation into entities lives in ``adapters.water.epanet``.

Sections as in the EPANET 2.2 manual, "Input File Format" (appendix C): each line's fields are whitespace
separated, ``;`` starts a comment, a field in double quotes may hold spaces ([LABELS]), nothing after [END] is read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from adapters.base import SourceError
from adapters.progress import ByteMeter

SECTIONS = (
    "TITLE", "JUNCTIONS", "RESERVOIRS", "TANKS", "PIPES", "PUMPS", "VALVES", "TAGS", "DEMANDS", "STATUS", "PATTERNS",
    "CURVES", "CONTROLS", "RULES", "ENERGY", "EMITTERS", "QUALITY", "SOURCES", "REACTIONS", "MIXING", "TIMES",
    "REPORT", "OPTIONS", "COORDINATES", "VERTICES", "LABELS", "BACKDROP", "END",
)  # fmt: skip
NODE_SECTIONS = {"JUNCTIONS": "Junction", "RESERVOIRS": "Reservoir", "TANKS": "Tank"}
LINK_SECTIONS = {"PIPES": "Pipe", "PUMPS": "Pump", "VALVES": "Valve"}
TOKEN = re.compile(r'"[^"]*"|[^\s"]+')
TIME = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?$")
VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV", "PCV")
SOURCE_TYPES = ("CONCEN", "MASS", "FLOWPACED", "SETPOINT")
MIXING_MODELS = ("MIXED", "2COMP", "FIFO", "LIFO")
TIME_UNITS = {"SEC": 1 / 3600, "SECONDS": 1 / 3600, "MIN": 1 / 60, "MINUTES": 1 / 60, "HOURS": 1.0, "HRS": 1.0,
              "HR": 1.0, "DAYS": 24.0, "DAY": 24.0, "AM": 1.0, "PM": 1.0}  # fmt: skip

# [OPTIONS] keys (longest first where one starts another) and what their value is
OPTION_KEYS: dict[str, str] = {
    "UNITS": "word", "HEADLOSS": "word", "HYDRAULICS": "text", "QUALITY": "text", "VISCOSITY": "number",
    "DIFFUSIVITY": "number", "SPECIFIC GRAVITY": "number", "TRIALS": "number", "ACCURACY": "number",
    "HEADERROR": "number", "FLOWCHANGE": "number", "UNBALANCED": "text", "PATTERN": "word", "DEMAND MODEL": "word",
    "MINIMUM PRESSURE": "number", "REQUIRED PRESSURE": "number", "PRESSURE EXPONENT": "number",
    "DEMAND MULTIPLIER": "number", "EMITTER EXPONENT": "number", "TOLERANCE": "number", "MAP": "text",
    "CHECKFREQ": "number", "MAXCHECK": "number", "DAMPLIMIT": "number", "SEGMENTS": "number",
    "HEAD ERROR": "number", "FLOW CHANGE": "number",
}  # fmt: skip
OPTION_WORDS = {
    "UNITS": ("CFS", "GPM", "MGD", "IMGD", "AFD", "LPS", "LPM", "MLD", "CMH", "CMD"),
    "HEADLOSS": ("H-W", "D-W", "C-M"),
    "DEMAND MODEL": ("DDA", "PDA"),
}
TIME_KEYS = ("DURATION", "HYDRAULIC TIMESTEP", "QUALITY TIMESTEP", "RULE TIMESTEP", "PATTERN TIMESTEP",
             "PATTERN START", "REPORT TIMESTEP", "REPORT START", "START CLOCKTIME", "STATISTIC")  # fmt: skip
STATISTICS = ("NONE", "NO", "AVERAGED", "AVERAGE", "MINIMUM", "MAXIMUM", "RANGE")
REPORT_WORDS = ("PAGESIZE", "PAGE", "FILE", "STATUS", "SUMMARY", "MESSAGES", "ENERGY", "NODES", "LINKS")
REPORT_FIELDS = ("ELEVATION", "DEMAND", "HEAD", "PRESSURE", "QUALITY", "LENGTH", "DIAMETER", "FLOW", "VELOCITY",
                 "HEADLOSS", "POSITION", "STATE", "STATUS", "SETTING", "REACTION", "F-FACTOR", "FRICTION")  # fmt: skip

Reject = Callable[[int, str, str], None]


@dataclass
class Line:
    number: int
    tokens: list[str]
    comment: str = ""  # the comment on the line itself, else the comment line just above it ([CURVES], [DEMANDS])


@dataclass
class Model:
    sections: dict[str, list[Line]] = field(default_factory=lambda: defaultdict(list))
    title: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # section -> line of its (first) header


def tokens(text: str) -> list[str]:
    return [t[1:-1] if t.startswith('"') else t for t in TOKEN.findall(text)]


def read_inp(path: str, reject: Reject, meter: ByteMeter | None = None) -> Model:
    """Split an .inp file into its sections; an unknown section or data before any section is rejected. ``meter``
    counts the bytes read."""
    model = Model()
    try:
        with (meter or ByteMeter()).open_text(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot be read as an EPANET .inp file ({exc})") from exc
    section = ""
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("["):
            name = stripped.split("]", 1)[0][1:].strip().upper()
            if not stripped.split(";", 1)[0].rstrip().endswith("]") or name not in SECTIONS:
                reject(number, "section", f"unknown section {stripped.split(';', 1)[0].strip()}")
                section = "?"
                continue
            if name == "END":
                break
            section, pending = name, ""
            model.seen.setdefault(name, number)
            continue
        if section == "TITLE":
            if stripped:
                model.title.append(stripped)
            continue
        data, _, comment = raw.partition(";")
        found = tokens(data)
        if not found:
            pending = comment.strip() or pending
            continue
        if section == "":
            reject(number, "section", "data before the first [SECTION] header")
            section = "?"
        if section != "?":
            model.sections[section].append(Line(number, found, comment.strip() or pending))
    if not any(name in model.seen for name in NODE_SECTIONS):
        raise SourceError(f"{path}: no [JUNCTIONS], [RESERVOIRS] or [TANKS] section: not an EPANET .inp file")
    return model


def parse_hours(text: str, unit: str | None = None) -> float:
    """EPANET times: ``H:MM[:SS]`` or a decimal number of hours, or a number with a unit word (SEC, MIN, HOURS,
    DAYS; AM/PM for a clock time)."""
    match = TIME.match(text)
    if match is None:
        raise ValueError(text)
    hours, minutes, seconds = match.groups()
    value = float(hours) + int(minutes or 0) / 60 + int(seconds or 0) / 3600
    if unit is None:
        return value
    word = unit.upper()
    if word in ("AM", "PM"):
        if value > 12 or value < 0:
            raise ValueError(f"{text} {unit}")
        return value % 12 + (12 if word == "PM" else 0)
    if minutes is not None or word not in TIME_UNITS:
        raise ValueError(f"{text} {unit}")
    return value * TIME_UNITS[word]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.upper() not in ("NAN", "INF", "-INF", "+INF", "INFINITY", "-INFINITY")


def keyed(line: Line, keys: Iterable[str]) -> tuple[str, list[str]]:
    """The key a [OPTIONS]/[TIMES]/[ENERGY]/... line starts with (longest known first), and the words after it."""
    upper = [t.upper() for t in line.tokens]
    for key in sorted(keys, key=lambda k: -len(k.split())):
        size = len(key.split())
        if " ".join(upper[:size]) == key:
            return key, line.tokens[size:]
    return "", line.tokens


@dataclass
class Index:
    """The ids declared by the object sections, for the references of the others."""

    nodes: dict[str, str] = field(default_factory=dict)  # id -> entity type
    links: dict[str, str] = field(default_factory=dict)
    patterns: set[str] = field(default_factory=set)
    curves: set[str] = field(default_factory=set)


def index(model: Model, reject: Reject) -> Index:
    found = Index()
    for sections, target, kind in ((NODE_SECTIONS, found.nodes, "node"), (LINK_SECTIONS, found.links, "link")):
        for section, entity_type in sections.items():
            for line in model.sections.get(section, []):
                if line.tokens[0] in target:
                    reject(line.number, "ID", f"duplicate {kind} id {line.tokens[0]!r}")
                    continue
                target[line.tokens[0]] = entity_type
    found.patterns = {line.tokens[0] for line in model.sections.get("PATTERNS", [])}
    found.curves = {line.tokens[0] for line in model.sections.get("CURVES", [])}
    return found


class Checker:
    """The field checks of every section's lines (the EPANET 2.2 manual, appendix C, section by section)."""

    def __init__(self, model: Model, ids: Index, reject: Reject) -> None:
        self.model, self.ids, self.reject = model, ids, reject

    def run(self) -> None:
        for section, lines in self.model.sections.items():
            check = getattr(self, f"_{section.lower()}")
            for line in lines:
                check(line)

    # -- helpers -------------------------------------------------------------------------------------------------
    def count(self, line: Line, low: int, high: int, fields: tuple[str, ...]) -> bool:
        n = len(line.tokens)
        if n < low:
            self.reject(line.number, fields[n] if n < len(fields) else fields[-1], "required value is missing")
            return False
        if n > high:
            self.reject(line.number, f"field {high + 1}", f"unexpected value {line.tokens[high]!r}")
            return False
        return True

    def numbers(self, line: Line, fields: dict[int, str]) -> bool:
        ok = True
        for i, name in fields.items():
            if i < len(line.tokens) and not is_number(line.tokens[i]):
                self.reject(line.number, name, f"not a number: {line.tokens[i]!r}")
                ok = False
        return ok

    def ref(self, line: Line, i: int, name: str, known: Iterable[str], what: str) -> bool:
        if i < len(line.tokens) and line.tokens[i] not in known:
            self.reject(line.number, name, f"unknown {what} {line.tokens[i]!r}")
            return False
        return True

    def node_of(self, line: Line, i: int, name: str, types: tuple[str, ...]) -> bool:
        native = line.tokens[i]
        if self.ids.nodes.get(native) not in types:
            kind = "/".join(t.lower() for t in types)
            self.reject(line.number, name, f"unknown {kind} {native!r}")
            return False
        return True

    def word(self, line: Line, i: int, name: str, allowed: Iterable[str]) -> bool:
        if i < len(line.tokens) and line.tokens[i].upper() not in allowed:
            self.reject(line.number, name, f"{line.tokens[i]!r} is not one of {', '.join(allowed)}")
            return False
        return True

    # -- object sections -----------------------------------------------------------------------------------------
    def _junctions(self, line: Line) -> None:
        if self.count(line, 2, 4, ("ID", "Elev", "Demand", "Pattern")):
            self.numbers(line, {1: "Elev", 2: "Demand"})
            self.ref(line, 3, "Pattern", self.ids.patterns, "pattern")

    def _reservoirs(self, line: Line) -> None:
        if self.count(line, 2, 3, ("ID", "Head", "Pattern")):
            self.numbers(line, {1: "Head"})
            self.ref(line, 2, "Pattern", self.ids.patterns, "pattern")

    def _tanks(self, line: Line) -> None:
        fields = ("ID", "Elevation", "InitLevel", "MinLevel", "MaxLevel", "Diameter", "MinVol", "VolCurve", "Overflow")
        if self.count(line, 6, 9, fields):
            self.numbers(line, dict(enumerate(fields[1:7], start=1)))
            if len(line.tokens) > 7 and line.tokens[7] != "*":
                self.ref(line, 7, "VolCurve", self.ids.curves, "curve")
            self.word(line, 8, "Overflow", ("YES", "NO"))

    def _link_ends(self, line: Line) -> None:
        for i, name in ((1, "Node1"), (2, "Node2")):
            self.ref(line, i, name, self.ids.nodes, "node")

    def _pipes(self, line: Line) -> None:
        fields = ("ID", "Node1", "Node2", "Length", "Diameter", "Roughness", "MinorLoss", "Status")
        if self.count(line, 6, 8, fields):
            self._link_ends(line)
            self.numbers(line, {3: "Length", 4: "Diameter", 5: "Roughness", 6: "MinorLoss"})
            self.word(line, 7, "Status", ("OPEN", "CLOSED", "CV"))

    def _pumps(self, line: Line) -> None:
        if not self.count(line, 5, 11, ("ID", "Node1", "Node2", "Parameters", "Parameters")):
            return
        self._link_ends(line)
        pairs = line.tokens[3:]
        if len(pairs) % 2:
            self.reject(line.number, pairs[-1], "a pump parameter keyword needs its value")
            return
        keys = [p.upper() for p in pairs[::2]]
        for key, value in zip(keys, pairs[1::2], strict=True):
            if key == "HEAD" and value not in self.ids.curves:
                self.reject(line.number, "HEAD", f"unknown curve {value!r}")
            elif key == "PATTERN" and value not in self.ids.patterns:
                self.reject(line.number, "PATTERN", f"unknown pattern {value!r}")
            elif key in ("POWER", "SPEED") and not is_number(value):
                self.reject(line.number, key, f"not a number: {value!r}")
            elif key not in ("HEAD", "PATTERN", "POWER", "SPEED"):
                self.reject(line.number, "Parameters", f"{key!r} is not one of HEAD, POWER, SPEED, PATTERN")
        if "HEAD" not in keys and "POWER" not in keys:
            self.reject(line.number, "Parameters", "a pump needs HEAD curve or POWER")

    def _valves(self, line: Line) -> None:
        fields = ("ID", "Node1", "Node2", "Diameter", "Type", "Setting", "MinorLoss")
        if not self.count(line, 6, 7, fields):
            return
        self._link_ends(line)
        self.numbers(line, {3: "Diameter", 6: "MinorLoss"})
        if self.word(line, 4, "Type", VALVE_TYPES):
            if line.tokens[4].upper() == "GPV":
                self.ref(line, 5, "Setting", self.ids.curves, "curve")
            else:
                self.numbers(line, {5: "Setting"})

    # -- sections that add to the objects ------------------------------------------------------------------------
    def _tags(self, line: Line) -> None:
        if self.count(line, 3, 3, ("Object", "ID", "Tag")) and self.word(line, 0, "Object", ("NODE", "LINK")):
            known = self.ids.nodes if line.tokens[0].upper() == "NODE" else self.ids.links
            self.ref(line, 1, "ID", known, line.tokens[0].lower())

    def _demands(self, line: Line) -> None:
        if self.count(line, 2, 3, ("Junction", "Demand", "Pattern")) and self.node_of(line, 0, "Junction",
                                                                                      ("Junction",)):  # fmt: skip
            self.numbers(line, {1: "Demand"})
            self.ref(line, 2, "Pattern", self.ids.patterns, "pattern")

    def _status(self, line: Line) -> None:
        if not self.count(line, 2, 2, ("ID", "Status/Setting")) or not self.ref(line, 0, "ID", self.ids.links, "link"):
            return
        if line.tokens[1].upper() not in ("OPEN", "CLOSED", "ACTIVE") and not is_number(line.tokens[1]):
            self.reject(line.number, "Status/Setting", f"not OPEN, CLOSED, ACTIVE or a number: {line.tokens[1]!r}")

    def _patterns(self, line: Line) -> None:
        self.numbers(line, {i: f"multiplier {i}" for i in range(1, len(line.tokens))})

    def _curves(self, line: Line) -> None:
        if self.count(line, 3, 3, ("ID", "X-Value", "Y-Value")):
            self.numbers(line, {1: "X-Value", 2: "Y-Value"})

    def _emitters(self, line: Line) -> None:
        if self.count(line, 2, 2, ("Junction", "Coefficient")) and self.node_of(line, 0, "Junction", ("Junction",)):
            self.numbers(line, {1: "Coefficient"})

    def _quality(self, line: Line) -> None:
        if not self.count(line, 2, 3, ("Node", "InitQual", "InitQual")):
            return
        if len(line.tokens) == 3:  # a range of numeric node ids: "node1 node2 value"
            self.numbers(line, {0: "Node1", 1: "Node2", 2: "InitQual"})
        elif self.ref(line, 0, "Node", self.ids.nodes, "node"):
            self.numbers(line, {1: "InitQual"})

    def _sources(self, line: Line) -> None:
        if not self.count(line, 2, 4, ("Node", "Type", "Quality", "Pattern")) or not self.ref(
            line, 0, "Node", self.ids.nodes, "node"
        ):
            return
        offset = 2 if line.tokens[1].upper() in SOURCE_TYPES else 1  # the type may be left out (CONCEN)
        if offset == 1 and not is_number(line.tokens[1]):
            self.reject(line.number, "Type", f"{line.tokens[1]!r} is not one of {', '.join(SOURCE_TYPES)}")
            return
        if offset >= len(line.tokens):
            self.reject(line.number, "Quality", "required value is missing")
            return
        if len(line.tokens) > offset + 2:
            self.reject(line.number, f"field {offset + 3}", f"unexpected value {line.tokens[offset + 2]!r}")
        self.numbers(line, {offset: "Quality"})
        self.ref(line, offset + 1, "Pattern", self.ids.patterns, "pattern")

    def _mixing(self, line: Line) -> None:
        if self.count(line, 2, 3, ("Tank", "Model", "Fraction")) and self.node_of(line, 0, "Tank", ("Tank",)):
            self.word(line, 1, "Model", MIXING_MODELS)
            self.numbers(line, {2: "Fraction"})

    def _coordinates(self, line: Line) -> None:
        if self.count(line, 3, 3, ("Node", "X-Coord", "Y-Coord")) and self.ref(line, 0, "Node", self.ids.nodes, "node"):
            self.numbers(line, {1: "X-Coord", 2: "Y-Coord"})

    def _vertices(self, line: Line) -> None:
        if self.count(line, 3, 3, ("Link", "X-Coord", "Y-Coord")) and self.ref(line, 0, "Link", self.ids.links, "link"):
            self.numbers(line, {1: "X-Coord", 2: "Y-Coord"})

    def _labels(self, line: Line) -> None:
        if self.count(line, 3, 4, ("X-Coord", "Y-Coord", "Label", "Anchor")):
            self.numbers(line, {0: "X-Coord", 1: "Y-Coord"})
            self.ref(line, 3, "Anchor", self.ids.nodes, "node")

    def _backdrop(self, line: Line) -> None:
        key, rest = keyed(line, ("DIMENSIONS", "UNITS", "FILE", "OFFSET"))
        if not key:
            self.reject(line.number, "Keyword", f"{line.tokens[0]!r} is not one of DIMENSIONS, UNITS, FILE, OFFSET")
        elif key in ("DIMENSIONS", "OFFSET"):
            size = 4 if key == "DIMENSIONS" else 2
            if len(rest) != size or not all(is_number(t) for t in rest):
                self.reject(line.number, key, f"needs {size} numbers: {' '.join(rest)!r}")
        elif key == "UNITS" and (len(rest) != 1 or rest[0].upper() not in ("FEET", "METERS", "DEGREES", "NONE")):
            self.reject(line.number, key, f"not FEET, METERS, DEGREES or NONE: {' '.join(rest)!r}")

    # -- keyed sections ------------------------------------------------------------------------------------------
    def _energy(self, line: Line) -> None:
        words = [t.upper() for t in line.tokens]
        if words[:2] == ["DEMAND", "CHARGE"]:
            if len(words) != 3 or not is_number(words[2]):
                self.reject(line.number, "Demand Charge", f"needs one number: {' '.join(line.tokens[2:])!r}")
            return
        if words[0] == "GLOBAL":
            target, at = "", 1
        elif words[0] == "PUMP" and len(words) > 1:
            target, at = line.tokens[1], 2
            if self.ids.links.get(target) != "Pump":
                self.reject(line.number, "Pump", f"unknown pump {target!r}")
                return
        else:
            self.reject(line.number, "Keyword", f"{line.tokens[0]!r} is not GLOBAL, PUMP or DEMAND CHARGE")
            return
        if len(words) != at + 2:
            self.reject(line.number, "Value", f"needs a keyword and one value: {' '.join(line.tokens)!r}")
            return
        key, value = words[at], line.tokens[at + 1]
        if key.startswith("EFFIC"):
            if target and value not in self.ids.curves:
                self.reject(line.number, "Efficiency", f"unknown curve {value!r}")
            elif not target and not is_number(value):
                self.reject(line.number, "Efficiency", f"not a number: {value!r}")
        elif key == "PRICE":
            self.numbers(line, {at + 1: "Price"})
        elif key == "PATTERN":
            self.ref(line, at + 1, "Pattern", self.ids.patterns, "pattern")
        else:
            self.reject(line.number, "Keyword", f"{line.tokens[at]!r} is not PRICE, PATTERN or EFFICIENCY")

    def _reactions(self, line: Line) -> None:
        words = [t.upper() for t in line.tokens]
        head = words[0]
        if head in ("ORDER", "GLOBAL"):
            allowed = ("BULK", "WALL", "TANK") if head == "ORDER" else ("BULK", "WALL")
            if len(words) != 3 or words[1] not in allowed:
                self.reject(line.number, head.title(), f"needs {'/'.join(allowed)} and a number")
            else:
                self.numbers(line, {2: "Coefficient"})
        elif head in ("BULK", "WALL", "TANK"):
            if len(words) not in (3, 4):
                self.reject(line.number, head.title(), "needs an id (or an id range) and a coefficient")
            elif len(words) == 3:
                known = self.ids.links if head != "TANK" else [k for k, v in self.ids.nodes.items() if v == "Tank"]
                if self.ref(line, 1, "Pipe/Tank", known, "tank" if head == "TANK" else "pipe"):
                    self.numbers(line, {2: "Coefficient"})
            else:
                self.numbers(line, {1: "Pipe/Tank", 2: "Pipe/Tank", 3: "Coefficient"})
        elif words[:2] in (["LIMITING", "POTENTIAL"], ["ROUGHNESS", "CORRELATION"]):
            if len(words) != 3:
                self.reject(line.number, " ".join(line.tokens[:2]), "needs one number")
            else:
                self.numbers(line, {2: " ".join(line.tokens[:2])})
        else:
            self.reject(line.number, "Type", f"{line.tokens[0]!r} is not ORDER, GLOBAL, BULK, WALL, TANK, LIMITING "
                        "POTENTIAL or ROUGHNESS CORRELATION")  # fmt: skip

    def _options(self, line: Line) -> None:
        key, rest = keyed(line, OPTION_KEYS)
        if not key:
            self.reject(line.number, "Option", f"unknown option {line.tokens[0]!r}")
        elif not rest:
            self.reject(line.number, key.title(), "required value is missing")
        elif OPTION_KEYS[key] == "number" and (len(rest) != 1 or not is_number(rest[0])):
            self.reject(line.number, key.title(), f"not a number: {' '.join(rest)!r}")
        elif key in OPTION_WORDS and rest[0].upper() not in OPTION_WORDS[key]:
            self.reject(line.number, key.title(), f"{rest[0]!r} is not one of {', '.join(OPTION_WORDS[key])}")
        elif key == "PATTERN" and rest[0] not in self.ids.patterns and rest[0] != "1":
            self.reject(line.number, "Pattern", f"unknown pattern {rest[0]!r}")
        elif key == "QUALITY":
            self._quality_option(line, rest)

    def _quality_option(self, line: Line, rest: list[str]) -> None:
        kind = rest[0].upper()
        if kind == "TRACE":
            if len(rest) != 2 or rest[1] not in self.ids.nodes:
                self.reject(line.number, "Quality", "TRACE needs the id of a node")
        elif kind in ("NONE", "AGE"):
            if len(rest) != 1:
                self.reject(line.number, "Quality", f"unexpected value {rest[1]!r}")
        elif len(rest) > 2:
            self.reject(line.number, "Quality", "a chemical name and a unit (mg/L or ug/L), nothing more")
        elif len(rest) == 2 and rest[1].upper() not in ("MG/L", "UG/L"):
            self.reject(line.number, "Quality", f"the unit is mg/L or ug/L, not {rest[1]!r}")

    def _times(self, line: Line) -> None:
        key, rest = keyed(line, TIME_KEYS)
        if not key:
            self.reject(line.number, "Time", f"unknown time option {line.tokens[0]!r}")
        elif key == "STATISTIC":
            if len(rest) != 1 or rest[0].upper() not in STATISTICS:
                self.reject(line.number, "Statistic", f"not one of {', '.join(STATISTICS)}: {' '.join(rest)!r}")
        elif not rest or len(rest) > 2:
            self.reject(line.number, key.title(), f"not a time: {' '.join(rest)!r}")
        else:
            try:
                parse_hours(rest[0], rest[1] if len(rest) > 1 else None)
            except ValueError:
                self.reject(line.number, key.title(), f"not a time: {' '.join(rest)!r}")

    def _report(self, line: Line) -> None:
        word = line.tokens[0].upper()
        if word not in REPORT_WORDS and word not in REPORT_FIELDS:
            self.reject(line.number, "Keyword", f"unknown report option {line.tokens[0]!r}")
        elif len(line.tokens) < 2:
            self.reject(line.number, line.tokens[0], "required value is missing")
        elif word in ("NODES", "LINKS"):
            known = self.ids.nodes if word == "NODES" else self.ids.links
            for i in range(1, len(line.tokens)):
                if line.tokens[i].upper() not in ("NONE", "ALL") and line.tokens[i] not in known:
                    self.reject(line.number, line.tokens[0], f"unknown {word[:-1].lower()} {line.tokens[i]!r}")

    def _controls(self, line: Line) -> None:
        from adapters.water.epanet_controls import parse_control

        try:
            parse_control(line.tokens, self.ids.nodes, self.ids.links)
        except ValueError as exc:
            field_name, _, reason = str(exc).partition(": ")
            self.reject(line.number, field_name, reason)

    def _rules(self, line: Line) -> None:
        pass  # checked rule by rule by adapters.water.epanet_controls.parse_rules, which sees the lines together
