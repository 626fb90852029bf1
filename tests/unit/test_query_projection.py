"""pick/omit (clause 4.21), orderBy, and the Query bundle of all parameters."""

from __future__ import annotations

import re
from typing import Any

import pytest

from broker.core.errors import BadRequestData, TooComplexQuery
from broker.core.model import DEFAULT_VOCAB as V
from broker.core.model import NGSI_LD
from broker.ld.termmap import TermMap, core_termmap
from broker.query import Query, matches, parse_query
from broker.query.projection import (
    OrderKey,
    Projection,
    ProjectionItem,
    format_projection,
    parse_order_by,
    parse_projection,
    project,
)
from broker.query.q import AttrPath


@pytest.fixture(scope="module")
def tm() -> TermMap:
    return core_termmap()


def test_projection_ast(tm: TermMap) -> None:
    assert parse_projection("id,type,speed", tm) == Projection(
        (ProjectionItem("id"), ProjectionItem("type"), ProjectionItem(V + "speed"))
    )
    linked = parse_projection("name,sensor{humidity,owner{age}}", tm)
    assert linked == Projection(
        (
            ProjectionItem(V + "name"),
            ProjectionItem(
                V + "sensor",
                Projection(
                    (
                        ProjectionItem(V + "humidity"),
                        ProjectionItem(V + "owner", Projection((ProjectionItem(V + "age"),))),
                    )
                ),
            ),
        )
    )
    assert parse_projection(format_projection(linked, tm), tm) == linked


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("a,", "expected an attribute name"),
        (",a", "expected an attribute name"),
        ("a{b", "expected '}'"),
        ("a{}", "expected an attribute name"),
        ("id{b}", "not a Relationship"),
        ("a}", "unexpected character"),
        ("a b", "unexpected character"),
    ],
)
def test_projection_errors(tm: TermMap, text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_projection(text, tm, param="omit")
    assert fragment in info.value.detail and info.value.detail.startswith("omit:")


def test_projection_limits(tm: TermMap) -> None:
    with pytest.raises(TooComplexQuery):
        parse_projection(",".join(["a"] * 101), tm)
    with pytest.raises(TooComplexQuery):
        parse_projection("a{" * 21 + "b" + "}" * 21, tm)


ENTITY: dict[str, Any] = {
    "id": "urn:x:1",
    "type": [V + "T"],
    "scope": ["/A"],
    "attrs": {V + "a": [{"type": "Property", "value": 1}], V + "b": [{"type": "Property", "value": 2}]},
}


def test_project(tm: TermMap) -> None:
    picked = project(ENTITY, pick=parse_projection("a,type", tm))
    assert picked == {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "a": ENTITY["attrs"][V + "a"]}}
    omitted = project(ENTITY, omit=parse_projection("a,scope", tm))
    assert omitted == {"id": "urn:x:1", "type": [V + "T"], "attrs": {V + "b": ENTITY["attrs"][V + "b"]}}
    assert project(ENTITY, omit=parse_projection("id", tm))["attrs"] == ENTITY["attrs"]
    assert "id" not in project(ENTITY, omit=parse_projection("id", tm))


