"""The kinds of stored @contexts (broker.core.contexts, clause 5.13.1): ImplicitlyCreated ones made for an
@context that is not one URL, and Cached ones that are never served (5.13.4.4)."""

from __future__ import annotations

import pytest

from broker.core.contexts import Contexts
from broker.core.errors import OperationNotSupported
from broker.store.base import ContextRecord
from broker.store.memory import MemoryStore

pytestmark = pytest.mark.asyncio

BASE = "http://broker.example/"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"


async def test_one_url_needs_no_implicit_context() -> None:
    contexts = Contexts(MemoryStore(), timeout=1.0)
    for value in (None, CORE, [CORE]):
        assert await contexts.implicit(value, BASE) is None, value
    assert await contexts.list("ImplicitlyCreated") == []


async def test_an_array_or_object_is_hosted_once_per_content() -> None:
    contexts = Contexts(MemoryStore(), timeout=1.0)
    array = [{"Bus": "https://example.org/Bus"}, CORE]
    url = await contexts.implicit(array, BASE)
    assert url is not None and url.startswith(BASE + "ngsi-ld/v1/jsonldContexts/implicit-")
    assert await contexts.implicit([{"Bus": "https://example.org/Bus"}, CORE], "http://other/") == url
    other = await contexts.implicit({"Bus": "https://example.org/other#Bus"}, BASE)
    assert other not in (None, url)
    listed = await contexts.list("ImplicitlyCreated")
    assert sorted(r.url for r in listed) == sorted([url, other])
    local_id = url.rsplit("/", 1)[1]
    assert await contexts.serve(local_id) == {"@context": array}
    assert contexts.details(await contexts.get(local_id))["kind"] == "ImplicitlyCreated"
    assert (await contexts.resolver.resolve(url)).expand_term("Bus") == "https://example.org/Bus"


async def test_cached_context_is_not_served() -> None:
    store = MemoryStore()
    contexts = Contexts(store, timeout=1.0)
    await store.put_context(ContextRecord("c1", "https://remote/ctx.jsonld", "Cached", {"@context": {}}, "2026"))
    with pytest.raises(OperationNotSupported):
        await contexts.serve("c1")
    with pytest.raises(OperationNotSupported):
        await contexts.serve("https://remote/ctx.jsonld")  # by its original URL too (clause 6.30.2)
    assert contexts.details(await contexts.get("c1"))["kind"] == "Cached"
