"""What the routes share: settings, store, services. Built once per process in the app lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import Request

from broker.auth.authenticator import Authenticator
from broker.core.access import Access
from broker.core.batch import Batch
from broker.core.contexts import Contexts
from broker.core.csource_subscriptions import CsourceSubscriptions
from broker.core.discovery import Discovery
from broker.core.entities import Entities
from broker.core.entity_maps import EntityMaps
from broker.core.operations import Operations
from broker.core.policies import AuditLog, Policies
from broker.core.query import Queries
from broker.core.registrations import Registrations
from broker.core.snapshots import Snapshots
from broker.core.subscriptions import Subscriptions
from broker.core.temporal import Temporal
from broker.federation import Forwarder
from broker.federation.distributed import Federation
from broker.federation.reads import Reads
from broker.guards import OutboundPolicy, policy_for
from broker.ld.resolver import ContextResolver
from broker.notify.notifier import Notifier
from broker.opendata.service import OpenData
from broker.query.common import Limits
from broker.settings import Settings
from broker.store.base import Store


@dataclass
class BrokerState:
    settings: Settings
    store: Store
    contexts: Contexts
    entities: Entities
    batch: Batch
    queries: Queries
    discovery: Discovery
    subscriptions: Subscriptions
    temporal: Temporal
    entity_maps: EntityMaps
    snapshots: Snapshots
    registrations: Registrations
    authenticator: Authenticator
    access: Access
    policies: Policies
    audit: AuditLog
    csource_subscriptions: CsourceSubscriptions
    opendata: OpenData
    #: The import runs and conformance reports other programs write to the configured directories (record 0404).
    operations: Operations
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy.open)
    #: The forwarding client of the distributed operations (clause 4.3, broker.federation), one per process.
    forwarder: Forwarder | None = None
    #: This process's notifier once the lifespan started it (the GDPR erasure empties its queues of what it erased).
    notifier: Notifier | None = None
    started: float = field(default_factory=time.time)

    @property
    def limits(self) -> Limits:
        """The query complexity bounds of the settings (TooComplexQuery beyond them, record 0208)."""
        return Limits(max_terms=self.settings.max_q_conditions, max_depth=self.settings.max_q_depth)

    @property
    def resolver(self) -> ContextResolver:
        return self.contexts.resolver

    @classmethod
    def build(cls, settings: Settings, store: Store) -> BrokerState:
        access = Access(store)
        queries = Queries(store, settings.max_page_size, access=access)
        temporal = Temporal(store, settings.temporal_instance_limit, access)
        outbound = policy_for(settings.open_loopback, settings.outbound_allow)
        contexts = Contexts(store, settings.context_timeout, settings.context_max_age, outbound)
        registrations = Registrations(store, settings.max_page_size, outbound, access)
        forwarder = Forwarder(settings.source_id, outbound, settings.context_timeout, settings.notify_cooldown)
        federation = Federation(registrations, forwarder, contexts.resolver)
        # The remote part of every read plan (ARCHITECTURE decision 10): one planner for queries, retrieval, maps
        # and discovery.
        reads = Reads(registrations, forwarder, contexts.resolver)
        queries.reads = reads
        temporal.reads = reads
        return cls(
            settings,
            store,
            contexts,
            Entities(store, access, federation, reads),
            Batch(store, access, federation, reads),
            queries,
            Discovery(store, access, reads),
            subscriptions=Subscriptions(store, settings.max_page_size, outbound, access),
            temporal=temporal,
            entity_maps=EntityMaps(store, queries),
            snapshots=Snapshots(store, queries, temporal),
            registrations=registrations,
            authenticator=Authenticator.build(settings, store),
            access=access,
            policies=Policies(store, access),
            audit=AuditLog(store, settings.audit_enabled, settings.audit_max_age),
            outbound=outbound,
            csource_subscriptions=CsourceSubscriptions(store, settings.max_page_size, outbound, access),
            forwarder=forwarder,
            opendata=OpenData(store, access, settings),
            operations=Operations(access, settings.import_metrics_dir, settings.conformance_reports_dir),
        )


def state_of(request: Request) -> BrokerState:
    state = request.app.state.broker
    assert isinstance(state, BrokerState)
    return state
