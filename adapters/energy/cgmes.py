"""CGMES (IEC 61970-552 CIM RDF/XML: EQ, TP, SV, DI, GL profiles) into EnergyCIM entities (docs/decisions/0063).

SOURCE is one profile file, a directory of them, or a zip. Each file is read with lxml's iterparse, element by
element; an object's statements spread over several profiles (a Terminal's equipment in EQ, its TopologicalNode
in TP) are merged by rdf:ID / rdf:about before translation, so the object table of the model is held in memory
(a CGMES model of a city is some MB).

One entity per CIM object of a translated class, keeping the CIM class name as entity type (a Breaker or a
Disconnector is a ``Switch`` with ``switchType``), the CIM attribute names as property names and the CIM
association role names as Relationship names. State variables fold into the objects they describe (SvVoltage ->
``v``/``angle`` of its TopologicalNode, SvPowerFlow -> ``activePower``/``reactivePower`` of its Terminal). The GL
profile gives ``location`` (PositionPoints in the CoordinateSystem's CRS, to WGS84); the DI profile is a
schematic drawing, not a geography, and is not turned into locations.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.attrs import Attr, entity, line_string, point, prop, quantity, rel, valid_wgs84
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.progress import CountingReader

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
WGS84_URNS = ("urn:ogc:def:crs:EPSG::4326", "EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84")

# CIM class -> entity type
CLASSES = {
    "GeographicalRegion": "GeographicalRegion", "SubGeographicalRegion": "SubGeographicalRegion",
    "Substation": "Substation", "VoltageLevel": "VoltageLevel", "BaseVoltage": "BaseVoltage",
    "Line": "Line", "ACLineSegment": "ACLineSegment", "PowerTransformer": "PowerTransformer",
    "PowerTransformerEnd": "PowerTransformerEnd", "BusbarSection": "BusbarSection",
    "Switch": "Switch", "Breaker": "Switch", "Disconnector": "Switch", "LoadBreakSwitch": "Switch", "Fuse": "Switch",
    "GroundDisconnector": "Switch",
    "EnergyConsumer": "EnergyConsumer", "ConformLoad": "EnergyConsumer", "NonConformLoad": "EnergyConsumer",
    "ExternalNetworkInjection": "ExternalNetworkInjection", "EnergySource": "EnergySource",
    "GeneratingUnit": "GeneratingUnit", "ThermalGeneratingUnit": "GeneratingUnit",
    "HydroGeneratingUnit": "GeneratingUnit", "WindGeneratingUnit": "GeneratingUnit",
    "SolarGeneratingUnit": "GeneratingUnit", "SynchronousMachine": "SynchronousMachine",
    "Terminal": "Terminal", "ConnectivityNode": "ConnectivityNode", "TopologicalNode": "TopologicalNode",
}  # fmt: skip

# CIM attribute (Class.attribute) -> (term, unit of the CGMES value or "" for a plain value, parser)
Parser = Callable[[str], Any]


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


ATTRIBUTES: dict[str, tuple[str, str, Parser]] = {
    "IdentifiedObject.name": ("name", "", str),
    "IdentifiedObject.description": ("description", "", str),
    "BaseVoltage.nominalVoltage": ("nominalVoltage", "KVT", float),
    "VoltageLevel.highVoltageLimit": ("highVoltageLimit", "KVT", float),
    "VoltageLevel.lowVoltageLimit": ("lowVoltageLimit", "KVT", float),
    "Conductor.length": ("length", "KMT", float),
    "ACLineSegment.r": ("r", "OHM", float), "ACLineSegment.x": ("x", "OHM", float),
    "ACLineSegment.bch": ("bch", "SIE", float), "ACLineSegment.gch": ("gch", "SIE", float),
    "PowerTransformerEnd.r": ("r", "OHM", float), "PowerTransformerEnd.x": ("x", "OHM", float),
    "PowerTransformerEnd.ratedU": ("ratedU", "KVT", float), "PowerTransformerEnd.ratedS": ("ratedS", "MVA", float),
    "PowerTransformerEnd.connectionKind": ("connectionKind", "", str),
    "PowerTransformerEnd.phaseAngleClock": ("phaseAngleClock", "", int),
    "TransformerEnd.endNumber": ("endNumber", "", int),
    "Switch.normalOpen": ("normalOpen", "", _bool), "Switch.open": ("open", "", _bool),
    "Switch.ratedCurrent": ("ratedCurrent", "AMP", float),
    "EnergyConsumer.p": ("activePower", "MW", float), "EnergyConsumer.q": ("reactivePower", "MVAR", float),
    "ExternalNetworkInjection.p": ("activePower", "MW", float),
    "ExternalNetworkInjection.q": ("reactivePower", "MVAR", float),
    "ExternalNetworkInjection.maxP": ("maxP", "MW", float), "ExternalNetworkInjection.minP": ("minP", "MW", float),
    "GeneratingUnit.maxOperatingP": ("maxP", "MW", float), "GeneratingUnit.minOperatingP": ("minP", "MW", float),
    "RotatingMachine.ratedS": ("ratedS", "MVA", float), "RotatingMachine.p": ("activePower", "MW", float),
    "RotatingMachine.q": ("reactivePower", "MVAR", float),
    "ACDCTerminal.sequenceNumber": ("sequenceNumber", "", int), "Terminal.sequenceNumber": ("sequenceNumber", "", int),
    "ACDCTerminal.connected": ("connected", "", _bool), "Terminal.connected": ("connected", "", _bool),
    "Terminal.phases": ("phases", "", str),
    "Equipment.inService": ("inService", "", _bool),
}  # fmt: skip

# CIM association (Class.Role) -> Relationship name
REFERENCES = {
    "SubGeographicalRegion.Region": "Region", "Substation.Region": "Region",
    "VoltageLevel.Substation": "Substation", "VoltageLevel.BaseVoltage": "BaseVoltage",
    "ConductingEquipment.BaseVoltage": "BaseVoltage", "TopologicalNode.BaseVoltage": "BaseVoltage",
    "TransformerEnd.BaseVoltage": "BaseVoltage",
    "Equipment.EquipmentContainer": "EquipmentContainer",
    "Terminal.ConductingEquipment": "ConductingEquipment", "Terminal.ConnectivityNode": "ConnectivityNode",
    "Terminal.TopologicalNode": "TopologicalNode",
    "ConnectivityNode.ConnectivityNodeContainer": "ConnectivityNodeContainer",
    "ConnectivityNode.TopologicalNode": "TopologicalNode",
    "TopologicalNode.ConnectivityNodeContainer": "ConnectivityNodeContainer",
    "PowerTransformerEnd.PowerTransformer": "PowerTransformer", "TransformerEnd.Terminal": "Terminal",
    "RotatingMachine.GeneratingUnit": "GeneratingUnit",
}  # fmt: skip


@dataclass
class Statement:
    value: str
    is_ref: bool
    file: str
    line: int


@dataclass
class CimObject:
    cls: str | None = None
    file: str = ""
    line: int = 0
    statements: dict[str, Statement] = field(default_factory=dict)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _id(raw: str) -> str:
    """``#_abc`` / ``_abc`` / ``urn:uuid:abc`` -> ``abc`` (the mRID)."""
    raw = raw.rsplit("#", 1)[-1]
    if raw.startswith("urn:uuid:"):
        raw = raw[len("urn:uuid:") :]
    return raw[1:] if raw.startswith("_") else raw


