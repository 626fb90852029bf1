"""Entity merging across sources (clause 4.5.5.3, records 0181 and 0182, broker.federation.merge) and what a
source's answer becomes before it is merged (broker.federation.reads.canonical)."""

from __future__ import annotations

from typing import Any

from broker.federation.merge import Fragment, merge_entities
from broker.federation.reads import canonical
from broker.ld.termmap import core_termmap
from broker.temporal.times import to_micros

E = "urn:ngsi-ld:T:1"
V = "https://uri.etsi.org/ngsi-ld/default-context/"


def _prop(value: object, **meta: object) -> dict[str, object]:
    return {"type": "Property", "value": value, **meta}


def _entity(types: list[str], **attrs: Any) -> dict[str, Any]:
    return {"id": E, "type": types, "attrs": {V + k: v if isinstance(v, list) else [v] for k, v in attrs.items()}}


def test_types_are_united_and_the_most_recent_observed_at_wins() -> None:
    local = _entity(["A"], t=_prop(1, observedAt="2026-01-01T00:00:00Z"))
    remote = _entity(["B", "A"], t=_prop(2, observedAt="2026-01-02T00:00:00+00:00"), u=_prop(3))
    got = merge_entities([Fragment(local), Fragment(remote)])
    assert got["type"] == ["A", "B"] and got["id"] == E
    assert got["attrs"][V + "t"][0]["value"] == 2 and got["attrs"][V + "u"][0]["value"] == 3


def test_modified_at_decides_without_observed_at_and_ties_keep_the_first() -> None:
    a = _entity(["A"], t=_prop(1, modifiedAt="2026-01-03T00:00:00Z"), v=_prop("local"))
    b = _entity(["A"], t=_prop(2, modifiedAt="2026-01-02T00:00:00Z"), v=_prop("remote"))
    got = merge_entities([Fragment(a), Fragment(b)])
    assert got["attrs"][V + "t"][0]["value"] == 1 and got["attrs"][V + "v"][0]["value"] == "local"


def test_an_instance_with_observed_at_beats_one_without() -> None:
    a = _entity(["A"], t=_prop(1, modifiedAt="2030-01-01T00:00:00Z"))
    b = _entity(["A"], t=_prop(2, observedAt="2020-01-01T00:00:00Z"))
    assert merge_entities([Fragment(a), Fragment(b)])["attrs"][V + "t"][0]["value"] == 2


def test_dataset_ids_are_kept_apart_and_system_times_span_the_parts() -> None:
    a = {**_entity(["A"], t=[_prop(1, datasetId="urn:d:1"), _prop(0)]), "createdAt": "2026-01-02T00:00:00Z"}
    b = {**_entity(["A"], t=_prop(2, datasetId="urn:d:2")), "createdAt": "2026-01-01T00:00:00Z"}
    b["modifiedAt"] = "2026-03-01T00:00:00Z"
    got = merge_entities([Fragment(a), Fragment(b)])
    assert sorted(str(i.get("datasetId")) for i in got["attrs"][V + "t"]) == ["None", "urn:d:1", "urn:d:2"]
    assert got["createdAt"] == "2026-01-01T00:00:00Z" and got["modifiedAt"] == "2026-03-01T00:00:00Z"


def test_an_auxiliary_source_only_adds_attributes_no_other_source_has() -> None:
    a = _entity(["A"], t=_prop(1, observedAt="2020-01-01T00:00:00Z"))
    aux = _entity(["A"], t=[_prop(9, observedAt="2030-01-01T00:00:00Z"), _prop(8, datasetId="urn:d:x")], w=_prop(5))
    got = merge_entities([Fragment(aux, auxiliary=True), Fragment(a)])
    assert [i["value"] for i in got["attrs"][V + "t"]] == [1]  # not even its other datasetId: the attribute is held
    assert got["attrs"][V + "w"][0]["value"] == 5


def test_canonical_keeps_system_times_and_drops_what_expired() -> None:
    now = to_micros("2026-06-01T00:00:00Z")
    doc = {
        "id": E,
        "type": "A",
        "@context": "https://example.org/ignored",
        "modifiedAt": "2026-05-01T00:00:00Z",
        "t": _prop(1, modifiedAt="2026-05-02T00:00:00Z", createdAt="2026-04-01T00:00:00Z"),
        "gone": _prop(2, expiresAt="2026-05-31T00:00:00Z"),
        "kept": _prop(3, expiresAt="2026-06-02T00:00:00Z"),
    }
    got = canonical(doc, core_termmap(), now)
    assert got is not None and got["type"] == [V + "A"] and got["modifiedAt"] == "2026-05-01T00:00:00Z"
    assert got["attrs"][V + "t"][0]["modifiedAt"] == "2026-05-02T00:00:00Z"
    assert set(got["attrs"]) == {V + "t", V + "kept"} and "expiresAt" not in got["attrs"][V + "kept"][0]
    assert canonical({**doc, "expiresAt": "2026-05-01T00:00:00Z"}, core_termmap(), now) is None
