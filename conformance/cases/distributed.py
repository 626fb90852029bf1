"""Distributed operations (clauses 4.3.6, 5.5.13, 5.7.1.4, 5.7.2, 5.6.x with registrations, 4.5.5, 6.3): the kit
serves NGSI-LD context sources of its own (conformance/helpers.py `SourceServer`), registers them with the broker
under test, and checks what the broker answers and what it sent each source.

Every case holds its entities in a fresh source under a type of its own, so nothing of another case (or of the
broker's own data) can match its registrations.
"""

from __future__ import annotations

import re
import time
from typing import Any

from conformance.cases._shared import prop
from conformance.helpers import KitSource
from conformance.kit import Kit, case

CSR = "/csourceRegistrations"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


# -- helpers -------------------------------------------------------------------------------------------------------
def _register(k: Kit, source: KitSource, entities: list[dict[str, Any]], **members: Any) -> str:
    """A registration of `source` for `entities` (EntityInfo list), deleted after the case."""
    info: dict[str, Any] = {"entities": entities}
    for key in ("propertyNames", "relationshipNames"):
        if key in members:
            info[key] = members.pop(key)
    body = {
        "id": k.uid("ContextSourceRegistration"),
        "type": "ContextSourceRegistration",
        "information": [info],
        "endpoint": source.endpoint,
        **members,
    }
    response = k.post(CSR, body)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    k.delete_later(f"{CSR}/{body['id']}")
    return str(body["id"])


def _thing(k: Kit, entity_type: str, entity_id: str | None = None, /, **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id or k.uid(), "type": entity_type, **attrs}


def _source_with(k: Kit, entity_type: str, *entities: dict[str, Any], **members: Any) -> KitSource:
    """A source holding `entities`, registered (inclusive unless `mode` says otherwise) for `entity_type`."""
    source = k.source()
    source.hold(*entities)
    _register(k, source, [{"type": entity_type}], **members)
    return source


def _ids(k: Kit, params: dict[str, str], headers: dict[str, str] | None = None) -> set[str]:
    return {str(e.get("id")) for e in k.query(params, headers=headers)}


def _answer_ok(k: Kit, response: Any) -> list[dict[str, Any]]:
    """A query answer with a failed source: a success (200 or 207 Multi-Status), never an error of the broker."""
    k.expect_status(response, 200, 207)
    body = k.json(response)
    k.expect(isinstance(body, list), f"a query answers a JSON array of entities, got {response.text[:200]!r}")
    return list(body)


def _types_asked(source: KitSource) -> set[str]:
    asked: set[str] = set()
    for request in source.received("GET"):
        asked |= {t for t in request.query.get("type", "").replace("|", ",").split(",") if t}
    return asked


def _value(entity: dict[str, Any], attr: str) -> Any:
    member = entity.get(attr)
    if isinstance(member, list):
        return [m.get("value") for m in member if isinstance(m, dict)]
    return member.get("value") if isinstance(member, dict) else member


# -- Query Entities across sources (4.3.6.2, 4.3.6.7, 5.7.2) -------------------------------------------------------
@case(
    "5.7.2",
    "Query Entities returns the entities a matching registered context source holds.",
    feature="registrations",
    also=("4.3.6.1", "4.3.6.2"),
)
def query_returns_source_entities(k: Kit) -> None:
    t = k.type_name()
    remote = _thing(k, t, speed=prop(3))
    _source_with(k, t, remote)
    found = k.query({"type": t})
    k.expect([e.get("id") for e in found] == [remote["id"]], f"got {[e.get('id') for e in found]}")
    k.expect(_value(found[0], "speed") == 3, f"the source's attribute is not shown: {found[0]!r:.300}")


@case(
    "4.3.6.2",
    "An inclusive registration integrates the source's entities with those held locally in one answer.",
    feature="registrations",
    also=("5.7.2",),
)
def query_unites_local_and_remote(k: Kit) -> None:
    t = k.type_name()
    local, remote = _thing(k, t), _thing(k, t)
    k.entity(local)
    _source_with(k, t, remote)
    k.expect(_ids(k, {"type": t}) == {local["id"], remote["id"]}, "local and remote entities are not united")


