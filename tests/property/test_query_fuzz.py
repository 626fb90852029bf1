"""Property tests of the query languages: parsers fail only with NgsiLdError, printed ASTs parse back to
the same AST, and the evaluators never raise on what the parsers accept."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point

from broker.core.errors import NgsiLdError
from broker.core.model import DEFAULT_VOCAB as V
from broker.ld.termmap import core_termmap
from broker.query import parse_query
from broker.query.evaluate import matches
from broker.query.geo import distance_m, haversine_m, matches_geo, parse_geo_query
from broker.query.projection import parse_order_by, parse_projection
from broker.query.q import (
    MEMBERS,
    And,
    AttrPath,
    Compare,
    Exists,
    Key,
    LinkedPath,
    Literal,
    Match,
    Or,
    QNode,
    Range,
    ValueList,
    format_q,
    parse_q,
)
from broker.query.scope import ScopeAnd, ScopeOr, ScopePattern, format_scope_query, parse_scope_query
from broker.query.types import TypeAnd, TypeName, TypeOr, format_types, parse_types
from tests.unit.test_query_evaluate import ENTITY, WORLD

TM = core_termmap()
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- parsers only raise NgsiLdError ------------------------------------------------------------------------------
TOKENS = [
    "speed",
    "name",
    "b.c",
    "x[y]",
    "x[y.z]",
    "r{s}",
    "sensor",
    "label[fr]",
    ".observedAt",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "~=",
    "!~=",
    "=",
    "!",
    "~",
    "(",
    ")",
    ";",
    "|",
    ",",
    "..",
    ".",
    "1",
    "-2.5",
    "1e3",
    '"s"',
    '"',
    "\\",
    "true",
    "urn:a:b",
    "2017-12-24T12:00:00Z",
    "2020-01-01",
    "2020-13-01",
    "12:00:00",
    "[",
    "]",
    "{",
    "}",
    "*",
    "/A",
    "/#",
    "/+",
    "#",
    "+",
    "near;maxDistance==1",
    " ",
    "type",
    "@id",
    "asc",
    "desc",
    "(?i)",
    "[a-",
    "\x00",
]

soup = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join)
any_text = st.one_of(st.text(max_size=60), soup)


def parse_all(text: str) -> None:
    for parse in (
        lambda: matches(ENTITY, parse_q(text, TM), resolve=WORLD.get),
        lambda: parse_types(text, TM),
        lambda: parse_scope_query(text),
        lambda: parse_projection(text, TM),
        lambda: parse_order_by(text, TM),
        lambda: parse_query({"georel": text, "geometry": "Point", "coordinates": "[0,0]"}, TM),
        lambda: parse_query({"georel": "within", "geometry": text, "coordinates": text}, TM),
        lambda: parse_query({"id": text, "idPattern": text, "expandValues": text}, TM),
    ):
        with contextlib.suppress(NgsiLdError):
            parse()


@FAST
@given(any_text)
def test_parsers_raise_only_ngsi_ld_errors(text: str) -> None:
    parse_all(text)


json_arrays = st.recursive(
    st.one_of(st.integers(-200, 200), st.floats(-200, 200), st.sampled_from([0, 1, "x", None, True])),
    lambda c: st.lists(c, max_size=5),
    max_leaves=24,
)


@FAST
@given(
    st.sampled_from(["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]), json_arrays
)
def test_geometry_parsing_raises_only_ngsi_ld_errors(kind: str, coordinates: Any) -> None:
    params = {"georel": "intersects", "geometry": kind, "coordinates": json.dumps(coordinates)}
    try:
        query = parse_geo_query(params, TM)
    except NgsiLdError:
        return
    assert query is not None and query.geometry.is_valid


# -- q round trip ---------------------------------------------------------------------------------------------
NAMES = ["speed", "temp", "brand", "addr", "rel", "sensorx", "owner"]
KEYS = ["city", "k1", "fr", "air"]


def expand(value: str) -> str | None:
    if not value:
        return None
    try:
        return TM.expand_term(value)
    except NgsiLdError:
        return value


attr_paths = st.builds(
    lambda names, tail, keys: AttrPath(
        tuple(V + n for n in names),
        tail if tail else None,
        () if tail else tuple(Key(k, V + k) for k in keys),
    ),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
    st.one_of(st.just(""), st.sampled_from(sorted(MEMBERS))),
    st.lists(st.sampled_from(KEYS), max_size=2),
)
paths = st.recursive(
    attr_paths,
    lambda inner: st.builds(LinkedPath, attr_paths.filter(lambda p: not p.keys and p.member is None), inner),
    max_leaves=3,
)

COMPARABLE: dict[str, st.SearchStrategy[Any]] = {
    "number": st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False)),
    "string": st.text(max_size=12),
    "datetime": st.datetimes(timezones=st.just(UTC)),
    "date": st.dates(),
    "time": st.times(),
}


def literal(kind: str, value: Any) -> Literal:
    return Literal(kind, value, expand(value) if kind in ("string", "uri") else None)


def literals_of(kind: str) -> st.SearchStrategy[Literal]:
    return COMPARABLE[kind].map(lambda v: literal(kind, v))


comparable = st.sampled_from(sorted(COMPARABLE)).flatmap(literals_of)
others = st.one_of(
    st.booleans().map(lambda b: Literal("boolean", b)),
    st.from_regex(r"urn:ngsi-ld:[A-Za-z]{1,5}:[a-z0-9]{1,5}", fullmatch=True).map(lambda u: literal("uri", u)),
)
any_literal = st.one_of(comparable, others)
ranges = st.sampled_from(sorted(COMPARABLE)).flatmap(lambda k: st.builds(Range, literals_of(k), literals_of(k)))
value_lists = st.lists(any_literal, min_size=2, max_size=4).map(lambda items: ValueList(tuple(items)))

compares = st.one_of(
    st.builds(Compare, paths, st.sampled_from(["==", "!="]), st.one_of(any_literal, ranges, value_lists)),
    st.builds(Compare, paths, st.sampled_from([">", ">=", "<", "<="]), comparable),
)
REGEXES = ["^a", "(?i)foo.*", "a|b", "x[);]y", r"\d+", 'q"uote', "é"]
matches_ = st.builds(Match, paths, st.sampled_from(REGEXES).map(re.compile), st.booleans())
leaves = st.one_of(st.builds(Exists, paths), compares, matches_)


def combine(children: st.SearchStrategy[QNode]) -> st.SearchStrategy[QNode]:
    ands = st.lists(children.filter(lambda n: not isinstance(n, And)), min_size=2, max_size=3)
    ors = st.lists(children.filter(lambda n: not isinstance(n, Or)), min_size=2, max_size=3)
    return st.one_of(ands.map(lambda t: And(tuple(t))), ors.map(lambda t: Or(tuple(t))))


q_asts = st.recursive(leaves, combine, max_leaves=8)


@FAST
@given(q_asts)
def test_q_round_trip(node: QNode) -> None:
    text = format_q(node, TM)
    assert parse_q(text, TM) == node, text
    matches(ENTITY, node, resolve=WORLD.get)  # the evaluator accepts every AST the parser can produce


# -- type and scope round trips -------------------------------------------------------------------------------
type_names = st.sampled_from(["Car", "Bus", "Vehicle", "ex:Thing"]).map(lambda n: TypeName(TM.expand_term(n)))
type_exprs = st.recursive(
    type_names,
    lambda c: st.one_of(
        st.lists(c.filter(lambda n: not isinstance(n, TypeAnd)), min_size=2, max_size=3).map(
            lambda t: TypeAnd(tuple(t))
        ),
        st.lists(c.filter(lambda n: not isinstance(n, TypeOr)), min_size=2, max_size=3).map(lambda t: TypeOr(tuple(t))),
    ),
    max_leaves=6,
)


@FAST
@given(type_exprs)
def test_types_round_trip(expr: Any) -> None:
    assert parse_types(format_types(expr, TM), TM) == expr


segments = st.lists(
    st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,4}", fullmatch=True), st.just("+")), min_size=1, max_size=3
)
patterns = st.builds(lambda s, rest: ScopePattern(tuple(s) + (("#",) if rest else ())), segments, st.booleans())
scope_exprs = st.recursive(
    patterns,
    lambda c: st.one_of(
        st.lists(c.filter(lambda n: not isinstance(n, ScopeAnd)), min_size=2, max_size=3).map(
            lambda t: ScopeAnd(tuple(t))
        ),
        st.lists(c.filter(lambda n: not isinstance(n, ScopeOr)), min_size=2, max_size=3).map(
            lambda t: ScopeOr(tuple(t))
        ),
    ),
    max_leaves=6,
)


@FAST
@given(scope_exprs)
def test_scope_round_trip(expr: Any) -> None:
    assert parse_scope_query(format_scope_query(expr)) == expr


# -- geo ------------------------------------------------------------------------------------------------------
lons = st.floats(-180, 180)
lats = st.floats(-85, 85)
positions = st.tuples(lons, lats).map(list)


@FAST
@given(positions, st.lists(positions, min_size=2, max_size=5))
def test_distance_to_line_is_at_most_vertex_distance(origin: list[float], line: list[list[float]]) -> None:
    point = Point(origin)
    distance = distance_m(point, LineString(line))
    assert 0 <= distance <= min(haversine_m(origin[0], origin[1], x, y) for x, y in line) + 1e-6


@FAST
@given(
    st.sampled_from(
        [
            "near;maxDistance==1000",
            "near;minDistance==5",
            "within",
            "contains",
            "intersects",
            "equals",
            "disjoint",
            "overlaps",
        ]
    ),
    positions,
    st.lists(positions, min_size=1, max_size=6),
    st.sampled_from(["Point", "MultiPoint", "LineString", "Polygon"]),
)
def test_geo_never_raises(georel: str, origin: list[float], stored: list[list[float]], kind: str) -> None:
    shapes: dict[str, dict[str, Any]] = {
        "Point": {"type": "Point", "coordinates": stored[0]},
        "MultiPoint": {"type": "MultiPoint", "coordinates": stored},
        "LineString": {"type": "LineString", "coordinates": stored * 2},
        "Polygon": {"type": "Polygon", "coordinates": [[*stored, stored[0], stored[0], stored[0]]]},
    }
    geometry = shapes[kind]
    entity = {
        "id": "urn:x",
        "type": [],
        "attrs": {TM.expand_term("location"): [{"type": "GeoProperty", "value": geometry}]},
    }
    params = {"georel": georel, "geometry": "Point", "coordinates": json.dumps(origin)}
    try:
        query = parse_geo_query(params, TM)
    except NgsiLdError:
        return
    assert query is not None
    matches_geo(entity, query)
