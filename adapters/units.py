"""Units: native unit spellings to UN/CEFACT common codes, and one canonical unit per quantity kind.

Every adapter passes a quantity through :func:`normalise` so that the same physical quantity carries the same
unitCode and the same number whatever network or instrument it comes from (issue 8, docs/decisions/0062). The
multipliers to SI are those of the QUDT unit table (``conversion_multiplier_to_SI``; CC BY 4.0, attribution in
tests/fixtures/energy/README.md); only the units the project's sources use are listed.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownUnit(ValueError):
    """A unit spelling that is not in the table: the caller reports it with the file, row and field."""


@dataclass(frozen=True)
class Unit:
    code: str  # UN/CEFACT common code
    kind: str  # quantity kind
    factor: float  # to SI: si = value * factor + offset
    offset: float = 0.0


UNITS: dict[str, Unit] = {
    u.code: u
    for u in (
        Unit("MTR", "length", 1.0), Unit("MMT", "length", 0.001), Unit("CMT", "length", 0.01),
        Unit("KMT", "length", 1000.0), Unit("FOT", "length", 0.3048), Unit("INH", "length", 0.0254),
        Unit("MTQ", "volume", 1.0), Unit("LTR", "volume", 0.001), Unit("FTQ", "volume", 0.028316846592),
        Unit("GLL", "volume", 0.003785412),
        Unit("G51", "flow", 0.001), Unit("MQS", "flow", 1.0), Unit("MQH", "flow", 1 / 3600),
        Unit("L2", "flow", 0.001 / 60), Unit("G2", "flow", 0.0000630902), Unit("E17", "flow", 0.028316846592),
        Unit("WTT", "power", 1.0), Unit("KWT", "power", 1000.0), Unit("MAW", "power", 1e6),
        Unit("K43", "power", 745.6999),
        Unit("KVR", "reactivePower", 1000.0), Unit("MAR", "reactivePower", 1e6),
        Unit("KVA", "apparentPower", 1000.0), Unit("MVA", "apparentPower", 1e6),
        Unit("VLT", "voltage", 1.0), Unit("KVT", "voltage", 1000.0),
        Unit("AMP", "current", 1.0), Unit("B22", "current", 1000.0),
        Unit("OHM", "resistance", 1.0), Unit("SIE", "conductance", 1.0),
        Unit("PAL", "pressure", 1.0), Unit("KPA", "pressure", 1000.0), Unit("BAR", "pressure", 100000.0),
        Unit("MBR", "pressure", 100.0), Unit("PS", "pressure", 6894.75789),
        Unit("CEL", "temperature", 1.0, 273.15), Unit("KEL", "temperature", 1.0),
        Unit("FAH", "temperature", 5 / 9, 459.67 * 5 / 9),
        Unit("M1", "concentration", 0.001), Unit("GL", "concentration", 1.0),
        Unit("G42", "conductivity", 0.0001),
        Unit("SEC", "time", 1.0), Unit("MIN", "time", 60.0), Unit("HUR", "time", 3600.0),
        Unit("MTS", "speed", 1.0), Unit("HTZ", "frequency", 1.0), Unit("DD", "angle", 1.0),
        Unit("P1", "ratio", 0.01), Unit("C62", "ratio", 1.0),
    )
}  # fmt: skip

# The canonical unit of each kind: what a normalised quantity carries.
CANONICAL: dict[str, str] = {
    "length": "MTR", "volume": "MTQ", "flow": "G51", "power": "KWT", "reactivePower": "KVR",
    "apparentPower": "KVA", "voltage": "KVT", "current": "AMP", "resistance": "OHM", "conductance": "SIE",
    "pressure": "KPA",
    "temperature": "CEL", "concentration": "M1", "conductivity": "G42", "time": "SEC", "speed": "MTS",
    "frequency": "HTZ", "angle": "DD", "ratio": "P1",
}  # fmt: skip

# Native spellings (lower-cased, blanks removed) -> code. The codes themselves are accepted too.
ALIASES: dict[str, str] = {
    "m": "MTR", "mm": "MMT", "cm": "CMT", "km": "KMT", "ft": "FOT", "in": "INH", "m3": "MTQ", "l": "LTR",
    "ft3": "FTQ", "gal": "GLL",
    "l/s": "G51", "lps": "G51", "m3/s": "MQS", "cms": "MQS", "m3/h": "MQH", "cmh": "MQH", "l/min": "L2",
    "lpm": "L2", "gal/min": "G2", "gpm": "G2", "ft3/s": "E17", "cfs": "E17",
    "w": "WTT", "kw": "KWT", "mw": "MAW", "hp": "K43", "kvar": "KVR", "mvar": "MAR", "kva": "KVA", "mva": "MVA",
    "v": "VLT", "kv": "KVT", "a": "AMP", "ka": "B22", "ohm": "OHM",
    "pa": "PAL", "kpa": "KPA", "bar": "BAR", "mbar": "MBR", "psi": "PS",
    "degc": "CEL", "°c": "CEL", "k": "KEL", "degf": "FAH", "°f": "FAH",
    "mg/l": "M1", "g/l": "GL", "us/cm": "G42", "µs/cm": "G42", "us/cm@25c": "G42", "µs/cm@25c": "G42",
    "s": "SEC", "min": "MIN", "h": "HUR", "m/s": "MTS", "hz": "HTZ", "deg": "DD", "%": "P1",
}  # fmt: skip


def unit_code(spelling: str) -> str:
    """The UN/CEFACT code of a native unit spelling (``MW``, ``gal/min``, ``deg C``, ``KWT``)."""
    key = spelling.strip()
    if key.upper() in UNITS:
        return key.upper()
    compact = key.lower().replace(" ", "").replace("³", "3")
    code = ALIASES.get(compact)
    if code is None:
        raise UnknownUnit(f"unknown unit {spelling!r}")
    return code


def normalise(value: float, spelling: str) -> tuple[float, str]:
    """``value`` in the canonical unit of its kind, and that unit's code; rounded to 12 significant digits
    so that the same quantity from different native units compares equal."""
    unit = UNITS[unit_code(spelling)]
    target = UNITS[CANONICAL[unit.kind]]
    si = value * unit.factor + unit.offset
    converted = (si - target.offset) / target.factor
    if unit.offset or target.offset:  # an offset leaves an absolute error (1e-14 of 273.15 K) on values near zero
        converted = round(converted, 9)
    return float(f"{converted:.12g}"), target.code