@case(
    "4.3.6.3",
    "An entity held partly locally and partly by a source is answered once, with the attributes of both.",
    feature="registrations",
    also=("5.7.2", "4.5.5"),
)
def query_merges_one_entity(k: Kit) -> None:
    t = k.type_name()
    a, b = k.attr_name("a"), k.attr_name("b")
    local = _thing(k, t, **{a: prop(1)})
    k.entity(local)
    _source_with(k, t, _thing(k, t, local["id"], **{b: prop(2)}))
    found = k.query({"type": t})
    k.expect(len(found) == 1, f"the entity is answered {len(found)} times")
    k.expect(_value(found[0], a) == 1 and _value(found[0], b) == 2, f"not merged: {found[0]!r:.400}")


@case(
    "4.3.6.7",
    "Paging goes over the merged result: pages of one entity over local and remote entities show each once.",
    feature="registrations",
    also=("5.5.9", "5.7.2"),
)
def query_pages_over_sources(k: Kit) -> None:
    t = k.type_name()
    local, remote = _thing(k, t), _thing(k, t)
    k.entity(local)
    _source_with(k, t, remote)
    first = _ids(k, {"type": t, "limit": "1", "offset": "0"})
    second = _ids(k, {"type": t, "limit": "1", "offset": "1"})
    k.expect(len(first) == 1 and len(second) == 1, f"pages of one: {first}, {second}")
    k.expect(first | second == {local["id"], remote["id"]}, f"the two pages are {first} and {second}")


@case(
    "5.5.9",
    "count=true counts the entities of every matching source in NGSILD-Results-Count.",
    feature="registrations",
    also=("5.7.2",),
)
def query_count_includes_sources(k: Kit) -> None:
    t = k.type_name()
    k.entity(_thing(k, t))
    _source_with(k, t, _thing(k, t), _thing(k, t))
    response = k.http.get("/entities", params={"type": t, "count": "true"})
    k.expect_status(response, 200)
    count = response.headers.get("NGSILD-Results-Count")
    k.expect(count == "3", f"NGSILD-Results-Count is {count!r}, expected 3")


@case(
    "4.3.6.1",
    "A forwarded query carries no entity type the registration does not offer.",
    feature="registrations",
    also=("5.7.2", "4.17"),
)
def forwarded_query_keeps_registered_types(k: Kit) -> None:
    t, other = k.type_name(), k.type_name("Other")
    source = _source_with(k, t, _thing(k, t))
    k.query({"type": f"{t},{other}"})
    asked = _types_asked(source)
    k.expect(source.received("GET"), "the source was not asked")
    k.expect(not {other, k.expand(other)} & asked, f"the source was asked for types {sorted(asked)}")


@case(
    "4.3.6.1",
    "A forwarded query asks no attribute the registration does not offer (its propertyNames).",
    feature="registrations",
    also=("5.7.2", "5.2.10"),
)
def forwarded_query_keeps_registered_attributes(k: Kit) -> None:
    t, a, b = k.type_name(), k.attr_name("a"), k.attr_name("b")
    source = _source_with(k, t, _thing(k, t, **{a: prop(1)}), propertyNames=[a])
    k.query({"type": t, "attrs": f"{a},{b}"})
    k.expect(source.received("GET"), "the source was not asked")
    asked = {x for r in source.received("GET") for x in r.query.get("attrs", "").split(",") if x}
    k.expect(not {b, k.expand(b)} & asked, f"the source was asked for attributes {sorted(asked)}")


@case(
    "4.3.6.1",
    "A registration whose operations exclude queryEntity is not sent queries.",
    feature="registrations",
    also=("4.20", "5.2.9"),
)
def query_respects_registered_operations(k: Kit) -> None:
    t = k.type_name()
    source = _source_with(k, t, _thing(k, t), operations=["retrieveEntity"])
    k.query({"type": t})
    k.expect(not source.received("GET"), "a source that offers only retrieveEntity was sent a query")


@case(
    "5.7.2",
    "Query Entities with a context source filter (csf) uses only the registrations whose properties match it.",
    feature="registrations",
    also=("4.9", "5.2.9"),
)
def query_csf_selects_registrations(k: Kit) -> None:
    t = k.type_name()
    kept, dropped = _thing(k, t), _thing(k, t)
    _source_with(k, t, kept, operator="kept")
    other = _source_with(k, t, dropped, operator="dropped")
    found = _ids(k, {"type": t, "csf": 'operator=="kept"'})
    k.expect(found == {kept["id"]}, f"csf selected the entities {found}")
    k.expect(not other.received("GET"), "a registration the csf excludes was asked")


