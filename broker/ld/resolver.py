"""From what a request carries (Link header URL, inline @context) to a cached TermMap.

    resolver = ContextResolver(timeout=5.0, preload=store_copy, on_fetched=persist)
    tm = await resolver.resolve(link_url_or_inline_context)

Two caches, both in memory:

* term maps, keyed by the context's identity (the URL, or canonical JSON of an inline value), LRU-bounded: the
  hot path of a request is one dict hit;
* @context documents by URL, with their fetch time. A document is looked for in this cache, then through the
  `preload` callback (the store's persisted copies and the broker's Hosted contexts), and only then fetched
  with httpx. Core context URLs are never fetched (broker.ld.core bundles them).

A failed fetch raises LdContextNotAvailable naming the URL and is never cached, neither as an empty context nor
as an error: the next request tries again. Documents are committed to the cache (and handed to `on_fetched` for
persistence) only once a term map was successfully built from them, so a document PyLD refuses is neither kept
nor persisted; it yields BadRequestData.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from broker.core.errors import BadRequestData, LdContextNotAvailable, OutboundRefused
from broker.core.model import now_iso
from broker.guards import OutboundPolicy, guarded_client
from broker.ld.core import CORE_CONTEXT_URL, is_core_url
from broker.ld.termmap import ContextValue, MissingContextDocument, TermMap, context_key, core_termmap
from broker.observe.metrics import CONTEXT_HIT, CONTEXT_MISS

log = logging.getLogger(__name__)

Document = dict[str, Any]
#: Looks a URL up in the broker's own copies (store, Hosted contexts) before any fetch; None when it has none.
Preload = Callable[[str], Awaitable[Document | None]]
#: Told about every newly fetched document (to persist it); may be a plain or an async function.
OnFetched = Callable[[str, Document], Awaitable[None] | None]

DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_MAX_TERMMAPS: Final = 256
DEFAULT_MAX_DOCUMENTS: Final = 1024
DEFAULT_MAX_BYTES: Final = 4 * 1024 * 1024
# Building a term map fetches the URLs PyLD asks for one round at a time; real contexts need a handful.
MAX_FETCH_ROUNDS: Final = 32
_ACCEPT: Final = {"Accept": "application/ld+json, application/json;q=0.9, */*;q=0.1"}


@dataclass(frozen=True, slots=True)
class CachedDocument:
    """A @context document held in memory: where it came from and when."""

    url: str
    document: Document
    fetched_at: str
    origin: str  # "fetched" (over HTTP) | "preloaded" (from the preload callback)
    #: Seconds the origin said the document stays fresh (Cache-Control max-age; 0 for no-cache or no-store);
    #: None when it said nothing (clause 5.13.1, decision record 0139).
    max_age: float | None = None


class ContextResolver:
    """Turns @context values into cached TermMaps, fetching and caching remote documents as needed."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        preload: Preload | None = None,
        on_fetched: OnFetched | None = None,
        client: httpx.AsyncClient | None = None,
        max_termmaps: int = DEFAULT_MAX_TERMMAPS,
        max_documents: int = DEFAULT_MAX_DOCUMENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.timeout = timeout
        #: Which addresses a fetch may connect to (broker.guards); a given `client` is used as it is (tests).
        self.outbound = outbound or OutboundPolicy.open()
        self._preload = preload
        self._on_fetched = on_fetched
        self._client = client
        self._owns_client = client is None
        self._max_termmaps = max_termmaps
        self._max_documents = max_documents
        self._max_bytes = max_bytes
        self._termmaps: OrderedDict[str, TermMap] = OrderedDict()
        self._documents: OrderedDict[str, CachedDocument] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[CachedDocument]] = {}
        self._hits: dict[str, int] = {}
        self._last_used: dict[str, float] = {}  # epoch seconds; formatted only when someone asks

    # -- public API ------------------------------------------------------------------------------------------
    def core_termmap(self) -> TermMap:
        """The term map of the default core context alone (a request without any user context)."""
        return core_termmap()

    async def resolve(self, value: ContextValue | None) -> TermMap:
        """The TermMap of a Link header URL or an inline @context value (None: the core context alone).

        Raises LdContextNotAvailable when a referenced document cannot be obtained, BadRequestData when the
        context is not a valid JSON-LD context.
        """
        if value is None or value == CORE_CONTEXT_URL:
            return core_termmap()
        key = context_key(value)
        tm = self._termmaps.get(key)
        if tm is None:
            CONTEXT_MISS.inc()
            tm = await self._build(value)
            self._termmaps[key] = tm
            while len(self._termmaps) > self._max_termmaps:
                self._termmaps.popitem(last=False)
        else:
            CONTEXT_HIT.inc()
            self._termmaps.move_to_end(key)
        self._touch(tm.urls)
        return tm

    async def reload(self, url: str) -> CachedDocument:
        """Fetch `url` again (bypassing the caches and the preload copy) and replace what is cached.

        On failure (LdContextNotAvailable, or BadRequestData when the new document is not a valid context) the
        previous copy stays in place. Term maps built from the old copy are dropped.
        """
        if is_core_url(url):
            raise BadRequestData(f"{url} is a core @context: it is built into the broker, never fetched")
        fresh = await self._fetch(url)
        staged = {url: fresh}
        await self._build_with(url, staged)  # validates it (and fetches what it references)
        self._invalidate(url)
        await self._commit(staged)
        return fresh

    def forget(self, url: str) -> None:
        """Drop the cached document at `url`, every term map built from it and its usage counters."""
        self._documents.pop(url, None)
        self._invalidate(url)
        self._hits.pop(url, None)
        self._last_used.pop(url, None)

    def usage(self, url: str) -> tuple[int, str | None]:
        """(number of requests that used the context at `url`, last time one did) since the broker started."""
        last = self._last_used.get(url)
        if last is None:
            return self._hits.get(url, 0), None
        return self._hits.get(url, 0), datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def document(self, url: str) -> CachedDocument | None:
        """The cached document at `url`, if any."""
        return self._documents.get(url)

    def documents(self) -> list[CachedDocument]:
        """Every cached document, least recently used first."""
        return list(self._documents.values())

    async def aclose(self) -> None:
        """Close the HTTP client if this resolver created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    # -- building --------------------------------------------------------------------------------------------
    async def _build(self, value: ContextValue) -> TermMap:
        staged: dict[str, CachedDocument] = {}
        tm = await self._build_with(value, staged)
        await self._commit(staged)
        return tm

    async def _build_with(self, value: ContextValue, staged: dict[str, CachedDocument]) -> TermMap:
        """Build a TermMap, obtaining every document PyLD asks for into `staged` (not yet committed)."""
        await self._prefetch(_references(value, None), staged)
        view: Mapping[str, Any] = _DocumentView(staged, self._documents)
        for _ in range(MAX_FETCH_ROUNDS):
            try:
                return TermMap.build(value, view)
            except MissingContextDocument as missing:
                if missing.url in staged or missing.url in self._documents:
                    raise  # served yet still missing: cannot happen unless PyLD changes; do not loop
                staged[missing.url] = await self._obtain(missing.url)
        raise BadRequestData(f"The @context references more than {MAX_FETCH_ROUNDS} documents")

    async def _prefetch(self, urls: Iterable[str], staged: dict[str, CachedDocument]) -> None:
        """Obtain the URLs a context visibly references, concurrently, and recursively their references.

        Only an optimisation (parallel fetches): anything missed is fetched when PyLD asks for it.
        """
        todo = [u for u in dict.fromkeys(urls) if self._wanted(u, staged)]
        while todo:
            results = await asyncio.gather(*(self._obtain(u) for u in todo), return_exceptions=True)
            nxt: list[str] = []
            for url, result in zip(todo, results, strict=True):
                if isinstance(result, BaseException):
                    raise result
                staged[url] = result
                nxt.extend(u for u in _references(result.document.get("@context"), url) if self._wanted(u, staged))
            todo = list(dict.fromkeys(nxt))

    def _wanted(self, url: str, staged: Mapping[str, CachedDocument]) -> bool:
        return not is_core_url(url) and url not in staged and url not in self._documents

    async def _commit(self, staged: Mapping[str, CachedDocument]) -> None:
        for url, cached in staged.items():
            self._documents[url] = cached
            self._documents.move_to_end(url)
            if cached.origin == "fetched":
                await self._notify(url, cached.document)
        while len(self._documents) > self._max_documents:
            self._documents.popitem(last=False)

    async def _notify(self, url: str, document: Document) -> None:
        if self._on_fetched is None:
            return
        try:
            result = self._on_fetched(url, document)
            if inspect.isawaitable(result):
                await result
        except Exception:  # persistence is best effort: the request that fetched the context must not fail
            log.exception("on_fetched callback failed for @context %s", url)

    def _invalidate(self, url: str) -> None:
        for key in [k for k, tm in self._termmaps.items() if url in tm.urls]:
            del self._termmaps[key]

    def _touch(self, urls: Iterable[str]) -> None:
        if not urls:
            return
        now = time.time()  # every request with a user context passes here: keep it to a clock read
        for url in urls:
            self._hits[url] = self._hits.get(url, 0) + 1
            self._last_used[url] = now

    # -- obtaining documents ---------------------------------------------------------------------------------
    async def _obtain(self, url: str) -> CachedDocument:
        """The document at `url` from the cache, the preload callback or the network; concurrent callers for
        the same URL share one fetch."""
        cached = self._documents.get(url)
        if cached is not None:
            return cached
        task = self._inflight.get(url)
        if task is None:
            task = asyncio.ensure_future(self._load(url))
            self._inflight[url] = task
            task.add_done_callback(lambda t: self._settled(url, t))
        # shield: a request that goes away must not cancel a fetch other requests wait for
        return await asyncio.shield(task)

    def _settled(self, url: str, task: asyncio.Task[CachedDocument]) -> None:
        if self._inflight.get(url) is task:
            del self._inflight[url]
        if not task.cancelled():
            task.exception()  # mark it retrieved: the waiters (if any remain) get it through the shield

    async def _load(self, url: str) -> CachedDocument:
        _check_url(url)
        if self._preload is not None:
            document = await self._preload(url)
            if isinstance(document, dict) and "@context" in document:
                return CachedDocument(url, document, now_iso(), "preloaded")
        return await self._fetch(url)

    async def _fetch(self, url: str) -> CachedDocument:
        _check_url(url)
        try:
            async with asyncio.timeout(self.timeout):
                body, cache_control = await self._get(url)
        except (TimeoutError, httpx.TimeoutException):
            raise LdContextNotAvailable(
                f"The @context {url} could not be fetched: no complete answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(
                f"The @context {url} could not be fetched: {type(exc).__name__}: {exc}"
            ) from None
        except OutboundRefused as exc:  # the URL or one it redirected to (record 0205)
            raise OutboundRefused(f"The @context {url} is refused by the outbound policy: {exc.detail}") from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise LdContextNotAvailable(f"The @context {url} could not be used: the answer is not JSON") from None
        if not isinstance(document, dict) or "@context" not in document:
            raise LdContextNotAvailable(
                f"The @context {url} could not be used: the answer is not a JSON object with an @context member"
            )
        return CachedDocument(url, document, now_iso(), "fetched", freshness(cache_control))

    async def _get(self, url: str) -> tuple[bytes, str | None]:
        """The body and the Cache-Control header of a successful GET."""
        if self._client is None:
            self._client = guarded_client(self.outbound, timeout=self.timeout)
        async with self._client.stream("GET", url, headers=_ACCEPT, follow_redirects=True) as response:
            if not response.is_success:
                raise LdContextNotAvailable(
                    f"The @context {url} could not be fetched: HTTP status {response.status_code}"
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise LdContextNotAvailable(
                        f"The @context {url} could not be used: larger than {self._max_bytes} bytes"
                    )
            return bytes(body), response.headers.get("cache-control")


def freshness(cache_control: str | None) -> float | None:
    """Seconds a response stays fresh by its Cache-Control header (IETF RFC 9111: max-age; no-cache and no-store
    mean none), or None when the header says nothing about it."""
    if not cache_control:
        return None
    directives = [d.strip().lower() for d in cache_control.split(",")]
    if "no-cache" in directives or "no-store" in directives:
        return 0.0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name.strip() == "max-age":
            try:
                return max(0.0, float(int(value.strip().strip('"'))))
            except ValueError:
                return None
    return None


class _DocumentView(Mapping[str, Any]):
    """url -> document over the staged documents of one build and the committed cache (staged first)."""

    def __init__(self, staged: Mapping[str, CachedDocument], committed: Mapping[str, CachedDocument]) -> None:
        self._staged = staged
        self._committed = committed

    def __getitem__(self, url: str) -> Any:
        cached = self._staged.get(url) or self._committed.get(url)
        if cached is None:
            raise KeyError(url)
        return cached.document

    def __iter__(self) -> Iterator[str]:
        return iter({**self._committed, **self._staged})

    def __len__(self) -> int:
        return len({**self._committed, **self._staged})


def _check_url(url: str) -> None:
    """Only absolute http(s) URLs are dereferenced."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise BadRequestData(f"The @context reference {url!r} is not an absolute URL")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LdContextNotAvailable(f"The @context {url} cannot be fetched: only http(s) URLs are dereferenced")


def _references(value: Any, base: str | None) -> list[str]:
    """The @context URLs visible in a context value: strings of the top level and of @import (best effort)."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        ref = item if isinstance(item, str) else item.get("@import") if isinstance(item, dict) else None
        if isinstance(ref, str):
            out.append(urljoin(base, ref) if base else ref)
    return out
