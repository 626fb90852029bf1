"""`agora source ADAPTER SOURCE`: an adapter's translation served as a read-only NGSI-LD context source (record
0382), so that a broker federates a live feed (`agora source gtfs-rt URL`) through a registration instead of
importing it.

The source is Agora itself, over a memory store: the translation is upserted into it, and every read the broker
answers (Retrieve Entity, Query Entities with type, id, idPattern, attrs, q, geo-queries, pick/omit, paging,
entity maps) is answered by the same code, evaluator included. Writes are refused with OperationNotSupported: the
native source is the truth. ``--refresh SECONDS`` translates the source again and replaces what changed (entities
gone from the feed are deleted); ``--register BROKER`` creates a registration on the broker for the types of the
translation (operations retrieveOps, the source's own hosted copy of the project @context as jsonldContext,
clause 4.3.6.6) and deletes it on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from adapters.base import Adapter, Entity, SourceError, TemporalFragment, load_adapter
from adapters.importer import LINK_REL, ImportFailed, chunks, host_context, project_context
from broker.core.errors import OperationNotSupported
from broker.core.model import now_iso
from broker.settings import Settings
from broker.store.base import ContextRecord

log = logging.getLogger("agora.source")
API = "/ngsi-ld/v1"
READS = ("GET", "HEAD", "OPTIONS")
QUERIES = (f"{API}/entityOperations/query", f"{API}/temporal/entityOperations/query")  # POSTs that only read
CHUNK = 500


class ReadOnly:
    """The ASGI app of the source: the broker's, with every write under /ngsi-ld/v1 refused."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] not in READS and scope["path"].startswith(API) and not (
            scope["method"] == "POST" and scope["path"].rstrip("/") in QUERIES
        ):
            from broker.http.errors import problem_response

            refusal = OperationNotSupported(
                f"this context source serves the translation of a native source read-only: {scope['method']} "
                f"{scope['path']} is not supported"
            )
            await problem_response(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def translate(adapter: Adapter, source: str) -> list[Entity]:
    """The entities of one translation (current state; temporal fragments are left to `agora import`)."""
    return [e for e in adapter.entities(source) if not isinstance(e, TemporalFragment)]


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 300 and response.status_code != 207:
        raise ImportFailed(f"{what}: HTTP {response.status_code} {response.text[:300]}")


async def replace_all(client: httpx.AsyncClient, entities: list[Entity], held: set[str], link: str) -> set[str]:
    """Make the source hold exactly ``entities``: upserted (replaced) in chunks, those of the last round that are
    gone deleted. The ids it holds now."""
    headers = {"Link": f"<{link}>; {LINK_REL}"}
    for chunk in chunks(entities, CHUNK):
        response = await client.post(f"{API}/entityOperations/upsert", json=chunk, headers=headers)
        _check(response, "loading the translation")
    now = {str(e["id"]) for e in entities}
    for gone in chunks(sorted(held - now), CHUNK):
        _check(await client.post(f"{API}/entityOperations/delete", json=gone), "removing gone entities")
    return now


def registration(endpoint: str, types: Iterable[str], context_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The registration that sends the broker's reads of these types here (clause 5.2.9)."""
    doc: dict[str, Any] = {
        "type": "ContextSourceRegistration",
        "endpoint": endpoint,
        "information": [{"entities": [{"type": t} for t in sorted(set(types))]}],
        "operations": ["retrieveOps"],
        "mode": args.mode,
        "registrationName": f"agora source {args.adapter} {args.source}"[:200],
        # the source answers in the terms of its own copy of the project @context (clause 4.3.6.6)
        "contextSourceInfo": [{"key": "jsonldContext", "value": context_url}],
    }
    return doc


def broker_context(broker: str, tenant: str | None) -> str:
    """The URL of the project @context as the broker hosts it (hosted there if it is not yet)."""
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    with httpx.Client(base_url=broker, timeout=30, headers=headers) as client:
        return host_context(client, project_context())


def register(broker: str, doc: dict[str, Any], link: str, tenant: str | None) -> str:
    """Create the registration on ``broker``, its names in the @context ``link``; its id."""
    headers = {"Link": f"<{link}>; {LINK_REL}", **({"NGSILD-Tenant": tenant} if tenant else {})}
    response = httpx.post(f"{broker}{API}/csourceRegistrations", json=doc, headers=headers, timeout=30)
    if response.status_code != 201:
        raise ImportFailed(f"the broker refused the registration: HTTP {response.status_code} {response.text[:300]}")
    return response.headers["location"].rsplit("/", 1)[-1]


def unregister(broker: str, registration_id: str, tenant: str | None) -> None:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    with contextlib.suppress(httpx.HTTPError):
        httpx.delete(f"{broker}{API}/csourceRegistrations/{quote(registration_id, safe='')}", headers=headers,
                     timeout=10)  # fmt: skip


class ContextSource:
    def __init__(self, args: argparse.Namespace, adapter_class: type[Adapter]) -> None:
        # here, not at the top: `agora --help` and every other command build this module's parser, and the
        # broker's app and uvicorn are a second of imports they do not need
        import uvicorn

        from broker.http.app import create_app

        self.args = args
        self.adapter_class = adapter_class
        # its own source id: the broker's loop detection tells it from the broker itself
        source_id = f"urn:ngsi-ld:ContextSource:agora-source:{quote(args.adapter, safe='')}"
        self.app = create_app(Settings(store="memory://", source_id=source_id))
        self.server = uvicorn.Server(uvicorn.Config(ReadOnly(self.app), host=args.host, port=args.port,
                                                    log_level="warning", server_header=False))  # fmt: skip
        self.held: set[str] = set()
        self.types: set[str] = set()

    def _translation(self) -> list[Entity]:
        adapter = self.adapter_class(network=self.args.network)
        entities = translate(adapter, self.args.source)
        for rejection in adapter.rejections:
            log.warning("%s", rejection)
        return entities

    async def refresh(self, client: httpx.AsyncClient, context_url: str) -> None:
        entities = await asyncio.to_thread(self._translation)
        self.held = await replace_all(client, entities, self.held, context_url)
        self.types |= {str(e["type"]) for e in entities}
        log.info("serving %d entities (%s)", len(self.held), ", ".join(sorted(self.types)))

    async def run(self) -> int:
        entities = await asyncio.to_thread(self._translation)  # a source that cannot be read stops here
        for signum in (signal.SIGINT, signal.SIGTERM):
            # uvicorn stops on these and then raises them again with the handlers it found: without a handler of
            # our own that would end the process before the registration is removed
            signal.signal(signum, lambda *_: None)
        serving = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        endpoint = (self.args.endpoint or f"http://{self.args.host}:{port}").rstrip("/")
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://source", timeout=60) as client:
            context_url = await self._context(client, endpoint)
            self.held = await replace_all(client, entities, set(), context_url)
            self.types = {str(e["type"]) for e in entities} or set(self.adapter_class.entity_types)
            print(f"serving {len(self.held)} entities at {endpoint}{API} (@context {context_url})", file=sys.stderr,
                  flush=True)  # fmt: skip
            registration_id = None
            if self.args.register:
                doc = registration(endpoint, self.types, context_url, self.args)
                registration_id = await asyncio.to_thread(register, self.args.register, doc, context_url,
                                                          self.args.tenant)  # fmt: skip
                print(f"registered as {registration_id} at {self.args.register}", file=sys.stderr, flush=True)
            refresher = asyncio.create_task(self._refresh_loop(client, context_url))
            try:
                await serving
            finally:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
                if registration_id:
                    await asyncio.to_thread(unregister, self.args.register, registration_id, self.args.tenant)
        return 0

    async def _context(self, client: httpx.AsyncClient, endpoint: str) -> str:
        """The URL of the project @context that the source and the broker it registers with both resolve.

        An Agora broker takes any URL ending in /ngsi-ld/v1/jsonldContexts/{id} for a context it hosts, whatever its
        host (broker.core.contexts): with --register, the source keeps the broker's hosted copy under the broker's
        id, so that both ends read the forwarded requests in the same terms; alone, it hosts its own copy."""
        if not self.args.register:
            hosted = await client.post(f"{API}/jsonldContexts", json=project_context())
            _check(hosted, "hosting the project @context")
            return endpoint + hosted.headers["location"]
        url = await asyncio.to_thread(broker_context, self.args.register, self.args.tenant)
        record = ContextRecord(url.rsplit("/", 1)[-1], url, "Hosted", project_context(), now_iso())
        await self.app.state.broker.store.put_context(record)
        return url

    async def _refresh_loop(self, client: httpx.AsyncClient, context_url: str) -> None:
        while self.args.refresh:
            await asyncio.sleep(self.args.refresh)
            try:
                await self.refresh(client, context_url)
            except (SourceError, ImportFailed) as exc:  # the next round tries again; what is served stays
                log.warning("refresh failed: %s", exc)


def add_subcommand(sub: Any) -> None:
    src = sub.add_parser(
        "source",
        help="serve an adapter's translation as a read-only NGSI-LD context source",
        description="Translate SOURCE (file or URL) with ADAPTER and serve the entities as a read-only NGSI-LD "
        "context source (/ngsi-ld/v1: retrieve and query entities, with type, id, idPattern, attrs, q, geo-queries "
        "as Agora answers them), so that a broker federates it through a registration (--register) instead of "
        "importing it. Runs until interrupted.",
    )
    src.add_argument("adapter", metavar="ADAPTER", help="adapter name (see `agora adapters`)")
    src.add_argument("source", metavar="SOURCE", help="the native source, a file or a URL (gtfs-rt: a feed URL)")
    src.add_argument(
        "--network", metavar="NAME",
        help="network name in the entity ids (default: the source's own; gtfs-rt: the static feed's)",
    )  # fmt: skip
    src.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    src.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one, printed)")
    src.add_argument("--endpoint", metavar="URL",
                     help="the URL the broker reaches this source at, put in the registration (default "
                     "http://HOST:PORT)")  # fmt: skip
    src.add_argument("--refresh", metavar="SECONDS", type=float, default=0,
                     help="translate SOURCE again every SECONDS and serve what changed (default 0: never)")  # fmt: skip
    src.add_argument("--register", metavar="BROKER_URL", help="register this source with that broker (removed on exit)")
    src.add_argument("--tenant", help="tenant of the broker to register in (NGSILD-Tenant header; default: none)")
    src.add_argument(
        "--mode", choices=["inclusive", "exclusive", "redirect", "auxiliary"], default="inclusive",
        help="the registration's mode (default inclusive: the broker merges this source's entities with its own)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """0 after a clean stop, 1 when the source cannot be read or the broker refused the registration, 2 on bad
    arguments."""
    if args.refresh < 0:
        print("agora source: --refresh needs a positive number of seconds", file=sys.stderr)
        return 2
    try:
        adapter_class = load_adapter(args.adapter)
    except KeyError as exc:
        print(f"agora source: {exc.args[0]}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return asyncio.run(ContextSource(args, adapter_class).run())
    except (SourceError, ImportFailed) as exc:
        print(f"agora source: {exc}", file=sys.stderr)
        return 1
