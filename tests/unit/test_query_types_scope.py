"""Entity type selection (clause 4.17) and scope queries (clause 4.19)."""

from __future__ import annotations

import pytest

from broker.core.errors import BadRequestData, TooComplexQuery
from broker.core.model import DEFAULT_VOCAB as V
from broker.ld.termmap import TermMap, core_termmap
from broker.query.scope import (
    ScopeAnd,
    ScopeOr,
    ScopePattern,
    format_scope_query,
    matches_scope,
    parse_scope_query,
    scope_matches,
)
from broker.query.types import AllTypes, TypeAnd, TypeName, TypeOr, format_types, matches_types, parse_types


@pytest.fixture(scope="module")
def tm() -> TermMap:
    return core_termmap()


def test_type_asts(tm: TermMap) -> None:
    a, b, c = (TypeName(V + n) for n in "ABC")
    assert parse_types("A", tm) == a
    assert parse_types("A,B", tm) == TypeOr((a, b))
    assert parse_types("A|B", tm) == TypeOr((a, b))
    assert parse_types("(A;B)", tm) == TypeAnd((a, b))
    assert parse_types("(A;B)|C", tm) == TypeOr((TypeAnd((a, b)), c))
    assert parse_types("A;(B,C)", tm) == TypeAnd((a, TypeOr((b, c))))
    assert parse_types("*", tm) == AllTypes()
    assert parse_types("ngsi-ld:X", tm) == TypeName("https://uri.etsi.org/ngsi-ld/X")
    assert parse_types("https://example.org/T", tm) == TypeName("https://example.org/T")


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("Car", True),
        ("Bus", False),
        ("Bus,Car", True),
        ("Bus|Car", True),
        ("(Car;Vehicle)", True),
        ("(Car;Bus)", False),
        ("(Car;Bus)|Vehicle", True),
        ("(Car;(Bus|Vehicle))", True),
        ("*", True),
    ],
)
def test_type_matching(tm: TermMap, selection: str, expected: bool) -> None:
    assert matches_types([V + "Car", V + "Vehicle"], parse_types(selection, tm)) is expected


@pytest.mark.parametrize(
    ("selection", "fragment"),
    [
        ("", "empty"),
        ("A,", "expected an entity type name"),
        (",A", "expected an entity type name"),
        ("(A;B", "expected ')'"),
        ("A)", "unbalanced ')'"),
        ("A,*", "'*'"),
        ("A B", "unexpected character"),
        ("type", "keyword"),
    ],
)
def test_type_errors(tm: TermMap, selection: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_types(selection, tm)
    assert fragment in info.value.detail


def test_type_limits(tm: TermMap) -> None:
    with pytest.raises(TooComplexQuery):
        parse_types(",".join(["A"] * 101), tm)
    with pytest.raises(TooComplexQuery):
        parse_types("(" * 21 + "A" + ")" * 21, tm)


def test_type_format_round_trip(tm: TermMap) -> None:
    for text in ["A", "A,B", "(A;B)", "(A;(B,C))|D"]:
        parsed = parse_types(text, tm)
        assert parse_types(format_types(parsed, tm), tm) == parsed


def test_scope_asts() -> None:
    assert parse_scope_query("/A/B") == ScopePattern(("A", "B"))
    assert parse_scope_query("/A/#") == ScopePattern(("A", "#"))
    assert parse_scope_query("/A/+/C;/D") == ScopeAnd((ScopePattern(("A", "+", "C")), ScopePattern(("D",))))
    assert parse_scope_query("/A,/B|/C") == ScopeOr(tuple(ScopePattern((x,)) for x in "ABC"))
    assert parse_scope_query("(/A,/B);/C") == ScopeAnd(
        (ScopeOr((ScopePattern(("A",)), ScopePattern(("B",)))), ScopePattern(("C",)))
    )


@pytest.mark.parametrize(
    ("scope", "pattern", "expected"),
    [
        ("/A/B", "/A/B", True),
        ("/A/B", "/A", False),
        ("/A", "/A/B", False),
        ("/A", "/A/#", True),
        ("/A/B/C", "/A/#", True),
        ("/AB", "/A/#", False),
        ("/A/X/C", "/A/+/C", True),
        ("/A/X/Y/C", "/A/+/C", False),
        ("/A/C", "/A/+/C", False),
        ("/Z", "/#", True),
        ("/A/B", "/+/#", True),
    ],
)
def test_scope_pattern(scope: str, pattern: str, expected: bool) -> None:
    parsed = parse_scope_query(pattern)
    assert isinstance(parsed, ScopePattern)
    assert scope_matches(scope, parsed) is expected


def test_scope_expressions() -> None:
    scopes = ["/Madrid/Gardens", "/Spain"]
    assert matches_scope(scopes, parse_scope_query("/Madrid/#;/Spain"))
    assert not matches_scope(scopes, parse_scope_query("/Madrid/#;/France"))
    assert matches_scope(scopes, parse_scope_query("/France|/Spain"))
    assert matches_scope("/Spain", parse_scope_query("/Spain"))
    assert not matches_scope(None, parse_scope_query("/#"))
    assert not matches_scope([], parse_scope_query("/#"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("A", "starting with '/'"),
        ("/", "scope segment"),
        ("/A//B", "scope segment"),
        ("/A/#/B", "only be the last"),
        ("/A/x#", "scope segment"),
        ("/A;", "starting with '/'"),
        ("(/A", "expected ')'"),
        ("/A)", "unbalanced"),
    ],
)
def test_scope_errors(text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_scope_query(text)
    assert fragment in info.value.detail


def test_scope_format_round_trip() -> None:
    for text in ["/A", "/A/+/#", "(/A,/B);/C", "/A;/B,/C"]:
        assert parse_scope_query(format_scope_query(parse_scope_query(text))) == parse_scope_query(text)
