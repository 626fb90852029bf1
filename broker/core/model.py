"""The canonical form in which the broker keeps entities (ARCHITECTURE decision 1).

Every @context a client uses is only a lens applied at the edge: what the store holds is expanded.

Entity (a plain dict, stored as JSON):

    {
      "id": "urn:ngsi-ld:Vehicle:A1",                 # the entity id, a URI, never compacted
      "type": ["https://example.org/Vehicle"],        # expanded type IRIs, at least one, in the client's order
      "scope": ["/Madrid/Gardens"],                   # optional, absent when the entity has none
      "createdAt": "2026-11-25T17:00:00.000000Z",     # system attributes, set by the broker (UTC)
      "modifiedAt": "2026-11-25T17:00:00.000000Z",
      "attrs": {                                      # attribute IRI -> list of instances
        "https://example.org/speed": [Instance, ...]  # at most one instance per datasetId (None = default)
      }
    }

Instance (one attribute instance):

    {
      "type": "Property",            # Property | Relationship | GeoProperty | LanguageProperty | VocabProperty
                                     # | JsonProperty | ListProperty | ListRelationship
      "value": ...,                  # Property, GeoProperty (GeoJSON kept as given); keys of JSON objects inside
                                     # a Property value are expanded IRIs (JSON-LD semantics), GeoJSON is not
      "object": "urn:..." | [..],    # Relationship
      "objectType": IRI | [IRI],     # Relationship / ListRelationship, expanded
      "languageMap": {"en": "..."},  # LanguageProperty
      "vocab": IRI | [IRI],          # VocabProperty, expanded
      "json": ...,                   # JsonProperty, never expanded
      "valueList": [...],            # ListProperty (elements expanded like a Property value)
      "objectList": ["urn:..", ..],  # ListRelationship
      "datasetId": "urn:..",         # absent for the default instance
      "unitCode": "CEL", "observedAt": "2026-..Z",
      "createdAt": "...", "modifiedAt": "...",
      "attrs": {IRI: [Instance]}     # sub-attributes, same shape, any depth; absent when none
    }

Member names of an instance are the NGSI-LD core terms: they are protected by the core @context, so they never
collide with an expanded attribute IRI, which always contains a colon.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final

Entity = dict[str, Any]
Instance = dict[str, Any]

NGSI_LD: Final = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB: Final = "https://uri.etsi.org/ngsi-ld/default-context/"
NULL_URI: Final = "urn:ngsi-ld:null"

ATTRIBUTE_TYPES: Final = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "VocabProperty",
        "JsonProperty",
        "ListProperty",
        "ListRelationship",
    }
)

# The member that carries the content of each attribute type.
CONTENT_MEMBER: Final = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}

# Members of an instance that are not sub-attributes (term names of the core @context).
INSTANCE_MEMBERS: Final = frozenset(
    {
        "type",
        "value",
        "object",
        "objectType",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "datasetId",
        "unitCode",
        "observedAt",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "attrs",
    }
)

SYSTEM_MEMBERS: Final = frozenset({"createdAt", "modifiedAt", "deletedAt"})

# Top-level members of an entity that are not attributes.
ENTITY_MEMBERS: Final = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "attrs"})

# Attribute names that the core @context reserves: a client may not use them as attribute names (clause 4.6.2).
RESERVED_ATTRIBUTE_NAMES: Final = frozenset(
    {
        "id",
        "type",
        "scope",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "@context",
        "value",
        "object",
        "observedAt",
        "unitCode",
        "datasetId",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "objectType",
        "instanceId",
        "expiresAt",
    }
)


_second_cache: list[tuple[int, str]] = [(-1, "")]


def now_iso() -> str:
    """The broker's clock as an NGSI-LD DateTime in UTC with microseconds, so successive writes order.

    It runs several times per request (profiled at 6-9% of a GET or PATCH with strftime), so the part up to the
    second is formatted once per second and reused.
    """
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached_second, prefix = _second_cache[0]
    if cached_second != second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache[0] = (second, prefix)
    return f"{prefix}.{fraction:06d}Z"
