"""Attributes and entity types the ontology marks as personal data (GDPR art. 4(1)): records 0222 and 0320.

The marks are ``ontologies/personal_data.csv``, one expanded IRI a line: whether it names an ``attribute`` or an
entity ``type``, its category (below), the legal basis of the processing (GDPR art. 6(1)), its purpose (art. 5(1)(b))
and why it is personal. An entity of a marked type is personal as a whole: every attribute it carries is.

    personal_attribute("https://schema.org/email")           # PersonalMark(..., category="contact", ...)
    personal_type("https://schema.org/Person")               # PersonalMark(..., kind="type", ...)
    personal_in(entity_types, attribute_iri)                 # the mark that makes that attribute personal, or None

The access policies deny marked attributes by default (broker.core.access); the GDPR layer (broker.gdpr) finds,
exports, erases, retains and pseudonymises by them; open-data distributions leave them out.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

#: The categories of personal data a mark may name (the kinds art. 30(1)(c) records list).
CATEGORIES = frozenset(
    {"identifier", "identity", "contact", "location", "location-trace", "consumption-profile", "health"}
)
#: GDPR art. 6(1)(a)-(f), by the name the table uses.
LEGAL_BASES = {
    "consent": "consent, art. 6(1)(a)",
    "contract": "performance of a contract, art. 6(1)(b)",
    "legal-obligation": "compliance with a legal obligation, art. 6(1)(c)",
    "vital-interests": "vital interests, art. 6(1)(d)",
    "public-task": "a task in the public interest, art. 6(1)(e)",
    "legitimate-interests": "legitimate interests, art. 6(1)(f)",
}
KINDS = frozenset({"attribute", "type"})
#: The JSON Schema keyword that carries a mark (an annotation: validators ignore unknown keywords).
SCHEMA_KEYWORD = "x-personalData"


class PersonalMark(NamedTuple):
    iri: str
    category: str
    why: str
    kind: str = "attribute"
    legal_basis: str = "contract"
    purpose: str = ""


class BadMarks(ValueError):
    """The shipped table names an unknown kind, category or legal basis (caught by the tests, never at run time)."""


def _mark(row: dict[str, str]) -> PersonalMark:
    mark = PersonalMark(row["iri"], row["category"], row["why"], row["kind"], row["legal_basis"], row["purpose"])
    if mark.kind not in KINDS or mark.category not in CATEGORIES or mark.legal_basis not in LEGAL_BASES:
        raise BadMarks(f"personal_data.csv: {mark.iri}: unknown kind, category or legal basis in {row}")
    return mark


@cache
def all_marks() -> dict[str, PersonalMark]:
    """Every mark of the shipped table (attributes and types), by IRI."""
    text = resources.files("ontologies").joinpath("personal_data.csv").read_text(encoding="utf-8")
    return {row["iri"]: _mark(row) for row in csv.DictReader(io.StringIO(text))}


@cache
def personal_marks() -> dict[str, PersonalMark]:
    """The attribute marks, by attribute IRI."""
    return {iri: mark for iri, mark in all_marks().items() if mark.kind == "attribute"}


@cache
def type_marks() -> dict[str, PersonalMark]:
    """The entity-type marks, by type IRI."""
    return {iri: mark for iri, mark in all_marks().items() if mark.kind == "type"}


def personal_iris() -> frozenset[str]:
    """The IRIs of the marked attributes."""
    return frozenset(personal_marks())


def personal_attribute(iri: str) -> PersonalMark | None:
    """The mark of an expanded attribute name, or None when the table does not mark it."""
    return personal_marks().get(iri)


def personal_type(iri: str) -> PersonalMark | None:
    """The mark of an expanded entity type, or None when the table does not mark it."""
    return type_marks().get(iri)


def personal_entity_type(types: Iterable[str]) -> PersonalMark | None:
    """The mark of the first marked type among an entity's expanded types, or None."""
    return next((mark for mark in map(personal_type, types) if mark is not None), None)


