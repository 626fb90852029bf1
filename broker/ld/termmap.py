"""A processed @context reduced to plain dictionaries: the per-request JSON-LD work is dict look-ups.

PyLD needs ~0.4 ms to expand one entity and ~0.8 ms to compact it, even with cached contexts, because it walks
the whole JSON-LD algorithm each time. The broker instead lets PyLD process each DISTINCT @context once (context
processing is where all the JSON-LD subtleties of term definitions live: protected terms, @import, prefixes,
keyword aliases, validation) and keeps only what NGSI-LD needs from the result:

    term -> IRI            (vocab-relative expansion of attribute names, types, keys inside values)
    IRI  -> preferred term (compaction, chosen the way PyLD's inverse context would for an attribute)
    prefix term -> IRI     (compact IRIs `prefix:suffix`, both ways)
    term -> definition     (@type coercion, @container, ... for callers that care)

The effective context is always `[user contexts..., core v1.9]`: the core comes last, so its (protected)
definitions of `id`, `type`, `value`, `Property`, @vocab, ... always win over whatever the client defined.

Expansion and compaction results are memoized per TermMap in plain dicts (bounded, since keys inside values are
client-chosen), so repeated calls are a single dict hit.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pyld import jsonld
from pyld.context_resolver import ContextResolver as PyLdContextResolver

from broker.core.errors import BadRequestData, LdContextNotAvailable, NgsiLdError
from broker.core.model import DEFAULT_VOCAB
from broker.ld.core import CORE_CONTEXT_URL, processing_document

#: What a client may supply as @context: a URL, an inline object, or a list of those (null resets, per JSON-LD).
ContextValue = str | dict[str, Any] | list[Any]

# JSON-LD keywords (JSON-LD 1.1 section 1.7); PyLD leaves them unexpanded.
KEYWORDS: Final = frozenset(jsonld.KEYWORDS)

# Same pattern as PyLD's _is_absolute_iri, so that "absolute IRI" means the same thing on both sides.
_ABSOLUTE_IRI = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*|_):[^\s]*$")
_KEYWORD_LIKE = re.compile(r"^@[a-zA-Z]+$")

# Memo bound per TermMap and per direction: keys inside values are chosen by clients, so an unbounded memo would
# let one client grow the broker's memory without limit. Past the bound, results are computed, not stored.
MEMO_LIMIT: Final = 4096

# How many @context URLs one processing may dereference (PyLD's default is 10; real contexts nest a few levels).
MAX_CONTEXT_URLS: Final = 32


class MissingContextDocument(LdContextNotAvailable):
    """A @context URL needed to process a context is not among the documents given to the builder.

    The resolver catches it, fetches `url`, and tries again; anyone else sees a plain LdContextNotAvailable.
    """

    def __init__(self, url: str) -> None:
        super().__init__(f"The @context {url} is not available")
        self.url = url


@dataclass(frozen=True, slots=True)
class TermDefinition:
    """The parts of a JSON-LD term definition that change how a term's values are read (its "coercions")."""

    iri: str | None  # None: the term is mapped to null (JSON-LD drops such keys)
    type_mapping: str | None = None  # "@id", "@vocab", "@json", "@none" or a datatype IRI
    container: tuple[str, ...] = ()
    language: str | None = None
    prefix: bool = False  # usable as the prefix of a compact IRI
    reverse: bool = False
    protected: bool = False
    has_scoped_context: bool = False


def context_key(value: ContextValue | None) -> str:
    """The identity of a @context value: the URL itself, or canonical JSON (sorted keys) of an inline value."""
    if value is None:
        return "url:" + CORE_CONTEXT_URL
    if isinstance(value, str):
        return "url:" + value
    return "json:" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def effective_context(value: ContextValue | None) -> list[Any]:
    """The context actually processed: the client's contexts, then the default core context last."""
    if value is None:
        return [CORE_CONTEXT_URL]
    if isinstance(value, list):
        return [*value, CORE_CONTEXT_URL]
    return [value, CORE_CONTEXT_URL]


def single_url(value: ContextValue | None) -> str | None:
    """The URL to put in a response Link header when the context is exactly one URL, else None."""
    if value is None:
        return CORE_CONTEXT_URL
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return None


class _Loader:
    """PyLD document loader that serves only the core documents and the documents it was given.

    It never touches the network: fetching is the resolver's job, done asynchronously beforehand.
    """

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self._documents = documents
        self.used: set[str] = set()

    def __call__(self, url: str, options: Any = None) -> dict[str, Any]:
        document = processing_document(url)
        if document is None:
            given = self._documents.get(url)
            if given is None:
                raise MissingContextDocument(url)
            # PyLD rewrites the documents it resolves (relative URLs, @import merging): hand it a copy.
            document = orjson.loads(orjson.dumps(given))
            self.used.add(url)
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}


