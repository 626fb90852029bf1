"""The NGSI-LD core @context documents, bundled with the broker and never fetched.

Every version's document lives in `broker/ld/contexts/` (see the README there for provenance). Two views are
offered:

* `core_document(url)`: the document exactly as ETSI publishes it (for serving or persisting it);
* `processing_document(url)`: the copy handed to PyLD when a context is processed into a term map. It differs
  from the published one in two ways, both so that `[user contexts..., core v1.9]` can always be processed:
  - the cores before v1.9 lose `@protected`: a client may still reference e.g. the v1.8 core, whose protected
    definitions of `attributeCount`, `attributeDetails` and `entityMap` differ from v1.9's, and the v1.9 core
    appended last must be able to override them instead of failing with "protected term redefinition";
  - the v1.9 `ngsildproof` term loses its scoped context, which references
    https://w3id.org/security/data-integrity/v2: validating that scoped context would need a network fetch, and
    the broker's term maps do not apply scoped contexts anyway (see DEVIATIONS.md).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Final

import orjson

_BASE: Final = "https://uri.etsi.org/ngsi-ld/v1/"

#: The default core @context of the broker (ETSI GS CIM 009 V1.9.1).
CORE_CONTEXT_URL: Final = _BASE + "ngsi-ld-core-context-v1.9.jsonld"

# Every core URL -> the bundled file that answers it. v1.5 was never found in a stored copy: it resolves to
# v1.6 (decision record 0003).
_FILES: Final = {
    _BASE + "ngsi-ld-core-context.jsonld": "ngsi-ld-core-context-v1.0.jsonld",
    _BASE + "ngsi-ld-core-context-v1.3.jsonld": "ngsi-ld-core-context-v1.3.jsonld",
    _BASE + "ngsi-ld-core-context-v1.4.jsonld": "ngsi-ld-core-context-v1.4.jsonld",
    _BASE + "ngsi-ld-core-context-v1.5.jsonld": "ngsi-ld-core-context-v1.6.jsonld",
    _BASE + "ngsi-ld-core-context-v1.6.jsonld": "ngsi-ld-core-context-v1.6.jsonld",
    _BASE + "ngsi-ld-core-context-v1.7.jsonld": "ngsi-ld-core-context-v1.7.jsonld",
    _BASE + "ngsi-ld-core-context-v1.8.jsonld": "ngsi-ld-core-context-v1.8.jsonld",
    CORE_CONTEXT_URL: "ngsi-ld-core-context-v1.9.jsonld",
}

#: Every URL that names a core @context.
CORE_URLS: Final = frozenset(_FILES)


def is_core_url(url: str) -> bool:
    """True when `url` names one of the NGSI-LD core @context documents (any version)."""
    return url in _FILES


@functools.cache
def _raw(filename: str) -> bytes:
    return (resources.files("broker.ld") / "contexts" / filename).read_bytes()


def core_document(url: str) -> dict[str, Any] | None:
    """The published core document at `url` (a fresh copy the caller may keep or change), None if not core."""
    filename = _FILES.get(url)
    if filename is None:
        return None
    document: dict[str, Any] = orjson.loads(_raw(filename))
    return document


def core_document_bytes(url: str) -> bytes | None:
    """The published core document at `url` as the bundled bytes (to serve it without re-encoding)."""
    filename = _FILES.get(url)
    return None if filename is None else _raw(filename)


@functools.cache
def _processing_bytes(url: str) -> bytes:
    document = core_document(url)
    assert document is not None
    context = document["@context"]
    if url == CORE_CONTEXT_URL:
        proof = context.get("ngsildproof")
        if isinstance(proof, dict):
            proof.pop("@context", None)
    else:
        context.pop("@protected", None)
    return orjson.dumps(document)


def processing_document(url: str) -> dict[str, Any] | None:
    """The core document at `url` as the term-map builder hands it to PyLD (see the module docstring).

    A fresh copy each call: PyLD rewrites the documents it is given while it resolves them.
    """
    if url not in _FILES:
        return None
    document: dict[str, Any] = orjson.loads(_processing_bytes(url))
    return document
