"""Units: native unit spellings to UN/CEFACT common codes, and one canonical unit per quantity kind.

Every adapter passes a quantity through :func:`normalise` so that the same physical quantity carries the same
unitCode and the same number whatever network or instrument it comes from (issue 8, docs/decisions/0062). The
conversions to SI are those of the project's unit table (``ontologies.units``, QUDT-derived, decision 0037); this
module adds the native spellings the sources use and the canonical unit of each quantity kind.
"""

from __future__ import annotations

from ontologies import units as table


class UnknownUnit(ValueError):
    """A unit spelling that is not in the table: the caller reports it with the file, row and field."""


# The UN/CEFACT codes the adapters meet, by quantity kind; their conversions to SI are those of the project's unit
# table (ontologies.units, decision 0037).
KINDS: dict[str, tuple[str, ...]] = {
    "length": ("MTR", "MMT", "CMT", "KMT", "FOT", "INH"),
    "volume": ("MTQ", "LTR", "FTQ", "GLL"),
    "flow": ("G51", "MQS", "MQH", "L2", "G2", "E17"),
    "power": ("WTT", "KWT", "MAW", "K43"),
    "energy": ("WHR", "KWH", "MWH", "JOU"),  # a customer meter's register (issue 19)
    "reactivePower": ("KVR", "MAR"),
    "apparentPower": ("KVA", "MVA"),
    "voltage": ("VLT", "KVT"),
    "current": ("AMP", "B22"),
    "resistance": ("OHM",),
    "conductance": ("SIE",),
    "pressure": ("PAL", "KPA", "BAR", "MBR", "PS"),
    "temperature": ("CEL", "KEL", "FAH"),
    "concentration": ("M1", "GL"),
    "conductivity": ("G42",),
    "time": ("SEC", "MIN", "HUR"),
    "speed": ("MTS",),
    "frequency": ("HTZ",),
    "angle": ("DD",),
    "ratio": ("P1", "C62"),
}
UNITS: dict[str, str] = {code: kind for kind, codes in KINDS.items() for code in codes}  # code -> quantity kind

# The canonical unit of each kind: what a normalised quantity carries.
CANONICAL: dict[str, str] = {
    "length": "MTR", "volume": "MTQ", "flow": "G51", "power": "KWT", "energy": "KWH", "reactivePower": "KVR",
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
    "wh": "WHR", "kwh": "KWH", "mwh": "MWH", "j": "JOU",
    "v": "VLT", "kv": "KVT", "a": "AMP", "ka": "B22", "ohm": "OHM",
    "pa": "PAL", "kpa": "KPA", "bar": "BAR", "mbar": "MBR", "psi": "PS",
    "degc": "CEL", "°c": "CEL", "cel": "CEL", "k": "KEL", "degf": "FAH", "°f": "FAH", "[degf]": "FAH",
    "ft3/sec": "E17",
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
    code = unit_code(spelling)
    source, target = table.unit(code), table.unit(CANONICAL[UNITS[code]])
    converted = target.from_si(source.to_si(value))
    if source.offset or target.offset:  # an offset leaves an absolute error (1e-14 of 273.15 K) on values near zero
        converted = round(converted, 9)
    return float(f"{converted:.12g}"), target.code