def _translate(exc: BaseException) -> NgsiLdError:
    """Map what PyLD raised to the broker's errors: our own error if one is in the chain, else BadRequestData."""
    cause: BaseException | None = exc
    for _ in range(64):  # bounded: exception chains are short, but nothing forbids a cycle
        if cause is None:
            break
        if isinstance(cause, NgsiLdError):
            return cause
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, jsonld.JsonLdError):
        message = str(exc.args[0]) if exc.args else "invalid @context"
        code = f" ({exc.code})" if exc.code else ""
        details = exc.details if isinstance(exc.details, dict) else {}
        where = f" (term {details['term']!r})" if isinstance(details.get("term"), str) else ""
        return BadRequestData(f"Invalid @context: {message}{code}{where}")
    return BadRequestData(f"Invalid @context: {type(exc).__name__}: {exc}")


def _definition(mapping: Mapping[str, Any] | None) -> TermDefinition:
    if mapping is None:
        return TermDefinition(iri=None)
    language = mapping.get("@language")
    return TermDefinition(
        iri=mapping.get("@id"),
        type_mapping=mapping.get("@type"),
        container=tuple(mapping.get("@container") or ()),
        language=language if isinstance(language, str) else None,
        prefix=bool(mapping.get("_prefix")),
        reverse=bool(mapping.get("reverse")),
        protected=bool(mapping.get("protected")),
        has_scoped_context="@context" in mapping,
    )


def _selection_rank(d: TermDefinition) -> int:
    """How much PyLD would prefer a term when compacting an attribute (a node object) or a @type value.

    PyLD tries containers in the order @set, none and, within each, terms coerced to @id before uncoerced
    ones; with a single uncoerced term per IRI (the usual case) this gives exactly PyLD's choice. Terms PyLD
    would not use for a node value (other coercions or containers) still beat a compact IRI for NGSI-LD
    clients, so they come last instead of not at all (DEVIATIONS.md).
    """
    untyped = d.type_mapping in (None, "@none") and d.language is None
    if d.container == ("@set",):
        if d.type_mapping == "@id":
            return 0
        if untyped:
            return 1
    if not d.container:
        if d.type_mapping == "@id":
            return 2
        if untyped:
            return 3
    return 4


