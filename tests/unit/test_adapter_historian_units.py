"""The unit property test of issue 8: one physical quantity through different native units normalises to one
value with one UN/CEFACT code, whichever network or instrument it comes from."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.units import CANONICAL, UNITS, UnknownUnit, normalise, unit_code

# quantity kind -> native spellings of it, and how to express a canonical value v in each
SAME_QUANTITY = {
    "flow": [("L/s", lambda v: v), ("m3/h", lambda v: v * 3.6), ("gal/min", lambda v: v / 0.0630902),
             ("G51", lambda v: v)],
    "power": [("W", lambda v: v * 1000), ("kW", lambda v: v), ("MW", lambda v: v / 1000)],
    "temperature": [("degC", lambda v: v), ("degF", lambda v: v * 9 / 5 + 32), ("deg C", lambda v: v),
                    ("K", lambda v: v + 273.15)],
    "pressure": [("kPa", lambda v: v), ("bar", lambda v: v / 100), ("psi", lambda v: v / 6.89475789)],
    "length": [("m", lambda v: v), ("ft", lambda v: v / 0.3048), ("mm", lambda v: v * 1000)],
}  # fmt: skip

# canonical values with at most 6 significant digits: the rounding of the normalised value is never on an edge
values = st.builds(lambda n, k: n / 10**k, st.integers(-999_999, 999_999), st.integers(0, 4))


@pytest.mark.parametrize("kind", sorted(SAME_QUANTITY))
@given(value=values)
def test_one_quantity_in_every_native_unit_normalises_to_one_value(kind: str, value: float) -> None:
    results = {normalise(express(value), spelling) for spelling, express in SAME_QUANTITY[kind]}
    assert results == {(value + 0.0, CANONICAL[kind])}


def test_the_issue_examples() -> None:
    assert normalise(1, "L/s") == normalise(3.6, "m3/h") == (1.0, "G51")
    assert normalise(15.850323, "gal/min")[0] == pytest.approx(1.0, rel=1e-6)
    assert normalise(1_000_000, "W") == normalise(1000, "kW") == normalise(1, "MW") == (1000.0, "KWT")
    assert normalise(212, "degF") == normalise(100, "degC") == (100.0, "CEL")
    assert normalise(100, "kPa") == normalise(1, "bar") == (100.0, "KPA")
    assert normalise(14.503774, "psi")[0] == pytest.approx(100.0, rel=1e-6)


def test_every_code_has_a_canonical_unit_and_codes_are_accepted_as_spellings() -> None:
    for code, kind in UNITS.items():
        assert CANONICAL[kind] in UNITS
        assert unit_code(code) == code
    with pytest.raises(UnknownUnit, match="unknown unit 'NTU'"):
        normalise(3, "NTU")  # turbidity: no UN/CEFACT code
