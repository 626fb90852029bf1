"""The alignment ontology (ontologies/agora.ttl) against the project @context and the copied vocabulary extracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import OWL, RDF, RDFS, SKOS, Graph, Literal, Namespace, URIRef

ONTOLOGIES = Path(__file__).resolve().parents[2] / "ontologies"
AGORA = Namespace("https://w3id.org/agora/terms#")
CLASS_ALIGNMENTS = {OWL.equivalentClass, RDFS.subClassOf}
PROPERTY_ALIGNMENTS = {OWL.equivalentProperty, RDFS.subPropertyOf}
SKOS_ALIGNMENTS = {SKOS.exactMatch, SKOS.closeMatch, SKOS.broadMatch, SKOS.narrowMatch, SKOS.relatedMatch}
ALIGNMENTS = CLASS_ALIGNMENTS | PROPERTY_ALIGNMENTS | SKOS_ALIGNMENTS
CLASS_TYPES = {OWL.Class, RDFS.Class}
PROPERTY_TYPES = {RDF.Property, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty}


@pytest.fixture(scope="module")
def ontology() -> Graph:
    graph = Graph()
    graph.parse(ONTOLOGIES / "agora.ttl", format="turtle")
    return graph


@pytest.fixture(scope="module")
def vocabularies() -> Graph:
    graph = Graph()
    for path in sorted((ONTOLOGIES / "vocabularies").glob("*.ttl")):
        graph.parse(path, format="turtle")
    return graph


def context_terms() -> dict[str, str]:
    terms: dict[str, str] = json.loads((ONTOLOGIES / "agora-context.jsonld").read_text())["@context"]
    return terms


def test_the_ontology_parses_and_declares_itself(ontology: Graph) -> None:
    assert (URIRef("https://w3id.org/agora/terms"), RDF.type, OWL.Ontology) in ontology
    assert len(ontology) > 500


def test_every_context_term_is_aligned_or_has_a_recorded_reason(ontology: Graph) -> None:
    missing = []
    for term, iri in context_terms().items():
        subject = URIRef(iri)
        aligned = any((subject, predicate, None) in ontology for predicate in ALIGNMENTS)
        reasons = [o for o in ontology.objects(subject, AGORA.unalignedReason) if isinstance(o, Literal) and str(o)]
        if not aligned and not reasons:
            missing.append(term)
    # A new term in agora-context.jsonld needs alignment statements, or an agora:unalignedReason, in agora.ttl.
    assert missing == []


def test_class_terms_align_to_classes_and_property_terms_to_properties(ontology: Graph, vocabularies: Graph) -> None:
    wrong = []
    for term, iri in context_terms().items():
        subject = URIRef(iri)
        is_class = term[:1].isupper()
        expected = CLASS_TYPES if is_class else PROPERTY_TYPES
        assert set(ontology.objects(subject, RDF.type)) & expected, f"{term} is not declared a class/property"
        for predicate in (PROPERTY_ALIGNMENTS if is_class else CLASS_ALIGNMENTS):
            wrong += [f"{term} {predicate} {o}" for o in ontology.objects(subject, predicate)]
        for predicate in (CLASS_ALIGNMENTS | PROPERTY_ALIGNMENTS):
            for target in ontology.objects(subject, predicate):
                declared = set(vocabularies.objects(target, RDF.type))
                if not declared & expected:
                    kind = "class" if is_class else "property"
                    wrong.append(f"{term} {predicate} {target}: the target is not a {kind}")
    assert wrong == []


def test_every_aligned_target_exists_in_the_copied_vocabularies(ontology: Graph, vocabularies: Graph) -> None:
    iris = {URIRef(iri) for iri in context_terms().values()}
    targets = {
        target
        for subject, predicate, target in ontology
        if predicate in ALIGNMENTS and subject in iris and isinstance(target, URIRef)
    }
    assert len(targets) > 50
    unknown = sorted(str(t) for t in targets if (t, RDF.type, None) not in vocabularies)
    assert unknown == []


def test_vocabulary_extracts_are_small_and_attributed() -> None:
    readme = (ONTOLOGIES / "vocabularies" / "README.md").read_text()
    for path in (ONTOLOGIES / "vocabularies").glob("*.ttl"):
        assert path.stat().st_size < 30_000, path.name
        assert path.name in readme, f"{path.name} has no source and licence in vocabularies/README.md"
        assert path.read_text().startswith("# Extract of the "), path.name


def test_the_context_has_no_duplicate_terms() -> None:
    pairs = json.loads((ONTOLOGIES / "agora-context.jsonld").read_text(), object_pairs_hook=list)
    terms = [name for name, _ in pairs[0][1]]
    assert len(terms) == len(set(terms))
