"""USGS NWIS instantaneous values (the IV service's JSON) into WaterQualityObserved stations and their history.

One WaterQualityObserved entity per site (``urn:ngsi-ld:WaterQualityObserved:<network>:USGS-<site>``) with its
name and WGS84 location (NAD83 and WGS84 differ by about a metre: taken as WGS84), the latest value of each
parameter, and the earlier values as temporal instances (docs/decisions/0064). Qualifiers ride on each instance
(``A`` approved: good; ``P`` provisional or ``e`` estimated: uncertain); a value equal to the series'
``noDataValue`` has nothing to keep and is reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.attrs import entity, point, prop, valid_wgs84
from adapters.base import Adapter, Entity, SourceError, split_source
from adapters.telemetry import Reading, ReadingStore, utc
from adapters.water.observed import NWIS_PARAMETERS, reading


def _quality(qualifiers: list[str]) -> str:
    if "A" in qualifiers:
        return "good"
    return "uncertain" if qualifiers else "good"


class UsgsNwisAdapter(Adapter):
    name = "usgs-nwis"
    description = "USGS NWIS instantaneous-values JSON into WaterQualityObserved stations and temporal instances"
    entity_types = ("WaterQualityObserved",)

    def entities(self, source: str) -> Iterator[Entity]:
        path, _ = split_source(source)
        self.file = Path(path).name
        if self.network is None:
            self.network = "usgs"
        series = self._series(path)
        store = ReadingStore()
        try:
            for index, ts in enumerate(series):
                for item in self._translate(index, ts, store):
                    store.add(item)
        except BaseException:
            store.close()
            raise
        yield from store.output()

    def _series(self, path: str) -> list[dict[str, Any]]:
        try:
            with self.meter.open_text(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}: not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{path}: cannot be read ({exc})") from exc
        series = document.get("value", {}).get("timeSeries") if isinstance(document, dict) else None
        if not isinstance(series, list):
            raise SourceError(f"{path}: no value.timeSeries: not an NWIS instantaneous-values response")
        return series

    def _translate(self, index: int, ts: dict[str, Any], store: ReadingStore) -> Iterator[Reading]:
        where = f"timeSeries[{index}]"
        try:
            site = ts["sourceInfo"]["siteCode"][0]
            code = ts["variable"]["variableCode"][0]["value"]
            unit = ts["variable"]["unit"]["unitCode"]
            no_data = ts["variable"].get("noDataValue")
        except (KeyError, IndexError, TypeError) as exc:
            self.reject(self.file, index + 1, where, f"missing {exc} in sourceInfo or variable; series left out")
            return
        entity_id = self.entity_id("WaterQualityObserved", f"{site.get('agencyCode', 'USGS')}-{site['value']}")
        store.describe(self._station(entity_id, ts["sourceInfo"], index))
        observed = NWIS_PARAMETERS.get(code)
        if observed is None:
            self.reject(self.file, index + 1, f"{where}.variable.variableCode", f"parameter {code} is not mapped; "
                        "series left out")  # fmt: skip
            return
        for block in ts.get("values", []):
            for number, point_ in enumerate(block.get("value", []), start=1):
                field = f"{where}.values.value[{number}]"
                item = self._reading(entity_id, observed, point_, unit, no_data, number, field)
                if item is not None:
                    yield item

    def _station(self, entity_id: str, info: dict[str, Any], index: int) -> Entity:
        geo = info.get("geoLocation", {}).get("geogLocation", {})
        lon, lat = geo.get("longitude"), geo.get("latitude")
        location = None
        if isinstance(lon, int | float) and isinstance(lat, int | float) and valid_wgs84(lon, lat):
            location = point(lon, lat)
        else:
            self.reject(self.file, index + 1, f"timeSeries[{index}].sourceInfo.geoLocation", "no WGS84 position")
        return entity(entity_id, "WaterQualityObserved", {"name": prop(info.get("siteName")), "location": location})

    def _reading(self, entity_id: str, observed: Any, point_: dict[str, Any], unit: str, no_data: Any,
                 number: int, field: str) -> Reading | None:  # fmt: skip
        try:
            value = float(point_["value"])
            when = utc(point_["dateTime"])
        except (KeyError, TypeError, ValueError) as exc:
            self.reject(self.file, number, field, f"not a value with a dateTime ({exc})")
            return None
        if no_data is not None and value == float(no_data):
            self.reject(self.file, number, field, f"the no-data value {no_data}: nothing to keep")
            return None
        qualifiers = [str(q) for q in point_.get("qualifiers", [])]
        return reading(entity_id, observed, when, value, unit, _quality(qualifiers),
                       (("qualifiers", qualifiers),) if qualifiers else ())  # fmt: skip