# -- local scope (5.5.13) ------------------------------------------------------------------------------------------
@case(
    "5.5.13",
    "local=true answers a query from the broker's own entities only.",
    feature="registrations",
    also=("5.7.2",),
)
def local_query_ignores_registrations(k: Kit) -> None:
    t = k.type_name()
    local = _thing(k, t)
    k.entity(local)
    _source_with(k, t, _thing(k, t))
    found = _ids(k, {"type": t, "local": "true"})
    k.expect(found == {local["id"]}, f"local=true answered {found}")


@case(
    "5.5.13",
    "With local=true no registered context source is contacted.",
    feature="registrations",
    also=("4.3.6.4",),
)
def local_query_contacts_no_source(k: Kit) -> None:
    t = k.type_name()
    source = _source_with(k, t, _thing(k, t))
    k.query({"type": t, "local": "true"})
    k.expect(not source.received(), f"the source got {len(source.received())} request(s)")


@case(
    "5.5.13",
    "Retrieve Entity with local=true does not find an entity only a source holds (404).",
    feature="registrations",
    also=("5.7.1.4",),
)
def local_retrieve_ignores_registrations(k: Kit) -> None:
    t = k.type_name()
    remote = _thing(k, t)
    _source_with(k, t, remote)
    k.expect_problem(k.http.get(f"/entities/{remote['id']}", params={"local": "true"}), 404, "ResourceNotFound")


# -- Retrieve Entity across sources (5.7.1.4) ----------------------------------------------------------------------
@case(
    "5.7.1.4",
    "Retrieve Entity finds an entity held only by a matching registered source.",
    feature="registrations",
    also=("4.3.6.2",),
)
def retrieve_from_source(k: Kit) -> None:
    t, a = k.type_name(), k.attr_name()
    remote = _thing(k, t, **{a: prop("remote")})
    _source_with(k, t, remote)
    got = k.get_entity(remote["id"])
    k.expect(got.get("id") == remote["id"] and _value(got, a) == "remote", f"got {got!r:.300}")


@case(
    "5.7.1.4",
    "Retrieve Entity merges the attributes held locally with those of the sources.",
    feature="registrations",
    also=("4.5.5",),
)
def retrieve_merges_attributes(k: Kit) -> None:
    t, a, b = k.type_name(), k.attr_name("a"), k.attr_name("b")
    local = _thing(k, t, **{a: prop(1)})
    k.entity(local)
    _source_with(k, t, _thing(k, t, local["id"], **{b: prop(2)}))
    got = k.get_entity(local["id"])
    k.expect(_value(got, a) == 1 and _value(got, b) == 2, f"not merged: {got!r:.400}")


@case(
    "4.3.6.1",
    "Retrieve Entity without a type never answers, from a registration by type, an entity of a type it does not "
    "register.",
    feature="registrations",
    also=("5.7.1.4", "5.12"),
)
def retrieve_respects_registered_type(k: Kit) -> None:
    # 4.3.6.1: "if a registration states that only Entities of a given type are offered, the distributed request
    # does not contain additional types ... Ultimately, all constraints specified in the registration shall be
    # respected" (the kit's source, asked without a type, answers the entity whatever its type)
    t, other = k.type_name(), k.type_name("Other")
    foreign = _thing(k, other)
    _source_with(k, t, foreign)
    k.expect_problem(k.http.get(f"/entities/{foreign['id']}"), 404, "ResourceNotFound")


@case(
    "5.7.1.4",
    "Retrieve Entity of an entity neither held locally nor by any matching source is ResourceNotFound.",
    feature="registrations",
)
def retrieve_unknown_everywhere(k: Kit) -> None:
    t = k.type_name()
    _source_with(k, t, _thing(k, t))
    k.expect_problem(k.http.get(f"/entities/{k.uid()}", params={"type": t}), 404, "ResourceNotFound")


@case(
    "4.5.5",
    "Of two instances of one attribute (same datasetId), the one with the most recent observedAt is shown.",
    feature="registrations",
    also=("5.7.1.4", "4.5.5.3"),
)
def merge_keeps_latest_observation(k: Kit) -> None:
    t, a = k.type_name(), k.attr_name()
    local = _thing(k, t, **{a: prop("old", observedAt="2020-01-01T00:00:00Z")})
    k.entity(local)
    _source_with(k, t, _thing(k, t, local["id"], **{a: prop("new", observedAt="2024-06-01T00:00:00Z")}))
    got = k.get_entity(local["id"])
    k.expect(_value(got, a) == "new", f"{a} is {got.get(a)!r}, expected the 2024 observation")


