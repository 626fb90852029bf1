"""broker.ld.codec: normalized NGSI-LD <-> canonical entities, attribute type by attribute type."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from broker.core.errors import BadRequestData
from broker.core.model import DEFAULT_VOCAB, NGSI_LD
from broker.ld.codec import (
    compact_attrs,
    compact_entity,
    compact_types,
    expand_attrs,
    expand_entity,
    expand_types,
)
from broker.ld.termmap import TermMap, core_termmap

EX = "http://example.org/"
SCHEMA = "https://schema.org/"
CONTEXT = {
    "ex": EX,
    "schema": SCHEMA,
    "Vehicle": "ex:Vehicle",
    "Car": "ex:Car",
    "speed": "ex:speed",
    "accuracy": "ex:accuracy",
    "source": "ex:source",
    "brand": "schema:brand",
    "street": "schema:streetAddress",
    "owner": "ex:owner",
    "Person": "ex:Person",
    "category": "ex:category",
    "Commercial": "ex:Commercial",
}


@pytest.fixture(scope="module")
def tm() -> TermMap:
    return TermMap.build(CONTEXT, {})


def roundtrip(doc: dict[str, Any], tm: TermMap, expected: dict[str, Any]) -> None:
    """doc expands to `expected` and compacts back to doc, leaving doc untouched."""
    before = copy.deepcopy(doc)
    entity = expand_entity(doc, tm)
    assert entity == expected
    assert doc == before
    assert compact_entity(entity, tm) == doc


def entity(attrs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Vehicle:A1", "type": "Vehicle", **extra, **attrs}


def canonical(attrs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Vehicle:A1", "type": [EX + "Vehicle"], **extra, "attrs": attrs}


# -- every attribute type -------------------------------------------------------------------------------------
def test_property_with_nested_value(tm: TermMap) -> None:
    value = {"street": "Gran Via 1", "brand": {"name": "Seat", "ex:model": ["Ibiza", {"speed": 3}]}}
    roundtrip(
        entity(
            {"speed": {"type": "Property", "value": value, "unitCode": "KMH", "observedAt": "2026-11-25T17:00:00.000Z"}}
        ),
        tm,
        canonical(
            {
                EX + "speed": [
                    {
                        "type": "Property",
                        "value": {
                            SCHEMA + "streetAddress": "Gran Via 1",
                            SCHEMA + "brand": {
                                DEFAULT_VOCAB + "name": "Seat",
                                EX + "model": ["Ibiza", {EX + "speed": 3}],
                            },
                        },
                        "unitCode": "KMH",
                        "observedAt": "2026-11-25T17:00:00.000Z",
                    }
                ]
            }
        ),
    )


def test_relationship(tm: TermMap) -> None:
    roundtrip(
        entity({"owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "objectType": "Person"}}),
        tm,
        canonical(
            {EX + "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "objectType": EX + "Person"}]}
        ),
    )
    roundtrip(
        entity({"owner": {"type": "Relationship", "object": ["urn:a", "urn:b"], "objectType": ["Person", "Car"]}}),
        tm,
        canonical(
            {
                EX + "owner": [
                    {"type": "Relationship", "object": ["urn:a", "urn:b"], "objectType": [EX + "Person", EX + "Car"]}
                ]
            }
        ),
    )


def test_geoproperty_is_kept_verbatim(tm: TermMap) -> None:
    point = {"type": "Point", "coordinates": [-3.7, 40.4]}
    doc = entity({"location": {"type": "GeoProperty", "value": point}})
    result = expand_entity(doc, tm)
    assert result["attrs"] == {NGSI_LD + "location": [{"type": "GeoProperty", "value": point}]}
    assert result["attrs"][NGSI_LD + "location"][0]["value"] is point  # shared, not copied
    assert compact_entity(result, tm) == doc
    feature = {"type": "Feature", "geometry": point, "properties": {"speed": 1}}  # keys not expanded either
    assert (
        expand_attrs({"area": [{"type": "GeoProperty", "value": feature}]}, tm)[DEFAULT_VOCAB + "area"][0]["value"]
        is feature
    )


def test_language_property(tm: TermMap) -> None:
    languages = {"en": "Street", "es": ["Calle", "Vía"]}
    roundtrip(
        entity({"street": {"type": "LanguageProperty", "languageMap": languages}}),
        tm,
        canonical({SCHEMA + "streetAddress": [{"type": "LanguageProperty", "languageMap": languages}]}),
    )


def test_vocab_property(tm: TermMap) -> None:
    roundtrip(
        entity({"category": {"type": "VocabProperty", "vocab": "Commercial"}}),
        tm,
        canonical({EX + "category": [{"type": "VocabProperty", "vocab": EX + "Commercial"}]}),
    )
    roundtrip(
        entity({"category": {"type": "VocabProperty", "vocab": ["Commercial", "ex:Private", "public"]}}),
        tm,
        canonical(
            {
                EX + "category": [
                    {"type": "VocabProperty", "vocab": [EX + "Commercial", EX + "Private", DEFAULT_VOCAB + "public"]}
                ]
            }
        ),
    )


def test_json_property_is_never_expanded(tm: TermMap) -> None:
    payload = {"speed": 1, "nested": [{"brand": "x"}], "@id": "kept"}
    doc = entity({"raw": {"type": "JsonProperty", "json": payload}})
    result = expand_entity(doc, tm)
    assert result["attrs"][DEFAULT_VOCAB + "raw"] == [{"type": "JsonProperty", "json": payload}]
    assert result["attrs"][DEFAULT_VOCAB + "raw"][0]["json"] is payload
    assert compact_entity(result, tm) == doc


def test_list_property(tm: TermMap) -> None:
    roundtrip(
        entity({"speed": {"type": "ListProperty", "valueList": [1, [2, 3], {"brand": "b", "x": [{"speed": 0}]}]}}),
        tm,
        canonical(
            {
                EX + "speed": [
                    {
                        "type": "ListProperty",
                        "valueList": [1, [2, 3], {SCHEMA + "brand": "b", DEFAULT_VOCAB + "x": [{EX + "speed": 0}]}],
                    }
                ]
            }
        ),
    )


def test_list_relationship(tm: TermMap) -> None:
    roundtrip(
        entity({"owner": {"type": "ListRelationship", "objectList": ["urn:a", "urn:b"], "objectType": "Person"}}),
        tm,
        canonical(
            {
                EX + "owner": [
                    {"type": "ListRelationship", "objectList": ["urn:a", "urn:b"], "objectType": EX + "Person"}
                ]
            }
        ),
    )


# -- instances, sub-attributes, names ---------------------------------------------------------------------------
def test_multi_instance_by_dataset_id(tm: TermMap) -> None:
    instances = [
        {"type": "Property", "value": 50},
        {"type": "Property", "value": 55, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        {"type": "Property", "value": 53, "datasetId": "urn:ngsi-ld:Dataset:wheel"},
    ]
    roundtrip(entity({"speed": instances}), tm, canonical({EX + "speed": instances}))


def test_normalized_input_always_lists_instances(tm: TermMap) -> None:
    # the core hands over lists; one instance compacts to an object, like PyLD does
    doc = entity({"speed": [{"type": "Property", "value": 1}]})
    result = expand_entity(doc, tm)
    assert result["attrs"] == {EX + "speed": [{"type": "Property", "value": 1}]}
    assert compact_entity(result, tm)["speed"] == {"type": "Property", "value": 1}


def test_sub_attributes_at_depth(tm: TermMap) -> None:
    doc = entity(
        {
            "speed": {
                "type": "Property",
                "value": 55,
                "accuracy": {
                    "type": "Property",
                    "value": 0.5,
                    "source": {
                        "type": "Relationship",
                        "object": "urn:ngsi-ld:Device:1",
                        "brand": [
                            {"type": "Property", "value": {"street": "x"}},
                            {"type": "Property", "value": "y", "datasetId": "urn:d"},
                        ],
                    },
                },
            }
        }
    )
    roundtrip(
        doc,
        tm,
        canonical(
            {
                EX + "speed": [
                    {
                        "type": "Property",
                        "value": 55,
                        "attrs": {
                            EX + "accuracy": [
                                {
                                    "type": "Property",
                                    "value": 0.5,
                                    "attrs": {
                                        EX + "source": [
                                            {
                                                "type": "Relationship",
                                                "object": "urn:ngsi-ld:Device:1",
                                                "attrs": {
                                                    SCHEMA + "brand": [
                                                        {"type": "Property", "value": {SCHEMA + "streetAddress": "x"}},
                                                        {"type": "Property", "value": "y", "datasetId": "urn:d"},
                                                    ]
                                                },
                                            }
                                        ]
                                    },
                                }
                            ]
                        },
                    }
                ]
            }
        ),
    )


def test_compact_iris_absolute_iris_and_vocab(tm: TermMap) -> None:
    roundtrip(
        entity(
            {
                "ex:color": {"type": "Property", "value": "red"},
                "schema:width": {"type": "Property", "value": 2},
                "http://other.example/height": {"type": "Property", "value": 3},
                "temperature": {"type": "Property", "value": 20},
                "ngsi-ld:custom": {"type": "Property", "value": 1},
            }
        ),
        tm,
        canonical(
            {
                EX + "color": [{"type": "Property", "value": "red"}],
                SCHEMA + "width": [{"type": "Property", "value": 2}],
                "http://other.example/height": [{"type": "Property", "value": 3}],
                DEFAULT_VOCAB + "temperature": [{"type": "Property", "value": 20}],
                NGSI_LD + "custom": [{"type": "Property", "value": 1}],
            }
        ),
    )


def test_the_same_iri_written_two_ways_is_refused(tm: TermMap) -> None:
    with pytest.raises(BadRequestData, match="same IRI"):
        expand_entity(
            entity({"speed": [{"type": "Property", "value": 1}], "ex:speed": [{"type": "Property", "value": 2}]}), tm
        )
    with pytest.raises(BadRequestData, match="same IRI"):
        expand_attrs({"speed": [{"type": "Property", "value": {"brand": 1, "schema:brand": 2}}]}, tm)


def test_names_that_are_not_iris_are_refused() -> None:
    tm = TermMap.build({"gone": None, "alias": "@id"}, {})
    with pytest.raises(BadRequestData, match="mapped to null"):
        expand_attrs({"gone": [{"type": "Property", "value": 1}]}, tm)
    with pytest.raises(BadRequestData, match="keyword"):
        expand_attrs({"alias": [{"type": "Property", "value": 1}]}, tm)
    with pytest.raises(BadRequestData, match="keyword"):
        expand_types(["alias"], tm)
    with pytest.raises(BadRequestData, match="not a JSON object"):
        expand_attrs({"a": ["not an instance"]}, tm)


# -- entity members -------------------------------------------------------------------------------------------
def test_types(tm: TermMap) -> None:
    assert expand_types("Vehicle", tm) == [EX + "Vehicle"]
    assert expand_types(["Vehicle", "ex:Car", "Thing"], tm) == [EX + "Vehicle", EX + "Car", DEFAULT_VOCAB + "Thing"]
    assert expand_types(["Vehicle", "ex:Vehicle", "Car"], tm) == [EX + "Vehicle", EX + "Car"]  # once each
    assert compact_types([EX + "Vehicle"], tm) == "Vehicle"
    assert compact_types([EX + "Vehicle", EX + "Car"], tm) == ["Vehicle", "Car"]
    roundtrip(
        {"id": "urn:x", "type": ["Vehicle", "Car"]},
        tm,
        {"id": "urn:x", "type": [EX + "Vehicle", EX + "Car"], "attrs": {}},
    )


def test_scope_and_system_members(tm: TermMap) -> None:
    stamps = {"createdAt": "2026-01-01T00:00:00.000000Z", "modifiedAt": "2026-01-02T00:00:00.000000Z"}
    attr = {"type": "Property", "value": 1, **stamps}
    roundtrip(
        entity({"speed": attr}, scope=["/Madrid", "/Spain"], **stamps),
        tm,
        canonical({EX + "speed": [attr]}, scope=["/Madrid", "/Spain"], **stamps),
    )
    single = expand_entity(entity({}, scope="/Madrid"), tm)
    assert single["scope"] == ["/Madrid"]
    assert compact_entity(single, tm)["scope"] == "/Madrid"


def test_fragments(tm: TermMap) -> None:
    fragment = {"speed": [{"type": "Property", "value": 1}], "owner": [{"type": "Relationship", "object": "urn:p"}]}
    attrs = expand_attrs(fragment, tm)
    assert attrs == {
        EX + "speed": [{"type": "Property", "value": 1}],
        EX + "owner": [{"type": "Relationship", "object": "urn:p"}],
    }
    assert compact_attrs(attrs, tm) == {
        "speed": {"type": "Property", "value": 1},
        "owner": {"type": "Relationship", "object": "urn:p"},
    }


# -- the core @context always wins -------------------------------------------------------------------------------
def test_user_context_cannot_change_ngsi_ld_semantics() -> None:
    hostile = TermMap.build(
        {
            "type": "http://evil.example/type",
            "id": "http://evil.example/id",
            "value": "http://evil.example/value",
            "Property": "http://evil.example/Property",
            "object": "http://evil.example/object",
            "location": "http://evil.example/location",
            "ngsi-ld": "http://evil.example/",
        },
        {},
    )
    doc = {
        "id": "urn:x",
        "type": "T",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        "p": {"type": "Property", "value": {"value": 1, "ngsi-ld:x": 2}},
        "r": {"type": "Relationship", "object": "urn:y"},
    }
    core = core_termmap()
    assert expand_entity(doc, hostile) == expand_entity(doc, core)
    assert hostile.expand_term("value") == NGSI_LD + "hasValue"
    assert hostile.expand_term("type") == "@type"
    assert hostile.compact_iri(NGSI_LD + "hasValue") == "value"


def test_attribute_named_like_a_member_keeps_its_iri(tm: TermMap) -> None:
    # an attribute whose IRI is that of an NGSI-LD member must not take the member's place when compacted
    attrs = {
        NGSI_LD + "hasValue": [{"type": "Property", "value": 1}],
        NGSI_LD + "datasetId": [{"type": "Property", "value": 2}],
    }
    out = compact_entity(
        {"id": "urn:x", "type": [EX + "Vehicle"], "attrs": {NGSI_LD + "scope": attrs[NGSI_LD + "hasValue"]}}, tm
    )
    assert out[NGSI_LD + "scope"] == {"type": "Property", "value": 1}
    sub = compact_attrs({EX + "speed": [{"type": "Property", "value": 0, "attrs": attrs}]}, tm)["speed"]
    assert sub["value"] == 0
    assert sub[NGSI_LD + "hasValue"] == {"type": "Property", "value": 1}
    assert "datasetId" not in sub and sub[NGSI_LD + "datasetId"] == {"type": "Property", "value": 2}


# -- speed: nothing that needs no change is copied ------------------------------------------------------------
def test_unchanged_parts_are_shared(tm: TermMap) -> None:
    scalars = [1, 2, 3]
    languages = {"en": "x"}
    doc = entity(
        {
            "speed": [{"type": "Property", "value": scalars, "observedAt": "t"}],
            "street": [{"type": "LanguageProperty", "languageMap": languages}],
            "owner": [{"type": "Relationship", "object": ["urn:a"]}],
        }
    )
    result = expand_entity(doc, tm)
    assert result["attrs"][EX + "speed"][0]["value"] is scalars
    assert result["attrs"][SCHEMA + "streetAddress"][0]["languageMap"] is languages
    assert result["attrs"][EX + "owner"][0]["object"] is doc["owner"][0]["object"]
    back = compact_entity(result, tm)
    assert back["speed"]["value"] is scalars


# -- documented deviations from JSON-LD (broker/ld/DEVIATIONS.md) ---------------------------------------------
def test_values_stay_plain_json(tm: TermMap) -> None:
    value = {"type": "PostalAddress", "id": "urn:a", "speed": None, "list": [[1, 2], [3]], "@foo": 1}
    attrs = expand_attrs({"address": [{"type": "Property", "value": value}]}, tm)
    expanded = attrs[DEFAULT_VOCAB + "address"][0]["value"]
    # keyword aliases become the keywords but their values are not IRIs; nulls, nested arrays, @foo kept
    assert expanded == {
        "@type": "PostalAddress",
        "@id": "urn:a",
        EX + "speed": None,
        DEFAULT_VOCAB + "list": [[1, 2], [3]],
        "@foo": 1,
    }
    assert compact_attrs(attrs, tm)["address"]["value"] == value


def test_coercions_do_not_change_values() -> None:
    tm = TermMap.build(
        {
            "ex": EX,
            "ref": {"@id": "ex:ref", "@type": "@id"},
            "n": {"@id": "ex:n", "@type": "http://www.w3.org/2001/XMLSchema#integer"},
            "@language": "en",
        },
        {},
    )
    attrs = expand_attrs({"p": [{"type": "Property", "value": {"ref": "thing", "n": "5", "s": "hello"}}]}, tm)
    assert attrs[DEFAULT_VOCAB + "p"][0]["value"] == {EX + "ref": "thing", EX + "n": "5", DEFAULT_VOCAB + "s": "hello"}


def test_scoped_contexts_are_not_applied() -> None:
    # JSON-LD would let this property-scoped context redefine "value" inside "speed", protected or not
    tm = TermMap.build({"speed": {"@id": EX + "speed", "@context": {"value": "http://evil.example/v", "k": EX}}}, {})
    attrs = expand_attrs({"speed": [{"type": "Property", "value": {"k": 1}}]}, tm)
    assert attrs == {EX + "speed": [{"type": "Property", "value": {DEFAULT_VOCAB + "k": 1}}]}


def test_reverse_terms_are_plain_properties() -> None:
    tm = TermMap.build({"isPartOf": {"@reverse": EX + "hasPart"}}, {})
    assert list(expand_attrs({"isPartOf": [{"type": "Relationship", "object": "urn:a"}]}, tm)) == [EX + "hasPart"]


def test_uris_are_never_expanded() -> None:
    # PyLD would read "urn:ngsi-ld:..." as a compact IRI with the client's "urn" prefix
    tm = TermMap.build({"urn": EX}, {})
    doc = {
        "id": "urn:ngsi-ld:X:1",
        "type": "T",
        "r": {"type": "Relationship", "object": "urn:ngsi-ld:Y:1", "datasetId": "urn:ngsi-ld:Dataset:1"},
        "l": {"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Y:2"]},
    }
    result = expand_entity(doc, tm)
    assert result["id"] == "urn:ngsi-ld:X:1"
    assert result["attrs"][DEFAULT_VOCAB + "r"][0]["object"] == "urn:ngsi-ld:Y:1"
    assert result["attrs"][DEFAULT_VOCAB + "r"][0]["datasetId"] == "urn:ngsi-ld:Dataset:1"
    assert compact_entity(result, tm) == doc


def test_member_names_stay_whatever_the_context_aliases() -> None:
    # PyLD would write {"type": "Property", "val": 1}
    tm = TermMap.build({"val": NGSI_LD + "hasValue"}, {})
    attrs = {DEFAULT_VOCAB + "p": [{"type": "Property", "value": 1}]}
    assert compact_attrs(attrs, tm) == {"p": {"type": "Property", "value": 1}}


def test_iri_confused_with_a_prefix_is_returned_unchanged() -> None:
    # stored under a context without "ex"; PyLD refuses to compact it under one where "ex" is a prefix
    tm = TermMap.build({"ex": EX}, {})
    assert tm.compact_iri("ex:foo") == "ex:foo"
