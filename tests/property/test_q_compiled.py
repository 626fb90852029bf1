"""The compiled q evaluator (broker.query.evaluate, closures built once per AST) says what the evaluator it replaced
says (tests/support/q_oracle.py, kept as it was), for every AST the parser can produce and entities of every
attribute type, with sub-attributes, datasetIds, compound values and linked entities."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from broker.core.errors import NgsiLdError
from broker.core.model import DEFAULT_VOCAB as V
from broker.core.model import Entity
from broker.ld.termmap import core_termmap
from broker.query.evaluate import compiled, matches
from broker.query.q import QNode, format_q, parse_q
from tests.property.test_query_fuzz import KEYS, NAMES, q_asts
from tests.support import q_oracle
from tests.unit.test_query_evaluate import ENTITY, WORLD

CHECKS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LANGUAGES = ["en", "fr", "@none"]
IDS = ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2", "urn:ngsi-ld:X:3"]

scalars = st.one_of(
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.booleans(),
    st.sampled_from(["a", "foo", "x;y", "2020-05-01", "08:30:00", "2021-01-01T00:00:00Z", "007", "é", "12"]),
    st.sampled_from(IDS),
    st.none(),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS + [V + k for k in KEYS]), inner, max_size=3),
        st.builds(lambda v: {"@value": v, "@type": "DateTime"}, scalars),
    ),
    max_leaves=6,
)
members = st.fixed_dictionaries(
    {},
    optional={
        "datasetId": st.sampled_from(["urn:ngsi-ld:Dataset:a", "urn:ngsi-ld:Dataset:b"]),
        "observedAt": st.sampled_from(["2020-01-01T00:00:00Z", "2024-06-01T12:00:00Z"]),
        "unitCode": st.sampled_from(["KMH", "CEL"]),
    },
)


def _instance(kind: str, content: Any, extra: dict[str, Any], subs: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, **extra}
    member = {
        "Property": "value",
        "GeoProperty": "value",
        "JsonProperty": "json",
        "ListProperty": "valueList",
        "Relationship": "object",
        "ListRelationship": "objectList",
        "VocabProperty": "vocab",
        "LanguageProperty": "languageMap",
    }[kind]
    body[member] = content
    if subs:
        body["attrs"] = subs
    return body


attr_names = st.sampled_from([V + n for n in NAMES])


def instances(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    nested = st.lists(instances(depth - 1), min_size=1, max_size=2) if depth else st.nothing()
    subs = st.none() if depth == 0 else st.dictionaries(attr_names, nested, max_size=2)
    contents = st.one_of(
        st.tuples(st.sampled_from(["Property", "JsonProperty", "ListProperty"]), json_values),
        st.tuples(st.just("GeoProperty"), st.just({"type": "Point", "coordinates": [2.35, 48.85]})),
        st.tuples(st.just("Relationship"), st.sampled_from(IDS)),
        st.tuples(st.just("ListRelationship"), st.lists(st.sampled_from(IDS), min_size=1, max_size=2)),
        st.tuples(st.just("VocabProperty"), st.sampled_from([V + "fleet", "a", [V + "x", V + "fleet"]])),
        st.tuples(st.just("LanguageProperty"), st.dictionaries(st.sampled_from(LANGUAGES), scalars, max_size=2)),
    )
    return st.builds(lambda c, extra, s: _instance(c[0], c[1], extra, s), contents, members, subs)


def entity_with(entity_id: str, names: st.SearchStrategy[str] = attr_names) -> st.SearchStrategy[Entity]:
    attrs = st.dictionaries(names, st.lists(instances(1), min_size=1, max_size=3), max_size=5)
    return attrs.map(lambda a: {"id": entity_id, "type": [V + "Thing"], "attrs": a})


worlds = st.tuples(*(entity_with(i) for i in IDS))

# q texts whose paths and literals come from the same small pools as the entities, so that conditions hold as
# often as they fail (the parser's general ASTs, above, rarely meet a generated attribute).
PATHS = ["speed", "temp", "rel", "speed.temp", "temp.rel", "speed[k1]", "temp[city.k1]", "speed.observedAt"]
PATHS += ["temp.datasetId", "rel{speed}", "rel{temp.speed}", "speed.unitCode", "temp[fr]"]
LITERALS = ["3", "-2", "0.5", '"a"', '"foo"', '"x;y"', "true", "false", "urn:ngsi-ld:X:1", "2020-05-01"]
LITERALS += ["08:30:00", "2021-01-01T00:00:00Z", '"007"', "1..4", '"a".."z"', '"a","foo"', "KMH", "a"]
REGEXES = ["a", "(?i)F", "^0"]
OPS = ["==", "!=", ">", "<", ">=", "<="]
conditions = st.one_of(
    st.builds("{}{}{}".format, st.sampled_from(PATHS), st.sampled_from(OPS), st.sampled_from(LITERALS)),
    st.builds("{}{}{}".format, st.sampled_from(PATHS), st.sampled_from(["~=", "!~="]), st.sampled_from(REGEXES)),
    st.sampled_from(PATHS),
)
q_texts = st.recursive(
    conditions,
    lambda inner: st.builds("({}{}{})".format, inner, st.sampled_from([";", "|"]), inner),
    max_leaves=4,
)


def _parsed(text: str) -> QNode | None:
    try:
        return parse_q(text, core_termmap())
    except NgsiLdError:
        return None


few_names = st.sampled_from([V + n for n in ("speed", "temp", "rel")])
close_worlds = st.tuples(*(entity_with(i, few_names) for i in IDS))


@settings(CHECKS, max_examples=300)
@given(q_texts, close_worlds)
def test_compiled_evaluator_agrees_on_conditions_that_often_hold(text: str, world: tuple[Entity, ...]) -> None:
    node = _parsed(text)
    assume(node is not None)
    assert node is not None
    found = {e["id"]: e for e in world}
    outcomes = set()
    for entity in world:
        expected = q_oracle.matches(entity, node, resolve=found.get)
        assert matches(entity, node, resolve=found.get) is expected, (text, entity)
        outcomes.add(expected)
    event(f"outcomes {sorted(outcomes)}")


@settings(CHECKS, max_examples=60)
@given(q_asts, worlds)
def test_compiled_evaluator_agrees_with_the_one_it_replaced(node: QNode, world: tuple[Entity, ...]) -> None:
    found = {e["id"]: e for e in world}
    for entity in (*world, ENTITY):
        for resolve in (found.get, None):
            expected = q_oracle.matches(entity, node, resolve=resolve)
            assert matches(entity, node, resolve=resolve) is expected, (entity, node)


@CHECKS
@given(q_asts)
def test_compiled_evaluator_agrees_on_the_fixture_entities(node: QNode) -> None:
    for entity in (ENTITY, *WORLD.values()):
        assert matches(entity, node, resolve=WORLD.get) is q_oracle.matches(entity, node, resolve=WORLD.get)


def test_a_node_compiles_once_and_an_equal_node_gets_its_own_closure() -> None:
    tm = core_termmap()
    node = parse_q("speed>50;fuel<30", tm)
    assert compiled(node) is compiled(node)
    copy = parse_q(format_q(node, tm), tm)
    assert copy == node and copy is not node
    assert compiled(copy) is not compiled(node)
