"""The policy decision point (broker.core.access, records 0220-0223): rules, views, deny wins, personal data,
and enforcement through the core operations over a real memory store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.core.access import UNRESTRICTED, Access, compile_view, parse_rule
from broker.core.caller import Caller
from broker.core.entities import Entities
from broker.core.errors import BadRequestData, Forbidden, ResourceNotFound
from broker.core.query import Paging, Queries
from broker.ld.termmap import core_termmap
from broker.query import Query
from broker.store.memory import MemoryStore

V = "https://uri.etsi.org/ngsi-ld/default-context/"
EMAIL = V + "email"  # marked personal in ontologies/personal_data.csv
expand = core_termmap().expand_term


def rule(**doc: Any) -> Any:
    return parse_rule({"id": doc.pop("id", "r"), **doc}, expand)


def entity(eid: str, etype: str = "Pipe", scope: list[str] | None = None, **attrs: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "id": eid,
        "type": [V + etype],
        "attrs": {V + k: [{"type": "Property", "value": v}] for k, v in attrs.items()},
    }
    if scope:
        e["scope"] = scope
    return e


OPERATOR = Caller("water", "alice", ("operator",))


def test_rules_expand_terms_and_refuse_bad_members() -> None:
    r = rule(roles=["operator"], actions=["read"], types=["Pipe"], attrs=["pressure"])
    assert r.types == (V + "Pipe",) and r.attrs == (V + "pressure",)
    for bad in ({"actions": ["fly"]}, {"actions": []}, {"actions": ["read"], "effect": "maybe"}):
        with pytest.raises(BadRequestData):
            rule(**bad)
    with pytest.raises(BadRequestData, match="idPattern"):
        rule(actions=["read"], idPatterns=["("])
    with pytest.raises(BadRequestData, match="unknown"):
        rule(actions=["read"], colour="red")
    assert parse_rule(r.to_doc(), lambda t: t) == r  # a stored rule reads back the same


def test_default_deny_and_who_members() -> None:
    rules = [rule(roles=["operator"], actions=["read"], tenants=["water"])]
    assert compile_view(rules, OPERATOR, frozenset()).redact(entity("urn:a", pressure=1)) is not None
    for other in (Caller("energy", "alice", ("operator",)), Caller("water", "bob", ("reader",))):
        view = compile_view(rules, other, frozenset())
        assert view.redact(entity("urn:a", pressure=1)) is None and not view.may("read")
    assert not compile_view(rules, OPERATOR, frozenset()).may("write")


def test_deny_wins_over_allow() -> None:
    rules = [
        rule(id="a", roles=["operator"], actions=["read"]),
        rule(id="d", effect="deny", subjects=["alice"], actions=["read"], attrs=["secret"]),
        rule(id="d2", effect="deny", subjects=["alice"], actions=["read"], idPatterns=["urn:hidden:.*"]),
    ]
    view = compile_view(rules, OPERATOR, frozenset())
    seen = view.redact(entity("urn:a", pressure=1, secret=2))
    assert seen is not None and set(seen["attrs"]) == {V + "pressure"}
    assert view.redact(entity("urn:hidden:1", pressure=1)) is None


def test_types_ids_scopes_and_attributes_narrow_a_rule() -> None:
    rules = [rule(roles=["operator"], actions=["read"], types=["Pipe"], scopes=["/Lyon"], attrs=["pressure"])]
    view = compile_view(rules, OPERATOR, frozenset())
    assert view.redact(entity("urn:a", "Pump", ["/Lyon"], pressure=1)) is None
    assert view.redact(entity("urn:a", "Pipe", ["/Paris"], pressure=1)) is None
    assert view.redact(entity("urn:a", "Pipe", None, pressure=1)) is None
    seen = view.redact(entity("urn:a", "Pipe", ["/Lyon/Part-Dieu"], pressure=1, flow=2))
    assert seen is not None and list(seen["attrs"]) == [V + "pressure"]


def test_personal_data_needs_a_rule_that_names_it() -> None:
    broad = [rule(roles=["operator"], actions=["read"])]
    seen = compile_view(broad, OPERATOR, frozenset({EMAIL})).redact(entity("urn:a", email="a@b", pressure=1))
    assert seen is not None and EMAIL not in seen["attrs"]
    named = [*broad, rule(id="e", roles=["operator"], actions=["read"], attrs=["email"])]
    seen = compile_view(named, OPERATOR, frozenset({EMAIL})).redact(entity("urn:a", email="a@b"))
    assert seen is not None and EMAIL in seen["attrs"]


def test_writes_are_judged_on_what_they_change() -> None:
    rules = [rule(roles=["operator"], actions=["write"], types=["Pipe"], attrs=["pressure"])]
    view = compile_view(rules, OPERATOR, frozenset())
    old = entity("urn:a", pressure=1, flow=2)
    assert view.refusal(old, entity("urn:a", pressure=5, flow=2)) is None
    assert "flow" in (view.refusal(old, entity("urn:a", pressure=1, flow=3)) or "")
    assert view.refusal(old, None) is not None  # deleting it removes flow too
    assert view.refusal(None, entity("urn:b", "Pump", pressure=1)) is not None  # a type out of reach
    assert view.refusal(old, entity("urn:a", "Pump", pressure=1, flow=2)) is not None  # nor may it change the type


def test_the_admin_role_reads_no_policy() -> None:
    class NoPolicies(MemoryStore):
        async def policies_version(self) -> int:
            raise AssertionError("the administrator's view must not read the store")

    assert asyncio.run(Access(NoPolicies()).view(Caller())) is UNRESTRICTED


def test_core_operations_enforce_the_policies() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        await store.open()
        access = Access(store, frozenset({EMAIL}))
        entities, queries = Entities(store, access), Queries(store, access=access)
        admin = Caller("water")
        tm = core_termmap()
        for n, etype in enumerate(["Pipe", "Pipe", "Pump"]):
            body = {"id": f"urn:e:{n}", "type": etype, "pressure": {"type": "Property", "value": n}}
            body["email"] = {"type": "Property", "value": "x@y"}
            await entities.create(admin, tm, body)
        await store.put_policy(rule(roles=["operator"], actions=["read"], types=["Pipe"]).to_doc())
        await store.put_policy(rule(id="w", roles=["operator"], actions=["write"], idPatterns=["urn:e:0"]).to_doc())
        page = await queries.query(OPERATOR, [Query()], Paging(limit=10), count=True)
        assert [e["id"] for e in page.entities] == ["urn:e:0", "urn:e:1"] and page.count == 2
        assert all(EMAIL not in e["attrs"] for e in page.entities)
        assert (await queries.query(admin, [Query()], Paging(limit=10), count=True)).count == 3
        with pytest.raises(ResourceNotFound):
            await entities.retrieve(OPERATOR, "urn:e:2")
        await entities.update_attrs(OPERATOR, tm, "urn:e:0", {"pressure": {"type": "Property", "value": 7}})
        with pytest.raises(Forbidden):
            await entities.update_attrs(OPERATOR, tm, "urn:e:1", {"pressure": {"type": "Property", "value": 7}})
        assert (await entities.retrieve(admin, "urn:e:1"))["attrs"][V + "pressure"][0]["value"] == 1

    asyncio.run(scenario())


def test_the_audit_log_flushes_and_retains() -> None:
    from broker.core.policies import AuditLog
    from broker.store.base import AuditQuery, AuditRecord

    async def scenario() -> None:
        store = MemoryStore()
        await store.open()
        old = AuditRecord("2000-01-01T00:00:00.000000Z", "alice", "GET /x", "", 200, "allowed")
        new = AuditRecord("2999-01-01T00:00:00.000000Z", "bob", "GET /y", "", 403, "refused")
        off = AuditLog(store, enabled=False, max_age=60)
        off.record(old)
        await off.flush()
        assert await store.read_audit(AuditQuery()) == []  # off: nothing is kept
        log = AuditLog(store, enabled=True, max_age=60)
        log.record(old)
        log.record(new)
        assert await store.read_audit(AuditQuery()) == []  # buffered until a flush
        await log.flush()
        assert [r.subject for r in await store.read_audit(AuditQuery())] == ["bob", "alice"]
        assert await log.retain_once() == 1
        assert await store.read_audit(AuditQuery()) == [new]

    asyncio.run(scenario())
