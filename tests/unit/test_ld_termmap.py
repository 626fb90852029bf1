"""broker.ld.core and broker.ld.termmap: bundled core contexts, context processing, term expansion/compaction."""

from __future__ import annotations

from typing import Any

import pytest
from pyld import jsonld

from broker.core.errors import BadRequestData, LdContextNotAvailable
from broker.core.model import DEFAULT_VOCAB, NGSI_LD
from broker.ld import termmap as termmap_module
from broker.ld.core import (
    CORE_CONTEXT_URL,
    CORE_URLS,
    core_document,
    core_document_bytes,
    is_core_url,
    processing_document,
)
from broker.ld.termmap import MissingContextDocument, TermMap, context_key, core_termmap, effective_context

EX = "http://example.org/"
V1 = "https://uri.etsi.org/ngsi-ld/v1/"


# -- core contexts --------------------------------------------------------------------------------------------
def test_core_context_url_is_v19() -> None:
    assert CORE_CONTEXT_URL == V1 + "ngsi-ld-core-context-v1.9.jsonld"
    assert is_core_url(CORE_CONTEXT_URL)
    assert not is_core_url("https://example.org/ngsi-ld-core-context.jsonld")


@pytest.mark.parametrize(
    "name",
    [
        "ngsi-ld-core-context.jsonld",
        *(f"ngsi-ld-core-context-v1.{minor}.jsonld" for minor in (3, 4, 5, 6, 7, 8, 9)),
    ],
)
def test_every_core_version_is_bundled(name: str) -> None:
    url = V1 + name
    assert url in CORE_URLS
    document = core_document(url)
    assert document is not None
    assert document["@context"]["@vocab"] == DEFAULT_VOCAB
    assert core_document_bytes(url) is not None
    TermMap.build(url, {})  # processable offline, with the v1.9 core appended


def test_v15_is_served_by_the_v16_document() -> None:
    assert core_document(V1 + "ngsi-ld-core-context-v1.5.jsonld") == core_document(
        V1 + "ngsi-ld-core-context-v1.6.jsonld"
    )


def test_core_document_is_a_fresh_copy() -> None:
    first = core_document(CORE_CONTEXT_URL)
    assert first is not None
    first["@context"]["value"] = "tampered"
    again = core_document(CORE_CONTEXT_URL)
    assert again is not None and again["@context"]["value"] == "ngsi-ld:hasValue"
    assert core_document("https://example.org/x") is None


def test_processing_copies_only_differ_where_documented() -> None:
    published, processed = core_document(CORE_CONTEXT_URL), processing_document(CORE_CONTEXT_URL)
    assert published is not None and processed is not None
    assert "@context" in published["@context"]["ngsildproof"]
    assert "@context" not in processed["@context"]["ngsildproof"]
    assert processed["@context"]["@protected"] is True
    v18 = processing_document(V1 + "ngsi-ld-core-context-v1.8.jsonld")
    assert v18 is not None and "@protected" not in v18["@context"]


def test_old_and_new_core_together() -> None:
    # v1.8's protected definitions differ from v1.9's: still processable, v1.9 (last) wins
    tm = TermMap.build([V1 + "ngsi-ld-core-context-v1.8.jsonld", CORE_CONTEXT_URL], {})
    assert tm.expand_term("attributeCount") == NGSI_LD + "attributeCount"
    # a term only the v1.0 core defines keeps its v1.0 meaning
    v10 = TermMap.build(V1 + "ngsi-ld-core-context.jsonld", {})
    assert v10.expand_term("name") == NGSI_LD + "name"
    assert core_termmap().expand_term("name") == DEFAULT_VOCAB + "name"


# -- building -------------------------------------------------------------------------------------------------
def test_context_identity_and_link_url() -> None:
    url = "http://ctx.example/a.jsonld"
    tm = TermMap.build(url, {url: {"@context": {"a": EX + "a"}}})
    assert tm.context_value == url and tm.link_url == url and tm.urls == frozenset({url})
    assert tm.key == context_key(url)
    inline = TermMap.build({"b": EX + "b", "a": EX + "a"}, {})
    assert inline.link_url is None
    assert inline.key == context_key({"a": EX + "a", "b": EX + "b"})  # key order does not matter
    listed = TermMap.build([url], {url: {"@context": {}}})
    assert listed.link_url == url
    assert TermMap.build([url, {"c": EX + "c"}], {url: {"@context": {}}}).link_url is None
    core = core_termmap()
    assert core.context_value == CORE_CONTEXT_URL and core.link_url == CORE_CONTEXT_URL
    assert core_termmap() is core


