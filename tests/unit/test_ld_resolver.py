"""broker.ld.resolver against a real HTTP server on 127.0.0.1 (http.server in a thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import orjson
import pytest

from broker.core.errors import BadRequestData, LdContextNotAvailable
from broker.core.model import DEFAULT_VOCAB
from broker.ld.core import CORE_CONTEXT_URL
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import core_termmap

T = TypeVar("T")
EX = "http://example.org/"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Each test runs its own event loop: no dependency on an asyncio pytest plugin's configuration."""
    return asyncio.run(coro)


class ContextServer:
    """Serves @context documents from `routes`; counts requests; `/hang` never answers until released."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path == "/hang":
                    outer.release.wait(30)
                    return
                time.sleep(outer.delay)
                status, body = outer.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, document: Any, status: int = 200) -> str:
        body = document if isinstance(document, bytes) else orjson.dumps(document)
        self.routes[path] = (status, body)
        return self.url(path)


@pytest.fixture
def server() -> Iterator[ContextServer]:
    srv = ContextServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()


# -- resolving ------------------------------------------------------------------------------------------------
def test_remote_context_is_fetched_once(server: ContextServer) -> None:
    url = server.serve("/ctx.jsonld", {"@context": {"speed": EX + "speed"}})

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        tm = await resolver.resolve(url)
        assert tm.expand_term("speed") == EX + "speed"
        assert tm.link_url == url and tm.context_value == url
        assert await resolver.resolve(url) is tm
        assert server.hits["/ctx.jsonld"] == 1
        cached = resolver.document(url)
        assert cached is not None and cached.origin == "fetched" and cached.fetched_at.endswith("Z")
        assert resolver.usage(url)[0] == 2
        await resolver.aclose()

    run(go())


def test_nested_and_imported_references(server: ContextServer) -> None:
    server.serve("/base.jsonld", {"@context": {"ex": EX}})
    server.serve("/mid.jsonld", {"@context": ["base.jsonld", {"brand": "ex:brand"}]})  # relative reference
    top = server.serve("/top.jsonld", {"@context": [server.url("/mid.jsonld"), {"speed": "ex:speed"}]})
    imported = server.serve("/imp.jsonld", {"@context": {"color": "ex:color", "ex": EX}})

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        tm = await resolver.resolve(top)
        assert (tm.expand_term("speed"), tm.expand_term("brand")) == (EX + "speed", EX + "brand")
        assert tm.urls == {top, server.url("/mid.jsonld"), server.url("/base.jsonld")}
        inline = await resolver.resolve([{"@import": imported, "size": "ex:size"}, top])
        assert (inline.expand_term("color"), inline.expand_term("size")) == (EX + "color", EX + "size")
        assert inline.link_url is None
        assert server.hits["/base.jsonld"] == 1  # the second context reused the cached documents
        await resolver.aclose()

    run(go())


def test_inline_contexts_are_cached_by_value(server: ContextServer) -> None:
    async def go() -> None:
        resolver = ContextResolver()
        first = await resolver.resolve({"a": EX + "a", "b": EX + "b"})
        assert await resolver.resolve({"b": EX + "b", "a": EX + "a"}) is first
        assert await resolver.resolve(None) is core_termmap() is resolver.core_termmap()
        assert await resolver.resolve(CORE_CONTEXT_URL) is core_termmap()

    run(go())


def test_core_urls_are_never_fetched() -> None:
    async def go() -> None:
        resolver = ContextResolver(timeout=0.5)  # any fetch would fail: there is no server
        for version in ("", "-v1.3", "-v1.5", "-v1.8"):
            url = f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context{version}.jsonld"
            tm = await resolver.resolve([url, {"x": EX + "x"}])
            assert tm.expand_term("x") == EX + "x" and tm.urls == frozenset()
        assert resolver.documents() == []
        with pytest.raises(BadRequestData):
            await resolver.reload(CORE_CONTEXT_URL)

    run(go())


def test_lru_bound(server: ContextServer) -> None:
    async def go() -> None:
        resolver = ContextResolver(max_termmaps=2)
        a = await resolver.resolve({"a": EX + "a"})
        await resolver.resolve({"b": EX + "b"})
        assert await resolver.resolve({"a": EX + "a"}) is a  # refreshes a
        await resolver.resolve({"c": EX + "c"})  # evicts b
        assert await resolver.resolve({"a": EX + "a"}) is a
        assert len(resolver._termmaps) == 2

    run(go())


# -- failures -------------------------------------------------------------------------------------------------
def test_timeout_is_context_not_available(server: ContextServer) -> None:
    url = server.url("/hang")

    async def go() -> None:
        resolver = ContextResolver(timeout=0.3)
        started = time.monotonic()
        with pytest.raises(LdContextNotAvailable) as caught:
            await resolver.resolve(url)
        assert time.monotonic() - started < 2
        assert caught.value.status == 504
        assert url in caught.value.detail and "0.3 s" in caught.value.detail
        await resolver.aclose()

    run(go())


@pytest.mark.parametrize(
    ("path", "document", "status", "reason"),
    [
        ("/missing", None, 404, "HTTP status 404"),
        ("/error", {"@context": {}}, 500, "HTTP status 500"),
        ("/text", b"<html>not json</html>", 200, "not JSON"),
        ("/nocontext", {"terms": {}}, 200, "with an @context member"),
        ("/array", [{"@context": {}}], 200, "with an @context member"),
    ],
)
def test_failed_fetch(server: ContextServer, path: str, document: Any, status: int, reason: str) -> None:
    url = server.serve(path, document, status) if document is not None else server.url(path)

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        with pytest.raises(LdContextNotAvailable) as caught:
            await resolver.resolve(url)
        assert url in caught.value.detail and reason in caught.value.detail
        assert resolver.document(url) is None
        await resolver.aclose()

    run(go())


def test_unreachable_and_odd_urls() -> None:
    async def go() -> None:
        resolver = ContextResolver(timeout=1)
        with pytest.raises(LdContextNotAvailable, match=r"127\.0\.0\.1:9"):
            await resolver.resolve("http://127.0.0.1:9/ctx.jsonld")  # nothing listens on the discard port
        with pytest.raises(LdContextNotAvailable, match="only http"):
            await resolver.resolve("urn:ngsi-ld:context:1")
        with pytest.raises(BadRequestData, match="not an absolute URL"):
            await resolver.resolve("relative.jsonld")
        await resolver.aclose()

    run(go())


def test_failure_is_not_cached(server: ContextServer) -> None:
    url = server.url("/later.jsonld")

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        with pytest.raises(LdContextNotAvailable):
            await resolver.resolve(url)
        with pytest.raises(LdContextNotAvailable):
            await resolver.resolve([url, {"a": EX + "a"}])
        server.serve("/later.jsonld", {"@context": {"late": EX + "late"}})
        tm = await resolver.resolve(url)
        assert tm.expand_term("late") == EX + "late"
        assert server.hits["/later.jsonld"] == 3
        await resolver.aclose()

    run(go())


def test_failed_nested_reference_names_the_nested_url(server: ContextServer) -> None:
    top = server.serve("/top.jsonld", {"@context": [server.url("/gone.jsonld")]})

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        with pytest.raises(LdContextNotAvailable) as caught:
            await resolver.resolve(top)
        assert server.url("/gone.jsonld") in caught.value.detail
        assert resolver.documents() == []  # the top document was not kept either
        await resolver.aclose()

    run(go())


def test_invalid_context_is_bad_request_and_not_kept(server: ContextServer) -> None:
    url = server.serve("/invalid.jsonld", {"@context": {"speed": 5}})
    persisted: list[str] = []

    async def go() -> None:
        resolver = ContextResolver(timeout=2, on_fetched=lambda u, d: persisted.append(u))
        with pytest.raises(BadRequestData, match="Invalid @context"):
            await resolver.resolve(url)
        assert persisted == [] and resolver.document(url) is None
        await resolver.aclose()

    run(go())


# -- preload, persistence, reload, forget ----------------------------------------------------------------------
def test_preload_is_consulted_before_fetching(server: ContextServer) -> None:
    url = server.url("/hosted.jsonld")  # the server does not know it

    async def preload(u: str) -> dict[str, Any] | None:
        return {"@context": {"hosted": EX + "hosted"}} if u == url else None

    async def go() -> None:
        persisted: list[str] = []
        resolver = ContextResolver(preload=preload, on_fetched=lambda u, d: persisted.append(u))
        tm = await resolver.resolve(url)
        assert tm.expand_term("hosted") == EX + "hosted"
        assert "/hosted.jsonld" not in server.hits
        cached = resolver.document(url)
        assert cached is not None and cached.origin == "preloaded"
        assert persisted == []  # it came from the store: nothing new to persist

    run(go())


def test_fetched_documents_are_handed_to_on_fetched(server: ContextServer) -> None:
    url = server.serve("/p.jsonld", {"@context": {"p": EX + "p"}})
    seen: list[tuple[str, Any]] = []

    async def persist(u: str, document: dict[str, Any]) -> None:
        seen.append((u, document))

    async def go() -> None:
        resolver = ContextResolver(on_fetched=persist, preload=lambda u: asyncio.sleep(0, None))
        await resolver.resolve(url)
        await resolver.resolve(url)
        assert seen == [(url, {"@context": {"p": EX + "p"}})]
        await resolver.aclose()

    run(go())


def test_a_failing_persistence_callback_does_not_fail_the_request(server: ContextServer) -> None:
    url = server.serve("/p.jsonld", {"@context": {"p": EX + "p"}})

    def broken(u: str, d: dict[str, Any]) -> None:
        raise RuntimeError("store down")

    async def go() -> None:
        resolver = ContextResolver(on_fetched=broken)
        assert (await resolver.resolve(url)).expand_term("p") == EX + "p"
        await resolver.aclose()

    run(go())


def test_reload(server: ContextServer) -> None:
    url = server.serve("/r.jsonld", {"@context": {"r": EX + "one"}})

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        old = await resolver.resolve(url)
        assert old.expand_term("r") == EX + "one"
        server.serve("/r.jsonld", {"@context": {"r": EX + "two"}})
        assert await resolver.resolve(url) is old  # cached until reloaded
        cached = await resolver.reload(url)
        assert cached.document == {"@context": {"r": EX + "two"}}
        new = await resolver.resolve(url)
        assert new is not old and new.expand_term("r") == EX + "two"

        server.routes.pop("/r.jsonld")  # now the server fails: the copy in place stays
        with pytest.raises(LdContextNotAvailable, match="404"):
            await resolver.reload(url)
        assert await resolver.resolve(url) is new
        server.serve("/r.jsonld", {"@context": {"r": 5}})  # invalid: refused, old copy stays
        with pytest.raises(BadRequestData):
            await resolver.reload(url)
        assert (await resolver.resolve(url)).expand_term("r") == EX + "two"
        await resolver.aclose()

    run(go())


def test_forget(server: ContextServer) -> None:
    url = server.serve("/f.jsonld", {"@context": {"f": EX + "f"}})

    async def go() -> None:
        resolver = ContextResolver()
        first = await resolver.resolve(url)
        resolver.forget(url)
        assert resolver.document(url) is None and resolver.usage(url) == (0, None)
        assert await resolver.resolve(url) is not first
        assert server.hits["/f.jsonld"] == 2
        await resolver.aclose()

    run(go())


def test_usage_counts_every_document_a_request_used(server: ContextServer) -> None:
    base = server.serve("/u-base.jsonld", {"@context": {"ex": EX}})
    top = server.serve("/u-top.jsonld", {"@context": [base, {"u": "ex:u"}]})

    async def go() -> None:
        resolver = ContextResolver()
        assert resolver.usage(top) == (0, None)
        for _ in range(3):
            await resolver.resolve(top)
        await resolver.resolve(base)
        hits, last = resolver.usage(top)
        assert hits == 3 and last is not None and last.endswith("Z")
        assert resolver.usage(base)[0] == 4
        await resolver.aclose()

    run(go())


def test_concurrent_requests_share_one_fetch(server: ContextServer) -> None:
    url = server.serve("/slow.jsonld", {"@context": {"s": EX + "s"}})
    server.delay = 0.2

    async def go() -> None:
        resolver = ContextResolver(timeout=2)
        maps = await asyncio.gather(*(resolver.resolve(url) for _ in range(5)))
        assert all(tm.expand_term("s") == EX + "s" for tm in maps)
        assert server.hits["/slow.jsonld"] == 1
        await resolver.aclose()

    run(go())


def test_vocab_of_remote_context_is_the_core_one(server: ContextServer) -> None:
    url = server.serve("/v.jsonld", {"@context": {"@vocab": "http://mine.example/"}})

    async def go() -> None:
        resolver = ContextResolver()
        assert (await resolver.resolve(url)).expand_term("x") == DEFAULT_VOCAB + "x"
        await resolver.aclose()

    run(go())
