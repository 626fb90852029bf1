"""Shapes shared by the energy adapters (pandapower, CGMES): the EnergyCIM terminal pattern (docs/decisions/0063).

Equipment never points at a node directly: as in IEC CIM, each piece of conducting equipment has one Terminal per
side, and the Terminal points at the equipment (``ConductingEquipment``) and at the node it connects to
(``ConnectivityNode`` or ``TopologicalNode``). Relationship names are the CIM association role names, the terms
the Smart Data Models EnergyCIM schemas use.
"""

from __future__ import annotations

from adapters.attrs import entity, prop, rel
from adapters.base import Entity


def terminal(terminal_id: str, equipment_id: str, node_id: str | None, sequence: int, node_role: str) -> Entity:
    return entity(terminal_id, "Terminal", {
        "ConductingEquipment": rel(equipment_id),
        node_role: rel(node_id),
        "sequenceNumber": prop(sequence),
    })  # fmt: skip
