"""Entity merging across sources (clause 4.3.6, record 0181, broker.federation.merge)."""

from __future__ import annotations

from broker.federation.merge import Fragment, merge_entities

E = "urn:ngsi-ld:T:1"


def _prop(value: object, **meta: object) -> dict[str, object]:
    return {"type": "Property", "value": value, **meta}


def test_types_are_united_and_the_most_recent_observed_at_wins() -> None:
    local = {"id": E, "type": "A", "t": _prop(1, observedAt="2026-01-01T00:00:00Z")}
    remote = {"id": E, "type": ["B", "A"], "t": _prop(2, observedAt="2026-01-02T00:00:00Z"), "u": _prop(3)}
    got = merge_entities([Fragment(local), Fragment(remote)])
    assert got["type"] == ["A", "B"] and got["id"] == E
    assert got["t"]["value"] == 2 and got["u"]["value"] == 3


def test_modified_at_decides_without_observed_at_and_ties_keep_the_first() -> None:
    a = {"id": E, "type": "A", "t": _prop(1, modifiedAt="2026-01-03T00:00:00Z"), "v": _prop("local")}
    b = {"id": E, "type": "A", "t": _prop(2, modifiedAt="2026-01-02T00:00:00Z"), "v": _prop("remote")}
    got = merge_entities([Fragment(a), Fragment(b)])
    assert got["t"]["value"] == 1 and got["v"]["value"] == "local" and got["type"] == "A"


def test_dataset_ids_are_kept_apart() -> None:
    a = {"id": E, "type": "A", "t": [_prop(1, datasetId="urn:d:1"), _prop(0)]}
    b = {"id": E, "type": "A", "t": _prop(2, datasetId="urn:d:2")}
    got = merge_entities([Fragment(a), Fragment(b)])
    assert sorted(str(i.get("datasetId")) for i in got["t"]) == ["None", "urn:d:1", "urn:d:2"]


def test_an_auxiliary_source_never_wins_but_fills_gaps() -> None:
    a = {"id": E, "type": "A", "t": _prop(1, observedAt="2020-01-01T00:00:00Z")}
    aux = {"id": E, "type": "A", "t": _prop(9, observedAt="2030-01-01T00:00:00Z"), "w": _prop(5)}
    got = merge_entities([Fragment(aux, auxiliary=True), Fragment(a)])
    assert got["t"]["value"] == 1 and got["w"]["value"] == 5