@case(
    "4.5.5",
    "Instances of one attribute with different datasetIds from the broker and a source are both shown.",
    feature="registrations",
    also=("5.7.1.4",),
)
def merge_keeps_datasets_apart(k: Kit) -> None:
    t, a = k.type_name(), k.attr_name()
    local = _thing(k, t, **{a: prop("default")})
    k.entity(local)
    remote = prop("gps", datasetId="urn:ngsi-ld:Dataset:conformance-gps")
    _source_with(k, t, _thing(k, t, local["id"], **{a: remote}))
    got = k.get_entity(local["id"])
    values = _value(got, a)
    k.expect(isinstance(values, list) and sorted(values) == ["default", "gps"], f"{a} is {got.get(a)!r}")


@case(
    "4.3.6.2",
    "An auxiliary source never overrides an attribute held locally.",
    feature="registrations",
    also=("5.7.1.4",),
)
def auxiliary_never_overrides(k: Kit) -> None:
    t, a = k.type_name(), k.attr_name()
    local = _thing(k, t, **{a: prop("local", observedAt="2020-01-01T00:00:00Z")})
    k.entity(local)
    aux = _thing(k, t, local["id"], **{a: prop("auxiliary", observedAt="2030-01-01T00:00:00Z")})
    _source_with(k, t, aux, mode="auxiliary")
    got = k.get_entity(local["id"])
    k.expect(_value(got, a) == "local", f"{a} is {got.get(a)!r}: the auxiliary source overrode it")


@case(
    "4.3.6.2",
    "An auxiliary source supplies an attribute not available elsewhere.",
    feature="registrations",
    also=("5.7.1.4",),
)
def auxiliary_fills_gaps(k: Kit) -> None:
    t, a, b = k.type_name(), k.attr_name("a"), k.attr_name("b")
    local = _thing(k, t, **{a: prop(1)})
    k.entity(local)
    _source_with(k, t, _thing(k, t, local["id"], **{b: prop("extra")}), mode="auxiliary")
    got = k.get_entity(local["id"])
    k.expect(_value(got, b) == "extra" and _value(got, a) == 1, f"got {got!r:.300}")


# -- what a forwarded request carries (4.3.6.4-4.3.6.6) ------------------------------------------------------------
@case(
    "4.3.6.4",
    "A forwarded request carries a Via header listing the broker it went through.",
    feature="registrations",
    also=("4.3.6.1",),
)
def forwarded_request_carries_via(k: Kit) -> None:
    t = k.type_name()
    source = _source_with(k, t, _thing(k, t))
    k.query({"type": t})
    asked = source.received("GET")
    k.expect(asked, "the source was not asked")
    k.expect(all(r.headers.get("via") for r in asked), "a forwarded request has no Via header")


@case(
    "4.3.6.4",
    "A registration loop (the source asks the broker back) ends with an answer, not a cascade of requests.",
    feature="registrations",
    also=("5.7.2",),
)
def registration_loop_ends(k: Kit) -> None:
    t = k.type_name()
    source = _source_with(k, t)
    source.behaviour = "loop"
    started = time.monotonic()
    response = k.http.get("/entities", params={"type": t})
    k.expect(time.monotonic() - started < 5, "the loop took more than 5 s")
    k.expect(response.status_code < 500, f"the broker answered {response.status_code}")
    k.expect(len(source.received()) <= 2, f"the source was asked {len(source.received())} times in the loop")


@case(
    "4.3.6.4",
    "An incoming Via that already lists the broker makes it forward nothing again (loop detection).",
    feature="registrations",
    also=("4.3.6.1",),
)
def via_of_a_loop_is_honoured(k: Kit) -> None:
    t = k.type_name()
    source = _source_with(k, t, _thing(k, t))
    k.query({"type": t})
    hops = [r.headers.get("via", "") for r in source.received("GET")]
    k.expect(hops and hops[0], "the source was not asked with a Via header")
    before = len(source.received())
    k.http.get("/entities", params={"type": t}, headers={"Via": hops[0]})
    k.expect(len(source.received()) == before, "a request that went through the broker already was forwarded again")


