"""Access policy rules and the audit log in the Store contract (issue 18, records 0220, 0224), run against every
backend in conftest.BACKENDS: rules are kept by id with a version that moves with every change, another store
object (another broker process) sees them, and the audit log is append-only, read newest first with filters and
paging, and trimmed by age only."""

from __future__ import annotations

from broker.store.base import AuditQuery, AuditRecord, Store
from tests.contract.contract_helpers import Reopen


def rule(rule_id: str, **more: object) -> dict[str, object]:
    return {"id": rule_id, "effect": "allow", "actions": ["read"], **more}


def record(n: int, **more: object) -> AuditRecord:
    fields: dict[str, object] = {
        "at": f"2026-12-07T10:00:{n:02d}.000000Z",
        "subject": "alice" if n % 2 else "bob",
        "operation": "GET /ngsi-ld/v1/entities" if n % 3 else f"DELETE /ngsi-ld/v1/entities/urn:e:{n}",
        "tenant": "water",
        "status": 403 if n == 5 else 200,
        "outcome": "refused" if n == 5 else "allowed",
        "entity_ids": () if n % 3 else (f"urn:e:{n}",),
    }
    fields.update(more)
    return AuditRecord(**fields)  # type: ignore[arg-type]


async def test_rules_are_kept_by_id_and_the_version_moves(store: Store) -> None:
    start = await store.policies_version()
    assert await store.put_policy(rule("b", roles=["x"]))
    assert await store.put_policy(rule("a"))
    assert not await store.put_policy(rule("b", roles=["y"]))  # replaced, not new
    assert [r["id"] for r in await store.list_policies()] == ["a", "b"]
    assert (await store.list_policies())[1]["roles"] == ["y"]
    moved = await store.policies_version()
    assert moved != start
    assert await store.delete_policy("a") and not await store.delete_policy("a")
    assert await store.policies_version() != moved
    unchanged = await store.policies_version()
    assert not await store.delete_policy("missing")
    assert await store.policies_version() == unchanged  # nothing changed, nothing to recompile


async def test_another_store_object_sees_the_rules(store: Store, reopen: Reopen) -> None:
    await store.put_policy(rule("a"))
    other = await reopen()
    assert [r["id"] for r in await other.list_policies()] == ["a"]
    assert await other.policies_version() == await store.policies_version()


async def test_the_audit_log_reads_newest_first_with_filters_and_paging(store: Store) -> None:
    await store.append_audit([record(n) for n in range(1, 7)])
    await store.append_audit([record(7, client="gw", issuer="https://id.example")])
    every = await store.read_audit(AuditQuery())
    assert [r.at[17:19] for r in every] == ["07", "06", "05", "04", "03", "02", "01"]
    assert every[0] == record(7, client="gw", issuer="https://id.example")
    assert [r.at[17:19] for r in await store.read_audit(AuditQuery(limit=2, offset=1))] == ["06", "05"]
    alice = await store.read_audit(AuditQuery(subject="alice"))
    assert {r.subject for r in alice} == {"alice"} and len(alice) == 4
    assert [r.status for r in await store.read_audit(AuditQuery(outcome="refused"))] == [403]
    assert [r.entity_ids for r in await store.read_audit(AuditQuery(entity_id="urn:e:6"))] == [("urn:e:6",)]
    assert len(await store.read_audit(AuditQuery(operation="DELETE"))) == 2
    window = AuditQuery(since="2026-12-07T10:00:02.000000Z", until="2026-12-07T10:00:04.000000Z")
    assert [r.at[17:19] for r in await store.read_audit(window)] == ["03", "02"]
    assert await store.read_audit(AuditQuery(tenant="energy")) == []


async def test_the_audit_log_is_trimmed_by_age_only(store: Store, reopen: Reopen) -> None:
    await store.append_audit([record(n) for n in range(1, 5)])
    assert await store.trim_audit("2026-12-07T10:00:03.000000Z") == 2
    other = await reopen()
    assert [r.at[17:19] for r in await other.read_audit(AuditQuery())] == ["04", "03"]
