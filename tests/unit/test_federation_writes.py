"""The write planner of broker.federation.writes (clauses 4.3.6.2, 4.3.6.3, 5.6.2.4; decision record 0190)."""

from __future__ import annotations

from typing import Any

from broker.core.registrations import Registration, compile_registration
from broker.federation.writes import route_entity, route_write

E = "urn:ngsi-ld:Junction:water:J1"
T = "https://example.org/Junction"
P, Q, R = "https://example.org/pressure", "https://example.org/head", "https://example.org/name"


def reg(reg_id: str, mode: str, names: list[str] | None, ops: list[str] | None = None, **entity: Any) -> Registration:
    info: dict[str, Any] = {"entities": [{"type": [T], **entity}]}
    if names:
        info["propertyNames"] = names
    doc: dict[str, Any] = {"id": reg_id, "type": "ContextSourceRegistration", "endpoint": "http://s.example"}
    doc |= {"information": [info], "mode": mode}
    if ops:
        doc["operations"] = ops
    return compile_registration("t", doc)


def test_exclusive_takes_its_attributes_away_from_the_local_write() -> None:
    ex = reg("urn:r:ex", "exclusive", [P], ["updateOps"], id=E)
    routing = route_write([ex], "updateAttrs", E, [T], {P, R})
    assert [(r.registration.id, r.attrs) for r in routing.remote] == [("urn:r:ex", frozenset({P}))]
    assert routing.local == frozenset({R}) and not routing.conflicts


def test_proxied_without_the_operation_is_a_conflict_and_still_not_local() -> None:
    ex = reg("urn:r:ex", "exclusive", [P], ["retrieveOps"], id=E)
    routing = route_write([ex], "updateAttrs", E, [T], {P})
    assert [r.attrs for r in routing.conflicts] == [frozenset({P})]
    assert routing.local == frozenset() and not routing.remote


def test_redirect_without_names_takes_the_whole_entity() -> None:
    rd = reg("urn:r:rd", "redirect", None, ["redirectionOps"], id=E)
    routing = route_write([rd], "appendAttrs", E, [T], {P, Q})
    assert routing.remote[0].attrs == frozenset({P, Q}) and routing.local == frozenset()


def test_inclusive_gets_a_copy_of_what_remains_and_auxiliary_nothing() -> None:
    ex = reg("urn:r:ex", "exclusive", [P], ["updateOps"], id=E)
    inc = reg("urn:r:inc", "inclusive", None, ["updateOps"])
    aux = reg("urn:r:aux", "auxiliary", None)
    routing = route_write([aux, inc, ex], "updateAttrs", E, [T], {P, Q})
    got = {r.registration.id: r.attrs for r in routing.remote}
    assert got == {"urn:r:ex": frozenset({P}), "urn:r:inc": frozenset({Q})}
    assert routing.local == frozenset({Q})


def test_registration_of_another_entity_or_type_routes_nothing() -> None:
    other = reg("urn:r:o", "exclusive", [P], ["updateOps"], id="urn:ngsi-ld:Junction:water:J2")
    inc = reg("urn:r:inc", "inclusive", None, ["updateOps"])
    routing = route_write([other, inc], "updateAttrs", E, ["https://example.org/Stop"], {P})
    assert not routing.distributed and routing.local == frozenset({P})


def test_unknown_types_match_only_a_selector_by_id_or_pattern() -> None:
    by_id = reg("urn:r:id", "redirect", [P], ["redirectionOps"], id=E)
    by_pattern = reg("urn:r:pat", "inclusive", None, ["updateOps"], idPattern="^urn:ngsi-ld:Junction:water:")
    by_type = reg("urn:r:type", "inclusive", None, ["updateOps"])
    routing = route_write([by_id, by_pattern, by_type], "updateAttrs", E, None, {P, Q})
    assert {r.registration.id: r.attrs for r in routing.remote} == {"urn:r:id": {P}, "urn:r:pat": {Q}}


def test_a_whole_entity_write_goes_to_every_writable_registration_holding_it() -> None:
    ex = reg("urn:r:ex", "exclusive", [P], ["deleteEntity"], id=E)
    rd = reg("urn:r:rd", "redirect", [Q], ["retrieveOps"], id=E)
    inc = reg("urn:r:inc", "inclusive", None, ["retrieveOps"])
    aux = reg("urn:r:aux", "auxiliary", None)
    other = reg("urn:r:o", "inclusive", None, ["deleteEntity"], id="urn:ngsi-ld:Junction:water:J2")
    routing = route_entity([ex, rd, inc, aux, other], "deleteEntity", E, [T])
    assert [r.registration.id for r in routing.remote] == ["urn:r:ex"]
    assert [r.registration.id for r in routing.conflicts] == ["urn:r:rd"]  # the inclusive one is skipped
