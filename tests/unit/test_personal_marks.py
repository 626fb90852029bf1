"""The personal-data marks of the ontology (ontologies.personal_data, records 0222 and 0320)."""

from __future__ import annotations

import json
from pathlib import Path

from ontologies.personal_data import (
    CATEGORIES,
    LEGAL_BASES,
    SCHEMA_KEYWORD,
    TURTLE_HEAD,
    all_marks,
    annotate_schema,
    marks_turtle,
    personal_attribute,
    personal_in,
    personal_iris,
    personal_type,
)

METER = "https://smartdatamodels.org/dataModel.Device/SmartMeteringObservation"
AGORA = "https://w3id.org/agora/terms#"


def test_every_mark_names_a_known_kind_category_and_legal_basis() -> None:
    marks = all_marks()  # loading the table checks each row (BadMarks)
    assert {m.category for m in marks.values()} <= CATEGORIES
    assert {m.legal_basis for m in marks.values()} <= set(LEGAL_BASES)
    assert all(m.purpose and m.why for m in marks.values())


def test_attribute_and_type_marks_are_told_apart() -> None:
    email = personal_attribute("https://schema.org/email")
    assert email is not None and email.category == "contact"
    assert personal_attribute(METER) is None  # a type, not an attribute
    meter = personal_type(METER)
    assert meter is not None and meter.category == "consumption-profile"
    assert METER not in personal_iris() and "https://schema.org/email" in personal_iris()


def test_an_attribute_of_a_personal_type_is_personal_by_its_type() -> None:
    pressure = "https://smartdatamodels.org/dataModel.WaterDistributionManagementEPANET/pressure"
    assert personal_in(["https://example.org/Pipe"], pressure) is None
    mark = personal_in(["https://example.org/Pipe", METER], pressure)
    assert mark is not None and mark.iri == METER
    own = personal_in([METER], AGORA + "dataSubject")  # the attribute's own mark comes first
    assert own is not None and own.category == "identifier"


def test_what_the_adapters_emit_about_people_is_marked() -> None:
    assert personal_attribute(AGORA + "licensePlate") is not None  # GTFS-Realtime vehicle descriptor
    trace = personal_type(AGORA + "GtfsVehiclePosition")
    assert trace is not None and trace.category == "location-trace"
    assert personal_attribute(AGORA + "ticketHolder") is not None


def test_the_json_schemas_carry_the_marks_of_their_type_and_attributes() -> None:
    from broker.gdpr.export import project_termmap

    expand = project_termmap().expand_term
    stale = []
    for path in sorted((Path(__file__).resolve().parents[2] / "ontologies" / "schemas").rglob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        if annotate_schema(schema, expand) != schema:
            stale.append(path.name)
    # A new mark, or a schema of a marked type or attribute: write annotate_schema's answer into the file.
    assert stale == []
    meter = json.loads((Path(__file__).resolve().parents[2] / "ontologies/schemas/energy/"
                        "SmartMeteringObservation.schema.json").read_text(encoding="utf-8"))  # fmt: skip
    assert meter[SCHEMA_KEYWORD]["category"] == "consumption-profile"
    assert meter["properties"]["dataSubject"][SCHEMA_KEYWORD]["category"] == "identifier"


def test_the_ontology_states_every_mark_as_rdf() -> None:
    from rdflib import Graph, Literal, Namespace, URIRef
    from rdflib.namespace import OWL, RDF

    path = Path(__file__).resolve().parents[2] / "ontologies" / "agora.ttl"
    text = path.read_text(encoding="utf-8")
    # A new or changed mark: replace the block from TURTLE_HEAD to the end of agora.ttl with marks_turtle().
    assert text[text.index(TURTLE_HEAD):] == marks_turtle()
    graph, agora = Graph().parse(path, format="turtle"), Namespace(AGORA)
    for iri, mark in all_marks().items():
        subject = URIRef(iri)
        assert graph.value(subject, agora.personalDataCategory) == Literal(mark.category), iri
        assert graph.value(subject, agora.legalBasis) == Literal(mark.legal_basis), iri
        assert str(graph.value(subject, agora.personalDataReason)) == mark.why, iri
        assert (subject, RDF.type, OWL.Class if mark.kind == "type" else RDF.Property) in graph, iri
    marked = set(graph.subjects(agora.personalDataCategory, None))
    assert marked == {URIRef(iri) for iri in all_marks()}  # nothing marked in the ontology that the table does not
