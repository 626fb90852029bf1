"""broker.core.registrations: validation of each member, operation groups, the conflict rules of 4.3.6.3, the
merge of an update, and the planner's index (matching) with its refresh on change."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.caller import Caller
from broker.core.errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from broker.core.registrations import (
    EXTRA,
    GROUPS,
    Registrations,
    compile_registration,
    conflict,
    merge_fragment,
    operation_set,
    rendered,
    validated,
)
from broker.ld.termmap import core_termmap
from broker.store.base import DEFAULT_TENANT, RegistrationRecord
from broker.store.memory import MemoryStore

TM = core_termmap()
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
CALLER = Caller()


def reg(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:1",
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}],
        "endpoint": "http://source.example/ngsi-ld",
    }
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


def exclusive(reg_id: str, entity_id: str, attrs: list[str]) -> dict[str, Any]:
    info = [{"entities": [{"id": entity_id, "type": "Vehicle"}], "propertyNames": attrs}]
    return validated(reg(id=reg_id, mode="exclusive", information=info), TM)


def test_names_and_types_are_stored_expanded_and_rendered_compacted() -> None:
    doc = validated(reg(myExtra=1), TM)
    info = doc["information"][0]
    assert info == {"entities": [{"type": [VOCAB + "Vehicle"]}], "propertyNames": [VOCAB + "speed"]}
    assert doc[EXTRA] == {VOCAB + "myExtra": 1}
    shown = rendered(RegistrationRecord(DEFAULT_TENANT, doc["id"], doc), TM, False)
    assert shown["information"] == reg()["information"] and shown["myExtra"] == 1


def test_an_id_is_assigned_when_absent() -> None:
    assert validated(reg(id=None), TM)["id"].startswith("urn:ngsi-ld:ContextSourceRegistration:")


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"type": "Registration"}, "type"),
        ({"endpoint": "mailto:x@example.org"}, "endpoint"),
        ({"information": []}, "information"),
        ({"information": [{"entities": [{"id": "urn:a:b"}]}]}, "information[0].entities[0].type"),
        ({"information": [{"entities": [{"type": "V", "id": "urn:a:b", "idPattern": ".*"}]}]}, "exclusive"),
        ({"information": [{"propertyNames": ["a"], "relationshipNames": ["a"]}]}, "information[0]"),
        ({"mode": "Inclusive"}, "mode"),
        ({"operations": []}, "operations"),
        ({"operations": ["queryEntity", "fly"]}, "operations[1]"),
        ({"location": {"type": "Point", "coordinates": [200, 0]}}, "location"),
        ({"observationInterval": {"startAt": "2020-01-01T00:00:00Z", "extra": 1}}, "observationInterval"),
        ({"managementInterval": {"startAt": "yesterday"}}, "managementInterval.startAt"),
        ({"refreshRate": "PT"}, "refreshRate"),
        ({"management": {"timeout": -1}}, "management.timeout"),
        ({"management": {"cooldown": True}}, "management.cooldown"),
        ({"management": {"retries": 3}}, "management"),
        ({"contextSourceInfo": [{"key": "accept", "value": "text/html"}]}, "contextSourceInfo[0]"),
        ({"contextSourceInfo": [{"key": "NGSILD-Tenant", "value": "t"}]}, "tenant"),
        ({"contextSourceInfo": [{"key": "jsonldContext", "value": "not a url"}]}, "jsonldContext"),
        ({"datasetId": ["@none", "not a uri"]}, "datasetId[1]"),
        ({"scope": []}, "scope"),
        ({"tenant": 7}, "tenant"),
        ({"description": ""}, "description"),
        ({"expiresAt": "2030-13-01T00:00:00Z"}, "expiresAt"),
        ({"bad name": 1}, "bad name"),
    ],
)
def test_each_faulty_member_is_named(members: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequestData, match=named.replace("[", r"\[").replace("]", r"\]")):
        validated(reg(**members), TM)


def test_read_only_members_are_ignored() -> None:
    doc = validated(reg(status="failed", timesSent=3, createdAt="2001-01-01T00:00:00Z"), TM)
    assert not {"status", "timesSent", "createdAt"} & set(doc)


def test_operation_groups_spell_out_and_federation_ops_is_the_default() -> None:
    assert operation_set(reg()) == GROUPS["federationOps"]
    assert operation_set(reg(operations=["updateOps", "createEntity"])) == GROUPS["updateOps"] | {"createEntity"}
    assert "createEntity" not in GROUPS["federationOps"] and "retrieveEntity" in GROUPS["federationOps"]


def test_auxiliary_offers_consumption_operations_only() -> None:
    validated(reg(mode="auxiliary", operations=["retrieveOps", "queryBatch"]), TM)
    with pytest.raises(BadRequestData, match="auxiliary"):
        validated(reg(mode="auxiliary", operations=["redirectionOps"]), TM)


def test_conflicts_between_exclusive_and_redirect_registrations() -> None:
    first = compile_registration(DEFAULT_TENANT, exclusive("urn:r:1", "urn:ngsi-ld:Vehicle:A", ["speed"]))
    same = compile_registration(DEFAULT_TENANT, exclusive("urn:r:2", "urn:ngsi-ld:Vehicle:A", ["speed", "x"]))
    other_attr = compile_registration(DEFAULT_TENANT, exclusive("urn:r:3", "urn:ngsi-ld:Vehicle:A", ["fuel"]))
    other_id = compile_registration(DEFAULT_TENANT, exclusive("urn:r:4", "urn:ngsi-ld:Vehicle:B", ["speed"]))
    by_type = compile_registration(DEFAULT_TENANT, validated(reg(id="urn:r:5", mode="redirect"), TM))
    other_type = validated(reg(id="urn:r:6", mode="redirect", information=[{"entities": [{"type": "Bus"}]}]), TM)
    inclusive = compile_registration(DEFAULT_TENANT, validated(reg(id="urn:r:7"), TM))
    assert conflict(same, [first]) is first
    assert conflict(by_type, [first]) is first and conflict(first, [by_type]) is by_type
    assert conflict(other_attr, [first]) is None and conflict(other_id, [first]) is None
    assert conflict(compile_registration(DEFAULT_TENANT, other_type), [first]) is None
    assert conflict(inclusive, [first]) is None and conflict(first, [inclusive]) is None
    assert conflict(by_type, [compile_registration(DEFAULT_TENANT, other_type)]) is None  # redirects overlap


def test_merge_replaces_members_and_null_removes_optional_ones() -> None:
    current = reg(description="d", registrationName="n")
    merged = merge_fragment(current, {"description": None, "endpoint": "http://b.example"}, TM)
    assert "description" not in merged and merged["endpoint"] == "http://b.example" and merged["registrationName"]
    with pytest.raises(BadRequestData, match="mandatory"):
        merge_fragment(current, {"endpoint": None}, TM)
    with pytest.raises(BadRequestData, match="id"):
        merge_fragment(current, {"id": "urn:other"}, TM)


@pytest.mark.asyncio
async def test_operations_and_the_planner_index() -> None:
    store = MemoryStore()
    regs = Registrations(store)
    await regs.create(CALLER, reg(location={"type": "Point", "coordinates": [1, 1]}), TM)
    with pytest.raises(AlreadyExists):
        await regs.create(CALLER, reg(), TM)
    vehicle, speed = [VOCAB + "Vehicle"], [VOCAB + "speed"]
    assert [r.id for r in await regs.matching(DEFAULT_TENANT, "queryEntity", types=vehicle, attrs=speed)]
    assert await regs.matching(DEFAULT_TENANT, "createEntity", types=vehicle) == []  # not in federationOps
    assert await regs.matching(DEFAULT_TENANT, "queryEntity", types=[VOCAB + "Bus"]) == []
    assert await regs.matching(DEFAULT_TENANT, "queryEntity", attrs=[VOCAB + "fuel"]) == []
    assert await regs.matching("other", "queryEntity") == []
    # A change made by another process (another Registrations over the same store) is seen once the index is stale.
    other = Registrations(store)
    await other.delete(CALLER, "urn:ngsi-ld:ContextSourceRegistration:1")
    regs._checked = 0.0
    assert await regs.matching(DEFAULT_TENANT, "queryEntity") == []
    with pytest.raises(ResourceNotFound):
        await regs.retrieve(CALLER, "urn:ngsi-ld:ContextSourceRegistration:1")


@pytest.mark.asyncio
async def test_a_conflicting_create_is_refused_and_names_the_other_registration() -> None:
    regs = Registrations(MemoryStore())
    first = exclusive("urn:r:1", "urn:ngsi-ld:Vehicle:A", ["speed"])
    await regs.create(CALLER, rendered(RegistrationRecord(DEFAULT_TENANT, "urn:r:1", first), TM, False), TM)
    with pytest.raises(Conflict) as caught:
        await regs.create(CALLER, reg(id="urn:r:2", mode="redirect"), TM)
    assert caught.value.extra["conflictingRegistration"] == "urn:r:1"


@pytest.mark.asyncio
async def test_temporal_operations_match_registrations_with_an_interval_only() -> None:
    regs = Registrations(MemoryStore())
    await regs.create(CALLER, reg(id="urn:r:latest"), TM)
    interval = {"startAt": "2020-01-01T00:00:00Z"}
    ops = ["queryTemporal", "queryEntity"]
    await regs.create(CALLER, reg(id="urn:r:history", observationInterval=interval, operations=ops), TM)
    assert [r.id for r in await regs.matching(DEFAULT_TENANT, "queryEntity")] == ["urn:r:latest"]
    history = await regs.matching(DEFAULT_TENANT, "queryTemporal", types=[VOCAB + "Vehicle"])
    assert [r.id for r in history] == ["urn:r:history"]
    assert await regs.matching(DEFAULT_TENANT, "queryTemporal", types=[VOCAB + "Bus"]) == []
