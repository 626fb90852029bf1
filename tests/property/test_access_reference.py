"""For random policies, entities and queries, what a caller receives equals the reference filter applied to what an
administrator receives (records 0220-0222): the policy semantics written out again here, independently of
broker.core.access, then the query evaluated with the reference evaluator and paged, on memory and SQLite."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.entities import Entities
from broker.core.query import Paging, Queries
from broker.ld.termmap import core_termmap
from broker.query import matches, parse_query
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore

V = "https://uri.etsi.org/ngsi-ld/default-context/"
ATTRS = ("a", "b", "c", "email")
PERSONAL = frozenset({V + "email"})
CALLER = Caller("", "carol", ("reader",), "app", ("/g",))

rules_st = st.lists(
    st.fixed_dictionaries(
        {
            "effect": st.sampled_from(["allow", "allow", "deny"]),
            "actions": st.just(["read"]),
            "roles": st.sampled_from([[], ["reader"], ["reader"], ["writer"]]),
            "groups": st.sampled_from([[], ["/g"], ["/h"]]),
            "types": st.sampled_from([[], [], ["A"], ["B"], ["A", "B"]]),
            "idPatterns": st.sampled_from([[], [], ["urn:x:[0-4]"], ["urn:x:1.*"]]),
            "attrs": st.sampled_from([[], [], ["a"], ["email"], ["b", "c"], ["a", "email"]]),
            "scopes": st.sampled_from([[], [], ["/L"], ["/P"]]),
        }
    ),
    min_size=1,
    max_size=5,
)
entities_st = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["A", "B"]),
            "scope": st.sampled_from([None, "/L", "/L/x", "/P"]),
            "attrs": st.dictionaries(st.sampled_from(ATTRS), st.integers(0, 3), max_size=4),
        }
    ),
    min_size=3,
    max_size=12,
)
query_st = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["A", "B", "A,B"]),
        "q": st.sampled_from([None, "a>=1", "b==2", "email==1", "c<3;a==0"]),
        "attrs": st.sampled_from([None, "a", "b,email"]),
    }
)


def reference(rules: list[dict[str, Any]], entity: dict[str, Any]) -> dict[str, Any] | None:
    """The entity as CALLER may read it under `rules`, straight from the README's wording."""

    def names_caller(r: dict[str, Any]) -> bool:
        return (not r["roles"] or bool(set(r["roles"]) & set(CALLER.roles))) and (
            not r["groups"] or bool(set(r["groups"]) & set(CALLER.groups))
        )

    def on_entity(r: dict[str, Any]) -> bool:
        scopes = entity.get("scope", [])
        return (
            (not r["types"] or any(V + t in entity["type"] for t in r["types"]))
            and (not r["idPatterns"] or any(re.fullmatch(p, entity["id"]) for p in r["idPatterns"]))
            and (not r["scopes"] or any(s == p or s.startswith(p + "/") for s in scopes for p in r["scopes"]))
        )

    applying = [r for r in rules if names_caller(r) and on_entity(r)]
    allows = [r for r in applying if r["effect"] == "allow"]
    denies = [r for r in applying if r["effect"] == "deny"]
    if not allows or any(not d["attrs"] for d in denies):
        return None

    def readable(iri: str) -> bool:
        if any(iri in {V + a for a in d["attrs"]} for d in denies):
            return False
        named = any(iri in {V + a for a in r["attrs"]} for r in allows)
        return named or (iri not in PERSONAL and any(not r["attrs"] for r in allows))

    return {**entity, "attrs": {k: v for k, v in entity["attrs"].items() if readable(k)}}


async def scenario(kind: str, rules: list[dict[str, Any]], docs: list[dict[str, Any]], query: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "a.db") if kind == "sqlite" else MemoryStore()
        await store.open()
        tm, admin = core_termmap(), Caller()
        access = Access(store, PERSONAL)
        entities, queries = Entities(store, access), Queries(store, access=access, batch_size=3)
        for n, doc in enumerate(docs):
            body: dict[str, Any] = {"id": f"urn:x:{n}", "type": doc["type"]}
            body.update({k: {"type": "Property", "value": v} for k, v in doc["attrs"].items()})
            if doc["scope"]:
                body["scope"] = doc["scope"]
            await entities.create(admin, tm, body)
        for n, rule in enumerate(rules):
            await store.put_policy({"id": f"r{n}", **{k: [V + t for t in v] if k in ("types", "attrs") else v
                                                      for k, v in rule.items()}})  # fmt: skip
        params = {k: v for k, v in query.items() if v is not None}
        parsed = parse_query({"type": params["type"], **({"q": params["q"]} if "q" in params else {})}, tm)
        attrs = frozenset(V + a for a in params["attrs"].split(",")) if "attrs" in params else None
        everything = await queries.select(admin, [parse_query({"type": "A,B"}, tm)])
        seen = [r for e in everything if (r := reference(rules, e)) is not None]
        expected = [e for e in seen if matches(e, parsed) and (attrs is None or attrs & e["attrs"].keys())]
        got = await queries.query(CALLER, [parsed], Paging(limit=4, offset=1), attrs, count=True)
        first = await queries.query(CALLER, [parsed], Paging(limit=4, offset=1), attrs)
        await store.close()
    assert got.count == len(expected)
    assert [(e["id"], e["attrs"]) for e in got.entities] == [(e["id"], e["attrs"]) for e in expected[1:5]]
    assert [e["id"] for e in first.entities] == [e["id"] for e in got.entities]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["memory", "sqlite"]),
    rules=rules_st,
    docs=entities_st,
    query=query_st,
)
def test_a_caller_receives_the_reference_filter_of_the_administrators_answer(
    kind: str, rules: list[dict[str, Any]], docs: list[dict[str, Any]], query: dict[str, Any]
) -> None:
    asyncio.run(scenario(kind, rules, docs, query))
