"""Linked Entity Retrieval (clause 4.5.23) on Retrieve Entity and Query Entities (5.7.1.5, 5.7.2.5; HTTP binding
6.4.3.2, 6.5.3.1): join=inline and join=flat, joinLevel, containedBy, and projections into linked entities."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import prop, rel
from conformance.kit import Kit, case


def _graph(k: Kit) -> dict[str, dict[str, Any]]:
    """A bus at stop A, with depot C and route [C, B]; stops A -> B (next)."""
    stop_type, bus_type = k.type_name("Stop"), k.type_name("Bus")
    a_id, b_id, c_id = k.uid("Stop"), k.uid("Stop"), k.uid("Stop")
    b: dict[str, Any] = {"id": b_id, "type": stop_type, "name": prop("B")}
    a: dict[str, Any] = {"id": a_id, "type": stop_type, "name": prop("A"), "code": prop(1), "next": rel(b_id)}
    c: dict[str, Any] = {"id": c_id, "type": stop_type, "name": prop("C")}
    bus: dict[str, Any] = {
        "id": k.uid("Bus"),
        "type": bus_type,
        "at": rel(a_id),
        "depot": rel(c_id),
        "route": {"type": "ListRelationship", "objectList": [{"object": c_id}, {"object": b_id}]},
    }
    for body in (b, a, c, bus):
        k.entity(body)
    return {"a": a, "b": b, "c": c, "bus": bus}


def _get(k: Kit, entity_id: str, **params: str) -> Any:
    response = k.http.get(f"/entities/{entity_id}", params=params)
    if response.status_code == 400 and "join" in params:
        k.missing("join", f"join={params['join']} answered 400 (Linked Entity Retrieval is recent, clause 4.5.23)")
    k.expect_status(response, 200)
    return k.json(response)


@case("4.5.23", "join=inline adds the linked entity under the Relationship's entity member.", also=("5.7.1", "6.5"))
def inline_embeds_the_target(k: Kit) -> None:
    g = _graph(k)
    doc = _get(k, g["bus"]["id"], join="inline")
    embedded = doc.get("at", {}).get("entity", {})
    k.expect(embedded.get("id") == g["a"]["id"], f"at.entity is {embedded!r:.200}")
    k.expect(embedded.get("name", {}).get("value") == "A", f"the inlined entity lost its name: {embedded!r:.200}")


@case("4.5.23", "join=inline gives a ListRelationship an entityList in its objectList order.", also=("5.7.1",))
def inline_entity_list_in_order(k: Kit) -> None:
    g = _graph(k)
    listed = _get(k, g["bus"]["id"], join="inline").get("route", {}).get("entityList", [])
    got = [e.get("id") for e in listed if isinstance(e, dict)]
    k.expect(got == [g["c"]["id"], g["b"]["id"]], f"route.entityList ids are {got}")


@case("4.5.23", "join=flat answers an array: the entity, then the entities its Relationships target.", also=("5.7.1",))
def flat_appends_targets(k: Kit) -> None:
    g = _graph(k)
    docs = _get(k, g["bus"]["id"], join="flat")
    k.expect(isinstance(docs, list) and docs and docs[0].get("id") == g["bus"]["id"], "the array starts elsewhere")
    got = {d.get("id") for d in docs[1:]}
    wanted = {g["a"]["id"], g["b"]["id"], g["c"]["id"]}
    k.expect(got == wanted and len(docs) == 4, f"linked ids {sorted(got)}, expected each of {sorted(wanted)} once")


@case(
    "4.5.23",
    "join=flat follows only the Relationships the answer returns: an omitted one adds no entity.",
    also=("5.7.1", "4.21"),
)
def flat_ignores_omitted_relationships(k: Kit) -> None:
    """5.7.1.5: "If any of the returned Attributes corresponds to an annotated Relationship, ... the data
    corresponding to each URI of the Relationship's target object URIs is appended to the array"."""
    g = _graph(k)
    docs = _get(k, g["bus"]["id"], join="flat", omit="depot,route")
    got = [d.get("id") for d in docs]
    k.expect(got == [g["bus"]["id"], g["a"]["id"]], f"join=flat&omit=depot,route gave {got}")


