"""The pure parts of the distributed writes (broker.federation.distributed and .batches; records 0191-0195):
what a source's answer becomes, the wire form of a part, and the batch fallbacks' operations."""

from __future__ import annotations

from typing import Any

from broker.core.registrations import compile_registration
from broker.federation.batches import Item, batch_answer, batch_op
from broker.federation.distributed import Part, partial_failures, source_failure, wire_attrs, wire_entity
from broker.federation.forwarder import SourceError, SourceReply

E1, E2 = "urn:ngsi-ld:Junction:1", "urn:ngsi-ld:Junction:2"
P = "https://uri.etsi.org/ngsi-ld/default-context/pressure"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
REG = compile_registration(
    "",
    {
        "id": "urn:r:1",
        "type": "ContextSourceRegistration",
        "endpoint": "http://s.example",
        "information": [{"entities": [{"type": ["https://x/T"]}]}],
    },
)
PART = Part(REG, frozenset({P}), "PATCH", "/ngsi-ld/v1/entities/x/attrs")


def reply(status: int, body: Any = None) -> SourceReply:
    return SourceReply("urn:r:1", "http://s.example", status, {}, body)


def test_a_source_error_keeps_its_problem_and_an_outage_becomes_502_or_504() -> None:
    own = source_failure(PART, reply(404, {"type": ERR + "ResourceNotFound", "detail": "no"}))
    assert own.problem["type"] == ERR + "ResourceNotFound" and own.reason == "no" and own.attrs == {P}
    assert own.warning == '199 s.example "registration urn:r:1: 404: no"'
    slow = source_failure(PART, SourceError("urn:r:1", "http://s.example", "timeout", "no answer within 1 s"))
    assert slow.problem["status"] == 504 and slow.warning is not None and "timeout" in slow.warning
    down = source_failure(PART, SourceError("urn:r:1", "http://s.example", "unreachable", "refused"))
    assert down.problem["status"] == 502 and down.problem["type"] == ERR + "InternalError"


def test_a_source_207_fails_only_the_attributes_it_names() -> None:
    body = {"updated": [], "notUpdated": [{"attributeName": P, "reason": "read-only"}]}
    [failure] = partial_failures(PART, reply(207, body))
    assert failure.attrs == {P} and "read-only" in failure.reason


def test_wire_names_are_core_terms_or_full_iris() -> None:
    fragment = {"id": E1, "type": ["https://x/T"], "attrs": {P: [{"type": "Property", "value": 1}]}}
    assert wire_attrs(fragment, {P}) == {P: {"type": "Property", "value": 1}}
    assert wire_entity(fragment, set()) == {"id": E1, "type": "https://x/T"}


def test_batch_answers_merge_entity_by_entity() -> None:
    items = [Item(E1, frozenset({P}), {}), Item(E2, frozenset({P}), {})]
    part = Part(REG, frozenset(), "POST", "/ngsi-ld/v1/entityOperations/upsert", [])
    created = batch_answer(part, items, reply(201, [E1, "urn:other"]))
    assert created.success == [E1, E2] and created.created == [E1]
    partial = {"success": [E2], "errors": [{"entityId": E1, "error": {"type": ERR + "BadRequestData"}}]}
    mixed = batch_answer(part, items, reply(207, partial))
    assert mixed.success == [E2] and [(e, f.problem["type"]) for e, f in mixed.failures] == [
        (E1, ERR + "BadRequestData")
    ]
    down = batch_answer(part, items, SourceError("urn:r:1", "http://s.example", "timeout", "slow"))
    assert [e for e, _ in down.failures] == [E1, E2] and not down.success


def test_each_batch_operation_names_its_fallbacks() -> None:
    assert batch_op("upsertBatch").alternatives == {"upsertBatch", "createEntity", "replaceEntity"}
    assert batch_op("upsertBatch", update_mode=True).params == {"options": "update"}
    assert batch_op("updateBatch", no_overwrite=True).single == "appendAttrs"
    assert batch_op("deleteBatch").path == "/entityOperations/delete"
