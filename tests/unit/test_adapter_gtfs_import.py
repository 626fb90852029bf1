"""The importer's --changed-only comparison: what counts as already stored."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.importer import stored_as_translated

ENTITY: dict[str, Any] = {
    "id": "urn:ngsi-ld:GtfsStop:X:S",
    "type": "GtfsStop",
    "name": {"type": "LanguageProperty", "languageMap": {"en": "Central", "fr": "Centrale"}},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-116.7, 36.9]}},
    "delay": {"type": "Property", "value": 5, "unitCode": "SEC", "observedAt": "2009-01-01T09:00:00Z"},
    "hasParentStation": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsStation:X:ST"},
}
SYSTEM = {"createdAt": "2026-01-01T00:00:00Z", "modifiedAt": "2026-01-02T00:00:00Z"}


def stored(**changes: Any) -> dict[str, Any]:
    entity = {name: ({**attr, **SYSTEM} if isinstance(attr, dict) else attr) for name, attr in ENTITY.items()}
    entity.update(changes)
    return {**entity, **SYSTEM}


def test_identical_data_with_system_members_and_extra_attributes_is_unchanged() -> None:
    assert stored_as_translated(ENTITY, stored())
    assert stored_as_translated(ENTITY, stored(extra={"type": "Property", "value": 1}))  # kept by an update upsert


@pytest.mark.parametrize(
    "changes",
    [
        {"delay": {"type": "Property", "value": 6, "unitCode": "SEC", "observedAt": "2009-01-01T09:00:00Z"}},
        {"delay": {"type": "Property", "value": 5, "unitCode": "SEC", "observedAt": "2009-01-01T09:00:30Z"}},
        {"delay": {"type": "Property", "value": 5, "observedAt": "2009-01-01T09:00:00Z"}},
        {"name": {"type": "LanguageProperty", "languageMap": {"en": "Central"}}},
        {"hasParentStation": {"type": "Relationship", "object": "urn:ngsi-ld:GtfsStation:X:OTHER"}},
        {"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-116.7, 36.8]}}},
        {"type": "GtfsStation"},
    ],
)
def test_any_difference_in_the_translated_attributes_is_a_change(changes: dict[str, Any]) -> None:
    assert not stored_as_translated(ENTITY, stored(**changes))


def test_a_missing_attribute_or_entity_is_a_change() -> None:
    without = stored()
    del without["delay"]
    assert not stored_as_translated(ENTITY, without)
    assert not stored_as_translated(ENTITY, None)


def test_multi_instance_attributes_compare_regardless_of_order() -> None:
    instances = [{"type": "Property", "value": 1, "datasetId": "urn:a"}, {"type": "Property", "value": 2}]
    entity = {"id": "urn:x", "type": "T", "speed": instances}
    assert stored_as_translated(entity, {"id": "urn:x", "type": "T", "speed": list(reversed(instances))})
    assert not stored_as_translated(entity, {"id": "urn:x", "type": "T", "speed": instances[:1]})