@case(
    "5.12",
    "A registration whose contextSourceAlias is listed in the incoming Via does not match: its source is not asked.",
    feature="registrations",
    also=("4.3.6.4", "5.2.9"),
)
def registration_alias_in_via_is_not_asked(k: Kit) -> None:
    # 5.12: "where a listing of all previously encountered Context Sources is supplied with the request, no
    # registration shall match if the CSourceRegistration contextSourceAlias can be found within the listing"
    t = k.type_name()
    alias = f"conformance-{k.run.run_id}-source{k.run.next_number()}"
    source = _source_with(k, t, _thing(k, t), contextSourceAlias=alias)
    k.http.get("/entities", params={"type": t}, headers={"Via": f"1.1 {alias}"})
    k.expect(not source.received(), f"the source whose alias {alias} is in the Via was asked")
    k.query({"type": t}, headers={"Via": "1.1 conformance-elsewhere"})
    k.expect(source.received("GET"), "the source was not asked with a Via that does not list its alias")


@case(
    "4.3.6.5",
    "A registration's tenant is the tenant of every request forwarded to its source (NGSILD-Tenant).",
    feature="registrations",
    also=("5.2.9", "4.14"),
)
def forwarded_request_uses_registration_tenant(k: Kit) -> None:
    t = k.type_name()
    tenant = f"conformancesource{k.run.run_id}"
    source = _source_with(k, t, _thing(k, t), tenant=tenant)
    k.query({"type": t})
    asked = source.received("GET")
    k.expect(asked, "the source was not asked")
    got = {r.headers.get("ngsild-tenant") for r in asked}
    k.expect(got == {tenant}, f"the source was asked with NGSILD-Tenant {got}")


@case(
    "4.3.6.5",
    "Each contextSourceInfo key/value is conveyed to the source (a header in the HTTP binding).",
    feature="registrations",
    also=("5.2.22",),
)
def context_source_info_is_sent(k: Kit) -> None:
    t = k.type_name()
    token = f"conformance-{k.run.run_id}"
    source = _source_with(k, t, _thing(k, t), contextSourceInfo=[{"key": "X-Conformance-Key", "value": token}])
    k.query({"type": t})
    asked = source.received("GET")
    k.expect(asked and all(r.headers.get("x-conformance-key") == token for r in asked), "the header was not sent")


@case(
    "4.3.6.5",
    "A contextSourceInfo value urn:ngsi-ld:request is taken from the request that triggered the forwarding.",
    feature="registrations",
    also=("5.2.22",),
)
def context_source_info_from_request(k: Kit) -> None:
    t = k.type_name()
    info = [{"key": "X-Conformance-User", "value": "urn:ngsi-ld:request"}]
    source = _source_with(k, t, _thing(k, t), contextSourceInfo=info)
    k.query({"type": t}, headers={"X-Conformance-User": "auditor"})
    asked = source.received("GET")
    k.expect(asked, "the source was not asked")
    got = {r.headers.get("x-conformance-user") for r in asked}
    k.expect(got == {"auditor"}, f"the source was sent X-Conformance-User {got}")


@case(
    "4.3.6.6",
    "With a contextSourceInfo jsonldContext, the forwarded request names that @context in its Link header.",
    feature="registrations",
    also=("6.3.5",),
)
def jsonld_context_is_sent(k: Kit) -> None:
    t = k.type_name()
    url = k.contexts.publish({"@context": {"conformanceTerm": "https://example.org/conformance#term"}})
    source = _source_with(k, t, _thing(k, t), contextSourceInfo=[{"key": "jsonldContext", "value": url}])
    k.query({"type": t})
    asked = source.received("GET")
    k.expect(asked and all(url in r.headers.get("link", "") for r in asked), "the Link does not name the @context")


