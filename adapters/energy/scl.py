"""IEC 61850-6 SCL (.scd, .icd, .cid, .ssd) into entities of the substation and its IEDs (docs/decisions/0362).

The substation section: ``SclSubstation`` > ``SclVoltageLevel`` > ``SclBay`` > ``SclConductingEquipment`` and
``SclConnectivityNode`` (each ``isPartOf`` its container, equipment ``connectedTo`` the connectivity nodes of its
terminals). The IED section: ``IED`` > ``AccessPoint`` (with its address from the Communication section) >
``LogicalDevice`` > ``LogicalNode`` (LN0 and LN) > ``DataObject`` (the DOs of the node's LNodeType, with their
CDC). An LNode of the substation section ``allocatedTo``-links the logical node it names to its bay, equipment or
voltage level.

``?grid=a.jsonl,b.jsonl`` names files of entities of the same grid (``agora import cgmes ... --dry-run`` or
``pandapower`` output): each SCL substation, voltage level, equipment and connectivity node whose name matches an
entity of the corresponding CIM type gets a ``correspondsTo`` Relationship to it (one instance per grid network).

XML from outside is parsed with defusedxml: a document type with entity declarations (billion laughs, external
entities) is refused, not expanded. An SCL file is a few MB at most and is read whole.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from adapters.attrs import Attr, entity, prop, quantity, rel
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.progress import ByteMeter

SCL = "{http://www.iec.ch/61850/2003/SCL}"
# SCL ConductingEquipment type -> the CIM entity types (CGMES, pandapower adapters) it may correspond to
EQUIPMENT_CIM = {
    "CBR": ("Switch",), "DIS": ("Switch",), "CTR": (), "VTR": (), "GEN": ("GeneratingUnit", "SynchronousMachine"),
    "CAP": (), "REA": (), "CON": (), "MOT": (), "EFN": (), "PSH": (), "BAT": (), "BSH": (), "CAB": ("ACLineSegment",),
    "GIL": ("ACLineSegment",), "LIN": ("ACLineSegment", "Line"), "RES": (), "RRC": (), "SAR": (), "TCF": (),
    "TCR": (), "IFL": ("ExternalNetworkInjection", "EnergySource"), "FAN": (), "SCR": (), "SMC": (),
    "PMP": (), "AXN": (),
}  # fmt: skip
CIM_TYPES = {
    "SclSubstation": ("Substation",), "SclVoltageLevel": ("VoltageLevel",),
    "SclConnectivityNode": ("ConnectivityNode", "TopologicalNode"),
}  # fmt: skip
# elements of the substation section this adapter does not translate: counted in a note, never dropped silently
UNTRANSLATED = ("PowerTransformer", "GeneralEquipment", "Function", "SubFunction", "Line", "Process",
                "TransformerWinding", "SubEquipment", "EqFunction", "EqSubFunction")  # fmt: skip
MULTIPLIERS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}


class _Lines(TreeBuilder):
    """A tree builder that notes the source line of every element (ElementTree itself keeps none)."""

    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None
        self.lines: dict[int, int] = {}

    def start(self, tag: Any, attrs: Any) -> Element:
        element = super().start(tag, attrs)
        self.lines[id(element)] = self.parser.parser.CurrentLineNumber
        return element


def parse_scl(path: str, meter: ByteMeter | None = None) -> tuple[Element, dict[int, int]]:
    """The SCL root element and the line of every element; a file that is not safe, well-formed SCL is refused.
    ``meter`` counts the bytes read."""
    builder = _Lines()
    parser = DefusedXMLParser(target=builder)
    builder.parser = parser
    try:
        with (meter or ByteMeter()).open(path) as handle:
            while chunk := handle.read(65536):
                parser.feed(chunk)
        root = parser.close()
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc})") from exc
    except DefusedXmlException as exc:
        raise SourceError(f"{Path(path).name}: refused, the XML declares entities or a DTD ({exc!r})") from exc
    except ParseError as exc:
        raise SourceError(f"{Path(path).name}: not well-formed XML ({exc})") from exc
    if root.tag != f"{SCL}SCL":
        raise SourceError(f"{Path(path).name}: the root element is {root.tag}, not SCL in the IEC 61850 namespace")
    return root, builder.lines


def ln_name(element: Element) -> str:
    """``prefix + lnClass + inst`` (IEC 61850-7-2 LN name); LN0 is always LLN0."""
    if element.tag == f"{SCL}LN0":
        return "LLN0"
    return element.get("prefix", "") + element.get("lnClass", "") + element.get("inst", "")


class SclAdapter(Adapter):
    name = "scl"
    description = "IEC 61850 SCL (.scd/.icd/.cid): substation, bays, equipment, IEDs, logical nodes (?grid=a.jsonl)"
    source_help = (
        "an SCL file (.scd, .icd, .cid, .ssd); ?grid=a.jsonl,b.jsonl: entity JSON lines of the same grid "
        "(`agora import cgmes|pandapower ... --dry-run`) whose names give correspondsTo Relationships"
    )
    entity_types = ("SclSubstation", "SclVoltageLevel", "SclBay", "SclConductingEquipment", "SclConnectivityNode",
                    "IED", "AccessPoint", "LogicalDevice", "LogicalNode", "DataObject")  # fmt: skip

    def entities(self, source: str) -> Iterator[Entity]:
        path, options = split_source(source)
        self.file = Path(path).name
        if self.network is None:
            self.network = Path(path).stem
        self.root, self.lines = parse_scl(path, self.meter)
        self.grid = self._grid(path, options.get("grid", ""))
        self.allocations = self._allocations()
        self.addresses = self._addresses()
        self.templates = {t.get("id", ""): t for t in self.root.iter(f"{SCL}LNodeType")}
        self.cdcs = {t.get("id", ""): t.get("cdc", "") for t in self.root.iter(f"{SCL}DOType")}
        for substation in self.root.findall(f"{SCL}Substation"):
            yield from self._substation(substation)
        for ied in self.root.findall(f"{SCL}IED"):
            yield from self._ied(ied)
        self._note_untranslated()

    # -- helpers -------------------------------------------------------------------------------------------------
    def _line(self, element: Element) -> int:
        return self.lines.get(id(element), 0)

    def _name(self, element: Element, attribute: str = "name") -> str | None:
        value = element.get(attribute)
        if not value:
            tag = element.tag.removeprefix(SCL)
            self.reject(self.file, self._line(element), f"{tag}@{attribute}", "required attribute is missing")
            return None
        return value

    def _common(self, element: Element, name: str) -> dict[str, Attr | None]:
        return {"name": prop(name), "description": prop(element.get("desc") or None)}

    def _grid(self, path: str, option: str) -> dict[tuple[str, str], list[str]]:
        """(CIM type, name) -> ids of the grid entities given with ``?grid=``."""
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name in filter(None, option.split(",")):
            target = Path(name) if Path(name).is_absolute() else Path(path).parent / name
            try:
                lines = target.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise SourceError(f"grid file {name}: cannot be read ({exc})") from exc
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    grid_entity = json.loads(line)
                    label = grid_entity.get("name", {}).get("value")
                except (ValueError, AttributeError) as exc:
                    raise SourceError(f"grid file {name} line {number}: not an entity in normalized form") from exc
                if isinstance(label, str):
                    found[(str(grid_entity.get("type")), label)].append(str(grid_entity["id"]))
        return found

    def _corresponds(self, cim_types: tuple[str, ...], name: str) -> list[Attr] | None:
        """``correspondsTo`` instances, one per grid network (its datasetId names the network of the id)."""
        targets = sorted({eid for t in cim_types for eid in self.grid.get((t, name), [])})
        if not targets:
            return None
        return [{"type": "Relationship", "object": eid, "datasetId": f"urn:ngsi-ld:Dataset:grid:{eid.split(':')[3]}"}
                for eid in targets]  # fmt: skip

    def _with_links(self, built: Entity, cim_types: tuple[str, ...], name: str) -> Entity:
        links = self._corresponds(cim_types, name)
        if links:
            built["correspondsTo"] = links if len(links) > 1 else links[0]
        return built

    # -- substation section --------------------------------------------------------------------------------------
    def _substation(self, element: Element) -> Iterator[Entity]:
        name = self._name(element)
        if name is None:
            return
        eid = self.entity_id("SclSubstation", name)
        yield self._with_links(entity(eid, "SclSubstation", self._common(element, name)), CIM_TYPES["SclSubstation"],
                               name)  # fmt: skip
        for level in element.findall(f"{SCL}VoltageLevel"):
            yield from self._voltage_level(level, name, eid)

    def _voltage(self, level: Element) -> Attr | None:
        voltage = level.find(f"{SCL}Voltage")
        if voltage is None or not (voltage.text or "").strip():
            return None
        try:
            value = float((voltage.text or "").strip()) * MULTIPLIERS[voltage.get("multiplier", "")]
        except (ValueError, KeyError):
            self.reject(self.file, self._line(voltage), "Voltage", f"not a voltage: {voltage.text!r} "
                        f"multiplier {voltage.get('multiplier')!r}")  # fmt: skip
            return None
        if voltage.get("unit", "V") != "V":
            self.reject(self.file, self._line(voltage), "Voltage@unit", f"not V: {voltage.get('unit')!r}")
            return None
        return quantity(value / 1000, "KVT")

    def _voltage_level(self, element: Element, substation: str, parent: str) -> Iterator[Entity]:
        name = self._name(element)
        if name is None:
            return
        eid = self.entity_id("SclVoltageLevel", substation, name)
        frequency = element.get("nomFreq")
        phases = element.get("numPhases")
        attrs = {
            **self._common(element, name),
            "nominalVoltage": self._voltage(element),
            "nominalFrequency": quantity(float(frequency), "HTZ") if frequency else None,
            "numberOfPhases": prop(int(phases)) if phases and phases.isdigit() else None,
            "isPartOf": rel(parent),
        }
        yield self._with_links(entity(eid, "SclVoltageLevel", attrs), CIM_TYPES["SclVoltageLevel"], name)
        for bay in element.findall(f"{SCL}Bay"):
            yield from self._bay(bay, (substation, name), eid)

    def _bay(self, element: Element, path: tuple[str, str], parent: str) -> Iterator[Entity]:
        name = self._name(element)
        if name is None:
            return
        eid = self.entity_id("SclBay", *path, name)
        yield entity(eid, "SclBay", {**self._common(element, name), "isPartOf": rel(parent)})
        nodes: dict[str, str] = {}
        for node in element.findall(f"{SCL}ConnectivityNode"):
            node_name = self._name(node)
            if node_name is None:
                continue
            node_id = self.entity_id("SclConnectivityNode", *path, name, node_name)
            nodes[node.get("pathName") or "/".join((*path, name, node_name))] = node_id
            attrs = {**self._common(node, node_name), "pathName": prop(node.get("pathName")), "isPartOf": rel(eid)}
            yield self._with_links(entity(node_id, "SclConnectivityNode", attrs), CIM_TYPES["SclConnectivityNode"],
                                   node_name)  # fmt: skip
        for equipment in element.findall(f"{SCL}ConductingEquipment"):
            built = self._equipment(equipment, (*path, name), eid)
            if built is not None:
                yield built

    def _equipment(self, element: Element, path: tuple[str, ...], parent: str) -> Entity | None:
        name = self._name(element)
        kind = self._name(element, "type")
        if name is None or kind is None:
            return None
        if kind not in EQUIPMENT_CIM and not kind.startswith("E"):  # IEC 61850-6: E... are user-defined types
            self.reject(self.file, self._line(element), "ConductingEquipment@type", f"not an SCL equipment type: "
                        f"{kind!r}")  # fmt: skip
            return None
        eid = self.entity_id("SclConductingEquipment", *path, name)
        built = entity(eid, "SclConductingEquipment", {
            **self._common(element, name), "equipmentType": prop(kind), "isPartOf": rel(parent),
            "virtual": prop(element.get("virtual") == "true") if element.get("virtual") else None,
        })  # fmt: skip
        terminals = self._terminals(element)
        if any(t.get("cNodeName") == "grounded" for t in element.findall(f"{SCL}Terminal")):
            built["grounded"] = prop(True)  # IEC 61850-6: a terminal to cNodeName "grounded" is earthed, no node
        if terminals:
            built["connectedTo"] = terminals if len(terminals) > 1 else terminals[0]
        return self._with_links(built, EQUIPMENT_CIM.get(kind, ()), name)

    def _terminals(self, element: Element) -> list[Attr]:
        """One ``connectedTo`` instance per terminal (datasetId by terminal name) but the grounded ones."""
        found: list[Attr] = []
        for number, terminal in enumerate(element.findall(f"{SCL}Terminal"), start=1):
            parts = [terminal.get(k, "") for k in ("substationName", "voltageLevelName", "bayName", "cNodeName")]
            if not all(parts):
                self.reject(self.file, self._line(terminal), "Terminal", "needs substationName, voltageLevelName, "
                            "bayName and cNodeName")  # fmt: skip
                continue
            if parts[3] == "grounded":
                continue
            label = terminal.get("name") or f"T{number}"
            found.append({"type": "Relationship", "object": self.entity_id("SclConnectivityNode", *parts),
                          "datasetId": f"urn:ngsi-ld:Dataset:terminal:{label}"})  # fmt: skip
        return found

    def _allocations(self) -> dict[tuple[str, str, str], str]:
        """(IED, LD inst, LN name) -> the id of the substation element whose LNode names it (IEC 61850-6 9.3.2)."""
        found: dict[tuple[str, str, str], str] = {}
        for substation in self.root.findall(f"{SCL}Substation"):
            path: list[tuple[str, Element]] = [("SclSubstation", substation)]
            self._walk_lnodes(substation, path, found)
        return found

    def _walk_lnodes(self, element: Element, path: list[tuple[str, Element]],
                     found: dict[tuple[str, str, str], str]) -> None:  # fmt: skip
        names = [e.get("name", "") for _, e in path]
        owner = self.entity_id(path[-1][0], *names)
        for lnode in element.findall(f"{SCL}LNode"):
            ied = lnode.get("iedName", "None")
            if ied != "None":
                name = lnode.get("prefix", "") + lnode.get("lnClass", "") + lnode.get("lnInst", "")
                found[(ied, lnode.get("ldInst", ""), "LLN0" if lnode.get("lnClass") == "LLN0" else name)] = owner
        children = {"VoltageLevel": "SclVoltageLevel", "Bay": "SclBay", "ConductingEquipment": "SclConductingEquipment"}
        for tag, entity_type in children.items():
            for child in element.findall(f"{SCL}{tag}"):
                self._walk_lnodes(child, [*path, (entity_type, child)], found)

    # -- IED section ---------------------------------------------------------------------------------------------
    def _addresses(self) -> dict[tuple[str, str], dict[str, str]]:
        """(IED, access point) -> the P elements of its ConnectedAP Address, and its subnetwork."""
        found: dict[tuple[str, str], dict[str, str]] = {}
        for subnetwork in self.root.iter(f"{SCL}SubNetwork"):
            for connected in subnetwork.findall(f"{SCL}ConnectedAP"):
                address = {p.get("type", ""): (p.text or "").strip() for p in connected.iter(f"{SCL}P")
                           if p.get("type")}  # fmt: skip
                address["subNetwork"] = subnetwork.get("name", "")
                found[(connected.get("iedName", ""), connected.get("apName", ""))] = address
        return found

    def _ied(self, element: Element) -> Iterator[Entity]:
        name = self._name(element)
        if name is None:
            return
        eid = self.entity_id("IED", name)
        yield entity(eid, "IED", {
            **self._common(element, name), "manufacturerName": prop(element.get("manufacturer")),
            "modelName": prop(element.get("type")), "configVersion": prop(element.get("configVersion")),
        })  # fmt: skip
        for access_point in element.findall(f"{SCL}AccessPoint"):
            yield from self._access_point(access_point, name, eid)

    def _access_point(self, element: Element, ied: str, parent: str) -> Iterator[Entity]:
        name = self._name(element)
        if name is None:
            return
        eid = self.entity_id("AccessPoint", ied, name)
        address = self.addresses.get((ied, name), {})
        yield entity(eid, "AccessPoint", {
            **self._common(element, name), "isPartOf": rel(parent),
            "ipAddress": prop(address.get("IP")), "subNetwork": prop(address.get("subNetwork")),
            "communicationAddress": prop({k: v for k, v in address.items() if k != "subNetwork"} or None),
        })  # fmt: skip
        for device in element.iter(f"{SCL}LDevice"):
            yield from self._logical_device(device, ied, eid)

    def _logical_device(self, element: Element, ied: str, parent: str) -> Iterator[Entity]:
        inst = self._name(element, "inst")
        if inst is None:
            return
        eid = self.entity_id("LogicalDevice", ied, inst)
        yield entity(eid, "LogicalDevice", {
            "name": prop(element.get("ldName") or ied + inst), "description": prop(element.get("desc") or None),
            "ldInst": prop(inst), "isPartOf": rel(parent),
        })  # fmt: skip
        for node in [*element.findall(f"{SCL}LN0"), *element.findall(f"{SCL}LN")]:
            yield from self._logical_node(node, (ied, inst), eid)

    def _logical_node(self, element: Element, path: tuple[str, str], parent: str) -> Iterator[Entity]:
        lnclass, lntype = self._name(element, "lnClass"), self._name(element, "lnType")
        if lnclass is None or lntype is None:
            return
        name = ln_name(element)
        eid = self.entity_id("LogicalNode", *path, name)
        owner = self.allocations.get((*path, name))
        yield entity(eid, "LogicalNode", {
            **self._common(element, name), "lnClass": prop(lnclass), "lnPrefix": prop(element.get("prefix") or None),
            "lnInst": prop(element.get("inst") or None), "lnType": prop(lntype), "isPartOf": rel(parent),
            "allocatedTo": rel(owner),
        })  # fmt: skip
        template = self.templates.get(lntype)
        if template is None:
            self.reject(self.file, self._line(element), "LN@lnType", f"no LNodeType {lntype!r} in DataTypeTemplates")
            return
        for data_object in template.findall(f"{SCL}DO"):
            do_name = self._name(data_object)
            if do_name is None:
                continue
            yield entity(self.entity_id("DataObject", *path, name, do_name), "DataObject", {
                **self._common(data_object, do_name), "cdc": prop(self.cdcs.get(data_object.get("type", "")) or None),
                "doType": prop(data_object.get("type")), "isPartOf": rel(eid),
            })  # fmt: skip

    def _note_untranslated(self) -> None:
        counts: Counter[str] = Counter()
        for substation in self.root.findall(f"{SCL}Substation"):
            for tag in UNTRANSLATED:
                counts[tag] += sum(1 for _ in substation.iter(f"{SCL}{tag}"))
        listed = ", ".join(f"{tag} ({n})" for tag, n in sorted(counts.items()) if n)
        if listed:
            self.notes.append(f"{self.file}: substation elements not translated: {listed}")
