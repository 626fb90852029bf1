"""The fast path (TermMap + codec) against PyLD, the JSON-LD oracle, on random contexts and entities.

Expansion: `expand_entity` gives the canonical entity; `to_expanded` (below) turns that into JSON-LD expanded
form by the rules of the core @context alone, which must equal `jsonld.expand` of the normalized entity with
its @context. Compaction: `compact_entity` of that canonical entity must equal `jsonld.compact` of PyLD's
expansion, up to the normalizations written (with their reason) in `pyld_view`.

The generated contexts stay within what the canonical form represents (see broker/ld/DEVIATIONS.md): simple
and expanded term definitions, prefixes, compact IRIs, terms named like core terms, several terms for one IRI,
an ignored user @vocab, remote documents and @import. Coercions, containers, scoped contexts and default
languages change the JSON-LD reading of *values*, which the canonical form deliberately keeps as plain JSON;
the unit tests pin those deviations.
"""

from __future__ import annotations

import copy
import os
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from pyld import jsonld
from pyld.context_resolver import ContextResolver as PyLdContextResolver

from broker.core.errors import BadRequestData, LdContextNotAvailable
from broker.core.model import ATTRIBUTE_TYPES, DEFAULT_VOCAB, NGSI_LD, RESERVED_ATTRIBUTE_NAMES
from broker.ld.codec import compact_entity, expand_entity
from broker.ld.core import CORE_CONTEXT_URL, processing_document
from broker.ld.termmap import TermMap, effective_context

GEOJSON = "https://purl.org/geojson/vocab#"
REMOTE = "http://contexts.test/ctx.jsonld"
IMPORTED = "http://contexts.test/imported.jsonld"

PHASES = [p for p in Phase if os.environ.get("LD_NOSHRINK") is None or p is not Phase.shrink]
SETTINGS = settings(
    max_examples=int(os.environ.get("LD_EXAMPLES", "120")),
    phases=PHASES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- the oracle -----------------------------------------------------------------------------------------------
def pyld_options(documents: dict[str, Any]) -> dict[str, Any]:
    """PyLD options serving the same documents as the TermMap builder (the core ones included), offline."""

    def loader(url: str, options: Any = None) -> dict[str, Any]:
        document = processing_document(url)
        if document is None:
            document = copy.deepcopy(documents[url])
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}

    # A fresh resolver cache: PyLD's global one is keyed by URL and the same URL holds different test documents.
    return {"documentLoader": loader, "contextResolver": PyLdContextResolver({}, loader)}


def pyld_expand(doc: dict[str, Any], context: Any, documents: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = jsonld.expand(
        {"@context": effective_context(context), **doc}, pyld_options(documents)
    )
    return result


# -- random contexts ------------------------------------------------------------------------------------------
NAMESPACES = [
    "http://example.org/",
    "https://example.com/ns#",
    "http://schema.org/",
    "https://w3id.org/x/y/",
    DEFAULT_VOCAB,  # terms and prefixes that collide with the core @vocab
    NGSI_LD,  # and with the core namespace
]
PREFIX_NAMES = ["ex", "sch", "p1", "w3"]
LOCAL = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=6)
TERM_NAMES = ["speed", "brand", "temp", "owner", "color", "size", "Vehicle", "Car", "Street", "a", "b", "c", "ab"]
# Terms that the core context defines too: the core, processed last, must win.
CORE_TERM_NAMES = ["value", "type", "id", "Property", "location", "object", "observedAt", "status", "name", "q"]
COERCED_CORE_TERMS = frozenset({"id", "type", "object", "observedAt"})
# Names that are terms in no context: expanded with the core @vocab, or core terms like "location".
UNKNOWN_NAMES = ["temperature", "humidity", "foo", "Thing", "location", "status", "description", "q", "name"]


