"""UN/CEFACT common codes (the NGSI-LD ``unitCode``, clause 4.5.2) with their conversion to SI; decision 0037.

The table is ``ontologies/units.csv``: QUDT units that carry a UN/CEFACT code, with QUDT's multiplier and offset
to SI (``si = (value + offset) * multiplier``) and quantity kinds. Some codes have several QUDT rows; where their
conversions disagree, the UN/CEFACT meaning of the code decides (``OVERRIDES``) or, when not settled, the code has
no conversion (:class:`NoConversion`), never a guessed one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Codes whose QUDT rows disagree, settled by the UN/CEFACT name of the code: code -> (name, multiplier to SI).
OVERRIDES: dict[str, tuple[str, float]] = {
    "35": ("millilitre per square centimetre second", 0.01),
    "BLL": ("barrel (US)", 0.1589873),
    "C26": ("millisecond", 0.001),
    "H39": ("megahertz kilometre", 1e9),
    "K43": ("horsepower (electric)", 746.0),
    "NX": ("part per thousand", 0.001),
    "P16": ("joule per hour", 1 / 3600),
    "TNE": ("tonne (metric ton)", 1000.0),
}
# SI units preferred when several coherent units share the quantity kinds (e.g. kelvin, not a "one" for kinds).
PREFERRED_SI = ("MTR", "KGM", "SEC", "AMP", "KEL", "MTK", "MTQ", "MTS", "MSK", "WTT", "JOU", "PAL", "VLT", "OHM",
                "HTZ", "C81", "MQS", "NEU", "KMQ", "C62")  # fmt: skip


class UnknownUnit(ValueError):
    """Not a UN/CEFACT common code of the table."""


class NoConversion(ValueError):
    """A known code without a (settled) conversion to SI: logarithmic units, or QUDT rows that disagree."""


@dataclass(frozen=True)
class Unit:
    code: str
    label: str
    symbol: str
    ucum: tuple[str, ...]
    multiplier: float | None  # to SI; None: no settled conversion
    offset: float
    kinds: frozenset[str]

    def to_si(self, value: float) -> float:
        if self.multiplier is None:
            raise NoConversion(f"unit {self.code} ({self.label}) has no settled conversion to SI")
        return (value + self.offset) * self.multiplier

    def from_si(self, value: float) -> float:
        if self.multiplier is None:
            raise NoConversion(f"unit {self.code} ({self.label}) has no settled conversion to SI")
        return value / self.multiplier - self.offset


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _merge(code: str, rows: list[dict[str, str]]) -> Unit:
    conversions = {(_float(r["conversion_multiplier_to_SI"]), _float(r["conversion_offset"]) or 0.0) for r in rows}
    first = rows[0]
    multiplier, offset = next(iter(conversions)) if len(conversions) == 1 else (None, 0.0)
    label = first["label"]
    if code in OVERRIDES:
        label, multiplier = OVERRIDES[code]
        offset = 0.0
    return Unit(
        code=code,
        label=label,
        symbol=first["symbol"],
        ucum=tuple(dict.fromkeys(u for r in rows for u in r["ucum"].split())),
        multiplier=multiplier,
        offset=offset,
        kinds=frozenset(k for r in rows for k in r["quantity_kinds"].split() if k != "Unknown"),
    )


@cache
def table() -> dict[str, Unit]:
    """UN/CEFACT code -> :class:`Unit`, from ontologies/units.csv."""
    text = resources.files("ontologies").joinpath("units.csv").read_text(encoding="utf-8")
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        grouped.setdefault(row["unece_code"].strip(), []).append(row)
    return {code: _merge(code, rows) for code, rows in grouped.items() if code}


def is_code(code: str) -> bool:
    return code in table()


def unit(code: str) -> Unit:
    try:
        return table()[code]
    except KeyError:
        raise UnknownUnit(f"{code!r} is not a UN/CEFACT common code") from None


def to_si(value: float, code: str) -> float:
    """``value`` in ``code`` expressed in the coherent SI unit (see :func:`si_code`)."""
    return unit(code).to_si(value)


@cache
def si_code(code: str) -> str:
    """The UN/CEFACT code of the coherent SI unit of ``code``'s quantity kind (``KMH`` -> ``MTS``, ``CEL`` -> ``KEL``).

    Among the units whose conversion is the identity, the one sharing most quantity kinds with ``code``; ties go to
    the base and common derived SI units of ``PREFERRED_SI``.
    """
    source = unit(code)
    if source.multiplier is None:
        raise NoConversion(f"unit {code} ({source.label}) has no settled conversion to SI")
    if source.multiplier == 1.0 and source.offset == 0.0:
        return code
    best: tuple[int, int, int, str] | None = None
    for candidate in table().values():
        if candidate.multiplier != 1.0 or candidate.offset != 0.0:
            continue
        shared = len(candidate.kinds & source.kinds)
        if not shared:
            continue
        rank = PREFERRED_SI.index(candidate.code) if candidate.code in PREFERRED_SI else len(PREFERRED_SI)
        key = (shared, -rank, -len(candidate.kinds - source.kinds), candidate.code)
        if best is None or key[:3] > best[:3]:
            best = key
    if best is None:
        raise NoConversion(f"no coherent SI unit shares a quantity kind with {code} ({source.label})")
    return best[3]


def normalise(value: float, code: str) -> tuple[float, str]:
    """``(value in SI, SI unit code)``: ``normalise(90, "KMH") == (25.0, "MTS")``."""
    return to_si(value, code), si_code(code)


@cache
def code_for(spelling: str) -> str:
    """The UN/CEFACT code of a unit spelt as a UN/CEFACT code, a UCUM code or a symbol (``km/h`` -> ``KMH``)."""
    if spelling in table():
        return spelling
    for by in ("ucum", "symbol"):
        for candidate in table().values():
            if (spelling in candidate.ucum) if by == "ucum" else spelling == candidate.symbol:
                return candidate.code
    raise UnknownUnit(f"{spelling!r} is neither a UN/CEFACT code, a UCUM code nor a unit symbol of the table")