@pytest.mark.parametrize(
    "context",
    [
        {"@protected": True, "value": EX + "value"},  # protected redefinition of a core term
        {"a": 5},  # invalid term definition
        {"a": "relative"},  # not an IRI (no @vocab yet: the core comes after)
        {"@version": 2},
        {"a": {"@id": EX + "a", "@container": "@bogus"}},
        {"a": {"@id": EX + "a", "@context": {"b": 3}}},  # invalid scoped context
        42,
        [{"a": EX + "a"}, 7],
    ],
)
def test_rejects_what_pyld_refuses(context: Any) -> None:
    with pytest.raises(BadRequestData) as caught:
        TermMap.build(context, {})
    assert caught.value.detail.startswith("Invalid @context")


def test_missing_document_names_the_url() -> None:
    url = "http://ctx.example/missing.jsonld"
    for context in (url, [url], {"@import": url}, {"a": {"@id": EX + "a", "@context": url}}):
        with pytest.raises(LdContextNotAvailable) as caught:
            TermMap.build(context, {})
        assert isinstance(caught.value, MissingContextDocument)
        assert caught.value.url == url and url in caught.value.detail


def test_nested_and_imported_documents() -> None:
    a, b = "http://ctx.example/a.jsonld", "http://ctx.example/b.jsonld"
    documents = {
        a: {"@context": ["b.jsonld", {"speed": "ex:speed"}]},  # relative to a's URL
        b: {"@context": {"ex": EX}},
    }
    tm = TermMap.build(a, documents)
    assert tm.expand_term("speed") == EX + "speed"
    assert tm.urls == frozenset({a, b})
    imported = TermMap.build({"@import": b, "brand": "ex:brand"}, documents)
    assert imported.expand_term("brand") == EX + "brand"


def test_documents_are_not_mutated() -> None:
    a = "http://ctx.example/a.jsonld"
    document = {"@context": ["b.jsonld"]}
    TermMap.build(a, {a: document, "http://ctx.example/b.jsonld": {"@context": {}}})
    assert document == {"@context": ["b.jsonld"]}


# -- expansion ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tm() -> TermMap:
    return TermMap.build(
        {
            "ex": EX,
            "sch": "https://schema.org/",
            "speed": "ex:speed",
            "velocity": "ex:speed",  # a second term for one IRI
            "Vehicle": {"@id": "ex:Vehicle"},
            "tags": {"@id": "ex:tags", "@container": "@list"},
            "when": {"@id": "ex:when", "@type": "xsd:dateTime"},
            "gone": None,
            "value": "ex:notTheValue",  # the core wins
            "@vocab": "http://ignored.example/",  # the core's @vocab wins
        },
        {},
    )


@pytest.mark.parametrize(
    ("term", "iri"),
    [
        ("speed", EX + "speed"),
        ("Vehicle", EX + "Vehicle"),
        ("ex:foo", EX + "foo"),  # compact IRI with a context prefix
        ("sch:name", "https://schema.org/name"),
        ("ngsi-ld:foo", NGSI_LD + "foo"),  # core prefix
        ("http://other.example/x", "http://other.example/x"),  # absolute IRI
        ("ex://already/absolute", "ex://already/absolute"),  # suffix "//": never a compact IRI
        ("urn:x:y", "urn:x:y"),
        ("_:b0", "_:b0"),
        ("foo", DEFAULT_VOCAB + "foo"),  # @vocab fallback (the core's, not the client's)
        ("1a:b", DEFAULT_VOCAB + "1a:b"),  # not an absolute IRI
        ("value", NGSI_LD + "hasValue"),  # core protected
        ("location", NGSI_LD + "location"),
        ("type", "@type"),  # keyword alias
        ("@id", "@id"),
        ("@foo", "@foo"),  # keyword-like: kept (JSON-LD would drop it)
    ],
)
def test_expand_term(tm: TermMap, term: str, iri: str) -> None:
    assert tm.expand_term(term) == iri
    assert tm.expand_term(term) == iri  # memoized path


