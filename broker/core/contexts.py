"""The @context documents the broker holds (clauses 5.13.x, 6.29, 6.30): Hosted, Cached and listed.

Hosted contexts are posted by clients and served by the broker at /ngsi-ld/v1/jsonldContexts/{id}; the resolver
finds them through `preload` without any network. Cached contexts are remote documents the resolver fetched;
they are persisted so that a restarted broker does not need the network to serve what it served before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from broker.background import stop_tasks
from broker.core.errors import (
    BadRequestData,
    NgsiLdError,
    OperationNotSupported,
    ResourceNotFound,
)
from broker.core.model import now_iso
from broker.guards import OutboundPolicy
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import single_url
from broker.notify.outage import Outage
from broker.store.base import ContextRecord, Store

CONTEXTS_PATH = "/ngsi-ld/v1/jsonldContexts/"
KINDS = ("Hosted", "Cached", "ImplicitlyCreated")
#: Heuristic expiration of a Cached @context (clause 5.13.1), in seconds: a day.
DEFAULT_MAX_AGE = 86_400.0
log = logging.getLogger("agora.contexts")
_HOSTED = re.compile(r"^https?://[^/]+" + re.escape(CONTEXTS_PATH) + r"([^/?#]+)$")


class Contexts:
    def __init__(
        self, store: Store, timeout: float, max_age: float = DEFAULT_MAX_AGE, outbound: OutboundPolicy | None = None
    ) -> None:
        self.store = store
        self.max_age = max_age  # of a Cached copy; 0 keeps copies forever
        self.resolver = ContextResolver(
            timeout=timeout, preload=self.preload, on_fetched=self.on_fetched, outbound=outbound
        )

    async def preload(self, url: str) -> dict[str, Any] | None:
        """A document the broker already has: one it hosts (whatever host name the URL uses), or a cached copy.
        A /jsonldContexts/ URL whose id is not hosted here may be another broker's (a federating broker forwards
        its clients' Link, clause 4.3.6.6): it is fetched like any remote @context (a missing one is still
        LdContextNotAvailable, from the fetch)."""
        if match := _HOSTED.match(url):
            record = await self.store.get_context(match.group(1))
            if record is not None:
                return dict(record.body)
        record = await self.store.find_context_by_url(url)
        return dict(record.body) if record is not None else None

    async def on_fetched(self, url: str, document: dict[str, Any]) -> None:
        existing = await self.store.find_context_by_url(url)
        context_id = existing.id if existing else uuid.uuid4().hex
        cached = self.resolver.document(url)
        # The origin's explicit freshness (Cache-Control) is kept with the copy: it wins over the heuristic max age.
        extra = {"maxAge": cached.max_age} if cached is not None and cached.max_age is not None else {}
        await self.store.put_context(ContextRecord(context_id, url, "Cached", document, now_iso(), extra))

    def expiry(self, record: ContextRecord) -> float | None:
        """When a Cached copy expires (seconds since the epoch): its download time plus the origin's max-age, else
        the heuristic max age; None when copies never expire or the download time does not read."""
        created = _epoch(record.created_at)
        if self.max_age <= 0 or created is None:
            return None
        explicit = record.extra.get("maxAge")
        return created + (float(explicit) if isinstance(explicit, int | float) else self.max_age)

    async def add_hosted(self, document: Any, base_url: str) -> ContextRecord:
        if not isinstance(document, dict) or "@context" not in document:
            raise BadRequestData("a hosted @context is a JSON object with an @context member")
        context_id = uuid.uuid4().hex
        url = base_url.rstrip("/") + CONTEXTS_PATH + context_id
        record = ContextRecord(context_id, url, "Hosted", {"@context": document["@context"]}, now_iso())
        await self.resolver.resolve(document["@context"])  # refuse an invalid context before storing it
        await self.store.put_context(record)
        return record

    async def implicit(self, context: Any, base_url: str) -> str | None:
        """The URL of an ImplicitlyCreated @context holding `context`, made when it is not one URL (clause 5.13.1:
        a subscription written with an @context array or object, notified as application/json, needs its @context
        at a URL for the Link header); None when `context` already is one URL. One entry per distinct @context:
        its id is a digest of the content, so the same @context used again is the same entry (record 0136)."""
        if context is None or single_url(context) is not None:
            return None
        digest = hashlib.sha256(orjson.dumps(context, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        context_id = f"implicit-{digest}"
        existing = await self.store.get_context(context_id)
        if existing is not None:
            return existing.url
        url = base_url.rstrip("/") + CONTEXTS_PATH + context_id
        await self.store.put_context(
            ContextRecord(context_id, url, "ImplicitlyCreated", {"@context": context}, now_iso())
        )
        return url

    async def serve(self, key: str) -> dict[str, Any]:
        """Serve @context (clause 5.13.4.4): the content of a Hosted or ImplicitlyCreated one; a Cached one is only
        a local copy of another server's document, OperationNotSupported."""
        record = await self.get(key)
        if record.kind == "Cached":
            raise OperationNotSupported(
                f"@context {key} is Cached (a copy of {record.url}); only its details are served"
            )
        return dict(record.body)

    async def get(self, key: str) -> ContextRecord:
        record = await self.store.get_context(key) or await self.store.find_context_by_url(key)
        if record is None:
            raise ResourceNotFound(f"no @context {key}")
        return record

    async def list(self, kind: str | None) -> list[ContextRecord]:
        if kind is not None and kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}")
        return [r for r in await self.store.list_contexts() if kind is None or r.kind == kind]

    async def delete(self, key: str, reload: bool) -> None:
        record = await self.get(key)
        if reload:
            if record.kind != "Cached":
                raise BadRequestData("only a Cached @context can be reloaded")
            await self.resolver.reload(record.url)
            return
        await self.store.delete_context(record.id)
        self.resolver.forget(record.url)

    def details(self, record: ContextRecord) -> dict[str, Any]:
        hits, last = self.resolver.usage(record.url)
        out: dict[str, Any] = {
            "URL": record.url,
            "localId": record.id,
            "kind": record.kind,
            "createdAt": record.created_at,
        }
        if record.kind == "Cached":
            expires = self.expiry(record)
            if expires is not None:
                out["expiresAt"] = _stamp(expires)
            out["lastUsage"] = last or record.created_at
            out["numberOfHits"] = hits
        return out


