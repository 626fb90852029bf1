"""collation (clause 4.23, decision record 0016): which tags are accepted, and how strings then order."""

from __future__ import annotations

import pytest

from broker.core.errors import BadRequestData, OperationNotSupported
from broker.query.collation import ROOT, parse_collation

WORDS = ["zeta", "Émile", "beta", "alpha", "emile", "Alpha", "10", "9"]


def ordered(tag: str | None = None) -> list[str]:
    collation = ROOT if tag is None else parse_collation(tag)
    return sorted(WORDS, key=collation.key)


def test_root_collation_is_not_code_point_order() -> None:
    assert ordered() == ["10", "9", "alpha", "Alpha", "beta", "emile", "Émile", "zeta"]
    assert ordered("und-x-icu") == ordered("und") == ordered("en-GB") == ordered("de") == ordered()


def test_strengths() -> None:
    level1 = parse_collation("und-u-ks-level1")
    assert level1.key("Émile") == level1.key("emile") == level1.key("EMILE")
    level2 = parse_collation("en-u-ks-level2")
    assert level2.key("Emile") == level2.key("emile") != level2.key("émile")
    identic = parse_collation("und-u-ks-identic")
    assert identic.key("a") != identic.key("A") and ROOT.key("a") < ROOT.key("A")
    assert parse_collation("fr-u-co-standard").levels == 3


@pytest.mark.parametrize("tag", ["", "x", "en_US", "english language", "e1", "-", "und-", "a" * 101])
def test_malformed_tags_are_bad_request_data(tag: str) -> None:
    with pytest.raises(BadRequestData):
        parse_collation(tag)


@pytest.mark.parametrize("tag", ["sv", "de-u-co-phonebk", "es-u-co-trad", "en-u-kn-true", "ja", "de-1996"])
def test_tailorings_are_not_supported(tag: str) -> None:
    with pytest.raises(OperationNotSupported):
        parse_collation(tag)