@case(
    "4.3.6.6",
    "With a jsonldContext contextSourceInfo, a forwarded write's payload is in that @context's terms, "
    "application/json, without @context.",
    feature="registrations",
    also=("4.3.6.3", "5.6.2.4"),
)
def jsonld_context_compacts_forwarded_write(k: Kit) -> None:
    # 4.3.6.6: "the Context Broker shall apply a compaction operation ... over both payload and query parameters
    # using the JSON-LD Context supplied ... the "Content-Type" of the forwarded request shall be "application/json"
    # and the Context Broker shall remove any @context members from the payload"
    a = k.attr_name()
    short = f"srcTerm{k.run.run_id}"
    url = k.contexts.publish({"@context": {short: k.expand(a)}})
    csi = [{"key": "jsonldContext", "value": url}]
    local, source = _exclusive(k, [a], ["updateOps"], contextSourceInfo=csi)
    k.expect_status(k.patch(f"/entities/{local['id']}/attrs", {a: prop(7)}), 204)
    sent = [r for r in source.received("PATCH") if r.path.startswith("/entities/")]
    k.expect(sent and isinstance(sent[0].body, dict), "the update was not forwarded with a JSON object")
    body, content_type = sent[0].body, sent[0].headers.get("content-type", "")
    k.expect(short in body, f"the payload is not in the registration's terms ({short}): {sorted(body)}")
    k.expect(a not in body and k.expand(a) not in body, f"the payload still names {a}: {sorted(body)}")
    k.expect("@context" not in body, "the forwarded payload has an @context member")
    k.expect(content_type.split(";")[0].strip() == "application/json", f"Content-Type is {content_type!r}")
    k.expect(url in sent[0].headers.get("link", ""), "the Link header does not name the registration's @context")


# -- failed sources (6.3.17 NGSILD-Warning, 5.2.34 timeout) ----------------------------------------------------------
def _with_failing_source(k: Kit, behaviour: str, **members: Any) -> tuple[str, dict[str, Any], KitSource]:
    t = k.type_name()
    local = _thing(k, t)
    k.entity(local)
    source = _source_with(k, t, _thing(k, t), **members)
    source.behaviour = behaviour
    return t, local, source


@case(
    "6.3.17",
    "A source that answers 500 does not fail the query: the local entities come back, with an NGSILD-Warning.",
    feature="registrations",
    also=("4.3.6.1", "5.7.2"),
)
def failed_source_keeps_the_rest(k: Kit) -> None:
    t, local, _ = _with_failing_source(k, "fail")
    response = k.http.get("/entities", params={"type": t})
    found = {e.get("id") for e in _answer_ok(k, response)}
    k.expect(local["id"] in found, f"the local entity is missing: {found}")
    k.expect(response.headers.get("NGSILD-Warning"), "no NGSILD-Warning names the failed source")


@case(
    "6.3.17",
    "An NGSILD-Warning has the warning form of IETF RFC 7234: a three-digit code, an agent, a quoted text.",
    feature="registrations",
)
def warning_has_the_rfc7234_form(k: Kit) -> None:
    t, _, _ = _with_failing_source(k, "fail")
    response = k.http.get("/entities", params={"type": t})
    warnings = response.headers.get_list("NGSILD-Warning")
    k.expect(warnings, "no NGSILD-Warning")
    form = re.compile(r'^\d{3} \S+ ".*"')
    k.expect(all(form.match(w.strip()) for w in warnings), f'NGSILD-Warning {warnings!r} is not code agent "text"')


@case(
    "5.2.34",
    "A source that does not answer within the registration's timeout is given up: the rest comes back in time.",
    feature="registrations",
    also=("6.3.17",),
)
def hanging_source_is_bounded_by_timeout(k: Kit) -> None:
    t, local, source = _with_failing_source(k, "hang", management={"timeout": 500})
    source.hang_seconds = 4.0
    started = time.monotonic()
    response = k.http.get("/entities", params={"type": t})
    elapsed = time.monotonic() - started
    k.expect(elapsed < 3.0, f"the answer took {elapsed:.1f} s with a 0.5 s registration timeout")
    k.expect(local["id"] in {e.get("id") for e in _answer_ok(k, response)}, "the local entity is missing")


@case(
    "4.3.6.8",
    "A source that answers invalid data (not JSON) is rejected, never a broker error; the rest comes back.",
    feature="registrations",
    also=("6.3.17",),
)
def garbage_source_is_rejected(k: Kit) -> None:
    t, local, _ = _with_failing_source(k, "garbage")
    response = k.http.get("/entities", params={"type": t})
    k.expect(local["id"] in {e.get("id") for e in _answer_ok(k, response)}, "the local entity is missing")


