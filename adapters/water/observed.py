"""Water observations (USGS NWIS, WQX, WaterML 2.0) onto WaterQualityObserved attributes (docs/decisions/0064).

Each source names what it measured its own way (an NWIS parameter code, a WQX characteristic name, a WaterML
observed-property URI); all of them land on the same attribute names, the WaterQuality Smart Data Models terms
where one exists. A measured property outside these tables is reported once, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.telemetry import Reading
from adapters.units import UnknownUnit, unit_code


@dataclass(frozen=True)
class Observed:
    attribute: str
    dimensionless: bool = False  # pH: the unit the source gives ("standard units") is no unit at all


# USGS NWIS parameter codes (https://help.waterdata.usgs.gov/codes-and-parameters/parameters)
NWIS_PARAMETERS = {
    "00060": Observed("flow"), "00061": Observed("flow"), "00065": Observed("gaugeHeight"),
    "00010": Observed("temperature"), "00095": Observed("conductivity"), "00300": Observed("O2"),
    "00400": Observed("pH", True), "63680": Observed("turbidity"), "00045": Observed("precipitation"),
}  # fmt: skip

# WQX characteristic names
WQX_CHARACTERISTICS = {
    "specific conductance": Observed("conductivity"), "ph": Observed("pH", True),
    "dissolved oxygen (do)": Observed("O2"), "temperature, water": Observed("temperature"),
    "chloride": Observed("Cl-"), "nitrate": Observed("NO3"), "nitrite": Observed("NO2"),
    "orthophosphate": Observed("PO4"), "ammonia and ammonium": Observed("NH4"), "turbidity": Observed("turbidity"),
    "stream flow, instantaneous": Observed("flow"), "escherichia coli": Observed("escherichiaColi"),
}  # fmt: skip

# WaterML 2.0 / SOS observed properties, by the last segment of their URI (lower-cased)
WATERML_PROPERTIES = {
    "sea_water_temperature": Observed("temperature"), "water_temperature": Observed("temperature"),
    "watertemperature": Observed("temperature"), "air_temperature": Observed("airTemperature"),
    "airtemperature": Observed("airTemperature"), "discharge": Observed("flow"), "ph": Observed("pH", True),
}  # fmt: skip


def known_unit(spelling: str | None) -> str | None:
    """The spelling when the unit table knows it; None for a unit without a UN/CEFACT code (NTU, MPN/100mL)."""
    if not spelling:
        return None
    try:
        unit_code(spelling)
    except UnknownUnit:
        return None
    return spelling


def reading(entity_id: str, observed: Observed, when: str, value: float, unit: str | None,
            quality: str | None = None, extra: tuple[tuple[str, object], ...] = ()) -> Reading:  # fmt: skip
    """A WaterQualityObserved reading; a unit without a code is kept as ``unitText`` rather than dropped."""
    code = None if observed.dimensionless else known_unit(unit)
    if unit and code is None and not observed.dimensionless:
        extra = (*extra, ("unitText", unit))
    return Reading(entity_id, "WaterQualityObserved", observed.attribute, when, value, code, quality, None, extra)