class CgmesAdapter(Adapter):
    name = "cgmes"
    description = "CGMES CIM RDF/XML (EQ, TP, SV, DI, GL; files, a directory or a zip) into EnergyCIM entities"
    entity_types = tuple(sorted(set(CLASSES.values())))

    def entities(self, source: str) -> Iterator[Entity]:
        path, _ = split_source(source)
        if self.network is None:
            self.network = Path(path).stem
        self.objects: dict[str, CimObject] = {}
        for name, opener in self._files(path):
            self._read(name, opener)
        if not any(o.cls in CLASSES for o in self.objects.values()):
            raise SourceError(f"{path}: no CIM equipment found: not a CGMES model")
        self._fold_state_variables()
        self._locations = self._geography()
        for mrid, obj in self.objects.items():
            if obj.cls in CLASSES:
                yield self._entity(mrid, obj)

    # -- reading -------------------------------------------------------------------------------------------------
    def _files(self, path: str) -> list[tuple[str, Callable[[], CountingReader]]]:
        target = Path(path)
        if target.is_dir():
            files = sorted(p for p in target.iterdir() if p.suffix.lower() in (".xml", ".rdf"))
            if not files:
                raise SourceError(f"{path}: no .xml or .rdf profile in this directory")
            self.meter.expect_files(*files)
            return [(p.name, lambda p=p: self.meter.counted(open(p, "rb"), p.name)) for p in files]  # type: ignore[misc]
        if zipfile.is_zipfile(target):
            archive = zipfile.ZipFile(target)
            members = [i for i in archive.infolist() if i.filename.lower().endswith((".xml", ".rdf"))]
            self.meter.expect(sum(i.file_size for i in members))  # the uncompressed bytes the parser reads
            return [(i.filename, lambda n=i.filename: self.meter.counted(archive.open(n), n))  # type: ignore[misc]
                    for i in members]  # fmt: skip
        if not target.is_file():
            raise SourceError(f"{path}: no such file or directory")
        return [(target.name, lambda: self.meter.open(target))]

    def _read(self, name: str, opener: Callable[[], CountingReader]) -> None:
        try:
            with opener() as stream:
                for _, element in etree.iterparse(stream, events=("end",), remove_comments=True):
                    if element.getparent() is not None and element.getparent().getparent() is None:
                        self._object(name, element)
                        element.clear()
        except etree.XMLSyntaxError as exc:
            raise SourceError(f"{name}: not well-formed XML at line {exc.lineno}: {exc.msg}") from exc
        except OSError as exc:
            raise SourceError(f"{name}: cannot be read ({exc})") from exc

    def _object(self, file: str, element: Any) -> None:
        about = element.get(f"{RDF}ID") or element.get(f"{RDF}about")
        if about is None:
            return
        obj = self.objects.setdefault(_id(about), CimObject())
        if element.get(f"{RDF}ID") is not None or obj.cls is None:
            obj.cls, obj.file, obj.line = _local(element.tag), file, element.sourceline or 0
        for child in element:
            if not isinstance(child.tag, str):
                continue
            resource = child.get(f"{RDF}resource")
            key = _local(child.tag)
            if resource is not None and "#" in resource and resource.rsplit("#", 1)[-1].count(".") == 1:
                # an enumeration value (…#PhaseCode.ABC): a plain value, not a reference
                obj.statements[key] = Statement(resource.rsplit(".", 1)[-1], False, file, child.sourceline or 0)
            elif resource is not None:
                obj.statements[key] = Statement(_id(resource), True, file, child.sourceline or 0)
            else:
                obj.statements[key] = Statement((child.text or "").strip(), False, file, child.sourceline or 0)

    # -- state variables and geography ---------------------------------------------------------------------------
    def _fold_state_variables(self) -> None:
        for obj in list(self.objects.values()):
            if obj.cls == "SvVoltage":
                self._fold(obj, "SvVoltage.TopologicalNode", {"SvVoltage.v": "SvVoltage.v",
                                                              "SvVoltage.angle": "SvVoltage.angle"})  # fmt: skip
            elif obj.cls == "SvPowerFlow":
                self._fold(obj, "SvPowerFlow.Terminal", {"SvPowerFlow.p": "SvPowerFlow.p",
                                                         "SvPowerFlow.q": "SvPowerFlow.q"})  # fmt: skip

    def _fold(self, obj: CimObject, role: str, keys: dict[str, str]) -> None:
        target = obj.statements.get(role)
        if target is None or target.value not in self.objects:
            return
        for key, name in keys.items():
            if key in obj.statements:
                self.objects[target.value].statements[name] = obj.statements[key]

    def _geography(self) -> dict[str, Attr]:
        """PowerSystemResource mRID -> location, from the GL profile (Location, PositionPoint, CoordinateSystem)."""
        points: dict[str, list[tuple[int, float, float, Statement]]] = {}
        for obj in self.objects.values():
            if obj.cls != "PositionPoint":
                continue
            location = obj.statements.get("PositionPoint.Location")
            x, y = obj.statements.get("PositionPoint.xPosition"), obj.statements.get("PositionPoint.yPosition")
            if location is None or x is None or y is None:
                continue
            sequence = obj.statements.get("PositionPoint.sequenceNumber")
            try:
                order = int(sequence.value) if sequence else 0
                points.setdefault(location.value, []).append((order, float(x.value), float(y.value), x))
            except ValueError:
                self.reject(x.file, x.line, "PositionPoint.xPosition", f"not a number: {x.value!r}")
        found: dict[str, Attr] = {}
        for location_id, located in points.items():
            owner = self.objects.get(location_id)
            resource = owner.statements.get("Location.PowerSystemResources") if owner else None
            if owner is None or resource is None:
                continue
            crs = self._crs(owner)
            if crs is None:
                continue
            coordinates = [crs(x, y) for _, x, y, _ in sorted(located, key=lambda p: p[0])]
            if not all(valid_wgs84(lon, lat) for lon, lat in coordinates):
                first = located[0][3]
                self.reject(first.file, first.line, "PositionPoint", "not a WGS84 position under its CoordinateSystem")
                continue
            found[resource.value] = point(*coordinates[0]) if len(coordinates) == 1 else line_string(coordinates)
        return found

    def _crs(self, location: CimObject) -> Callable[[float, float], tuple[float, float]] | None:
        system = location.statements.get("Location.CoordinateSystem")
        urn_statement = self.objects[system.value].statements.get("CoordinateSystem.crsUrn") if (
            system and system.value in self.objects) else None  # fmt: skip
        urn = urn_statement.value if urn_statement else "urn:ogc:def:crs:EPSG::4326"
        if urn in WGS84_URNS:
            return lambda x, y: (x, y)
        try:
            from pyproj import Transformer
            from pyproj.exceptions import CRSError

            transformer = Transformer.from_crs(urn.replace("urn:ogc:def:crs:EPSG::", "EPSG:"), "EPSG:4326",
                                               always_xy=True)  # fmt: skip
        except (ImportError, CRSError):
            where = urn_statement or system
            self.reject(where.file if where else "", where.line if where else 0, "CoordinateSystem.crsUrn",
                        f"unknown coordinate reference system {urn!r}; location left out")  # fmt: skip
            return None
        return lambda x, y: tuple(float(v) for v in transformer.transform(x, y))  # type: ignore[return-value]

    # -- translation ---------------------------------------------------------------------------------------------
    def _entity_id(self, mrid: str) -> str | None:
        target = self.objects.get(mrid)
        if target is None or target.cls not in CLASSES:
            return None
        return self.entity_id(CLASSES[target.cls], mrid)

    def _entity(self, mrid: str, obj: CimObject) -> Entity:
        assert obj.cls is not None
        entity_type = CLASSES[obj.cls]
        attrs: dict[str, Attr | None] = {}
        if entity_type == "Switch":
            attrs["switchType"] = prop(obj.cls)
        for key, statement in obj.statements.items():
            if statement.is_ref:
                self._reference(attrs, key, statement)
            else:
                self._attribute(attrs, key, statement)
        attrs["location"] = self._locations.get(mrid)
        return entity(self.entity_id(entity_type, mrid), entity_type, attrs)

    def _reference(self, attrs: dict[str, Attr | None], key: str, statement: Statement) -> None:
        name = REFERENCES.get(key)
        if name is None:
            return
        target = self._entity_id(statement.value)
        if target is None:
            self.reject(statement.file, statement.line, key, f"refers to {statement.value!r}, which is not in the "
                        "model (or not of a translated class); relationship left out")  # fmt: skip
            return
        attrs[name] = rel(target)

    def _attribute(self, attrs: dict[str, Attr | None], key: str, statement: Statement) -> None:
        state = {"SvVoltage.v": ("v", "KVT", float), "SvVoltage.angle": ("angle", "DD", float),
                 "SvPowerFlow.p": ("activePower", "MW", float), "SvPowerFlow.q": ("reactivePower", "MVAR", float)}
        spec = ATTRIBUTES.get(key) or state.get(key)
        if spec is None:
            return
        term, unit, parse = spec
        try:
            value = parse(statement.value)
        except ValueError:
            self.reject(statement.file, statement.line, key, f"not a valid value: {statement.value!r}; "
                        "attribute left out")  # fmt: skip
            return
        attrs[term] = quantity(value, unit) if unit else prop(value)
