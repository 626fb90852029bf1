"""OGC WaterML 2.0 time series (an SOS 2.0 GetObservation response, or a WaterML collection) into
WaterQualityObserved entities and their history (docs/decisions/0064).

One WaterQualityObserved entity per feature of interest (``urn:ngsi-ld:WaterQualityObserved:<network>:<feature
id>``, named after its xlink:title when given); each ``om:OM_Observation`` gives the readings of one observed
property, in the unit of its default point metadata (``wml2:uom``, a UCUM code or a udunits URN). Observations are
read one at a time (lxml iterparse). WaterML carries no position for a feature referenced by URI: the entities
have no location unless another import gives them one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.attrs import entity, prop
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.telemetry import Reading, ReadingStore, utc
from adapters.water.observed import WATERML_PROPERTIES, reading

OM = "{http://www.opengis.net/om/2.0}"
WML2 = "{http://www.opengis.net/waterml/2.0}"
XLINK = "{http://www.w3.org/1999/xlink}"


def _unit(code: str | None) -> str | None:
    """``urn:ogc:def:uom:udunits:2:Cel`` -> ``Cel``; UCUM codes pass through."""
    return code.rsplit(":", 1)[-1] if code else None


class WaterMl2Adapter(Adapter):
    name = "waterml2"
    description = "OGC WaterML 2.0 time series (SOS GetObservation) into WaterQualityObserved temporal instances"
    entity_types = ("WaterQualityObserved",)

    def entities(self, source: str) -> Iterator[Entity]:
        path, _ = split_source(source)
        self.file = Path(path).name
        if self.network is None:
            self.network = Path(path).stem
        store = ReadingStore()
        try:
            for item in self._observations(path, store):
                store.add(item)
        except BaseException:
            store.close()
            raise
        yield from store.output()

    def _observations(self, path: str, store: ReadingStore) -> Iterator[Reading]:
        found = 0
        try:
            with self.meter.open(path) as stream:
                for _, element in etree.iterparse(stream, events=("end",), tag=f"{OM}OM_Observation"):
                    found += 1
                    yield from self._observation(element, store)
                    element.clear()
        except etree.XMLSyntaxError as exc:
            raise SourceError(f"{self.file}: not well-formed XML at line {exc.lineno}: {exc.msg}") from exc
        except OSError as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        if not found:
            raise SourceError(f"{self.file}: no om:OM_Observation: not a WaterML 2.0 document")

    def _observation(self, element: Any, store: ReadingStore) -> Iterator[Reading]:
        line = element.sourceline or 0
        feature = element.find(f"{OM}featureOfInterest")
        prop_ = element.find(f"{OM}observedProperty")
        feature_id = feature.get(f"{XLINK}href") if feature is not None else None
        property_uri = prop_.get(f"{XLINK}href") if prop_ is not None else None
        if not feature_id or not property_uri:
            self.reject(self.file, line, "om:featureOfInterest" if not feature_id else "om:observedProperty",
                        "missing xlink:href; observation left out")  # fmt: skip
            return
        entity_id = self.entity_id("WaterQualityObserved", feature_id)
        store.describe(entity(entity_id, "WaterQualityObserved", {"name": prop(feature.get(f"{XLINK}title"))}))
        observed = WATERML_PROPERTIES.get(property_uri.rstrip("/").rsplit("/", 1)[-1].lower())
        if observed is None:
            self.reject(self.file, line, "om:observedProperty", f"{property_uri} is not mapped; observation left out")
            return
        uom = element.find(f".//{WML2}DefaultTVPMeasurementMetadata/{WML2}uom")
        unit = _unit(uom.get("code") if uom is not None else None)
        for tvp in element.iter(f"{WML2}MeasurementTVP"):
            item = self._point(entity_id, observed, tvp, unit)
            if item is not None:
                yield item

    def _point(self, entity_id: str, observed: Any, tvp: Any, unit: str | None) -> Reading | None:
        line = tvp.sourceline or 0
        time, value = tvp.findtext(f"{WML2}time"), tvp.findtext(f"{WML2}value")
        try:
            number = float(value or "")
            when = utc(time or "")
        except ValueError:
            self.reject(self.file, line, "wml2:MeasurementTVP", f"not a time and a value: {time!r}, {value!r}")
            return None
        if not math.isfinite(number):
            self.reject(self.file, line, "wml2:value", f"not a number: {value!r}")
            return None
        return reading(entity_id, observed, when, number, unit)
