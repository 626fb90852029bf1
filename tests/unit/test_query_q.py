"""The q parser (clause 4.9): ASTs of valid queries, precise errors for invalid ones, complexity bounds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import pytest

from broker.core.errors import BadRequestData, TooComplexQuery
from broker.core.model import DEFAULT_VOCAB as V
from broker.ld.termmap import TermMap, core_termmap
from broker.query.common import Limits
from broker.query.q import (
    And,
    AttrPath,
    Compare,
    Exists,
    Key,
    LinkedPath,
    Literal,
    Match,
    Or,
    Range,
    ValueList,
    count_terms,
    format_q,
    parse_q,
)


@pytest.fixture(scope="module")
def tm() -> TermMap:
    return core_termmap()


def path(*names: str, member: str | None = None, keys: tuple[str, ...] = ()) -> AttrPath:
    return AttrPath(tuple(V + n for n in names), member, tuple(Key(k, V + k) for k in keys))


def test_existence(tm: TermMap) -> None:
    assert parse_q("temperature", tm) == Exists(path("temperature"))


def test_comparison_number(tm: TermMap) -> None:
    assert parse_q("speed>=20.5", tm) == Compare(path("speed"), ">=", Literal("number", 20.5))
    assert parse_q("speed<-3", tm) == Compare(path("speed"), "<", Literal("number", -3))
    assert parse_q("speed==1e3", tm) == Compare(path("speed"), "==", Literal("number", 1000.0))


def test_string_keeps_expansion_for_vocab(tm: TermMap) -> None:
    node = parse_q('name=="Car \\"One\\""', tm)
    assert node == Compare(path("name"), "==", Literal("string", 'Car "One"', V + 'Car "One"'))


def test_string_with_operators_inside(tm: TermMap) -> None:
    node = parse_q('name=="a;b|c)d,e..f"', tm)
    assert isinstance(node, Compare) and node.value == Literal("string", "a;b|c)d,e..f", V + "a;b|c)d,e..f")


def test_expand_values_limits_expansion(tm: TermMap) -> None:
    node = parse_q("category==commercial", tm, expand_values={V + "other"})
    assert node == Compare(path("category"), "==", Literal("uri", "commercial", None))


def test_temporal_values(tm: TermMap) -> None:
    dt = datetime(2017, 12, 24, 12, tzinfo=UTC)
    assert parse_q("t.observedAt>=2017-12-24T12:00:00Z", tm) == Compare(
        path("t", member="observedAt"), ">=", Literal("datetime", dt)
    )
    assert parse_q("d<2020-01-02", tm) == Compare(path("d"), "<", Literal("date", date(2020, 1, 2)))
    assert parse_q("h>12:30:00Z", tm) == Compare(path("h"), ">", Literal("time", time(12, 30)))
    assert parse_q("h>12:30", tm) == Compare(path("h"), ">", Literal("time", time(12, 30)))


def test_booleans_and_uris(tm: TermMap) -> None:
    assert parse_q("a==true", tm) == Compare(path("a"), "==", Literal("boolean", True))
    node = parse_q("rel==urn:ngsi-ld:Car:1", tm)
    assert node == Compare(path("rel"), "==", Literal("uri", "urn:ngsi-ld:Car:1", "urn:ngsi-ld:Car:1"))


def test_range_and_list(tm: TermMap) -> None:
    assert parse_q("a==1..5", tm) == Compare(path("a"), "==", Range(Literal("number", 1), Literal("number", 5)))
    node = parse_q('a!=1,"x",true', tm)
    assert isinstance(node, Compare) and isinstance(node.value, ValueList)
    assert [item.kind for item in node.value.items] == ["number", "string", "boolean"]
    dt_range = parse_q("a==2017-01-01T00:00:00Z..2018-01-01T00:00:00Z", tm)
    assert isinstance(dt_range, Compare) and isinstance(dt_range.value, Range)


def test_uri_with_dots_is_not_a_range(tm: TermMap) -> None:
    node = parse_q("rel==http://example.org/a/../b", tm)
    assert isinstance(node, Compare) and node.value == Literal(
        "uri", "http://example.org/a/../b", "http://example.org/a/../b"
    )


def test_paths(tm: TermMap) -> None:
    assert parse_q("a.b.c", tm) == Exists(path("a", "b", "c"))
    assert parse_q("a.b.unitCode", tm) == Exists(path("a", "b", member="unitCode"))
    assert parse_q("address[city]", tm) == Exists(path("address", keys=("city",)))
    assert parse_q("sensor.rawdata[airquality.particulate]==40", tm) == Compare(
        path("sensor", "rawdata", keys=("airquality", "particulate")), "==", Literal("number", 40)
    )
    assert parse_q("a[b][c]", tm) == parse_q("a[b.c]", tm)


def test_linked_paths(tm: TermMap) -> None:
    assert parse_q("sensor{humidity}==40", tm) == Compare(
        LinkedPath(path("sensor"), path("humidity")), "==", Literal("number", 40)
    )
    assert parse_q("a.b{c{d.e}}", tm) == Exists(LinkedPath(path("a", "b"), LinkedPath(path("c"), path("d", "e"))))


def test_compact_iris_expand(tm: TermMap) -> None:
    node = parse_q("ngsi-ld:foo==1", tm)
    assert isinstance(node, Compare) and node.path == AttrPath(("https://uri.etsi.org/ngsi-ld/foo",))


def test_regex(tm: TermMap) -> None:
    node = parse_q("name~=(?i)^c(a|b)[);|]r$;x", tm)
    assert isinstance(node, And) and isinstance(node.terms[0], Match)
    assert node.terms[0].regex.pattern == "(?i)^c(a|b)[);|]r$"
    assert parse_q('name!~="a|b"', tm) == Match(path("name"), re.compile("a|b"), True)
    assert parse_q("name~=a\\)b", tm) == Match(path("name"), re.compile("a\\)b"))


def test_precedence_and_flattening(tm: TermMap) -> None:
    a, b, c, d = (Exists(path(n)) for n in "abcd")
    assert parse_q("a;b|c;d", tm) == Or((And((a, b)), And((c, d))))
    assert parse_q("a;(b|c);d", tm) == And((a, Or((b, c)), d))
    assert parse_q("(a;b);(c;d)", tm) == And((a, b, c, d))
    assert parse_q("((a))", tm) == a


def test_format_round_trip_examples(tm: TermMap) -> None:
    for text in ["a;(b|c)", 'x=="y"|z>2', "s{h}==40", "t.observedAt<2020-01-01T00:00:00Z", "a[b.c]!=1..2"]:
        assert parse_q(format_q(parse_q(text, tm), tm), tm) == parse_q(text, tm)


INVALID = [
    ("", "empty"),
    ("a===1", "'=1'"),
    ("a=1", "expected an operator"),
    ("a==", "expected a value"),
    ("(a", "expected ')'"),
    ("a)", "unbalanced ')'"),
    ("a;", "expected an attribute name"),
    ("|a", "expected an attribute name"),
    ("a;;b", "expected an attribute name"),
    ("a b", "expected an operator"),
    ("a==1 ", "not a valid value"),
    ('a=="x', "unterminated quoted string"),
    ('a=="x"y', "after the closing quote"),
    ('a=="\\q"', "invalid escape"),
    ("a>true", "needs a number"),
    ("a>urn:x:y", "needs a number"),
    ("a>1,2", "value list is only allowed"),
    ("a<1..2", "range is only allowed"),
    ("a==1..2..3", "exactly two bounds"),
    ('a==1.."x"', "of one kind"),
    ("a==true..false", "range bound"),
    ("a==1..3,4", "range cannot be part"),
    ("a==1,,2", "empty value"),
    ("a==2017-13-45", "not a valid Date"),
    ("a==2017-02-30T10:00:00Z", "not a valid Date"),
    ("a~=(", "not a valid regular expression"),
    ("a~=", "expected a regular expression"),
    ("a.", "after '.'"),
    ("a.observedAt.b", "nothing may follow the member 'observedAt'"),
    ("a.observedAt[x]", "no compound keys"),
    ("a[x", "expected ']'"),
    ("a[]", "key name"),
    ("a[x..y]", "key name"),
    ("a[x]{b}", "linked-entity path"),
    ("a{b", "expected '}'"),
    ("a{}", "expected an attribute name"),
    ("type==x", "keyword"),
    ("a==b<c", "not a valid value"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid(tm: TermMap, text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text, tm)
    assert fragment in info.value.detail
    if text:
        assert repr(text) in info.value.detail


def test_error_names_position_and_fragment(tm: TermMap) -> None:
    with pytest.raises(BadRequestData, match=r"at position 10 \('x'\)"):
        parse_q("a==1;(b|c)x", tm)


def test_too_many_terms(tm: TermMap) -> None:
    parse_q(";".join(["a"] * 100), tm)
    with pytest.raises(TooComplexQuery, match="101 terms"):
        parse_q(";".join(["a"] * 101), tm)
    with pytest.raises(TooComplexQuery):
        parse_q("a==" + ",".join(["1"] * 101), tm)


def test_too_deep(tm: TermMap) -> None:
    parse_q("(" * 20 + "a" + ")" * 20, tm)
    with pytest.raises(TooComplexQuery, match="deeper than 20"):
        parse_q("(" * 21 + "a" + ")" * 21, tm)
    with pytest.raises(TooComplexQuery):
        parse_q("(" * 5000, tm)
    with pytest.raises(TooComplexQuery):
        parse_q("a{" * 21 + "b" + "}" * 21, tm)


def test_configurable_limits(tm: TermMap) -> None:
    with pytest.raises(TooComplexQuery):
        parse_q("a;b;c", tm, limits=Limits(max_terms=2))
    with pytest.raises(TooComplexQuery):
        parse_q("(a)", tm, limits=Limits(max_depth=0))
    with pytest.raises(TooComplexQuery):
        parse_q("a==1", tm, limits=Limits(max_length=3))
    with pytest.raises(TooComplexQuery):
        parse_q("a~=xxxx", tm, limits=Limits(max_regex=3))


def test_count_terms(tm: TermMap) -> None:
    assert count_terms(parse_q("a;(b|c);d==1", tm)) == 4


def test_json_keys_are_never_expanded_whatever_expand_values_says() -> None:
    from broker.ld.termmap import core_termmap
    from broker.query import parse_query

    tm = core_termmap()
    both = parse_query({"q": "kind==car", "expandValues": "kind,other", "jsonKeys": "kind"}, tm)
    assert both.expand_values is not None
    assert tm.expand_term("kind") not in both.expand_values and tm.expand_term("other") in both.expand_values