@st.composite
def contexts(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """A client @context value and the remote documents it references."""
    prefixes = {p: draw(st.sampled_from(NAMESPACES)) for p in draw(st.sets(st.sampled_from(PREFIX_NAMES)))}

    def iri() -> str:
        local = draw(LOCAL)
        options = [draw(st.sampled_from(NAMESPACES)) + local]
        options += [f"{p}:{local}" for p in prefixes]  # compact IRIs with the context's own prefixes
        options.append(f"ngsi-ld:{local}")  # a compact IRI with a core prefix
        return draw(st.sampled_from(options))

    terms: dict[str, Any] = {}
    for name in draw(st.sets(st.sampled_from(TERM_NAMES + CORE_TERM_NAMES), max_size=8)):
        target = iri()
        terms[name] = draw(st.sampled_from([target, {"@id": target}]))
    # Several terms for one IRI: compaction must pick the one PyLD picks.
    if terms and draw(st.booleans()):
        name, target = draw(st.sampled_from(sorted(terms.items())))
        terms[name + "x"] = target
    inline = {**prefixes, **terms}
    if draw(st.booleans()):
        inline["@vocab"] = "http://ignored.example/"  # overridden by the core @vocab, processed last
    shape = draw(st.sampled_from(["inline", "remote", "list", "import"]))
    if shape == "inline":
        return inline, {}
    if shape == "remote":
        return REMOTE, {REMOTE: {"@context": inline}}
    if shape == "import":
        return {"@import": IMPORTED}, {IMPORTED: {"@context": inline}}
    split = draw(st.integers(0, len(inline)))
    items = list(inline.items())
    # a remote document then an inline object: the later one overrides, prefixes may come from the first
    first, second = dict(items[:split]), dict(items[split:])
    return [REMOTE, second], {REMOTE: {"@context": first}}


def names(ctx: Any, documents: dict[str, Any]) -> list[str]:
    """Attribute / key / type names worth drawing for a context: its terms, its compact IRIs, unknown ones."""
    inline: dict[str, Any] = {}
    for doc in documents.values():
        inline.update(doc["@context"])
    for item in ctx if isinstance(ctx, list) else [ctx]:
        if isinstance(item, dict):
            inline.update(item)
    # "id" and "type" alias @id and @type: as keys inside values they are keywords, not names; core terms with
    # a coercion (object, observedAt) read values differently in JSON-LD (DEVIATIONS.md)
    out = [t for t in inline if not t.startswith("@") and t not in COERCED_CORE_TERMS]
    out += [f"{p}:{s}" for p in inline if p in PREFIX_NAMES for s in ("k1", "Zed")]
    out += [*UNKNOWN_NAMES, "http://other.example/attr", "ngsi-ld:extra", "geojson:shape"]
    return sorted(set(out))


# -- random normalized entities -------------------------------------------------------------------------------
SCALARS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(max_size=8),
)


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Property values: scalars, arrays and objects whose keys are context-dependent names."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3),
            st.dictionaries(st.sampled_from(keys), inner, min_size=1, max_size=3),
        ),
        max_leaves=8,
    )


def list_values(keys: list[str]) -> st.SearchStrategy[list[Any]]:
    """valueList members: like values, nested arrays included (they are lists of lists in JSON-LD)."""
    return st.lists(st.one_of(json_values(keys), st.lists(SCALARS, max_size=3)), min_size=1, max_size=4)