def test_order_by(tm: TermMap) -> None:
    assert parse_order_by("a", tm) == (OrderKey(AttrPath((V + "a",))),)
    assert parse_order_by("a;desc,b.observedAt;asc,c[k]", tm) == (
        OrderKey(AttrPath((V + "a",)), True),
        OrderKey(AttrPath((V + "b",), "observedAt")),
        OrderKey(parse_order_by("c[k]", tm)[0].path),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("a;", "'asc' or 'desc'"),
        ("a;up", "'asc' or 'desc'"),
        ("a,", "attribute name"),
        ("a;ascx", "expected ','"),
    ],
)
def test_order_by_errors(tm: TermMap, text: str, fragment: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_order_by(text, tm)
    assert fragment in info.value.detail


CAR: dict[str, Any] = {
    "id": "urn:ngsi-ld:Car:1",
    "type": [V + "Car"],
    "scope": ["/Madrid/Centro"],
    "attrs": {
        V + "speed": [{"type": "Property", "value": 80}],
        NGSI_LD + "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 1]}}],
    },
}


def test_query_bundle(tm: TermMap) -> None:
    params = {
        "id": "urn:ngsi-ld:Car:1,urn:ngsi-ld:Car:2",
        "idPattern": "^urn:ngsi-ld:Car:",
        "type": "Car,Bus",
        "q": "speed>50",
        "scopeQ": "/Madrid/#",
        "georel": "within",
        "geometry": "Polygon",
        "coordinates": "[[[0,0],[2,0],[2,2],[0,2],[0,0]]]",
        "pick": "speed",
        "orderBy": "speed;desc",
    }
    query = parse_query(params, tm)
    assert isinstance(query, Query) and query.pick is not None and len(query.order_by) == 1
    assert matches(CAR, query)
    for name, value in [
        ("id", "urn:ngsi-ld:Car:2"),
        ("idPattern", "Bus"),
        ("type", "Bus"),
        ("q", "speed>90"),
        ("scopeQ", "/Sevilla"),
        ("coordinates", "[[[5,5],[6,5],[6,6],[5,6],[5,5]]]"),
    ]:
        assert not matches(CAR, parse_query({**params, name: value}, tm)), name


def test_empty_query_matches_everything(tm: TermMap) -> None:
    assert matches(CAR, parse_query({}, tm))
    assert parse_query({"unrelated": "x"}, tm) == Query()


def test_expand_values_param(tm: TermMap) -> None:
    query = parse_query({"q": "category==commercial", "expandValues": "category"}, tm)
    assert query.expand_values == frozenset({V + "category"})
    vocab = {
        "id": "urn:x",
        "type": [V + "T"],
        "attrs": {V + "category": [{"type": "VocabProperty", "vocab": V + "commercial"}]},
    }
    assert matches(vocab, query)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"id": "a,,b"}, "empty item"),
        ({"id": "urn:a:b,not a uri"}, "'not a uri' is not a valid URI"),
        ({"idPattern": "("}, "not a valid regular expression"),
        ({"q": "a=="}, "expected a value"),
        ({"type": ""}, "empty"),
        ({"expandValues": ""}, "empty"),
    ],
)
def test_bundle_errors(tm: TermMap, params: dict[str, str], fragment: str) -> None:
    with pytest.raises(BadRequestData, match=re.escape(fragment)):
        parse_query(params, tm)


def test_pipe_is_the_other_or_operator(tm: TermMap) -> None:
    """Clause 4.21: "either a comma or a pipe character can be used as alternative representations of the or"."""
    assert parse_projection("speed|brand,isParked{name|age}", tm) == parse_projection(
        "speed,brand,isParked{name,age}", tm
    )


@pytest.mark.parametrize("text", ["a<b", "a=b", "a;b", "a(b)", 'a"b', "a'b", "a[b]", "a\\b"])
def test_a_name_with_a_character_no_attribute_name_holds_is_refused(tm: TermMap, text: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_projection(text, tm, param="pick")
    assert info.value.detail.startswith("pick:")


def test_an_iri_with_tilde_or_bang_is_a_name(tm: TermMap) -> None:
    assert parse_projection("http://example.org/~me/a!b", tm) == Projection(
        (ProjectionItem("http://example.org/~me/a!b"),)
    )


def test_pick_and_omit_may_not_name_one_member(tm: TermMap) -> None:
    from broker.query.projection import check_pick_omit

    check_pick_omit(parse_projection("speed,id", tm), parse_projection("brand", tm))  # disjoint: fine
    check_pick_omit(None, parse_projection("brand", tm))
    check_pick_omit(parse_projection("brand", tm), None, attrs=True)
    with pytest.raises(BadRequestData, match="both name id"):
        check_pick_omit(parse_projection("speed,id", tm), parse_projection("id", tm))
    with pytest.raises(BadRequestData, match="attrs"):
        check_pick_omit(None, parse_projection("brand", tm), attrs=True)


def test_order_by_entity_members(tm: TermMap) -> None:
    """Clause 5.7.2.3: ordering by Entity member names ("id", "type", "scope" or an Attribute name)."""
    from broker.core.query import order

    assert parse_order_by("id;desc,type", tm) == (OrderKey(None, True, "id"), OrderKey(None, False, "type"))
    assert parse_order_by("identifier", tm) == (OrderKey(AttrPath((V + "identifier",))),)
    entities: list[Any] = [
        {"id": f"urn:x:{n}", "type": [V + t], "attrs": {}, **({"scope": [s]} if s else {})}
        for n, t, s in (("b", "Car", "/b"), ("c", "Bus", None), ("a", "Car", "/a"))
    ]
    assert [e["id"] for e in order(entities, parse_order_by("id", tm))] == ["urn:x:a", "urn:x:b", "urn:x:c"]
    assert [e["id"] for e in order(entities, parse_order_by("id;desc", tm))] == ["urn:x:c", "urn:x:b", "urn:x:a"]
    assert [e["id"] for e in order(entities, parse_order_by("type,id;desc", tm))] == ["urn:x:c", "urn:x:b", "urn:x:a"]
    assert [e["id"] for e in order(entities, parse_order_by("scope", tm))] == ["urn:x:a", "urn:x:b", "urn:x:c"]