@case(
    "5.7.1.4",
    "Retrieve Entity with a failing source still answers what is held locally.",
    feature="registrations",
    also=("6.3.17",),
)
def retrieve_with_failed_source(k: Kit) -> None:
    _, local, _ = _with_failing_source(k, "fail")
    response = k.http.get(f"/entities/{local['id']}")
    k.expect_status(response, 200, 207)
    k.expect(k.json(response).get("id") == local["id"], f"got {response.text[:200]!r}")


# -- distributed writes (4.3.6.2, 4.3.6.3, 5.6.x) ------------------------------------------------------------------
def _exclusive(k: Kit, attrs: list[str], operations: list[str], **members: Any) -> tuple[dict[str, Any], KitSource]:
    """A local entity and a source registered exclusively for some of its attributes."""
    t = k.type_name()
    local = _thing(k, t, kept=prop("here"))
    k.entity(local)
    source = k.source()
    source.hold(_thing(k, t, local["id"], **{a: prop(0) for a in attrs}))
    entities = [{"id": local["id"], "type": t}]
    _register(k, source, entities, propertyNames=attrs, mode="exclusive", operations=operations, **members)
    return local, source


@case(
    "4.3.6.3",
    "Update Attributes of an exclusively registered attribute is forwarded to its source, not written locally.",
    feature="registrations",
    also=("5.6.2.4", "5.9.2"),
)
def exclusive_update_is_forwarded(k: Kit) -> None:
    a = k.attr_name()
    local, source = _exclusive(k, [a], ["updateOps"])
    response = k.patch(f"/entities/{local['id']}/attrs", {a: prop(7)})
    k.expect_status(response, 204)
    sent = [r for r in source.received("PATCH") if r.path.startswith("/entities/")]
    k.expect(sent and isinstance(sent[0].body, dict) and a in str(sent[0].body), "the update was not forwarded")
    here = k.get_entity(local["id"], local="true")
    k.expect(a not in here, f"the exclusively registered {a} was written locally too")


@case(
    "4.3.6.3",
    "Attributes an exclusive registration does not cover stay local in the same update.",
    feature="registrations",
    also=("5.6.2.4",),
)
def exclusive_update_keeps_other_attributes_local(k: Kit) -> None:
    a = k.attr_name()
    local, source = _exclusive(k, [a], ["updateOps"])
    response = k.patch(f"/entities/{local['id']}/attrs", {a: prop(7), "kept": prop("changed")})
    k.expect_status(response, 204, 207)
    here = k.get_entity(local["id"], local="true")
    k.expect(_value(here, "kept") == "changed", f"the local attribute is {here.get('kept')!r}")
    forwarded = " ".join(str(r.body) for r in source.received("PATCH"))
    k.expect("changed" not in forwarded, "an attribute the registration does not cover was forwarded")


@case(
    "5.6.2.4",
    "An update of an exclusively registered attribute whose source fails is a partial success (207).",
    feature="registrations",
    also=("4.3.6.3", "6.3.6"),
)
def exclusive_update_with_failed_source(k: Kit) -> None:
    a = k.attr_name()
    local, source = _exclusive(k, [a], ["updateOps"])
    source.behaviour = "fail"
    response = k.patch(f"/entities/{local['id']}/attrs", {a: prop(7), "kept": prop("changed")})
    k.expect_status(response, 207)
    body = k.json(response)
    not_updated = str(body.get("notUpdated", "")) if isinstance(body, dict) else ""
    k.expect(a in not_updated, f"notUpdated does not name {a}: {response.text[:300]!r}")


@case(
    "4.3.6.1",
    "An exclusive registration that does not offer the update operation is not sent the update.",
    feature="registrations",
    also=("4.20", "4.3.6.3"),
)
def exclusive_without_operation_is_not_written(k: Kit) -> None:
    a = k.attr_name()
    local, source = _exclusive(k, [a], ["retrieveOps"])
    response = k.patch(f"/entities/{local['id']}/attrs", {a: prop(7)})
    k.expect(response.status_code in (207, 409), f"expected 207 or 409 (Conflict), got {response.status_code}")
    k.expect(not source.received("PATCH"), "the source was sent an operation it does not offer")


def _redirect(k: Kit) -> tuple[str, KitSource]:
    t = k.type_name()
    source = k.source()
    _register(k, source, [{"type": t}], mode="redirect", operations=["redirectionOps"])
    return t, source