def test_null_term_has_no_iri(tm: TermMap) -> None:
    with pytest.raises(BadRequestData, match="mapped to null"):
        tm.expand_term("gone")


def test_definitions_expose_coercions(tm: TermMap) -> None:
    tags, when, value = tm.definition("tags"), tm.definition("when"), tm.definition("value")
    assert tags is not None and tags.container == ("@list",)
    assert when is not None and when.type_mapping == "xsd:dateTime"
    assert value is not None and value.protected and value.iri == NGSI_LD + "hasValue"
    assert tm.definition("nope") is None


# -- compaction -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("iri", "term"),
    [
        (EX + "speed", "speed"),  # of "speed" and "velocity", PyLD picks the shortest
        (EX + "Vehicle", "Vehicle"),
        (EX + "tags", "tags"),  # a term with a container beats a compact IRI for NGSI-LD (DEVIATIONS.md)
        (EX + "other", "ex:other"),
        ("https://schema.org/name", "sch:name"),
        (DEFAULT_VOCAB + "foo", "foo"),  # @vocab before compact IRIs, like PyLD (not "ngsi-ld:default-context/foo")
        (DEFAULT_VOCAB + "speed", "ngsi-ld:default-context/speed"),  # "speed" is a term: no vocab suffix
        (DEFAULT_VOCAB + "a:b", "ngsi-ld:default-context/a:b"),  # "a:b" would not read back: not a suffix
        (NGSI_LD + "hasValue", "value"),
        (NGSI_LD + "somethingElse", "ngsi-ld:somethingElse"),
        ("http://other.example/x", "http://other.example/x"),
        ("@type", "type"),
        ("@id", "id"),
    ],
)
def test_compact_iri(tm: TermMap, iri: str, term: str) -> None:
    assert tm.compact_iri(iri) == term
    assert tm.compact_iri(iri) == term  # memoized path
    assert tm.expand_term(term) == iri


def test_compact_iri_prefers_the_shortest_compact_iri() -> None:
    tm = TermMap.build({"long": "http://example.org/", "s": "http://example.org/deep/"}, {})
    assert tm.compact_iri("http://example.org/deep/x") == "s:x"
    assert tm.compact_iri("http://example.org/x") == "long:x"


def test_memo_is_bounded(tm: TermMap, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = TermMap.build({"ex": EX}, {})
    monkeypatch.setattr(termmap_module, "MEMO_LIMIT", 10)
    for n in range(50):
        assert fresh.expand_term(f"k{n}") == DEFAULT_VOCAB + f"k{n}"
        assert fresh.compact_iri(f"{EX}k{n}") == f"ex:k{n}"
    assert len(fresh._expanded) <= 10 and len(fresh._compacted) <= 10


SPEED = EX + "speed"


@pytest.mark.parametrize(
    "context",
    [
        {"zz": SPEED, "a": {"@id": SPEED, "@type": "@id"}},
        {"zz": SPEED, "a": {"@id": SPEED, "@container": "@set"}},
        {"zz": {"@id": SPEED, "@type": "@id"}, "a": {"@id": SPEED, "@container": "@set"}},
        {"zz": {"@id": SPEED, "@type": "@id", "@container": "@set"}, "a": {"@id": SPEED, "@container": "@set"}},
        {"zz": SPEED, "a": {"@id": SPEED, "@type": "@vocab"}},
        {"zz": SPEED, "a": {"@id": SPEED, "@container": "@list"}},
    ],
)
def test_term_choice_among_coerced_terms_is_pyld_s_for_attributes_and_types(context: dict[str, Any]) -> None:
    """With several terms for one IRI, PyLD's choice for an attribute (a node object) and for a type."""

    def loader(url: str, options: Any = None) -> dict[str, Any]:
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": processing_document(url),
        }

    attr = {"@type": [NGSI_LD + "Property"], NGSI_LD + "hasValue": [{"@value": 1}]}
    doc = [{"@id": "urn:x", "@type": [SPEED], SPEED: [attr]}]
    theirs = jsonld.compact(doc, effective_context(context), {"documentLoader": loader})
    ours = TermMap.build(context, {}).compact_iri(SPEED)
    assert theirs["type"] == ours
    assert ours in theirs
