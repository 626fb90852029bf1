"""The Starlette application: routes, the one error handler, and the lifespan that opens the store."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from broker.console import ROUTES as CONSOLE_ROUTES
from broker.core.caller import Caller
from broker.core.contexts import CONTEXTS_PATH, CachedRefresher
from broker.core.policies import read_policy_file
from broker.gdpr.retention import GdprRetention, parse_rules
from broker.guards import OutboundPolicy
from broker.http import (
    admin,
    contexts,
    discovery,
    entities,
    entity_maps,
    feed,
    gc_tuning,
    gdpr,
    health,
    info,
    openapi,
    opendata,
    operations,
    registrations,
    snapshots,
    subscriptions,
    temporal,
)
from broker.http.authn import Authentication
from broker.http.errors import EXCEPTION_HANDLERS
from broker.http.paths import EncodedSlashes, TrailingSlash
from broker.http.protect import RateLimit, SecurityHeaders
from broker.http.routing import MethodRouter
from broker.http.state import BrokerState
from broker.ld.resolver import ContextResolver
from broker.notify.csource import CsourceNotifier
from broker.notify.delivery import RetryPolicy
from broker.notify.notifier import Notifier, NotifierConfig
from broker.notify.periodic import PeriodicNotifier
from broker.observe import tracing
from broker.observe.metrics import instrument_store
from broker.observe.middleware import Observe
from broker.settings import Settings, installation_source_id
from broker.store import open_store
from broker.store.base import HistoryPolicy, Store
from broker.temporal.retention import Retention

log = logging.getLogger("agora")


async def with_source_id(settings: Settings, store: Store) -> Settings:
    """The settings with a source id: AGORA_SOURCE_ID when set, else the one of this store's installation, the
    same for every process on the store and across restarts (record 0199)."""
    if settings.source_id:
        return settings
    return dataclasses.replace(settings, source_id=installation_source_id(await store.installation()))


def create_app(settings: Settings | None = None, store: Store | None = None) -> Starlette:
    """The broker as an ASGI app. A given `store` is used as it is (tests); else one is opened from settings."""
    settings = settings or Settings.from_env()
    tracing.configure(settings.tracing)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or open_store(settings.store)
        the_store.history = HistoryPolicy(settings.history, settings.history_on_delete == "keep")
        await the_store.open()
        instrument_store(the_store)
        app.state.broker = BrokerState.build(await with_source_id(settings, the_store), the_store)
        if settings.policies:
            await load_policies(app.state.broker, settings.policies)
        app.state.broker.audit.start()
        the_store.watch_contexts(forget_changed_context(app.state.broker.resolver))
        log.info("store %s opened (%s)", type(the_store).__name__, _safe_url(settings.store))
        notifier = Notifier(the_store, app.state.broker.resolver, notifier_config(settings, app.state.broker.outbound))
        await notifier.start()
        app.state.broker.notifier = notifier
        retention = Retention(the_store, settings)
        retention.start()
        gdpr_retention = GdprRetention(
            the_store, parse_rules(settings.gdpr_retention), settings.history_retention_interval
        )
        gdpr_retention.start()
        periodic = PeriodicNotifier(
            the_store, app.state.broker.resolver, notifier_config(settings).retry, outbound=app.state.broker.outbound
        )
        periodic.start()
        poll = max(settings.notify_poll_interval, 0.1)
        csource = CsourceNotifier(
            the_store, app.state.broker.resolver, notifier_config(settings).retry, poll, app.state.broker.outbound
        )
        csource.start()
        refresher = CachedRefresher(app.state.broker.contexts)
        refresher.start()
        app.state.broker.opendata.start(settings.opendata_base_url or f"http://{settings.host}:{settings.port}")
        gc_tuning.serving_started()  # what start-up built lives as long as the process (record 0055)
        try:
            yield
        finally:
            gc_tuning.serving_stopped()
            await app.state.broker.opendata.stop()
            await refresher.stop()
            await csource.stop()
            await periodic.stop()
            await retention.stop()
            await gdpr_retention.stop()
            await notifier.stop()
            await app.state.broker.authenticator.aclose()
            if app.state.broker.forwarder is not None:
                await app.state.broker.forwarder.aclose()
            await app.state.broker.audit.stop()
            await the_store.close()

    routes = [
        *admin.ROUTES,
        *gdpr.ROUTES,
        *entities.ROUTES,
        *entity_maps.ROUTES,
        *snapshots.ROUTES,
        *subscriptions.ROUTES,
        *registrations.ROUTES,
        *temporal.ROUTES,
        *discovery.ROUTES,
        *contexts.ROUTES,
        *info.ROUTES,
        *openapi.ROUTES,
        *health.ROUTES,
        *opendata.ROUTES,
        *feed.ROUTES,
        *operations.ROUTES,
        *CONSOLE_ROUTES,
    ]
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        # security headers on every answer; ids and names that are IRIs with "/", and the spec's resource paths with
        # their trailing "/" (paths.py); who the caller is (authn.py), then its request budget (protect.py)
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(EncodedSlashes),
            Middleware(TrailingSlash, routes=routes),
            Middleware(admin.Audit),
            Middleware(Authentication),
            Middleware(RateLimit, rate=settings.requests_per_second, burst=settings.rate_burst),
            Middleware(snapshots.SnapshotScope),
            # innermost: it reads the route the router matched (request id, metrics, access log; records 0242-0243)
            Middleware(Observe, access=settings.log_format == "json"),
        ],
    )
    app.router = MethodRouter(routes, lifespan=lifespan)  # the same routes, found in fewer tries (routing.py)
    return app


async def load_policies(state: BrokerState, path: str) -> None:
    """The rules of the policy file `path` into the store (added or replaced by id), as the administrator."""
    rules, context = read_policy_file(path)
    tm = await state.resolver.resolve(context)
    stored = await state.policies.put(Caller(), rules, tm.expand_term)
    log.info("%d access policy rules loaded from %s", len(stored), path)


def forget_changed_context(resolver: ContextResolver) -> Callable[[str, str], None]:
    """What a process does when a context record changed in the store (maybe through another process): drop its
    cached copy, under the record's URL and, for a hosted one, under any host name it was asked for."""

    def forget(context_id: str, url: str) -> None:
        resolver.forget(url)
        suffix = CONTEXTS_PATH + context_id
        for document in resolver.documents():
            if document.url.endswith(suffix):
                resolver.forget(document.url)

    return forget


def notifier_config(settings: Settings, outbound: OutboundPolicy | None = None) -> NotifierConfig:
    retry = RetryPolicy(
        settings.notify_timeout, settings.notify_attempts, settings.notify_backoff, settings.notify_cooldown
    )
    return NotifierConfig(
        poll_interval=settings.notify_poll_interval,
        concurrency=settings.notify_concurrency,
        retry=retry,
        outbound=outbound or OutboundPolicy.open(),
    )


def _safe_url(url: str) -> str:
    """A store URL without its password, for the log."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory broker.http.app:app_from_env` (used by `agora serve`).

    With --workers N each worker is a fresh process: it configures its own logging from the environment.
    """
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def configure_logging(level: str, log_format: str | None = None) -> None:
    """Text lines, or JSON objects (`--log-format json`; a worker process reads AGORA_LOG_FORMAT)."""
    if (log_format or os.environ.get("AGORA_LOG_FORMAT", "text")) == "json":
        from broker.observe.logs import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
        return
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