@case(
    "4.3.6.3",
    "Create Entity of a type registered by a redirect registration is forwarded and not held locally.",
    feature="registrations",
    also=("5.6.1.4",),
)
def redirect_create_is_forwarded(k: Kit) -> None:
    t, source = _redirect(k)
    body = _thing(k, t, speed=prop(5))
    response = k.post("/entities", body)
    k.delete_later(f"/entities/{body['id']}")
    k.expect_status(response, 201)
    k.expect(body["id"] in source.entities, "the source did not receive the entity")
    k.expect_status(k.http.get(f"/entities/{body['id']}", params={"local": "true"}), 404)


@case(
    "4.3.6.3",
    "Delete Entity of an entity registered by a redirect registration is forwarded to its source.",
    feature="registrations",
    also=("5.6.6.4",),
)
def redirect_delete_is_forwarded(k: Kit) -> None:
    t, source = _redirect(k)
    remote = _thing(k, t)
    source.hold(remote)
    k.expect_status(k.http.delete(f"/entities/{remote['id']}", params={"type": t}), 204)
    k.expect(remote["id"] not in source.entities, "the source was not asked to delete the entity")


@case(
    "5.12",
    "Delete Entity without a type, of an entity held only by a source registered (redirect) by type, is forwarded.",
    feature="registrations",
    also=("5.6.6.4", "4.3.6.3"),
)
def redirect_delete_without_type_is_forwarded(k: Kit) -> None:
    # 5.12 matches an EntityInfo with "neither an id nor an idPattern", the type selector "if present"; 5.6.6.4:
    # "If an exclusive or redirect Context Source Registration matches against the id, the request is forwarded"
    t, source = _redirect(k)
    remote = _thing(k, t)
    source.hold(remote)
    k.expect_status(k.http.delete(f"/entities/{remote['id']}"), 204)
    k.expect(remote["id"] not in source.entities, "the source was not asked to delete the entity")


@case(
    "5.6.2.4",
    "Update Attributes without a type, of an entity held only by a source registered (redirect) by type, is "
    "forwarded to it.",
    feature="registrations",
    also=("5.12", "4.3.6.3"),
)
def redirect_update_without_type_is_forwarded(k: Kit) -> None:
    # 5.12 as for Delete Entity; 5.6.2.4 forwards the attributes of "Context Source Registrations that match"
    t, source = _redirect(k)
    a = k.attr_name()
    remote = _thing(k, t, **{a: prop(1)})
    source.hold(remote)
    k.expect_status(k.patch(f"/entities/{remote['id']}/attrs", {a: prop(2)}), 204)
    held = source.entities[remote["id"]]  # the kit's source keeps the names as sent: a term or its IRI
    k.expect(2 in (_value(held, a), _value(held, k.expand(a))), f"the source holds {held!r:.300}")
    k.expect_status(k.http.get(f"/entities/{remote['id']}", params={"local": "true"}), 404)


@case(
    "4.3.6.2",
    "Update Attributes of an entity of an inclusive registration is applied locally and sent to the source too.",
    feature="registrations",
    also=("5.6.2.4",),
)
def inclusive_update_goes_both_ways(k: Kit) -> None:
    t, a = k.type_name(), k.attr_name()
    local = _thing(k, t, **{a: prop(1)})
    k.entity(local)
    source = _source_with(k, t, _thing(k, t, local["id"], **{a: prop(1)}), operations=["updateOps", "retrieveOps"])
    response = k.patch(f"/entities/{local['id']}/attrs", {a: prop(2)})
    k.expect_status(response, 204, 207)
    k.expect(_value(k.get_entity(local["id"], local="true"), a) == 2, "the local attribute was not updated")
    k.expect(source.received("PATCH"), "the inclusive source was not sent the update")


@case(
    "4.3.6.2",
    "An auxiliary registration is never sent a write (only consumption operations).",
    feature="registrations",
    also=("5.6.2.4",),
)
def auxiliary_gets_no_write(k: Kit) -> None:
    t, a = k.type_name(), k.attr_name()
    local = _thing(k, t, **{a: prop(1)})
    k.entity(local)
    source = _source_with(k, t, _thing(k, t, local["id"]), mode="auxiliary")
    k.expect_status(k.patch(f"/entities/{local['id']}/attrs", {a: prop(2)}), 204)
    k.expect(not [r for r in source.received() if r.method != "GET"], "the auxiliary source was sent a write")
