"""Cross-network links from configuration: Relationships between the entities of different networks, each with
its provenance (docs/decisions/0065).

SOURCE is a JSON file of rules::

    {"name": "water-power",
     "entities": ["energy.jsonl", "water.jsonl"],       # entity JSON lines (`agora import ... --dry-run`), or
     "broker": "http://127.0.0.1:1026", "tenant": null,  # read the entities from a broker (the project context)
     "rules": [
       {"id": "pumps-to-nearest-node", "method": "nearest", "relationship": "fedBy",
        "subjects": {"type": "Pump"}, "targets": {"type": "ConnectivityNode"}, "maxDistance": 5000},
       {"id": "treatment-plant", "method": "table", "relationship": "fedBy",
        "links": [{"subject": "urn:ngsi-ld:Pump:net3:10", "subjectType": "Pump",
                   "target": "urn:ngsi-ld:Substation:cigre:S1"}]}]}

``nearest`` links every subject with a location to the target whose location is nearest (great-circle distance
between representative points; a line's or area's representative point lies on it), within ``maxDistance``
metres when given; ``table`` states the links. Each emitted entity carries only the new Relationship (the batch
upsert merges it into the stored entity), whose ``provenance`` sub-property names the configuration, the rule,
the method and, for ``nearest``, the distance in metres. A later rule for the same subject and relationship wins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from shapely.geometry import shape

from adapters.base import Adapter, Entity, SourceError, split_source

EARTH_RADIUS_M = 6_371_008.8
PAGE = 1000


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in metres between two lon/lat points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def anchor(entity: Entity) -> tuple[float, float] | None:
    """A point of the entity's location (the point itself, or a point on its line or area)."""
    location = entity.get("location")
    value = location.get("value") if isinstance(location, dict) else None
    if not isinstance(value, dict):
        return None
    try:
        geometry = shape(value)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if geometry.is_empty:
        return None
    p = geometry.representative_point()
    return float(p.x), float(p.y)