GEOMETRIES = st.one_of(
    st.builds(lambda x, y: {"type": "Point", "coordinates": [x, y]}, st.integers(-90, 90), st.integers(-90, 90)),
    st.builds(
        lambda pts: {"type": "LineString", "coordinates": pts},
        st.lists(st.lists(st.integers(-90, 90), min_size=2, max_size=2), min_size=2, max_size=3),
    ),
    st.just({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
)
URNS = st.integers(0, 99).map(lambda n: f"urn:ngsi-ld:Thing:{n}")
LANGUAGE_MAPS = st.dictionaries(
    st.sampled_from(["en", "fr", "es", "@none"]),
    st.one_of(st.text(max_size=5), st.lists(st.text(max_size=5), min_size=1, max_size=2)),
    min_size=1,
    max_size=3,
)
JSON_PAYLOADS = st.recursive(
    SCALARS | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def instances(draw: st.DrawFn, keys: list[str], depth: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(ATTRIBUTE_TYPES)))
    inst: dict[str, Any] = {"type": kind}
    terms = st.sampled_from(keys)
    if kind == "Property":
        inst["value"] = draw(json_values(keys))
        if draw(st.booleans()):
            inst["unitCode"] = "CEL"
    elif kind == "GeoProperty":
        inst["value"] = draw(GEOMETRIES)
    elif kind == "Relationship":
        inst["object"] = draw(URNS | st.lists(URNS, min_size=1, max_size=2))
        if draw(st.booleans()):
            inst["objectType"] = draw(terms | st.lists(terms, min_size=1, max_size=2))
    elif kind == "LanguageProperty":
        inst["languageMap"] = draw(LANGUAGE_MAPS)
    elif kind == "VocabProperty":
        inst["vocab"] = draw(terms | st.lists(terms, min_size=1, max_size=2))
    elif kind == "JsonProperty":
        inst["json"] = draw(JSON_PAYLOADS)
    elif kind == "ListProperty":
        inst["valueList"] = draw(list_values(keys))
    else:
        inst["objectList"] = draw(st.lists(URNS, min_size=1, max_size=3))
    if draw(st.booleans()):
        inst["observedAt"] = "2026-11-25T17:00:00.000Z"
    if depth > 0:
        inst.update(draw(attributes(keys, depth - 1, max_size=2)))
    return inst


@st.composite
def attributes(draw: st.DrawFn, keys: list[str], depth: int, max_size: int) -> dict[str, list[dict[str, Any]]]:
    attr_names = [k for k in keys if k not in RESERVED_ATTRIBUTE_NAMES and k != "type"]
    out: dict[str, list[dict[str, Any]]] = {}
    for name in draw(st.sets(st.sampled_from(attr_names), max_size=max_size)):
        count = draw(st.integers(1, 3))
        insts = [draw(instances(keys, depth)) for _ in range(count)]
        # at most one default instance, the others told apart by datasetId
        for n, inst in enumerate(insts):
            if n > 0 or (count > 1 and draw(st.booleans())):
                inst["datasetId"] = f"urn:ngsi-ld:dataset:{n}"
        out[name] = insts
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    ctx, documents = draw(contexts())
    keys = names(ctx, documents)
    types = [k for k in keys if k not in CORE_TERM_NAMES]
    entity: dict[str, Any] = {
        "id": draw(URNS),
        "type": draw(st.sampled_from(types) | st.lists(st.sampled_from(types), min_size=1, max_size=3, unique=True)),
    }
    if draw(st.booleans()):
        entity["scope"] = draw(st.sampled_from(["/Madrid", ["/Madrid/Gardens", "/Spain"]]))
    entity.update(draw(attributes(keys, depth=2, max_size=4)))
    return ctx, documents, entity


# -- canonical -> JSON-LD expanded form (by the core @context's rules alone) -----------------------------------
def expand_json(value: Any) -> list[Any]:
    """A plain JSON value under an uncoerced key: scalars become value objects, objects node objects, and
    nested arrays are flattened (JSON-LD 1.1 expansion, step 13.4.6 of section 4.1.2 / 19 for arrays)."""
    if isinstance(value, list):
        return [item for v in value for item in expand_json(v)]
    if isinstance(value, dict):
        return [{k: expand_json(v) for k, v in value.items()}]
    return [{"@value": value}]


def expand_list_members(values: list[Any]) -> list[Any]:
    """Members of an @list container: nested arrays are lists of lists (JSON-LD 1.1)."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.append({"@list": expand_list_members(v)})
        else:
            out.extend(expand_json(v))
    return out


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def expand_geo(geometry: dict[str, Any]) -> list[Any]:
    # core: "Point" etc. are geojson: terms, "coordinates" is an @list container
    return [
        {
            "@type": [GEOJSON + geometry["type"]],
            GEOJSON + "coordinates": [{"@list": expand_list_members(geometry["coordinates"])}],
        }
    ]


def expand_instance(inst: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": [NGSI_LD + inst["type"]]}
    for key, v in inst.items():
        if key == "value":
            out[NGSI_LD + "hasValue"] = expand_geo(v) if inst["type"] == "GeoProperty" else expand_json(v)
        elif key == "object":  # @type: @id
            out[NGSI_LD + "hasObject"] = [{"@id": o} for o in listify(v)]
        elif key in ("objectType", "vocab"):  # @type: @vocab, already expanded
            out[NGSI_LD + ("hasObjectType" if key == "objectType" else "hasVocab")] = [{"@id": t} for t in listify(v)]
        elif key == "languageMap":  # @container: @language; "@none" is the entry without a language
            out[NGSI_LD + "hasLanguageMap"] = [
                {"@value": s} if lang == "@none" else {"@value": s, "@language": lang}
                for lang, strings in v.items()
                for s in listify(strings)
            ]
        elif key == "json":  # @type: @json: a JSON literal, verbatim
            out[NGSI_LD + "hasJSON"] = [{"@value": v, "@type": "@json"}]
        elif key == "valueList":  # @container: @list
            out[NGSI_LD + "hasValueList"] = [{"@list": expand_list_members(v)}]
        elif key == "objectList":  # @container: @list, plain strings
            out[NGSI_LD + "hasObjectList"] = [{"@list": [{"@value": o} for o in v]}]
        elif key == "datasetId":  # @type: @id
            out[NGSI_LD + "datasetId"] = [{"@id": v}]
        elif key == "observedAt":  # @type: DateTime
            out[NGSI_LD + "observedAt"] = [{"@value": v, "@type": NGSI_LD + "DateTime"}]
        elif key == "unitCode":
            out[NGSI_LD + "unitCode"] = [{"@value": v}]
        elif key == "attrs":
            out.update(expand_attrs(v))
    return out


def expand_attrs(attrs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {iri: [expand_instance(i) for i in insts] for iri, insts in attrs.items()}


def to_expanded(entity: dict[str, Any]) -> dict[str, Any]:
    """The canonical entity in JSON-LD expanded form."""
    node: dict[str, Any] = {"@id": entity["id"], "@type": entity["type"]}
    if "scope" in entity:
        node[NGSI_LD + "scope"] = [{"@value": s} for s in entity["scope"]]
    node.update(expand_attrs(entity["attrs"]))
    return node


def sort_language_maps(node: Any) -> Any:
    """Representation noise: a language map is unordered, and PyLD emits its entries sorted by language."""
    if isinstance(node, list):
        return [sort_language_maps(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: sort_language_maps(v) for k, v in node.items()}
    key = NGSI_LD + "hasLanguageMap"
    if key in out:
        out[key] = sorted(out[key], key=lambda v: (v.get("@language", ""), v["@value"]))
    return out


# -- our compacted form as PyLD would write it ----------------------------------------------------------------
def collapse(value: Any) -> Any:
    """PyLD's compactArrays: one-element arrays become their element; nested arrays are flattened, since JSON-LD
    expansion already flattened them (arrays of arrays exist only inside @list containers)."""
    if isinstance(value, dict):
        return {k: collapse(v) for k, v in value.items()}
    if isinstance(value, list):
        flat = [collapse(v) for v in expand_flat(value)]
        return flat[0] if len(flat) == 1 else flat
    return value


def expand_flat(values: list[Any]) -> list[Any]:
    return [x for v in values for x in (expand_flat(v) if isinstance(v, list) else [v])]


def collapse_list_members(values: list[Any]) -> list[Any]:
    """Inside an @list, arrays stay arrays (lists of lists) but objects in them are compacted as usual."""
    return [collapse_list_members(v) if isinstance(v, list) else collapse(v) for v in values]


def pyld_json_literal(value: Any) -> Any:
    """PyLD (3.3) runs compactArrays over a @json literal that is an array: nested arrays flattened, a single
    element unwrapped ([[0], 1] -> [0, 1], [0] -> 0). A PyLD bug (a JSON literal is opaque): DEVIATIONS.md."""
    if isinstance(value, list):
        flat = expand_flat(value)
        return flat[0] if len(flat) == 1 else flat
    return value


def pyld_view(compacted: dict[str, Any]) -> dict[str, Any]:
    """Our compacted entity with PyLD's array collapsing applied (the one allowed difference)."""
    out: dict[str, Any] = {}
    for key, v in compacted.items():
        if isinstance(v, dict) and "type" in v and key not in ("id", "type", "scope"):
            out[key] = pyld_instance(v)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out[key] = [pyld_instance(i) for i in v]
        else:
            out[key] = collapse(v)
    return out


def pyld_instance(inst: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in inst.items():
        if key == "objectList":
            out[key] = v  # an @list of strings: verbatim in PyLD too
        elif key == "json":
            if isinstance(v, list) and v and not expand_flat(v):
                continue  # [[]] flattens to nothing and PyLD drops the member altogether (same bug)
            out[key] = pyld_json_literal(v)
        elif key == "valueList":
            out[key] = collapse_list_members(v)
        elif key == "value" and inst["type"] == "GeoProperty":
            out[key] = v  # "coordinates" is an @list container: arrays kept
        elif isinstance(v, dict) and "type" in v and key not in ("value", "languageMap"):
            out[key] = pyld_instance(v)  # a sub-attribute
        elif isinstance(v, list) and v and isinstance(v[0], dict) and key not in ("value",):
            out[key] = [pyld_instance(i) for i in v]  # a multi-instance sub-attribute
        else:
            out[key] = collapse(v)
    return out


def unique_types(types: list[str]) -> str | list[str]:
    """PyLD's compaction of types after removing duplicates, as our canonical form does (DEVIATIONS.md)."""
    once = list(dict.fromkeys(types))
    return once[0] if len(once) == 1 else once


def difference(a: Any, b: Any, path: str = "$") -> str | None:
    """Where two JSON values first differ (a readable assertion message for big generated entities)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path}: keys differ: {str(a)[:300]} != {str(b)[:300]}"
        for k in a:
            found = difference(a[k], b[k], f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            found = difference(x, y, f"{path}[{n}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


# -- the properties -------------------------------------------------------------------------------------------
def build(ctx: Any, documents: dict[str, Any]) -> TermMap:
    return TermMap.build(ctx, documents)


@SETTINGS
@given(scenarios())
def test_expand_and_compact_match_pyld(scenario: tuple[Any, dict[str, Any], dict[str, Any]]) -> None:
    ctx, documents, doc = scenario
    tm = build(ctx, documents)
    try:
        entity = expand_entity(doc, tm)
    except BadRequestData as exc:
        # two names of the entity expand to one IRI: JSON-LD would merge them, we refuse (DEVIATIONS.md)
        assert "same IRI" in exc.detail
        assume(False)
        raise
    expanded = pyld_expand(doc, ctx, documents)
    assert len(expanded) == 1
    # PyLD keeps a type given twice (e.g. as a term and as its IRI); we keep each type once (DEVIATIONS.md)
    expanded[0]["@type"] = list(dict.fromkeys(expanded[0]["@type"]))
    ours, pylds = sort_language_maps(to_expanded(entity)), sort_language_maps(expanded[0])
    assert ours == pylds, difference(ours, pylds)

    theirs = jsonld.compact(expanded, effective_context(ctx), pyld_options(documents))
    theirs.pop("@context")
    if isinstance(theirs["type"], list):
        theirs["type"] = unique_types(theirs["type"])
    compacted = pyld_view(compact_entity(entity, tm))
    assert compacted == theirs, difference(compacted, theirs)


@SETTINGS
@given(contexts(), st.data())
def test_expand_term_matches_pyld(context: tuple[Any, dict[str, Any]], data: st.DataObject) -> None:
    ctx, documents = context
    tm = build(ctx, documents)
    candidates = [*names(ctx, documents), "ngsi-ld:x", "geojson:y", "_:b0", "http://x.example//a", "a:b", "Property"]
    term = data.draw(st.sampled_from(candidates) | LOCAL)
    assume(term not in ("id", "type"))  # keyword aliases: PyLD does not make them properties
    expanded = pyld_expand({"@id": "urn:x", term: {"type": "Property", "value": 1}}, ctx, documents)
    keys = [k for k in expanded[0] if k != "@id"]
    assert keys == [tm.expand_term(term)]
    types = pyld_expand({"@id": "urn:x", "type": term}, ctx, documents)[0]["@type"]
    assert types == [tm.expand_term(term)]


IRIS = st.builds(
    lambda ns, local: ns + local,
    st.sampled_from([*NAMESPACES, "http://other.example/", GEOJSON]),
    LOCAL | st.sampled_from(["speed", "a", "Property", "hasValue", "x:y", "//z", "ex:1"]),
)


@SETTINGS
@given(contexts(), IRIS)
def test_compact_iri_matches_pyld(context: tuple[Any, dict[str, Any]], iri: str) -> None:
    ctx, documents = context
    tm = build(ctx, documents)
    attr = {"@type": [NGSI_LD + "Property"], NGSI_LD + "hasValue": [{"@value": 1}]}
    doc = [{"@id": "urn:x", "@type": [iri], iri: [attr]}]
    theirs = jsonld.compact(doc, effective_context(ctx), pyld_options(documents))
    ours = tm.compact_iri(iri)
    assert tm.expand_term(ours) == iri  # always round-trips
    attr_keys = [k for k in theirs if k not in ("@context", "id", "type")]
    if tm.expand_term(attr_keys[0]) != iri:
        # PyLD gave something that does not read back as the IRI (vocab suffix "x:y", CURIE "p://z"): DEVIATIONS.md
        return
    assert attr_keys == [ours]
    assert theirs["type"] == ours


# Term definitions of all sorts, valid or not, to check we refuse exactly what PyLD refuses.
DEFINITIONS = st.one_of(
    st.sampled_from(["http://example.org/a", "ex:b", "relative", "", "@type", "@id", "_:b", "@nope"]),
    st.none(),
    st.builds(dict, st.just([("@id", "http://example.org/c")])),
    st.sampled_from(
        [
            {"@id": "http://example.org/d", "@type": "@id"},
            {"@id": "http://example.org/e", "@container": "@list"},
            {"@id": "http://example.org/f", "@container": "@bogus"},
            {"@id": "http://example.org/g", "@type": "@bogus"},
            {"@reverse": "http://example.org/h"},
            {"@id": 5},
            {"@id": "http://example.org/i", "@protected": True},
            {"@id": "http://example.org/j", "@prefix": True},
            {"@id": "http://example.org/k", "@context": {"z": "http://example.org/z"}},
            {"@id": "http://example.org/l", "@context": "http://contexts.test/missing.jsonld"},
            ["not", "a", "definition"],
            42,
        ]
    ),
)


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["ex", "term", "value", "type", "@vocab", "@protected", "@version", "@base", "Property", "@language", ""]
        ),
        DEFINITIONS,
        max_size=4,
    )
)
def test_refuses_what_pyld_refuses(ctx: dict[str, Any]) -> None:
    try:
        jsonld.expand({"@context": effective_context(ctx), "@id": "urn:x"}, pyld_options({}))
        pyld_ok = True
    except Exception:  # PyLD raises JsonLdError and, on some malformed input, plain Python errors
        pyld_ok = False
    try:
        build(ctx, {})
        ours_ok = True
    except Exception as exc:
        assert isinstance(exc, (BadRequestData, LdContextNotAvailable)), repr(exc)
        ours_ok = False
    assert ours_ok == pyld_ok


def test_oracle_sees_the_bundled_core() -> None:
    """Sanity: the oracle's loader and ours serve the same core document (no network)."""
    options = pyld_options({})
    assert options["documentLoader"](CORE_CONTEXT_URL)["document"] == processing_document(CORE_CONTEXT_URL)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