def _epoch(stamp: str) -> float | None:
    """Seconds since the epoch of a stored DateTime; None for one that does not read as a DateTime."""
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CachedRefresher:
    """Clause 5.13.1: "Implementations shall periodically invalidate the "Cached" @contexts ... should assign a
    heuristic expiration time when an explicit time is not specified." A Cached copy older than `max_age` seconds
    (its createdAt is its download time) is downloaded again, like a reload; when that fails the copy stays in use
    and the next pass tries again (decision record 0139). With several broker processes only the leader of
    "context-refresh" downloads; the store's context watch tells the others (record 0082)."""

    def __init__(self, contexts: Contexts, interval: float | None = None) -> None:
        self.contexts = contexts
        self.interval = interval if interval is not None else max(1.0, min(3600.0, contexts.max_age / 4))
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(contexts.store, "the @context refresh")

    def start(self) -> None:
        if self.contexts.max_age > 0:
            self._task = asyncio.create_task(self._run(), name="agora-context-refresh")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None

    async def run_once(self, now: float | None = None) -> list[str]:
        """Download again every expired Cached @context; answer the URLs refreshed."""
        if self.contexts.max_age <= 0:
            return []
        moment = time.time() if now is None else now
        refreshed = []
        for record in await self.contexts.store.list_contexts():
            if record.kind != "Cached":
                continue
            expires = self.contexts.expiry(record)
            if expires is not None and expires > moment:
                continue  # still fresh (a copy whose download time does not read is downloaded again)
            try:
                await self.contexts.resolver.reload(record.url)
            except NgsiLdError as exc:  # unreachable or now invalid: the copy stays in use
                log.warning("Cached @context %s could not be downloaded again, its copy stays: %s", record.url, exc)
                continue
            refreshed.append(record.url)
        return refreshed

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if await self.contexts.store.try_lead("context-refresh"):
                    refreshed = await self.run_once()
                    if refreshed:
                        log.info("%d Cached @context(s) downloaded again", len(refreshed))
                self._outage.ok()
            except Exception as exc:  # a failed pass is retried at the next interval; the broker keeps serving
                self._outage.failed(exc, "a @context refresh pass")