def mark_doc(mark: PersonalMark) -> dict[str, str]:
    """A mark as the JSON Schemas carry it (the `x-personalData` keyword)."""
    return {"category": mark.category, "legalBasis": mark.legal_basis, "purpose": mark.purpose}


def annotate_schema(schema: dict[str, Any], expand: Callable[[str], str]) -> dict[str, Any]:
    """`schema` (a key-values JSON Schema of ontologies/schemas) with `x-personalData` on its root when its type is
    marked and on each marked property, and nowhere else; `expand` turns a term into its IRI (the project
    @context). The shipped schemas are kept equal to their annotation (tests/unit/test_personal_marks.py)."""
    out = copy.deepcopy(schema)
    out.pop(SCHEMA_KEYWORD, None)
    blocks = [out.get("properties", {}), *(part.get("properties", {}) for part in out.get("allOf", []))]
    type_names = [b.get("type", {}).get("const") for b in blocks] + [
        e for b in blocks for e in b.get("type", {}).get("enum", [])
    ]
    type_mark = next((m for t in type_names if isinstance(t, str) and (m := personal_type(expand(t)))), None)
    if type_mark is not None:
        out[SCHEMA_KEYWORD] = mark_doc(type_mark)
    for block in blocks:
        for name, prop in block.items():
            prop.pop(SCHEMA_KEYWORD, None)
            mark = personal_attribute(expand(name)) if name not in ("id", "type") else None
            if mark is not None:
                prop[SCHEMA_KEYWORD] = mark_doc(mark)
    return out


#: The head of the block of ontologies/agora.ttl that carries the marks as RDF (record 0326).
TURTLE_HEAD = "# --- Personal-data marks (issue 19, records 0320, 0326)"


def _turtle_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"@en'


def marks_turtle() -> str:
    """The marks as the ontology states them: one block of agora.ttl, written from personal_data.csv by this
    function and kept equal to it by tests/unit/test_personal_marks.py (a JSON-LD @context cannot carry them)."""
    lines = [
        TURTLE_HEAD,
        "# Written by ontologies.personal_data.marks_turtle() from ontologies/personal_data.csv: edit the table.",
        "",
        'agora:personalDataCategory a owl:AnnotationProperty ;\n    rdfs:label "personal data category"@en ;\n'
        '    rdfs:comment "The category of personal data an attribute holds, or every attribute of an entity of '
        'the class (record 0320)."@en .',
        'agora:legalBasis a owl:AnnotationProperty ;\n    rdfs:label "legal basis"@en ;\n'
        '    rdfs:comment "The GDPR art. 6(1) basis of the processing: consent, contract, legal-obligation, '
        'vital-interests, public-task or legitimate-interests."@en .',
        'agora:processingPurpose a owl:AnnotationProperty ;\n    rdfs:label "processing purpose"@en ;\n'
        '    rdfs:comment "What the personal data is processed for (GDPR art. 5(1)(b))."@en .',
        'agora:personalDataReason a owl:AnnotationProperty ;\n    rdfs:label "personal data reason"@en ;\n'
        '    rdfs:comment "Why the attribute or class holds personal data."@en .',
    ]
    for iri, mark in all_marks().items():
        kind = "owl:Class" if mark.kind == "type" else "rdf:Property"
        lines.append(
            f"<{iri}> a {kind} ;\n    agora:personalDataCategory \"{mark.category}\" ;\n"
            f"    agora:legalBasis \"{mark.legal_basis}\" ;\n"
            f"    agora:processingPurpose {_turtle_text(mark.purpose)} ;\n"
            f"    agora:personalDataReason {_turtle_text(mark.why)} ."
        )
    return "\n".join(lines) + "\n"


def personal_in(types: Iterable[str], attr: str) -> PersonalMark | None:
    """Why attribute `attr` of an entity of these types is personal: its own mark, else its entity's type mark."""
    return personal_attribute(attr) or personal_entity_type(types)
