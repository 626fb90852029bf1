"""What an administrator publishes as an open dataset (issue 19, record 0340): the checked dataset document.

    {"id": "stops", "type": "GtfsStop", "network": "sample", "title": "Bus stops",
     "description": "Every stop of the sample feed", "licence": "http://publications.europa.eu/resource/...",
     "publisher": "City of Lyon", "frequency": "DAILY", "keywords": ["transport"]}

A dataset selects the entities of one type (an @context term or an IRI, stored expanded) and, optionally, of one
network: the adapters' ids are `urn:ngsi-ld:<Type>:<network>:<native id>` (ARCHITECTURE decision 7), so a network
is an id prefix. An entity type the ontology marks as personal data (ontologies/personal_data.csv) cannot be
published: every attribute of such an entity is personal (record 0342).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from adapters.importer import id_prefix
from broker.core.errors import BadRequestData
from broker.core.normalize import is_uri
from broker.store.base import EntityFilter
from ontologies.personal_data import personal_entity_type

#: The update frequencies of the EU Publications Office's frequency authority table that a dataset may name.
FREQUENCIES: Final = frozenset(
    {"CONT", "UPDATE_CONT", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "ANNUAL", "IRREG", "NEVER"}
)
FREQUENCY_BASE: Final = "http://publications.europa.eu/resource/authority/frequency/"
#: Creative Commons Attribution 4.0 in the EU licence authority table: the licence when a dataset names none.
DEFAULT_LICENCE: Final = "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0"
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_MEMBERS: Final = frozenset(
    {"id", "type", "network", "tenant", "title", "description", "licence", "publisher", "frequency", "keywords"}
)


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    type: str  # expanded IRI
    title: str
    description: str
    licence: str = DEFAULT_LICENCE
    publisher: str = ""  # empty: the catalogue's publisher
    frequency: str = "DAILY"
    network: str | None = None
    tenant: str = ""
    keywords: tuple[str, ...] = ()
    issued: str = ""  # set by the broker when first published
    modified: str = ""  # set by the broker at every publication

    @property
    def type_name(self) -> str:
        """The last segment of the type IRI: the `<Type>` of the adapters' entity ids."""
        return re.split(r"[/#:]", self.type)[-1]

    def entity_filter(self) -> EntityFilter:
        pattern = None if self.network is None else "^" + re.escape(id_prefix(self.type_name, self.network))
        return EntityFilter(types=frozenset([self.type]), id_pattern=pattern)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "licence": self.licence,
            "frequency": self.frequency,
            "tenant": self.tenant,
            "issued": self.issued,
            "modified": self.modified,
        }
        if self.network is not None:
            doc["network"] = self.network
        if self.publisher:
            doc["publisher"] = self.publisher
        if self.keywords:
            doc["keywords"] = list(self.keywords)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DatasetSpec:
        """A spec as the store keeps it (already checked)."""
        return cls(
            id=doc["id"],
            type=doc["type"],
            title=doc["title"],
            description=doc["description"],
            licence=doc.get("licence", DEFAULT_LICENCE),
            publisher=doc.get("publisher", ""),
            frequency=doc.get("frequency", "DAILY"),
            network=doc.get("network"),
            tenant=doc.get("tenant", ""),
            keywords=tuple(doc.get("keywords", ())),
            issued=doc.get("issued", ""),
            modified=doc.get("modified", ""),
        )


def parse_spec(doc: Any, expand: Callable[[str], str], tenant: str = "") -> DatasetSpec:
    """A DatasetSpec from a client's document, its type expanded with `expand`; BadRequestData says what is
    wrong. `tenant` is the caller's, used when the document names none."""
    if not isinstance(doc, dict):
        raise BadRequestData("a dataset is a JSON object")
    unknown = set(doc) - _MEMBERS - {"@context"}
    if unknown:
        raise BadRequestData(f"unknown dataset member(s): {', '.join(sorted(unknown))}")
    dataset_id = _text(doc, "id", 64)
    if not _ID.match(dataset_id):
        raise BadRequestData("a dataset id is 1-64 lower-case letters, digits, '.', '_' or '-', starting alphanumeric")
    entity_type = expand(_text(doc, "type", 500))
    if not is_uri(entity_type):
        raise BadRequestData(f"dataset {dataset_id}: type {doc['type']!r} expands to no IRI")
    mark = personal_entity_type([entity_type])
    if mark is not None:
        raise BadRequestData(
            f"dataset {dataset_id}: entities of type {doc['type']} are personal data ({mark.category}): they are "
            "not published as open data"
        )
    licence = _optional(doc, "licence") or DEFAULT_LICENCE
    if not licence.startswith(("http://", "https://")):
        raise BadRequestData(f"dataset {dataset_id}: licence is the http(s) IRI of a licence document")
    frequency = _optional(doc, "frequency") or "DAILY"
    if frequency not in FREQUENCIES:
        raise BadRequestData(f"dataset {dataset_id}: frequency is one of {', '.join(sorted(FREQUENCIES))}")
    keywords = doc.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and 0 < len(k) <= 100 for k in keywords):
        raise BadRequestData(f"dataset {dataset_id}: keywords is a list of non-empty strings")
    return DatasetSpec(
        id=dataset_id,
        type=entity_type,
        title=_text(doc, "title"),
        description=_text(doc, "description"),
        licence=licence,
        publisher=_optional(doc, "publisher") or "",
        frequency=frequency,
        network=_optional(doc, "network"),
        tenant=_optional(doc, "tenant") or tenant,
        keywords=tuple(keywords),
    )


def _text(doc: dict[str, Any], name: str, limit: int = 2000) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequestData(f"a dataset needs {name}: a non-empty string of at most {limit} characters")
    return value


def _optional(doc: dict[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else _text(doc, name)