@case("4.5.23", "joinLevel=2 inlines the entities the linked entities link to.", also=("5.7.1",))
def inline_two_levels(k: Kit) -> None:
    g = _graph(k)
    one = _get(k, g["bus"]["id"], join="inline")
    k.expect("entity" not in one["at"]["entity"].get("next", {}), "joinLevel 1 inlined two levels")
    two = _get(k, g["bus"]["id"], join="inline", joinLevel="2")
    nested = two["at"]["entity"].get("next", {}).get("entity", {})
    k.expect(nested.get("id") == g["b"]["id"], f"joinLevel=2: at.entity.next.entity is {nested!r:.200}")


@case("4.5.23", "containedBy lists ids already held: they are not retrieved again.", also=("5.7.1",))
def contained_by_is_not_retrieved(k: Kit) -> None:
    g = _graph(k)
    docs = _get(k, g["a"]["id"], join="flat", containedBy=g["b"]["id"])
    k.expect([d.get("id") for d in docs] == [g["a"]["id"]], f"containedBy ignored: {[d.get('id') for d in docs]}")


@case(
    "4.21",
    "pick=rel{attr} with join=inline reduces the linked entity to that attribute.",
    also=("4.5.23", "5.7.1"),
)
def pick_inside_linked_entity(k: Kit) -> None:
    g = _graph(k)
    doc = _get(k, g["bus"]["id"], join="inline", pick="at{name}")
    embedded = doc.get("at", {}).get("entity", {})
    k.expect("name" in embedded and "code" not in embedded and "next" not in embedded, f"at.entity is {embedded!r}")
    k.expect(set(doc) - {"@context"} == {"id", "at"}, f"the root holds {sorted(doc)}")


@case("4.21", "omit=rel{attr} with join=inline removes that attribute from the linked entity only.", also=("4.5.23",))
def omit_inside_linked_entity(k: Kit) -> None:
    g = _graph(k)
    doc = _get(k, g["bus"]["id"], join="inline", omit="at{code}")
    embedded = doc.get("at", {}).get("entity", {})
    k.expect("code" not in embedded and "name" in embedded, f"at.entity is {embedded!r}")


@case(
    "5.7.1",
    "A projection into linked entities (rel{attr}) without join is a BadRequestData error (400).",
    also=("4.21", "4.5.23"),
)
def projection_into_links_needs_join(k: Kit) -> None:
    """5.7.1.4: "If projection attributes are present and indicate the use of Linked Entity retrieval and the use
    of Linked Entity retrieval is not specified ... BadRequestData"."""
    g = _graph(k)
    k.expect_problem(k.http.get(f"/entities/{g['bus']['id']}", params={"pick": "at{name}"}), 400, "BadRequestData")


@case(
    "5.7.1",
    "A projection reaching deeper into linked entities than joinLevel is a BadRequestData error (400).",
    also=("4.21", "4.5.23"),
)
def projection_deeper_than_join_level(k: Kit) -> None:
    g = _graph(k)
    params = {"join": "inline", "joinLevel": "1", "pick": "at{next{name}}"}
    k.expect_problem(k.http.get(f"/entities/{g['bus']['id']}", params=params), 400, "BadRequestData")


@case("4.5.23", "A query with join=flat lists each linked entity once after the matching entities.", also=("5.7.2",))
def query_flat_lists_each_once(k: Kit) -> None:
    g = _graph(k)
    response = k.http.get("/entities", params={"type": g["a"]["type"], "join": "flat"})
    if response.status_code == 400:
        k.missing("join", "join=flat on a query answered 400")
    k.expect_status(response, 200)
    got = [d.get("id") for d in k.json(response)]
    k.expect(sorted(got) == sorted({g["a"]["id"], g["b"]["id"], g["c"]["id"]}), f"join=flat query gave {got}")


@case("4.5.23", "An invalid join value is a BadRequestData error (400).", also=("5.7.1", "6.5"))
def invalid_join_is_400(k: Kit) -> None:
    g = _graph(k)
    k.expect_problem(k.http.get(f"/entities/{g['a']['id']}", params={"join": "deep"}), 400, "BadRequestData")