class TermMap:
    """A processed @context: expansion and compaction of terms by dict look-ups. Build with `TermMap.build`."""

    def __init__(
        self,
        context_value: ContextValue | None,
        active: Mapping[str, Any],
        urls: frozenset[str] = frozenset(),
    ) -> None:
        #: What the client supplied (a URL, a list, an inline object); the core URL when it supplied nothing.
        self.context_value: ContextValue = CORE_CONTEXT_URL if context_value is None else context_value
        #: The URL for a response Link header when the context is a single URL, else None.
        self.link_url: str | None = single_url(context_value)
        #: The non-core @context URLs this term map was built from (to invalidate it when one changes).
        self.urls = urls
        #: The identity this term map is cached under.
        self.key = context_key(context_value)
        self.vocab: str = active.get("@vocab") or DEFAULT_VOCAB

        mappings: Mapping[str, Any] = active["mappings"]
        self._definitions: dict[str, TermDefinition] = {t: _definition(m) for t, m in mappings.items()}
        self._terms: dict[str, str | None] = {t: d.iri for t, d in self._definitions.items()}
        self._prefixes: dict[str, str] = {
            t: d.iri for t, d in self._definitions.items() if d.prefix and d.iri and not d.reverse
        }
        # Candidate prefixes for compact IRIs; like PyLD, terms containing a colon are never prefixes.
        self._curie_prefixes = [(iri, t) for t, iri in self._prefixes.items() if ":" not in t]
        self._inverse, self._aliases = self._build_inverse()
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}
        self._relative = True  # compaction relative to @vocab and prefixes

    # -- construction ----------------------------------------------------------------------------------------
    @classmethod
    def build(cls, context_value: ContextValue | None, documents: Mapping[str, Any]) -> TermMap:
        """Process `[context_value..., core]` with PyLD, reading @context URLs only from `documents`.

        `documents` maps URL -> the whole fetched document (`{"@context": ...}`); core URLs are served from the
        bundled copies. Raises BadRequestData when PyLD refuses the context and LdContextNotAvailable
        (MissingContextDocument) when a URL it references is not in `documents`.
        """
        loader = _Loader(documents)
        options: dict[str, Any] = {
            "processingMode": "json-ld-1.1",
            "base": "",
            "documentLoader": loader,
            # A private resolver cache per build: PyLD's global one is keyed by URL and would keep serving an
            # old copy of a document after the broker reloaded it.
            "contextResolver": PyLdContextResolver({}, loader, max_context_urls=MAX_CONTEXT_URLS),
        }
        initial = {"processingMode": "json-ld-1.1", "mappings": {}}
        try:
            active = jsonld.JsonLdProcessor().process_context(initial, effective_context(context_value), options)
        except Exception as exc:  # PyLD raises JsonLdError, and plain TypeErrors etc. on odd input
            raise _translate(exc) from exc
        return cls(context_value, active, frozenset(loader.used))

    def _build_inverse(self) -> tuple[dict[str, str], dict[str, str]]:
        inverse: dict[str, str] = {}
        aliases: dict[str, str] = {}
        ranked = sorted(self._definitions.items(), key=lambda td: (_selection_rank(td[1]), len(td[0]), td[0]))
        for term, d in ranked:
            if d.iri is None or d.reverse:
                continue
            if d.iri in KEYWORDS:
                if not d.container and d.type_mapping is None:
                    aliases.setdefault(d.iri, term)
                continue
            inverse.setdefault(d.iri, term)
        return inverse, aliases

    # -- look-ups --------------------------------------------------------------------------------------------
    def definition(self, term: str) -> TermDefinition | None:
        """The definition of `term` in the effective context, None when the context does not define it."""
        return self._definitions.get(term)

    def expand_term(self, term: str) -> str:
        """Vocab-relative expansion of a key or @type value, as JSON-LD's IRI expansion does it.

        A term gives its IRI (a keyword for keyword aliases such as `type` -> `@type`); `prefix:suffix` with a
        prefix term gives the prefix IRI + suffix; an absolute IRI or blank node id is kept; anything else is
        appended to @vocab. Keywords and keyword-like strings (`@foo`) are returned unchanged (JSON-LD would
        drop the latter). Raises BadRequestData for a term the context maps to null.
        """
        hit = self._expanded.get(term)
        if hit is not None:
            return hit
        iri = self._expand(term)
        if len(self._expanded) < MEMO_LIMIT:
            self._expanded[term] = iri
        return iri

    def _expand(self, term: str) -> str:
        if term in KEYWORDS or _KEYWORD_LIKE.match(term):
            return term
        if term in self._terms:
            iri = self._terms[term]
            if iri is None:
                raise BadRequestData(f"{term!r} is mapped to null by the @context, so it has no IRI")
            return iri
        prefix, colon, suffix = term.partition(":")
        if colon and prefix:
            if prefix == "_" or suffix.startswith("//"):
                return term
            base = self._prefixes.get(prefix)
            if base is not None:
                return base + suffix
            if _ABSOLUTE_IRI.match(term):
                return term
        return self.vocab + term

    def _expands_to(self, candidate: str, iri: str) -> bool:
        try:
            return self.expand_term(candidate) == iri
        except BadRequestData:
            return False

    def compact_iri(self, iri: str) -> str:
        """Vocab-relative compaction, in PyLD's order, keeping only results that expand back to `iri`.

        A term for the IRI (ranked as PyLD's inverse context would for an attribute), else the IRI relative
        to @vocab when that suffix is not a term, else the shortest compact IRI `prefix:suffix`, else the IRI
        itself. Keywords compact to their alias (`@type` -> `type`).
        """
        hit = self._compacted.get(iri)
        if hit is not None:
            return hit
        term = self._compact(iri)
        if len(self._compacted) < MEMO_LIMIT:
            self._compacted[iri] = term
        return term

    def _compact(self, iri: str) -> str:
        if iri in KEYWORDS:
            return self._aliases.get(iri, iri)
        term = self._inverse.get(iri)
        if term is not None:
            return term
        vocab = self.vocab
        if not self._relative:
            return iri
        if iri.startswith(vocab) and iri != vocab:
            suffix = iri[len(vocab) :]
            # PyLD only checks that the suffix is not a term; "foo:bar" would then re-expand as a compact or
            # absolute IRI, hence the round-trip check.
            if suffix not in self._terms and self._expands_to(suffix, iri):
                return suffix
        best: str | None = None
        for base, prefix in self._curie_prefixes:
            if iri.startswith(base) and iri != base:
                curie = prefix + ":" + iri[len(base) :]
                if curie in self._terms or not self._expands_to(curie, iri):
                    continue
                if best is None or (len(curie), curie) < (len(best), best):
                    best = curie
        return best if best is not None else iri

    def terms_or_iris(self) -> TermMap:
        """This term map compacting an IRI only to a term of its own, else leaving it whole (no @vocab-relative
        name, no compact IRI): what a body for a context source with an @context of its own needs, where a name
        relative to the core @vocab would expand to something else (decision record 0191)."""
        out = copy.copy(self)
        out._compacted = {}
        out._relative = False
        return out

    def __repr__(self) -> str:
        return f"TermMap({self.key[:120]!r}, {len(self._terms)} terms)"


_CORE: TermMap | None = None


def core_termmap() -> TermMap:
    """The term map of the default core context alone (no user context), built once per process."""
    global _CORE
    if _CORE is None:
        _CORE = TermMap.build(None, {})
    return _CORE


__all__ = [
    "KEYWORDS",
    "ContextValue",
    "MissingContextDocument",
    "TermDefinition",
    "TermMap",
    "context_key",
    "core_termmap",
    "effective_context",
    "single_url",
]