class LinksAdapter(Adapter):
    name = "links"
    description = "cross-network Relationships (nearest or explicit table) from a JSON rules file, with provenance"

    def entities(self, source: str) -> Iterator[Entity]:
        path, _ = split_source(source)
        self.file = Path(path).name
        config = self._config(path)
        rules = config.get("rules")
        if not isinstance(rules, list) or not rules:
            raise SourceError(f"{self.file}: no rules")
        self._cache: dict[str, list[Entity]] = {}
        self._config_data = config
        links: dict[tuple[str, str], Entity] = {}
        for number, rule in enumerate(rules, start=1):
            for entity in self._rule(number, rule):
                name = next(k for k in entity if k not in ("id", "type"))
                links[(entity["id"], name)] = entity
        yield from links.values()

    # -- configuration and entities ------------------------------------------------------------------------------
    def _config(self, path: str) -> dict[str, Any]:
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        except ValueError as exc:
            raise SourceError(f"{path}: not JSON ({exc})") from exc
        if not isinstance(config, dict):
            raise SourceError(f"{path}: a rules file is a JSON object")
        self.base = Path(path).parent
        return config

    def _of_type(self, entity_type: str) -> list[Entity]:
        if entity_type not in self._cache:
            if self._config_data.get("broker"):
                self._cache[entity_type] = list(self._from_broker(entity_type))
            else:
                self._cache[entity_type] = [e for e in self._from_files() if e.get("type") == entity_type]
        return self._cache[entity_type]

    def _from_files(self) -> Iterator[Entity]:
        files = self._config_data.get("entities") or []
        if not files:
            raise SourceError(f"{self.file}: give the entities to link: \"entities\" (JSON lines files) or \"broker\"")
        for name in files:
            target = self.base / name
            try:
                with target.open(encoding="utf-8") as handle:
                    for number, line in enumerate(handle, start=1):
                        if line.strip():
                            yield self._line(target.name, number, line)
            except OSError as exc:
                raise SourceError(f"{target}: cannot be read ({exc})") from exc

    def _line(self, file: str, number: int, line: str) -> Entity:
        try:
            entity = json.loads(line)
        except ValueError as exc:
            raise SourceError(f"{file} line {number}: not a JSON entity ({exc})") from exc
        if not isinstance(entity, dict) or "id" not in entity or "type" not in entity:
            raise SourceError(f"{file} line {number}: an entity needs id and type")
        return entity

    def _from_broker(self, entity_type: str) -> Iterator[Entity]:
        from adapters.importer import LINK_REL, host_context, project_context

        broker = str(self._config_data["broker"])
        tenant = self._config_data.get("tenant")
        headers = {"NGSILD-Tenant": str(tenant)} if tenant else {}
        try:
            with httpx.Client(base_url=broker, timeout=30, headers=headers) as client:
                url = self._config_data.get("context") or host_context(client, project_context())
                link = {"Link": f"<{url}>; {LINK_REL}"}
                offset = 0
                while True:
                    response = client.get("/ngsi-ld/v1/entities", headers=link, params={
                        "type": entity_type, "limit": PAGE, "offset": offset, "pick": "id,type,location"})  # fmt: skip
                    if response.status_code != 200:
                        raise SourceError(f"{broker}: listing {entity_type} failed: HTTP {response.status_code}")
                    page = response.json()
                    yield from page
                    if len(page) < PAGE:
                        return
                    offset += PAGE
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot read the entities to link from {broker}: {exc}") from exc

    # -- rules ---------------------------------------------------------------------------------------------------
    def _rule(self, number: int, rule: Any) -> Iterator[Entity]:
        field = f"rules[{number - 1}]"
        if not isinstance(rule, dict) or not rule.get("relationship") or rule.get("method") not in ("nearest", "table"):
            self.reject(self.file, number, field, "a rule needs a relationship and a method (nearest or table)")
            return
        rule_id = str(rule.get("id") or f"rule-{number}")
        if rule["method"] == "table":
            yield from self._table(number, field, rule_id, rule)
        else:
            yield from self._nearest(number, field, rule_id, rule)

    def _link(self, subject: Entity, rule: dict[str, Any], rule_id: str, target: str,
              distance: float | None) -> Entity:  # fmt: skip
        provenance: dict[str, Any] = {"configuration": self._config_data.get("name") or self.file,
                                      "rule": rule_id, "method": rule["method"]}  # fmt: skip
        if distance is not None:
            provenance["distance"] = round(distance, 1)
        return {"id": subject["id"], "type": subject["type"], rule["relationship"]: {
            "type": "Relationship", "object": target,
            "provenance": {"type": "Property", "value": provenance}}}  # fmt: skip

    def _table(self, number: int, field: str, rule_id: str, rule: dict[str, Any]) -> Iterator[Entity]:
        for index, row in enumerate(rule.get("links") or []):
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("subject", "target")):
                self.reject(self.file, number, f"{field}.links[{index}]", "needs subject and target ids")
                continue
            parts = row["subject"].split(":")
            subject_type = row.get("subjectType") or (parts[2] if len(parts) > 3 else "")
            if not subject_type:
                self.reject(self.file, number, f"{field}.links[{index}]", "needs subjectType (id is not a urn:ngsi-ld)")
                continue
            yield self._link({"id": row["subject"], "type": subject_type}, rule, rule_id, row["target"], None)

    def _nearest(self, number: int, field: str, rule_id: str, rule: dict[str, Any]) -> Iterator[Entity]:
        subject_type = (rule.get("subjects") or {}).get("type")
        target_type = (rule.get("targets") or {}).get("type")
        if not subject_type or not target_type:
            self.reject(self.file, number, field, "nearest needs subjects.type and targets.type")
            return
        limit = rule.get("maxDistance")
        targets = [(t["id"], p) for t in self._of_type(target_type) if (p := anchor(t)) is not None]
        if not targets:
            self.reject(self.file, number, field, f"no {target_type} entity with a location to link to")
            return
        for subject in self._of_type(subject_type):
            here = anchor(subject)
            if here is None:
                continue
            target, best = min(((tid, distance_m(here, p)) for tid, p in targets), key=lambda t: t[1])
            if isinstance(limit, int | float) and best > limit:
                continue
            yield self._link(subject, rule, rule_id, target, best)
