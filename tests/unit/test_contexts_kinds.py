"""The kinds of stored @contexts (broker.core.contexts, clause 5.13.1): ImplicitlyCreated ones made for an
@context that is not one URL, and Cached ones that are never served (5.13.4.4)."""

from __future__ import annotations

import time
from datetime import datetime

import orjson
import pytest

from broker.core.contexts import CachedRefresher, Contexts
from broker.core.errors import OperationNotSupported
from broker.ld.resolver import freshness
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
    await store.put_context(
        ContextRecord("c1", "https://remote/ctx.jsonld", "Cached", {"@context": {}}, "2026-01-01T00:00:00Z")
    )
    with pytest.raises(OperationNotSupported):
        await contexts.serve("c1")
    with pytest.raises(OperationNotSupported):
        await contexts.serve("https://remote/ctx.jsonld")  # by its original URL too (clause 6.30.2)
    assert contexts.details(await contexts.get("c1"))["kind"] == "Cached"


class _Served:
    """A real local HTTP server whose one @context document can be changed or taken away."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        served = self
        self.document: dict[str, object] | None = {"@context": {"Bus": "https://example.org/v1#Bus"}}
        self.cache_control: str | None = None
        self.gets = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.gets += 1
                body = orjson.dumps(served.document) if served.document is not None else b""
                self.send_response(200 if served.document is not None else 404)
                self.send_header("Content-Length", str(len(body)))
                if served.cache_control is not None:
                    self.send_header("Cache-Control", served.cache_control)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ctx.jsonld"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_expired_cached_context_is_downloaded_again() -> None:
    """Clause 5.13.1: Cached @contexts are invalidated periodically; a copy older than max_age is downloaded again
    on the next pass, and when that download fails the copy stays in use (record 0139)."""
    served = _Served()
    try:
        store = MemoryStore()
        contexts = Contexts(store, timeout=2.0, max_age=60.0)
        refresher = CachedRefresher(contexts)
        assert (await contexts.resolver.resolve(served.url)).expand_term("Bus") == "https://example.org/v1#Bus"
        [record] = await contexts.list("Cached")
        details = contexts.details(record)
        assert details["expiresAt"] > details["createdAt"]
        assert await refresher.run_once() == []  # young: not downloaded again
        assert served.gets == 1
        served.document = {"@context": {"Bus": "https://example.org/v2#Bus"}}
        later = time.time() + 61
        assert await refresher.run_once(now=later) == [served.url]
        assert (await contexts.resolver.resolve(served.url)).expand_term("Bus") == "https://example.org/v2#Bus"
        [renewed] = await contexts.list("Cached")
        assert renewed.id == record.id and renewed.created_at > record.created_at
        served.document = None  # the origin is gone: the copy stays
        assert await refresher.run_once(now=time.time() + 122) == []
        assert (await contexts.resolver.resolve(served.url)).expand_term("Bus") == "https://example.org/v2#Bus"
        assert [r.body for r in await contexts.list("Cached")] == [renewed.body]
    finally:
        served.close()


async def test_refresher_runs_only_with_a_max_age() -> None:
    off = CachedRefresher(Contexts(MemoryStore(), timeout=1.0, max_age=0.0))
    off.start()
    assert off._task is None
    on = CachedRefresher(Contexts(MemoryStore(), timeout=1.0, max_age=86_400.0))
    assert on.interval == 3600.0
    on.start()
    assert on._task is not None and not on._task.done()
    await on.stop()
    assert on._task is None


async def test_the_origin_cache_control_wins_over_the_heuristic_max_age() -> None:
    """Clause 5.13.1: where the protocol gives an explicit expiration time, implementations shall comply."""
    served = _Served()
    served.cache_control = "public, max-age=3600"
    try:
        contexts = Contexts(MemoryStore(), timeout=2.0, max_age=60.0)
        refresher = CachedRefresher(contexts)
        await contexts.resolver.resolve(served.url)
        [record] = await contexts.list("Cached")
        assert record.extra == {"maxAge": 3600.0}
        created = datetime.fromisoformat(record.created_at.replace("Z", "+00:00")).timestamp()
        expires = datetime.fromisoformat(contexts.details(record)["expiresAt"].replace("Z", "+00:00")).timestamp()
        assert abs(expires - created - 3600) < 0.001
        assert await refresher.run_once(now=time.time() + 61) == []  # past the heuristic, within max-age
        assert await refresher.run_once(now=time.time() + 3601) == [served.url]
    finally:
        served.close()


async def test_freshness_reads_cache_control() -> None:
    assert freshness(None) is None and freshness("public") is None
    assert freshness("max-age=600") == 600.0
    assert freshness('public, MAX-AGE="30"') == 30.0
    assert freshness("no-cache") == 0.0 and freshness("max-age=60, no-store") == 0.0
    assert freshness("max-age=soon") is None and freshness("max-age=-5") == 0.0


async def test_another_brokers_hosted_context_is_not_taken_for_one_of_ours() -> None:
    """A federating broker forwards its client's Link to a context it hosts (clause 4.3.6.6): the same path on
    another host is not one of ours to refuse, it is fetched (preload has nothing, so the resolver downloads it)."""
    contexts = Contexts(MemoryStore(), timeout=1.0)
    record = await contexts.add_hosted({"@context": {"Bus": "https://example.org/Bus"}}, BASE)
    assert await contexts.preload(record.url) == {"@context": {"Bus": "https://example.org/Bus"}}
    assert await contexts.preload("http://city.example/ngsi-ld/v1/jsonldContexts/" + "f" * 32) is None
